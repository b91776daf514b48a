"""Cancelling a fanned-out batch cancels the image runs it started: on a real server, through
a real process worker, with the copy slowed down so that the cancel lands in the middle of it.

The weekly batch deployment runs three images, two at a time, each a run of
``transfer-image/adhoc``; the exported segments are read through a proxy that holds every GET
6 s (one stream per image), so a copy takes about 42 s: long enough for the second image run's
copy to begin while the first one's is still under way, even when its process starts 30 s later
on a busy machine. Once both copies have begun the test cancels the batch the way an operator
does (``POST /flow_runs/<id>/set_state`` Cancelling, as ``prefect flow-run cancel``) and checks,
each within a bounded wait, that both image runs end Cancelled, that no process of theirs is
left, that every global-concurrency slot is free again, and what the batch's log and table say.
The local cloud runs each export before it answers its creation (the ``instant_jobs`` fixture),
so the image runs' first poll finds it done and no 30 s poll interval is waited on the real
clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.deployments.batches import batch_table, image_runs, start_weekly_batch
from tests.deployments.conftest import Operator, running_worker
from tests.deployments.expected import ADHOC
from tests.deployments.processes import (
    Api,
    Background,
    processes_of_flow_runs,
    wait_for,
)
from tests.flows.helpers import new_image
from tests.support.fault_proxy import Fault, FaultProxy

pytestmark = [pytest.mark.cloud, pytest.mark.deployment]

WORKER_NAME = "imagehop-cancel-worker"
#: The batch and its two image runs at once.
WORKER_LIMIT = 3
SEGMENT_DELAY_SECONDS = 6.0
#: Bounded waits: the copy to begin (worker start-up, pre-flight, the export), and
#: everything to settle after the cancel.
COPY_BEGINS_SECONDS = 150.0
SETTLE_SECONDS = 60.0
#: The image runs' slot leases, Prefect's minimum (the worker's runs inherit its environment).
#: A cancel that lands while a run's acquisition of a slot is on its way to the server leaves
#: that slot to its lease: Prefect 3.9 records a lease for its own clean-up only once the
#: server's answer arrives (``concurrency/_asyncio.py``), and the run has stopped by then. The
#: server's repossessor frees it within the lease plus two of its 15 s passes; every other slot
#: is released at once.
LEASE_SECONDS = 60
SLOTS_FREE_SECONDS = LEASE_SECONDS + 2 * 15 + 15
#: The limits the batch's runs hold, at 2 during the tests (created here if the server has
#: none, and deleted afterwards: test_process_pool's limits test expects to create them).
LIMITS = ("imagehop-export-DFW", "imagehop-copy-DFW-IAD", "imagehop-import-IAD")


@pytest.fixture(scope="module")
def worker(operator: Operator) -> Iterator[Background]:
    lease = {"IMAGEHOP_LIMIT_LEASE_SECONDS": str(LEASE_SECONDS)}
    with running_worker(operator, WORKER_NAME, limit=WORKER_LIMIT, **lease) as started:
        operator.deploy()
        yield started


@pytest.fixture
def limits(operator: Operator) -> Iterator[None]:
    """LIMITS at 2 for the test (two copies at once): created if missing and deleted
    afterwards, else set to 2 and put back."""
    api = operator.api
    held = {limit["name"]: limit["limit"] for limit in _limits(api)}
    made = [name for name in LIMITS if name not in held]
    kept = [name for name in LIMITS if name in held]
    for name in made:
        api.call("POST", "/v2/concurrency_limits/", {"name": name, "limit": 2})
    for name in kept:
        api.call("PATCH", f"/v2/concurrency_limits/{name}", {"limit": 2})
    yield
    for name in made:
        api.call("DELETE", f"/v2/concurrency_limits/{name}")
    for name in kept:
        api.call("PATCH", f"/v2/concurrency_limits/{name}", {"limit": held[name]})


def test_cancelling_a_batch_cancels_the_image_runs_it_started(
    operator: Operator, worker: Background, limits: None, instant_jobs: None
) -> None:
    api = operator.api
    images = [new_image(operator.cloud) for _ in range(3)]  # seven 1 MiB segments each
    with slow_copies(operator, images) as copies:
        batch, runs = start_until_copying(api, copies, images, max_parallel_transfers=2)
        assert [r["state_type"] for r in runs] == ["RUNNING", "RUNNING"], runs
        assert {r["deployment_id"] for r in runs} == {api.deployments()[ADHOC]["id"]}

        cancelled_at = time.monotonic()
        _cancel(api, batch)
        ended = _wait_cancelled(api, [batch, *(r["id"] for r in runs)])
        print(f"batch and image runs Cancelled {time.monotonic() - cancelled_at:.1f} s after")
        copied = copies.count()

    assert ended[batch]["state_type"] == "CANCELLED"
    assert copied < 2 * 7  # stopped mid-way: not every segment of the two images was read
    ids = [r["id"] for r in runs]
    wait_for("no process of the cancelled runs", lambda: not processes_of_flow_runs(ids), 30)
    worker.wait_for_its_runs(timeout=30)  # nothing of the batch either
    wait_for(
        "every slot free (at the latest once a lease expired)",
        lambda: not any(_active_slots(api).values()),
        SLOTS_FREE_SECONDS,
    )
    assert {r["state_type"] for r in image_runs(api, batch)} == {"CANCELLED"}  # no third run
    log = _batch_log(api, batch, "the batch was cancelled: cancelled 2 image run(s) it started")
    for run in runs:
        assert f"cancelled image run {run['name']} (flow run {run['id']}): it was Running" in log
    rows = {row["source"]: row for row in batch_table(api, batch)}
    assert [rows[i]["status"] for i in images] == ["cancelled"] * 3
    assert {rows[i]["flow run"] for i in images[:2]} == {r["name"] for r in runs}
    assert "before this image started" in rows[images[2]]["message"]


def test_cancelling_a_batch_of_subflows_stops_them_in_its_process(
    operator: Operator, worker: Background, limits: None, instant_jobs: None
) -> None:
    """``run_as: subflows``: the image runs are subflows in the batch's own process; they stop
    at their next wait or chunk and end Cancelled, and the process exits well before
    Prefect's 30 s kill (so every slot they held is released, not left to its lease)."""
    api = operator.api
    images = [new_image(operator.cloud) for _ in range(2)]
    with slow_copies(operator, images) as copies:
        batch, runs = start_until_copying(api, copies, images, run_as="subflows")
        assert [r["state_type"] for r in runs] == ["RUNNING", "RUNNING"], runs
        assert {r["deployment_id"] for r in runs} == {None}

        cancelled_at = time.monotonic()
        _cancel(api, batch)
        wait_for(
            "the batch's process to exit",
            lambda: not processes_of_flow_runs([batch]),
            SETTLE_SECONDS,
            interval=0.2,
        )
        exited = time.monotonic() - cancelled_at
        ended = _wait_cancelled(api, [batch, *(r["id"] for r in runs)])
        print(f"process gone {exited:.1f} s, all Cancelled {time.monotonic() - cancelled_at:.1f} s")
        copied = copies.count()

    assert exited < 25  # stopped by the batch, not killed after Prefect's 30 s grace
    assert copied < 2 * 7
    assert all("stopped: the batch" in (ended[r["id"]]["state"]["message"] or "") for r in runs)
    wait_for("every slot free", lambda: not any(_active_slots(api).values()), SETTLE_SECONDS)
    worker.wait_for_its_runs(timeout=30)
    log = _batch_log(api, batch, "the batch was cancelled: cancelled 2 image run(s) it started")
    for run in runs:
        assert f"cancelled image run {run['name']} (flow run {run['id']})" in log
    rows = {row["source"]: row for row in batch_table(api, batch)}
    assert [rows[i]["status"] for i in images] == ["cancelled"] * 2


@dataclass
class SlowCopies:
    proxy: FaultProxy
    segments: str  # the path pattern of the images' exported segments

    def count(self) -> int:
        """Segment GETs that reached the proxy."""
        return self.proxy.count("GET", self.segments)

    def begun(self, image: str) -> bool:
        """Whether a segment GET of ``image``'s copy reached the proxy."""
        return self.proxy.count("GET", exported_segments(image)) >= 1


def exported_segments(*images: str) -> str:
    """The path pattern of the exported segments of ``images``."""
    return rf"/({'|'.join(images)})\.vhd-\d+$"


@contextmanager
def slow_copies(operator: Operator, images: list[str]) -> Iterator[SlowCopies]:
    """DFW's Swift behind a proxy (in the catalog) that holds each segment GET of the
    images :data:`SEGMENT_DELAY_SECONDS`."""
    cloud = operator.cloud
    with (
        FaultProxy(cloud.info.region("DFW").storage_host) as proxy,
        cloud.admin.temporary_options(catalog_storage_hosts={"DFW": proxy.url}),
    ):
        segments = exported_segments(*images)
        proxy.add(Fault("GET", segments, delay_seconds=SEGMENT_DELAY_SECONDS, times=100))
        yield SlowCopies(proxy, segments)


def start_until_copying(
    api: Api, copies: SlowCopies, images: list[str], **fields: Any
) -> tuple[str, list[dict[str, Any]]]:
    """A run of the weekly batch (one stream per image, two images at a time), once the
    copies of the first two images have begun (their segment GETs reach the proxy), so that
    each image run holds its copy slot: the batch's id, its image runs."""
    began = time.monotonic()
    batch = start_weekly_batch(api, images, concurrency=1, **fields)
    wait_for(
        "the copies of the first two images to begin",
        lambda: all(copies.begun(image) for image in images[:2]) or _ended(api, batch),
        COPY_BEGINS_SECONDS,
        interval=0.2,
    )
    held = _active_slots(api)
    print(f"copying after {time.monotonic() - began:.1f} s; slots held {held}")
    assert held["imagehop-copy-DFW-IAD"] == 2, held  # two copies under way
    return batch, image_runs(api, batch)


def _cancel(api: Api, flow_run_id: str) -> None:
    """What ``prefect flow-run cancel`` and the UI's Cancel do: propose Cancelling."""
    answer = api.call(
        "POST", f"/flow_runs/{flow_run_id}/set_state", {"state": {"type": "CANCELLING"}}
    )
    assert answer["status"] == "ACCEPT", answer


def _wait_cancelled(api: Api, flow_run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The runs once every one is Cancelled (AssertionError naming their states if not
    within :data:`SETTLE_SECONDS`)."""
    runs: dict[str, dict[str, Any]] = {}

    def all_cancelled() -> bool:
        runs.update({i: api.flow_run(i) for i in flow_run_ids})
        return all(run["state_type"] == "CANCELLED" for run in runs.values())

    try:
        wait_for("the batch and its image runs Cancelled", all_cancelled, SETTLE_SECONDS)
    except AssertionError as error:
        states = {run["name"]: run["state_name"] for run in runs.values()}
        raise AssertionError(f"{error}: {states}") from None
    return runs


def _ended(api: Api, flow_run_id: str) -> bool:
    return api.flow_run(flow_run_id)["state_type"] in {"COMPLETED", "FAILED", "CRASHED"}


def _limits(api: Api) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.call("POST", "/v2/concurrency_limits/filter", {"limit": 200})
    return found


def _active_slots(api: Api) -> dict[str, int]:
    return {
        limit["name"]: limit["active_slots"] for limit in _limits(api) if limit["name"] in LIMITS
    }


def _batch_log(api: Api, flow_run_id: str, awaited: str) -> str:
    """The run's log lines, once one holds ``awaited`` (logs reach the API in batches)."""

    def text() -> str:
        body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
        return "\n".join(log["message"] for log in api.call("POST", "/logs/filter", body))

    return str(wait_for(f"{awaited!r} in the log", lambda: awaited in (t := text()) and t, 20))
