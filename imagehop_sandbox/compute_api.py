"""Cloud Servers v2 (Nova) of one region: servers, flavors, createImage, boot.

Served at ``http://127.0.0.1:<port>/v2/<tenant>`` like ``https://dfw.servers.api...``. A
server's disk is deterministic pseudo-random bytes (seeded by the server id), so an image of
it has real content. Booting takes ``boot_seconds`` (``BUILD`` then ``ACTIVE``); imaging runs
as a background job (image ``queued`` -> ``saving`` -> ``active``) while the server shows the
imaging task state and refuses a second ``createImage`` (409).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

from imagehop_sandbox.cloud import Caller, Cloud
from imagehop_sandbox.jobs import Jobs
from imagehop_sandbox.models import (
    FLAVORS,
    MAX_NAME,
    Flavor,
    ImageRecord,
    ServerRecord,
    flavor,
    iso,
)
from imagehop_sandbox.web import App, HttpError, Request, Response

FAULT_KINDS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    500: "computeFault",
    503: "serviceUnavailable",
}
MALFORMED = (
    "The server could not comply with the request since it is either malformed or otherwise "
    "incorrect."
)
# Properties that describe one snapshot, not the software on the disk: not inherited.
INSTANCE_PROPERTIES = frozenset(
    {"image_type", "instance_uuid", "base_image_ref", "user_id", "image_location"}
)
NOVA_IMAGE_STATUS = {
    "queued": ("SAVING", 25),
    "saving": ("SAVING", 50),
    "active": ("ACTIVE", 100),
    "killed": ("ERROR", 0),
    "deleted": ("DELETED", 0),
}


def render_nova_error(request: Request, error: HttpError) -> Response:
    kind = FAULT_KINDS.get(error.status, "computeFault")
    return Response.json(error.status, {kind: {"message": error.message, "code": error.status}})


class ComputeApi:
    def __init__(self, cloud: Cloud, jobs: Jobs, region: str) -> None:
        self.cloud = cloud
        self.store = cloud.store
        self.jobs = jobs
        self.region = region
        self.app = App(f"servers-{region.lower()}", render_nova_error, "X-Compute-Request-Id")
        self.app.before.append(cloud.http_fault_hook("compute", region))
        route = self.app.route
        route("GET", "/v2/{tenant}/servers")(self.list_servers)
        route("GET", "/v2/{tenant}/servers/detail")(self.list_servers_detail)
        route("GET", "/v2/{tenant}/servers/{server_id}")(self.get_server)
        route("POST", "/v2/{tenant}/servers")(self.create_server)
        route("DELETE", "/v2/{tenant}/servers/{server_id}")(self.delete_server)
        route("POST", "/v2/{tenant}/servers/{server_id}/action")(self.server_action)
        route("GET", "/v2/{tenant}/flavors")(self.list_flavors)
        route("GET", "/v2/{tenant}/flavors/detail")(self.list_flavors_detail)
        route("GET", "/v2/{tenant}/flavors/{flavor_id}")(self.get_flavor)
        route("GET", "/v2/{tenant}/images/{image_id}")(self.get_image)

    @property
    def base_url(self) -> str:
        return self.cloud.info.region(self.region).compute_url

    def _url(self, tenant: str, *parts: str) -> str:
        return "/".join([self.base_url.format(tenant=tenant), *parts])

    def _links(self, tenant: str, collection: str, item: str) -> list[dict[str, str]]:
        href = self._url(tenant, collection, item)
        return [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}]

    def _caller(self, request: Request) -> Caller:
        caller = self.cloud.caller(request)
        tenant = request.params["tenant"]
        if tenant != caller.tenant:
            raise HttpError(
                400,
                f"Malformed request URL: URL's project_id '{tenant}' doesn't match "
                f"Context's project_id '{caller.tenant}'",
            )
        return caller

    # -- servers -------------------------------------------------------------------------

    def _servers(self, caller: Caller) -> list[ServerRecord]:
        servers = ServerRecord.load_all(self.store, self.region)
        mine = [s for s in servers if s.tenant_id == caller.tenant]
        return sorted(mine, key=lambda s: (s.created_at, s.id), reverse=True)

    def _server(self, caller: Caller, server_id: str) -> ServerRecord:
        server = ServerRecord.load(self.store, server_id)
        if server is None or server.region != self.region or server.tenant_id != caller.tenant:
            raise HttpError(404, "Instance could not be found")
        return server

    def _filtered(self, request: Request, caller: Caller) -> list[ServerRecord]:
        name, status = request.arg("name"), request.arg("status")
        servers = self._servers(caller)
        if name:
            servers = [s for s in servers if name in s.name]
        if status:
            servers = [s for s in servers if self._status(s)[0] == status.upper()]
        return servers

    def list_servers(self, request: Request) -> Response:
        caller = self._caller(request)
        servers = [
            {"id": s.id, "name": s.name, "links": self._links(caller.tenant, "servers", s.id)}
            for s in self._filtered(request, caller)
        ]
        return Response.json(200, {"servers": servers})

    def list_servers_detail(self, request: Request) -> Response:
        caller = self._caller(request)
        servers = [self._server_view(s) for s in self._filtered(request, caller)]
        return Response.json(200, {"servers": servers})

    def get_server(self, request: Request) -> Response:
        caller = self._caller(request)
        server = self._server(caller, request.params["server_id"])
        return Response.json(200, {"server": self._server_view(server)})

    def _task_state(self, server: ServerRecord) -> str | None:
        if server.imaging_image_id is None:
            return None
        image = ImageRecord.load(self.store, server.imaging_image_id)
        if image is None:
            return None
        return {"queued": "image_snapshot", "saving": "image_uploading"}.get(image.status)

    def _status(self, server: ServerRecord) -> tuple[str, int]:
        now = time.time()
        if now >= server.ready_at:
            return "ACTIVE", 100
        span = max(server.ready_at - server.created_at, 1e-6)
        return "BUILD", int(100 * (now - server.created_at) / span)

    def _server_view(self, server: ServerRecord) -> dict[str, Any]:
        status, progress = self._status(server)
        tenant = server.tenant_id
        return {
            "id": server.id,
            "name": server.name,
            "status": status,
            "progress": progress,
            "tenant_id": tenant,
            "user_id": server.user_id,
            "hostId": hashlib.sha224(f"{tenant}:host".encode()).hexdigest(),
            "created": iso(server.created_at),
            "updated": iso(max(server.updated_at, min(server.ready_at, time.time()))),
            "accessIPv4": server.address if status == "ACTIVE" else "",
            "accessIPv6": "",
            "addresses": {"private": [{"addr": server.address, "version": 4}]},
            "image": {
                "id": server.image_id,
                "links": self._links(tenant, "images", server.image_id)[1:],
            },
            "flavor": {
                "id": server.flavor_id,
                "links": self._links(tenant, "flavors", server.flavor_id)[1:],
            },
            "metadata": dict(server.metadata),
            "links": self._links(tenant, "servers", server.id),
            "key_name": None,
            "config_drive": "",
            "OS-DCF:diskConfig": "AUTO",
            "OS-EXT-STS:power_state": 1 if status == "ACTIVE" else 0,
            "OS-EXT-STS:vm_state": "active" if status == "ACTIVE" else "building",
            "OS-EXT-STS:task_state": self._task_state(server) if status == "ACTIVE" else "spawning",
        }

    def create_server(self, request: Request) -> Response:
        caller = self._caller(request)
        spec = _server_spec(request.json())
        image = self._bootable_image(caller, spec["imageRef"])
        chosen = flavor(str(spec["flavorRef"]).rstrip("/").rsplit("/", 1)[-1])
        if chosen is None:
            raise HttpError(400, "Invalid flavorRef provided.")
        if chosen.disk < image.min_disk:
            raise HttpError(400, "Flavor's disk is too small for requested image.")
        if chosen.ram < image.min_ram:
            raise HttpError(400, "Flavor's memory is too small for requested image.")
        server = self.new_server(caller, spec["name"], image, chosen, spec.get("metadata") or {})
        body = {
            "server": {
                "id": server.id,
                "links": self._links(caller.tenant, "servers", server.id),
                "adminPass": secrets.token_urlsafe(12),
                "OS-DCF:diskConfig": "AUTO",
            }
        }
        location = self._url(caller.tenant, "servers", server.id)
        return Response.json(202, body, {"Location": location})

    def new_server(
        self,
        caller: Caller,
        name: str,
        image: ImageRecord,
        chosen: Flavor,
        metadata: dict[str, str],
    ) -> ServerRecord:
        server_id = str(uuid.uuid4())
        now = time.time()
        properties = {k: v for k, v in image.properties.items() if k not in INSTANCE_PROPERTIES}
        server = ServerRecord(
            server_id,
            self.region,
            tenant_id=caller.tenant,
            user_id=caller.user_id,
            name=name,
            image_id=image.id,
            flavor_id=chosen.id,
            metadata=dict(metadata),
            created_at=now,
            updated_at=now,
            ready_at=now + self.cloud.options.boot_seconds,
            disk_seed=f"server:{server_id}",
            disk_bytes=self.cloud.options.server_disk_bytes,
            image_properties=properties,
            min_ram=image.min_ram,
            address=_private_address(),
        )
        server.save(self.store)
        self.store.bump(self.region, "servers_created")
        return server

    def _bootable_image(self, caller: Caller, image_ref: str) -> ImageRecord:
        image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
        image = ImageRecord.load(self.store, image_id)
        if image is None or image.region != self.region or not image.visible_to(caller.tenant):
            raise HttpError(400, "Can not find requested image")
        if image.status != "active":
            raise HttpError(400, f"Image {image_id} is not active.")
        return image

    def delete_server(self, request: Request) -> Response:
        caller = self._caller(request)
        server = self._server(caller, request.params["server_id"])
        self.store.delete(ServerRecord.KIND, server.id)
        return Response.empty(204)

    def server_action(self, request: Request) -> Response:
        caller = self._caller(request)
        server = self._server(caller, request.params["server_id"])
        body = request.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise HttpError(400, MALFORMED)
        action, args = next(iter(body.items()))
        if action != "createImage":
            raise HttpError(400, f"There is no such action: {action}")
        return self._create_image(caller, server, args)

    def _create_image(self, caller: Caller, server: ServerRecord, args: Any) -> Response:
        if not isinstance(args, dict) or not isinstance(args.get("name"), str) or not args["name"]:
            raise HttpError(400, "createImage entity requires name attribute")
        if len(args["name"]) > MAX_NAME:
            raise HttpError(400, f"Invalid input for field/attribute name: over {MAX_NAME} long")
        metadata = args.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise HttpError(400, "Invalid metadata")
        with self.store.lock:
            current = self._server(caller, server.id)
            self._check_can_image(current)
            image = self._snapshot_record(caller, current, args["name"], metadata)
            image.save(self.store)
            current.imaging_image_id = image.id
            current.updated_at = time.time()
            current.save(self.store)
        self.store.bump(self.region, "images_created")
        self.jobs.start_snapshot(image.id)
        return Response.empty(202, {"Location": self._url(caller.tenant, "images", image.id)})

    def _check_can_image(self, server: ServerRecord) -> None:
        status, _ = self._status(server)
        if status != "ACTIVE":
            raise HttpError(
                409, f"Cannot 'createImage' instance {server.id} while it is in vm_state building"
            )
        task_state = self._task_state(server)
        if task_state is not None:
            raise HttpError(
                409,
                f"Cannot 'createImage' instance {server.id} while it is in task_state {task_state}",
            )

    def _snapshot_record(
        self, caller: Caller, server: ServerRecord, name: str, metadata: dict[str, str]
    ) -> ImageRecord:
        chosen = flavor(server.flavor_id)
        properties = {
            **server.image_properties,
            "image_type": "snapshot",
            "instance_uuid": server.id,
            "base_image_ref": server.image_id,
            "user_id": caller.user_id,
            "image_location": "snapshot",
            **metadata,
        }
        return ImageRecord(
            str(uuid.uuid4()),
            self.region,
            name=name,
            owner=caller.tenant,
            status="queued",
            min_disk=chosen.disk if chosen else 0,
            min_ram=server.min_ram,
            properties=properties,
            origin={
                "kind": "disk",
                "seed": server.disk_seed,
                "disk_bytes": server.disk_bytes,
                "server_id": server.id,
            },
        )

    # -- flavors and images --------------------------------------------------------------

    def _flavor_view(self, tenant: str, item: Flavor, detail: bool) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": item.id,
            "name": item.name,
            "links": self._links(tenant, "flavors", item.id),
        }
        if detail:
            view.update(
                ram=item.ram,
                disk=item.disk,
                vcpus=item.vcpus,
                swap="",
                rxtx_factor=float(item.vcpus) * 200.0,
                **{"OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": False},
            )
        return view

    def list_flavors(self, request: Request) -> Response:
        caller = self._caller(request)
        flavors = [self._flavor_view(caller.tenant, f, False) for f in FLAVORS]
        return Response.json(200, {"flavors": flavors})

    def list_flavors_detail(self, request: Request) -> Response:
        caller = self._caller(request)
        flavors = [self._flavor_view(caller.tenant, f, True) for f in FLAVORS]
        return Response.json(200, {"flavors": flavors})

    def get_flavor(self, request: Request) -> Response:
        caller = self._caller(request)
        item = flavor(request.params["flavor_id"])
        if item is None:
            raise HttpError(404, "Flavor could not be found.")
        return Response.json(200, {"flavor": self._flavor_view(caller.tenant, item, True)})

    def get_image(self, request: Request) -> Response:
        caller = self._caller(request)
        image_id = request.params["image_id"]
        image = ImageRecord.load(self.store, image_id)
        if image is None or image.region != self.region or not image.visible_to(caller.tenant):
            raise HttpError(404, "Image not found.")
        status, progress = NOVA_IMAGE_STATUS.get(image.status, ("UNKNOWN", 0))
        stored = image.stored
        view: dict[str, Any] = {
            "id": image.id,
            "name": image.name,
            "status": status,
            "progress": progress,
            "minDisk": image.min_disk,
            "minRam": image.min_ram,
            "metadata": dict(image.properties),
            "created": iso(image.created_at),
            "updated": iso(image.updated_at),
            "links": self._links(caller.tenant, "images", image.id),
            "OS-EXT-IMG-SIZE:size": 0 if stored is None else stored.size,
        }
        server_id = image.properties.get("instance_uuid")
        if server_id:
            view["server"] = {
                "id": server_id,
                "links": self._links(caller.tenant, "servers", server_id),
            }
        return Response.json(200, {"image": view})


def _private_address() -> str:
    return "10." + ".".join(str(secrets.randbelow(250) + 2) for _ in range(3))


def _server_spec(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("server"), dict):
        raise HttpError(400, MALFORMED)
    spec: dict[str, Any] = body["server"]
    if not isinstance(spec.get("name"), str) or not spec["name"].strip():
        raise HttpError(400, "Server name is not defined")
    if not spec.get("imageRef"):
        raise HttpError(400, "Missing imageRef attribute")
    if not spec.get("flavorRef"):
        raise HttpError(400, "Missing flavorRef attribute")
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise HttpError(400, "Invalid metadata")
    return spec
