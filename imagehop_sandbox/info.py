"""What a running local cloud offers, as saved in ``<state_dir>/sandbox.json``.

The file holds credentials of the sandbox's own demo accounts, so it is written with mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imagehop_sandbox.tokens import ACCOUNT_PREFIX

INFO_FILE = "sandbox.json"
REGIONS = ("DFW", "IAD")


@dataclass(frozen=True)
class AccountInfo:
    """A login of the local Identity. ``admin`` users may create tasks and change images."""

    username: str
    api_key: str
    password: str
    tenant_id: str
    admin: bool = True
    default_region: str = "DFW"
    # Keystone v3 (generic OpenStack mode): an application credential of this user.
    app_credential_id: str = ""
    app_credential_secret: str = ""

    def __repr__(self) -> str:  # keep secrets out of logs and test output
        return f"AccountInfo(username={self.username!r}, tenant_id={self.tenant_id!r})"

    @property
    def swift_account(self) -> str:
        return ACCOUNT_PREFIX + self.tenant_id

    @property
    def project_name(self) -> str:
        """The Keystone v3 project whose id is ``tenant_id``."""
        return project_name(self.tenant_id)


#: The Keystone v3 domain of every user and project (Flex has ``rackspace_cloud_domain``).
DOMAIN_ID = "a3f1c0de5b2d4e8f9a7b6c5d4e3f2a1b"
DOMAIN_NAME = "sandbox_cloud_domain"


def project_name(tenant_id: str) -> str:
    return f"project-{tenant_id}"


@dataclass(frozen=True)
class RegionInfo:
    """Endpoints of one region. ``compute_url`` and ``storage_url`` hold a ``{tenant}`` slot."""

    name: str
    storage_host: str
    images_url: str
    compute_url: str
    storage_url: str

    def compute_url_for(self, tenant_id: str) -> str:
        return self.compute_url.format(tenant=tenant_id)

    def storage_url_for(self, tenant_id: str) -> str:
        return self.storage_url.format(tenant=tenant_id)


@dataclass(frozen=True)
class SandboxInfo:
    """Everything a client needs to use (or administer) a running local cloud."""

    identity_url: str
    regions: dict[str, RegionInfo]
    accounts: list[AccountInfo]
    token_secret_file: str
    admin_url: str
    state_dir: str
    service_tenant: str
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    ready: bool = False

    def account(self, username: str) -> AccountInfo:
        for account in self.accounts:
            if account.username == username:
                return account
        raise KeyError(f"no sandbox account {username!r}")

    def region(self, name: str) -> RegionInfo:
        try:
            return self.regions[name.upper()]
        except KeyError:
            raise KeyError(f"no sandbox region {name!r}; have {', '.join(self.regions)}") from None

    def token_secret(self) -> str:
        return Path(self.token_secret_file).read_text().strip()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxInfo:
        values = dict(data)
        values["regions"] = {k: RegionInfo(**v) for k, v in data["regions"].items()}
        values["accounts"] = [AccountInfo(**a) for a in data["accounts"]]
        return cls(**values)

    def save(self, state_dir: Path) -> None:
        write_private_json(state_dir / INFO_FILE, self.to_json())


def write_private_json(path: Path, data: Any) -> None:
    """Write JSON atomically, readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2, sort_keys=True)
    os.replace(tmp, path)


def read_info(state_dir: Path) -> SandboxInfo | None:
    """The saved info, or None when the local cloud is not up in ``state_dir``."""
    path = state_dir / INFO_FILE
    if not path.exists():
        return None
    return SandboxInfo.from_json(json.loads(path.read_text()))
