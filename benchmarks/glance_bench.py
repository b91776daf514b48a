"""Benchmark: one image from an upstream-Glance region to another (issue 12's transports),
on the local cloud (both regions in Glance mode, every byte in the real Swift clusters).

    python -m benchmarks.glance_bench                          # 1 GiB, 3 reps, loopback + WAN
    python -m benchmarks.glance_bench --size 256MiB --reps 1 --no-wan

Copiers (:mod:`benchmarks.glance_copiers`), each in its own process, each ending when the
new image is ``active`` in the target region with the source's checksum:

* ``stream-N``   imagehop's streaming transport: N workers' ranged GETs of
                 ``/v2/images/{id}/file`` into segments in the target region's Swift (SLO,
                 verified per segment), then a ``web-download`` import of a temporary URL of
                 it by the target's Glance, hashes compared;
* ``single-put`` one stream: the source's ``GET .../file`` piped into ``PUT .../file``;
* ``os-migrate``  the os-migrate way: the whole image to local disk (1 MiB reads, MD5 against
                 ``Content-MD5``), then create the target image and upload the file.

Networks: ``loopback`` (direct) and ``wan``: the copier's host reaches both regions' APIs and
the target's Swift through a proxy with a per-connection cap and added round-trip time
(default 20 MB/s and 40 ms, as ``transfer_bench``'s profile). Inside the target region Glance
reads its own Swift directly, as a same-region temporary URL is read. Repetitions are
interleaved; medians are reported, with each copier's ratio to ``os-migrate`` and to
``single-put`` of the same network. Results go to ``benchmarks/results/glance-<time>.json``.

The machine is shared and CPU-bound (2 cores run the copier, the local cloud's Glance, which
hashes every byte it stores, and 8 Swift servers): read the figures as relative, and quote
the load average printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from benchmarks.transfer_bench import REPO, parse_size, run_child
from imagehop_sandbox import control
from imagehop_sandbox.handle import LocalCloud

MiB = 1024 * 1024
SOURCE, TARGET = "IAD", "DFW"
FAST = {"task_pending_seconds": 0.0, "task_processing_seconds": 0.0}


@dataclass
class Run:
    network: str
    copier: str
    rep: int
    seconds: float  # source image -> active, verified copy (inside the copier)
    mb_per_s: float
    process_seconds: float
    peak_rss_mib: float
    returncode: int
    load_average: float
    detail: dict[str, Any] = field(default_factory=dict)


class GlanceBench:
    """A local cloud with two Glance regions, a source image, the WAN proxy, the copiers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(args.root or tempfile.mkdtemp(prefix="imagehop-glance-bench-"))
        self.log = self.root / "copiers.log"
        self.proxy: subprocess.Popen[str] | None = None
        self.proxied: dict[str, str] = {}

    def start(self) -> None:
        options = dict(FAST, glance_regions=f"{SOURCE},{TARGET}")
        options["max_file_size"] = max(self.args.segment_size, 16 * MiB)
        info = control.up(self.root / "cloud", stop_with_pid=os.getpid(), **options)
        self.cloud = LocalCloud(info)
        self.tenant = self.cloud.main.tenant_id
        self.token = self.cloud.mint_token(self.cloud.main, lifetime_seconds=24 * 3600.0)
        began = time.monotonic()
        self.image = self.cloud.admin.create_image(
            SOURCE, self.tenant, disk_bytes=self.args.size, name="glance-bench-source"
        )["id"]
        print(f"source image {self.image}: {self.args.size} bytes in {SOURCE} "
              f"({time.monotonic() - began:.1f} s to make)", flush=True)  # fmt: skip

    def endpoints(self) -> dict[str, str]:
        return {
            "source-images": self.cloud.images_url(SOURCE),
            "target-images": self.cloud.images_url(TARGET),
            "target-storage": self.cloud.storage_url(TARGET, self.tenant),
        }

    def start_proxy(self) -> None:
        """One WAN proxy in front of the three endpoints the copier's host talks to."""
        direct = self.endpoints()
        hosts = [urlsplit(url).netloc for url in direct.values()]
        command = [sys.executable, "-m", "benchmarks.wan_proxy"]
        command += ["--rate", str(self.args.wan_rate), "--latency", str(self.args.wan_latency)]
        for host in hosts:
            command += ["--upstream", host]
        self.proxy = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO, text=True)
        assert self.proxy.stdout is not None
        ports = [int(self.proxy.stdout.readline().split()[1]) for _ in hosts]
        for (name, url), port in zip(direct.items(), ports, strict=True):
            parts = urlsplit(url)
            self.proxied[name] = urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.terminate()
            self.proxy.wait(timeout=10)
        control.down(self.root / "cloud")
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def command(self, copier: str, network: str) -> list[str]:
        urls = self.endpoints() if network == "loopback" else self.proxied
        kind = "stream" if copier.startswith("stream-") else copier
        command = [sys.executable, "-m", "benchmarks.glance_copiers", kind]
        for name, url in urls.items():
            command += [f"--{name}", url]
        command += ["--direct-storage", self.endpoints()["target-storage"]]
        command += ["--image", self.image, "--segment-size", str(self.args.segment_size)]
        if kind == "stream":
            command += ["--workers", copier.split("-")[1]]
        if kind == "os-migrate":
            scratch = self.root / "scratch"
            scratch.mkdir(exist_ok=True)
            command += ["--scratch", str(scratch)]
        return command

    def run_copier(self, copier: str, network: str, rep: int) -> Run:
        env = dict(os.environ, BENCH_TOKEN=self.token)
        child = run_child(self.command(copier, network), env, self.log)
        detail = json.loads(child.lines[-1]) if child.returncode == 0 and child.lines else {}
        seconds = float(detail.get("seconds", 0.0))
        if detail.get("image"):
            self.delete_image(detail["image"])
        run = Run(
            network,
            copier,
            rep,
            seconds,
            self.args.size / seconds / 1e6 if seconds else 0.0,
            child.seconds,
            child.peak_rss_mib,
            child.returncode,
            os.getloadavg()[0],
            detail,
        )
        phases = ""
        if "copy_seconds" in detail:
            phases = (
                f" (copy {detail['copy_seconds']:.1f} s, import {detail['import_seconds']:.1f} s)"
            )
        print(
            f"  {network:8} {copier:10} rep {rep}: {run.mb_per_s:7.1f} MB/s {seconds:6.1f} s"
            f"{phases}  peak RSS {run.peak_rss_mib:6.1f} MiB  load {run.load_average:.1f}"
            + ("" if child.returncode == 0 else "  FAILED (see copiers.log)"),
            flush=True,
        )
        return run

    def delete_image(self, image_id: str) -> None:
        """The copy is not kept: the next run starts from the same empty target."""
        requests.delete(
            f"{self.cloud.images_url(TARGET)}/images/{image_id}",
            headers={"X-Auth-Token": self.token},
            timeout=(5, 120),
        ).raise_for_status()


def summarize(runs: Sequence[Run]) -> list[dict[str, Any]]:
    keys = sorted({(r.network, r.copier) for r in runs}, key=lambda k: (k[0], _order(k[1])))
    medians = {
        key: statistics.median(r.mb_per_s for r in runs if (r.network, r.copier) == key)
        for key in keys
    }
    rows = []
    for network, copier in keys:
        mine = [r for r in runs if (r.network, r.copier) == (network, copier)]
        median = medians[(network, copier)]
        rows.append(
            {
                "network": network,
                "copier": copier,
                "mb_per_s_median": round(median, 1),
                "mb_per_s_min": round(min(r.mb_per_s for r in mine), 1),
                "mb_per_s_max": round(max(r.mb_per_s for r in mine), 1),
                "seconds_median": round(statistics.median(r.seconds for r in mine), 1),
                "peak_rss_mib_median": round(statistics.median(r.peak_rss_mib for r in mine), 1),
                "vs_os_migrate": _ratio(median, medians.get((network, "os-migrate"))),
                "vs_single_put": _ratio(median, medians.get((network, "single-put"))),
                "runs": len(mine),
                "failed": sum(1 for r in mine if r.returncode != 0),
            }
        )
    return rows


def _ratio(mine: float, other: float | None) -> float | None:
    return round(mine / other, 2) if mine and other else None


def _order(copier: str) -> tuple[int, int]:
    if copier.startswith("stream-"):
        return (0, int(copier.split("-")[1]))
    return ({"single-put": 1, "os-migrate": 2}.get(copier, 3), 0)


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    print(
        "| network | copier | MB/s median [min-max] | s median | peak RSS MiB | "
        "vs os-migrate | vs single-put | failed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['network']} | {row['copier']} | {row['mb_per_s_median']} "
            f"[{row['mb_per_s_min']}-{row['mb_per_s_max']}] | {row['seconds_median']} "
            f"| {row['peak_rss_mib_median']} | {row['vs_os_migrate']} "
            f"| {row['vs_single_put']} | {row['failed']} |"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"), help="image size")
    parser.add_argument(
        "--segment-size", type=parse_size, default=parse_size("64MiB"),
        help="the streaming transport's target segments (default 64MiB)",
    )  # fmt: skip
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--workers", default="8", help="stream-N rows, e.g. 4,8 (default 8)")
    parser.add_argument(
        "--copiers", default="stream,single-put,os-migrate",
        help="any of stream, single-put, os-migrate (default: all)",
    )  # fmt: skip
    parser.add_argument("--no-wan", action="store_true", help="loopback only")
    parser.add_argument("--wan-rate", type=float, default=20e6, help="bytes/s per connection")
    parser.add_argument("--wan-latency", type=float, default=0.040, help="added RTT, seconds")
    parser.add_argument("--root", help="working directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--out", type=Path, default=None, help="results JSON")
    return parser.parse_args(argv)


def copier_list(args: argparse.Namespace) -> list[str]:
    copiers = []
    for name in args.copiers.split(","):
        if name == "stream":
            copiers += [f"stream-{n}" for n in args.workers.split(",")]
        elif name in ("single-put", "os-migrate"):
            copiers.append(name)
        else:
            raise SystemExit(f"unknown copier {name!r}: use stream, single-put or os-migrate")
    return copiers


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    copiers = copier_list(args)
    networks = ["loopback"] + ([] if args.no_wan else ["wan"])
    bench = GlanceBench(args)
    runs: list[Run] = []
    try:
        bench.start()
        if "wan" in networks:
            bench.start_proxy()
        for rep in range(args.reps):
            for network in networks:
                for copier in copiers:
                    runs.append(bench.run_copier(copier, network, rep))
    finally:
        bench.stop()
    rows = summarize(runs)
    print(f"\n{args.size / MiB:.0f} MiB image, {SOURCE} -> {TARGET}, {args.reps} reps; wan = "
          f"{args.wan_rate / 1e6:.0f} MB/s per connection, +{args.wan_latency * 1000:.0f} ms; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print_table(rows)
    out = (
        args.out
        or REPO / "benchmarks" / "results" / f"glance-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {"args": vars(args), "rows": rows, "runs": [asdict(r) for r in runs]}
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
