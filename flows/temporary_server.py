"""The CLI's temporary Prefect server: a child process that dies with the CLI, ``kill -9`` too.

In ephemeral mode (no ``PREFECT_API_URL``) Prefect 3.9 starts a uvicorn subprocess
(``SubprocessASGIServer`` in ``prefect.server.api.server``) and stops it at interpreter exit:
a CLI killed with SIGKILL never gets there, and the server runs on for good. The CLI starts
the same server itself instead (same command, same environment) and points
``PREFECT_API_URL`` at it. The child asks Linux to kill it when its parent dies
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``) before it imports anything, and exits at once if the
parent is already gone. The signal follows the parent *thread* that started the child: start
it from the main thread (the CLI does).

Elsewhere than Linux, :func:`supported` is False and Prefect's own ephemeral server is used.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

#: Run by the child's Python: die with the parent, then run uvicorn as ``python -m uvicorn``.
BOOTSTRAP = """
import ctypes, os, runpy, signal, sys
parent = int(sys.argv.pop(1))
if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PDEATHSIG
    sys.exit("imagehop: prctl(PR_SET_PDEATHSIG) failed")
if os.getppid() != parent:  # the parent died before prctl: nobody to serve
    sys.exit(0)
runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)
"""
#: What Prefect sets for its temporary server (no UI; ephemeral-mode services).
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
#: uvicorn exits with this code when the port is taken: pick another and start again.
PORT_IN_USE_EXIT = 3
STOP_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.1


def supported() -> bool:
    """Whether the child can be tied to the CLI's life (Linux ``prctl``)."""
    return sys.platform.startswith("linux")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_command(port: int) -> list[str]:
    """The child's command line: the bootstrap, then Prefect's uvicorn arguments."""
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None
    app_dir = Path(spec.origin).parent.parent
    return [
        sys.executable, "-c", BOOTSTRAP, str(os.getpid()),
        "--app-dir", str(app_dir), "--factory", "prefect.server.api.server:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on",
    ]  # fmt: skip


class TemporaryServer:
    """A Prefect API server for this process's lifetime: ``with TemporaryServer(env) as s``
    starts it and waits until ``s.api_url`` answers; leaving the block stops it."""

    def __init__(self, env: Mapping[str, str], startup_timeout: float = 90.0) -> None:
        """
        Args:
            env: the child's environment (the CLI's, plus Prefect's settings), without
                :data:`SERVER_ENV`, which is added.
            startup_timeout: seconds to wait for ``/api/health`` (a fresh database is
                migrated first: 16-19 s on 2 busy cores).
        """
        self._env = {**env, **SERVER_ENV}
        self._timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def __enter__(self) -> TemporaryServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the child and wait until it answers; RuntimeError if it does not in time."""
        deadline = time.monotonic() + self._timeout
        try:
            while not self._started(deadline):
                pass
        except BaseException:
            self.stop()
            raise

    def _started(self, deadline: float) -> bool:
        """Start once; False when uvicorn found the port taken (try another)."""
        self.port = free_port()
        self.process = subprocess.Popen(
            server_command(self.port), env=self._env, stdin=subprocess.DEVNULL
        )
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code == PORT_IN_USE_EXIT:
                return False
            if code is not None:
                raise RuntimeError(f"the temporary Prefect server exited with code {code}")
            if _healthy(self.api_url):
                return True
            time.sleep(_POLL_SECONDS)
        raise RuntimeError(
            f"the temporary Prefect server did not answer within {self._timeout:.0f} s: set "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or PREFECT_API_URL to a "
            "running server"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after :data:`STOP_GRACE_SECONDS`; reaped either way."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2.0) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False
