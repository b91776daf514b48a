"""Real Prefect processes for the deployment tests: a server, workers, ``serve.py``, scripts.

Every process gets an environment built here from scratch (no inherited ``PREFECT_*`` or
``IMAGEHOP_*``, its own ``PREFECT_HOME``, telemetry off), its own process group and a log file,
so a test can read what it printed and stop it and everything it started.

The test process itself never imports Prefect: Prefect reads its settings once, at import, and
the flow tests set theirs (a private home) when their conftest is imported later.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from imagehop_sandbox.swift_cluster import free_ports

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = PROJECT_ROOT / "deployments" / "prefect.yaml"
PYTHON = sys.executable
PREFECT = [PYTHON, "-m", "prefect"]
HTTP_TIMEOUT = (5.0, 30.0)
API_BUSY_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0)
#: A worker (pitfall: it may ignore the first SIGTERM) gets this long per signal.
STOP_GRACE_SECONDS = 15.0


def free_port() -> int:
    """A port free now, below the ephemeral range (see :func:`free_ports`)."""
    return free_ports(1)[0]


def prefect_env(home: Path, api_url: str | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for one Prefect process: its own home, no telemetry, no
    inherited Prefect or imagehop settings, and ``extra`` on top."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PREFECT_", "IMAGEHOP_")) and name != "PYTHONPATH"
    }
    env.update(
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_HOME=str(home),
        PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW="ignore",
    )
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


@dataclass
class Background:
    """A long-running Prefect process in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    home: str

    @classmethod
    def start(
        cls, name: str, command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
    ) -> Background:
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return cls(name, process, log, env["PREFECT_HOME"])

    def output(self, last: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-last:]

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> list[str]:
        """SIGTERM, a second SIGTERM after ``grace`` (a Prefect worker may let the first one
        pass), SIGKILL after another ``grace``. Returns how it went, one line per signal."""
        steps = []
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            if not self.running():
                break
            self.process.send_signal(sig)
            began = time.monotonic()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                steps.append(f"{self.name} still running {grace:.0f} s after {sig.name}")
            else:
                seconds = time.monotonic() - began
                steps.append(f"{self.name} exited {seconds:.1f} s after {sig.name}")
        return steps

    def wait_for_its_runs(self, timeout: float) -> None:
        """Wait until no process it started (a flow run) is left: a runner stopped while a
        finished run's process is still exiting marks that run cancelled."""
        alone = {str(self.process.pid)}
        wait_for(
            f"{self.name}'s flow-run processes to exit",
            lambda: set(processes_with_home(self.home)) <= alone,
            timeout,
        )

    def leftovers(self) -> list[str]:
        """Kill what is left of it (e.g. a flow run it started, which Prefect puts in a process
        group of its own) and say what that was: every process with its PREFECT_HOME."""
        found = processes_with_home(self.home)
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        return [f"{pid}: {command}" for pid, command in found.items()]


def processes_with_home(home: str) -> dict[str, str]:
    """pid -> command line of every process whose environment has PREFECT_HOME=home."""
    return processes_with_environment(f"PREFECT_HOME={home}")


def processes_of_flow_runs(flow_run_ids: list[str]) -> dict[str, str]:
    """pid -> command line of every process of these flow runs (a worker starts each run's
    processes with PREFECT__FLOW_RUN_ID=<id> in their environment)."""
    return processes_with_environment(*(f"PREFECT__FLOW_RUN_ID={i}" for i in flow_run_ids))


def processes_with_environment(*entries: str) -> dict[str, str]:
    """pid -> command line of every process whose environment has one of ``entries``."""
    markers = {entry.encode() for entry in entries}
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if markers.intersection(environ):
            found[pid] = command.decode(errors="replace").strip()
    return found


def run(
    command: Sequence[str], env: Mapping[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run a command from the project root and wait; output captured as text."""
    return subprocess.run(
        list(command),
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_all(
    commands: Sequence[tuple[Sequence[str], Mapping[str, str]]], timeout: float = 120.0
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at the same time; results in the same order."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = [pool.submit(run, command, env, timeout) for command, env in commands]
        return [future.result() for future in futures]


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


class Api:
    """The Prefect server's REST API, read the way the UI reads it."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call; a busy SQLite database answers 503, retried as Prefect's client does."""
        for delay in (*API_BUSY_RETRY_SECONDS, None):
            response = self.http.request(method, self.url + path, json=body, timeout=HTTP_TIMEOUT)
            if response.status_code != 503 or delay is None:
                break
            time.sleep(delay)
        response.raise_for_status()
        return response.json() if response.content else None

    def healthy(self) -> bool:
        try:
            return self.http.get(self.url + "/health", timeout=(1.0, 5.0)).status_code == 200
        except requests.RequestException:
            return False

    def deployments(self) -> dict[str, dict[str, Any]]:
        """Every deployment, by ``<flow name>/<deployment name>``."""
        flows = {flow["id"]: flow["name"] for flow in self.call("POST", "/flows/filter", {})}
        return {
            f"{flows[d['flow_id']]}/{d['name']}": d
            for d in self.call("POST", "/deployments/filter", {})
        }

    def flow_runs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("POST", "/flow_runs/filter", {})
        return result

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/flow_runs/{flow_run_id}")
        return result

    def all_logs(self) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = []
        while True:
            page = self.call("POST", "/logs/filter", {"offset": len(logs), "limit": 200})
            logs.extend(page)
            if len(page) < 200:
                return logs

    def delete_deployment(self, deployment_id: str) -> None:
        self.call("DELETE", f"/deployments/{deployment_id}")


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.5) -> Any:
    """Call ``check()`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def json_output(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON document a script printed on stdout."""
    assert result.returncode == 0, output_of(result)
    document: dict[str, Any] = json.loads(result.stdout)
    return document
