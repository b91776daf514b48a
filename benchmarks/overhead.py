"""Orchestration overhead of one whole ``transfer-image`` run on the embedded Prefect server.

    python -m benchmarks.overhead [--runs 3] [--keep]

Runs the demo transfer (the demo server in DFW -> snapshot -> export -> copy -> import ->
properties -> find -> boot in IAD, cleanup) against a private local cloud whose tasks,
snapshots and boots take no extra time, with a fast-forward clock (30 s polls cost a few real
milliseconds). For each run it reports:

* wall: the whole flow call;
* copy: the time segments were being copied (union of the copy intervals);
* sleeps: real time spent sleeping between polls (while the cloud exports/imports);
* overhead = wall - copy - sleeps: Prefect (task and flow runs, states, artifacts) plus
  imagehop's own API calls. Goal: <= 15 s.

The temporary Prefect server is started by a warm-up flow first, so its start-up (15-20 s on
a fresh home) is not counted. Figures are noisy on a busy machine: run it alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HOME = tempfile.mkdtemp(prefix="imagehop-bench-prefect-")
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

import tasks.copy  # noqa: E402
from flows.transfer_image import transfer_image  # noqa: E402
from imagehop.procedure import BootRequest, TransferRequest, TransferResult  # noqa: E402
from imagehop.sandbox import control  # noqa: E402
from imagehop.sandbox.testing import LocalCloud  # noqa: E402
from tasks import cloud  # noqa: E402

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


class CopyTimer:
    """Records when segments were being copied (wraps the engine call in ``tasks.copy``)."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._real = tasks.copy.copy_one_segment

    def __enter__(self) -> CopyTimer:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return self._real(*args, **kwargs)
            finally:
                with self._lock:
                    self.intervals.append((began, time.perf_counter()))

        tasks.copy.copy_one_segment = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        tasks.copy.copy_one_segment = self._real

    def busy_seconds(self) -> float:
        """Length of the union of the copy intervals."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.intervals):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total


@flow(name="warm-up")
def warm_up() -> int:
    return 1


def measure(cloud_handle: LocalCloud, server_id: str, number: int) -> dict[str, float]:
    clock = FastForward()
    request = TransferRequest(
        source_region="DFW",
        target_region="IAD",
        server_id=server_id,
        run_key=f"overhead-{number}-{time.time_ns()}",
        boot=BootRequest(),
    )
    with cloud.use_clock(clock), CopyTimer() as copy:
        began = time.perf_counter()
        result = transfer_image(request)
        wall = time.perf_counter() - began
    assert isinstance(result, TransferResult)
    copy_seconds = copy.busy_seconds()
    return {
        "wall": wall,
        "copy": copy_seconds,
        "sleeps": clock.slept,
        "overhead": wall - copy_seconds - clock.slept,
        "bytes": float(result.bytes_copied),
        "segments": float(result.segments_total),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the local cloud running")
    args = parser.parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="imagehop-bench-cloud-"))
    info = control.up(state_dir, stop_with_pid=os.getpid(), **FAST_CLOUD)
    try:
        local = LocalCloud(info)
        os.environ.update(local.settings_env())
        server_id = local.admin.seed()["DFW"]["demo_server"]
        began = time.perf_counter()
        warm_up()
        print(f"Prefect temporary server up in {time.perf_counter() - began:.1f} s (not counted)")
        rows = [measure(local, server_id, n) for n in range(args.runs)]
    finally:
        if not args.keep:
            control.down(state_dir)
    print(f"{'run':>3} {'wall s':>7} {'copy s':>7} {'sleeps s':>8} {'overhead s':>10}  bytes/segments")
    for number, row in enumerate(rows, 1):
        print(
            f"{number:>3} {row['wall']:7.2f} {row['copy']:7.2f} {row['sleeps']:8.2f} "
            f"{row['overhead']:10.2f}  {row['bytes']:.0f}/{row['segments']:.0f}"
        )
    overhead = statistics.median(row["overhead"] for row in rows)
    print(f"median orchestration overhead: {overhead:.2f} s (goal <= 15 s)")
    return 0 if overhead <= 15.0 else 1


if __name__ == "__main__":
    sys.exit(main())
