"""Files of a local cloud's state folder, and the one-time choices kept there.

::

    <state_dir>/
      options.json      SandboxOptions given to ``up``
      token_secret      signing key of every token (0600)
      accounts.json     demo logins with random API keys and passwords (0600)
      ports.json        ports of the API service, fixed so that restarts keep the URLs
      sandbox.json      SandboxInfo while the cloud is up (0600)
      supervisor.pid
      swift/dfw, swift/iad   the two Swift clusters (config, rings, data, logs)
      api/state.db      the API service's database
      log/              supervisor and API service logs
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from imagehop_sandbox.info import REGIONS, AccountInfo, write_private_json
from imagehop_sandbox.options import SandboxOptions
from imagehop_sandbox.swift_cluster import claim_ports, free_ports

OPTIONS = "options.json"
SECRET = "token_secret"
ACCOUNTS = "accounts.json"
PORTS = "ports.json"
SUPERVISOR_PID = "supervisor.pid"
SERVICE_TENANT = "sandbox-images"
PORT_NAMES = ("identity", *(f"images-{r}" for r in REGIONS), *(f"compute-{r}" for r in REGIONS))


def log_dir(state_dir: Path) -> Path:
    path = state_dir / "log"
    path.mkdir(parents=True, exist_ok=True)
    return path


def database(state_dir: Path) -> Path:
    return state_dir / "api" / "state.db"


def cluster_root(state_dir: Path, region: str) -> Path:
    return state_dir / "swift" / region.lower()


def load_options(state_dir: Path) -> SandboxOptions:
    path = state_dir / OPTIONS
    if not path.exists():
        return SandboxOptions()
    return SandboxOptions.from_json(json.loads(path.read_text()))


def save_options(state_dir: Path, options: SandboxOptions) -> None:
    (state_dir / OPTIONS).write_text(json.dumps(options.to_json(), indent=2, sort_keys=True))


def ensure_secret(state_dir: Path) -> Path:
    path = state_dir / SECRET
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path


def ensure_accounts(state_dir: Path) -> list[AccountInfo]:
    """The demo logins: two admin accounts (tenants) and a non-admin user of the first."""
    path = state_dir / ACCOUNTS
    if path.exists():
        return [AccountInfo(**a) for a in json.loads(path.read_text())]
    accounts = [
        _account("demo", "900001", admin=True),
        _account("demo-other", "900002", admin=True, region="IAD"),
        _account("demo-viewer", "900001", admin=False),
    ]
    write_private_json(path, [a.__dict__ for a in accounts])
    return accounts


def _account(username: str, tenant: str, admin: bool, region: str = "DFW") -> AccountInfo:
    return AccountInfo(
        username=username,
        api_key=secrets.token_hex(16),
        password=secrets.token_urlsafe(12),
        tenant_id=tenant,
        admin=admin,
        default_region=region,
        app_credential_id=secrets.token_hex(16),
        app_credential_secret=secrets.token_urlsafe(24),
    )


def ensure_ports(state_dir: Path) -> dict[str, int]:
    path = state_dir / PORTS
    if path.exists():
        ports = {k: int(v) for k, v in json.loads(path.read_text()).items()}
        claim_ports(ports.values())
        return ports
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
    path.write_text(json.dumps(ports, indent=2))
    return ports
