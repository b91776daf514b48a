"""Steps in the source region: image the server, tag the image, ensure the container, export.

Each runbook step that creates something and waits for it is one function here
(:func:`image_the_server`, :func:`export_and_wait`): the cached create task and its wait as
one transaction (:mod:`imagehop.tasks.create_then_wait`).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from imagehop.errors import NotFoundError
from imagehop.image import Image
from imagehop.procedure.registry import Side
from imagehop.procedure.request import Clouds, TransferIdentity
from imagehop.procedure.steps import (
    ExportOutcome,
    SnapshotOutcome,
    ensure_export,
    ensure_snapshot,
    tag_image,
)
from imagehop.tasks import limits
from imagehop.tasks.cloud import clients
from imagehop.tasks.create_then_wait import create_then_wait, gone, present, run_create
from imagehop.tasks.policy import FRESH, WAITING, cached_by


def image_the_server(
    region: str,
    server_id: str,
    name: str,
    identity: TransferIdentity,
    owner: str,
    *,
    clouds: Clouds,
) -> SnapshotOutcome:
    """Runbook step 1: image the server and wait until the image is active (``created`` is
    False when an earlier run, or the cache, had made it)."""

    def pair(refresh: bool) -> SnapshotOutcome:
        outcome, cached = run_create(
            snapshot_server, refresh, region, server_id, name, identity, owner, clouds=clouds
        )
        present(wait_for_image("source", region, outcome.image_id, cached=cached, clouds=clouds))
        return outcome.model_copy(update={"created": outcome.created and not cached})

    return create_then_wait(pair, "snapshot")


def export_and_wait(region: str, image_id: str, container: str, *, clouds: Clouds) -> ExportOutcome:
    """Runbook steps 4 and 5: start the export task and poll it (>= 30 s apart) until the
    VHD is in the container, holding one of the region's export slots meanwhile."""

    def pair(refresh: bool) -> ExportOutcome:
        outcome, cached = run_create(
            start_export, refresh, region, image_id, container, clouds=clouds
        )
        location = present(wait_for_export(region, outcome, cached=cached, clouds=clouds))
        reused = outcome.reused or ("export task" if cached else None)
        return outcome.model_copy(update={"location": location, "finished": True, "reused": reused})

    with limits.region_slot("export", region):
        return create_then_wait(pair, "export")


@task(
    name="snapshot-server",
    task_run_name="snapshot-{server_id:.8}",
    **cached_by("snapshot", "clouds.source", "region", "server_id", "identity.run_key"),
)
def snapshot_server(
    region: str,
    server_id: str,
    name: str,
    identity: TransferIdentity,
    owner: str,
    *,
    clouds: Clouds,
) -> SnapshotOutcome:
    """Image the server, unless an image with this run key exists (then reuse it)."""
    c = clients(clouds)
    outcome = ensure_snapshot(
        c.compute("source", region), c.images("source", region), server_id, name, identity, owner
    )
    verb = "created" if outcome.created else "reused"
    get_run_logger().info("%s image %s of server %s", verb, outcome.image_id, server_id)
    return outcome


@task(name="wait-for-image", task_run_name="wait-for-image-{image_id:.8}", **WAITING)
def wait_for_image(
    side: Side, region: str, image_id: str, *, cached: bool = False, clouds: Clouds
) -> Image | None:
    """Poll until the image is ``active``; None if it is gone and ``cached`` (a cached step
    named it: the step runs again).

    Raises:
        NotFoundError: the image does not exist.
        ResourceFailedError: it became killed or deleted.
        WaitTimeoutError: not active within ``snapshot_deadline_seconds``.
    """
    c = clients(clouds)
    images = c.images(side, region)
    try:
        images.get_image(image_id)  # a missing image fails here, not after a long wait
    except NotFoundError as error:
        return gone(cached, error, f"image {image_id}", "imaging the server again")
    return images.wait_for_image_active(image_id, c.settings().snapshot_deadline_seconds)


@task(name="tag-source-image", task_run_name="tag-{image_id:.8}", **FRESH)
def tag_source_image(
    region: str, image_id: str, identity: TransferIdentity, *, clouds: Clouds
) -> tuple[str, ...]:
    """Put the coordinating property and the run key on the source image."""
    return tag_image(clients(clouds).images("source", region), image_id, identity)


@task(name="ensure-container", task_run_name="container-{region}-{container}", **FRESH)
def ensure_container(side: Side, region: str, container: str, *, clouds: Clouds) -> None:
    """Create the Cloud Files container unless it exists."""
    clients(clouds).objects(side, region).ensure_container(container)


@task(
    name="start-export",
    task_run_name="export-{image_id:.8}",
    **cached_by("export", "clouds.source", "region", "image_id", "container"),
)
def start_export(region: str, image_id: str, container: str, *, clouds: Clouds) -> ExportOutcome:
    """Start the export task, unless one is running or its VHD is already there."""
    c = clients(clouds)
    outcome = ensure_export(
        c.images("source", region), c.objects("source", region), image_id, container
    )
    logger = get_run_logger()
    if outcome.reused:
        logger.info("reusing the %s of an earlier run (%s)", outcome.reused, outcome.location)
    else:
        logger.info("export task %s started: %s", outcome.task_id, outcome.location)
    return outcome


@task(name="wait-for-export", task_run_name="wait-for-export-{region}", **WAITING)
def wait_for_export(
    region: str, export: ExportOutcome, *, cached: bool = False, clouds: Clouds
) -> str | None:
    """Wait for the export task (polls >= 30 s apart), then check the VHD is there; a
    ``cached`` export (its task succeeded in an earlier run) is only checked. None if it is
    gone and ``cached`` (the step runs again).

    Returns:
        ``<container>/<image id>.vhd``.

    Raises:
        TaskFailedError: the export failed (the cloud's message plus advice).
        NotFoundError: no exported VHD.
    """
    c = clients(clouds)
    if export.task_id is not None and not export.finished and not cached:
        deadline = c.settings().export_deadline_seconds
        task_record = c.images("source", region).wait_for_task(export.task_id, deadline)
        get_run_logger().info("export task %s: %s", task_record.id, task_record.export_location)
    container, _, name = export.location.partition("/")
    try:
        c.objects("source", region).head_object(container, name)
    except NotFoundError as error:
        return gone(cached, error, f"the exported VHD {export.location}", "exporting again")
    return export.location
