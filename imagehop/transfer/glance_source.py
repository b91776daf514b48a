"""A Glance image as a transfer source: its data, read by ranged ``GET /v2/images/{id}/file``.

:func:`discover_glance_source` describes an ``active`` image as a
:class:`~imagehop.transfer.source_layout.SourceLayout` of kind ``glance``: one source segment,
the whole image, whose ``etag`` is the image's ``checksum`` (the MD5 of its data, which Glance
also sends as ``Content-MD5`` on every download). The planner then cuts it like any large
source (:func:`~imagehop.transfer.plan.plan_transfer`): an image that fits in one target
segment is PUT with the checksum as its ``ETag`` (Swift verifies it end to end); larger ones
are split into ranges, each checked as the engine checks split ranges (exactly the asked range,
``Content-MD5`` still the planned checksum, MD5 while sending equals Swift's ETag, then the
verified marker). :func:`~imagehop.transfer.engine.copy_plan` copies it with the source region's
:class:`~imagehop.glance.GlanceImages` as ``source``::

    layout = discover_glance_source(images, image_id)
    plan = plan_transfer(layout, target.limits(), container, name, segment_size)
    report = copy_plan(images, target, plan, concurrency=8)
"""

from __future__ import annotations

from imagehop.errors import ImageNotTransferableError
from imagehop.glance import GlanceImages
from imagehop.image import Image
from imagehop.transfer.source_layout import GLANCE_CONTAINER, SourceLayout, SourceSegment

OCTET_STREAM = "application/octet-stream"


def discover_glance_source(images: GlanceImages, image_id: str) -> SourceLayout:
    """The layout of Glance image ``image_id`` in the region ``images`` talks to.

    Raises:
        NotFoundError: no such image visible to this account.
        ImageNotTransferableError: the image is not ``active``, or Glance gives no size or no
            checksum for it (nothing to verify the copy against).
    """
    return glance_layout(images.get_image(image_id))


def glance_layout(image: Image) -> SourceLayout:
    """The layout of an image record already read (see :func:`discover_glance_source`)."""
    where = f"image {image.id}"
    if image.status != "active":
        raise ImageNotTransferableError(
            f"{where} is {image.status!r}: only an active image has data to copy; wait until "
            "it is active or pick another image"
        )
    if image.size is None or image.size < 0:
        raise ImageNotTransferableError(f"{where} has no size: Glance holds no data for it")
    if not image.checksum:
        raise ImageNotTransferableError(
            f"{where} has no checksum: its copy could not be verified; re-upload it so that "
            "Glance computes one"
        )
    segments = (
        (
            SourceSegment(
                container=GLANCE_CONTAINER, name=image.id, length=image.size, etag=image.checksum
            ),
        )
        if image.size
        else ()
    )
    return SourceLayout(
        kind="glance",
        container=GLANCE_CONTAINER,
        name=image.id,
        size=image.size,
        etag=image.checksum,
        content_type=OCTET_STREAM,
        segments=segments,
    )
