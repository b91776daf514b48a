"""Start, stop and inspect a local cloud running in the background.

``up`` starts a supervisor process (:mod:`imagehop_sandbox.supervisor`) that owns the two
Swift clusters and the API service, and returns once everything answers; it is idempotent.
``down`` stops it and leaves no process behind. ``env_lines`` prints ``export IMAGEHOP_...=``
lines that point imagehop at the local cloud.

Options given to ``up`` are saved with the state folder and used again by later ``up`` calls;
``max_file_size`` and ``max_manifest_segments`` cannot change once the folder exists.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import imagehop_sandbox
from imagehop_sandbox import state_files
from imagehop_sandbox.info import INFO_FILE, SandboxInfo, read_info
from imagehop_sandbox.options import CLUSTER_OPTIONS

STATE_DIR_ENV = "IMAGEHOP_SANDBOX_DIR"
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
# Processes of a local cloud run one of these modules (and name the state folder).
OUR_MODULES = (
    "imagehop_sandbox.supervisor",
    "imagehop_sandbox.service",
    "swift.account.server",
    "swift.container.server",
    "swift.obj.server",
    "swift.proxy.server",
)


def default_state_dir() -> Path:
    """``$IMAGEHOP_SANDBOX_DIR``, else ``~/.imagehop_sandbox``."""
    return Path(os.environ.get(STATE_DIR_ENV) or Path.home() / ".imagehop" / "sandbox")


def resolve_state_dir(state_dir: Path) -> Path:
    """``state_dir`` as the local cloud records it: absolute, ``~`` expanded."""
    return Path(state_dir).expanduser().resolve()


def up(
    state_dir: Path,
    timeout: float = START_TIMEOUT,
    stop_with_pid: int | None = None,
    **options: Any,
) -> SandboxInfo:
    """Start the local cloud in ``state_dir`` (or find it running) and describe it.

    ``options`` are :class:`~imagehop_sandbox.options.SandboxOptions` fields. With
    ``stop_with_pid`` (e.g. a test run's own pid) the cloud stops by itself once that process
    is gone, so a killed test run leaves nothing behind.
    """
    state_dir = resolve_state_dir(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with _locked(state_dir):
        running = _running(state_dir)
        if running is not None:
            if options:
                _apply_runtime_options(running, options)
            return running
        _stop_leftovers(state_dir)
        (state_dir / INFO_FILE).unlink(missing_ok=True)  # stale after a crash
        _save_options(state_dir, options)
        state_files.ensure_secret(state_dir)
        state_files.ensure_accounts(state_dir)
        process = _spawn_supervisor(state_dir, stop_with_pid)
        try:
            return _wait_ready(state_dir, process, timeout)
        except BaseException:
            _stop(state_dir)
            raise


def down(state_dir: Path) -> None:
    """Stop the local cloud in ``state_dir``; no-op when it is not running."""
    state_dir = resolve_state_dir(state_dir)
    if not state_dir.exists():
        return
    with _locked(state_dir):
        _stop(state_dir)


def load_info(state_dir: Path) -> SandboxInfo:
    """The running local cloud's description; RuntimeError when it is not up."""
    info = read_info(resolve_state_dir(state_dir))
    if info is None or not info.ready:
        raise RuntimeError(
            f"the local cloud is not up in {state_dir}: run `python -m imagehop_sandbox up`"
        )
    return info


def status(state_dir: Path) -> dict[str, Any]:
    """``{"state": "up"|"starting"|"down", ...}`` with URLs when up."""
    state_dir = resolve_state_dir(state_dir)
    info = read_info(state_dir)
    pid = _supervisor_pid(state_dir)
    if info is None or pid is None or not _is_ours(pid, state_dir):
        return {"state": "down", "state_dir": str(state_dir)}
    if not info.ready or not _api_answers(info):
        return {"state": "starting", "state_dir": str(state_dir)}
    return {
        "state": "up",
        "state_dir": str(state_dir),
        "identity_url": info.identity_url,
        "admin_url": info.admin_url,
        "regions": {name: region.__dict__ for name, region in info.regions.items()},
        "accounts": [a.username for a in info.accounts],
        "pids": info.pids,
    }


def env_lines(
    state_dir: Path, username: str | None = None, target_username: str | None = None
) -> list[str]:
    """``export IMAGEHOP_...=`` lines for the (first, unless named) account, and a target
    account when ``target_username`` is given."""
    info = load_info(state_dir)
    account = info.account(username) if username else info.accounts[0]
    values = {
        "IMAGEHOP_IDENTITY_URL": info.identity_url,
        "IMAGEHOP_USERNAME": account.username,
        "IMAGEHOP_API_KEY": account.api_key,
    }
    if target_username:
        target = info.account(target_username)
        values["IMAGEHOP_TARGET_USERNAME"] = target.username
        values["IMAGEHOP_TARGET_API_KEY"] = target.api_key
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def restart_api(state_dir: Path, hard: bool = False, timeout: float = 60.0) -> SandboxInfo:
    """Restart the API service (``hard``: kill it like a crash); Swift keeps running."""
    state_dir = resolve_state_dir(state_dir)
    info = load_info(state_dir)
    pid = _supervisor_pid(state_dir)
    if pid is None or not _is_ours(pid, state_dir):
        raise RuntimeError(f"no supervisor running for {state_dir}")
    old_api = info.pids.get("api")
    os.kill(pid, signal.SIGUSR2 if hard else signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = read_info(state_dir)
        restarted = current is not None and current.pids.get("api") not in (None, old_api)
        if current is not None and restarted and current.ready and _api_answers(current):
            return current
        time.sleep(0.05)
    raise RuntimeError(f"the API service did not come back within {timeout:.0f}s")


def processes_of(state_dir: Path) -> list[int]:
    """Pids of every live process of the local cloud in ``state_dir`` (resolved path)."""
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if pid != os.getpid() and _is_ours(pid, state_dir)]


# -- internals ---------------------------------------------------------------------------


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    with open(state_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _running(state_dir: Path) -> SandboxInfo | None:
    info = read_info(state_dir)
    pid = _supervisor_pid(state_dir)
    if info is None or not info.ready or pid is None or not _is_ours(pid, state_dir):
        return None
    return info if _api_answers(info) else None


def _api_answers(info: SandboxInfo) -> bool:
    try:
        with urllib.request.urlopen(f"{info.admin_url}/info", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _apply_runtime_options(info: SandboxInfo, options: dict[str, Any]) -> None:
    fixed = sorted(set(options) & CLUSTER_OPTIONS)
    if fixed:
        raise ValueError(f"the local cloud is already up; {', '.join(fixed)} cannot change now")
    request = urllib.request.Request(
        f"{info.admin_url}/options",
        data=json.dumps(options).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def _save_options(state_dir: Path, options: dict[str, Any]) -> None:
    saved = state_files.load_options(state_dir)
    wanted = saved.updated(options)
    clusters_exist = (state_files.cluster_root(state_dir, "DFW") / "cluster.json").exists()
    changed = [name for name in CLUSTER_OPTIONS if getattr(saved, name) != getattr(wanted, name)]
    if clusters_exist and changed:
        raise ValueError(
            f"{', '.join(sorted(changed))} cannot change for an existing state folder "
            f"({state_dir}); use a new folder"
        )
    state_files.save_options(state_dir, wanted)


def _spawn_supervisor(state_dir: Path, stop_with_pid: int | None) -> subprocess.Popen[bytes]:
    package_root = str(Path(imagehop_sandbox.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "imagehop_sandbox.supervisor", str(state_dir)]
    if stop_with_pid is not None:
        command += ["--stop-with", str(stop_with_pid)]
    with open(state_files.log_dir(state_dir) / "supervisor.out", "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": path},
        )
    (state_dir / state_files.SUPERVISOR_PID).write_text(str(process.pid))
    return process


def _wait_ready(state_dir: Path, process: subprocess.Popen[bytes], timeout: float) -> SandboxInfo:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the local cloud did not start (exit {process.returncode}):\n"
                + _log_tail(state_dir)
            )
        info = read_info(state_dir)
        if info is not None and info.ready:
            return info
        time.sleep(0.1)
    raise RuntimeError(
        f"the local cloud was not ready after {timeout:.0f}s:\n" + _log_tail(state_dir)
    )


def _log_tail(state_dir: Path, lines: int = 30) -> str:
    parts = []
    for name in ("supervisor.log", "supervisor.out", "api.out"):
        path = state_files.log_dir(state_dir) / name
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path}\n" + "\n".join(tail))
    return "\n".join(parts)


def _stop(state_dir: Path) -> None:
    pid = _supervisor_pid(state_dir)
    if pid is not None and _is_ours(pid, state_dir):
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, STOP_TIMEOUT):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
    _stop_leftovers(state_dir)
    (state_dir / INFO_FILE).unlink(missing_ok=True)
    (state_dir / state_files.SUPERVISOR_PID).unlink(missing_ok=True)


def _stop_leftovers(state_dir: Path) -> None:
    """Kill any process of this local cloud still alive (e.g. after a crashed supervisor)."""
    for pid in processes_of(state_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        _wait_gone(pid, 5)


def _supervisor_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / state_files.SUPERVISOR_PID).read_text())
    except (OSError, ValueError):
        return None


def _is_ours(pid: int, state_dir: Path) -> bool:
    """True if ``pid`` is a live process of the local cloud in ``state_dir``."""
    if not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    text = [arg.decode(errors="replace") for arg in argv]
    root = str(state_dir)
    mentions_dir = any(arg == root or root + os.sep in arg for arg in text)
    runs_module = any(module in arg for arg in text for module in OUR_MODULES)
    return mentions_dir and runs_module


def _alive(pid: int) -> bool:
    """Alive and not a zombie (reaps it when it is our own exited child)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)
