"""Steps of the OpenStack Glance transports (``stream``, ``stream-stage``, ``single-put``,
``glance-download``, ``stream-import-task``): plan the copy from a Glance image, create the
target image, bring its data in, wait, verify.

Thin wrappers over :mod:`imagehop.procedure.glance_steps`. None is cached: every step finds
what an earlier run left in the cloud (the target image by the run key, segments by name), so
a re-run carries on. The temporary URL of a ``web-download`` never leaves
:func:`import_image` (not a parameter, not a result, not logged).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from imagehop.errors import ImageNotTransferableError
from imagehop.procedure.glance_steps import (
    TargetImage,
    ensure_target_image,
    start_import,
    verify_copy,
)
from imagehop.procedure.request import Clouds, TransferIdentity
from imagehop.procedure.transport import TargetImport
from imagehop.tasks import limits
from imagehop.tasks.cloud import clients
from imagehop.tasks.copy import plan_staged_copy
from imagehop.tasks.policy import FRESH, WAITING
from imagehop.transfer import TransferPlan
from imagehop.transfer.glance_source import discover_glance_source
from imagehop.transfer.tempurl import MAX_SECONDS, temporary_url


@task(name="plan-copy", task_run_name="plan-copy-{source_image_id:.8}", **FRESH)
def plan_copy_from_image(
    source_region: str,
    target_region: str,
    source_image_id: str,
    import_container: str,
    staged: str,
    segments_in: str | None = None,
    *,
    clouds: Clouds,
) -> TransferPlan:
    """Plan the target SLO ``staged`` (:func:`~imagehop.procedure.request.staged_object`) of
    a Glance image's data (ranged reads of ``.../file``); its segments go to ``segments_in``
    (default: the import container's ``_segments``)."""
    glance = clients(clouds).glance("source", source_region)
    layout = discover_glance_source(glance, source_image_id)
    return plan_staged_copy(
        layout, target_region, import_container, staged, segments_in, clouds=clouds
    )


@task(name="read-disk-format", task_run_name="disk-format-of-{image_id:.8}", **FRESH)
def source_disk_format(region: str, image_id: str, *, clouds: Clouds) -> str:
    """The ``disk_format`` of the source image (a server's snapshot in a Glance region: the
    cloud chose it), which names the staged copy.

    Raises:
        ImageNotTransferableError: the image has none (the new image would need one too).
    """
    disk_format = clients(clouds).glance("source", region).get_image(image_id).disk_format
    if not disk_format:
        raise ImageNotTransferableError(
            f"image {image_id} in {region} has no disk_format: the new image needs one; set it "
            "on the source image"
        )
    return disk_format


@task(name="create-target-image", task_run_name="create-image-in-{region}", **FRESH)
def create_target_image(
    region: str,
    name: str,
    identity: TransferIdentity,
    owner: str,
    source_region: str,
    source_image_id: str,
    formats: tuple[str | None, str | None],
    min_disk: int,
    min_ram: int,
    *,
    clouds: Clouds,
) -> TargetImage:
    """The target image of this run (an earlier run's, else a new ``queued`` one) with
    ``formats`` (``disk_format``, ``container_format``; None: the source image's, e.g. a
    server's snapshot, whose format the cloud picked)."""
    c = clients(clouds)
    disk, container = formats
    if disk is None or container is None:
        source = c.glance("source", source_region).get_image(source_image_id)
        disk, container = disk or source.disk_format, container or source.container_format
    if disk is None or container is None:
        raise ImageNotTransferableError(
            f"image {source_image_id} in {source_region} has no disk_format or container_format:"
            " the new image needs both; set them on the source image"
        )
    image = ensure_target_image(
        c.glance("target", region),
        name,
        identity,
        owner,
        source_image_id,
        (disk, container),
        min_disk,
        min_ram,
    )
    if image.reused:
        get_run_logger().info("carrying on with image %s (%s)", image.image_id, image.status)
    return image


@task(name="import-image", task_run_name="{how}-into-{region}", **FRESH)
def import_image(
    region: str,
    target: TargetImage,
    how: TargetImport,
    staged: tuple[str, str, int],
    source: tuple[str, str],
    *,
    clouds: Clouds,
) -> bool:
    """Bring the data in by ``how`` (web-download of a temporary URL of the staged copy,
    glance-download from the source, glance-direct staging, or PUT file)."""
    c = clients(clouds)
    # valid while the import may run (within what a temporary URL may live)
    seconds = min(int(c.settings().import_deadline_seconds), MAX_SECONDS)
    staging = None if how == "glance-download" else c.objects("target", region)  # it may have none
    return start_import(
        c.glance("target", region),
        staging,
        target,
        how,
        staged,
        source,
        seconds,
        temporary_url,
    )


@task(name="wait-for-image", task_run_name="wait-for-image-{image_id:.8}", **WAITING)
def wait_for_target_image(region: str, image_id: str, *, clouds: Clouds) -> str:
    """Wait until the imported image is ``active``.

    Raises:
        TaskFailedError: the import failed (the cloud's reason).
    """
    c = clients(clouds)
    image = c.glance("target", region).wait_for_import(
        image_id, c.settings().import_deadline_seconds
    )
    return image.id


@task(name="verify-copy", task_run_name="verify-{image_id:.8}", **FRESH)
def verify_target_image(
    source_region: str,
    source_image_id: str | None,
    region: str,
    image_id: str,
    size: int | None,
    *,
    clouds: Clouds,
) -> str:
    """Compare the new image with the source (hashes; a Rackspace export: the size).

    Raises:
        IntegrityError: not the same bytes; the image was deleted or deactivated.
    """
    c = clients(clouds)
    glance = c.glance("target", region)
    source = None
    if source_image_id is not None:
        source = c.glance("source", source_region).get_image(source_image_id)
    checked = verify_copy(glance, glance.get_image(image_id), source, size)
    get_run_logger().info("%s", checked)
    return checked


def glance_import_and_wait(
    region: str,
    target: TargetImage,
    how: TargetImport,
    staged: tuple[str, str, int],
    source: tuple[str, str],
    *,
    clouds: Clouds,
) -> str:
    """Import and wait, holding one of the region's import slots meanwhile."""
    with limits.region_slot("import", region):
        import_image(region, target, how, staged, source, clouds=clouds)
        return wait_for_target_image(region, target.image_id, clouds=clouds)
