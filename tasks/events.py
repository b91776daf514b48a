"""Prefect events of imagehop, emitted by the flows (names, resources and payload documented
in deployments/README.md, "Events and automations").

* ``imagehop.image.copied``: a transfer finished; the new image is the resource, the source
  image, both regions and the run key are related; payload: bytes, segments, seconds.
* ``imagehop.image.copy-failed``: a transfer failed (pre-flight refusals too); the source
  (image or server) is the resource; payload: the error's class and message.
* ``imagehop.retention.pruned``: replicate-server's retention ran; the server is the
  resource; payload: what was kept and what was deleted (or would be, in a dry run).

:func:`prefect.events.emit_event` only queues the event for Prefect's events worker, which
sends it to the API the run reports to (an embedded run's ephemeral server included) in the
background; without an API, or when sending fails, the event is dropped and the run goes on.
Emitting never fails a run: an error (e.g. an event over the size limit) is logged here.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import emit_event

from imagehop.procedure.request import TransferRequest
from imagehop.procedure.result import ReplicationResult, TransferResult

COPIED = "imagehop.image.copied"
COPY_FAILED = "imagehop.image.copy-failed"
PRUNED = "imagehop.retention.pruned"
#: Longest error message an event carries (the cloud's messages are short; a page is not).
MAX_REASON = 2000

logger = logging.getLogger(__name__)


def image_resource(region: str, image_id: str) -> str:
    """``imagehop.image.<region>.<image id>``."""
    return f"imagehop.image.{region}.{image_id}"


def server_resource(region: str, server_id: str) -> str:
    """``imagehop.server.<region>.<server id>``."""
    return f"imagehop.server.{region}.{server_id}"


def copied(result: TransferResult) -> None:
    """A transfer finished: ``result.target_image_id`` is in the target region."""
    related = [_related(image_resource(result.source_region, result.source_image_id),
                        "source-image")] if result.source_image_id else []  # fmt: skip
    _emit(
        COPIED,
        _resource(image_resource(result.target_region, result.target_image_id), "target-image"),
        related + _transfer_related(result.source_region, result.target_region, result.run_key),
        {
            "run_key": result.run_key,
            "source_image_id": result.source_image_id,
            "target_image_id": result.target_image_id,
            "bytes_total": result.bytes_total,
            "bytes_copied": result.bytes_copied,
            "segments_total": result.segments_total,
            "segments_copied": result.segments_copied,
            "segments_skipped": result.segments_skipped,
            "reused": list(result.reused),
            "seconds": round(result.seconds, 3),
        },
    )


def copy_failed(request: TransferRequest, run_key: str, error: BaseException) -> None:
    """A transfer failed (or was refused before any side effect)."""
    src, ref = request.source_region, request.source_ref
    source = image_resource(src, ref) if request.image_id else server_resource(src, ref)
    _emit(
        COPY_FAILED,
        _resource(source, f"source-{request.source_kind}"),
        _transfer_related(src, request.target_region, run_key),
        {
            "run_key": run_key,
            "source": f"{request.source_kind} {ref}",
            "error": type(error).__name__,
            "reason": str(error)[:MAX_REASON],
        },
    )


def pruned(result: ReplicationResult) -> None:
    """replicate-server's retention ran (``deleted`` is what would go, in a dry run)."""
    _emit(
        PRUNED,
        _resource(server_resource(result.source_region, result.server_id), "server"),
        _transfer_related(result.source_region, result.target_region, result.transfer.run_key),
        {
            "run_key": result.transfer.run_key,
            "server_id": result.server_id,
            "keep": result.keep,
            "dry_run": result.dry_run,
            "kept": [copy.image_id for copy in result.kept],
            "deleted": [d.model_dump(mode="json") for d in result.deleted],
        },
    )


def _resource(resource_id: str, kind: str) -> dict[str, str]:
    return {"prefect.resource.id": resource_id, "imagehop.kind": kind}


def _related(resource_id: str, role: str) -> dict[str, str]:
    return {"prefect.resource.id": resource_id, "prefect.resource.role": role}


def _transfer_related(source_region: str, target_region: str, run_key: str) -> list[dict[str, str]]:
    return [
        _related(f"imagehop.region.{source_region}", "source-region"),
        _related(f"imagehop.region.{target_region}", "target-region"),
        _related(f"imagehop.run-key.{run_key}", "run-key"),
    ]


def _emit(
    event: str, resource: dict[str, str], related: list[dict[str, str]], payload: dict[str, Any]
) -> None:
    try:
        emit_event(event, resource=resource, related=related, payload=payload)
    except Exception:  # never fail the run for its notification
        logger.warning("could not emit the event %s", event, exc_info=True)
