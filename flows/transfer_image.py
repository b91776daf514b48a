"""The ``transfer-image`` flow: the cloud's runbook "Transfer images between regions", a line
per step.

In the source region: image the server (or take the given image), tag it with the
coordinating property, ensure the export container, export it and wait. Between the regions:
copy the exported VHD's segments. In the target region: import and wait, tag the new image,
find it by the property, boot a server from it (optional); then clean up.

A re-run with the same run key resumes: each create step finds what an earlier run left
(:mod:`imagehop.procedure.steps`), segments already in the target are not copied again, and
a transfer whose new image is already tagged goes straight to the finishing steps. Create
steps are cached only together with their successful wait
(:mod:`imagehop.tasks.create_then_wait`).

Logs: a line as each phase starts and ends; the task runs log task ids and reuse decisions;
the library's own lines (each create call with the cloud's request id, HTTP retries) reach the
run's logs when the process runs with ``PREFECT_LOGGING_EXTRA_LOGGERS=imagehop`` (the
``imagehop`` CLI and the deployments in ``deployments/prefect.yaml`` set it). A pre-flight
refusal is one line and the run's state message, without a traceback.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TypeVar, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run
from prefect.states import Cancelled
from pydantic import BaseModel, ConfigDict

from imagehop.errors import StoppedError
from imagehop.procedure.estimate import dry_run_plan
from imagehop.procedure.preflight import PreflightReport
from imagehop.procedure.request import (
    EXPORT_DISK_FORMAT,
    Clouds,
    TransferIdentity,
    TransferRequest,
    import_location,
    new_image_name,
    server_name,
    snapshot_name,
    staged_object,
    transfer_identity,
)
from imagehop.procedure.result import DryRunPlan, PropertyReport, TransferResult
from imagehop.procedure.steps import intermediates
from imagehop.procedure.transport import TransportChoice, segments_for
from imagehop.tasks import events
from imagehop.tasks.checks import (
    find_finished_transfer,
    find_source_image,
    preflight,
    read_target_limits,
)
from imagehop.tasks.cleanup import delete_intermediates
from imagehop.tasks.cloud import clients, clock
from imagehop.tasks.copy import copy_segments, plan_copy
from imagehop.tasks.glance import (
    create_target_image,
    glance_import_and_wait,
    plan_copy_from_image,
    source_disk_format,
    verify_target_image,
)
from imagehop.tasks.progress import Event, Phases, publish
from imagehop.tasks.refusals import REFUSALS, Refusal, quiet_refusal_tracebacks, refused
from imagehop.tasks.source import (
    ensure_container,
    export_and_wait,
    image_the_server,
    tag_source_image,
)
from imagehop.tasks.target import (
    boot_and_wait,
    find_image_by_property,
    import_and_wait,
    tag_new_image,
)
from imagehop.transfer import TransferPlan, TransferReport

M = TypeVar("M", bound=BaseModel)

quiet_refusal_tracebacks()  # before a deployment run's engine starts


class Moved(BaseModel):
    """The image is in the target region: what the moving steps did (or found done)."""

    model_config = ConfigDict(frozen=True)

    source_image_id: str | None  # None: a re-run found the new image, no longer the source
    target_image_id: str
    snapshot_created: bool = False
    export_task_id: str | None = None
    import_task_id: str | None = None
    reused: tuple[str, ...] = ()
    copied: TransferReport | None = None
    #: The staged object in the target (None: nothing staged, or not known: the source is gone)
    staged_object: str | None = None


#: The Greek letters the UI's run form starts its suggested names with.
GREEK_LETTERS = (
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
    "psi", "omega",
)  # fmt: skip
#: Names Prefect makes up: the server's ``adjective-animal`` (``crimson-otter``, schedules and
#: direct calls) and the UI run forms' suggestions: the old UI's Greek letter, maybe digits,
#: and a star name (``pi870-canis-majoris``, ``alpha-ceti-nebula``), the new UI's capitalized
#: ``Sleek-Tuna``.
GENERATED_NAME = re.compile(
    rf"[a-z]+-[a-z]+|(?:{'|'.join(GREEK_LETTERS)})\d*-[a-z][a-z-]*", re.IGNORECASE
)


def given_run_name() -> str | None:
    """The name the run was given (e.g. typed into the UI's run form), or None when Prefect
    made one up. A name of a generated shape (:data:`GENERATED_NAME`) counts as made up:
    the API keeps no other trace of who named a run, so such a typed name is replaced too."""
    name = flow_run.name
    return None if not name or GENERATED_NAME.fullmatch(name) else str(name)


def run_name(
    parameter: str, model: type[M], describe: Callable[[M], str], fallback: str
) -> Callable[[], str]:
    """A ``flow_run_name``: the name the run was given, else ``describe`` of the run's
    ``parameter`` (a ``model``), else ``fallback``."""

    def name() -> str:
        given = given_run_name()
        if given is not None:
            return given
        value = flow_run.parameters.get(parameter)
        if isinstance(value, dict):
            value = model.model_validate(value)
        return describe(value) if isinstance(value, model) else fallback

    return name


def _what_moves_where(request: TransferRequest) -> str:
    """``DFW-to-IAD-image-4f1c2a0b``."""
    return (
        f"{request.source_region}-to-{request.target_region}-{request.source_kind}-"
        + request.source_ref[:8]
    )


_run_name = run_name("request", TransferRequest, _what_moves_where, "transfer-image")


@flow(name="transfer-image", flow_run_name=_run_name, persist_result=True)
def transfer_image(request: TransferRequest) -> TransferResult | DryRunPlan:
    """Copy one image (or a new image of a server) to another region, verified and resumable.

    Returns a :class:`TransferResult`, or for ``dry_run`` a :class:`DryRunPlan` (nothing
    created or moved). A finished transfer emits the event ``imagehop.image.copied``, a
    failed or refused one ``imagehop.image.copy-failed`` (:mod:`imagehop.tasks.events`).

    A run told to stop (its batch, whose subflow it is, was cancelled:
    :func:`imagehop.tasks.cloud.stop`) ends Cancelled, what it made kept for a re-run.

    Raises:
        PreflightError: the request cannot work (before any side effect); the run ends
            Failed with the reason as its message, logged in one line without a traceback
            (:mod:`imagehop.tasks.refusals`). So do AuthenticationError and
            ConfigurationError met in pre-flight.
        TaskFailedError: the export or import failed (the cloud's message plus advice).
        ImagehopError: any other failure; what remains for a re-run is logged.
    """
    logging.getLogger("imagehop").setLevel(logging.INFO)
    quiet_refusal_tracebacks()
    identity = transfer_identity(request, clock().time())
    try:
        return _checked_and_transferred(request, identity)
    except StoppedError as error:
        # A Cancelled state, as the batch's cancel asked; calling the flow raises CancelledRun.
        return cast(TransferResult, Cancelled(message=f"stopped: {error}"))


def _checked_and_transferred(
    request: TransferRequest, identity: TransferIdentity
) -> TransferResult | DryRunPlan:
    phases = Phases(identity.run_key)
    try:
        with phases("preflight"):
            report = _accepted(preflight(request, identity))
    except REFUSALS as error:
        events.copy_failed(request, identity.run_key, error)
        # A Failed state, not an exception: calling the flow still raises the error.
        return cast(TransferResult, refused(error))
    if request.dry_run:
        return _dry_run(request, identity, report)
    try:
        result = _transfer(request, identity, report, phases)
    except Exception as error:
        if not isinstance(error, StoppedError):
            events.copy_failed(request, identity.run_key, error)
        raise
    events.copied(result)
    return result


def _transfer(
    request: TransferRequest, identity: TransferIdentity, report: PreflightReport, phases: Phases
) -> TransferResult:
    """Move the image (unless an earlier run did), then the finishing steps."""
    owner = report.target_tenant
    done = find_finished_transfer(
        request.target_region, identity, owner, request.image_id, clouds=request.clouds
    )
    if done is not None:
        moved = _moved_before(request, identity, report, done)
    else:
        moved = _move(request, identity, report, phases)
    return _finish(request, identity, report, phases, moved)


def _move(
    request: TransferRequest, identity: TransferIdentity, report: PreflightReport, phases: Phases
) -> Moved:
    """The runbook's moving steps, source region -> between the regions -> target region."""
    src, dst, owner = request.source_region, request.target_region, report.target_tenant
    source_id, snapshot, staged, clouds = request.image_id, None, None, request.clouds
    try:
        with phases("snapshot" if request.server_id else "tag source"):
            if request.server_id is not None:
                name = snapshot_name(request, _server_name_of(report), clock().time())
                snapshot = image_the_server(
                    src, request.server_id, name, identity, report.source_tenant, clouds=clouds
                )
                source_id = snapshot.image_id
            assert source_id is not None  # a request names an image or a server
            tag_source_image(src, source_id, identity, clouds=clouds)
        if report.transport.transport != "rackspace-tasks":
            staged = _staged_name(report.transport, src, source_id, clouds)
            moved = _move_openstack(request, identity, report, phases, source_id, staged)
            reused = ("snapshot",) if snapshot and not snapshot.created else ()
            made = bool(snapshot and snapshot.created)
            return moved.model_copy(
                update={"snapshot_created": made, "reused": reused + moved.reused}
            )
        with phases("export"):
            staged = staged_object(source_id, EXPORT_DISK_FORMAT)
            ensure_container("source", src, request.export_container, clouds=clouds)
            export = export_and_wait(src, source_id, request.export_container, clouds=clouds)
        with phases("copy"):
            plan = plan_copy(
                src, dst, export.location, source_id, request.import_container, clouds=clouds
            )
            copy = _copy(plan, request, identity)
        with phases("import"):
            location = import_location(request.import_container, source_id)
            name = new_image_name(request, _source_name(request, report))
            imported = import_and_wait(
                dst, location, name, identity, owner, source_id, clouds=clouds
            )
    except (Exception, TerminationSignal) as error:  # TerminationSignal: the run is cancelled
        _log_remains(request, identity, source_id, staged, report.transport, error)
        raise
    reused = ("snapshot" if snapshot and not snapshot.created else None, export.reused,
              imported.reused)  # fmt: skip
    return Moved(
        source_image_id=source_id,
        target_image_id=imported.image_id or "",
        snapshot_created=bool(snapshot and snapshot.created),
        export_task_id=export.task_id,
        import_task_id=imported.task_id,
        reused=tuple(what for what in reused if what),
        copied=copy,
        staged_object=staged,
    )


def _move_openstack(
    request: TransferRequest,
    identity: TransferIdentity,
    report: PreflightReport,
    phases: Phases,
    source_id: str,
    staged: str | None,
) -> Moved:
    """The moving steps when a side is OpenStack Glance: the bytes by the transport pre-flight
    chose (:mod:`imagehop.procedure.transport`), staged as ``staged`` (None: nothing staged),
    then the new image checked against the source."""
    choice, src, dst, owner = (
        report.transport,
        request.source_region,
        request.target_region,
        report.target_tenant,
    )
    copy, export, container, clouds = None, None, request.import_container, request.clouds
    segments = _segments_in(request, choice)
    if choice.source_export:
        with phases("export"):
            ensure_container("source", src, request.export_container, clouds=clouds)
            export = export_and_wait(src, source_id, request.export_container, clouds=clouds)
        with phases("copy"):
            located = (export.location, source_id, container, segments)
            plan = plan_copy(src, dst, *located, clouds=clouds)
            copy = _copy(plan, request, identity)
    elif choice.stages_segments:
        assert staged is not None  # named by _staged_name for every staging transport
        with phases("copy"):
            plan = plan_copy_from_image(
                src, dst, source_id, container, staged, segments, clouds=clouds
            )
            copy = _copy(plan, request, identity)
    name = new_image_name(request, _source_name(request, report))
    size = copy.plan.size if copy is not None else None
    with phases("import"):
        if choice.target_import == "import-task":
            location = import_location(request.import_container, source_id)
            imported = import_and_wait(
                dst, location, name, identity, owner, source_id, clouds=clouds
            )
            return Moved(source_image_id=source_id, target_image_id=imported.image_id or "",
                         import_task_id=imported.task_id, reused=_reused(imported.reused),
                         copied=copy, staged_object=staged)  # fmt: skip
        formats = (choice.disk_format, choice.container_format)
        target = create_target_image(dst, name, identity, owner, src, source_id, formats,
                                     report.source.min_disk, report.source.min_ram,
                                     clouds=clouds)  # fmt: skip
        staged_at = (request.import_container, staged or "", size or 0)
        new_id = glance_import_and_wait(
            dst, target, choice.target_import, staged_at, (src, source_id), clouds=clouds
        )
    with phases("verify"):
        compare_with = None if choice.source_export else source_id
        verify_target_image(src, compare_with, dst, new_id, size, clouds=clouds)
    reused = (export.reused if export else None, target.reused)
    return Moved(source_image_id=source_id, target_image_id=new_id,
                 export_task_id=export.task_id if export else None,
                 reused=_reused(*reused), copied=copy, staged_object=staged)  # fmt: skip


def _staged_name(
    choice: TransportChoice, source_region: str, source_id: str, clouds: Clouds
) -> str | None:
    """The staged object of this transfer (None: the transport stages nothing), named after
    the source image and the format of the staged bytes: stable for the request, so a re-run
    finds the segments an earlier run copied. A server's snapshot in a Glance source has the
    format the cloud gave it (read once it exists)."""
    if not choice.stages_segments:
        return None
    disk_format = choice.staged_format or source_disk_format(
        source_region, source_id, clouds=clouds
    )
    return staged_object(source_id, disk_format)


def _segments_in(request: TransferRequest, choice: TransportChoice) -> str:
    return segments_for(request.import_container, choice)


def _reused(*what: str | None) -> tuple[str, ...]:
    return tuple(item for item in what if item)


def _moved_before(
    request: TransferRequest, identity: TransferIdentity, report: PreflightReport, image_id: str
) -> Moved:
    """An earlier run finished the move: only the finishing steps are left."""
    get_run_logger().info(
        "image %s in %s already carries run key %s: nothing to export, copy or import",
        image_id,
        request.target_region,
        identity.run_key,
    )
    source_id = request.image_id or find_source_image(
        request.source_region, identity, report.source_tenant, clouds=request.clouds
    )
    staged = None
    if source_id is not None:
        staged = _staged_name(report.transport, request.source_region, source_id, request.clouds)
    return Moved(
        source_image_id=source_id,
        target_image_id=image_id,
        reused=("transferred image",),
        staged_object=staged,
    )


def _finish(
    request: TransferRequest,
    identity: TransferIdentity,
    report: PreflightReport,
    phases: Phases,
    moved: Moved,
) -> TransferResult:
    """The runbook's target steps after the import: tag, find, boot; then clean up."""
    src, dst, new_id = request.source_region, request.target_region, moved.target_image_id
    clouds = request.clouds
    try:
        with phases("properties"):
            properties = PropertyReport()
            if moved.source_image_id is not None:
                keys = request.properties_to_copy
                properties = tag_new_image(
                    src, moved.source_image_id, dst, new_id, keys, identity, clouds=clouds
                )
            find_image_by_property(dst, new_id, identity, report.target_tenant, clouds=clouds)
        server_id = None
        if request.boot is not None and report.boot_flavor is not None:
            with phases("boot"):
                name = server_name(request, new_image_name(request, _source_name(request, report)))
                flavor = report.boot_flavor.id
                server_id = boot_and_wait(dst, new_id, name, flavor, identity, clouds=clouds)
        with phases("cleanup"):
            cleaned, remaining = _clean_up(request, moved, report.transport)
    except (Exception, TerminationSignal) as error:
        _log_remains(
            request, identity, moved.source_image_id, moved.staged_object, report.transport, error
        )
        raise
    result = _result(request, identity, report, phases, moved, properties, server_id,
                     cleaned, remaining)  # fmt: skip
    create_table_artifact(
        result.summary_rows(),
        key=f"transfer-{identity.slug}",
        description=f"transfer-image {src} -> {dst}: image {new_id}",
    )
    return result


# -- helpers ---------------------------------------------------------------------------------


def _accepted(checked: PreflightReport | Refusal) -> PreflightReport:
    """Pre-flight's report; its refusal raised (the preflight phase fails)."""
    if isinstance(checked, Refusal):
        raise checked.error
    return checked


def _clean_up(
    request: TransferRequest, moved: Moved, transport: TransportChoice
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(what was deleted, what remains) under the request's cleanup policy."""
    source_image_id, staged = moved.source_image_id, moved.staged_object
    if source_image_id is None or staged is None or not transport.stages_segments:
        return (), ()
    if request.cleanup == "keep":
        return (), tuple(_intermediates(request, source_image_id, staged, transport))
    deleted = delete_intermediates(
        request.source_region,
        request.target_region,
        request.export_container,
        request.import_container,
        source_image_id,
        transport.source_export,
        staged,
        clouds=request.clouds,
    )
    return deleted, ()


def _result(
    request: TransferRequest,
    identity: TransferIdentity,
    report: PreflightReport,
    phases: Phases,
    moved: Moved,
    properties: PropertyReport,
    server_id: str | None,
    cleaned: tuple[str, ...],
    remaining: tuple[str, ...],
) -> TransferResult:
    copy = moved.copied
    return TransferResult(
        run_key=identity.run_key,
        source_region=request.source_region,
        target_region=request.target_region,
        source_image_id=moved.source_image_id or "",
        target_image_id=moved.target_image_id,
        coordinating_property={identity.coordinating_key: identity.coordinating_value},
        transport=report.transport.transport,
        snapshot_created=moved.snapshot_created,
        export_task_id=moved.export_task_id,
        import_task_id=moved.import_task_id,
        reused=moved.reused,
        bytes_total=copy.plan.size if copy else 0,
        bytes_copied=copy.bytes_copied if copy else 0,
        segments_total=len(copy.results) if copy else 0,
        segments_copied=len(copy.results) - copy.segments_skipped if copy else 0,
        segments_skipped=copy.segments_skipped if copy else 0,
        properties=properties,
        server_id=server_id,
        flavor_id=report.boot_flavor.id if server_id and report.boot_flavor else None,
        cleaned_up=cleaned,
        remaining=remaining,
        phases=phases.timings,
        seconds=time.perf_counter() - phases.started,
        source_cloud=request.source_cloud,
        target_cloud=request.target_cloud,
    )


def _copy(
    plan: TransferPlan, request: TransferRequest, identity: TransferIdentity
) -> TransferReport:
    """The copy-segments step of ``plan`` between the request's regions (and clouds)."""
    src, dst = request.source_region, request.target_region
    concurrency = _concurrency(request)
    return copy_segments(plan, src, dst, identity.run_key, concurrency, clouds=request.clouds)


def _concurrency(request: TransferRequest) -> int | None:
    """The request's stream count, else the worker's setting; None: adaptive."""
    return request.concurrency or clients().settings().transfer_concurrency


def _dry_run(
    request: TransferRequest, identity: TransferIdentity, report: PreflightReport
) -> DryRunPlan:
    settings = clients().settings()
    plan = dry_run_plan(
        request,
        identity,
        report,
        read_target_limits(request.target_region, clouds=request.clouds),
        settings.segment_size_bytes,
        _concurrency(request) or settings.stream_cap(request.source_region, request.target_region),
    )
    create_table_artifact(
        plan.summary_rows(),
        key=f"plan-{identity.slug}",
        description=f"dry run of transfer-image {request.source_region} -> "
        f"{request.target_region}: nothing was created",
    )
    return plan


def _server_name_of(report: PreflightReport) -> str | None:
    return report.source.server.name if report.source.server else None


def _source_name(request: TransferRequest, report: PreflightReport) -> str:
    if report.source.image is not None:
        return report.source.image.name or report.source.image.id
    return snapshot_name(request, _server_name_of(report), clock().time())


def _intermediates(
    request: TransferRequest, source_image_id: str, staged: str, transport: TransportChoice
) -> list[str]:
    """The exported VHD (when the source exports) and the staged copy (when there is one)."""
    found = intermediates(
        request.source_region,
        request.target_region,
        request.export_container,
        request.import_container,
        source_image_id,
        staged,
        _segments_in(request, transport),
    )
    exported, staged = found
    return ([exported] if transport.source_export else []) + (
        [staged] if transport.stages_segments else []
    )


def _log_remains(
    request: TransferRequest,
    identity: TransferIdentity,
    source_image_id: str | None,
    staged: str | None,
    transport: TransportChoice,
    error: BaseException,
) -> None:
    """After a failure, or when told to stop (a cancel): say what stays in place for a
    re-run, and how to remove it instead (in the run's log, and to progress listeners such
    as the CLI); ``staged`` None: the moving steps had not started (nothing exported or
    staged yet)."""
    kept = ""
    if source_image_id is not None and staged is not None:
        kept = " | ".join(_intermediates(request, source_image_id, staged, transport))
    stopped = isinstance(error, StoppedError | TerminationSignal)
    ended = "was stopped" if stopped else "failed"
    if not kept:
        remains = f"the transfer {ended} before the export: nothing is left in Cloud Files"
    else:
        remains = (
            f"the transfer {ended}; kept for a re-run with run key {identity.run_key!r} "
            f"(same request): {kept}"
        )
    get_run_logger().log(logging.WARNING if stopped else logging.ERROR, remains)
    publish(Event("run-failed", identity.run_key, detail=remains))
