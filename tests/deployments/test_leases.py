"""Slots of imagehop's global limits held while the Prefect server restarts, on a server
started as deployments/README.md says (leases in files under its PREFECT_HOME, conftest's
``LEASE_STORAGE``; SQLite here, the same database across the restart).

Two holders take a slot of ``imagehop-export-DFW`` each, the way the export tasks do
(``slot_holder.py``: a task inside ``tasks/limits.py``'s ``region_slot``). One is killed (-9),
the server restarts, the other releases its slot: the count drops by one at once (the release
finds its lease), and the killed holder's slot comes back once its lease expires (Prefect's
minimum, 60 s after it was taken; the repossessor looks every second here). With Prefect's
default memory storage the release finds no lease and neither slot ever comes back.

About 75-95 s, most of it the 60 s lease: the restart and the release happen within it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deployments.conftest import PrefectServer, start_prefect_server
from tests.deployments.processes import (
    PROJECT_ROOT,
    PYTHON,
    Api,
    output_of,
    prefect_env,
    run,
    wait_for,
)

pytestmark = [pytest.mark.deployment]

LIMIT = "imagehop-export-DFW"
LEASE_SECONDS = 60.0  # Prefect's minimum lease (IMAGEHOP_LIMIT_LEASE_SECONDS)
REPOSSESSOR_SECONDS = 1
HOLD_SECONDS = 90.0  # a holder's flow run starting and taking its slot
RELEASE_SECONDS = 30.0
#: After the killed holder's lease expired: repossessor passes, a busy shared machine.
EXPIRY_SLACK_SECONDS = 30.0
MEMORY_WARNING = "keeps concurrency leases in memory"
HELD, RELEASED = "slot holder: held", "slot holder: released"  # what slot_holder.py prints


@dataclass
class Holder:
    """A ``slot_holder.py`` process (its own process group, output in a file)."""

    process: subprocess.Popen[str]
    log: Path
    held_at: float = 0.0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_held(self) -> None:
        def held() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"slot holder exited:\n{self.output()[-4000:]}")
            return HELD in self.output()

        wait_for("slot held", held, HOLD_SECONDS)
        self.held_at = time.monotonic()

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("release\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=RELEASE_SECONDS) == 0, self.output()[-4000:]
        assert RELEASED in self.output()

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=RELEASE_SECONDS)


@contextlib.contextmanager
def slot_holders(env: dict[str, str], *logs: Path) -> Iterator[list[Holder]]:
    """One holder of a slot of LIMIT per log, started at once and waited for until each holds
    its slot; killed afterwards if still running."""
    holders = []
    try:
        for log in logs:
            with log.open("w") as out:
                process = subprocess.Popen(
                    [PYTHON, "-m", "tests.deployments.slot_holder", "export", "DFW"],
                    env=env,
                    cwd=PROJECT_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )
            holders.append(Holder(process, log))
        for holder in holders:
            holder.wait_held()
        yield holders
    finally:
        for holder in holders:
            if holder.process.poll() is None:
                holder.kill()


def active_slots(api: Api) -> int:
    return int(api.call("GET", f"/v2/concurrency_limits/{LIMIT}")["active_slots"])


def lease_files(server: PrefectServer) -> list[str]:
    folder = server.home / "concurrency_leases"  # the filesystem storage's folder, fixed
    return sorted(path.name for path in folder.glob("*.json") if path.name != "expirations.json")


def wait_for_no_active_slot(api: Api, deadline: float) -> int:
    """Active slots of LIMIT once none is left, or at ``deadline`` (monotonic) if some are."""
    while (slots := active_slots(api)) and time.monotonic() < deadline:
        time.sleep(1.0)
    return slots


def test_slots_held_across_a_server_restart_are_freed_by_release_and_by_expiry(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    (tmp_path / "server").mkdir()
    server = start_prefect_server(
        tmp_path / "server",
        PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS=str(REPOSSESSOR_SECONDS),
    )
    client = prefect_env(
        tmp_path / "home-client",
        server.api_url,
        PYTHONPATH=str(PROJECT_ROOT),
        IMAGEHOP_LIMIT_LEASE_SECONDS=f"{LEASE_SECONDS:.0f}",
    )
    try:
        server.wait_healthy()
        regions = ["--region", "DFW", "--region", "IAD"]
        limits = run([PYTHON, "deployments/limits.py", *regions], client)
        assert limits.returncode == 0, output_of(limits)
        assert f"created   {LIMIT} = 2" in limits.stdout.splitlines()
        api = server.api
        logs = (tmp_path / "releasing.log", tmp_path / "killed.log")
        with slot_holders(client, *logs) as (releasing, killed):
            held, files_held = active_slots(api), lease_files(server)
            killed.kill()
            server.restart()
            server.wait_healthy()
            restarted = time.monotonic()
            after_restart = active_slots(api)
            releasing.release()
            after_release = active_slots(api)
            expired = killed.held_at + LEASE_SECONDS + EXPIRY_SLACK_SECONDS
            at_the_end = wait_for_no_active_slot(api, expired)
            ended = time.monotonic()
        outputs = releasing.output() + killed.output()
    finally:
        server.stop()
    print(
        f"\nleases: active slots {held} held, {after_restart} after the restart "
        f"({restarted - began:.0f} s in), {after_release} after the release, {at_the_end} "
        f"{ended - killed.held_at:.0f} s after the killed holder was seen holding its slot; "
        f"{ended - began:.0f} s in all"
    )

    assert held == 2
    assert after_restart == 2  # the counts are in the database
    assert after_release == 1  # the release found its lease after the restart
    assert at_the_end == 0  # the killed holder's lease expired and was revoked
    assert len(files_held) == 2  # a lease file each, in the server's home
    assert lease_files(server) == []  # neither is left
    # the server says where its leases are: no warning from the set-up or from the tasks
    assert MEMORY_WARNING not in limits.stderr, output_of(limits)
    assert MEMORY_WARNING not in outputs
