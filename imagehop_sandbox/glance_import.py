"""Glance's interoperable image import, run in the background (``api_image_import`` tasks).

What each method does, as ``glance/async_/flows/api_image_import.py`` and its plugins do it:

* ``glance-direct``: the bytes of ``PUT .../stage`` go from staging into the store;
* ``web-download``: the cloud GETs the URI (no token sent; redirects followed only when they
  pass the filtering too), e.g. a Swift temporary URL of the same region; a body shorter or
  longer than its ``Content-Length`` fails;
* ``glance-download``: the cloud finds the remote region's Images endpoint in the caller's
  token catalog, reads the remote image's record (must be ``active``) and ``/file`` with the
  caller's token, copies ``disk_format``, ``container_format`` and properties starting
  ``hw_``, ``trait:``, ``os_distro``, ``os_secure_boot``, ``os_type``, and fails when the byte
  count differs from the remote ``size``. The catalog of a token from a per-region Keystone
  (``/identity/<region>``, as on OpenStack Flex) has its own region only, so there the remote
  endpoint is not found and the import fails: the method works only between regions sharing
  one Keystone (the v2.0 Identity, or ``/identity``) (:mod:`.tokens`).

While it runs the image is ``importing`` with ``os_glance_import_task`` (the lock: a second
import is a 409), ``os_glance_importing_to_stores: swift`` and ``os_glance_failed_import: ""``;
the task says ``Copied <n> MiB`` as bytes reach the store. The bytes of a ``bare`` image must
match its ``disk_format`` (:mod:`.formats`), else the import fails. Success: ``active`` with
size and hashes, task ``success`` with ``result: {"image_id": ...}``. Failure: back to ``queued``,
``os_glance_failed_import: swift``, the lock dropped, then (as in Glance, a moment later: poll
the task until it ends) task ``failure`` with Glance's message
``Task failed due to Internal Error`` (Glance's task executor says that for every error of a
flow; the real reason is in the service log, ``api.log``). Faults injected with the admin API
for task type ``api_image_import`` apply: a message fails the import with that task message
(as Glance's ``UploadException`` messages reach the task), extra seconds delay it.
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import requests

from imagehop_sandbox.cloud import Cloud
from imagehop_sandbox.content import delete_content, open_content, store_content
from imagehop_sandbox.formats import Head, check_format
from imagehop_sandbox.models import ImageContent, ImageRecord, ImageTaskRecord
from imagehop_sandbox.swift_io import SwiftFailure, stream_body

log = logging.getLogger("imagehop_sandbox.glance_import")

STORE_ID = "swift"
LOCK_KEY = "os_glance_import_task"
IMPORTING_KEY = "os_glance_importing_to_stores"
FAILED_KEY = "os_glance_failed_import"
INTERNAL_ERROR = "Task failed due to Internal Error"
COPY_PREFIXES = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
TIMEOUT = (5.0, 120.0)
MiB = 1024 * 1024
MAX_REDIRECTS = 5


class ImportFailed(Exception):
    """Ends an import in failure; the message goes to the service log."""


def glance_time(epoch: float | None) -> str | None:
    """``2020-12-18T05:20:38.000000``: how Glance serialises a task's datetimes."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def task_view(task: ImageTaskRecord) -> dict[str, Any]:
    """A task as ``GET /v2/images/{id}/tasks`` lists it (Glance's ``_task_format``)."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "expires_at": glance_time(task.expires_at),
        "created_at": glance_time(task.created_at),
        "updated_at": glance_time(task.updated_at),
        "deleted_at": None,
        "deleted": False,
        "image_id": task.image_id,
        "request_id": task.request_id,
        "user_id": task.user_id,
        "input": task.input,
        "result": task.result,
        "message": task.message,
    }


def own_ports(cloud: Cloud) -> list[int]:
    """Ports of this cloud's Swift proxies (as published too) and Images APIs."""
    ports: set[int] = set()
    urls = [region.storage_host for region in cloud.info.regions.values()]
    urls += [region.images_url for region in cloud.info.regions.values()]
    urls += list(cloud.options.catalog_storage_hosts.values())
    for url in urls:
        port = urllib.parse.urlsplit(url).port
        if port:
            ports.add(port)
    return sorted(ports)


def uri_passes_filtering(cloud: Cloud, uri: Any) -> bool:
    """Glance's ``validate_import_uri`` with the options in effect (``import_filtering``)."""
    if not isinstance(uri, str) or not uri:
        return False
    opts = cloud.options.filtering(own_ports(cloud))
    try:
        parsed = urllib.parse.urlparse(uri)
        port = parsed.port
    except ValueError:
        return False
    schemes, bad_schemes = opts["allowed_schemes"], opts["disallowed_schemes"]
    hosts, bad_hosts = opts["allowed_hosts"], opts["disallowed_hosts"]
    ports, bad_ports = opts["allowed_ports"], opts["disallowed_ports"]
    if schemes:
        bad_schemes = []
    if hosts:
        bad_hosts = []
    if ports:
        bad_ports = []
    scheme = parsed.scheme
    if not scheme or (schemes and scheme not in schemes) or scheme in bad_schemes:
        return False
    host = (parsed.hostname or "").lower()
    if not host or (hosts and host not in hosts) or host in bad_hosts:
        return False
    return not (port and ((ports and port not in ports) or port in bad_ports))


class GlanceImports:
    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.store = cloud.store
        self._head: dict[str, bytes] = {}  # first bytes of what each import stored

    def start(self, task_id: str) -> None:
        self.cloud.run_in_background(f"image-import-{task_id}", lambda: self.run(task_id))

    def resume_all(self) -> None:
        """Start again the imports a stop of the service cut short."""
        for task in ImageTaskRecord.load_all(self.store):
            if not task.finished:
                log.info("resuming image import %s (%s)", task.id, task.status)
                self.start(task.id)

    # -- one import ----------------------------------------------------------------------

    def run(self, task_id: str) -> None:
        task = ImageTaskRecord.load(self.store, task_id)
        if task is None or task.finished:
            return
        self._update_task(task_id, status="processing")
        started = time.time()
        fault = task.fault or {}
        method: dict[str, Any] = task.input["import_req"]["method"]
        account = self.cloud.service_account(task.region)
        content: ImageContent | None = None
        changes: dict[str, Any] = {}
        try:
            if fault.get("message"):
                raise ImportFailed(str(fault["message"]))
            image = self._image(task)
            name = method["name"]
            if name == "glance-direct":
                content = self._from_staging(task, image)
            elif name == "web-download":
                content = self._web_download(task, image, str(method.get("uri")))
            else:
                content, changes = self._glance_download(task, image, method)
            changes["virtual_size"] = check_format(
                changes.get("disk_format") or image.disk_format,
                changes.get("container_format") or image.container_format,
                self._head.pop(task.id, b""),
                content.size,
            )
            wait = started + float(fault.get("extra_seconds") or 0) - time.time()
            if wait > 0:
                time.sleep(wait)
            self._finish(task, content, changes)
        except (ImportFailed, SwiftFailure, requests.RequestException, OSError, ValueError) as e:
            self._head.pop(task_id, None)
            log.warning("image import %s of image %s failed: %s", task_id, task.image_id, e)
            if content is not None:
                with contextlib.suppress(SwiftFailure, OSError):
                    delete_content(account, content)
            self._fail(task, str(fault["message"]) if fault.get("message") else INTERNAL_ERROR)

    def _image(self, task: ImageTaskRecord) -> ImageRecord:
        image = ImageRecord.load(self.store, task.image_id)
        if image is None:
            raise ImportFailed("Image has been deleted, aborting import.")
        return image

    def _progress(self, task: ImageTaskRecord, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The chunks, noting ``Copied <n> MiB`` in the task as they pass (Glance does)."""
        copied, noted, last = 0, 0, time.monotonic()
        for chunk in chunks:
            copied += len(chunk)
            yield chunk
            if copied // MiB != noted and time.monotonic() - last >= 0.2:
                noted, last = copied // MiB, time.monotonic()
                self._update_task(task.id, message=f"Copied {noted} MiB")

    def _store(self, task: ImageTaskRecord, chunks: Iterable[bytes], size: int | None) -> Any:
        account = self.cloud.service_account(task.region)
        head = Head()
        content = store_content(
            account,
            task.image_id,
            head.watch(self._progress(task, chunks)),
            size,
            self.cloud.options,
        )
        self._head[task.id] = head.data
        return content

    def _from_staging(self, task: ImageTaskRecord, image: ImageRecord) -> ImageContent:
        staged = image.staged_content
        if staged is None:
            raise ImportFailed(f"image {image.id} has no staged data")
        account = self.cloud.service_account(task.region)
        content: ImageContent = self._store(task, open_content(account, staged), staged.size)
        if content.size != staged.size:
            delete_content(account, content)
            raise ImportFailed("staged data changed during the import")
        return content

    def _open(self, uri: str, headers: dict[str, str] | None = None) -> requests.Response:
        """GET ``uri``, following redirects only to URIs that pass the filtering."""
        for _ in range(MAX_REDIRECTS + 1):
            response = requests.get(
                uri, headers=headers, stream=True, timeout=TIMEOUT, allow_redirects=False
            )
            if response.status_code in (301, 302, 303, 307, 308):
                response.close()
                uri = urllib.parse.urljoin(uri, response.headers.get("Location", ""))
                if not uri_passes_filtering(self.cloud, uri):
                    raise ImportFailed(f"redirect to {uri} does not pass filtering")
                continue
            if response.status_code >= 400:
                response.close()
                raise ImportFailed(f"GET answered {response.status_code}")
            return response
        raise ImportFailed("too many redirects")

    def _web_download(self, task: ImageTaskRecord, image: ImageRecord, uri: str) -> ImageContent:
        response = self._open(uri)
        try:
            expected = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            expected = 0
        content: ImageContent = self._store(task, stream_body(response), expected or None)
        if expected and content.size != expected:
            delete_content(self.cloud.service_account(task.region), content)
            raise ImportFailed(
                f"downloaded data size {content.size} is different from expected {expected}"
            )
        return content

    def _glance_endpoint(self, task: ImageTaskRecord, region: str, interface: str) -> str:
        """The remote Images endpoint from the caller's token catalog (Glance's
        ``get_glance_endpoint``)."""
        claims = self.cloud.claims(task.token)
        if claims is None:
            raise ImportFailed("the caller's token is no longer valid")
        not_found = ImportFailed(f"{interface} glance endpoint not found for region {region}")
        known = {name.upper(): name for name in self.cloud.info.regions}
        if region.upper() not in known or interface not in ("public", "internal", "admin"):
            raise not_found
        name = known[region.upper()]
        if claims.regions is not None and name not in claims.regions:
            raise not_found
        if "image" in self.cloud.options.catalog_missing_services.get(name, []):
            raise not_found
        url = self.cloud.info.region(name).images_url.rstrip("/")
        return url.removesuffix("/v2")

    def _glance_download(
        self, task: ImageTaskRecord, image: ImageRecord, method: dict[str, Any]
    ) -> tuple[ImageContent, dict[str, Any]]:
        endpoint = self._glance_endpoint(
            task, str(method["glance_region"]), str(method.get("glance_service_interface"))
        )
        remote_id = str(method["glance_image_id"])
        headers = {"X-Auth-Token": task.token}
        record = self._open(f"{endpoint}/v2/images/{remote_id}", headers)
        try:
            data = record.json()
        finally:
            record.close()
        if data.get("status") != "active":
            raise ImportFailed(f"Source image status should be active instead of {data['status']}")
        try:
            size = int(data["size"])
        except (KeyError, TypeError, ValueError):
            raise ImportFailed(
                f"Size attribute of remote image {remote_id} could not be determined."
            ) from None
        properties = {
            key: value
            for key, value in data.items()
            if key.startswith(COPY_PREFIXES) and isinstance(value, str)
        }
        changes = {
            "disk_format": data.get("disk_format"),
            "container_format": data.get("container_format"),
            "properties": properties,
        }
        file_url = f"{endpoint}/v2/images/{remote_id}/file"
        if not uri_passes_filtering(self.cloud, file_url):
            raise ImportFailed(
                f"Processed URI for glance-download does not pass filtering: {file_url}"
            )
        content: ImageContent = self._store(task, stream_body(self._open(file_url, headers)), None)
        if content.size != size:
            delete_content(self.cloud.service_account(task.region), content)
            raise ImportFailed(
                f"downloaded data size {content.size} is different from expected {size}"
            )
        return content, changes

    # -- endings -------------------------------------------------------------------------

    def _finish(
        self, task: ImageTaskRecord, content: ImageContent, changes: dict[str, Any]
    ) -> None:
        staged: list[ImageContent] = []
        missing: list[bool] = []

        def change(doc: dict[str, Any]) -> None:
            if doc.get("status") != "importing":
                missing.append(True)
                return
            properties = doc.setdefault("properties", {})
            properties.update(changes.get("properties", {}))
            properties.pop(LOCK_KEY, None)
            properties[IMPORTING_KEY] = ""
            for key in ("disk_format", "container_format"):
                if changes.get(key):
                    doc[key] = changes[key]
            doc["virtual_size"] = changes.get("virtual_size")
            if doc.get("staged"):
                staged.append(ImageContent(**doc["staged"]))
            doc.update(status="active", content=asdict(content), staged=None)
            doc["updated_at"] = time.time()

        if self.store.update(ImageRecord.KIND, task.image_id, change) is None or missing:
            raise ImportFailed("Image has been deleted, aborting import.")
        account = self.cloud.service_account(task.region)
        for leftover in staged:
            with contextlib.suppress(SwiftFailure, OSError):
                delete_content(account, leftover)
        now = time.time()
        self._update_task(
            task.id,
            status="success",
            result={"image_id": task.image_id},
            expires_at=now + self.cloud.options.task_ttl_seconds,
            token="",
        )

    def _fail(self, task: ImageTaskRecord, message: str) -> None:
        def change(doc: dict[str, Any]) -> None:
            properties = doc.setdefault("properties", {})
            if properties.get(LOCK_KEY) == task.id:
                properties.pop(LOCK_KEY)
            properties[IMPORTING_KEY] = ""
            properties[FAILED_KEY] = STORE_ID
            if doc.get("status") == "importing":
                doc.update(status="queued", virtual_size=None)
            doc["updated_at"] = time.time()

        self.store.update(ImageRecord.KIND, task.image_id, change)
        now = time.time()
        self._update_task(
            task.id,
            status="failure",
            message=message,
            expires_at=now + self.cloud.options.task_ttl_seconds,
            token="",
        )

    def _update_task(self, task_id: str, **changes: Any) -> None:
        def change(doc: dict[str, Any]) -> None:
            doc.update({"updated_at": time.time(), **changes})

        self.store.update(ImageTaskRecord.KIND, task_id, change)
