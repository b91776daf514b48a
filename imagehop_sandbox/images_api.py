"""Cloud Images v2 of one region: images (list, get, patch, delete) and tasks (export, import).

Served at ``http://127.0.0.1:<port>/v2`` (the catalog's ``publicURL``, no tenant in the path);
the tenant-scoped form ``/v2/<tenant>/...`` that some scripts use is accepted too. Other
paths are Glance's version discovery (:mod:`imagehop_sandbox.discovery`). Errors are
rendered the way Glance's web framework (webob) does: HTML by default, JSON when the client
asks for ``application/json``, plain text for ``text/plain``.
"""

from __future__ import annotations

import contextlib
import html
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from imagehop_sandbox.cloud import Caller, Cloud
from imagehop_sandbox.content import delete_content
from imagehop_sandbox.discovery import negotiate_images_version
from imagehop_sandbox.glance_api import GlanceApi, glance_image_view
from imagehop_sandbox.glance_import import GlanceImports
from imagehop_sandbox.image_data import ImageDataApi
from imagehop_sandbox.jobs import Jobs
from imagehop_sandbox.listing import page_of_images
from imagehop_sandbox.models import ImageRecord, TaskRecord, iso
from imagehop_sandbox.patch import Change, apply_changes, parse_patch
from imagehop_sandbox.schemas import (
    GLANCE_SCHEMAS,
    SCHEMAS,
    TASK_STATUSES,
    TASK_TYPES,
    without_nulls,
)
from imagehop_sandbox.swift_io import SwiftFailure
from imagehop_sandbox.web import REASONS, App, HttpError, Request, Response

EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed or "
    "otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document you "
    "requested. Either you supplied the wrong credentials (e.g., bad password), or your "
    "browser does not understand how to supply the credentials required.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    413: "The request is larger than the server is willing or able to process.",
    415: "The request media type is not supported by this server.",
    500: "The server has either erred or is incapable of performing the requested operation.",
    503: "The server is currently unavailable. Please try again at a later time.",
}
COLLECTIONS = ("images", "tasks", "schemas", "info")
FORBIDDEN = "You are not authorized to complete this action."


def render_glance_error(request: Request, error: HttpError) -> Response:
    """A webob-style error page in the format the client's ``Accept`` header prefers."""
    status = f"{error.status} {REASONS.get(error.status, 'Error')}"
    explanation = EXPLANATIONS.get(error.status, "")
    accept = (request.headers.get("Accept") or "*/*").lower()
    if "application/json" in accept and "text/html" not in accept:
        doc = {
            "message": f"{explanation}\n\n{error.message}  ",
            "code": status,
            "title": REASONS.get(error.status, "Error"),
        }
        return Response.json(error.status, doc)
    if "text/plain" in accept and "text/html" not in accept:
        text = f"{status}\n\n{explanation}\n\n{error.message}  "
        return Response(error.status, text.encode(), {"Content-Type": "text/plain"})
    detail = html.escape(error.message, quote=False)
    page = (
        f"<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n"
        f"  {explanation}<br /><br />\n{detail}\n\n\n </body>\n</html>"
    )
    return Response(error.status, page.encode(), {"Content-Type": "text/html; charset=UTF-8"})


def image_view(image: ImageRecord, glance: bool = False) -> dict[str, Any]:
    """The image as ``GET /v2/images/{id}`` shows it (no ``size`` or ``checksum`` before it
    has bytes). On Cloud Images ``checksum`` is of a packaging; where the region is Glance
    (``glance``) the view is today's Glance's (:func:`.glance_api.glance_image_view`):
    ``checksum`` is the MD5 of the bytes ``/file`` serves, unset attributes are ``null``."""
    if glance:
        return glance_image_view(image)
    stored = image.stored
    checksum = None if stored is None else (stored.md5 if glance else stored.checksum)
    view: dict[str, Any] = dict(image.properties)
    view.update(
        id=image.id,
        name=image.name,
        status=image.status,
        visibility=image.visibility,
        protected=image.protected,
        tags=list(image.tags),
        min_disk=image.min_disk,
        min_ram=image.min_ram,
        disk_format=image.disk_format,
        container_format=image.container_format,
        owner=image.owner,
        size=None if stored is None else stored.size,
        checksum=checksum,
        created_at=iso(image.created_at),
        updated_at=iso(image.updated_at),
        self=f"/v2/images/{image.id}",
        file=f"/v2/images/{image.id}/file",
        schema="/v2/schemas/image",
    )
    return without_nulls(view)


def task_view(task: TaskRecord, summary: bool = False) -> dict[str, Any]:
    """The task as ``GET /v2/tasks/{id}`` shows it (``summary``: as task lists do); no
    ``result`` before success, no ``expires_at`` before the end."""
    view: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
    if task.expires_at is not None:
        view["expires_at"] = iso(task.expires_at)
    if not summary:
        view.update(input=task.input, result=task.result, message=task.message)
    return without_nulls(view)


class ImagesApi:
    def __init__(self, cloud: Cloud, jobs: Jobs, region: str) -> None:
        self.cloud = cloud
        self.store = cloud.store
        self.jobs = jobs
        self.region = region
        self.app = App(f"images-{region.lower()}", render_glance_error, "X-Openstack-Request-Id")
        endpoint = urlsplit(cloud.info.region(region).images_url)
        self.base_url = f"{endpoint.scheme}://{endpoint.netloc}"
        self.app.before.append(self._negotiate)
        self.app.before.append(cloud.http_fault_hook("images", region))
        route = self.app.route
        GlanceApi(cloud, self.app, region, GlanceImports(cloud))
        route("GET", "/v2/images")(self.list_images)
        route("GET", "/v2/images/{image_id}")(self.get_image)
        route("PATCH", "/v2/images/{image_id}")(self.patch_image)
        route("DELETE", "/v2/images/{image_id}")(self.delete_image)
        route("POST", "/v2/tasks")(self.create_task)
        route("GET", "/v2/tasks")(self.list_tasks)
        route("GET", "/v2/tasks/{task_id}")(self.get_task)
        route("DELETE", "/v2/tasks/{task_id}")(self.delete_task)
        route("GET", "/v2/schemas/{name}")(self.schema)
        ImageDataApi(cloud, self.app, region)

    def _negotiate(self, request: Request) -> Response | None:
        """Version discovery as Glance answers it, then ``/v2/<tenant>/images`` as
        ``/v2/images`` (the tenant-scoped form some scripts use)."""
        early = negotiate_images_version(request, self.base_url, self._glance)
        if early is None:
            parts = request.path.split("/")
            if len(parts) > 3 and parts[2] not in COLLECTIONS:
                request.path = "/".join(["", "v2", *parts[3:]])
        return early

    # -- images --------------------------------------------------------------------------

    @property
    def _glance(self) -> bool:
        """Whether this region's Images API is upstream Glance (option ``glance_regions``)."""
        return self.cloud.options.is_glance_region(self.region)

    def _visible_image(self, caller: Caller, image_id: str) -> ImageRecord:
        image = ImageRecord.load(self.store, image_id)
        if image is None or image.region != self.region or not image.visible_to(caller.tenant):
            raise HttpError(404, f"No image found with ID {image_id}")
        return image

    def list_images(self, request: Request) -> Response:
        caller = self.cloud.caller(request)
        images = ImageRecord.load_all(self.store, self.region)
        page = page_of_images(images, caller.tenant, request.query)
        doc: dict[str, Any] = {
            "images": [image_view(image, self._glance) for image in page.images],
            "first": page.first,
            "schema": "/v2/schemas/images",
        }
        if page.next:
            doc["next"] = page.next
        return Response.json(200, doc)

    def get_image(self, request: Request) -> Response:
        caller = self.cloud.caller(request)
        return Response.json(
            200, image_view(self._visible_image(caller, request.params["image_id"]), self._glance)
        )

    def patch_image(self, request: Request) -> Response:
        caller = self.cloud.caller(request)
        changes = parse_patch(request.content_type, request.json())
        if self._glance:
            _check_glance_patch(changes)
        image_id = request.params["image_id"]
        image = ImageRecord.load(self.store, image_id)
        if image is None or image.region != self.region or not image.visible_to(caller.tenant):
            raise HttpError(404, f"Failed to find image {image_id} to update")
        if image.owner != caller.tenant or not caller.admin:
            raise HttpError(403, FORBIDDEN)
        failure: list[HttpError] = []

        def change(doc: dict[str, Any]) -> None:
            current = ImageRecord.from_doc(doc)
            try:
                apply_changes(current, changes)
            except HttpError as error:
                failure.append(error)
                return
            if changes:
                current.updated_at = time.time()
            doc.update(current.to_doc())

        updated = self.store.update(ImageRecord.KIND, image_id, change)
        if failure:
            raise failure[0]
        if updated is None:
            raise HttpError(404, f"Failed to find image {image_id} to update")
        return Response.json(200, image_view(ImageRecord.from_doc(updated), self._glance))

    def delete_image(self, request: Request) -> Response:
        caller = self.cloud.caller(request)
        image_id = request.params["image_id"]
        image = ImageRecord.load(self.store, image_id)
        if image is None or image.region != self.region or not image.visible_to(caller.tenant):
            raise HttpError(404, f"Failed to find image {image_id} to delete")
        if image.owner != caller.tenant:
            raise HttpError(403, "You are not permitted to delete this image.")
        if image.protected:
            raise HttpError(403, f"Image {image_id} is protected and cannot be deleted.")
        self.store.delete(ImageRecord.KIND, image_id)
        for stored in (image.stored, image.staged_content):
            if stored is not None:
                # The record is gone either way; leftover bytes are invisible to tenants.
                with contextlib.suppress(SwiftFailure):
                    delete_content(self.cloud.service_account(self.region), stored)
        return Response.empty(204)

    # -- tasks ---------------------------------------------------------------------------

    def create_task(self, request: Request) -> Response:
        caller = self.cloud.caller(request)
        if not caller.admin:
            raise HttpError(403, FORBIDDEN)
        if request.content_type != "application/json":
            raise HttpError(415, f"Unsupported Content-Type: {request.content_type or 'none'}")
        kind, task_input = _task_request(request.json())
        task = TaskRecord(
            str(uuid.uuid4()),
            self.region,
            type=kind,
            owner=caller.tenant,
            user=caller.user,
            input=task_input,
            fault=self.cloud.take_task_fault(self.region, kind),
        )
        with self.store.lock:  # no task can finish between saving this one and counting
            task.save(self.store)
            self.store.raise_peak(self.region, f"{kind}_tasks_running", self._running(kind))
        self.store.bump(self.region, f"{task.type}_tasks_created")
        self.jobs.start_task(task.id)
        return Response.json(201, task_view(task), {"Location": f"/v2/tasks/{task.id}"})

    def _running(self, kind: str) -> int:
        """Tasks of ``kind`` in this region not finished yet, whoever owns them."""
        tasks = TaskRecord.load_all(self.store, self.region)
        return sum(1 for task in tasks if task.type == kind and not task.finished)

    def _live_task(self, caller: Caller, task_id: str) -> TaskRecord:
        task = TaskRecord.load(self.store, task_id)
        if task is not None and task.expires_at is not None and task.expires_at <= time.time():
            self.store.delete(TaskRecord.KIND, task_id)  # past its time to live
            task = None
        if task is None or task.region != self.region or task.owner != caller.tenant:
            raise HttpError(404, f"Could not find task {task_id}")
        return task

    def get_task(self, request: Request) -> Response:
        caller = self.cloud.caller(request)
        task = self._live_task(caller, request.params["task_id"])
        self.store.record_poll(task.id, time.time())
        return Response.json(200, task_view(task))

    def list_tasks(self, request: Request) -> Response:
        caller = self.cloud.caller(request)
        params = dict(request.query)
        status, kind = params.get("status"), params.get("type")
        if status and status not in TASK_STATUSES:
            raise HttpError(400, f"Invalid status value: {status}")
        if kind and kind not in TASK_TYPES:
            raise HttpError(400, f"Invalid type value: {kind}")
        now = time.time()
        tasks = [
            t
            for t in TaskRecord.load_all(self.store, self.region)
            if t.owner == caller.tenant
            and (t.expires_at is None or t.expires_at > now)
            and (not status or t.status == status)
            and (not kind or t.type == kind)
        ]
        tasks.sort(key=lambda t: (t.created_at, t.id), reverse=params.get("sort_dir") != "asc")
        doc = {
            "tasks": [task_view(t, summary=True) for t in tasks],
            "first": "/v2/tasks",
            "schema": "/v2/schemas/tasks",
        }
        return Response.json(200, doc)

    def delete_task(self, request: Request) -> Response:
        raise HttpError(
            405,
            "This operation is currently not permitted on Glance Tasks. They are auto deleted "
            "after reaching the time based on their expires_at property.",
            headers={"Allow": "GET"},
        )

    def schema(self, request: Request) -> Response:
        self.cloud.caller(request)
        name = request.params["name"]
        schemas = GLANCE_SCHEMAS if self._glance else SCHEMAS
        if name not in schemas:
            raise HttpError(404, f"No schema named {name}")
        return Response.json(200, schemas[name])


def _check_glance_patch(changes: list[Change]) -> None:
    """Today's Glance also keeps its hashes read-only and its ``os_glance`` namespace reserved
    (imports record their state there)."""
    for change in changes:
        if change.name in ("os_hash_algo", "os_hash_value"):
            raise HttpError(403, f"Attribute '{change.name}' is read-only.")
        if change.name.startswith("os_glance"):
            raise HttpError(403, f"Attribute '{change.name}' is reserved.")


def _task_request(body: Any) -> tuple[str, dict[str, Any]]:
    """Type and input of a ``POST /v2/tasks`` body, validated like Glance's task schema."""
    if not isinstance(body, dict):
        raise HttpError(400, "Body expected in request")
    for key in ("type", "input"):
        if key not in body:
            raise HttpError(400, f"Task '{key}' is required")
    if body["type"] not in TASK_TYPES:
        raise HttpError(
            400,
            f"Provided object does not match schema 'task': {body['type']!r} is not one "
            f"of {list(TASK_TYPES)!r}",
        )
    if not isinstance(body["input"], dict):
        raise HttpError(
            400,
            f"Provided object does not match schema 'task': {body['input']!r} is not of "
            "type 'object'",
        )
    return str(body["type"]), body["input"]
