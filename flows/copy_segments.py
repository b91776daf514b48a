"""The ``copy-segments`` subflow: the segments of a plan as mapped Prefect tasks.

**Why segment tasks** (and not one task running the engine's thread pool): each segment is
visible in the UI as ``copy-segment-00042`` with its own state, duration and retries, and the
task's retries are the segment's single retry layer. The price is about 45 ms of
orchestration per task (measured: ``benchmarks/overhead.py``), so a plan of more than
:data:`MAX_SEGMENT_TASKS` segments gives each task a run of consecutive segments
(``copy-segments-00040-00047``): a 160 GB export of 1000 segments costs about 6 s of task
orchestration instead of 45 s (measured with 301 segments in 128 tasks: Prefect's whole
share of the run was 3.3 s; the Swift requests that grow with the segment count, such as
the manifest check and the bulk deletes, come on top).
Concurrency is the subflow's ``ThreadPoolTaskRunner``, sized from the request by the caller.

Progress: the segment tasks count bytes into a process-local
:class:`~imagehop.tasks.progress.CopyProgress`; this flow turns it into a Prefect progress artifact,
updated at most every :data:`PROGRESS_EVERY_SECONDS`. After the first segment that fails for
good, segments that have not started yet are skipped; those in flight finish (a re-run reuses
them), then the failure is raised.
"""

from __future__ import annotations

import time
from typing import cast
from uuid import UUID

from prefect import flow, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict

from imagehop.procedure.request import slug
from imagehop.tasks import progress
from imagehop.tasks.copy import copy_segment, find_finished_segments
from imagehop.transfer import SegmentResult, TransferPlan

PROGRESS_EVERY_SECONDS = 2.0
#: At most this many segment tasks per copy; a larger plan gives each task a run of
#: consecutive segments, so orchestration stays about MAX_SEGMENT_TASKS x 45 ms.
MAX_SEGMENT_TASKS = 128


class CopySummary(BaseModel):
    """Every segment of the plan in place, and what this run had to copy."""

    model_config = ConfigDict(frozen=True)

    results: tuple[SegmentResult, ...]
    segments_copied: int
    segments_skipped: int
    bytes_copied: int


class ProgressArtifact:
    """A Prefect progress artifact, updated no more often than every ``every`` seconds."""

    def __init__(self, key: str, description: str, start: float, every: float) -> None:
        created = create_progress_artifact(100 * start, key=key, description=description)
        self._id = cast(UUID, created)  # sync call: an id, not a coroutine
        self._every = every
        self._last_sent = time.monotonic()
        self._last_value = start

    def update(self, fraction: float, force: bool = False) -> None:
        due = time.monotonic() - self._last_sent >= self._every
        if fraction != self._last_value and (force or due):
            update_progress_artifact(self._id, 100 * fraction)
            self._last_sent, self._last_value = time.monotonic(), fraction


@flow(name="copy-segments", flow_run_name="copy-segments-{transfer}")
def copy_segments(
    plan: TransferPlan, source_region: str, target_region: str, transfer: str
) -> CopySummary:
    """Copy the segments of ``plan`` that the target does not have yet.

    Args:
        plan: the copy plan (pure data).
        source_region, target_region: where the bytes come from and go to.
        transfer: the run key (names the progress artifact and the progress events).

    Raises:
        The first segment's error once the segments in flight are done.
    """
    finished = find_finished_segments(target_region, plan)
    done = {result.index: result for result in finished}
    todo = [spec.index for spec in plan.segments if spec.index not in done]
    copy_id = str(flow_run.id or transfer)
    counters = progress.start_copy(
        copy_id,
        progress.CopyProgress(
            transfer,
            plan.size,
            len(plan.segments),
            bytes_done=sum(result.size for result in finished),
            segments_done=len(finished),
        ),
    )
    artifact = ProgressArtifact(
        f"copy-{slug(transfer)}",
        f"{plan.source.container}/{plan.source.name} -> {plan.target_container}/"
        f"{plan.target_object}: {len(todo)} of {len(plan.segments)} segments to copy",
        counters.fraction(),
        PROGRESS_EVERY_SECONDS,
    )
    try:
        futures = copy_segment.map(
            [segment_plan(plan, share) for share in shares(todo, MAX_SEGMENT_TASKS)],
            unmapped(source_region),
            unmapped(target_region),
            unmapped(copy_id),
        )
        _watch(list(futures), counters, artifact)
    finally:
        progress.end_copy(copy_id)
    copied = _collect(futures)
    return CopySummary(
        results=tuple(sorted([*done.values(), *copied], key=lambda result: result.index)),
        segments_copied=len(copied),
        segments_skipped=len(done),
        bytes_copied=sum(result.size for result in copied),
    )


def shares(indexes: list[int], tasks: int) -> list[list[int]]:
    """``indexes`` in at most ``tasks`` runs of consecutive items, as even as possible."""
    size = max(1, -(-len(indexes) // max(tasks, 1)))
    return [indexes[start : start + size] for start in range(0, len(indexes), size)]


def segment_plan(plan: TransferPlan, indexes: list[int]) -> TransferPlan:
    """The plan cut down to some segments (all a segment task needs). Prefect walks every
    task input; a whole plan per segment task would cost O(segments^2) (about 0.1 s per task
    for 640 segments)."""
    wanted = set(indexes)
    source = plan.source.model_copy(update={"segments": ()})
    segments = tuple(spec for spec in plan.segments if spec.index in wanted)
    return plan.model_copy(update={"source": source, "segments": segments})


def _watch(
    futures: list[PrefectFuture[list[SegmentResult]]],
    counters: progress.CopyProgress,
    artifact: ProgressArtifact,
) -> None:
    """Wait for every segment, updating the artifact; stop new segments after a failure."""
    pending = futures
    while pending:
        done, not_done = wait(pending, timeout=PROGRESS_EVERY_SECONDS)
        if any(_error_of(future) is not None for future in done):
            counters.aborted.set()
        pending = list(not_done)
        artifact.update(counters.fraction(), force=not pending)


def _collect(futures: list[PrefectFuture[list[SegmentResult]]]) -> list[SegmentResult]:
    """The copied segments; raises the first segment error (in segment order)."""
    results = []
    for future in futures:
        error = _error_of(future)
        if error is not None:
            raise error
        results += future.result()
    return results


def _error_of(future: PrefectFuture[list[SegmentResult]]) -> BaseException | None:
    value = future.result(raise_on_failure=False)
    return value if isinstance(value, BaseException) else None
