"""Steps between the regions: plan the copy, copy segments, write and verify the manifest.

Segment copies are never cached. Resume comes from the *target's* state, read fresh at every
run (:func:`find_finished_segments`: the segment exists with the planned size and a verified
ETag). A Prefect cache would instead remember that a segment was copied once, and could claim
a segment deleted since (a cleanup, an expired object, someone tidying the container): the
manifest would then reference a missing object. Reading the target costs one listing.
"""

from __future__ import annotations

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
from prefect import task
from prefect.runtime import task_run

from imagehop.errors import ImagehopError, IntegrityError, NotFoundError
from imagehop.procedure.request import segments_container, staged_object
from tasks import progress
from tasks.cloud import clients, clock
from tasks.policy import FRESH, RETRIES


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


@task(name="copy-segment", task_run_name="copy-segment-{index:05d}", **FRESH)
def copy_segment(
    plan: TransferPlan, index: int, source_region: str, target_region: str, copy_id: str
) -> SegmentResult | None:
    """Copy segment ``index`` of ``plan`` (ranged GETs from the source into one verified
    PUT). ``plan`` may be cut down to that segment (``flows.copy_segments.segment_plan``).

    One attempt per task try: the task's retries are the segment's retry layer, and each
    retry re-opens the source range (a stream is never replayed).

    Returns:
        The verified segment, or None when the copy was stopped before this segment started
        (another segment failed for good; a re-run resumes from what is in place).
    """
    counters = progress.copy_of(copy_id)
    if counters is not None and counters.aborted.is_set():
        return None
    c = clients()
    try:
        result = copy_one_segment(
            c.objects("source", source_region),
            c.objects("target", target_region),
            plan,
            next(spec for spec in plan.segments if spec.index == index),
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
    return result


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
