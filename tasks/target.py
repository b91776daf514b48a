"""Steps in the target region: import, tag the new image, find it by the property, boot.

:func:`import_and_wait` and :func:`boot_and_wait` are the create-then-wait steps (one
transaction each, :mod:`imagehop.tasks.create_then_wait`).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from imagehop.compute import Server
from imagehop.errors import ApiError, NotFoundError
from imagehop.procedure import steps
from imagehop.procedure.request import Clouds, TransferIdentity
from imagehop.procedure.result import PropertyReport
from imagehop.procedure.steps import ImportOutcome, ensure_import, find_run_images
from imagehop.tasks import limits
from imagehop.tasks.cloud import clients
from imagehop.tasks.create_then_wait import create_then_wait, gone, present, run_create
from imagehop.tasks.policy import FRESH, WAITING, cached_by


def import_and_wait(
    region: str,
    location: str,
    name: str,
    identity: TransferIdentity,
    owner: str,
    source_image_id: str,
    *,
    clouds: Clouds,
) -> ImportOutcome:
    """Runbook target steps 1 and 2: start the import task and poll it (>= 30 s apart)
    until the new image is there, holding one of the region's import slots meanwhile."""

    def pair(refresh: bool) -> ImportOutcome:
        args = (region, location, name, identity, owner, source_image_id)
        outcome, cached = run_create(start_import, refresh, *args, clouds=clouds)
        image_id = present(wait_for_import(region, outcome, cached=cached, clouds=clouds))
        reused = outcome.reused or ("import task" if cached else None)
        return outcome.model_copy(update={"image_id": image_id, "finished": True, "reused": reused})

    with limits.region_slot("import", region):
        return create_then_wait(pair, "import")


def boot_and_wait(
    region: str,
    image_id: str,
    name: str,
    flavor_id: str,
    identity: TransferIdentity,
    *,
    clouds: Clouds,
) -> str:
    """Runbook target step 4: boot a server from the new image; wait until it is ACTIVE."""

    def pair(refresh: bool) -> str:
        args = (region, image_id, name, flavor_id, identity)
        server_id, cached = run_create(boot_server, refresh, *args, clouds=clouds)
        present(wait_for_server(region, server_id, cached=cached, clouds=clouds))
        return server_id

    return create_then_wait(pair, "boot")


@task(
    name="start-import",
    task_run_name="import-{region}",
    **cached_by("import", "clouds.target", "region", "location", "identity.run_key"),
)
def start_import(
    region: str,
    location: str,
    name: str,
    identity: TransferIdentity,
    owner: str,
    source_image_id: str,
    *,
    clouds: Clouds,
) -> ImportOutcome:
    """Start the import task, unless this transfer's image (a copy of ``source_image_id``)
    exists or an import of the same location is running (or finished with an image no other
    transfer claimed)."""
    c = clients(clouds)
    images, store = c.images("target", region), c.objects("target", region)
    outcome = ensure_import(images, store, location, name, identity, owner, source_image_id)
    logger = get_run_logger()
    if outcome.reused:
        logger.info("reusing the %s of an earlier run (task %s)", outcome.reused, outcome.task_id)
    else:
        logger.info("import task %s started for %s", outcome.task_id, location)
    return outcome


@task(name="wait-for-import", task_run_name="wait-for-import-{region}", **WAITING)
def wait_for_import(
    region: str, outcome: ImportOutcome, *, cached: bool = False, clouds: Clouds
) -> str | None:
    """Wait for the import task (polls >= 30 s apart); returns the new image's id, or None
    if a ``cached`` import's task or image is gone (the step runs again).

    Raises:
        TaskFailedError: the import failed (the cloud's message, its code's advice).
        NotFoundError: the image is gone.
    """
    c = clients(clouds)
    images = c.images("target", region)
    image_id = outcome.image_id
    try:
        if outcome.task_id is not None and not outcome.finished:
            deadline = c.settings().import_deadline_seconds
            task_record = images.wait_for_task(outcome.task_id, deadline)
            image_id = task_record.image_id
            get_run_logger().info("import task %s: image %s", task_record.id, image_id)
        if image_id is None:
            raise ValueError(f"import task {outcome.task_id} succeeded without an image id")
        images.get_image(image_id)
    except NotFoundError as error:
        what = f"image {image_id}" if image_id else f"import task {outcome.task_id}"
        return gone(cached, error, what, "importing again")
    return image_id


@task(name="tag-new-image", task_run_name="tag-new-image-{target_image_id:.8}", **FRESH)
def tag_new_image(
    source_region: str,
    source_image_id: str,
    target_region: str,
    target_image_id: str,
    keys: tuple[str, ...],
    identity: TransferIdentity,
    *,
    clouds: Clouds,
) -> PropertyReport:
    """Runbook target step 3: copy the allow-listed properties and the transfer's tags (the
    coordinating property) to the new image (the import keeps only the name)."""
    c = clients(clouds)
    source = c.images("source", source_region).get_image(source_image_id)
    report = steps.copy_properties(
        c.images("target", target_region), source, target_image_id, keys, identity
    )
    for skipped in report.skipped:
        get_run_logger().info("property %s not copied: %s", skipped.key, skipped.reason)
    return report


@task(name="find-image-by-property", task_run_name="find-{image_id:.8}-by-property", **FRESH)
def find_image_by_property(
    region: str, image_id: str, identity: TransferIdentity, owner: str, *, clouds: Clouds
) -> None:
    """The runbook's last lookup: the new image must be listed by its coordinating property.

    Raises:
        ApiError: the images list filtered by the property does not show it.
    """
    images = clients(clouds).images("target", region)
    key, value = identity.coordinating_key, identity.coordinating_value
    tagged = {image.id for image in images.find_images_by_property(key, value)}
    found = [i.id for i in find_run_images(images, identity.run_key, owner) if i.id in tagged]
    if image_id not in found:
        raise ApiError(
            f"image {image_id} in {region} is not listed by {key}={value} (found: {found}); "
            "the property filter of the images list does not see the tag"
        )


@task(
    name="boot-server",
    task_run_name="boot-{name}",
    **cached_by("boot", "clouds.target", "region", "image_id", "name"),
)
def boot_server(
    region: str,
    image_id: str,
    name: str,
    flavor_id: str,
    identity: TransferIdentity,
    *,
    clouds: Clouds,
) -> str:
    """Boot a server from the new image; returns its id.

    The Servers API offers no lookup by metadata here, so a second boot is prevented by the
    cache only (keyed by image and name, kept once the server became ACTIVE).
    """
    server_id = (
        clients(clouds)
        .compute("target", region)
        .boot_server(name, image_id, flavor_id, metadata=identity.tags)
    )
    get_run_logger().info("booting server %s from image %s", server_id, image_id)
    return server_id


@task(name="wait-for-server", task_run_name="wait-for-server-{server_id:.8}", **WAITING)
def wait_for_server(
    region: str, server_id: str, *, cached: bool = False, clouds: Clouds
) -> Server | None:
    """Poll until the server is ACTIVE (ERROR fails with the cloud's fault message); None
    if a ``cached`` server is gone (the step runs again)."""
    c = clients(clouds)
    compute = c.compute("target", region)
    try:
        compute.get_server(server_id)
    except NotFoundError as error:
        return gone(cached, error, f"server {server_id}", "booting again")
    return compute.wait_for_server_active(server_id, c.settings().boot_deadline_seconds)
