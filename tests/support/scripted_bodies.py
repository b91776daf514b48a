"""JSON bodies shaped like the documented Identity, Images and Servers answers, for scripts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from imagehop.settings import Settings

TENANT = "123456"


class _IsolatedSettings(Settings):
    """Settings built from arguments only: no IMAGEHOP_* variable or .env file leaks in."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: Any, init_settings: Any, **other_sources: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)


def make_settings(**overrides: Any) -> Settings:
    """Settings from defaults plus ``overrides``, with short HTTP timeouts."""
    values: dict[str, Any] = {"connect_timeout_seconds": 2.0, "read_timeout_seconds": 5.0}
    return _IsolatedSettings(**{**values, **overrides})


def iso(epoch: float) -> str:
    """An Identity-style ``expires`` value (UTC, milliseconds, ``Z``)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def catalog(host: str, regions: tuple[str, ...] = ("DFW", "IAD")) -> list[dict[str, Any]]:
    """A Rackspace-shaped ``serviceCatalog`` pointing every region at ``host``."""
    account = f"MossoCloudFS_{TENANT}"
    return [
        {
            "name": "cloudImages",
            "type": "image",
            "endpoints": [
                {"region": r, "tenantId": TENANT, "publicURL": f"{host}/{r.lower()}/images/v2"}
                for r in regions
            ],
        },
        {
            "name": "cloudFiles",
            "type": "object-store",
            "endpoints": [
                {
                    "region": r,
                    "tenantId": account,
                    "publicURL": f"{host}/{r.lower()}/files/v1/{account}",
                    "internalURL": f"{host}/snet-{r.lower()}/files/v1/{account}",
                }
                for r in regions
            ],
        },
        {
            "name": "cloudServersOpenStack",
            "type": "compute",
            "endpoints": [
                {
                    "region": r,
                    "tenantId": TENANT,
                    "publicURL": f"{host}/{r.lower()}/servers/v2/{TENANT}",
                }
                for r in regions
            ],
        },
    ]


def access(token: str, expires_at: float, host: str = "http://cloud.invalid") -> dict[str, Any]:
    """A ``POST /v2.0/tokens`` answer."""
    return {
        "access": {
            "token": {
                "id": token,
                "expires": iso(expires_at),
                "tenant": {"id": TENANT, "name": TENANT},
                "RAX-AUTH:authenticatedBy": ["APIKEY"],
            },
            "user": {
                "id": "u1",
                "name": "demo",
                "RAX-AUTH:defaultRegion": "DFW",
                "roles": [{"name": "admin", "id": "1"}],
            },
            "serviceCatalog": catalog(host),
        }
    }


def image(image_id: str, status: str = "active", **properties: Any) -> dict[str, Any]:
    """A ``GET /v2/images/{id}`` answer."""
    return {
        "id": image_id,
        "name": f"image {image_id}",
        "status": status,
        "visibility": "private",
        "owner": TENANT,
        "min_disk": 20,
        "size": 1024,
        "protected": False,
        "tags": [],
        "self": f"/v2/images/{image_id}",
        "file": f"/v2/images/{image_id}/file",
        "schema": "/v2/schemas/image",
        **properties,
    }


def task(
    task_id: str,
    status: str,
    *,
    task_type: str = "export",
    message: str = "None",
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``GET /v2/tasks/{id}`` answer."""
    body: dict[str, Any] = {
        "id": task_id,
        "type": task_type,
        "status": status,
        "message": message,
        "input": {},
        "owner": TENANT,
        "created_at": "2014-02-26T02:01:44Z",
        "updated_at": "2014-02-26T02:16:50Z",
        "self": f"/v2/tasks/{task_id}",
        "schema": "/v2/schemas/task",
    }
    if result is not None:
        body["result"] = result
    if status in ("success", "failure"):
        body["expires_at"] = "2014-02-28T02:16:50Z"
    return body


def server(server_id: str, status: str, **extra: Any) -> dict[str, Any]:
    """A ``GET /servers/{id}`` answer."""
    body = {
        "id": server_id,
        "name": f"server {server_id}",
        "status": status,
        "OS-EXT-STS:task_state": None,
        "image": {"id": "img-1", "links": []},
        "flavor": {"id": "general1-1", "links": []},
        "addresses": {},
        **extra,
    }
    return {"server": body}
