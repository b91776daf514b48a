"""The Python copiers the benchmark runs, each in its own process (so its peak RSS is its own).

    python -m benchmarks.copiers imagehop --src URL --dst URL --container C --object O \
        --target-container T [--workers 8] [--segment-size BYTES] [--progress]
    python -m benchmarks.copiers serial   --src URL --dst URL --container C --object O \
        --target-container T
    python -m benchmarks.copiers flow     ...as imagehop...   # needs PREFECT_API_URL
    python -m benchmarks.copiers ceiling  ...as imagehop...   # no source bytes read

``--workers auto`` (imagehop, flow): no concurrency given, the adaptive stream count.

``imagehop`` runs the engine in one call (``transfer_object``); ``flow`` runs the copy phase
exactly as ``transfer-image`` runs it: the ``plan-copy`` and ``copy-segments`` Prefect tasks
(engine, progress artifact and events included) in a flow run on the Prefect server at
``PREFECT_API_URL``. Only the tasks' client registry is replaced, by stores that use the
benchmark's token (the clusters have no Identity service). ``ceiling`` reads no byte of the
source: it plans the target exactly as imagehop does (same object size, same segments) and PUTs
in-memory bytes with ``--workers`` streams, then the SLO manifest: the rate no copy into the
target cluster can beat on this machine and network.

The token comes from the ``BENCH_TOKEN`` environment variable (not argv, which ``ps`` shows).
Each prints one JSON line at the end: ``{"seconds": ..., "bytes_moved": ..., ...}``, where
``seconds`` is the copy itself (after imports and set-up) and ``rss_before_copy_mib`` the
process's peak RSS when the copy began; with
``--progress``, ``progress <bytes done> <bytes total>`` lines every 2 % before that.
``imagehop`` exits 130 after SIGINT (once its segments in flight are finished).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from swiftclient import client as swift
from swiftclient.utils import LengthWrapper

from imagehop.object_store import ObjectStore
from imagehop.transfer import (
    TransferReport,
    discover_source,
    memory_stream_cap,
    plan_transfer,
    transfer_object,
)
from imagehop.transfer.plan import segment_size_for_streams

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


def stores(args: argparse.Namespace, token: str) -> tuple[ObjectStore, ObjectStore]:
    tokens = StaticToken(token)
    timeout = (10.0, 300.0)
    source = ObjectStore(args.src, tokens, timeout=timeout, region="DFW")
    target = ObjectStore(args.dst, tokens, timeout=timeout, region="IAD")
    return source, target


def peak_rss_mib() -> float:
    """This process's VmHWM so far (``ru_maxrss`` would include the forking parent's)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+)", status, re.MULTILINE).group(1)) / 1024  # type: ignore[union-attr]


def run_imagehop(args: argparse.Namespace, token: str) -> dict[str, Any]:
    source, target = stores(args, token)
    segment_size = args.segment_size
    if args.split_for_streams:  # before the clock starts: one more listing of the source
        layout = discover_source(source, args.container, args.object)
        streams = args.workers or memory_stream_cap(args.chunk_size)
        segment_size = segment_size_for_streams(layout, segment_size, streams)
    rss_before, started = peak_rss_mib(), time.monotonic()
    report = transfer_object(
        source,
        target,
        args.container,
        args.object,
        args.target_container,
        args.object,
        segment_size=segment_size,
        concurrency=args.workers,
        chunk_size=args.chunk_size,
        progress=progress_printer() if args.progress else None,
    )
    return {
        "seconds": time.monotonic() - started,
        "rss_before_copy_mib": rss_before,
        "bytes_moved": report.bytes_copied,
        "segments": len(report.plan.segments),
        "segments_skipped": report.segments_skipped,
        "segment_size": report.plan.segment_size,
        "segment_seconds": [round(result.seconds, 3) for result in report.results],
        **streams_of(report),
    }


def streams_of(report: TransferReport) -> dict[str, Any]:
    """The stream count the copy ran with, and how an adaptive one got there."""
    return {
        "streams": report.streams,
        "streams_adaptive": report.streams_adaptive,
        "stream_changes": [
            [change.at_seconds, change.streams, change.reason] for change in report.stream_changes
        ],
    }


class MemoryBody:
    """``length`` bytes read from one in-memory block, over and over (no source, no copy)."""

    def __init__(self, block: bytes, length: int) -> None:
        self._block = memoryview(block)
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        count = min(len(self._block), self.remaining if size < 0 else size, self.remaining)
        self.remaining -= count
        return bytes(self._block[:count])


def run_ceiling(args: argparse.Namespace, token: str) -> dict[str, Any]:
    """Parallel PUTs of in-memory bytes into the target, segment for segment as imagehop's
    plan lays the target out, ``--workers`` at once, then the SLO manifest."""
    from concurrent.futures import ThreadPoolExecutor

    source, target = stores(args, token)
    layout = discover_source(source, args.container, args.object)
    plan = plan_transfer(
        layout, target.limits(), args.target_container, args.object, args.segment_size
    )
    streams = args.workers or memory_stream_cap(args.chunk_size)  # auto: its largest count
    block = os.urandom(args.chunk_size)
    rss_before, started = peak_rss_mib(), time.monotonic()
    target.ensure_container(plan.target_container)
    target.ensure_container(plan.segments_container)

    def put(index: int) -> str:
        spec = plan.segments[index]
        body = MemoryBody(block, spec.length)
        return target.put_stream(plan.segments_container, spec.name, body, spec.length)

    with ThreadPoolExecutor(streams) as pool:
        etags = list(pool.map(put, range(len(plan.segments))))
    entries = [
        {"path": plan.segment_path(spec), "etag": etag, "size_bytes": spec.length}
        for spec, etag in zip(plan.segments, etags, strict=True)
    ]
    target.put_slo_manifest(plan.target_container, plan.target_object, entries)
    return {
        "seconds": time.monotonic() - started,
        "rss_before_copy_mib": rss_before,
        "bytes_moved": plan.size,
        "segments": len(plan.segments),
        "streams": min(streams, len(plan.segments)),
    }


class BenchClients:
    """Stands in for the tasks' client registry: the two stores, settings from the args."""

    def __init__(self, args: argparse.Namespace, token: str) -> None:
        from imagehop.settings import Settings

        source, target = stores(args, token)
        self._stores = {"source": source, "target": target}
        self._settings = Settings(
            username="bench",
            api_key="unused",
            segment_size_bytes=args.segment_size,
            chunk_size_bytes=args.chunk_size,
            transfer_concurrency=args.workers,  # None: the adaptive count, as by default
        )

    def objects(self, side: str, region: str) -> ObjectStore:
        return self._stores[side]

    def settings(self) -> Any:
        return self._settings


def run_flow(args: argparse.Namespace, token: str) -> dict[str, Any]:
    """The copy phase of transfer-image (plan-copy, copy-segments) in a Prefect flow run."""
    from prefect import flow

    import imagehop.tasks.copy as copy_tasks
    from imagehop.procedure.request import Clouds
    from imagehop.tasks import progress

    bench_clients = BenchClients(args, token)
    copy_tasks.clients = lambda clouds=None: bench_clients  # type: ignore[assignment]
    source_image = args.object.removesuffix(".vhd")
    location = f"{args.container}/{args.object}"

    @flow(name="bench-copy-phase", persist_result=False)
    def copy_phase() -> tuple[Any, float]:
        """transfer-image's copy phase, timed inside the flow run (as its phase timing is)."""
        began = time.monotonic()
        clouds = Clouds()  # the process's own settings on both sides, as a request without clouds
        plan = copy_tasks.plan_copy(
            "DFW", "IAD", location, source_image, args.target_container, clouds=clouds
        )
        report = copy_tasks.copy_segments(plan, "DFW", "IAD", "bench", args.workers, clouds=clouds)
        return report, time.monotonic() - began

    printer = progress_printer() if args.progress else None

    def on_event(event: progress.Event) -> None:
        if printer is not None and event.kind == "copy-progress":
            printer(event.bytes_done, event.bytes_total, event.segments_done, event.segments_total)

    rss_before, started = peak_rss_mib(), time.monotonic()
    with progress.subscribed(on_event):
        report, seconds = copy_phase()
    return {
        "seconds": seconds,
        "flow_run_seconds": time.monotonic() - started,
        "rss_before_copy_mib": rss_before,
        "bytes_moved": report.bytes_copied,
        "segments": len(report.plan.segments),
        "segments_skipped": report.segments_skipped,
        **streams_of(report),
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
    rss_before, started = peak_rss_mib(), time.monotonic()
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
    return {
        "seconds": time.monotonic() - started,
        "rss_before_copy_mib": rss_before,
        "bytes_moved": moved,
        "segments": len(manifest),
        "streams": 1,
    }


RUNNERS = {
    "imagehop": run_imagehop,
    "flow": run_flow,
    "serial": run_serial,
    "ceiling": run_ceiling,
}


def workers(text: str) -> int | None:
    """``8`` -> 8; ``auto`` -> None (no concurrency given: the adaptive count)."""
    if text.strip().lower() == "auto":
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--workers: a number of streams >= 1, or auto")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(RUNNERS))
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--container", required=True)
    parser.add_argument("--object", required=True)
    parser.add_argument("--target-container", required=True)
    parser.add_argument("--workers", type=workers, default=8, help="streams, or auto")
    parser.add_argument("--segment-size", type=int, default=256 * MiB)
    parser.add_argument("--chunk-size", type=int, default=MiB)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--split-for-streams",
        action="store_true",
        help="imagehop: target segments small enough for 3 per stream "
        "(imagehop.transfer.plan.segment_size_for_streams)",
    )
    args = parser.parse_args(argv)
    token = os.environ["BENCH_TOKEN"]
    # A shell starting the benchmark in the background may have left SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        result = RUNNERS[args.kind](args, token)
    except KeyboardInterrupt:
        print(json.dumps({"interrupted": True, "seconds": time.monotonic() - started}))
        sys.exit(130)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
