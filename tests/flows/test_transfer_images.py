"""transfer-images: several images at once; one failing does not stop the others."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    LogFilter,
    LogFilterFlowRunId,
)
from pydantic import ValidationError

from imagehop.errors import ConfigurationError
from imagehop.flows.transfer_images import transfer_images
from imagehop.procedure.request import BatchRequest
from imagehop.tasks import limits
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import created, new_image

pytestmark = [pytest.mark.cloud, pytest.mark.flow]

LOG_WAIT_SECONDS = 20.0


@pytest.fixture
def global_limits() -> Iterator[Callable[..., None]]:
    """Create global concurrency limits (name=slots) on the test server; deleted afterwards,
    and the once-per-process notes (missing limits, lease storage) forgotten."""
    made: list[str] = []
    limits._noted_missing.clear()
    limits._checked_lease_storage.clear()

    def create(**slots: int) -> None:
        with get_client(sync_client=True) as client:
            for name, limit in slots.items():
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit)
                )
                made.append(name)

    yield create
    with get_client(sync_client=True) as client:
        for name in made:
            client.delete_global_concurrency_limit_by_name(name)
    limits._noted_missing.clear()
    limits._checked_lease_storage.clear()


def log_messages(flow_run_ids: list[str | None] | None = None) -> list[str]:
    """The log lines of these flow runs (all runs: None) the test server holds (paged, at
    most 100 pages)."""
    runs = (
        None
        if flow_run_ids is None
        else LogFilterFlowRunId(any_=[UUID(i) for i in flow_run_ids if i])
    )
    messages: list[str] = []
    with get_client(sync_client=True) as client:
        for _ in range(100):
            page = client.read_logs(LogFilter(flow_run_id=runs), limit=200, offset=len(messages))
            messages += [log.message for log in page]
            if len(page) < 200:
                break
    return messages


def wait_for_logs(text: str, flow_run_ids: list[str | None]) -> list[str]:
    """The runs' log lines holding ``text`` once any reached the API (logs are sent in
    batches)."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        found = [message for message in log_messages(flow_run_ids) if text in message]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def batch_run_of(image_run_id: str | None) -> str:
    """The batch's flow run that ran this image's subflow (through one of its tasks)."""
    assert image_run_id
    with get_client(sync_client=True) as client:
        parent = client.read_flow_run(UUID(image_run_id)).parent_task_run_id
        assert parent is not None
        return str(client.read_task_run(parent).flow_run_id)


def test_batch_with_one_failing_image(on_cloud: LocalCloud) -> None:
    good = [new_image(on_cloud, disk_bytes=2 * 1024 * 1024 + 7) for _ in range(2)]
    licensed = on_cloud.admin.seed()["DFW"]["licensed_image"]
    batch = BatchRequest(
        source_region="DFW",
        target_region="IAD",
        image_ids=(good[0], licensed, good[1]),
        max_parallel_transfers=3,
    )

    state = transfer_images(batch, return_state=True)
    result = state.result()

    assert [o.source for o in result.outcomes] == [good[0], licensed, good[1]]
    assert [o.status for o in result.outcomes] == ["succeeded", "failed", "succeeded"]
    runs = [(o.flow_run_id, o.flow_run_name) for o in result.outcomes]
    assert all(run_id and name for run_id, name in runs) and len(set(runs)) == 3
    assert runs[0][1] == f"DFW-to-IAD-image-{good[0][:8]}"  # each image its own subflow run
    failed = result.outcomes[1]
    assert "cannot be exported" in failed.message and failed.target_image_id is None
    for outcome, source in ((result.outcomes[0], good[0]), (result.outcomes[2], good[1])):
        assert outcome.target_image_id
        assert on_cloud.admin.image_content_md5(outcome.target_image_id) == (
            on_cloud.admin.image_content_md5(source)
        )
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(  # this batch's (other tests' batches share the key)
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["batch-dfw-to-iad"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert len(artifacts) == 1
    table = str(artifacts[0].data)
    assert licensed in table and "failed" in table and "cannot be exported" in table
    assert runs[1][1] in table  # the flow run of each image


def test_batch_holds_the_global_limits_and_notes_missing_ones_once(
    on_cloud: LocalCloud, global_limits: Callable[..., None]
) -> None:
    images = tuple(new_image(on_cloud, disk_bytes=1024 * 1024 + 5) for _ in range(3))
    global_limits(**{"imagehop-export-DFW": 1, "imagehop-import-IAD": 1})  # no copy limit
    on_cloud.admin.clear_peaks()
    batch = BatchRequest(
        source_region="DFW", target_region="IAD", image_ids=images, max_parallel_transfers=3
    )

    result = transfer_images(batch)

    assert [o.status for o in result.outcomes] == ["succeeded"] * 3
    peaks = on_cloud.admin.peaks()
    assert peaks["DFW"]["export_tasks_running"] == 1
    assert peaks["IAD"]["import_tasks_running"] == 1
    runs = [o.flow_run_id for o in result.outcomes]
    notes = wait_for_logs("no active global concurrency limit imagehop-copy-DFW-IAD", runs)
    assert len(notes) == 1  # once per process, not once per image
    assert not [m for m in log_messages() if "do not exist - skipping" in m]  # Prefect's own
    # Prefect's test server keeps its leases in memory (its default) and says so: one warning,
    # from the first export (its slot is taken in the image's subflow, so the line goes to the
    # batch's task run of that image and to the batch run's logs)
    memory = "the Prefect server keeps concurrency leases in memory"
    warnings = wait_for_logs(memory, [*runs, batch_run_of(runs[0])])
    assert warnings == [limits.MEMORY_LEASES_WARNING]


def test_removed_batch_caps_are_refused_with_what_replaced_them() -> None:
    with pytest.raises(ValidationError) as refused:
        BatchRequest.model_validate(
            {"source_region": "DFW", "target_region": "IAD", "image_ids": ["x"],
             "max_exports_per_region": 2}
        )  # fmt: skip
    message = str(refused.value)
    assert "max_exports_per_region: no longer a batch parameter" in message
    assert "python deployments/limits.py" in message


def test_batch_by_property_filter(on_cloud: LocalCloud) -> None:
    marker = {"com.example.wave": "w-7"}
    chosen = new_image(on_cloud, disk_bytes=1024 * 1024 + 3, **marker)
    new_image(on_cloud, disk_bytes=1024 * 1024 + 3, **{"com.example.wave": "w-8"})

    result = transfer_images(
        BatchRequest(source_region="DFW", target_region="IAD", image_filter=marker)
    )

    assert [(o.source, o.status) for o in result.outcomes] == [(chosen, "succeeded")]


def test_fan_out_onto_a_missing_deployment_fails_before_any_image_starts(
    on_cloud: LocalCloud,
) -> None:
    image = new_image(on_cloud, disk_bytes=1024 * 1024 + 9)
    before = created(on_cloud)
    batch = BatchRequest(
        source_region="DFW",
        target_region="IAD",
        image_ids=(image,),
        run_as="deployment-runs",
        deployment="transfer-image/not-deployed",
    )

    with pytest.raises(ConfigurationError, match="no deployment transfer-image/not-deployed"):
        transfer_images(batch)
    assert created(on_cloud) == before  # no export, no import
