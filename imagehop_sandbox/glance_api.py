"""Upstream Glance v2's image-create, image-data and interoperable-import APIs, in the regions
the ``glance_regions`` option names (generic-OpenStack mode), as ``openstack/glance`` answers
them (``glance/api/v2/images.py``, ``image_data.py``, ``discovery.py``); Cloud Images
regions answer these paths as before (404, or 405 where another method is routed).

=======  =================================  ===================================================
GET      /v2/info/import                    ``{"import-methods": {"description", "type",
                                            "value": [...]}}``: the region's enabled methods
                                            (option ``import_methods``)
GET      /v2/info/stores                    one store, ``swift`` (the region's real Swift)
POST     /v2/images                         201, ``queued``; headers
                                            ``OpenStack-image-import-methods`` and
                                            ``OpenStack-image-store-ids``
PUT      /v2/images/{id}/file               ``queued`` -> ``saving`` -> ``active``; 204
PUT      /v2/images/{id}/stage              ``queued`` -> ``uploading``; 204
POST     /v2/images/{id}/import             202; ``glance-direct``, ``web-download``,
                                            ``glance-download`` (:mod:`.glance_import`)
GET      /v2/images/{id}/tasks              the image's ``api_image_import`` tasks (v2.12)
=======  =================================  ===================================================

Uploads stream (``Content-Length`` or ``chunked``, any size) into the region's Swift; on
arrival Glance's ``size``, ``checksum`` (MD5) and ``os_hash_algo``/``os_hash_value`` (sha512)
are computed, and the bytes of a ``bare`` image must match its ``disk_format``
(:mod:`.formats`: 415 on upload, a failed import otherwise). ``x-openstack-image-size`` is
honoured: another byte count is a 400 ``Size mismatch`` and the image is back to ``queued``.
The deployment modelled has one store (``enabled_backends = swift:swift``), so images show
``stores: swift`` once they have data and a failed import leaves
``os_glance_failed_import: swift``.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from dataclasses import asdict
from typing import Any

from imagehop_sandbox.cloud import Caller, Cloud
from imagehop_sandbox.content import delete_content, store_content
from imagehop_sandbox.formats import FormatMismatch, Head, check_format
from imagehop_sandbox.glance_import import (
    FAILED_KEY,
    IMPORTING_KEY,
    LOCK_KEY,
    STORE_ID,
    GlanceImports,
    task_view,
    uri_passes_filtering,
)
from imagehop_sandbox.models import ImageContent, ImageRecord, ImageTaskRecord, iso
from imagehop_sandbox.schemas import GLANCE_CONTAINER_FORMATS, GLANCE_DISK_FORMATS, UUID_PATTERN
from imagehop_sandbox.swift_io import SwiftFailure
from imagehop_sandbox.web import App, ClientDisconnected, HttpError, Request, Response

NOT_FOUND = "The resource could not be found."
NOT_ALLOWED = "The method is not allowed for this resource."
FORBIDDEN = "You are not authorized to complete this action."
OCTET_STREAM = "application/octet-stream"
STORE_DESCRIPTION = "The region's Swift (real OpenStack Swift)"
# glance/api/v2/images.py RequestDeserializer and ImageFactory
DISALLOWED = ("direct_url", "self", "file", "schema", "stores")
READ_ONLY = (
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
)
RESERVED = ("location", "deleted", "deleted_at")
RESERVED_NAMESPACE = "os_glance"
BASE_FIELDS = {
    "name": ("string",),
    "id": ("string",),
    "visibility": ("string",),
    "protected": ("boolean",),
    "os_hidden": ("boolean",),
    "owner": ("null", "string"),
    "container_format": ("null", "string"),
    "disk_format": ("null", "string"),
    "min_ram": ("integer",),
    "min_disk": ("integer",),
    "tags": ("array",),
}
ENUMS: dict[str, list[Any]] = {
    "visibility": ["community", "public", "private", "shared"],
    "container_format": [None, *GLANCE_CONTAINER_FORMATS],
    "disk_format": [None, *GLANCE_DISK_FORMATS],
}
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "array": (list,),
    "null": (type(None),),
}


def glance_image_view(image: ImageRecord) -> dict[str, Any]:
    """The image as upstream Glance shows it: every base attribute, ``null`` when unset."""
    stored = image.stored
    staged = image.staged_content
    size: int | None = None
    if stored is not None:
        size = stored.size
    elif staged is not None and image.status in ("uploading", "importing"):
        size = staged.size  # Glance records the staged size
    view: dict[str, Any] = dict(image.properties)
    view.update(
        name=image.name or None,
        disk_format=image.disk_format,
        container_format=image.container_format,
        visibility=image.visibility,
        size=size,
        virtual_size=image.virtual_size,
        status=image.status,
        checksum=None if stored is None else stored.md5,
        protected=image.protected,
        min_ram=image.min_ram,
        min_disk=image.min_disk,
        owner=image.owner,
        os_hidden=image.os_hidden,
        os_hash_algo=None if stored is None or stored.sha512 is None else "sha512",
        os_hash_value=None if stored is None else stored.sha512,
        id=image.id,
        created_at=iso(image.created_at),
        updated_at=iso(image.updated_at),
        tags=list(image.tags),
        self=f"/v2/images/{image.id}",
        file=f"/v2/images/{image.id}/file",
        schema="/v2/schemas/image",
    )
    if stored is not None:
        view["stores"] = STORE_ID
    return view


class GlanceApi:
    def __init__(self, cloud: Cloud, app: App, region: str, imports: GlanceImports) -> None:
        self.cloud = cloud
        self.store = cloud.store
        self.region = region
        self.imports = imports
        route = app.route
        route("GET", "/v2/info/import")(self.import_info)
        route("GET", "/v2/info/stores")(self.stores_info)
        route("POST", "/v2/images")(self.create_image)
        route("PUT", "/v2/images/{image_id}/file")(self.upload)
        route("PUT", "/v2/images/{image_id}/stage")(self.stage)
        route("POST", "/v2/images/{image_id}/import")(self.import_image)
        route("GET", "/v2/images/{image_id}/tasks")(self.image_tasks)
        app.streamed.append(("PUT", re.compile(r"/images/[^/]+/(file|stage)/?$")))

    # -- helpers -------------------------------------------------------------------------

    def _require_glance(self, allow: str | None = None) -> None:
        """As Cloud Images answers a path it does not have: 405 where ``allow`` is routed."""
        if self.cloud.options.is_glance_region(self.region):
            return
        if allow:
            raise HttpError(405, NOT_ALLOWED, headers={"Allow": allow})
        raise HttpError(404, NOT_FOUND)

    @property
    def _methods(self) -> list[str]:
        return self.cloud.options.enabled_import_methods(self.region)

    def _image(self, caller: Caller, image_id: str) -> ImageRecord:
        image = ImageRecord.load(self.store, image_id)
        if image is None or image.region != self.region or not image.visible_to(caller.tenant):
            raise HttpError(404, f"No image found with ID {image_id}")
        return image

    def _transition(self, image_id: str, to: str, formats: bool) -> ImageRecord:
        """Move ``queued`` -> ``to`` atomically, with Glance's checks (409, 400)."""
        problem: list[HttpError] = []

        def change(doc: dict[str, Any]) -> None:
            current = doc["status"]
            if current != "queued":
                problem.append(
                    HttpError(409, f"Image status transition from {current} to {to} is not allowed")
                )
                return
            missing = [k for k in ("disk_format", "container_format") if not doc.get(k)]
            if formats and missing:
                word = "Property" if len(missing) == 1 else "Properties"
                problem.append(
                    HttpError(400, f"{word} {', '.join(missing)} must be set prior to saving data.")
                )
                return
            doc.update(status=to, updated_at=time.time())

        doc = self.store.update(ImageRecord.KIND, image_id, change)
        if problem:
            raise problem[0]
        if doc is None:
            raise HttpError(404, f"No image found with ID {image_id}")
        return ImageRecord.from_doc(doc)

    def _restore(self, image_id: str, **changes: Any) -> None:
        """Back to ``queued`` (Glance's ``_restore``) after a failed upload."""

        def change(doc: dict[str, Any]) -> None:
            doc.update(status="queued", virtual_size=None, updated_at=time.time(), **changes)

        self.store.update(ImageRecord.KIND, image_id, change)

    # -- discovery -----------------------------------------------------------------------

    def import_info(self, request: Request) -> Response:
        self._require_glance()
        self.cloud.caller(request)
        methods = {"description": "Import methods available.", "type": "array"}
        return Response.json(200, {"import-methods": {**methods, "value": self._methods}})

    def stores_info(self, request: Request) -> Response:
        self._require_glance()
        self.cloud.caller(request)
        store = {"id": STORE_ID, "description": STORE_DESCRIPTION, "default": "true"}
        return Response.json(200, {"stores": [store]})

    # -- create --------------------------------------------------------------------------

    def create_image(self, request: Request) -> Response:
        self._require_glance(allow="GET")
        caller = self.cloud.caller(request)
        body = request.json()
        if body is None:
            raise HttpError(400, "Body expected in request.")
        fields = _validated_create(body, caller)
        image_id = fields.pop("id", None) or str(uuid.uuid4())
        image = ImageRecord(
            image_id,
            self.region,
            name=fields.get("name") or "",
            owner=caller.tenant,
            status="queued",
            visibility=fields.get("visibility", "shared"),
            protected=fields.get("protected", False),
            tags=list(dict.fromkeys(fields.get("tags", []))),
            min_disk=fields.get("min_disk", 0),
            min_ram=fields.get("min_ram", 0),
            disk_format=fields.get("disk_format"),
            container_format=fields.get("container_format"),
            properties=fields["properties"],
            origin={"kind": "glance-create"},
            os_hidden=fields.get("os_hidden", False),
        )
        with self.store.lock:
            if self.store.get(ImageRecord.KIND, image_id) is not None:
                raise HttpError(409, f"Image with identifier {image_id} already exists!")
            image.save(self.store)
        self.store.bump(self.region, "images_created")
        headers = {"Location": f"{request.host_url('')}/v2/images/{image_id}"}
        if self._methods:
            headers["OpenStack-image-import-methods"] = ",".join(self._methods)
        headers["OpenStack-image-store-ids"] = STORE_ID
        return Response.json(201, glance_image_view(image), headers)

    # -- image data ----------------------------------------------------------------------

    def _upload_checks(self, request: Request, caller: Caller) -> tuple[ImageRecord, int | None]:
        image = self._image(caller, request.params["image_id"])
        if request.content_type != OCTET_STREAM:
            raise HttpError(415, f"Invalid content type {request.content_type or 'None'}")
        store = request.headers.get("x-image-meta-store")
        if store is not None and store != STORE_ID:
            raise HttpError(400, f"Unknown scheme '{store}' found in URI")
        expected = request.headers.get("x-openstack-image-size")
        try:
            size = int(expected) if expected is not None else None
        except ValueError:
            raise HttpError(400, "Invalid or missing image size in request headers.") from None
        return image, size

    def _write(
        self, request: Request, name: str, expected: int | None, head: Head | None = None
    ) -> tuple[ImageContent | None, HttpError | None]:
        """Stream the request body into Swift as ``name``; the content, or why it failed."""
        assert request.stream is not None
        account = self.cloud.service_account(self.region)
        length = request.stream.length
        chunks = request.stream if head is None else head.watch(request.stream)
        try:
            content = store_content(account, name, chunks, length, self.cloud.options)
        except ClientDisconnected as error:
            return None, HttpError(400, f"Error reading the image data: {error}")
        except (SwiftFailure, OSError, ValueError) as error:
            return None, HttpError(503, f"Error storing the image data: {error}")
        if expected is not None and content.size != expected:
            with contextlib.suppress(SwiftFailure, OSError):
                delete_content(account, content)
            return None, HttpError(
                400, f"Size mismatch: expected {expected} bytes, got {content.size} bytes"
            )
        return content, None

    def upload(self, request: Request) -> Response:
        self._require_glance(allow="GET")
        caller = self.cloud.caller(request)
        image, expected = self._upload_checks(request, caller)
        if image.owner != caller.tenant:
            raise HttpError(403, f"Not allowed to upload image data for image {image.id}")
        saving = self._transition(image.id, "saving", formats=True)
        head = Head()
        content, problem = self._write(request, image.id, expected, head)
        if problem is not None or content is None:
            self._restore(image.id)
            raise problem or HttpError(500, "upload failed")
        try:
            virtual_size = check_format(
                saving.disk_format, saving.container_format, head.data, content.size
            )
        except FormatMismatch as mismatch:
            with contextlib.suppress(SwiftFailure, OSError):
                delete_content(self.cloud.service_account(self.region), content)
            self._restore(image.id)
            raise HttpError(415, str(mismatch)) from None
        gone: list[bool] = []

        def change(doc: dict[str, Any]) -> None:
            if doc["status"] != "saving":
                gone.append(True)
                return
            doc.update(status="active", content=asdict(content), updated_at=time.time())
            doc["virtual_size"] = virtual_size

        if self.store.update(ImageRecord.KIND, image.id, change) is None or gone:
            with contextlib.suppress(SwiftFailure, OSError):
                delete_content(self.cloud.service_account(self.region), content)
            raise HttpError(
                410,
                f"Image {image.id} could not be found after upload. The image may have been "
                "deleted during the upload, cleaning up the chunks uploaded.",
            )
        return Response.empty(204)

    def stage(self, request: Request) -> Response:
        self._require_glance()
        if "glance-direct" not in self._methods:
            raise HttpError(404, "'glance-direct' method is not available at this site.")
        caller = self.cloud.caller(request)
        image, expected = self._upload_checks(request, caller)
        if image.owner != caller.tenant:
            raise HttpError(403, FORBIDDEN)
        if image.staged is not None and image.status == "queued":
            raise HttpError(409, f"The image {image.id} has data on staging")
        self._transition(image.id, "uploading", formats=False)
        content, problem = self._write(request, f"staging-{image.id}", expected)
        if problem is not None or content is None:
            self._restore(image.id)
            raise problem or HttpError(500, "staging failed")

        def change(doc: dict[str, Any]) -> None:
            doc.update(staged=asdict(content), updated_at=time.time())

        if self.store.update(ImageRecord.KIND, image.id, change) is None:
            with contextlib.suppress(SwiftFailure, OSError):
                delete_content(self.cloud.service_account(self.region), content)
            raise HttpError(404, f"No image found with ID {image.id}")
        return Response.empty(204)

    # -- import --------------------------------------------------------------------------

    def import_image(self, request: Request) -> Response:
        self._require_glance()
        caller = self.cloud.caller(request)
        body = request.json()
        if body is None:
            raise HttpError(400, "Body expected in request.")
        method = _import_method(body, self._methods)
        name = method["name"]
        image = self._image(caller, request.params["image_id"])
        _check_importable(image, name, method)
        if image.owner != caller.tenant:
            raise HttpError(403, FORBIDDEN)
        stores = body.get("stores")
        if stores is not None and (not isinstance(stores, list) or set(stores) - {STORE_ID}):
            raise HttpError(409, f"Unknown scheme '{stores}' found in URI")
        if name == "web-download" and not uri_passes_filtering(self.cloud, method.get("uri")):
            raise HttpError(
                400, f"URI for web-download does not pass filtering: {method.get('uri')}"
            )
        task = ImageTaskRecord(
            str(uuid.uuid4()),
            self.region,
            image_id=image.id,
            owner=caller.tenant,
            user_id=caller.user_id,
            request_id=request.request_id,
            input={"image_id": image.id, "import_req": body, "backend": [STORE_ID]},
            token=request.headers.get("X-Auth-Token") or "",
            fault=self.cloud.take_task_fault(self.region, "api_image_import"),
        )
        locked: list[str] = []

        def lock(doc: dict[str, Any]) -> None:
            properties = doc.setdefault("properties", {})
            if LOCK_KEY in properties:
                locked.append(properties[LOCK_KEY])
                return
            properties[LOCK_KEY] = task.id
            properties[IMPORTING_KEY] = STORE_ID
            properties[FAILED_KEY] = ""
            doc.update(status="importing", updated_at=time.time())

        with self.store.lock:
            if self.store.update(ImageRecord.KIND, image.id, lock) is None:
                raise HttpError(404, f"No image found with ID {image.id}")
            if locked:
                raise HttpError(409, "Image has active task")
            task.save(self.store)
        self.store.bump(self.region, "image_imports_created")
        self.imports.start(task.id)
        return Response(202, b"", {"Content-Type": "text/html; charset=UTF-8"})

    def image_tasks(self, request: Request) -> Response:
        self._require_glance()
        caller = self.cloud.caller(request)
        image = ImageRecord.load(self.store, request.params["image_id"])
        if image is None or image.region != self.region or not image.visible_to(caller.tenant):
            raise HttpError(404, NOT_FOUND)
        now = time.time()
        tasks = [
            task
            for task in ImageTaskRecord.load_all(self.store, self.region)
            if task.image_id == image.id
            and (caller.admin or task.owner == caller.tenant)
            and (task.expires_at is None or task.expires_at >= now)
        ]
        tasks.sort(key=lambda t: (t.created_at, t.id))
        return Response.json(200, {"tasks": [task_view(task) for task in tasks]})


def _schema_error(reason: str) -> HttpError:
    return HttpError(400, f"Provided object does not match schema 'image': {reason}")


def _validated_create(body: Any, caller: Caller) -> dict[str, Any]:
    """The fields of a ``POST /v2/images`` body, checked as Glance checks them."""
    if not isinstance(body, dict):
        raise _schema_error(f"{body!r} is not of type 'object'")
    for key in DISALLOWED:
        if key in body:
            raise HttpError(403, f"Attribute '{key}' is read-only.")
    for key, value in body.items():
        kinds = BASE_FIELDS.get(key)
        if kinds is None:
            if key in READ_ONLY:
                continue  # refused below, as Glance's image factory does (403)
            if not isinstance(value, str):
                raise _schema_error(f"{value!r} is not of type 'string'")
            if len(key) > 255:
                raise HttpError(400, "Custom property should not be greater than 255 characters.")
            if key in RESERVED or key.startswith(RESERVED_NAMESPACE):
                raise HttpError(403, f"Attribute '{key}' is reserved.")
            continue
        allowed = tuple(t for kind in kinds for t in PYTHON_TYPES[kind])
        if not isinstance(value, allowed) or (isinstance(value, bool) and "boolean" not in kinds):
            raise _schema_error(
                f"{value!r} is not of type {', '.join(repr(kind) for kind in kinds)}"
            )
        if key in ENUMS and value not in ENUMS[key]:
            raise _schema_error(f"{value!r} is not one of {ENUMS[key]!r}")
        if key in ("name", "owner") and isinstance(value, str) and len(value) > 255:
            raise _schema_error(f"{value!r} is too long")
        if key == "id" and not re.match(UUID_PATTERN, str(value)):
            raise _schema_error(f"{value!r} does not match {UUID_PATTERN!r}")
        if key == "tags" and isinstance(value, list):
            for tag in value:
                if not isinstance(tag, str):
                    raise _schema_error(f"{tag!r} is not of type 'string'")
                if len(tag) > 255:
                    raise _schema_error(f"{tag!r} is too long")
    for key in READ_ONLY:
        if key in body:
            raise HttpError(403, f"Attribute '{key}' is read-only.")
    owner = body.get("owner")
    if owner is not None and owner != caller.tenant:
        raise HttpError(403, f"You are not permitted to create images owned by '{owner}'.")
    fields = {key: value for key, value in body.items() if key in BASE_FIELDS}
    fields["properties"] = {k: v for k, v in body.items() if k not in BASE_FIELDS}
    return fields


def _import_method(body: Any, enabled: list[str]) -> dict[str, Any]:
    """The ``method`` of an import request, checked as Glance's deserializer does."""
    if not isinstance(body, dict) or "method" not in body:
        raise HttpError(400, "Import request requires a 'method' field.")
    method = body["method"]
    if not isinstance(method, dict) or "name" not in method:
        raise HttpError(400, "Import request requires a 'name' field.")
    if method["name"] not in enabled:
        raise HttpError(400, f"Unknown import method name '{method['name']}'.")
    if not isinstance(body.get("all_stores_must_succeed", True), bool):
        raise HttpError(400, "'all_stores_must_succeed' must be boolean value only")
    if not isinstance(body.get("all_stores", False), bool):
        raise HttpError(400, "'all_stores' must be boolean value only")
    return method


def _check_importable(image: ImageRecord, name: str, method: dict[str, Any]) -> None:
    """Glance's checks of the image before an import (``ImagesController.import_image``)."""
    if image.status == "active":
        raise HttpError(409, "Image with status active cannot be target for import")
    if image.status != "queued" and name in ("web-download", "glance-download"):
        raise HttpError(409, f"Image needs to be in 'queued' state to use '{name}' method")
    if image.status != "uploading" and name == "glance-direct":
        raise HttpError(409, "Image needs to be staged before 'glance-direct' method can be used")
    if not image.container_format:
        raise HttpError(409, "'container_format' needs to be set before import")
    if not image.disk_format:
        raise HttpError(409, "'disk_format' needs to be set before import")
    if name == "glance-download":
        if "glance_region" not in method:
            raise HttpError(
                400, "'glance_region' needs to be set for glance-download import method"
            )
        if "glance_image_id" not in method:
            raise HttpError(
                400, "'glance_image_id' needs to be set for glance-download import method"
            )
        try:
            uuid.UUID(str(method["glance_image_id"]))
        except ValueError:
            raise HttpError(
                400, f"Remote image id does not look like a UUID: {method['glance_image_id']}"
            ) from None
        method.setdefault("glance_service_interface", "public")
