"""The ``transfer-image`` flow: "Transfer images between regions", one step after the other.

authenticate -> pre-flight -> snapshot (server) -> wait image active -> tag source -> ensure
containers -> export -> wait export -> plan -> copy segments -> manifest + verify -> import ->
wait import -> copy properties -> find by property -> boot + wait (optional) -> cleanup ->
summary.

A re-run with the same run key resumes: each create step finds what an earlier run left
(see :mod:`imagehop.procedure.steps`), finished segments are not copied again, and a transfer
whose target image is already tagged goes straight to the finishing steps. Create steps are
cached only together with their successful wait (one transaction each); a cached result that
names something deleted since is dropped and the cloud asked again.

Logs: the task runs log task ids and reuse decisions; the library's own lines (HTTP retries
with request ids, "export task ... started") reach the run's logs when the process runs with
``PREFECT_LOGGING_EXTRA_LOGGERS=imagehop`` (the ``imagehop`` CLI sets it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from prefect import State, Task, flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.transactions import transaction

from imagehop.errors import ApiError, NotFoundError
from imagehop.flows.copy_segments import CopySummary, copy_segments
from imagehop.procedure.estimate import dry_run_plan
from imagehop.procedure.preflight import PreflightReport
from imagehop.procedure.request import (
    TransferIdentity,
    TransferRequest,
    import_location,
    transfer_identity,
)
from imagehop.procedure.result import (
    DryRunPlan,
    PhaseTiming,
    PropertyReport,
    TransferResult,
)
from imagehop.procedure.steps import intermediates
from imagehop.tasks import limits, progress
from imagehop.tasks.checks import (
    find_finished_transfer,
    find_source_image,
    preflight,
    read_target_limits,
)
from imagehop.tasks.cleanup import delete_intermediates
from imagehop.tasks.cloud import clients, clock
from imagehop.tasks.copy import plan_copy, prepare_target, verify_copy, write_manifest
from imagehop.tasks.source import (
    ensure_container,
    snapshot_server,
    start_export,
    tag_source_image,
    wait_for_export,
    wait_for_image,
)
from imagehop.tasks.target import (
    boot_server,
    copy_properties,
    find_image_by_property,
    start_import,
    wait_for_import,
    wait_for_server,
)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class RunState:
    """What the run has done so far (phase timings, ids), for the result and for the log
    line that says what remains after a failure."""

    identity: TransferIdentity
    phases: list[PhaseTiming] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    source_image_id: str | None = None
    snapshot_created: bool = False
    export_task_id: str | None = None
    import_task_id: str | None = None
    target_image_id: str | None = None
    copy: CopySummary | None = None
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase and announce it to progress listeners (e.g. the CLI)."""
        run_key = self.identity.run_key
        progress.publish(progress.Event("phase-started", run_key, phase=name))
        began = time.perf_counter()
        try:
            yield
        except BaseException as error:
            progress.publish(progress.Event("phase-failed", run_key, phase=name, detail=str(error)))
            raise
        finally:
            self.phases.append(PhaseTiming(name=name, seconds=time.perf_counter() - began))
        seconds = self.phases[-1].seconds
        progress.publish(progress.Event("phase-finished", run_key, phase=name, seconds=seconds))


def _run_name() -> str:
    request = flow_run.parameters.get("request")
    if isinstance(request, dict):
        request = TransferRequest.model_validate(request)
    if not isinstance(request, TransferRequest):
        return "transfer-image"
    return (
        f"{request.source_region}-to-{request.target_region}-{request.source_kind}-"
        + (request.source_ref[:8])
    )


@flow(name="transfer-image", flow_run_name=_run_name, persist_result=True)
def transfer_image(request: TransferRequest) -> TransferResult | DryRunPlan:
    """Copy one image (or a new image of a server) to another region, verified and resumable.

    Returns a :class:`TransferResult`, or for ``dry_run`` a :class:`DryRunPlan` (nothing
    created or moved).

    Raises:
        PreflightError: the request cannot work (before any side effect).
        TaskFailedError: the export or import failed (the cloud's message plus advice).
        ImagehopError: any other failure; what remains for a re-run is logged.
    """
    logging.getLogger("imagehop").setLevel(logging.INFO)
    identity = transfer_identity(request, clock().time())
    run = RunState(identity)
    with run.phase("preflight"):
        report = preflight(request, identity)
    if request.dry_run:
        return _dry_run(request, identity, report)
    target_image_id = find_finished_transfer(request.target_region, identity, report.target_tenant)
    try:
        if target_image_id is not None:
            _already_transferred(request, report, run, target_image_id)
        else:
            _move_image(request, report, run)
        return _finish(request, report, run)
    except Exception:
        _log_remains(request, run)
        raise


# -- the procedure ---------------------------------------------------------------------------


def _move_image(request: TransferRequest, report: PreflightReport, run: RunState) -> None:
    """Source image -> export -> copy -> import."""
    with run.phase("snapshot" if request.server_id else "tag source"):
        run.source_image_id = _source_image(request, report, run)
    with run.phase("export"):
        location = _export(request, run)
    with run.phase("copy"):
        _copy(request, run, location)
    with run.phase("import"):
        run.target_image_id = _import(request, report, run)


def _source_image(request: TransferRequest, report: PreflightReport, run: RunState) -> str:
    """The image to export: the request's, or this run key's image of the server."""
    src = request.source_region
    image_id = request.image_id
    if image_id is None:
        name = _snapshot_name(request, report)

        def snapshot(refresh: bool) -> str:
            outcome, cached = _create(
                snapshot_server, refresh, src, request.server_id, name, run.identity,
                report.source_tenant,
            )  # fmt: skip
            wait_for_image("source", src, outcome.image_id)
            run.snapshot_created = outcome.created and not cached
            return outcome.image_id

        image_id = _cached_with_wait(snapshot, "snapshot")
        if not run.snapshot_created:
            run.reused.append("snapshot")
    tag_source_image(src, image_id, run.identity)
    return image_id


def _export(request: TransferRequest, run: RunState) -> str:
    """Export the source image to the export container; returns ``<container>/<object>``."""
    src = request.source_region
    image_id = run.source_image_id or ""
    ensure_container("source", src, request.export_container)

    def export(refresh: bool) -> str:
        outcome, cached = _create(start_export, refresh, src, image_id, request.export_container)
        location = wait_for_export(src, outcome)
        run.export_task_id = outcome.task_id
        _note_reuse(run, outcome.reused or ("export task" if cached else None))
        return location

    with limits.region_slot("export", src):
        return _cached_with_wait(export, "export")


def _copy(request: TransferRequest, run: RunState, location: str) -> None:
    """Plan, copy the missing segments (a subflow), write and verify the SLO manifest."""
    src, dst = request.source_region, request.target_region
    plan = plan_copy(src, dst, location, run.source_image_id or "", request.import_container)
    prepare_target(dst, plan)
    workers = request.concurrency or clients().settings().transfer_concurrency
    runner = ThreadPoolTaskRunner(max_workers=workers)
    run.copy = copy_segments.with_options(task_runner=runner)(plan, src, dst, run.identity.run_key)
    write_manifest(dst, plan, list(run.copy.results))
    verify_copy(dst, plan)


def _import(request: TransferRequest, report: PreflightReport, run: RunState) -> str:
    """Import the staged copy in the target region; returns the new image's id."""
    dst = request.target_region
    location = import_location(request.import_container, run.source_image_id or "")
    name = request.target_image_name or _source_name(request, report)

    def import_(refresh: bool) -> str:
        outcome, cached = _create(
            start_import, refresh, dst, location, name, run.identity, report.target_tenant
        )
        image_id = wait_for_import(dst, outcome)
        run.import_task_id = outcome.task_id
        _note_reuse(run, outcome.reused or ("import task" if cached else None))
        return image_id

    with limits.region_slot("import", dst):
        return _cached_with_wait(import_, "import")


def _already_transferred(
    request: TransferRequest, report: PreflightReport, run: RunState, target_image_id: str
) -> None:
    """An earlier run finished the move: only the finishing steps are left."""
    get_run_logger().info(
        "image %s in %s already carries run key %s: nothing to export, copy or import",
        target_image_id,
        request.target_region,
        run.identity.run_key,
    )
    run.reused.append("transferred image")
    run.target_image_id = target_image_id
    run.source_image_id = request.image_id or find_source_image(
        request.source_region, run.identity, report.source_tenant
    )


def _finish(request: TransferRequest, report: PreflightReport, run: RunState) -> TransferResult:
    """Properties -> find by property -> boot (optional) -> cleanup -> summary."""
    src, dst = request.source_region, request.target_region
    target_image_id = run.target_image_id or ""
    with run.phase("properties"):
        properties = PropertyReport()
        if run.source_image_id is not None:
            properties = copy_properties(
                src,
                run.source_image_id,
                dst,
                target_image_id,
                request.properties_to_copy,
                run.identity,
            )
        _check_found(dst, target_image_id, run.identity, report.target_tenant)
    server_id = None
    if request.boot is not None and report.boot_flavor is not None:
        with run.phase("boot"):
            server_id = _boot(request, report, run, target_image_id)
    with run.phase("cleanup"):
        cleaned, remaining = _cleanup(request, run)
    result = _result(request, report, run, properties, server_id, cleaned, remaining)
    create_table_artifact(
        result.summary_rows(),
        key=f"transfer-{run.identity.slug}",
        description=f"transfer-image {src} -> {dst}: image {target_image_id}",
    )
    return result


def _check_found(region: str, image_id: str, identity: TransferIdentity, owner: str) -> None:
    """The runbook's last lookup must find the new image by its coordinating property."""
    found = find_image_by_property(region, identity, owner)
    if image_id not in found:
        raise ApiError(
            f"image {image_id} in {region} is not listed by "
            f"{identity.coordinating_key}={identity.coordinating_value} (found: {found}); "
            "the property filter of the images list does not see the tag"
        )


def _boot(request: TransferRequest, report: PreflightReport, run: RunState, image_id: str) -> str:
    dst = request.target_region
    boot = request.boot
    flavor = report.boot_flavor
    assert boot is not None and flavor is not None
    name = boot.name or request.target_image_name or _source_name(request, report)

    def boot_and_wait(refresh: bool) -> str:
        server_id, _ = _create(boot_server, refresh, dst, image_id, name, flavor.id, run.identity)
        wait_for_server(dst, server_id)
        return server_id

    return _cached_with_wait(boot_and_wait, "boot")


def _cleanup(request: TransferRequest, run: RunState) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(what was deleted, what remains) under the request's cleanup policy."""
    if run.source_image_id is None:
        return (), ()
    if request.cleanup == "keep":
        return (), tuple(_intermediates(request, run.source_image_id))
    deleted = delete_intermediates(
        request.source_region,
        request.target_region,
        request.export_container,
        request.import_container,
        run.source_image_id,
    )
    return deleted, ()


def _result(
    request: TransferRequest,
    report: PreflightReport,
    run: RunState,
    properties: PropertyReport,
    server_id: str | None,
    cleaned: tuple[str, ...],
    remaining: tuple[str, ...],
) -> TransferResult:
    copy = run.copy
    return TransferResult(
        run_key=run.identity.run_key,
        source_region=request.source_region,
        target_region=request.target_region,
        source_image_id=run.source_image_id or "",
        target_image_id=run.target_image_id or "",
        coordinating_property={run.identity.coordinating_key: run.identity.coordinating_value},
        snapshot_created=run.snapshot_created,
        export_task_id=run.export_task_id,
        import_task_id=run.import_task_id,
        reused=tuple(dict.fromkeys(run.reused)),
        bytes_total=sum(r.size for r in copy.results) if copy else 0,
        bytes_copied=copy.bytes_copied if copy else 0,
        segments_total=len(copy.results) if copy else 0,
        segments_copied=copy.segments_copied if copy else 0,
        segments_skipped=copy.segments_skipped if copy else 0,
        properties=properties,
        server_id=server_id,
        flavor_id=report.boot_flavor.id if server_id and report.boot_flavor else None,
        cleaned_up=cleaned,
        remaining=remaining,
        phases=tuple(run.phases),
        seconds=time.perf_counter() - run.started,
    )


# -- helpers ---------------------------------------------------------------------------------


def _cached_with_wait(step: Callable[[bool], T], what: str) -> T:
    """Run a create step and its wait as one transaction, so the create step's cache entry
    is only written once the wait succeeded. ``step(refresh)`` runs both.

    If that fails with NotFoundError, a cached result may name something deleted since
    (e.g. the copy in the target was deleted, and the same request runs again): the pair
    runs once more, bypassing the cache, so the cloud's state decides.
    """
    try:
        with transaction():
            return step(False)
    except NotFoundError as error:
        get_run_logger().warning("%s: %s; asking the cloud again, not the cache", what, error)
        with transaction():
            return step(True)


def _create(step: Task[..., R], refresh: bool, *args: Any) -> tuple[R, bool]:
    """Run a cached create step (ignoring its cache when ``refresh``; otherwise Prefect's
    cache setting decides); returns its result and whether that came from the cache."""
    task = step.with_options(refresh_cache=True) if refresh else step
    state = cast(State[R], task(*args, return_state=True))
    return state.result(), state.name == "Cached"


def _note_reuse(run: RunState, what: str | None) -> None:
    if what:
        run.reused.append(what)


def _dry_run(
    request: TransferRequest, identity: TransferIdentity, report: PreflightReport
) -> DryRunPlan:
    settings = clients().settings()
    plan = dry_run_plan(
        request,
        identity,
        report,
        read_target_limits(request.target_region),
        settings.segment_size_bytes,
        request.concurrency or settings.transfer_concurrency,
    )
    create_table_artifact(
        plan.summary_rows(),
        key=f"plan-{identity.slug}",
        description=f"dry run of transfer-image {request.source_region} -> "
        f"{request.target_region}: nothing was created",
    )
    return plan


def _source_name(request: TransferRequest, report: PreflightReport) -> str:
    if report.source.image is not None:
        return report.source.image.name or report.source.image.id
    return _snapshot_name(request, report)


def _snapshot_name(request: TransferRequest, report: PreflightReport) -> str:
    if request.target_image_name:
        return request.target_image_name
    server = report.source.server
    day = datetime.fromtimestamp(clock().time(), UTC).date().isoformat()
    return f"{server.name if server else request.server_id}-{day}"


def _intermediates(request: TransferRequest, source_image_id: str) -> list[str]:
    return intermediates(
        request.source_region,
        request.target_region,
        request.export_container,
        request.import_container,
        source_image_id,
    )


def _log_remains(request: TransferRequest, run: RunState) -> None:
    """After a failure: say what stays in place for a re-run, and how to remove it instead
    (in the run's log, and to progress listeners such as the CLI)."""
    if run.source_image_id is None:
        remains = "the transfer failed before the export: nothing is left in Cloud Files"
    else:
        kept = " | ".join(_intermediates(request, run.source_image_id))
        remains = (
            f"the transfer failed; kept for a re-run with run key {run.identity.run_key!r} "
            f"(same request): {kept}"
        )
    get_run_logger().error(remains)
    progress.publish(progress.Event("run-failed", run.identity.run_key, detail=remains))
