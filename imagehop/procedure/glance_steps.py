"""The target steps of the OpenStack Glance transports, each *find, else create*.

The target image is created ``queued`` with the run key and :data:`COPY_OF_PROPERTY` but
**without** the coordinating property: that is put on only after the copy verified
(:func:`verify_copy`), so an image that failed (or never reached) the check is never taken
for a finished transfer (:func:`~imagehop.procedure.steps.find_transferred_image`), and a
re-run finds the earlier run's image by the run key and carries on from its status.

The temporary URL a ``web-download`` import reads is made here, inside the step, and goes
only into the import call: it is never logged, returned or a parameter
(:mod:`imagehop.transfer.tempurl`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from imagehop.errors import IntegrityError
from imagehop.glance import GlanceImages, check_same_image
from imagehop.image import Image
from imagehop.object_store import ObjectStore
from imagehop.procedure.request import (
    COPY_OF_PROPERTY,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    TransferIdentity,
)
from imagehop.procedure.steps import find_run_images
from imagehop.procedure.transport import TargetImport

log = logging.getLogger(__name__)

#: Statuses of a target image a re-run carries on from (anything else: a new image).
CARRY_ON = frozenset({"queued", "saving", "uploading", "importing", "active"})
#: A function making a temporary URL: ``(store, container, name, seconds) -> url``.
TemporaryUrl = Callable[[ObjectStore, str, str, int], str]


class TargetImage(BaseModel):
    """This transfer's image in the target, and where it stands."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    status: str
    reused: str | None = None  # what an earlier run left that this run carries on from


def ensure_target_image(
    glance: GlanceImages,
    name: str,
    identity: TransferIdentity,
    owner: str,
    source_image_id: str,
    formats: tuple[str, str],
    min_disk: int = 0,
    min_ram: int = 0,
) -> TargetImage:
    """This run's target image: the one an earlier run created (run key, a copy of
    ``source_image_id``, a status to carry on from), else a new ``queued`` one.

    Args:
        formats: ``(disk_format, container_format)`` of the new image.
    """
    for image in find_run_images(glance, identity.run_key, owner):
        if image.value_of(COPY_OF_PROPERTY) == source_image_id and image.status in CARRY_ON:
            return TargetImage(image_id=image.id, status=image.status, reused="target image")
    marks = {RUN_KEY_PROPERTY: identity.run_key, COPY_OF_PROPERTY: source_image_id}
    if identity.server_id is not None:
        marks[SERVER_PROPERTY] = identity.server_id
    disk_format, container_format = formats
    image = glance.create_image(
        name,
        disk_format=disk_format,
        container_format=container_format,
        min_disk=min_disk or None,
        min_ram=min_ram or None,
        properties=marks,
    )
    log.info("created image %s (%s/%s) for the copy of %s", image.id, disk_format,
             container_format, source_image_id)  # fmt: skip
    return TargetImage(image_id=image.id, status=image.status)


def _staging(store: ObjectStore | None, how: TargetImport) -> ObjectStore:
    """The target's object storage, which every import but glance-download reads from."""
    if store is None:
        raise ValueError(f"{how!r} reads the staged copy: it needs the target's object storage")
    return store


def start_import(
    glance: GlanceImages,
    store: ObjectStore | None,
    target: TargetImage,
    how: TargetImport,
    staged: tuple[str, str, int],
    source: tuple[str, str],
    url_seconds: int,
    temporary_url: TemporaryUrl,
) -> bool:
    """Bring the target image's data in by ``how``, unless an earlier run already did (the
    image is past ``queued``); True if this call started something.

    Args:
        store: the target's object storage, where the copy is staged (None only for
            ``glance-download``, which stages nothing: the target may offer none).
        staged: ``(container, object, size)`` of the staged copy in the target's Swift.
        source: ``(region, image id)`` of the source (for ``glance-download``).
        url_seconds: how long a ``web-download``'s temporary URL stays valid.
    """
    if target.status != "queued" and not (how == "glance-direct" and target.status == "uploading"):
        return False
    container, name, size = staged
    image_id = target.image_id
    method: dict[str, Any]
    if how == "web-download":
        url = temporary_url(_staging(store, how), container, name, url_seconds)
        method = {"name": "web-download", "uri": url}
    elif how == "glance-download":
        region, source_id = source
        method = {"name": "glance-download", "glance_image_id": source_id,
                  "glance_region": region, "glance_service_interface": "public"}  # fmt: skip
    elif how == "glance-direct":
        if target.status == "queued":
            _stream(
                _staging(store, how),
                container,
                name,
                size,
                lambda body: glance.stage(image_id, body, size),
            )
        method = {"name": "glance-direct"}
    elif how == "put-file":
        _stream(
            _staging(store, how),
            container,
            name,
            size,
            lambda body: glance.upload(image_id, body, size),
        )
        return True
    else:
        raise ValueError(f"{how!r} is not a Glance import (the import task has its own step)")
    glance.import_image(image_id, method)
    log.info("image %s: %s import started", image_id, how)
    return True


def _stream(
    store: ObjectStore, container: str, name: str, size: int, send: Callable[[Any], None]
) -> None:
    """One stream of the staged copy into ``send`` (bounded memory, no local disk)."""
    body = store.open_range(container, name, 0, size)
    try:
        send(body)
    finally:
        body.close()


def verify_copy(
    glance: GlanceImages, new: Image, source: Image | None, expected_size: int | None
) -> str:
    """The new image holds the source's bytes: its hashes equal the Glance source's, or (a
    Rackspace export, which has no image hash) its size equals the staged copy's, whose
    segments were verified by MD5 as they were copied. Returns what was checked.

    Raises:
        IntegrityError: it does not; the image was deleted (or, if the cloud refused the
            delete, deactivated) first, so nobody boots it.
    """
    try:
        if source is not None:
            check_same_image(source, new)
            return f"image {new.id}'s checksum and os_hash_value equal image {source.id}'s"
        if expected_size is not None and new.size != expected_size:
            raise IntegrityError(
                f"image {new.id} is {new.size} bytes, the staged copy {expected_size}: it is "
                "not the exported image"
            )
        return f"image {new.id} is {new.size} bytes, as the staged copy"
    except IntegrityError as error:
        deleted = glance.discard_image(new.id)
        done = "deleted it" if deleted else "the cloud refused the delete: deactivated it"
        raise IntegrityError(f"{error.message} (imagehop {done})", error.request_id) from None
