"""A throw-away PostgreSQL cluster on loopback for a team-shaped Prefect server.

Debian's PostgreSQL 15 (``apt-get install postgresql``; .ci/run installs it). The server
refuses to run as root, so ``initdb`` and ``pg_ctl`` run as the ``postgres`` user, in a
temporary folder that user owns; connections need no password (trust, loopback only). A
watchdog process stops and removes the cluster if the test process dies without its teardown
(killed, or a CI time-out), so no PostgreSQL is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.deployments.processes import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"
DATABASE = "prefect"
COMMAND_SECONDS = 90.0


@dataclass(frozen=True)
class Postgres:
    folder: Path
    port: int

    @property
    def url(self) -> str:
        """What ``PREFECT_API_DATABASE_CONNECTION_URL`` takes (asyncpg driver)."""
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def leftovers(self) -> list[str]:
        """Processes still running from this cluster's data folder (killed)."""
        marker = str(self.data).encode()
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker in command:
                line = command.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{pid}: {line}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
        return found


def _as_postgres(command: Sequence[str]) -> None:
    result = subprocess.run(
        ["runuser", "-u", USER, "--", *command],
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"{command[0]}: {result.stdout}\n{result.stderr}"


#: Run by a watchdog: once the process ``argv[1]`` is gone, stop the cluster and remove it.
WATCHDOG = """
import os, shutil, subprocess, sys, time
pid, pg_ctl, data, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
stop = ["runuser", "-u", "postgres", "--", pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"]
subprocess.run(stop, capture_output=True, timeout=60, check=False)
shutil.rmtree(folder, ignore_errors=True)
"""


def _watchdog(cluster: Postgres) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(BIN / "pg_ctl"),
               str(cluster.data), str(cluster.folder)]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def available() -> str | None:
    """Why no cluster can start here (None: it can)."""
    if not (BIN / "initdb").exists():
        return f"no {BIN}/initdb: apt-get install -y postgresql"
    if shutil.which("runuser") is None:
        return "no runuser"
    return None


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """initdb + pg_ctl start on a free loopback port, a ``prefect`` database; stopped and
    removed afterwards (no process of it may be left)."""
    problem = available()
    assert problem is None, problem
    folder = Path(tempfile.mkdtemp(prefix="imagehop-postgres-"))
    shutil.chown(folder, USER, USER)
    cluster = Postgres(folder, free_port())
    watchdog = _watchdog(cluster)
    try:
        _as_postgres([str(BIN / "initdb"), "-D", str(cluster.data), "-U", USER, "--auth=trust"])
        options = f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1"
        log = str(folder / "postgres.log")
        _as_postgres(
            [str(BIN / "pg_ctl"), "-D", str(cluster.data), "-o", options, "-l", log, "-w", "start"]
        )
        _as_postgres(
            [str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", USER,
             DATABASE]
        )  # fmt: skip
        yield cluster
    finally:
        watchdog.kill()
        watchdog.wait()
        if cluster.data.exists():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                _as_postgres(
                    [str(BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "fast", "-w", "stop"]
                )
        left = cluster.leftovers()
        shutil.rmtree(folder, ignore_errors=True)
    assert not left, f"postgres processes left behind: {left}"
