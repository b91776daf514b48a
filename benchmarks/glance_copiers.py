"""The copiers of :mod:`benchmarks.glance_bench`, each run in its own process.

    python -m benchmarks.glance_copiers stream --workers 8 ...
    python -m benchmarks.glance_copiers single-put ...
    python -m benchmarks.glance_copiers os-migrate --scratch DIR ...

Common arguments: ``--source-images URL --target-images URL --target-storage URL`` (what the
copier's host reaches, through the WAN proxy or not), ``--direct-storage URL`` (the target
region's Swift as its own Glance reaches it), ``--image ID``. The token comes from the
``BENCH_TOKEN`` environment variable (not argv, which ``ps`` shows).

Each copier ends when the new image is ``active`` in the target region and its checksum
equals the source's, and prints one JSON line: ``seconds`` (source image to usable copy),
``copy_seconds`` / ``import_seconds`` where the copier has two phases, ``rss_before_mib``
and the new image's id. What it staged is deleted after the clock stops.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from benchmarks.copiers import StaticToken, peak_rss_mib
from imagehop.glance import GlanceImages, check_same_image
from imagehop.image import Image
from imagehop.object_store import MiB, ObjectStore
from imagehop.settings import Settings
from imagehop.transfer import copy_plan, delete_segments, plan_transfer
from imagehop.transfer.glance_source import discover_glance_source
from imagehop.transfer.tempurl import staged_object_url

TIMEOUT = (10.0, 300.0)
IMPORT_DEADLINE = 3600.0
#: What os-migrate's ``export_blob`` reads per call (``download_image(stream=True)``).
OS_MIGRATE_CHUNK = MiB


def settings() -> Settings:
    return Settings(
        username="bench",
        api_key="unused",
        status_poll_interval_seconds=2.0,
        read_timeout_seconds=TIMEOUT[1],
    )


def glance(url: str, token: str) -> GlanceImages:
    return GlanceImages(url, StaticToken(token), settings())


def new_target_image(images: GlanceImages, source: Image, label: str) -> Image:
    return images.create_image(
        f"bench-{label}-{uuid.uuid4().hex[:8]}",
        disk_format=source.disk_format or "raw",
        container_format=source.container_format or "bare",
    )


def direct_url(url: str, direct_storage: str) -> str:
    """``url`` with the host of ``direct_storage``: a temporary URL's signature covers only
    its path, so the target's Glance can read it from its own region's Swift."""
    parts, direct = urlsplit(url), urlsplit(direct_storage)
    return urlunsplit(parts._replace(scheme=direct.scheme, netloc=direct.netloc))


def run_stream(args: argparse.Namespace, token: str) -> dict[str, Any]:
    """imagehop's streaming transport, as its core runs it."""
    source_images = glance(args.source_images, token)
    target_images = glance(args.target_images, token)
    store = ObjectStore(args.target_storage, StaticToken(token), timeout=TIMEOUT, region="DFW")
    source = source_images.get_image(args.image)
    container = f"bench-stream-{uuid.uuid4().hex[:8]}"
    rss_before, started = peak_rss_mib(), time.monotonic()
    layout = discover_glance_source(source_images, source.id)
    plan = plan_transfer(
        layout, store.limits(), container, f"{source.id}.img", args.segment_size, container
    )
    report = copy_plan(
        source_images, store, plan, concurrency=args.workers, chunk_size=args.chunk_size
    )
    copied = time.monotonic()
    url = direct_url(staged_object_url(store, plan, 3600), args.direct_storage)
    new = new_target_image(target_images, source, "stream")
    target_images.import_image(new.id, {"name": "web-download", "uri": url})
    imported = target_images.wait_for_import(new.id, IMPORT_DEADLINE)
    check_same_image(source, imported)
    seconds = time.monotonic() - started
    delete_segments(store, plan)
    store.delete_object(container, plan.target_object)
    return {
        "seconds": seconds,
        "copy_seconds": copied - started,
        "import_seconds": seconds - (copied - started),
        "rss_before_mib": rss_before,
        "segments": len(plan.segments),
        "streams": report.streams,
        "image": imported.id,
    }


class Download:
    """``GET .../file`` as a file-like object (what a PUT's body reads), MD5 checked."""

    def __init__(self, url: str, token: str, chunk: int) -> None:
        self.response = requests.get(
            url, headers={"X-Auth-Token": token}, stream=True, timeout=TIMEOUT
        )
        self.response.raise_for_status()
        self.expected_md5 = self.response.headers.get("Content-MD5")
        self.size = int(self.response.headers["Content-Length"])
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.chunks: Iterator[bytes] = self.response.iter_content(chunk)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.md5.update(chunk)
            yield chunk

    def check(self) -> None:
        if self.expected_md5 and self.md5.hexdigest() != self.expected_md5:
            raise RuntimeError("download's MD5 differs from its Content-MD5")


def put_file(images: GlanceImages, token: str, image_id: str, body: Any) -> None:
    """``PUT .../file`` in one stream (as openstacksdk's ``create_image(filename=...)``): a
    file is sent with its length, an iterator chunked."""
    response = requests.put(
        f"{images.base_url}/images/{image_id}/file",
        data=body,
        headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"},
        timeout=TIMEOUT,
    )
    response.raise_for_status()


def run_single_put(args: argparse.Namespace, token: str) -> dict[str, Any]:
    """One stream from the source's ``GET .../file`` into the target's ``PUT .../file``."""
    source_images = glance(args.source_images, token)
    target_images = glance(args.target_images, token)
    source = source_images.get_image(args.image)
    rss_before, started = peak_rss_mib(), time.monotonic()
    new = new_target_image(target_images, source, "single-put")
    download = Download(f"{source_images.base_url}/images/{source.id}/file", token, MiB)
    put_file(target_images, token, new.id, iter(download))
    download.check()
    imported = target_images.wait_for_image_active(new.id, IMPORT_DEADLINE)
    check_same_image(source, imported)
    return {
        "seconds": time.monotonic() - started,
        "rss_before_mib": rss_before,
        "image": imported.id,
    }


def run_os_migrate(args: argparse.Namespace, token: str) -> dict[str, Any]:
    """os-migrate's way: the whole image to local disk (1 MiB reads, MD5 against
    ``Content-MD5``), then create the target image and upload the file."""
    source_images = glance(args.source_images, token)
    target_images = glance(args.target_images, token)
    source = source_images.get_image(args.image)
    scratch = Path(tempfile.mkdtemp(prefix="os-migrate-", dir=args.scratch)) / "image.blob"
    rss_before, started = peak_rss_mib(), time.monotonic()
    try:
        download = Download(
            f"{source_images.base_url}/images/{source.id}/file", token, OS_MIGRATE_CHUNK
        )
        with open(scratch, "wb") as blob:
            for chunk in download:
                blob.write(chunk)
        download.check()
        downloaded = time.monotonic()
        new = new_target_image(target_images, source, "os-migrate")
        with open(scratch, "rb") as blob:
            put_file(target_images, token, new.id, blob)
        imported = target_images.wait_for_image_active(new.id, IMPORT_DEADLINE)
        check_same_image(source, imported)
        seconds = time.monotonic() - started
    finally:
        scratch.unlink(missing_ok=True)
        scratch.parent.rmdir()
    return {
        "seconds": seconds,
        "copy_seconds": downloaded - started,
        "import_seconds": seconds - (downloaded - started),
        "rss_before_mib": rss_before,
        "image": imported.id,
    }


RUNNERS = {"stream": run_stream, "single-put": run_single_put, "os-migrate": run_os_migrate}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(RUNNERS))
    for name in ("source-images", "target-images", "target-storage", "direct-storage", "image"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--segment-size", type=int, default=64 * MiB)
    parser.add_argument("--chunk-size", type=int, default=MiB)
    parser.add_argument("--scratch", default=None, help="os-migrate's local disk (a folder)")
    args = parser.parse_args(argv)
    token = os.environ["BENCH_TOKEN"]
    threading.current_thread().name = args.kind
    print(json.dumps(RUNNERS[args.kind](args, token)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
