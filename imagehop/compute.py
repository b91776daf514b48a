"""Cloud Servers v2 (Nova): image a server, find flavors, boot a server, wait for ACTIVE.

Creating an image or a server is never replayed by the HTTP layer (a replay could create a
second one); the step above decides. The new image's status is watched through the Images
API (:meth:`imagehop.image.ImageClient.wait_for_image_active`), which every region offers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imagehop.errors import ApiError, ConflictError, PreflightError, ResourceFailedError
from imagehop.http import RegionalApiClient, json_body
from imagehop.image import STATUS_POLL_FLOOR_SECONDS
from imagehop.retries import NO_RETRY, RetryPolicy
from imagehop.waiting import poll_until

SERVER_FAILED_STATUSES = frozenset({"ERROR", "DELETED", "SOFT_DELETED"})


@dataclass(frozen=True)
class Flavor:
    """A server size; ``disk`` (GB) must be at least the image's ``min_disk``."""

    id: str
    name: str
    ram: int
    disk: int
    vcpus: int

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Flavor:
        """Build from a ``/flavors/detail`` entry."""
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            ram=int(data.get("ram") or 0),
            disk=int(data.get("disk") or 0),
            vcpus=int(data.get("vcpus") or 0),
        )


@dataclass(frozen=True)
class Server:
    """A server's state; ``task_state`` is e.g. ``image_snapshot`` while it is imaged."""

    id: str
    name: str
    status: str
    task_state: str | None = None
    image_id: str | None = None
    flavor_id: str | None = None
    progress: int | None = None
    fault: str | None = None
    addresses: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Server:
        """Build from a ``GET /servers/{id}`` ``server`` object."""
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            status=str(data.get("status", "")),
            task_state=data.get("OS-EXT-STS:task_state"),
            image_id=_id_of(data.get("image")),
            flavor_id=_id_of(data.get("flavor")),
            progress=data.get("progress"),
            fault=(data.get("fault") or {}).get("message"),
            addresses=dict(data.get("addresses") or {}),
        )


def _id_of(reference: Any) -> str | None:
    """The id in a Nova ``{"id": ..., "links": ...}`` reference (``""`` for none)."""
    if isinstance(reference, Mapping) and reference.get("id"):
        return str(reference["id"])
    return None


def id_from_location(location: str | None) -> str:
    """The last path segment of a ``Location`` header (``.../images/<id>``)."""
    last = urlsplit(location or "").path.rstrip("/").rsplit("/", 1)[-1]
    if not last:
        raise ApiError(f"the answer has no usable Location header ({location!r})")
    return last


def pick_flavor(flavors: Sequence[Flavor], min_disk: int, min_ram: int = 0) -> Flavor:
    """The smallest flavor (by disk, then RAM) that can boot an image with these minimums.

    Raises:
        PreflightError: no flavor is big enough.
    """
    fitting = [f for f in flavors if f.disk >= min_disk and f.ram >= min_ram]
    if not fitting:
        raise PreflightError(
            f"no flavor has a disk of at least {min_disk} GB and {min_ram} MB of RAM "
            f"(largest disk: {max((f.disk for f in flavors), default=0)} GB)"
        )
    return min(fitting, key=lambda f: (f.disk, f.ram, f.vcpus))


class ComputeClient(RegionalApiClient):
    """The Servers API of one region, for one account."""

    service_type = "compute"

    def create_server_image(
        self, server_id: str, name: str, metadata: Mapping[str, str] | None = None
    ) -> str:
        """Start imaging a server; returns the new image's id (from ``Location``).

        Raises:
            ConflictError: the server is already being imaged (409).
        """
        body = {"createImage": {"name": name, "metadata": dict(metadata or {})}}
        try:
            response = self._http.request(
                "POST", f"{self.base_url}/servers/{server_id}/action", json_body=body
            )
        except ConflictError as exc:
            raise _already_imaging(exc, server_id) from None
        return id_from_location(response.headers.get("Location"))

    def get_server(self, server_id: str, *, retry: RetryPolicy | None = None) -> Server:
        """One server. Raises NotFoundError if this account has no such server."""
        response = self._http.request("GET", f"{self.base_url}/servers/{server_id}", retry=retry)
        return Server.from_api(json_body(response, "server"))

    def list_flavors(self) -> list[Flavor]:
        """Every flavor with its disk and RAM sizes."""
        response = self._http.request("GET", f"{self.base_url}/flavors/detail")
        return [Flavor.from_api(item) for item in json_body(response, "flavors")]

    def boot_server(
        self,
        name: str,
        image_id: str,
        flavor_id: str,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Create a server from an image; returns its id. The answer's ``adminPass`` is a
        secret and is dropped here."""
        server: dict[str, Any] = {"name": name, "imageRef": image_id, "flavorRef": flavor_id}
        if metadata:
            server["metadata"] = dict(metadata)
        response = self._http.request(
            "POST", f"{self.base_url}/servers", json_body={"server": server}
        )
        try:
            return str(json_body(response, "server")["id"])
        except (ApiError, KeyError, TypeError):
            return id_from_location(response.headers.get("Location"))

    def wait_for_server_active(
        self,
        server_id: str,
        deadline_seconds: float | None = None,
        *,
        on_poll: Callable[[Server], None] | None = None,
    ) -> Server:
        """Poll until the server is ACTIVE.

        Raises:
            ResourceFailedError: the server went to ERROR (with the cloud's fault message)
                or was deleted.
            WaitTimeoutError: not ACTIVE by the deadline (default:
                ``Settings.boot_deadline_seconds``).
        """
        return poll_until(
            lambda: self.get_server(server_id, retry=NO_RETRY),
            _server_active,
            status_of=lambda server: server.status,
            resource=f"server {server_id}",
            wanted="ACTIVE",
            interval=max(STATUS_POLL_FLOOR_SECONDS, self._settings.status_poll_interval_seconds),
            deadline_seconds=deadline_seconds or self._settings.boot_deadline_seconds,
            clock=self._clock,
            on_poll=on_poll,
        )


def _already_imaging(exc: ConflictError, server_id: str) -> ConflictError:
    return ConflictError(
        f"{exc.message}; the server is already being imaged: wait until server "
        f"{server_id} has no image_* task state (or use the image in progress), then retry",
        exc.request_id,
        exc.status,
        exc.method,
        exc.url,
    )


def _server_active(server: Server) -> bool:
    if server.status in SERVER_FAILED_STATUSES:
        reason = f": {server.fault}" if server.fault else ""
        raise ResourceFailedError(
            f"server {server.id} went to {server.status}{reason}",
            None,
            f"server {server.id}",
            server.status,
        )
    return server.status == "ACTIVE"
