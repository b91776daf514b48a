"""Background work of the local cloud: export and import tasks, and server snapshots.

Each job reads its record, does what its status says is left, and saves progress, so a job
interrupted by a restart of the API service is simply started again (``resume_all``): an
export rewrites the same segment names, an import reuses the image id it recorded.
Durations come from the options: a task stays ``pending`` for ``task_pending_seconds`` and
``processing`` for at least ``task_processing_seconds`` (longer while bytes move).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import requests

from imagehop_sandbox.cloud import Cloud
from imagehop_sandbox.content import open_content, store_content
from imagehop_sandbox.glance_import import GlanceImports
from imagehop_sandbox.models import MAX_NAME, ImageRecord, TaskRecord
from imagehop_sandbox.swift_io import SwiftAccount, SwiftFailure, stream_body, write_parts
from imagehop_sandbox.vhd import (
    DISK_DIFFERENCING,
    DISK_DYNAMIC,
    DISK_FIXED,
    FOOTER_SIZE,
    TABLE_OFFSET,
    check_dynamic_head,
    export_chunks,
    image_chunks,
    image_size,
    parse_footer,
)

log = logging.getLogger("imagehop_sandbox.jobs")

GB = 1000**3
LICENCE_PROPERTY = "com.rackspace__1__options"
NOT_FOUND_FOR_IMPORT = "Error: Image not found for import. Possible invalid location"
IMPORT_CODES = {
    "111": "The VHD failed validation checks.",
    "396": "The file is not a valid VHD: it has no valid VHD footer.",
    "523": "Only fixed or dynamic VHDs can be imported.",
    "614": "The VHD's unique id is all zeros.",
    "721": "The VHD has a parent disk; only stand-alone VHDs can be imported.",
}


@dataclass(frozen=True)
class ImportSource:
    account: SwiftAccount
    container: str
    name: str
    size: int
    virtual_size: int


class TaskFailure(Exception):
    """Ends a task in ``failure`` with this message."""


def import_failure(code: str, explanation: str | None = None) -> TaskFailure:
    reason = explanation or IMPORT_CODES[code]
    return TaskFailure(f"Image cannot be imported. Error code: '{code}'. {reason}")


def wait_until(deadline: float) -> None:
    delay = deadline - time.time()
    if delay > 0:
        time.sleep(delay)


class Jobs:
    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.store = cloud.store

    def resume_all(self) -> None:
        """Restart the work that was in flight when the service last stopped."""
        for task in TaskRecord.load_all(self.store):
            if not task.finished:
                log.info("resuming %s task %s (%s)", task.type, task.id, task.status)
                self.start_task(task.id)
        for image in ImageRecord.load_all(self.store):
            if image.status in ("queued", "saving") and image.origin.get("kind") == "disk":
                log.info("resuming snapshot %s", image.id)
                self.start_snapshot(image.id)
        GlanceImports(self.cloud).resume_all()

    # -- tasks ---------------------------------------------------------------------------

    def start_task(self, task_id: str) -> None:
        self.cloud.run_in_background(f"task-{task_id}", lambda: self.run_task(task_id))

    def run_task(self, task_id: str) -> None:
        task = TaskRecord.load(self.store, task_id)
        if task is None or task.finished:
            return
        options = self.cloud.options
        if task.status == "pending":
            wait_until(task.created_at + options.task_pending_seconds)
            task = self._update_task(task_id, status="processing", processing_at=time.time())
        started = task.processing_at or time.time()
        fault = task.fault or {}
        status, message, result = "success", "None", None
        try:
            if fault.get("message"):
                raise TaskFailure(str(fault["message"]))
            result = self.export(task) if task.type == "export" else self.import_(task)
        except TaskFailure as failure:
            status, message = "failure", str(failure)
        except (SwiftFailure, requests.RequestException, OSError) as error:
            log.exception("task %s broke", task_id)
            status, message = "failure", f"Internal error while processing the task: {error}"
        extra = float(fault.get("extra_seconds") or 0)
        wait_until(started + options.task_processing_seconds + extra)
        now = time.time()
        self._update_task(
            task_id,
            status=status,
            message=message,
            result=result,
            updated_at=now,
            expires_at=now + self.cloud.options.task_ttl_seconds,
        )

    def _update_task(self, task_id: str, **changes: Any) -> TaskRecord:
        def change(doc: dict[str, Any]) -> None:
            doc.update({"updated_at": time.time(), **changes})

        doc = self.store.update(TaskRecord.KIND, task_id, change)
        if doc is None:
            raise TaskFailure("task vanished")
        return TaskRecord.from_doc(doc)

    def _owner_account(self, task: TaskRecord) -> SwiftAccount:
        return self.cloud.user_account(task.region, task.owner)

    # -- export --------------------------------------------------------------------------

    def export(self, task: TaskRecord) -> dict[str, Any]:
        image_id = _required(task.input, "image_uuid")
        container = _required(task.input, "receiving_swift_container")
        image = self._exportable_image(task, image_id)
        _check_container_name(container)
        account = self._owner_account(task)
        manifest = f"{image.id}.vhd"
        if not task.work.get("checked"):
            if account.head(container) is None:
                raise TaskFailure(
                    f"Swift container '{container}' does not exist; create it before exporting."
                )
            if account.head(container, manifest) is not None:
                raise TaskFailure(
                    f"Swift already has an object with id '{manifest}' in container '{container}'"
                )
            self._update_task(task.id, work={**task.work, "checked": True})
        write_parts(
            account,
            container,
            lambda n: f"{manifest}-{n:05d}",
            self._export_chunks(task, image),
            self.cloud.options.effective_segment_bytes,
        )
        prefix = f"{quote(container, safe='')}/{quote(manifest)}-"
        account.put(container, manifest, b"", {"X-Object-Manifest": prefix})
        return {"export_location": f"{container}/{manifest}"}

    def _export_chunks(self, task: TaskRecord, image: ImageRecord) -> Iterator[bytes]:
        """The image's bytes as the dynamic VHD an export writes (streamed from Swift)."""
        stored = image.stored
        assert stored is not None
        service = self.cloud.service_account(task.region)
        head = tail = b""
        if stored.size > 0:
            head = _read_range(service, stored.container, stored.name, f"bytes=0-{FOOTER_SIZE - 1}")
            tail = _read_range(service, stored.container, stored.name, f"bytes=-{FOOTER_SIZE}")
        return export_chunks(
            open_content(service, stored), stored.size, head, tail, image.id, image.created_at
        )

    def _exportable_image(self, task: TaskRecord, image_id: str) -> ImageRecord:
        image = ImageRecord.load(self.store, image_id)
        if image is None or image.region != task.region or not image.visible_to(task.owner):
            raise TaskFailure(f"Requested image for export was not found: {image_id}")
        if image.owner != task.owner:
            raise TaskFailure(
                f"Image {image_id} cannot be exported: only the owner of an image can export "
                "it (public and shared images cannot be exported)."
            )
        options = image.properties.get(LICENCE_PROPERTY, "0")
        if options != "0":
            raise TaskFailure(
                f"Image {image_id} cannot be exported because of licensing restrictions "
                f"({LICENCE_PROPERTY} is '{options}', exportable images have '0')."
            )
        if image.status != "active" or image.stored is None:
            raise TaskFailure(
                f"Image {image_id} cannot be exported: its status is '{image.status}', "
                "not 'active'."
            )
        return image

    # -- import --------------------------------------------------------------------------

    def import_(self, task: TaskRecord) -> dict[str, Any]:
        name = _import_name(task.input)
        source = self._import_source(task)
        image_id = task.work.get("image_id") or str(uuid.uuid4())
        if "image_id" not in task.work:  # a resumed import reuses its image id
            self._update_task(task.id, work={**task.work, "image_id": image_id})
        content = store_content(
            self.cloud.service_account(task.region),
            image_id,
            stream_body(source.account.open(source.container, source.name)),
            source.size,
            self.cloud.options,
        )
        if content.size != source.size:
            raise import_failure("111", "The VHD could not be read completely.")
        image = ImageRecord(
            image_id,
            task.region,
            name=name,
            owner=task.owner,
            status="active",
            min_disk=max(1, math.ceil(source.virtual_size / GB)),
            properties={"image_type": "import", LICENCE_PROPERTY: "0"},
            content=asdict(content),
            origin={"kind": "import", "task_id": task.id},
        )
        image.save(self.store)
        self.store.bump(task.region, "images_created")
        return {"image_id": image_id}

    def _import_source(self, task: TaskRecord) -> ImportSource:
        """The object to import, checked: it exists, is a VHD, and is within the limits."""
        location = _required(task.input, "import_from")
        fmt = task.input.get("import_from_format", "vhd")
        if fmt != "vhd":
            raise TaskFailure(f"Unsupported import_from_format '{fmt}': only 'vhd' is accepted.")
        container, _, name = location.partition("/")
        account = self._owner_account(task)
        head = account.head(container, name) if container and name else None
        if head is None:
            raise TaskFailure(NOT_FOUND_FOR_IMPORT)
        size = int(head.headers.get("Content-Length", "0"))
        limit = self.cloud.options.import_size_limit_bytes
        if size > limit:
            raise import_failure(
                "609",
                f"The physical size of the VHD ({size} bytes) exceeds the import limit "
                f"({limit} bytes).",
            )
        virtual_size = self._check_vhd(account, container, name, size, limit)
        return ImportSource(account, container, name, size, virtual_size)

    def _check_vhd(
        self, account: SwiftAccount, container: str, obj: str, size: int, limit: int
    ) -> int:
        """Validate the VHD footer; returns the disk's virtual size."""
        if size < FOOTER_SIZE:
            raise import_failure("396")
        footer = parse_footer(_read_range(account, container, obj, f"bytes=-{FOOTER_SIZE}"))
        if footer is None:
            raise import_failure("396")
        if footer.disk_type == DISK_DIFFERENCING:
            raise import_failure("721")
        if footer.disk_type not in (DISK_FIXED, DISK_DYNAMIC):
            raise import_failure("523")
        if footer.has_zero_id:
            raise import_failure("614")
        if footer.disk_type == DISK_DYNAMIC:
            head = _read_range(account, container, obj, f"bytes=0-{TABLE_OFFSET - 1}")
            problem = check_dynamic_head(head, footer)
            if problem is not None:
                raise import_failure("111", f"The VHD failed validation checks: {problem}.")
        if footer.current_size > limit:
            raise import_failure(
                "413",
                f"The virtual size of the disk ({footer.current_size} bytes) exceeds the "
                f"import limit ({limit} bytes).",
            )
        return footer.current_size

    # -- snapshots -----------------------------------------------------------------------

    def start_snapshot(self, image_id: str) -> None:
        self.cloud.run_in_background(f"snapshot-{image_id}", lambda: self.run_snapshot(image_id))

    def run_snapshot(self, image_id: str) -> None:
        """``queued`` -> ``saving`` (bytes written to Swift) -> ``active``."""
        image = ImageRecord.load(self.store, image_id)
        if image is None or image.status not in ("queued", "saving"):
            return
        duration = self.cloud.options.snapshot_seconds
        wait_until(image.created_at + duration / 4)
        if self._set_image_status(image_id, "saving") is None:
            return
        origin = image.origin
        try:
            content = store_content(
                self.cloud.service_account(image.region),
                image_id,
                image_chunks(origin["seed"], origin["disk_bytes"], image_id, image.created_at),
                image_size(origin["disk_bytes"]),
                self.cloud.options,
            )
        except (SwiftFailure, requests.RequestException, OSError):
            log.exception("snapshot %s broke", image_id)
            self._set_image_status(image_id, "killed")
            return
        wait_until(image.created_at + duration)
        self._set_image_status(image_id, "active", content=asdict(content))

    def _set_image_status(self, image_id: str, status: str, **changes: Any) -> ImageRecord | None:
        def change(doc: dict[str, Any]) -> None:
            doc.update(status=status, updated_at=time.time(), **changes)

        doc = self.store.update(ImageRecord.KIND, image_id, change)
        return None if doc is None else ImageRecord.from_doc(doc)


def _read_range(account: SwiftAccount, container: str, obj: str, byte_range: str) -> bytes:
    response = account.open(container, obj, byte_range)
    try:
        return response.content
    finally:
        response.close()


def _required(values: dict[str, Any], key: str) -> str:
    value = values.get(key)
    if not isinstance(value, str) or not value:
        raise TaskFailure(f"Input does not contain '{key}' field")
    return value


def _import_name(task_input: dict[str, Any]) -> str:
    properties = task_input.get("image_properties")
    if not isinstance(properties, dict):
        raise TaskFailure("Input does not contain 'image_properties' field")
    extra = sorted(set(properties) - {"name"})
    if extra:
        raise TaskFailure(
            "Name is the only property that can be included in image_properties; "
            f"refusing {', '.join(extra)}. Set other properties after the import."
        )
    name = properties.get("name")
    if not isinstance(name, str) or not name:
        raise TaskFailure("image_properties must contain a 'name'")
    if len(name) > MAX_NAME:
        raise TaskFailure(f"Image name is too long: {len(name)} characters, at most {MAX_NAME}")
    return name


def _check_container_name(container: str) -> None:
    bad = sorted({c for c in container if c in "/?."})
    if bad:
        raise TaskFailure(
            f"Invalid container name '{container}': it must not contain "
            f"{' or '.join(repr(c) for c in bad)} (no '/', '?' or '.' allowed)."
        )
