"""Benchmark: copy a DLO from "DFW" to "IAD" (two real Swift clusters on loopback) with imagehop
and with the anchors, directly and through a WAN-shaping proxy.

    python -m benchmarks.transfer_bench                   # 1 GiB, 3 repetitions, loopback + WAN
    python -m benchmarks.transfer_bench --size 4GiB --no-wan --reps 2

Copiers, each run in its own process (peak RSS from ``wait4``; wall time of the process):

* ``imagehop-N``  the segment transfer engine with N workers (``transfer_object``);
* ``imagehop-auto`` the same with default settings: no concurrency, the adaptive stream
                  count (the count it settled on is the ``streams`` column);
* ``flow-N``      the shipped path: transfer-image's copy phase (the ``plan-copy`` and
                  ``copy-segments`` Prefect tasks, N streams) in a flow run on a real
                  ``prefect server`` that the benchmark starts; ``flow-auto`` with defaults;
* ``imagehop-auto-split`` (``--split-for-streams``) the same with target segments small
                  enough for 3 per stream (``segment_size_for_streams``: split source
                  segments, MD5 computed by the copier);
* ``ceiling``     no copy: parallel PUTs of in-memory bytes into IAD, the same segments as
                  imagehop's target, as many streams as imagehop uses at most (the largest
                  of ``--workers``, ``auto`` counting as its memory cap, 16): the rate no copy
                  into that cluster can beat here;
* ``rclone``      ``rclone copyto`` between the two Swift endpoints (``--swift-chunk-size 100Mi``);
* ``serial``      the simplest segment-by-segment GET -> PUT loop (python-swiftclient);
* ``swift-cli``   ``swift download`` to disk, then ``swift upload --use-slo -S 100MiB``.

The source DLO has 64 MiB segments by default (16 for 1 GiB): real exports have tens to
hundreds of segments, and with only a few (e.g. 11 of 100 MiB) the last wave of 8 workers
runs mostly idle on the WAN (``--source-segment 100MiB`` shows that effect).

Networks: ``loopback`` (direct), ``passthrough`` (through the proxy with no shaping, to show
the proxy is not the bottleneck), ``wan`` (per-connection cap and added round-trip time,
default 20 MB/s and 40 ms) and ``wan-ocean`` (a trans-ocean pair: 10 MB/s and 80 ms).
Repetitions are interleaved; medians are reported, with ratios to rclone, to the serial copy
and to the ceiling of the same network in the same run, for the WAN profiles the fraction of
``streams x per-connection cap`` reached, and of each ``flow-N`` to ``imagehop-N``
(in-process MB/s: the copy itself, without interpreter and Prefect start-up). Also measured:
a run interrupted at ~50 % (SIGINT: graceful; SIGKILL: a crash) and restarted, as the
fraction of the bytes the second run moved. Results go to ``benchmarks/results/<time>.json``.

The machine is shared and CPU-bound (2 cores run the client, 8 Swift servers and the proxy):
read the figures as relative, and quote the load average printed with them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from swiftclient import client as swift

from imagehop.errors import NotFoundError
from imagehop.object_store import ObjectStore
from imagehop.transfer import memory_stream_cap
from imagehop_sandbox.swift_cluster import SwiftCluster, free_ports
from imagehop_sandbox.tokens import ACCOUNT_PREFIX, issue

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
TENANT = "100000"
SOURCE_CONTAINER = "exports"
SOURCE_OBJECT = "bench-image.vhd"
UNITS = {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}


def start_prefect_server(
    root: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """A real ``prefect server`` (no services, SQLite under ``root/prefect``), once healthy,
    and the environment of a client of it (``env`` or this one's, plus its API URL)."""
    port = free_port()
    home = root / "prefect"
    server_env = dict(env or os.environ, PREFECT_HOME=str(home), DO_NOT_TRACK="1")
    server_env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    server_env.pop("PREFECT_API_URL", None)
    command = [str(Path(sys.executable).parent / "prefect"), "server", "start"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-services"]
    with open(root / "prefect-server.log", "ab") as out:
        server = subprocess.Popen(command, env=server_env, stdout=out, stderr=out, cwd=REPO)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server, dict(server_env, PREFECT_API_URL=url)
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"prefect server did not start; see {root / 'prefect-server.log'}")


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)i?b?", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1GiB, 100MiB)")
    return int(float(match.group(1)) * UNITS[match.group(2)])


@dataclass
class Run:
    network: str
    copier: str
    rep: int
    seconds: float
    mb_per_s: float
    peak_rss_mib: float
    returncode: int
    load_average: float
    copier_cpu_seconds: float
    swift_cpu_seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Child:
    seconds: float
    peak_rss_mib: float
    returncode: int
    lines: list[str]
    cpu_seconds: float


def run_child(
    command: Sequence[str],
    env: dict[str, str],
    log: Path,
    on_line: Callable[[str, int], None] | None = None,
) -> Child:
    """Run one copier process; its wall time and the peak RSS of it and its descendants.

    The peak is VmHWM polled from /proc every 50 ms: ``wait4``'s ru_maxrss would include
    the benchmark's own memory, copied into the child by fork before exec.
    """
    started = time.monotonic()
    with open(log, "ab") as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=REPO, text=True
        )
        peaks: dict[int, int] = {}
        poller = threading.Thread(target=_poll_peaks, args=(process, peaks), daemon=True)
        poller.start()
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(line, process.pid)
        _, status, usage = os.wait4(process.pid, 0)  # CPU times are the child's own
        process.returncode = os.waitstatus_to_exitcode(status)
        poller.join()
    peak = max(peaks.values(), default=0) / 1024
    cpu = usage.ru_utime + usage.ru_stime
    return Child(time.monotonic() - started, peak, process.returncode, lines, cpu)


def _poll_peaks(process: subprocess.Popen[str], peaks: dict[int, int]) -> None:
    """Record VmHWM (KiB) of ``process`` and its descendants until it exits."""
    while process.returncode is None and Path(f"/proc/{process.pid}/status").exists():
        for pid in _family(process.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"^VmHWM:\s+(\d+)", status, re.MULTILINE)
            if match:
                peaks[pid] = max(peaks.get(pid, 0), int(match.group(1)))
        time.sleep(0.05)


def _family(pid: int) -> list[int]:
    family, index = [pid], 0
    while index < len(family):
        try:
            tasks = Path(f"/proc/{family[index]}/task").iterdir()
            for task in tasks:
                children = (task / "children").read_text().split()
                family += [int(child) for child in children]
        except OSError:
            pass
        index += 1
    return family


class Bench:
    """Two Swift clusters, a source DLO, the copiers, and the proxy processes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(args.root or tempfile.mkdtemp(prefix="imagehop-bench-"))
        self.root.mkdir(parents=True, exist_ok=True)
        secret_file = self.root / "token-secret"
        self.secret = hashlib.sha256(os.urandom(32)).hexdigest()
        secret_file.write_text(self.secret)
        self.clusters = {
            name: SwiftCluster.prepare(self.root / name.lower(), name, secret_file)
            for name in ("DFW", "IAD")
        }
        self.token, _ = issue(self.secret, TENANT, "bench", 12 * 3600)
        self.account = ACCOUNT_PREFIX + TENANT
        self.proxies: dict[str, tuple[subprocess.Popen[str], dict[str, int]]] = {}
        self.log = self.root / "copiers.log"
        self.counter = 0
        self.prefect: subprocess.Popen[bytes] | None = None
        self.prefect_url = ""

    # -- setup -------------------------------------------------------------------------

    def start(self) -> None:
        for cluster in self.clusters.values():
            cluster.start()
        for cluster in self.clusters.values():
            cluster.wait_ready(self.account, self.token)

    def start_prefect(self) -> None:
        """A real ``prefect server`` (SQLite in the working directory) for the flow copiers."""
        self.prefect, env = start_prefect_server(self.root, self.env())
        self.prefect_url = env["PREFECT_API_URL"]

    def stop(self) -> None:
        if self.prefect is not None:
            self.prefect.terminate()
            self.prefect.wait(30)
        for process, _ in self.proxies.values():
            process.terminate()
            process.wait(10)
        for cluster in self.clusters.values():
            cluster.stop()
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, region: str, network: str) -> str:
        port = self.clusters[region].config.ports["proxy"]
        if network != "loopback":
            port = self.proxies[network][1][region]
        return f"http://127.0.0.1:{port}/v1/{self.account}"

    def start_proxy(self, network: str, rate: float, latency: float) -> None:
        upstreams = [f"127.0.0.1:{c.config.ports['proxy']}" for c in self.clusters.values()]
        command = [sys.executable, "-m", "benchmarks.wan_proxy", "--rate", str(rate)]
        command += ["--latency", str(latency)]
        for upstream in upstreams:
            command += ["--upstream", upstream]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, cwd=REPO, text=True, env=self.env()
        )
        assert process.stdout is not None
        ports = [int(process.stdout.readline().split()[1]) for _ in upstreams]
        self.proxies[network] = (process, dict(zip(self.clusters, ports, strict=True)))

    def proxy_cpu_seconds(self, network: str) -> float:
        return cpu_seconds(self.proxies[network][0].pid)

    def swift_cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for c in self.clusters.values() for pid in c.pids())

    def connection(self, region: str) -> swift.Connection:
        return swift.Connection(
            preauthurl=self.url(region, "loopback"), preauthtoken=self.token, timeout=300
        )

    def create_source(self) -> None:
        """A DLO like an export: ``<name>`` + ``<name>-00001``..., random bytes."""
        size, part = self.args.size, self.args.source_segment
        connection = self.connection("DFW")
        connection.put_container(SOURCE_CONTAINER)
        for number, offset in enumerate(range(0, size, part), 1):
            length = min(part, size - offset)
            connection.put_object(
                SOURCE_CONTAINER,
                f"{SOURCE_OBJECT}-{number:05d}",
                RandomReader(length),
                content_length=length,
            )
        connection.put_object(
            SOURCE_CONTAINER,
            SOURCE_OBJECT,
            b"",
            headers={"X-Object-Manifest": f"{SOURCE_CONTAINER}/{SOURCE_OBJECT}-"},
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ, PYTHONPATH=str(REPO), BENCH_TOKEN=self.token, **extra)
        env.pop("PYTHONSTARTUP", None)
        return env

    def fresh_target(self) -> str:
        self.counter += 1
        return f"bench-{self.counter:04d}"

    def clean_target(self, container: str) -> None:
        store = ObjectStore(self.url("IAD", "loopback"), StaticTokens(self.token), region="IAD")
        for name in (container, f"{container}_segments"):
            try:
                objects = store.list_objects(name)
            except NotFoundError:
                continue
            store.bulk_delete((name, item.name) for item in objects)
            self.connection("IAD").delete_container(name)

    # -- copiers -----------------------------------------------------------------------

    def command(self, copier: str, network: str, target: str) -> tuple[list[str], dict[str, str]]:
        src, dst = self.url("DFW", network), self.url("IAD", network)
        if copier.startswith(("imagehop-", "flow-")) or copier in ("serial", "ceiling"):
            kind = copier.split("-")[0]
            command = [sys.executable, "-m", "benchmarks.copiers", kind, "--src", src]
            command += ["--dst", dst, "--container", SOURCE_CONTAINER, "--object", SOURCE_OBJECT]
            command += ["--target-container", target]
            if kind != "serial":
                streams = ceiling_streams(self.args) if kind == "ceiling" else copier.split("-")[1]
                command += ["--workers", str(streams)]
                command += ["--segment-size", str(self.args.segment_size)]
                command += ["--chunk-size", str(chunk_size_of(copier, self.args))]
            if copier.endswith("-split"):
                command += ["--split-for-streams"]
            if kind == "flow":
                return command, self.env(
                    PREFECT_API_URL=self.prefect_url,
                    PREFECT_SERVER_ANALYTICS_ENABLED="false",
                    DO_NOT_TRACK="1",
                )
            return command, self.env()
        if copier == "rclone":
            env = self.env()
            for name, url in (("DFW", src), ("IAD", dst)):
                env[f"RCLONE_CONFIG_{name}_TYPE"] = "swift"
                env[f"RCLONE_CONFIG_{name}_STORAGE_URL"] = url
                env[f"RCLONE_CONFIG_{name}_AUTH_TOKEN"] = self.token
            command = [rclone_path(), "copyto", f"dfw:{SOURCE_CONTAINER}/{SOURCE_OBJECT}"]
            command += [f"iad:{target}/{SOURCE_OBJECT}", "--swift-chunk-size", "100Mi", "-q"]
            command += ["--config", "/dev/null"]
            return command, env
        if copier == "swift-cli":
            scratch = self.root / "scratch" / SOURCE_OBJECT
            scratch.parent.mkdir(exist_ok=True)
            cli = str(Path(sys.executable).parent / "swift")
            script = (
                f'"{cli}" --os-storage-url "$SRC" download {SOURCE_CONTAINER} {SOURCE_OBJECT} '
                f'-o "{scratch}" -q && "{cli}" --os-storage-url "$DST" upload {target} '
                f'"{scratch}" --object-name {SOURCE_OBJECT} --use-slo -S {100 * MiB} -q '
                f'&& rm -f "{scratch}"'
            )
            return ["bash", "-c", script], self.env(SRC=src, DST=dst, OS_AUTH_TOKEN=self.token)
        raise ValueError(copier)

    def run_copier(self, copier: str, network: str, rep: int) -> Run:
        target = self.fresh_target()
        command, env = self.command(copier, network, target)
        swift_cpu = self.swift_cpu_seconds()
        child = run_child(command, env, self.log)
        swift_cpu = self.swift_cpu_seconds() - swift_cpu
        detail = _detail(child.lines) if copier not in ("swift-cli", "rclone") else {}
        ok = child.returncode == 0 and self.target_size(target) == self.args.size
        self.clean_target(target)
        run = Run(
            network,
            copier,
            rep,
            child.seconds,
            self.args.size / child.seconds / 1e6 if ok else 0.0,
            child.peak_rss_mib,
            child.returncode if ok or child.returncode else -1,
            os.getloadavg()[0],
            child.cpu_seconds,
            swift_cpu,
            detail,
        )
        print(
            f"  {network:11} {copier:11} rep {rep}: {run.mb_per_s:7.1f} MB/s "
            f"{run.seconds:6.1f} s  peak RSS {run.peak_rss_mib:6.1f} MiB  "
            f"CPU copier {run.copier_cpu_seconds:5.1f} s, Swift {run.swift_cpu_seconds:5.1f} s  "
            f"load {run.load_average:.1f}" + ("" if ok else "  FAILED (see copiers.log)"),
            flush=True,
        )
        return run

    def target_size(self, container: str) -> int:
        try:
            return int(
                self.connection("IAD").head_object(container, SOURCE_OBJECT)["content-length"]
            )
        except swift.ClientException:
            return -1

    # -- resume ------------------------------------------------------------------------

    def measure_resume(self, how: signal.Signals, point: float) -> dict[str, Any]:
        """Interrupt imagehop-8 at ``point`` (fraction of bytes) with ``how``, restart it,
        report what the second run moved."""
        target = self.fresh_target()
        command, env = self.command("imagehop-8", "loopback", target)
        sent: list[float] = []

        def interrupt_at_half(line: str, pid: int) -> None:
            parts = line.split()
            if not sent and parts[0] == "progress" and int(parts[1]) >= int(parts[2]) * point:
                sent.append(int(parts[1]) / int(parts[2]))
                os.kill(pid, how)

        first = run_child([*command, "--progress"], env, self.log, interrupt_at_half)
        second = run_child(command, env, self.log)
        moved = json.loads(second.lines[-1])["bytes_moved"]
        ok = second.returncode == 0 and self.target_size(target) == self.args.size
        self.clean_target(target)
        result = {
            "signal": how.name,
            "wanted_at": point,
            "interrupted_at": sent[0] if sent else None,
            "first_run_exit": first.returncode,
            "second_run_fraction_moved": moved / self.args.size if ok else None,
        }
        print(f"  resume after {how.name}: {result}", flush=True)
        return result


def _detail(lines: Sequence[str]) -> dict[str, Any]:
    """The copier's last JSON line ({} if it printed none, e.g. after a crash)."""
    try:
        detail = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


def ceiling_streams(args: argparse.Namespace) -> int:
    """The ceiling's streams: the most any imagehop row of this run may use (``auto``: its
    memory cap for the chunk size, 16 with 1 MiB chunks)."""
    counts = []
    for text in args.workers.split(","):
        if text == "auto":
            counts += [memory_stream_cap(parse_size(size)) for size in args.chunk_sizes.split(",")]
        else:
            counts.append(int(text))
    return max(counts)


def free_port() -> int:
    """A port free now, below the ephemeral range (see :func:`free_ports`)."""
    return free_ports(1)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RandomReader:
    """``length`` random bytes, read in pieces (so the source is never built in memory)."""

    def __init__(self, length: int) -> None:
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        count = self.remaining if size < 0 else min(size, self.remaining)
        self.remaining -= count
        return os.urandom(count)


class StaticTokens:
    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def invalidate(self, stale: str) -> None:
        raise SystemExit("benchmark token refused")


def rclone_path() -> str:
    """rclone from PATH, installed from Debian if missing (the Debian 12 package is 1.60)."""
    found = shutil.which("rclone")
    if found:
        return found
    print("installing rclone (apt-get install -y --no-install-recommends rclone)", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "rclone"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return shutil.which("rclone") or "rclone"


# -- reporting -------------------------------------------------------------------------------


def summarize(runs: Sequence[Run], caps: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per (network, copier): medians, and every ratio against rclone, serial and the
    ceiling of the same network; ``caps``: bytes/s per connection of the shaped networks, for
    the fraction of ``streams x cap`` reached."""
    caps = caps or {}
    rows = []
    keys = sorted({(r.network, r.copier) for r in runs}, key=lambda k: (k[0], _order(k[1])))
    medians = {
        key: statistics.median(r.mb_per_s for r in runs if (r.network, r.copier) == key)
        for key in keys
    }
    for network, copier in keys:
        mine = [r for r in runs if (r.network, r.copier) == (network, copier)]
        speeds = [r.mb_per_s for r in mine]
        rclone = medians.get((network, "rclone"))
        serial = medians.get((network, "serial"))
        ceiling = medians.get((network, "ceiling"))
        median = medians[(network, copier)]
        streams = _streams(mine)
        cap = caps.get(network)
        in_process = _in_process(mine)
        engine = [r for r in runs if (r.network, r.copier) == (network, _engine_of(copier))]
        rows.append(
            {
                "network": network,
                "copier": copier,
                "mb_per_s_median": round(median, 1),
                "mb_per_s_min": round(min(speeds), 1),
                "mb_per_s_max": round(max(speeds), 1),
                "peak_rss_mib_median": round(statistics.median(r.peak_rss_mib for r in mine), 1),
                "peak_rss_mib_max": round(max(r.peak_rss_mib for r in mine), 1),
                "copier_cpu_s_median": round(
                    statistics.median(r.copier_cpu_seconds for r in mine), 2
                ),
                "swift_cpu_s_median": round(
                    statistics.median(r.swift_cpu_seconds for r in mine), 2
                ),
                "in_process_mb_per_s_median": _in_process(mine),
                "copy_rss_mib_median": _copy_rss(mine),
                "vs_engine_in_process": _ratio(_in_process(mine), _in_process(engine)),
                "vs_rclone": round(median / rclone, 2) if rclone else None,
                "vs_serial": round(median / serial, 2) if serial else None,
                "vs_ceiling": round(median / ceiling, 2) if ceiling else None,
                "streams_median": streams,
                "streams_seen": sorted({s for r in mine if (s := _streams([r])) is not None}),
                "of_streams_x_cap": _ratio(median, streams * cap / 1e6)
                if streams and cap
                else None,
                "of_streams_x_cap_in_process": (
                    _ratio(in_process, streams * cap / 1e6) if streams and cap else None
                ),
                "runs": len(mine),
                "failed": sum(1 for r in mine if r.returncode != 0),
            }
        )
    return rows


def _streams(runs: Sequence[Run]) -> float | None:
    """Median streams the copier ran with (what an adaptive count settled on; never more
    than the segments); None where it is not known (rclone, swift-cli)."""
    counts = [
        min(r.detail["streams"], r.detail.get("segments") or r.detail["streams"])
        for r in runs
        if r.detail.get("streams")
    ]
    return statistics.median(counts) if counts else None


def _in_process(runs: Sequence[Run]) -> float | None:
    """Median MB/s measured inside the Python copiers (without interpreter start-up)."""
    speeds = [r.mb_per_s * r.seconds / r.detail["seconds"] for r in runs if r.detail.get("seconds")]
    return round(statistics.median(speeds), 1) if speeds else None


def _copy_rss(runs: Sequence[Run]) -> float | None:
    """Median peak RSS the copy added to the process (peak minus the peak before the copy)."""
    added = [
        r.peak_rss_mib - r.detail["rss_before_copy_mib"]
        for r in runs
        if r.detail.get("rss_before_copy_mib") is not None
    ]
    return round(statistics.median(added), 1) if added else None


def _engine_of(copier: str) -> str:
    """``flow-8`` -> ``imagehop-8`` (the engine copier with as many streams)."""
    return copier.replace("flow-", "imagehop-", 1)


def _ratio(mine: float | None, other: float | None) -> float | None:
    return round(mine / other, 2) if mine and other else None


def _order(copier: str) -> tuple[int, int]:
    if copier.startswith(("imagehop-", "flow-")):
        count = copier.split("-")[1]
        return (0 if copier.startswith("imagehop-") else 1, 999 if count == "auto" else int(count))
    return ({"ceiling": 2, "rclone": 3, "serial": 4, "swift-cli": 5}.get(copier, 6), 0)


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    """One markdown table: every ratio (rclone, serial, ceiling; streams x cap on the WANs)."""
    print(
        "| network | copier | streams | MB/s median [min-max] | in-process MB/s | peak RSS MiB "
        "median (max) | copy's RSS MiB | vs rclone | vs serial | vs ceiling | of streams x cap "
        "(in-process) | in-process vs engine |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        seen = row["streams_seen"]
        streams = "" if not seen else "/".join(f"{s:g}" for s in seen)
        of_cap = row["of_streams_x_cap"]
        of_cap_text = "" if of_cap is None else f"{of_cap} ({row['of_streams_x_cap_in_process']})"
        print(
            f"| {row['network']} | {row['copier']} | {streams} | {row['mb_per_s_median']} "
            f"[{row['mb_per_s_min']}-{row['mb_per_s_max']}] "
            f"| {_cell(row['in_process_mb_per_s_median'])} "
            f"| {row['peak_rss_mib_median']} ({row['peak_rss_mib_max']}) "
            f"| {_cell(row['copy_rss_mib_median'])} | {_cell(row['vs_rclone'])} "
            f"| {_cell(row['vs_serial'])} | {_cell(row['vs_ceiling'])} | {of_cap_text} "
            f"| {_cell(row['vs_engine_in_process'])} |"
        )


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


# -- main --------------------------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module's docstring as written, and every option's default."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument(
        "--size", type=parse_size, default=parse_size("1GiB"), help="size of the source DLO"
    )
    parser.add_argument(
        "--source-segment",
        type=parse_size,
        default=parse_size("64MiB"),
        help="segment size of the source DLO (an export's segments)",
    )
    parser.add_argument(
        "--segment-size",
        type=parse_size,
        default=parse_size("256MiB"),
        help="imagehop's target segment size (IMAGEHOP_SEGMENT_SIZE_BYTES); the ceiling "
        "writes the same segments",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions per copier and network")
    parser.add_argument(
        "--workers",
        default="1,2,4,8,auto",
        help="stream counts of the imagehop-N and flow-N rows; 'auto' is the row with default "
        "settings (no concurrency: the adaptive count)",
    )
    parser.add_argument(
        "--copiers",
        default="imagehop,flow,ceiling,rclone,serial,swift-cli",
        help="which copiers run (imagehop and flow once per --workers entry)",
    )
    parser.add_argument(
        "--chunk-sizes",
        default="1MiB",
        help="bytes per read of imagehop-N and flow-N, e.g. 1MiB,256KiB: one row each "
        "(the first is the default and keeps the plain name, the others get -c<bytes>)",
    )
    parser.add_argument(
        "--split-for-streams",
        action="store_true",
        help="also run imagehop-auto-split: imagehop-auto with target segments small enough "
        "for 3 per stream (source segments split; each split segment's MD5 is computed by the "
        "copier), to see whether splitting pays",
    )
    parser.add_argument("--no-wan", action="store_true", help="skip the 'wan' profile")
    parser.add_argument("--no-wan-ocean", action="store_true", help="skip the 'wan-ocean' profile")
    parser.add_argument(
        "--no-passthrough", action="store_true", help="skip the unshaped proxy ('passthrough')"
    )
    parser.add_argument("--no-resume", action="store_true", help="skip the interrupted runs")
    parser.add_argument("--resume-points", default="0.5", help="fractions, e.g. 0.4,0.5,0.6")
    parser.add_argument(
        "--wan-rate", type=float, default=20e6, help="'wan': bytes/s per connection"
    )
    parser.add_argument(
        "--wan-latency", type=float, default=0.040, help="'wan': added RTT, seconds"
    )
    parser.add_argument(
        "--ocean-rate", type=float, default=10e6, help="'wan-ocean': bytes/s per connection"
    )
    parser.add_argument(
        "--ocean-latency", type=float, default=0.080, help="'wan-ocean': added RTT, seconds"
    )
    parser.add_argument("--root", help="working directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (default: benchmarks/results/<time>.json)",
    )
    args = parser.parse_args(argv)
    for count in args.workers.split(","):
        if count != "auto" and not (count.isdigit() and int(count) >= 1):
            parser.error(f"--workers: {count!r} is not a stream count >= 1 or 'auto'")
    return args


def chunk_size_of(copier: str, args: argparse.Namespace) -> int:
    """``flow-8-c262144`` -> 262144; a name without ``-c`` has the first of --chunk-sizes."""
    parts = copier.split("-")
    if len(parts) > 2 and parts[2].startswith("c"):
        return int(parts[2][1:])
    return parse_size(args.chunk_sizes.split(",")[0])


def copier_list(args: argparse.Namespace) -> list[str]:
    copiers = []
    for name in args.copiers.split(","):
        if name in ("imagehop", "flow"):
            chunks = [parse_size(size) for size in args.chunk_sizes.split(",")]
            copiers += [
                f"{name}-{n}" + ("" if i == 0 else f"-c{chunk}")
                for n in args.workers.split(",")
                for i, chunk in enumerate(chunks)
            ]
        else:
            copiers.append(name)
        if name == "imagehop" and args.split_for_streams and "auto" in args.workers.split(","):
            copiers.append("imagehop-auto-split")
    return copiers


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    copiers = copier_list(args)
    if "rclone" in copiers:
        rclone_path()
    bench = Bench(args)
    started = time.time()
    runs: list[Run] = []
    extra: dict[str, Any] = {"load_average_start": os.getloadavg()}
    try:
        print(f"starting two Swift clusters in {bench.root}", flush=True)
        bench.start()
        if any(copier.startswith("flow-") for copier in copiers):
            print("starting a prefect server for the flow copiers", flush=True)
            bench.start_prefect()
        print(f"creating a {args.size} byte DLO in DFW", flush=True)
        bench.create_source()
        networks = ["loopback"]
        if not args.no_passthrough:
            bench.start_proxy("passthrough", 0, 0)
            networks.append("passthrough")
        if not args.no_wan:
            bench.start_proxy("wan", args.wan_rate, args.wan_latency)
            networks.append("wan")
        if not args.no_wan_ocean:
            bench.start_proxy("wan-ocean", args.ocean_rate, args.ocean_latency)
            networks.append("wan-ocean")
        for network in networks:
            chosen = copiers
            if network == "passthrough":
                passing = ("imagehop-8", "imagehop-auto", "flow-8", "ceiling", "rclone")
                chosen = [c for c in copiers if c in passing]
            for rep in range(1, args.reps + 1):
                for copier in chosen:
                    runs.append(bench.run_copier(copier, network, rep))
            if network != "loopback":
                extra[f"proxy_cpu_seconds_{network}"] = bench.proxy_cpu_seconds(network)
        if not args.no_resume:
            extra["resume"] = [
                bench.measure_resume(how, float(point))
                for point in args.resume_points.split(",")
                for how in (signal.SIGINT, signal.SIGKILL)
            ]
    finally:
        extra["load_average_end"] = os.getloadavg()
        bench.stop()
    rows = summarize(runs, {"wan": args.wan_rate, "wan-ocean": args.ocean_rate})
    print_table(rows)
    print(json.dumps(extra, indent=1))
    out = args.out or REPO / "benchmarks" / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "command": " ".join(["python -m benchmarks.transfer_bench", *(argv or sys.argv[1:])]),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "cpus": os.cpu_count(),
        "summary": rows,
        "extra": extra,
        "runs": [asdict(run) for run in runs],
    }
    out.write_text(json.dumps(document, indent=1))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
