"""The ``replicate-server`` flow: a disaster-recovery copy of a server with retention.

Image the server and transfer the new image (the ``transfer-image`` flow, as a subflow), then
keep only the newest ``keep`` copies of that server in the target region: older copies are
deleted there, with the source snapshots imagehop made for them and their exported and
staged objects in Cloud Files. Only images carrying imagehop's markers of that server count as
copies (:mod:`imagehop.procedure.retention`); nothing else is ever deleted. A failed transfer
deletes nothing; the copy this run made is always kept. ``dry_run`` plans the transfer and
lists what would be deleted, and creates, moves and deletes nothing.

Each run is a new transfer: the run key is ``<server id>@<scheduled start, UTC, to the
second>`` (a retry of the same flow run resumes it), unless the request names one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from imagehop.flows.transfer_image import run_name, transfer_image
from imagehop.image import Image
from imagehop.procedure.request import (
    RUN_KEY_PROPERTY,
    ReplicateRequest,
    replication_run_key,
    slug,
)
from imagehop.procedure.result import (
    Deletion,
    DryRunPlan,
    KeptCopy,
    ReplicationResult,
    TransferResult,
)
from imagehop.procedure.retention import split_by_age
from imagehop.tasks import events
from imagehop.tasks.cleanup import delete_intermediates
from imagehop.tasks.cloud import clock
from imagehop.tasks.refusals import REFUSALS, quiet_refusal_tracebacks, refused
from imagehop.tasks.retention import delete_image, find_copies, find_snapshots

quiet_refusal_tracebacks()


def _what_is_replicated(request: ReplicateRequest) -> str:
    """``DFW-to-IAD-server-4f1c2a0b-keep-7``."""
    return (
        f"{request.source_region}-to-{request.target_region}-server-"
        f"{request.source.server_id[:8]}-keep-{request.keep}"
    )


_run_name = run_name("request", ReplicateRequest, _what_is_replicated, "replicate-server")


@flow(name="replicate-server", flow_run_name=_run_name, persist_result=True)
def replicate_server(request: ReplicateRequest) -> ReplicationResult:
    """Copy a new image of a server to another region, keeping its newest ``keep`` copies there.

    Raises:
        PreflightError: the transfer cannot work (nothing created or deleted); as for
            transfer-image, the run ends Failed with the reason, without a traceback.
        ImagehopError: the transfer failed (nothing deleted), or a deletion failed (a re-run
            finds what is left).
    """
    logging.getLogger("imagehop").setLevel(logging.INFO)
    run_key = request.run_key or replication_run_key(request.source.server_id, _started())
    try:
        transferred = transfer_image(request.transfer_request(run_key))
    except REFUSALS as error:
        return cast(ReplicationResult, refused(error))
    current = transferred.target_image_id if isinstance(transferred, TransferResult) else None
    kept, old = split_by_age(_copies(request), request.keep, current)
    deletions = _deletions(request, old)
    if not request.dry_run:
        _delete(request, deletions)
    result = _result(request, transferred, kept, deletions)
    _report(result)
    return result


def _started() -> datetime:
    """When this run was scheduled to start (stable across retries of the run), else now."""
    scheduled = flow_run.scheduled_start_time
    if isinstance(scheduled, datetime):
        return scheduled
    return datetime.fromtimestamp(clock().time(), UTC)


def _copies(request: ReplicateRequest) -> list[Image]:
    return find_copies(
        request.target_region,
        request.source.server_id,
        request.coordinating_property_key,
        request.coordinating_value,
        clouds=request.clouds,
    )


def _deletions(request: ReplicateRequest, old: list[Image]) -> list[Deletion]:
    """What retention removes for each old copy, in the order it is removed: the
    intermediates, then the source snapshot (so a re-run still finds the intermediates by
    its id), then the copy (so a re-run still finds the snapshot by the copy's run key)."""
    src, dst, clouds = request.source_region, request.target_region, request.clouds
    deletions = []
    for copy in old:
        run_key = str(copy.value_of(RUN_KEY_PROPERTY))
        for snapshot in find_snapshots(src, request.source.server_id, run_key, clouds=clouds):
            deletions += [
                Deletion(kind="intermediates", region=f"{src}+{dst}", what=snapshot.id,
                         run_key=run_key),
                Deletion(kind="source snapshot", region=src, what=snapshot.id, run_key=run_key,
                         created_at=snapshot.created_at),
            ]  # fmt: skip
        deletions.append(
            Deletion(kind="target image", region=dst, what=copy.id, run_key=run_key,
                     created_at=copy.created_at)
        )  # fmt: skip
    return deletions


def _delete(request: ReplicateRequest, deletions: list[Deletion]) -> None:
    src, dst, clouds = request.source_region, request.target_region, request.clouds
    for deletion in deletions:
        if deletion.kind == "intermediates":
            delete_intermediates(src, dst, request.export_container, request.import_container,
                                 deletion.what, clouds=clouds)  # fmt: skip
        elif deletion.kind == "source snapshot":
            delete_image("source", src, deletion.what, clouds=clouds)
        else:
            delete_image("target", dst, deletion.what, clouds=clouds)


def _result(
    request: ReplicateRequest,
    transferred: TransferResult | DryRunPlan,
    kept: list[Image],
    deletions: list[Deletion],
) -> ReplicationResult:
    current = transferred.target_image_id if isinstance(transferred, TransferResult) else None
    return ReplicationResult(
        server_id=request.source.server_id,
        source_region=request.source_region,
        target_region=request.target_region,
        keep=request.keep,
        dry_run=request.dry_run,
        transfer=transferred,
        kept=tuple(
            KeptCopy(
                image_id=image.id,
                run_key=str(image.value_of(RUN_KEY_PROPERTY)),
                created_at=image.created_at or "",
                current=image.id == current,
            )
            for image in kept
        ),
        deleted=tuple(deletions),
    )


def _report(result: ReplicationResult) -> None:
    """The table artifact, a log line per planned deletion of a dry run, the event."""
    if result.dry_run:
        logger = get_run_logger()
        for d in result.deleted:
            logger.info("dry run, would delete the %s %s in %s", d.kind, d.what, d.region)
    create_table_artifact(
        result.summary_rows(),
        key=f"replicate-{slug(result.transfer.run_key)}",
        description=f"replicate-server {result.source_region} -> {result.target_region}: "
        f"{len(result.kept)} copies kept, {len(result.deleted_images)} deleted"
        + (" (dry run: nothing deleted)" if result.dry_run else ""),
    )
    events.pruned(result)
