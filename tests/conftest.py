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

from imagehop_sandbox import control
from imagehop_sandbox.control import processes_of
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.options import MiB

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
