"""The Python copiers the benchmark runs, each in its own process (so its peak RSS is its own).

    python -m benchmarks.copiers imagehop --src URL --dst URL --container C --object O \
        --target-container T [--workers 8] [--segment-size BYTES] [--progress]
    python -m benchmarks.copiers serial   --src URL --dst URL --container C --object O \
        --target-container T

The token comes from the ``BENCH_TOKEN`` environment variable (not argv, which ``ps`` shows).
Each prints one JSON line at the end: ``{"seconds": ..., "bytes_moved": ..., ...}``; with
``--progress``, ``progress <bytes done> <bytes total>`` lines every 2 % before that.
``imagehop`` exits 130 after SIGINT (once its segments in flight are finished).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from swiftclient import client as swift
from swiftclient.utils import LengthWrapper

from imagehop.object_store import ObjectStore
from imagehop.transfer import transfer_object

MiB = 1024 * 1024


class StaticToken:
    """A TokenProvider for a token issued for the whole benchmark."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def invalidate(self, stale: str) -> None:
        raise SystemExit("benchmark token refused")


def progress_printer(step: float = 0.02) -> Any:
    shown = [-1.0]

    def show(done: int, total: int, segments_done: int, segments_total: int) -> None:
        if total and done / total >= shown[0] + step:
            shown[0] = done / total
            print(f"progress {done} {total}", flush=True)

    return show


def run_imagehop(args: argparse.Namespace, token: str) -> dict[str, Any]:
    tokens = StaticToken(token)
    timeout = (10.0, 300.0)
    source = ObjectStore(args.src, tokens, timeout=timeout, region="DFW")
    target = ObjectStore(args.dst, tokens, timeout=timeout, region="IAD")
    report = transfer_object(
        source,
        target,
        args.container,
        args.object,
        args.target_container,
        args.object,
        segment_size=args.segment_size,
        concurrency=args.workers,
        chunk_size=args.chunk_size,
        progress=progress_printer() if args.progress else None,
    )
    return {
        "bytes_moved": report.bytes_copied,
        "segments": len(report.plan.segments),
        "segments_skipped": report.segments_skipped,
    }


def run_serial(args: argparse.Namespace, token: str) -> dict[str, Any]:
    """The simplest segment-by-segment copy: for each DLO segment, GET -> PUT (with its MD5 as
    ETag), one at a time, then an SLO manifest."""
    src = swift.Connection(preauthurl=args.src, preauthtoken=token, retries=1, timeout=300)
    dst = swift.Connection(preauthurl=args.dst, preauthtoken=token, retries=1, timeout=300)
    headers = src.head_object(args.container, args.object)
    segment_container, prefix = headers["x-object-manifest"].split("/", 1)
    _, segments = src.get_container(segment_container, prefix=prefix, full_listing=True)
    segments_container = f"{args.target_container}_segments"
    dst.put_container(args.target_container)
    dst.put_container(segments_container)
    manifest, moved = [], 0
    for segment in segments:
        _, body = src.get_object(segment_container, segment["name"], resp_chunk_size=MiB)
        size = int(segment["bytes"])
        etag = dst.put_object(
            segments_container,
            segment["name"],
            LengthWrapper(body, size),
            content_length=size,
            etag=segment["hash"],
        )
        manifest.append(
            {"path": f"/{segments_container}/{segment['name']}", "etag": etag, "size_bytes": size}
        )
        moved += size
    dst.put_object(
        args.target_container,
        args.object,
        json.dumps(manifest),
        query_string="multipart-manifest=put",
    )
    return {"bytes_moved": moved, "segments": len(manifest)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["imagehop", "serial"])
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--container", required=True)
    parser.add_argument("--object", required=True)
    parser.add_argument("--target-container", required=True)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--segment-size", type=int, default=256 * MiB)
    parser.add_argument("--chunk-size", type=int, default=MiB)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    token = os.environ["BENCH_TOKEN"]
    # A shell starting the benchmark in the background may have left SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        result = (run_imagehop if args.kind == "imagehop" else run_serial)(args, token)
    except KeyboardInterrupt:
        print(json.dumps({"interrupted": True, "seconds": time.monotonic() - started}))
        sys.exit(130)
    result["seconds"] = time.monotonic() - started
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
