"""Image bytes in the region's Swift, in the sandbox's service account (hidden from tenants).

An image small enough for one object is ``images/<id>``; a larger one is an SLO manifest
``images/<id>`` over segments ``images_segments/<id>/00000001``, ... no larger than the
cluster's single-object cap. ``checksum`` is an MD5 over a packaging of the bytes (so it differs
between two copies of the same content, as on Cloud Images); ``md5`` is the content's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

from imagehop.sandbox.models import ImageContent
from imagehop.sandbox.swift_io import (
    SwiftAccount,
    put_slo_manifest,
    stream_body,
    write_parts,
)

CONTAINER = "images"
SEGMENTS = "images_segments"
LARGEST_PART = 64 * 1024 * 1024


def part_size(max_file_size: int | None) -> int:
    return LARGEST_PART if max_file_size is None else min(LARGEST_PART, max_file_size)


def store_content(
    account: SwiftAccount,
    image_id: str,
    chunks: Iterable[bytes],
    size: int,
    max_file_size: int | None,
) -> ImageContent:
    """Write an image's bytes (``size`` is the expected length) and describe where they are."""
    packaging = hashlib.md5(b"imagehop-sandbox-ova:" + image_id.encode(), usedforsecurity=False)
    limit = part_size(max_file_size)
    account.ensure_container(CONTAINER)
    if size <= limit:
        written = write_parts(
            account, CONTAINER, _only_part(image_id), chunks, limit, packaging.update
        )
        layout = "plain"
    else:
        account.ensure_container(SEGMENTS)
        written = write_parts(
            account, SEGMENTS, lambda n: f"{image_id}/{n:08d}", chunks, limit, packaging.update
        )
        put_slo_manifest(account, CONTAINER, image_id, SEGMENTS, written)
        layout = "slo"
    return ImageContent(
        CONTAINER,
        image_id,
        written.size,
        written.md5,
        packaging.hexdigest(),
        layout,
        len(written.parts),
    )


def _only_part(name: str) -> Callable[[int], str]:
    def names(number: int) -> str:
        if number > 1:
            raise ValueError(f"content of image {name} is longer than announced")
        return name

    return names


def open_content(account: SwiftAccount, content: ImageContent) -> Iterator[bytes]:
    """Stream an image's bytes."""
    return stream_body(account.open(content.container, content.name))


def delete_content(account: SwiftAccount, content: ImageContent) -> None:
    query = "?multipart-manifest=delete" if content.layout == "slo" else ""
    account.delete(content.container, content.name, query)
