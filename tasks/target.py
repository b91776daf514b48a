"""Steps in the target region: import, copy properties, find the image, boot a server."""

from __future__ import annotations

from prefect import get_run_logger, task

from imagehop.compute import Server
from imagehop.procedure.request import TransferIdentity
from imagehop.procedure.result import PropertyReport
from imagehop.procedure.steps import (
    ImportOutcome,
    ensure_import,
    find_run_images,
)
from imagehop.procedure.steps import copy_properties as copy_allowed_properties
from imagehop.tasks.cloud import clients
from imagehop.tasks.policy import FRESH, WAITING, cached_by


@task(
    name="start-import",
    task_run_name="import-{region}",
    **cached_by("import", "region", "location", "identity.run_key"),
)
def start_import(
    region: str, location: str, name: str, identity: TransferIdentity, owner: str
) -> ImportOutcome:
    """Start the import task, unless this transfer's image exists or an import of the same
    location is running (or finished with an image no other transfer claimed)."""
    c = clients()
    images, store = c.images("target", region), c.objects("target", region)
    outcome = ensure_import(images, store, location, name, identity, owner)
    logger = get_run_logger()
    if outcome.reused:
        logger.info("reusing the %s of an earlier run (task %s)", outcome.reused, outcome.task_id)
    else:
        logger.info("import task %s started for %s", outcome.task_id, location)
    return outcome


@task(name="wait-for-import", task_run_name="wait-for-import-{region}", **WAITING)
def wait_for_import(region: str, outcome: ImportOutcome) -> str:
    """Wait for the import task (polls >= 30 s apart); returns the new image's id.

    Raises:
        TaskFailedError: the import failed (the cloud's message, its code's advice).
        NotFoundError: the image is gone (e.g. deleted since a cached step named it).
    """
    c = clients()
    images = c.images("target", region)
    image_id = outcome.image_id
    if outcome.task_id is not None and not outcome.finished:
        task_record = images.wait_for_task(outcome.task_id, c.settings().import_deadline_seconds)
        image_id = task_record.image_id
        get_run_logger().info("import task %s: image %s", task_record.id, image_id)
    if image_id is None:
        raise ValueError(f"import task {outcome.task_id} succeeded without an image id")
    images.get_image(image_id)
    return image_id


@task(name="copy-properties", task_run_name="copy-properties-{target_image_id:.8}", **FRESH)
def copy_properties(
    source_region: str,
    source_image_id: str,
    target_region: str,
    target_image_id: str,
    keys: tuple[str, ...],
    identity: TransferIdentity,
) -> PropertyReport:
    """Copy the allow-listed properties and the transfer's tags to the new image."""
    c = clients()
    source = c.images("source", source_region).get_image(source_image_id)
    report = copy_allowed_properties(
        c.images("target", target_region), source, target_image_id, keys, identity
    )
    for skipped in report.skipped:
        get_run_logger().info("property %s not copied: %s", skipped.key, skipped.reason)
    return report


@task(name="find-image-by-property", **FRESH)
def find_image_by_property(region: str, identity: TransferIdentity, owner: str) -> list[str]:
    """The runbook's last lookup: images in ``region`` carrying this transfer's tags."""
    images = clients().images("target", region)
    key, value = identity.coordinating_key, identity.coordinating_value
    tagged = {image.id for image in images.find_images_by_property(key, value)}
    return [i.id for i in find_run_images(images, identity.run_key, owner) if i.id in tagged]


@task(
    name="boot-server",
    task_run_name="boot-{name}",
    **cached_by("boot", "region", "image_id", "name"),
)
def boot_server(
    region: str, image_id: str, name: str, flavor_id: str, identity: TransferIdentity
) -> str:
    """Boot a server from the new image; returns its id.

    The Servers API offers no lookup by metadata here, so a second boot is prevented by the
    cache only (keyed by image and name, kept once the server became ACTIVE).
    """
    server_id = (
        clients()
        .compute("target", region)
        .boot_server(name, image_id, flavor_id, metadata=identity.tags)
    )
    get_run_logger().info("booting server %s from image %s", server_id, image_id)
    return server_id


@task(name="wait-for-server", task_run_name="wait-for-server-{server_id:.8}", **WAITING)
def wait_for_server(region: str, server_id: str) -> Server:
    """Poll until the server is ACTIVE (ERROR fails with the cloud's fault message)."""
    c = clients()
    compute = c.compute("target", region)
    compute.get_server(server_id)
    return compute.wait_for_server_active(server_id, c.settings().boot_deadline_seconds)
