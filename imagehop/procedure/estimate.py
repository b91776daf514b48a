"""The dry run's plan: the steps a request would take, its bytes and segments, and a duration
estimate whose assumptions are stated next to it (they are rough: the cloud publishes no
export or import speeds)."""

from __future__ import annotations

import math

from imagehop.object_store import ClusterLimits
from imagehop.procedure.preflight import PreflightReport
from imagehop.procedure.request import (
    EXPORT_DISK_FORMAT,
    TransferIdentity,
    TransferRequest,
    exported_object,
    staged_object,
)
from imagehop.procedure.result import DryRunPlan
from imagehop.procedure.transport import TransportChoice, segments_for

MB = 1000**2
POLL_SECONDS = 30.0
SNAPSHOT_MB_PER_S = 40.0
EXPORT_MB_PER_S = 40.0
IMPORT_MB_PER_S = 40.0
STREAM_MB_PER_S = 20.0
COPY_CAP_MB_PER_S = 200.0
BOOT_SECONDS = 300.0


def effective_segment_size(segment_size: int, limits: ClusterLimits) -> int:
    """The segment size a plan would use: within the target's object cap and minimum."""
    return max(min(segment_size, limits.max_file_size), limits.min_segment_size, 1)


def estimate_segments(nbytes: int, segment_size: int, limits: ClusterLimits) -> int:
    """Target segments for ``nbytes`` (the plan grows segments past the manifest limit)."""
    size = effective_segment_size(segment_size, limits)
    return min(max(1, math.ceil(nbytes / size)), limits.max_manifest_segments)


def estimate_seconds(
    nbytes: int, concurrency: int, snapshot: bool, boot: bool, export: bool = True
) -> float:
    """Seconds the whole transfer may take under :func:`assumptions` (``export``: the source
    exports with a task first; a Glance source's bytes are read as they are)."""
    megabytes = nbytes / MB
    copy_rate = min(STREAM_MB_PER_S * concurrency, COPY_CAP_MB_PER_S)
    seconds = (_polled(megabytes / EXPORT_MB_PER_S) if export else 0.0) + megabytes / copy_rate
    seconds += _polled(megabytes / IMPORT_MB_PER_S)
    if snapshot:
        seconds += megabytes / SNAPSHOT_MB_PER_S
    if boot:
        seconds += BOOT_SECONDS
    return seconds


def _polled(seconds: float) -> float:
    """A task's duration as seen through polls every 30 s."""
    return math.ceil(seconds / POLL_SECONDS + 1) * POLL_SECONDS


def assumptions(concurrency: int) -> tuple[str, ...]:
    return (
        f"export and import process about {EXPORT_MB_PER_S:.0f} MB/s and are seen through "
        f"polls every {POLL_SECONDS:.0f} s",
        f"the copy moves {STREAM_MB_PER_S:.0f} MB/s per stream x {concurrency} streams, "
        f"at most {COPY_CAP_MB_PER_S:.0f} MB/s",
        f"a server snapshot saves about {SNAPSHOT_MB_PER_S:.0f} MB/s; a boot takes about "
        f"{BOOT_SECONDS / 60:.0f} min",
        "a server's size is its flavor's disk (an upper bound; the snapshot is usually smaller)",
    )


def plan_steps(
    request: TransferRequest,
    identity: TransferIdentity,
    source_id: str,
    transport: TransportChoice | None = None,
) -> list[str]:
    """The runbook steps this request would run, with the names it would use (``transport``:
    pre-flight's choice; None: Rackspace's tasks)."""
    src, dst = request.source_region, request.target_region
    segments = segments_for(request.import_container, transport)
    staged = f"{request.import_container}/{_staged_name(source_id, transport)}"
    steps = []
    if request.server_id is not None:
        steps.append(f"image server {request.server_id} in {src} (reused if run key exists)")
    coordinating = f"{identity.coordinating_key}={identity.coordinating_value}"
    steps.append(f"tag the source image with {coordinating}")
    if transport is None or transport.source_export:
        steps += [
            f"export it to {src} {request.export_container}/{exported_object(source_id)}",
            f"copy the VHD to {dst} as an SLO (segments in {segments})",
        ]
    elif transport.stages_segments:
        steps.append(
            f"copy its image data to {dst} as an SLO {staged} (ranged reads in parallel, "
            f"segments in {segments})"
        )
    steps += _import_steps(request, transport, staged)
    steps += [
        f"copy properties {', '.join(request.properties_to_copy) or '(none)'} and the tag",
        f"find the new image by {coordinating}",
    ]
    if request.boot is not None:
        steps.append(f"boot a server from it in {dst}")
    if request.cleanup == "delete-intermediates":
        steps.append(_cleanup_step(transport))
    return steps


def _staged_name(source_id: str, transport: TransportChoice | None) -> str:
    """The staged object's name (None transport: Rackspace's tasks, a VHD); a server's
    snapshot in a Glance source has a format only once it exists: said so."""
    disk_format = transport.staged_format if transport is not None else EXPORT_DISK_FORMAT
    if disk_format is None:
        return f"{source_id}.<its disk_format>"
    return staged_object(source_id, disk_format)


def _import_steps(
    request: TransferRequest, transport: TransportChoice | None, staged: str
) -> list[str]:
    dst = request.target_region
    if transport is None or transport.target_import == "import-task":
        return [f"import {staged} in {dst}"]
    snapshots = "as the snapshot's"
    disk = transport.disk_format or snapshots
    container = transport.container_format or snapshots
    formats = f"disk_format {disk}, container_format {container}"
    how = {
        "glance-download": f"import it by glance-download from {request.source_region}",
        "web-download": f"import {staged} by web-download of a temporary URL",
        "glance-direct": f"stage {staged} in one stream and import it by glance-direct",
        "put-file": f"upload {staged} in one stream (PUT .../file)",
    }[transport.target_import]
    return [
        f"create an image in {dst} ({formats}); {how}; wait until it is active",
        _verify_step(transport),
    ]


def _verify_step(transport: TransportChoice) -> str:
    if transport.source_export:
        return (
            "check the new image's size (a Rackspace export has no image hash to compare: "
            "its segments were verified by MD5 as they were copied)"
        )
    return (
        "compare its checksum and os_hash_value with the source's (a mismatch: the new image "
        "is deleted, or deactivated if the cloud refuses the delete)"
    )


def _cleanup_step(transport: TransportChoice | None) -> str:
    if transport is None or transport.source_export:
        return "delete the exported VHD and the staged copy"
    if transport.stages_segments:
        return "delete the staged copy (the SLO and its segments imagehop wrote)"
    return "nothing to delete (glance-download stages nothing imagehop wrote)"


def dry_run_plan(
    request: TransferRequest,
    identity: TransferIdentity,
    report: PreflightReport,
    limits: ClusterLimits,
    segment_size: int,
    concurrency: int,
) -> DryRunPlan:
    """Everything a dry run reports, computed from pre-flight facts and the target's limits."""
    source = report.source
    source_id = source.image.id if source.image is not None else "<new image>"
    nbytes = source.expected_bytes
    what = f"image {source_id}" if source.image else f"server {request.server_id}"
    return DryRunPlan(
        run_key=identity.run_key,
        source_region=request.source_region,
        target_region=request.target_region,
        source=f"{what} ({source.name})",
        checks=report.checks,
        steps=tuple(plan_steps(request, identity, source_id, report.transport)),
        transport=report.transport.transport,
        transport_reason=report.transport.reason,
        notes=report.transport.notes,
        bytes=nbytes,
        bytes_exact=source.bytes_exact,
        segments=estimate_segments(nbytes, segment_size, limits),
        segment_size=effective_segment_size(segment_size, limits),
        estimated_seconds=estimate_seconds(
            nbytes,
            concurrency,
            request.server_id is not None,
            request.boot is not None,
            export=report.transport.source_export,
        ),
        assumptions=assumptions(concurrency),
        boot_flavor=report.boot_flavor.name if report.boot_flavor else None,
        source_cloud=request.source_cloud,
        target_cloud=request.target_cloud,
    )
