"""Sandbox-only admin API under ``/_sandbox`` on the Identity port (no such thing on a real cloud).

For tests and demos (:class:`imagehop_sandbox.handle.Admin` wraps it). No authentication: it
listens on 127.0.0.1 only, like the rest of the local cloud.

=======  ===========================  ===========================================================
GET      /_sandbox/info               pid and start time of the API service
GET      /_sandbox/options            current options; PATCH changes some at run time, DELETE
                                      resets them to what ``up`` was given
POST     /_sandbox/faults/tasks       ``{region, type, message?, extra_seconds?, count?}``: the
                                      next task(s) fail with ``message`` and/or run longer
                                      (type ``api_image_import``: Glance-mode imports)
POST     /_sandbox/faults/http        ``{service: images|compute, path (regex), status, region?,
                                      method?, count?, headers?, body?}``: canned answers
GET      /_sandbox/faults             pending faults; DELETE clears them
GET      /_sandbox/counts             tasks, images and servers created, per region
GET      /_sandbox/peaks              most export / import tasks unfinished at once, per region;
                                      DELETE starts counting afresh
GET      /_sandbox/seed               ids of the seed images and the demo server
GET      /_sandbox/tasks/{id}/polls   epoch times of every GET of the task
GET      /_sandbox/images/{id}        the stored record, with ``content.md5`` of the bytes
POST     /_sandbox/images             ``{region, owner, name?, properties?, visibility?,
                                      disk_bytes?, min_disk?}``: an active image, made now
=======  ===========================  ===========================================================
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict
from typing import Any

from imagehop_sandbox.cloud import Cloud
from imagehop_sandbox.content import store_content
from imagehop_sandbox.models import ImageRecord, TaskRecord
from imagehop_sandbox.seed import SEED_KEY
from imagehop_sandbox.vhd import image_chunks, image_size
from imagehop_sandbox.web import App, HttpError, Request, Response

TASK_FAULT_FIELDS = {"region", "type", "message", "extra_seconds", "count"}
HTTP_FAULT_FIELDS = {"service", "region", "method", "path", "status", "count", "headers", "body"}


def _object(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise HttpError(400, "expected a JSON object")
    return body


class AdminApi:
    def __init__(self, cloud: Cloud, app: App) -> None:
        self.cloud = cloud
        self.store = cloud.store
        route = app.route
        route("GET", "/_sandbox/info")(self.info)
        route("GET", "/_sandbox/options")(self.get_options)
        route("PATCH", "/_sandbox/options")(self.patch_options)
        route("DELETE", "/_sandbox/options")(self.reset_options)
        route("GET", "/_sandbox/faults")(self.get_faults)
        route("DELETE", "/_sandbox/faults")(self.clear_faults)
        route("POST", "/_sandbox/faults/tasks")(self.add_task_fault)
        route("POST", "/_sandbox/faults/http")(self.add_http_fault)
        route("GET", "/_sandbox/counts")(self.counts)
        route("GET", "/_sandbox/peaks")(self.peaks)
        route("DELETE", "/_sandbox/peaks")(self.clear_peaks)
        route("GET", "/_sandbox/seed")(self.seed_ids)
        route("GET", "/_sandbox/tasks/{task_id}/polls")(self.task_polls)
        route("GET", "/_sandbox/images/{image_id}")(self.get_image)
        route("POST", "/_sandbox/images")(self.create_image)

    def info(self, request: Request) -> Response:
        doc = {
            "pid": os.getpid(),
            "started_at": self.cloud.started_at,
            "regions": sorted(self.cloud.info.regions),
        }
        return Response.json(200, doc)

    def get_options(self, request: Request) -> Response:
        return Response.json(200, self.cloud.options.to_json())

    def patch_options(self, request: Request) -> Response:
        try:
            options = self.cloud.set_options(_object(request))
        except (ValueError, TypeError) as error:
            raise HttpError(400, str(error)) from None
        return Response.json(200, options.to_json())

    def reset_options(self, request: Request) -> Response:
        return Response.json(200, self.cloud.reset_options().to_json())

    def get_faults(self, request: Request) -> Response:
        return Response.json(200, self.cloud.faults())

    def clear_faults(self, request: Request) -> Response:
        self.cloud.clear_faults()
        return Response.empty(204)

    def add_task_fault(self, request: Request) -> Response:
        fault = _object(request)
        _only(fault, TASK_FAULT_FIELDS)
        fault["region"] = self._region(fault.get("region"))
        if fault.get("type") not in ("export", "import", "api_image_import"):
            raise HttpError(
                400, "type must be 'export', 'import' or 'api_image_import' (Glance imports)"
            )
        if not fault.get("message") and not fault.get("extra_seconds"):
            raise HttpError(400, "give a failure 'message', 'extra_seconds' of delay, or both")
        fault["count"] = int(fault.get("count", 1))
        self.cloud.add_task_fault(fault)
        return Response.json(201, fault)

    def add_http_fault(self, request: Request) -> Response:
        fault = _object(request)
        _only(fault, HTTP_FAULT_FIELDS)
        if fault.get("service") not in ("images", "compute"):
            raise HttpError(400, "service must be 'images' or 'compute'")
        if "region" in fault:
            fault["region"] = self._region(fault["region"])
        if not isinstance(fault.get("path"), str) or not isinstance(fault.get("status"), int):
            raise HttpError(400, "give 'path' (a regular expression) and 'status' (an integer)")
        fault["count"] = int(fault.get("count", 1))
        try:
            self.cloud.add_http_fault(fault)
        except Exception as error:
            raise HttpError(400, f"bad path pattern: {error}") from None
        return Response.json(201, fault)

    def counts(self, request: Request) -> Response:
        counters = self.store.counters()
        doc = {region: counters.get(region, {}) for region in self.cloud.info.regions}
        return Response.json(200, doc)

    def peaks(self, request: Request) -> Response:
        peaks = self.store.peaks()
        doc = {region: peaks.get(region, {}) for region in self.cloud.info.regions}
        return Response.json(200, doc)

    def clear_peaks(self, request: Request) -> Response:
        self.store.clear_peaks()
        return Response.empty(204)

    def seed_ids(self, request: Request) -> Response:
        return Response.json(200, self.store.get_meta(SEED_KEY, {}))

    def task_polls(self, request: Request) -> Response:
        task_id = request.params["task_id"]
        task = TaskRecord.load(self.store, task_id)
        polls = self.store.polls(task_id)
        if task is None and not polls:
            raise HttpError(404, f"no task {task_id}")
        return Response.json(200, {"task_id": task_id, "polls": polls})

    def get_image(self, request: Request) -> Response:
        image = ImageRecord.load(self.store, request.params["image_id"])
        if image is None:
            raise HttpError(404, f"no image {request.params['image_id']}")
        return Response.json(200, image.to_doc())

    def create_image(self, request: Request) -> Response:
        """A ready ``active`` image with real bytes (a valid dynamic VHD), made synchronously."""
        spec = _object(request)
        region = self._region(spec.get("region"))
        owner = spec.get("owner")
        if not isinstance(owner, str) or not owner:
            raise HttpError(400, "give the owner's tenant id as 'owner'")
        disk_bytes = int(spec.get("disk_bytes", 64 * 1024))
        visibility = str(spec.get("visibility", "private"))
        if visibility not in ("public", "private"):
            raise HttpError(400, "visibility must be 'public' or 'private'")
        image_id = str(uuid.uuid4())
        now = time.time()
        content = store_content(
            self.cloud.service_account(region),
            image_id,
            image_chunks(f"admin:{image_id}", disk_bytes, image_id, now),
            image_size(disk_bytes),
            self.cloud.options,
        )
        image = ImageRecord(
            image_id,
            region,
            name=str(spec.get("name", f"image-{image_id[:8]}")),
            owner=owner,
            status="active",
            visibility=visibility,
            min_disk=int(spec.get("min_disk", 0)),
            properties={str(k): str(v) for k, v in (spec.get("properties") or {}).items()},
            created_at=now,
            updated_at=now,
            content=asdict(content),
            origin={"kind": "admin"},
        )
        image.save(self.store)
        return Response.json(201, image.to_doc())

    def _region(self, value: Any) -> str:
        region = str(value or "").upper()
        if region not in self.cloud.info.regions:
            raise HttpError(400, f"region must be one of {sorted(self.cloud.info.regions)}")
        return region


def _only(doc: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)}")
