"""What a process holds before imagehop copies a byte: the peak RSS of each layer under the copy.

    python -m benchmarks.memory_floor [--reps 3]

Each stage runs in a fresh interpreter and prints its ``VmHWM`` (peak RSS) at the end:

* ``python``: the bare interpreter;
* ``engine imports``: what ``imagehop-N`` in ``transfer_bench`` imports before its copy;
* ``import prefect``;
* ``+ imagehop's flows``: ``import imagehop.flows.transfer_image`` after Prefect;
* ``empty flow run``: a flow with one task that does nothing, run on a real ``prefect server``
  (the benchmark starts one, as ``transfer_bench`` does for ``flow-N``): Prefect's own floor
  for any flow run, before imagehop imports or copies anything;
* ``empty flow run + imagehop's flows``: the same with ``imagehop.flows.transfer_image``
  imported: the floor of ``transfer-image``'s process before its copy.

``transfer_bench``'s ``flow-N`` rows add the copy's own memory on top of the last one (its
``copy's RSS`` column). Medians of ``--reps`` runs are printed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.transfer_bench import REPO, start_prefect_server

PEAK = (
    "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "print('peak-kib', peak.split()[1])\n"
)
EMPTY_RUN = (
    "from prefect import flow, task\n"
    "@task\n"
    "def nothing():\n"
    "    return None\n"
    "@flow(persist_result=False)\n"
    "def empty():\n"
    "    nothing()\n"
    "empty()\n"
)
STAGES = {
    "python": "",
    "engine imports": "import imagehop.transfer, imagehop.object_store, imagehop.settings\n",
    "import prefect": "import prefect\n",
    "+ imagehop's flows": "import prefect\nimport imagehop.flows.transfer_image\n",
    "empty flow run": EMPTY_RUN,
    "empty flow run + imagehop's flows": "import imagehop.flows.transfer_image\n" + EMPTY_RUN,
}


def peak_mib(code: str, env: dict[str, str]) -> float:
    """The peak RSS of a fresh interpreter running ``code``, in MiB."""
    done = subprocess.run(
        [sys.executable, "-c", code + PEAK],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("peak-kib "))
    return int(line.split()[1]) / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="imagehop-memory-"))
    server, env = start_prefect_server(root)
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    try:
        peaks: dict[str, list[float]] = {name: [] for name in STAGES}
        for _ in range(args.reps):  # interleaved, as transfer_bench's repetitions
            for name, code in STAGES.items():
                peaks[name].append(peak_mib(code, env))
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    print(f"| stage | peak RSS MiB (median of {args.reps}) | runs |")
    print("|---|---|---|")
    for name, values in peaks.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {statistics.median(values):.1f} | {runs} |")


if __name__ == "__main__":
    main()
