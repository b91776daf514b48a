"""Session-wide fixtures: the local two-region cloud, started once for every test that asks.

``local_cloud`` (a :class:`imagehop_sandbox.handle.LocalCloud`) runs two real Swift clusters
and the Identity/Images/Servers service in a temporary folder, at test scale: 1 MiB export
segments, a 2 MiB single-object cap (so images are stored as SLOs), 3 MiB server disks and
task durations well under a second. Tests that change options at run time use
``local_cloud.admin.temporary_options(...)`` so that the next test sees the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from xdist.scheduler import LoadScopeScheduling

from imagehop_sandbox import control
from imagehop_sandbox.control import processes_of
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.options import MiB
from imagehop_sandbox.swift_cluster import PORT_FLOOR, PORT_RANGE_VARIABLE, _ephemeral_floor

TEST_OPTIONS = {
    "token_lifetime_seconds": 3600.0,
    "export_segment_bytes": MiB,
    "task_pending_seconds": 0.05,
    "task_processing_seconds": 0.15,
    "snapshot_seconds": 0.2,
    "boot_seconds": 0.2,
    "max_file_size": 2 * MiB,
    "server_disk_bytes": 3 * MiB + 123_457,
}


def _ports_of_this_test_worker() -> None:
    """Each pytest-xdist worker its own share of the local cloud's ports: the workers start
    their clouds at the same time, and two Swift servers given the same port would both
    bind it (SO_REUSEPORT)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    if not worker.startswith("gw"):
        return
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    span = (_ephemeral_floor() - PORT_FLOOR) // max(count, 1)
    low = PORT_FLOOR + int(worker[2:]) * span
    os.environ[PORT_RANGE_VARIABLE] = f"{low}-{low + span - 1}"


_ports_of_this_test_worker()
#: Folders whose tests share one expensive set-up of their own (a prefect server, a worker, a
#: browser): each runs on one test worker, as a whole.
SHARED_SETUP_FOLDERS = ("tests/browser", "tests/deployments")
#: Files in those folders that start all they need themselves (their own prefect server): a
#: unit of their own, on any worker, so the shared folder's worker does not run them too.
OWN_SETUP_FILES = ("tests/deployments/test_leases.py",)


class SharedSetupScheduling(LoadScopeScheduling):
    """pytest-xdist's work units (the test workers of pyproject.toml's ``addopts``): a
    folder of :data:`SHARED_SETUP_FOLDERS`, else a test file, so that each package and module
    fixture starts once. Units go out in collection order (``--no-loadscope-reorder``): the
    two slowest, browser and deployments, come first and start at once, one per worker."""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        folder = path.rsplit("/", 1)[0]
        return folder if folder in SHARED_SETUP_FOLDERS and path not in OWN_SETUP_FILES else path


@pytest.hookimpl(optionalhook=True)  # also when run with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> SharedSetupScheduling:
    return SharedSetupScheduling(config, log)


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """The local cloud, up for the whole session and stopped (no process left) at the end."""
    state_dir = tmp_path_factory.mktemp("local-cloud")
    info = control.up(state_dir, stop_with_pid=os.getpid(), **TEST_OPTIONS)
    try:
        yield LocalCloud(info)
    finally:
        control.down(state_dir)
    left = processes_of(state_dir.resolve())
    assert not left, f"processes of the local cloud still running after down: {left}"
