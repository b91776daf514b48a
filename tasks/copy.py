"""Steps between the regions: plan the copy, copy segments, write and verify the manifest.

Segment copies are never cached. Resume comes from the *target's* state, read fresh at every
run (:func:`find_finished_segments`: the segment exists with the planned size and a verified
ETag). A Prefect cache would instead remember that a segment was copied once, and could claim
a segment deleted since (a cleanup, an expired object, someone tidying the container): the
manifest would then reference a missing object. Reading the target costs one listing.
"""

from __future__ import annotations

from prefect import task
from prefect.runtime import task_run

from imagehop.errors import ImagehopError, IntegrityError, NotFoundError
from imagehop.object_store import ObjectStore
from imagehop.procedure.request import segments_container, staged_object
from imagehop.tasks import progress
from imagehop.tasks.cloud import clients, clock
from imagehop.tasks.policy import FRESH, RETRIES
from imagehop.transfer import (
    SegmentResult,
    TransferPlan,
    discover_source,
    plan_transfer,
    verify_target,
)
from imagehop.transfer import copy_segment as copy_one_segment
from imagehop.transfer import find_finished_segments as finished_segments
from imagehop.transfer import prepare_target as prepare
from imagehop.transfer import write_manifest as put_manifest


@task(name="plan-copy", task_run_name="plan-copy-{source_image_id:.8}", **FRESH)
def plan_copy(
    source_region: str,
    target_region: str,
    location: str,
    source_image_id: str,
    import_container: str,
) -> TransferPlan:
    """List the exported VHD's segments and plan the target SLO (pure data, no secrets).

    Raises:
        SourceIncompleteError: the DLO listing has not caught up (retried).
        NotFoundError: the exported VHD is not there.
    """
    c = clients()
    container, _, name = location.partition("/")
    layout = discover_source(
        c.objects("source", source_region), container, name, sleep=clock().sleep
    )
    target = c.objects("target", target_region)
    return plan_transfer(
        layout,
        target.limits(),
        import_container,
        staged_object(source_image_id),
        c.settings().segment_size_bytes,
        segments_container(import_container),
    )


@task(name="prepare-target", task_run_name="prepare-target-{region}", **FRESH)
def prepare_target(region: str, plan: TransferPlan) -> None:
    """Create the staging container and its segments container in the target."""
    prepare(clients().objects("target", region), plan)


@task(name="find-finished-segments", task_run_name="find-finished-segments", **FRESH)
def find_finished_segments(region: str, plan: TransferPlan) -> list[SegmentResult]:
    """Segments an earlier run already put in place and verified (read from the target)."""
    settings = clients().settings()
    store = clients().objects("target", region)
    return finished_segments(store, plan, settings.transfer_concurrency)


def _copy_run_name() -> str:
    """``copy-segment-00042``, or ``copy-segments-00040-00047`` for a run of segments."""
    plan: TransferPlan = task_run.parameters["plan"]
    first, last = plan.segments[0].index, plan.segments[-1].index
    return f"copy-segment-{first:05d}" if first == last else f"copy-segments-{first:05d}-{last:05d}"


@task(name="copy-segment", task_run_name=_copy_run_name, **FRESH)
def copy_segment(
    plan: TransferPlan, source_region: str, target_region: str, copy_id: str
) -> list[SegmentResult]:
    """Copy the segments of ``plan`` (usually one: ``copy_segments.segment_plan`` cuts the
    plan down to a task's share), each by ranged GETs from the source into one verified PUT.

    One attempt per segment per task try: the task's retries are the segment's retry layer;
    a retry re-opens the source ranges (a stream is never replayed) and skips segments the
    earlier try finished (read from the target).

    Returns:
        The verified segments; fewer than planned when the copy was stopped because another
        segment failed for good (a re-run resumes from what is in place).
    """
    counters = progress.copy_of(copy_id)
    c = clients()
    source, target = c.objects("source", source_region), c.objects("target", target_region)
    results = _finished_by_earlier_try(target, plan)
    for spec in plan.segments:
        if counters is not None and counters.aborted.is_set():
            break
        if spec.index in results:
            continue
        try:
            results[spec.index] = copy_one_segment(
                source,
                target,
                plan,
                spec,
                chunk_size=c.settings().chunk_size_bytes,
                attempts=1,
                on_bytes=counters.add_bytes if counters is not None else None,
            )
        except Exception as error:
            if counters is not None and _final(error):
                counters.aborted.set()  # segments that have not started are skipped
            raise
        if counters is not None:
            counters.add_segment()
    return [results[index] for index in sorted(results)]


def _finished_by_earlier_try(target: ObjectStore, plan: TransferPlan) -> dict[int, SegmentResult]:
    if (task_run.run_count or 1) <= 1:
        return {}
    done = finished_segments(target, plan, 1)
    return {result.index: result.model_copy(update={"copied": True}) for result in done}


def _final(error: Exception) -> bool:
    """Whether this failure ends the segment (not retryable, or the last try)."""
    retryable = isinstance(error, ImagehopError) and error.retryable
    return not retryable or (task_run.run_count or 1) > RETRIES


@task(name="write-manifest", task_run_name="write-manifest-{region}", **FRESH)
def write_manifest(region: str, plan: TransferPlan, results: list[SegmentResult]) -> str:
    """PUT the SLO manifest (Swift checks every segment's size and ETag); returns its ETag.

    A manifest an earlier run wrote that still matches the plan is left as it is, so the
    staged object keeps its timestamp (which tells imports of it from older ones).
    """
    store = clients().objects("target", region)
    try:
        return verify_target(store, plan).etag
    except (NotFoundError, IntegrityError):
        return put_manifest(store, plan, results)


@task(name="verify-copy", task_run_name="verify-copy-{region}", **FRESH)
def verify_copy(region: str, plan: TransferPlan) -> int:
    """Compare the written object with the plan (size, segments, ETags); returns its size.

    Raises:
        IntegrityError: any difference (not retried).
    """
    return verify_target(clients().objects("target", region), plan).size
