"""Between the regions: plan the copy, then copy it (one task running the engine).

**One copy orchestrator.** ``copy-segments`` is one Prefect task that runs the engine's
:func:`~imagehop.transfer.copy_plan`: its worker threads, its stop rule (after the first
failed segment no new one starts, those in flight finish), its per-segment retries and its
resume check. Progress goes through the engine's callback to the watchers
(:class:`~imagehop.tasks.progress.CopyWatch`: the CLI's bar, a progress artifact on the
``transfer-image`` run).

**Resume, not cache.** The copy is never cached: resume comes from the *target's* state, read
at every run (a segment counts once it exists with the planned size and a verified ETag). A
Prefect cache would remember that a segment was copied once, and could claim one deleted since
(a cleanup, an expired object, someone tidying the container): the manifest would then name a
missing object. Reading the target costs one listing. A retry of the task (an error no lower
layer retried, e.g. the listing) resumes the same way.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.runtime import task_run

from imagehop.procedure.request import (
    EXPORT_DISK_FORMAT,
    Clouds,
    segments_container,
    staged_object,
)
from imagehop.tasks import limits
from imagehop.tasks.cloud import clients, clock, raise_if_stopped
from imagehop.tasks.policy import FRESH
from imagehop.tasks.progress import CopyWatch
from imagehop.transfer import (
    Progress,
    SourceLayout,
    TransferPlan,
    TransferReport,
    copy_plan,
    discover_source,
    find_finished_segments,
    plan_transfer,
)

#: Segments in place when a copy task run's first try began, by task run id: a retry counts
#: the ones its earlier tries copied as copied by this run (process-local; Prefect retries a
#: task in the same process).
_in_place_at_first_try: dict[str, set[int]] = {}


@task(name="plan-copy", task_run_name="plan-copy-{source_image_id:.8}", **FRESH)
def plan_copy(
    source_region: str,
    target_region: str,
    location: str,
    source_image_id: str,
    import_container: str,
    segments_in: str | None = None,
    *,
    clouds: Clouds,
) -> TransferPlan:
    """List the exported VHD's segments and plan the target SLO (pure data, no secrets);
    its segments go to ``segments_in`` (default: the import container's ``_segments``).

    Raises:
        SourceIncompleteError: the DLO listing has not caught up (retried).
        NotFoundError: the exported VHD is not there.
    """
    c = clients(clouds)
    container, _, name = location.partition("/")
    layout = discover_source(
        c.objects("source", source_region), container, name, sleep=clock().sleep
    )
    staged = staged_object(source_image_id, EXPORT_DISK_FORMAT)  # an export is a VHD
    return plan_staged_copy(
        layout, target_region, import_container, staged, segments_in, clouds=clouds
    )


def plan_staged_copy(
    layout: SourceLayout,
    target_region: str,
    import_container: str,
    staged: str,
    segments_in: str | None = None,
    *,
    clouds: Clouds,
) -> TransferPlan:
    """The plan of ``layout``'s copy to the staged object ``staged``
    (:func:`~imagehop.procedure.request.staged_object`) in the target's import container
    (segments in ``segments_in``, default its ``_segments``)."""
    c = clients(clouds)
    return plan_transfer(
        layout,
        c.objects("target", target_region).limits(),
        import_container,
        staged,
        c.settings().segment_size_bytes,
        segments_in or segments_container(import_container),
    )


@task(name="copy-segments", task_run_name="copy-segments-{target_region}", **FRESH)
def copy_segments(
    plan: TransferPlan,
    source_region: str,
    target_region: str,
    transfer: str,
    concurrency: int | None = None,
    *,
    clouds: Clouds,
) -> TransferReport:
    """Copy the plan's missing segments with ``concurrency`` streams, write the SLO manifest
    and verify it against the plan (size, segments, ETags), holding a slot of the region
    pair's copy limit meanwhile (:mod:`imagehop.tasks.limits`).

    Args:
        transfer: the run key (names the progress artifact and the progress events).
        concurrency: streams at once; None: adaptive, capped by the settings' per-region
            stream caps (and memory); the run log says what it settled on.

    Raises:
        IntegrityError: bytes or the written object did not verify (not retried).
        ImagehopError: the first segment error, once the segments in flight are done.
    """
    c = clients(clouds)
    target = c.objects("target", target_region)
    # a Glance image's data (``.../file``), else the exported VHD in the source's Swift
    glance = plan.source.kind == "glance"
    source = c.glance("source", source_region) if glance else c.objects("source", source_region)
    with limits.copy_slot(source_region, target_region):
        settings = c.settings()
        finished = find_finished_segments(target, plan, concurrency or 4)
        run_id = str(task_run.id)
        in_place = _in_place_at_first_try.setdefault(run_id, {r.index for r in finished})
        in_place_bytes = sum(result.size for result in finished)
        with CopyWatch(
            transfer, plan.size, len(plan.segments), in_place_bytes, len(finished)
        ) as watch:
            report = copy_plan(
                source,
                target,
                plan,
                concurrency,
                progress=_stoppable(watch.on_progress),
                chunk_size=settings.chunk_size_bytes,
                sleep=clock().sleep,
                finished=finished,
                stream_cap=settings.stream_cap(source_region, target_region),
            )
            watch.finished(report)
        _log_streams(report)
        _in_place_at_first_try.pop(run_id, None)
        copied_by_earlier_tries = {r.index for r in finished} - in_place
        return report.counting_as_copied(copied_by_earlier_tries)


def _stoppable(progress: Progress) -> Progress:
    """``progress``, raising StoppedError once the process is told to stop: every stream
    stops at its next chunk (what is verified in the target stays for a re-run)."""

    def checked(*counts: int) -> None:
        raise_if_stopped()
        progress(*counts)

    return checked


def _log_streams(report: TransferReport) -> None:
    """One run-log line: the stream count the copy ran with (and how an adaptive one got
    there)."""
    if not report.streams_adaptive:
        get_run_logger().info("copied with %d streams (fixed)", report.streams)
        return
    path = " -> ".join(str(change.streams) for change in report.stream_changes)
    get_run_logger().info(
        "copied with %d streams (adaptive: %s; %s)",
        report.streams,
        path,
        report.stream_changes[-1].reason if report.stream_changes else "no samples",
    )
