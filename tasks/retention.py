"""Retention steps of replicate-server: find the copies of a server and what imagehop made for
them, and delete images (the intermediates go through :mod:`imagehop.tasks.cleanup`)."""

from __future__ import annotations

from prefect import get_run_logger, task

from imagehop.image import Image
from imagehop.procedure.registry import Side
from imagehop.procedure.request import RUN_KEY_PROPERTY, Clouds
from imagehop.procedure.retention import is_copy_of, is_snapshot_for
from imagehop.tasks.cloud import clients
from imagehop.tasks.policy import FRESH


@task(name="find-copies", task_run_name="find-copies-of-{server_id:.8}-in-{region}", **FRESH)
def find_copies(
    region: str, server_id: str, coordinating_key: str, coordinating_value: str, *, clouds: Clouds
) -> list[Image]:
    """Images of the target account in ``region`` that are copies imagehop made of the
    server (listed by the coordinating property, then every marker checked)."""
    c = clients(clouds)
    owner = c.tokens("target").tenant_id or ""
    listed = c.images("target", region).find_images_by_property(
        coordinating_key, coordinating_value
    )
    return [
        image
        for image in listed
        if is_copy_of(image, server_id, coordinating_key, coordinating_value, owner)
    ]


@task(name="find-snapshots", task_run_name="find-snapshots-{run_key}", **FRESH)
def find_snapshots(region: str, server_id: str, run_key: str, *, clouds: Clouds) -> list[Image]:
    """The snapshots of the server imagehop made in ``region`` for ``run_key``."""
    c = clients(clouds)
    owner = c.tokens("source").tenant_id or ""
    listed = c.images("source", region).find_images_by_property(RUN_KEY_PROPERTY, run_key)
    return [image for image in listed if is_snapshot_for(image, server_id, run_key, owner)]


@task(name="delete-image", task_run_name="delete-image-{image_id:.8}", **FRESH)
def delete_image(side: Side, region: str, image_id: str, *, clouds: Clouds) -> bool:
    """Delete the image; False if it was already gone (a repeated step is not an error)."""
    deleted = clients(clouds).images(side, region).delete_image(image_id)
    state = "deleted" if deleted else "already gone:"
    get_run_logger().info("%s %s image %s in %s", state, side, image_id, region)
    return deleted
