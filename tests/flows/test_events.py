"""imagehop's Prefect events arrive at the API (the harness's real temporary server): a finished
transfer, its retention, a failed transfer and a pre-flight refusal, read back through
``POST /api/events/filter``."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter
from prefect.events.schemas.events import Event

from imagehop.errors import PreflightError, TaskFailedError
from imagehop.flows.replicate_server import replicate_server
from imagehop.flows.transfer_image import transfer_image
from imagehop.procedure.request import ReplicateRequest
from imagehop.procedure.result import ReplicationResult, TransferResult
from imagehop.tasks.events import COPIED, COPY_FAILED, PRUNED
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import new_image, request_for

pytestmark = [pytest.mark.cloud, pytest.mark.flow]

#: The server stores events shortly after they are sent (a background batch).
ARRIVAL_SECONDS = 60.0
POLL_SECONDS = 0.5


def arrived(name: str, run_key: str) -> Event:
    """The event ``name`` of that run key, once the API lists it (bounded wait)."""
    deadline = time.monotonic() + ARRIVAL_SECONDS
    with get_client(sync_client=True) as client:
        for _ in range(int(ARRIVAL_SECONDS / POLL_SECONDS) + 1):
            page = client.read_events(
                EventFilter(
                    event=EventNameFilter(name=[name]),
                    any_resource=EventAnyResourceFilter(id=[f"imagehop.run-key.{run_key}"]),
                ),
                limit=50,
            )
            found = [e for e in page.events if e.payload.get("run_key") == run_key]
            if found:
                assert len(found) == 1, found
                return found[0]
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
    raise AssertionError(f"no {name} event of run key {run_key} within {ARRIVAL_SECONDS} s")


def related(event: Event) -> dict[str, str]:
    """Related resources by role."""
    return {r.role: r.id for r in event.related}


def test_a_replicated_server_emits_copied_and_pruned(on_cloud: LocalCloud) -> None:
    server_id = on_cloud.admin.seed()["DFW"]["demo_server"]
    request = ReplicateRequest(
        source_region="DFW",
        target_region="IAD",
        server_id=server_id,
        coordinating_property_key=f"com.test.events-{uuid.uuid4().hex[:8]}",
        keep=1,
    )

    result = replicate_server(request)

    assert isinstance(result, ReplicationResult)
    transfer = result.transfer
    assert isinstance(transfer, TransferResult)
    copied = arrived(COPIED, transfer.run_key)
    assert copied.resource.id == f"imagehop.image.IAD.{transfer.target_image_id}"
    roles = related(copied)
    assert roles["source-image"] == f"imagehop.image.DFW.{transfer.source_image_id}"
    assert (roles["source-region"], roles["target-region"]) == (
        "imagehop.region.DFW",
        "imagehop.region.IAD",
    )
    assert roles["run-key"] == f"imagehop.run-key.{transfer.run_key}"
    assert "flow-run" in roles  # Prefect adds the run that emitted it
    payload: dict[str, Any] = copied.payload
    assert payload["bytes_total"] == transfer.bytes_total > 0
    assert payload["segments_total"] == transfer.segments_total > 1
    pruned = arrived(PRUNED, transfer.run_key)
    assert pruned.resource.id == f"imagehop.server.DFW.{server_id}"
    assert pruned.payload["kept"] == [transfer.target_image_id]
    assert pruned.payload["deleted"] == [] and pruned.payload["keep"] == 1


def test_a_failed_transfer_emits_copy_failed_with_the_reason(on_cloud: LocalCloud) -> None:
    image_id = new_image(on_cloud)
    on_cloud.admin.fail_next_task("IAD", "import", "Image cannot be imported. Error code: '721'.")

    with pytest.raises(TaskFailedError) as failure:
        transfer_image(request_for(image_id))

    event = arrived(COPY_FAILED, image_id)  # an image's run key is its id
    assert event.resource.id == f"imagehop.image.DFW.{image_id}"
    assert event.payload["error"] == "TaskFailedError"
    assert event.payload["reason"] == str(failure.value)
    assert related(event)["target-region"] == "imagehop.region.IAD"


def test_a_preflight_refusal_emits_copy_failed(on_cloud: LocalCloud) -> None:
    missing = str(uuid.uuid4())

    with pytest.raises(PreflightError) as refusal:
        transfer_image(request_for(missing))

    event = arrived(COPY_FAILED, missing)
    assert event.payload["reason"] == str(refusal.value)
    assert on_cloud.main.api_key not in str(event.model_dump())
