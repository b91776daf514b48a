"""A handle on a running local cloud for tests, benchmarks and demos.

``LocalCloud`` wraps :class:`~imagehop_sandbox.info.SandboxInfo` with what test authors need:
accounts, endpoint URLs, token minting, the admin API (:class:`Admin`), restarting the API
service, and :class:`CloudSession`, plain HTTP calls as one account (what the curl commands
of the documented procedure do). Nothing here is imagehop's client code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from imagehop_sandbox import control
from imagehop_sandbox.info import DOMAIN_NAME, AccountInfo, SandboxInfo
from imagehop_sandbox.tokens import issue

TIMEOUT = (5.0, 60.0)
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class Admin:
    """The sandbox-only admin API (``/_sandbox``)."""

    def __init__(self, admin_url: str) -> None:
        self.url = admin_url
        self.http = requests.Session()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, self.url + path, json=body, timeout=TIMEOUT)
        if response.status_code >= 400:
            raise RuntimeError(f"admin {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def options(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/options")
        return result

    def set_options(self, **changes: Any) -> dict[str, Any]:
        """Change options of the running cloud (e.g. ``token_lifetime_seconds=5``)."""
        result: dict[str, Any] = self._call("PATCH", "/options", changes)
        return result

    def reset_options(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("DELETE", "/options")
        return result

    @contextmanager
    def temporary_options(self, **changes: Any) -> Iterator[dict[str, Any]]:
        """Set options for the ``with`` block, then put the previous values back."""
        before = self.options()
        try:
            yield self.set_options(**changes)
        finally:
            self.set_options(**{name: before[name] for name in changes})

    def fail_next_task(
        self, region: str, task_type: str, message: str, count: int = 1
    ) -> dict[str, Any]:
        """The next ``count`` tasks of this type in ``region`` end in failure with ``message``."""
        fault = {"region": region, "type": task_type, "message": message, "count": count}
        result: dict[str, Any] = self._call("POST", "/faults/tasks", fault)
        return result

    def delay_next_task(
        self, region: str, task_type: str, seconds: float, count: int = 1
    ) -> dict[str, Any]:
        """The next ``count`` tasks stay ``processing`` ``seconds`` longer."""
        fault = {"region": region, "type": task_type, "extra_seconds": seconds, "count": count}
        result: dict[str, Any] = self._call("POST", "/faults/tasks", fault)
        return result

    def fail_next_request(
        self,
        service: str,
        path: str,
        status: int,
        region: str | None = None,
        method: str | None = None,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: str = "",
    ) -> dict[str, Any]:
        """Answer the next ``count`` matching requests (``path`` is a regex) with ``status``."""
        fault: dict[str, Any] = {"service": service, "path": path, "status": status}
        fault.update(count=count, headers=headers or {}, body=body)
        if region:
            fault["region"] = region
        if method:
            fault["method"] = method
        result: dict[str, Any] = self._call("POST", "/faults/http", fault)
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def counts(self) -> dict[str, dict[str, int]]:
        """Tasks, images and servers created so far, per region."""
        result: dict[str, dict[str, int]] = self._call("GET", "/counts")
        return result

    def peaks(self) -> dict[str, dict[str, int]]:
        """Per region, the most export (``export_tasks_running``) and import
        (``import_tasks_running``) tasks that were ever unfinished at once, any account."""
        result: dict[str, dict[str, int]] = self._call("GET", "/peaks")
        return result

    def clear_peaks(self) -> None:
        """Start the peaks afresh (e.g. before a batch whose caps a test checks)."""
        self._call("DELETE", "/peaks")

    def task_polls(self, task_id: str) -> list[float]:
        """Epoch times of every ``GET /v2/tasks/<id>`` the service answered."""
        return list(self._call("GET", f"/tasks/{task_id}/polls")["polls"])

    def image_record(self, image_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/images/{image_id}")
        return result

    def image_content_md5(self, image_id: str) -> str:
        """MD5 of the image's bytes (its ``checksum`` is of a packaging, as on Cloud Images)."""
        content = self.image_record(image_id)["content"]
        if content is None:
            raise RuntimeError(f"image {image_id} has no bytes yet")
        return str(content["md5"])

    def seed(self) -> dict[str, dict[str, str]]:
        """Seed ids: ``{"DFW": {"base_image", "licensed_image", "demo_server"}, "IAD": ...}``."""
        result: dict[str, dict[str, str]] = self._call("GET", "/seed")
        return result

    def create_image(self, region: str, owner: str, **fields: Any) -> dict[str, Any]:
        """An ``active`` image with real bytes; fields: name, properties, visibility,
        disk_bytes, min_disk."""
        result: dict[str, Any] = self._call(
            "POST", "/images", {"region": region, "owner": owner, **fields}
        )
        return result


class LocalCloud:
    """What a test needs to use a running local cloud."""

    def __init__(self, info: SandboxInfo) -> None:
        self.info = info
        self.admin = Admin(info.admin_url)

    @property
    def state_dir(self) -> Path:
        return Path(self.info.state_dir)

    @property
    def identity_url(self) -> str:
        return self.info.identity_url

    @property
    def main(self) -> AccountInfo:
        """Admin user of the first tenant; owns the demo server in ``DFW``."""
        return self.info.account("demo")

    @property
    def other(self) -> AccountInfo:
        """Admin user of a second tenant (for cross-account tests)."""
        return self.info.account("demo-other")

    @property
    def viewer(self) -> AccountInfo:
        """User of the first tenant without the admin role (cannot create tasks)."""
        return self.info.account("demo-viewer")

    def keystone_url(self, region: str | None = None) -> str:
        """Keystone v3 of the generic-OpenStack mode: one for both regions, or ``region``'s own
        (as on Flex); ends in ``/v3``."""
        root = self.identity_url.rsplit("/v2.0", 1)[0] + "/identity"
        return f"{root}/{region.lower()}/v3" if region else f"{root}/v3"

    def images_url(self, region: str) -> str:
        return self.info.region(region).images_url

    def compute_url(self, region: str, tenant: str) -> str:
        return self.info.region(region).compute_url_for(tenant)

    def storage_url(self, region: str, tenant: str) -> str:
        return self.info.region(region).storage_url_for(tenant)

    def mint_token(
        self, account: AccountInfo | str, lifetime_seconds: float = 3600.0, user: str | None = None
    ) -> str:
        """A token signed like Identity's, without a request (``account`` or a tenant id)."""
        if isinstance(account, AccountInfo):
            tenant, name = account.tenant_id, user or account.username
        else:
            tenant, name = account, user or "test-user"
        token, _ = issue(self.info.token_secret(), tenant, name, lifetime_seconds)
        return token

    def settings_env(
        self, account: AccountInfo | None = None, target: AccountInfo | None = None
    ) -> dict[str, str]:
        """``IMAGEHOP_*`` variables that point imagehop's Settings at this cloud."""
        chosen = account or self.main
        env = {
            "IMAGEHOP_IDENTITY_URL": self.identity_url,
            "IMAGEHOP_USERNAME": chosen.username,
            "IMAGEHOP_API_KEY": chosen.api_key,
        }
        if target is not None:
            env["IMAGEHOP_TARGET_USERNAME"] = target.username
            env["IMAGEHOP_TARGET_API_KEY"] = target.api_key
        return env

    def keystone_settings_env(
        self,
        account: AccountInfo | None = None,
        region: str | None = None,
        application_credential: bool = False,
    ) -> dict[str, str]:
        """``IMAGEHOP_*`` variables for a Keystone v3 login (generic-OpenStack mode): a
        password with domains, or ``application_credential``; ``region`` picks that region's
        own Keystone (as on Flex) instead of the one for both regions."""
        chosen = account or self.main
        env = {"IMAGEHOP_IDENTITY_URL": self.keystone_url(region)}
        if application_credential:
            env["IMAGEHOP_AUTH_TYPE"] = "v3applicationcredential"
            env["IMAGEHOP_APPLICATION_CREDENTIAL_ID"] = chosen.app_credential_id
            env["IMAGEHOP_APPLICATION_CREDENTIAL_SECRET"] = chosen.app_credential_secret
            return env
        env["IMAGEHOP_AUTH_TYPE"] = "v3password"
        env["IMAGEHOP_USERNAME"] = chosen.username
        env["IMAGEHOP_PASSWORD"] = chosen.password
        env["IMAGEHOP_USER_DOMAIN_NAME"] = DOMAIN_NAME
        env["IMAGEHOP_PROJECT_NAME"] = chosen.project_name
        return env

    def session(self, account: AccountInfo | None = None) -> CloudSession:
        return CloudSession(self, account or self.main)

    def restart_api(self, hard: bool = False) -> None:
        """Restart the API service (``hard``: SIGKILL, like a crash); Swift keeps running."""
        self.info = control.restart_api(self.state_dir, hard=hard)


class CloudSession:
    """Plain HTTP calls to the local cloud as one account (like the procedure's curl calls)."""

    def __init__(self, cloud: LocalCloud, account: AccountInfo) -> None:
        self.cloud = cloud
        self.account = account
        self.http = requests.Session()
        self._access: dict[str, Any] | None = None

    @property
    def tenant(self) -> str:
        return self.account.tenant_id

    def authenticate(self) -> dict[str, Any]:
        """``POST /v2.0/tokens`` with the API key; returns the ``access`` document."""
        body = {
            "auth": {
                "RAX-KSKEY:apiKeyCredentials": {
                    "username": self.account.username,
                    "apiKey": self.account.api_key,
                }
            }
        }
        response = self.http.post(self.cloud.identity_url + "/tokens", json=body, timeout=TIMEOUT)
        response.raise_for_status()
        self._access = response.json()["access"]
        return self._access

    @property
    def token(self) -> str:
        access = self._access or self.authenticate()
        return str(access["token"]["id"])

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {"X-Auth-Token": self.token, **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)

    def images(self, region: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """``path`` after the images endpoint, e.g. ``/images?name=x`` or ``/tasks/<id>``."""
        return self._call(method, self.cloud.images_url(region) + path, **kwargs)

    def compute(self, region: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._call(method, self.cloud.compute_url(region, self.tenant) + path, **kwargs)

    def storage(self, region: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._call(method, self.cloud.storage_url(region, self.tenant) + path, **kwargs)

    def patch_image(
        self, region: str, image_id: str, operations: list[dict[str, Any]]
    ) -> requests.Response:
        return self.images(
            region,
            "PATCH",
            f"/images/{image_id}",
            json=operations,
            headers={"Content-Type": PATCH_TYPE},
        )

    def new_container(self, region: str, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        response = self.storage(region, "PUT", f"/{name}")
        response.raise_for_status()
        return name

    def wait_task(self, region: str, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll (quickly: test scale) until the task succeeds or fails."""
        return _wait(
            lambda: self.images(region, "GET", f"/tasks/{task_id}").json(),
            lambda task: task["status"] in ("success", "failure"),
            timeout,
            f"task {task_id}",
        )

    def wait_image(
        self, region: str, image_id: str, status: str = "active", timeout: float = 30.0
    ) -> dict[str, Any]:
        return _wait(
            lambda: self.images(region, "GET", f"/images/{image_id}").json(),
            lambda image: image["status"] in (status, "killed"),
            timeout,
            f"image {image_id}",
        )

    def wait_server(self, region: str, server_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return _wait(
            lambda: self.compute(region, "GET", f"/servers/{server_id}").json()["server"],
            lambda server: server["status"] in ("ACTIVE", "ERROR"),
            timeout,
            f"server {server_id}",
        )

    def snapshot(
        self, region: str, server_id: str, name: str, metadata: dict[str, str] | None = None
    ) -> str:
        """createImage on a server and wait until the image is active; returns its id."""
        body = {"createImage": {"name": name, "metadata": metadata or {}}}
        response = self.compute(region, "POST", f"/servers/{server_id}/action", json=body)
        response.raise_for_status()
        image_id = response.headers["Location"].rsplit("/", 1)[-1]
        self.wait_image(region, image_id)
        return image_id

    def export(self, region: str, image_id: str, container: str) -> dict[str, Any]:
        """Create an export task and wait for its end."""
        body = {
            "type": "export",
            "input": {"image_uuid": image_id, "receiving_swift_container": container},
        }
        response = self.images(region, "POST", "/tasks", json=body)
        response.raise_for_status()
        return self.wait_task(region, response.json()["id"])

    def import_(self, region: str, location: str, name: str, **extra: Any) -> dict[str, Any]:
        """Create an import task of ``container/object`` and wait for its end."""
        body = {
            "type": "import",
            "input": {
                "import_from": location,
                "import_from_format": "vhd",
                "image_properties": {"name": name, **extra},
            },
        }
        response = self.images(region, "POST", "/tasks", json=body)
        response.raise_for_status()
        return self.wait_task(region, response.json()["id"])


def _wait(
    read: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
    what: str,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} still {value.get('status')} after {timeout:.0f}s")
        time.sleep(0.05)
