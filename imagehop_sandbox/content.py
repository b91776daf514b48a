"""Image bytes in the region's Swift, in the sandbox's service account (hidden from tenants).

An image small enough for one object is ``images/<id>``; a larger one is an SLO manifest
``images/<id>`` over segments ``images_segments/<id>/00000001``, ... no larger than the
cluster's single-object cap (a DLO instead when it would need more segments than an SLO may
have). ``checksum`` is an MD5 over a packaging of the bytes (so it differs
between two copies of the same content, as on Cloud Images); ``md5`` and ``sha512`` are the
content's own (Glance's ``checksum`` and ``os_hash_value``, in the regions that are Glance).
Glance's staging area (``PUT .../stage``) is the same layout under the name ``staging-<id>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

from imagehop_sandbox.models import ImageContent
from imagehop_sandbox.options import SandboxOptions
from imagehop_sandbox.swift_io import (
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
    size: int | None,
    options: SandboxOptions,
) -> ImageContent:
    """Write an image's bytes (``size`` is the expected length, None when unknown, e.g. a
    chunked upload) and describe where they are."""
    packaging = hashlib.md5(b"imagehop-sandbox-ova:" + image_id.encode(), usedforsecurity=False)
    sha512 = hashlib.sha512()

    def observe(chunk: bytes) -> None:
        packaging.update(chunk)
        sha512.update(chunk)

    limit = part_size(options.max_file_size)
    account.ensure_container(CONTAINER)
    if size is not None and size <= limit:
        written = write_parts(account, CONTAINER, _only_part(image_id), chunks, limit, observe)
        layout = "plain"
        if not written.parts:  # no bytes at all: one empty object
            account.put(CONTAINER, image_id, b"")
    else:
        account.ensure_container(SEGMENTS)
        written = write_parts(
            account, SEGMENTS, lambda n: f"{image_id}/{n:08d}", chunks, limit, observe
        )
        if not written.parts:  # no bytes at all: one empty object
            account.put(CONTAINER, image_id, b"")
            layout = "plain"
        elif len(written.parts) <= options.max_manifest_segments:
            put_slo_manifest(account, CONTAINER, image_id, SEGMENTS, written)
            layout = "slo"
        else:
            manifest = {"X-Object-Manifest": f"{SEGMENTS}/{image_id}/"}
            account.put(CONTAINER, image_id, b"", manifest)
            layout = "dlo"
    return ImageContent(
        CONTAINER,
        image_id,
        written.size,
        written.md5,
        packaging.hexdigest(),
        layout,
        max(1, len(written.parts)),
        sha512.hexdigest(),
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
    if content.layout == "slo":
        account.delete(content.container, content.name, "?multipart-manifest=delete")
        return
    if content.layout == "dlo":
        for name in account.list_names(SEGMENTS, f"{content.name}/"):
            account.delete(SEGMENTS, name)
    account.delete(content.container, content.name)
