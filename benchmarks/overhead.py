"""Orchestration overhead of one whole ``transfer-image`` run on the embedded Prefect server.

    python -m benchmarks.overhead [--runs 3] [--disk-size 40MB] [--export-segment-size 8MiB]

Runs the demo transfer (the demo server in DFW -> snapshot -> export -> copy -> import ->
properties -> find -> boot in IAD, cleanup) against a private local cloud whose tasks,
snapshots and boots take no extra time, with a fast-forward clock (30 s polls cost a few real
milliseconds). For each run it reports:

* wall: the whole flow call;
* copy: the time segments were being copied (union of the copy intervals);
* waits: time inside the polling waits (export/import tasks, snapshot, boot): the cloud's
  own work, seen through polls whose 30 s sleeps cost 10 ms here (``sleeps``: those sleeps);
* overhead = wall - copy - waits: Prefect (flow and task runs, states, caching, artifacts)
  plus imagehop's own API calls outside the waits. Goal: <= 15 s;
* prefect: wall minus every span spent in a cloud API call, a wait or a copy: Prefect's own
  share of the overhead (the rest of the overhead is Swift and API work that grows with the
  number of segments: listings, the manifest check, bulk deletes);
* per segment: (copy phase - copy) / segments, what each segment task adds.

The temporary Prefect server is started by a warm-up flow first, so its start-up (15-20 s on
a fresh home) is not counted. Figures are noisy on a busy machine: run it alone. A larger
disk in smaller export segments (``--disk-size 100MiB --export-segment-size 1MiB``: 100
segments) shows what each segment task adds.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HOME = tempfile.mkdtemp(prefix="imagehop-overhead-prefect-")
atexit.register(shutil.rmtree, HOME, ignore_errors=True)  # runs after Prefect's own exit hooks
os.environ.update(
    {
        "PREFECT_HOME": HOME,
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    }
)

from prefect import flow  # noqa: E402

import imagehop.transfer.engine  # noqa: E402
from imagehop.compute import ComputeClient  # noqa: E402
from imagehop.flows.transfer_image import transfer_image  # noqa: E402
from imagehop.http import HttpClient  # noqa: E402
from imagehop.image import ImageClient  # noqa: E402
from imagehop.object_store import ObjectStore  # noqa: E402
from imagehop.procedure import BootRequest, TransferRequest, TransferResult  # noqa: E402
from imagehop.tasks import cloud  # noqa: E402
from imagehop_sandbox import control  # noqa: E402
from imagehop_sandbox.handle import LocalCloud  # noqa: E402
from imagehop_sandbox.options import parse_size  # noqa: E402

FAST_CLOUD = {
    "task_pending_seconds": 0.0,
    "task_processing_seconds": 0.0,
    "snapshot_seconds": 0.0,
    "boot_seconds": 0.0,
}


class FastForward:
    """A clock whose sleeps move its readings but block at most ``real_sleep`` seconds."""

    def __init__(self, real_sleep: float = 0.01) -> None:
        self._offset = 0.0
        self._real_sleep = real_sleep
        self._lock = threading.Lock()
        self.slept = 0.0

    def time(self) -> float:
        return time.time() + self._offset

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    def sleep(self, seconds: float) -> None:
        real = min(max(0.0, seconds), self._real_sleep)
        with self._lock:
            self._offset += max(0.0, seconds)
            self.slept += real
        time.sleep(real)


class Intervals:
    """Records when some functions were running (wraps them while the block runs)."""

    def __init__(self, *targets: tuple[Any, str]) -> None:
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._targets = targets
        self._originals = [getattr(owner, name) for owner, name in targets]

    def __enter__(self) -> Intervals:
        for (owner, name), original in zip(self._targets, self._originals, strict=True):
            setattr(owner, name, self._timed(original))
        return self

    def __exit__(self, *exc: object) -> None:
        for (owner, name), original in zip(self._targets, self._originals, strict=True):
            setattr(owner, name, original)

    def _timed(self, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.spans.append((began, time.perf_counter()))

        return timed

    def busy_seconds(self, *others: Intervals) -> float:
        """Length of the union of the recorded spans (and those of ``others``)."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans + [s for other in others for s in other.spans]):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total


@flow(name="warm-up")
def warm_up() -> int:
    return 1


def measure(server_id: str, number: int) -> dict[str, float]:
    """One demo transfer; its wall time split into copying, waiting and the rest."""
    clock = FastForward()
    request = TransferRequest(
        source_region="DFW",
        target_region="IAD",
        server_id=server_id,
        run_key=f"overhead-{number}-{time.time_ns()}",
        boot=BootRequest(),
    )
    copying = Intervals((imagehop.transfer.engine, "copy_segment"))
    waiting = Intervals(
        (ImageClient, "wait_for_task"),
        (ImageClient, "wait_for_image_active"),
        (ComputeClient, "wait_for_server_active"),
    )
    calling = Intervals((HttpClient, "request"), (ObjectStore, "_call"))
    with cloud.use_clock(clock), copying, waiting, calling:
        began = time.perf_counter()
        result = transfer_image(request)
        wall = time.perf_counter() - began
    assert isinstance(result, TransferResult)
    copy_phase = next(phase.seconds for phase in result.phases if phase.name == "copy")
    copy_seconds, wait_seconds = copying.busy_seconds(), waiting.busy_seconds()
    outside_prefect = copying.busy_seconds(waiting, calling)
    return {
        "wall": wall,
        "copy": copy_seconds,
        "waits": wait_seconds,
        "sleeps": clock.slept,
        "overhead": wall - copy_seconds - wait_seconds,
        "prefect": wall - outside_prefect,
        "per segment": (copy_phase - copy_seconds) / max(result.segments_total, 1),
        "segments": float(result.segments_total),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--disk-size", type=parse_size, default=40_000_000)
    parser.add_argument("--export-segment-size", type=parse_size, default=8 * 1024 * 1024)
    parser.add_argument("--keep", action="store_true", help="leave the local cloud running")
    args = parser.parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="imagehop-overhead-cloud-"))
    sizes = {
        "server_disk_bytes": args.disk_size,
        "export_segment_bytes": args.export_segment_size,
        "max_file_size": max(16 * 1024 * 1024, args.export_segment_size),
    }
    info = control.up(state_dir, stop_with_pid=os.getpid(), **FAST_CLOUD, **sizes)
    try:
        local = LocalCloud(info)
        os.environ.update(local.settings_env())
        server_id = local.admin.seed()["DFW"]["demo_server"]
        began = time.perf_counter()
        warm_up()
        print(f"Prefect temporary server up in {time.perf_counter() - began:.1f} s (not counted)")
        rows = [measure(server_id, n) for n in range(args.runs)]
    finally:
        if not args.keep:
            control.down(state_dir)
            shutil.rmtree(state_dir, ignore_errors=True)
    columns = ("wall", "copy", "waits", "sleeps", "overhead", "prefect", "per segment", "segments")
    print("run " + " ".join(f"{name:>11}" for name in columns))
    for number, row in enumerate(rows, 1):
        print(f"{number:>3} " + " ".join(f"{row[name]:11.2f}" for name in columns))
    overhead = statistics.median(row["overhead"] for row in rows)
    prefect = statistics.median(row["prefect"] for row in rows)
    print(f"median orchestration overhead: {overhead:.2f} s (goal <= 15 s), {prefect:.2f} s of it")
    print("outside any cloud API call (Prefect itself)")
    return 0 if overhead <= 15.0 else 1


if __name__ == "__main__":
    sys.exit(main())
