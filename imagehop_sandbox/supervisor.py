"""The background process that owns a local cloud: two Swift clusters and the API service.

``python -m imagehop_sandbox.supervisor <state_dir>`` (started by ``control.up``):

1. starts the ``DFW`` and ``IAD`` Swift clusters and waits until each stores an object;
2. starts the API service and waits until it answers;
3. writes ``sandbox.json`` (URLs, accounts, pids) with ``ready: true``;
4. restarts a child that dies; on SIGUSR1 restarts the API service (SIGTERM first), on
   SIGUSR2 kills it (SIGKILL, as a crash would) and starts it again;
5. on SIGTERM or SIGINT (or once the ``--stop-with`` process is gone) stops every child and
   removes ``sandbox.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from imagehop_sandbox import state_files
from imagehop_sandbox.info import INFO_FILE, REGIONS, RegionInfo, SandboxInfo
from imagehop_sandbox.swift_cluster import SwiftCluster
from imagehop_sandbox.tokens import ACCOUNT_PREFIX, issue

log = logging.getLogger("imagehop_sandbox.supervisor")

API_START_SECONDS = 60.0
SWIFT_START_SECONDS = 90.0


def build_info(
    state_dir: Path, clusters: dict[str, SwiftCluster], ports: dict[str, int]
) -> SandboxInfo:
    host = "http://127.0.0.1"
    regions = {
        region: RegionInfo(
            name=region,
            storage_host=cluster.storage_host,
            images_url=f"{host}:{ports[f'images-{region}']}/v2",
            compute_url=f"{host}:{ports[f'compute-{region}']}/v2/{{tenant}}",
            storage_url=f"{cluster.storage_host}/v1/{ACCOUNT_PREFIX}{{tenant}}",
        )
        for region, cluster in clusters.items()
    }
    identity = f"{host}:{ports['identity']}"
    return SandboxInfo(
        identity_url=f"{identity}/v2.0",
        regions=regions,
        accounts=state_files.ensure_accounts(state_dir),
        token_secret_file=str(state_files.ensure_secret(state_dir)),
        admin_url=f"{identity}/_sandbox",
        state_dir=str(state_dir),
        service_tenant=state_files.SERVICE_TENANT,
        ports=ports,
    )


class Supervisor:
    def __init__(self, state_dir: Path, stop_with: int | None = None) -> None:
        self.state_dir = state_dir
        self.stop_with = stop_with
        options = state_files.load_options(state_dir)
        secret_file = state_files.ensure_secret(state_dir)
        self.secret = secret_file.read_text().strip()
        self.clusters = {
            region: SwiftCluster.prepare(
                state_files.cluster_root(state_dir, region),
                region,
                secret_file,
                options.max_file_size,
                options.max_manifest_segments,
            )
            for region in REGIONS
        }
        self.info = build_info(state_dir, self.clusters, state_files.ensure_ports(state_dir))
        self.api: subprocess.Popen[bytes] | None = None
        self.requests: list[str] = []

    # -- children ------------------------------------------------------------------------

    def start_swift(self, *regions: str) -> None:
        """Start the clusters of ``regions`` together, then wait for each to store objects."""
        for region in regions:
            self.clusters[region].start()
        token, _ = issue(self.secret, state_files.SERVICE_TENANT, "supervisor", 300)
        for region in regions:
            cluster = self.clusters[region]
            cluster.wait_ready(
                ACCOUNT_PREFIX + state_files.SERVICE_TENANT, token, SWIFT_START_SECONDS
            )
            log.info("Swift %s ready at %s", region, cluster.storage_host)

    def start_api(self, fresh: bool) -> None:
        command = [sys.executable, "-m", "imagehop_sandbox.service", str(self.state_dir)]
        if fresh:
            command.append("--fresh")
        with open(state_files.log_dir(self.state_dir) / "api.out", "ab") as out:
            self.api = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_api(self.api)
        log.info("API service ready (pid %d)", self.api.pid)

    def _wait_api(self, api: subprocess.Popen[bytes]) -> None:
        url = f"{self.info.admin_url}/info"
        deadline = time.monotonic() + API_START_SECONDS
        while time.monotonic() < deadline:
            if api.poll() is not None:
                raise RuntimeError(f"API service exited with {api.returncode}; see log/api.log")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"API service not answering after {API_START_SECONDS:.0f}s")

    def stop_api(self, kill: bool = False) -> None:
        api, self.api = self.api, None
        if api is None or api.poll() is not None:
            return
        if kill:
            api.kill()
        else:
            api.terminate()
        try:
            api.wait(10)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()

    def pids(self) -> dict[str, int]:
        pids = {"supervisor": os.getpid()}
        if self.api is not None:
            pids["api"] = self.api.pid
        for region, cluster in self.clusters.items():
            for server, process in cluster.processes.items():
                pids[f"swift-{region}-{server}"] = process.pid
        return pids

    def publish(self, ready: bool) -> None:
        self.info = replace(self.info, pids=self.pids(), ready=ready)
        self.info.save(self.state_dir)

    # -- life cycle ----------------------------------------------------------------------

    def run(self) -> None:
        self.publish(ready=False)
        self.start_swift(*REGIONS)
        self.start_api(fresh=True)
        self.publish(ready=True)
        log.info("local cloud ready: %s", self.info.identity_url)
        while "stop" not in self.requests:
            time.sleep(0.1)
            if self.stop_with is not None and not Path(f"/proc/{self.stop_with}").exists():
                log.info("process %d is gone; stopping with it", self.stop_with)
                break
            self.handle_requests()
            self.revive_children()

    def handle_requests(self) -> None:
        while self.requests and self.requests[0] != "stop":
            request = self.requests.pop(0)
            log.info("restarting the API service (%s)", request)
            self.stop_api(kill=request == "kill-api")
            self.start_api(fresh=False)
            self.publish(ready=True)

    def revive_children(self) -> None:
        if "stop" in self.requests:
            return
        if self.api is not None and self.api.poll() is not None:
            log.error("API service died with %s; restarting it", self.api.returncode)
            self.start_api(fresh=False)
            self.publish(ready=True)
        for region, cluster in self.clusters.items():
            try:
                cluster.check_alive()
            except RuntimeError as error:
                log.error("%s; restarting Swift %s", error, region)
                cluster.stop()
                self.start_swift(region)
                self.publish(ready=True)

    def shutdown(self) -> None:
        log.info("stopping the local cloud")
        self.stop_api()
        for cluster in self.clusters.values():
            cluster.stop()
        (self.state_dir / INFO_FILE).unlink(missing_ok=True)
        (self.state_dir / state_files.SUPERVISOR_PID).unlink(missing_ok=True)
        log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--stop-with", type=int, help="stop once this process is gone")
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    logging.basicConfig(
        filename=state_files.log_dir(state_dir) / "supervisor.log",
        level=logging.INFO,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    (state_dir / state_files.SUPERVISOR_PID).write_text(str(os.getpid()))
    supervisor = Supervisor(state_dir, args.stop_with)
    requests = supervisor.requests

    def on_signal(signum: int, _frame: Any) -> None:
        actions = {int(signal.SIGUSR1): "restart-api", int(signal.SIGUSR2): "kill-api"}
        requests.append(actions.get(signum, "stop"))

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, on_signal)
    try:
        supervisor.run()
    except Exception:
        log.exception("the local cloud failed")
        raise SystemExit(1) from None
    finally:
        supervisor.shutdown()


if __name__ == "__main__":
    main()
