"""Deployment tests: a real ``prefect server`` (own port, own home, no telemetry) set up the way
deployments/README.md tells an operator to, against the local cloud.

The server starts first (about 20 s on a fresh database) while the local cloud starts; then
the work pool, the credentials (deployments/credentials.py) and the result storage
(deployments/result_storage.py) are created with the README's commands. Each test module
deploys what it needs itself, so the modules do not depend on their order.

Nothing here imports Prefect into the test process (see ``processes.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.options import INSTANT_JOBS
from tests.deployments.processes import (
    PREFECT,
    PROJECT_ROOT,
    PYTHON,
    Api,
    Background,
    free_port,
    output_of,
    prefect_env,
    run,
    run_all,
    wait_for,
)

SERVER_START_SECONDS = 120.0
POOL = "imagehop"
#: What deployments/README.md starts every server with: held slots' leases in files under the
#: server's PREFECT_HOME, so that they survive a restart (test_leases.py).
FILESYSTEM_LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
LEASE_STORAGE = {"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": FILESYSTEM_LEASE_STORAGE}


@dataclass
class PrefectServer:
    process: Background
    api_url: str
    home: Path
    command: list[str]
    env: dict[str, str]
    folder: Path
    starts: int = 1

    @property
    def api(self) -> Api:
        return Api(self.api_url)

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            if not self.process.running():
                raise AssertionError(f"prefect server exited:\n{self.process.output()}")
            return self.api.healthy()

        wait_for("prefect server healthy", healthy, SERVER_START_SECONDS)

    def stop(self) -> None:
        """Stop it (no-op once stopped) and check nothing of it is left."""
        self.process.stop()
        left = self.process.leftovers()
        assert not left, f"prefect server processes left behind: {left}"

    def restart(self) -> None:
        """Stop it, then start it again the same way (port, home, database, settings; a log
        of its own), not waited for."""
        self.stop()
        self.starts += 1
        log = self.folder / f"server-{self.starts}.log"
        self.process = Background.start("prefect server", self.command, self.env, log, self.folder)


@dataclass
class Operator:
    """What an operator has after following the README up to `prefect deploy`."""

    server: PrefectServer
    cloud: LocalCloud
    workdir: Path
    results: Path

    @property
    def api(self) -> Api:
        return self.server.api

    def env(self, role: str, **extra: str) -> dict[str, str]:
        """Environment of a client process (its own home; the project importable, as after
        `pip install -e .`)."""
        home = self.workdir / f"home-{role}"
        return prefect_env(home, self.server.api_url, PYTHONPATH=str(PROJECT_ROOT), **extra)

    def deploy(self) -> str:
        """``prefect deploy --all`` from the project root, as the README says."""
        env = self.env("deploy", PWD=str(PROJECT_ROOT))
        command = [*PREFECT, "deploy", "--all", "--no-prompt"]
        result = run([*command, "--prefect-file", "deployments/prefect.yaml"], env)
        assert result.returncode == 0, output_of(result)
        return result.stdout


def start_prefect_server(folder: Path, ui: bool = False, **settings: str) -> PrefectServer:
    """`prefect server start` on a free port with its own home and the README's lease storage
    (``settings`` on top), not waited for. With ``ui`` it also serves the UI at its root, the
    UI talking to this server's API."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    extra = {"PREFECT_UI_API_URL": api_url} if ui else {"PREFECT_UI_ENABLED": "false"}
    env = prefect_env(folder / "home", **{**LEASE_STORAGE, **extra, **settings})
    command = [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    process = Background.start("prefect server", command, env, folder / "server.log", folder)
    return PrefectServer(process, api_url, folder / "home", command, env, folder)


def set_up_operator(
    server: PrefectServer, cloud: LocalCloud, workdir: Path, together: bool = True
) -> Operator:
    """Wait for the server, then create the work pool, the credentials and the result
    storage with the README's commands (at the same time, or one after the other: on a
    fresh PostgreSQL database two scripts saving their first blocks at once can collide)."""
    server.wait_healthy()
    operator = Operator(server, cloud, workdir, workdir / "results")
    account = cloud.settings_env()  # IMAGEHOP_IDENTITY_URL, _USERNAME, _API_KEY
    steps = [
        ([*PREFECT, "work-pool", "create", POOL, "--type", "process"], operator.env("pool")),
        (
            [PYTHON, "deployments/credentials.py", "--no-prompt"],
            operator.env("credentials", **account),
        ),
        (
            [PYTHON, "deployments/result_storage.py", str(operator.results)],
            operator.env("results"),
        ),
    ]
    results = run_all(steps) if together else [run(command, env) for command, env in steps]
    for result in results:
        assert result.returncode == 0, output_of(result)
    return operator


@contextmanager
def running_worker(
    operator: Operator, name: str, limit: int = 2, **settings: str
) -> Iterator[Background]:
    """A process worker polling the pool (every second) and running at most ``limit`` flow
    runs at once, started in an empty folder with no IMAGEHOP_* variable but ``settings``
    (its runs inherit them): code and settings must come from the deployment (pull step, job
    variables, Secret block). Stopped afterwards; no process of it may be left."""
    folder = operator.workdir / f"worker-{name}"
    folder.mkdir()
    env = prefect_env(
        folder / "home", operator.server.api_url, PREFECT_WORKER_QUERY_SECONDS="1", **settings
    )
    command = [*PREFECT, "worker", "start", "--pool", POOL, "--name", name, "--limit", str(limit)]
    worker = Background.start("worker", command, env, folder / "worker.log", folder)
    try:
        yield worker
    finally:
        print("\n".join(worker.stop()))
    left = worker.leftovers()
    assert not left, f"worker processes left behind: {left}"


@pytest.fixture(scope="package")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A `prefect server start` of our own for this folder's tests; started without waiting,
    so that it comes up while other fixtures (the local cloud) start."""
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def operator(
    prefect_server: PrefectServer, local_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """Server up; work pool, Secret block, Variables and result storage created. The server
    is stopped once this folder's tests are done, not at the end of the whole session.

    ``prefect_server`` comes first in the arguments so that it starts before the local cloud.
    """
    yield set_up_operator(prefect_server, local_cloud, tmp_path_factory.mktemp("operator"))


@pytest.fixture
def instant_jobs(local_cloud: LocalCloud) -> Iterator[None]:
    """For this test the local cloud runs each task and snapshot before it answers the request
    that starts it (:data:`imagehop_sandbox.options.INSTANT_JOBS`): the runs' first poll finds
    the job done, so they wait no 30 s poll interval on the real clock."""
    with local_cloud.admin.temporary_options(**INSTANT_JOBS):
        yield
