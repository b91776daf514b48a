"""Upstream Glance v2 in one region: interoperable import, image data, and image hashes.

:class:`GlanceImages` is the Images client of a generic OpenStack region (Flex, any Glance): it
is an :class:`~imagehop.image.ImageClient` (same HTTP layer, error map, retry table and token
handling; ``get_image``, ``delete_image``, properties ... work as there) with what upstream
Glance adds and Rackspace's Cloud Images does not document:

* ``GET /v2/info/import``: :meth:`GlanceImages.import_methods` (``None`` where the region
  serves none, i.e. Cloud Images: its path there is the export/import tasks);
* ``POST /v2/images`` (:meth:`~GlanceImages.create_image`), ``POST /v2/images/{id}/import``
  (:meth:`~GlanceImages.import_image`) and the wait for its outcome
  (:meth:`~GlanceImages.wait_for_import`: the image's ``os_glance_failed_import`` and its
  ``GET /v2/images/{id}/tasks`` say why an import failed);
* image data: ranged ``GET .../file`` (:meth:`~GlanceImages.open_range`, checked like the object
  store checks a ranged GET, plus the image's identity: the ``Content-MD5`` Glance sends is the
  image's ``checksum``), ``PUT .../file`` (:meth:`~GlanceImages.upload`) and ``PUT .../stage``
  (:meth:`~GlanceImages.stage`), one stream each;
* :func:`check_same_image`: the image-level hashes of a copy against its source.

Streams make one attempt (``NO_RETRY``): a body cannot be sent twice and a ranged read is
retried by the engine's segment layer, as for the object store.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from imagehop.clock import SYSTEM_CLOCK, Clock
from imagehop.errors import (
    ApiError,
    ImagehopError,
    IntegrityError,
    NotFoundError,
    ResourceFailedError,
    TaskFailedError,
)
from imagehop.http import HttpClient, json_body
from imagehop.image import (
    IMAGE_FAILED_STATUSES,
    STATUS_POLL_FLOOR_SECONDS,
    Image,
    ImageClient,
    Task,
)
from imagehop.object_store import RangeReader
from imagehop.retries import NO_RETRY
from imagehop.settings import Settings
from imagehop.tokens import TokenProvider
from imagehop.waiting import poll_until

log = logging.getLogger(__name__)

#: Image properties Glance keeps during and after an import (``api_image_import.py``).
IMPORTING_STORES_KEY = "os_glance_importing_to_stores"
FAILED_IMPORT_KEY = "os_glance_failed_import"
#: The lock an import holds on its image while it runs (``images.py``: a second import is 409).
IMPORT_LOCK_KEY = "os_glance_import_task"
#: The header newer Glance reads to refuse a truncated upload or stage.
IMAGE_SIZE_HEADER = "x-openstack-image-size"
OCTET_STREAM = "application/octet-stream"
#: The attributes ``POST /v2/images`` takes besides free-form properties.
CREATE_FIELDS = (
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "min_disk",
    "min_ram",
    "protected",
    "tags",
    "id",
)


def hash_of(image: Image) -> tuple[str | None, str | None]:
    """``(os_hash_algo, os_hash_value)`` of an image (None where Glance did not set them)."""
    algo, value = image.value_of("os_hash_algo"), image.value_of("os_hash_value")
    return (str(algo) if algo else None, str(value) if value else None)


def check_same_image(source: Image, target: Image) -> None:
    """Raise IntegrityError unless ``target`` holds the same bytes as ``source``.

    Compares the size, ``checksum`` (MD5) and ``os_hash_algo``/``os_hash_value`` (sha512 by
    default) that Glance computed when each image's data arrived. Every value both images
    have must match, and at least one hash must be comparable (an image without any is not
    proof of anything). The caller decides what to do with a failed copy
    (:meth:`GlanceImages.discard_image`).
    """
    problems: list[str] = []
    compared = 0
    if source.size is not None and target.size is not None and source.size != target.size:
        problems.append(f"size {target.size} bytes, the source has {source.size}")
    if source.checksum and target.checksum:
        compared += 1
        if source.checksum != target.checksum:
            problems.append(f"checksum (MD5) {target.checksum}, the source has {source.checksum}")
    (source_algo, source_hash), (target_algo, target_hash) = hash_of(source), hash_of(target)
    if source_hash and target_hash and source_algo == target_algo:
        compared += 1
        if source_hash != target_hash:
            problems.append(
                f"os_hash_value ({target_algo}) {target_hash[:16]}..., the source has "
                f"{source_hash[:16]}..."
            )
    if not problems and compared == 0:
        raise IntegrityError(
            f"image {target.id} cannot be verified as a copy of image {source.id}: no hash to "
            "compare (the images do not both carry a checksum or an os_hash_value of one "
            f"algorithm; source {source_algo or 'none'}, target {target_algo or 'none'}). "
            "Do not use it unchecked: delete it, or compare its data with the source's"
        )
    if problems:
        raise IntegrityError(
            f"image {target.id} is not a copy of image {source.id}: "
            + "; ".join(problems)
            + ". Do not use it: delete it and copy again"
        )


class GlanceImages(ImageClient):
    """One region's upstream Glance v2 (see the module docstring). Like every client here it
    is not shared between threads: :meth:`clone` gives another thread its own."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        http: HttpClient | None = None,
    ) -> None:
        super().__init__(base_url, tokens, settings, clock=clock, http=http)
        self._tokens = tokens

    def clone(self) -> GlanceImages:
        """A client of the same region and account, with its own HTTP session and the same
        request-layer policy (for another thread, e.g. an engine worker)."""
        http = HttpClient(
            self._settings, tokens=self._tokens, clock=self._clock, retry=self._http.retry
        )
        return GlanceImages(
            self.base_url, self._tokens, self._settings, clock=self._clock, http=http
        )

    # discovery --------------------------------------------------------------------------

    def import_methods(self) -> frozenset[str] | None:
        """The import methods this region advertises (``GET /v2/info/import``), e.g.
        ``{"glance-direct", "web-download"}``; ``None`` when it serves no such call (404:
        Rackspace's Cloud Images, or a Glance older than Image API 2.6)."""
        try:
            response = self._http.request("GET", f"{self.base_url}/info/import")
        except NotFoundError:
            return None
        body = json_body(response, "import-methods")
        values = body.get("value") if isinstance(body, Mapping) else None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApiError(
                "GET /v2/info/import: the answer has no list of method names in "
                "'import-methods.value'",
                None,
                response.status_code,
                "GET",
                "/v2/info/import",
            )
        return frozenset(values)

    # images -----------------------------------------------------------------------------

    def create_image(
        self,
        name: str,
        *,
        disk_format: str,
        container_format: str = "bare",
        visibility: str | None = None,
        min_disk: int | None = None,
        min_ram: int | None = None,
        tags: tuple[str, ...] = (),
        properties: Mapping[str, Any] | None = None,
    ) -> Image:
        """``POST /v2/images``: a new ``queued`` image record (no data yet).

        Sent once (a POST that creates something is never replayed: the step above looks for
        what it created before trying again). ``properties`` are extra attributes (strings
        in Glance); they may not repeat an attribute above.
        """
        body: dict[str, Any] = {
            "name": name,
            "disk_format": disk_format,
            "container_format": container_format,
        }
        for key, value in (
            ("visibility", visibility),
            ("min_disk", min_disk),
            ("min_ram", min_ram),
        ):
            if value is not None:
                body[key] = value
        if tags:
            body["tags"] = list(tags)
        clash = sorted(set(properties or {}) & set(CREATE_FIELDS))
        if clash:
            raise ValueError(f"properties repeat image attributes {clash}: pass them by name")
        body.update(properties or {})
        response = self._http.request("POST", f"{self.base_url}/images", json_body=body)
        return Image.from_api(json_body(response))

    def discard_image(self, image_id: str) -> bool:
        """Delete an image imagehop created that must not be used (a failed hash check);
        if the cloud refuses the delete, deactivate it so nobody boots it. True if deleted
        (or already gone), False if it could only be deactivated.

        Raises:
            ApiError: neither the delete nor the deactivation was allowed.
        """
        try:
            self.delete_image(image_id)
            return True
        except ApiError as exc:
            log.warning("could not delete image %s (%s); deactivating it", image_id, exc)
        self._http.request(
            "POST", f"{self.base_url}/images/{image_id}/actions/deactivate", idempotent=True
        )
        return False

    # import -----------------------------------------------------------------------------

    def import_image(
        self,
        image_id: str,
        method: Mapping[str, Any],
        *,
        stores: tuple[str, ...] = (),
        all_stores_must_succeed: bool | None = None,
    ) -> None:
        """``POST /v2/images/{id}/import`` with ``{"method": method}``, e.g.
        ``{"name": "web-download", "uri": url}`` or ``{"name": "glance-direct"}``; 202 means
        the import started (:meth:`wait_for_import` waits for its outcome).

        The method body can hold a secret (a temporary URL): it is blanked out of any error
        message and never logged. Sent once; a 409 means another import holds the image.
        """
        if not isinstance(method.get("name"), str) or not method["name"]:
            raise ValueError("an import method needs a 'name', e.g. {'name': 'web-download'}")
        body: dict[str, Any] = {"method": dict(method)}
        if stores:
            body["stores"] = list(stores)
        if all_stores_must_succeed is not None:
            body["all_stores_must_succeed"] = all_stores_must_succeed
        secrets = tuple(str(v) for k, v in method.items() if k != "name" and isinstance(v, str))
        self._http.request(
            "POST",
            f"{self.base_url}/images/{image_id}/import",
            json_body=body,
            idempotent=False,
            redact=secrets,
        )

    def image_tasks(self, image_id: str) -> list[Task]:
        """The import tasks of an image (``GET /v2/images/{id}/tasks``, Image API 2.12),
        oldest first; empty if the region does not serve the call."""
        try:
            body = self._get_json(f"{self.base_url}/images/{image_id}/tasks", retry=NO_RETRY)
        except NotFoundError:
            return []
        tasks = [Task.from_api(item) for item in (body.get("tasks") or [])]
        return sorted(tasks, key=lambda task: task.created_at or "")

    def wait_for_import(
        self,
        image_id: str,
        deadline: float,
        *,
        on_poll: Callable[[Image], None] | None = None,
    ) -> Image:
        """Poll until an import started by :meth:`import_image` made the image ``active``.

        Args:
            deadline: seconds to wait at most.

        Raises:
            TaskFailedError: the import failed: the image is back in ``queued``, no import
                holds it (``os_glance_import_task``) and its latest task is in ``failure``
                (or, where Glance has no image tasks call, it lists failed stores in
                ``os_glance_failed_import``); the message is the task's (the cloud's reason).
                A failure left by an earlier import of the same image does not count: the
                new import's task and lock are created before ``import_image`` returns.
            ResourceFailedError: the image was killed, deleted or deactivated meanwhile.
            WaitTimeoutError: still importing at the deadline.
        """

        def done(image: Image) -> bool:
            if image.status == "active":
                return True
            if image.status in IMAGE_FAILED_STATUSES:
                raise ResourceFailedError(
                    f"image {image.id} became {image.status!r} during its import",
                    None,
                    f"image {image.id}",
                    image.status,
                )
            if image.value_of(IMPORT_LOCK_KEY):
                return False  # an import holds the image (a new one, whatever came before)
            failed_stores = str(image.value_of(FAILED_IMPORT_KEY) or "")
            importing = str(image.value_of(IMPORTING_STORES_KEY) or "")
            if image.status != "queued" or (importing and not failed_stores):
                return False
            tasks = self.image_tasks(image_id)
            last = tasks[-1] if tasks else None
            if last is not None and last.status == "failure":
                raise import_failed_error(image, last)
            if last is None and failed_stores:  # a Glance without the image tasks call
                raise import_failed_error(image, None)
            return False

        return poll_until(
            lambda: self.get_image(image_id, retry=NO_RETRY),
            done,
            status_of=lambda image: image.status,
            resource=f"image {image_id}",
            wanted="active",
            interval=max(STATUS_POLL_FLOOR_SECONDS, self._settings.status_poll_interval_seconds),
            deadline_seconds=deadline,
            clock=self._clock,
            on_poll=on_poll,
        )

    # image data -------------------------------------------------------------------------

    def open_range(
        self,
        image_id: str,
        start: int,
        length: int,
        *,
        expect_checksum: str | None = None,
    ) -> RangeReader:
        """Start a ranged ``GET /v2/images/{id}/file`` of ``length`` bytes at ``start``.

        One attempt (the segment layer retries by opening the range again). Raises
        IntegrityError when the answer is not exactly that range, or when
        ``expect_checksum`` is given and the ``Content-MD5`` Glance sends (the image's
        checksum) differs: the image is no longer the one planned.
        """
        if length <= 0 or start < 0:
            raise ValueError(f"a range needs start >= 0 and length > 0, not {start}+{length}")
        end = start + length - 1
        what = f"image {image_id} bytes {start}-{end}"
        response = self._http.request(
            "GET",
            f"{self.base_url}/images/{image_id}/file",
            headers={"Range": f"bytes={start}-{end}", "Accept": OCTET_STREAM},
            retry=NO_RETRY,
            stream=True,
        )
        try:
            check_answered_range(response, start, length, what, expect_checksum)
        except ImagehopError:
            response.close()
            raise
        return RangeReader(response.raw, length, what, response.close)

    def upload(self, image_id: str, stream: Any, size: int) -> None:
        """``PUT /v2/images/{id}/file``: the image's data as one stream of ``size`` bytes
        (the image must be ``queued`` with its formats set). One attempt."""
        self._put_data(image_id, "file", stream, size)

    def stage(self, image_id: str, stream: Any, size: int) -> None:
        """``PUT /v2/images/{id}/stage``: stage the data for a ``glance-direct`` import
        (:meth:`import_image` with ``{"name": "glance-direct"}`` next). One attempt."""
        self._put_data(image_id, "stage", stream, size)

    def _put_data(self, image_id: str, what: str, stream: Any, size: int) -> None:
        if size < 0:
            raise ValueError(f"an upload needs its size in bytes, not {size}")
        self._http.request(
            "PUT",
            f"{self.base_url}/images/{image_id}/{what}",
            data=SizedBody(stream, size, f"{what} of image {image_id}"),
            headers={
                "Content-Type": OCTET_STREAM,
                "Content-Length": str(size),
                IMAGE_SIZE_HEADER: str(size),
            },
            idempotent=False,
            retry=NO_RETRY,
        )


class SizedBody:
    """An upload body of exactly ``size`` bytes from bytes, a file-like object (``read``)
    or an iterable of bytes: sent with ``Content-Length`` (never chunked, which Glance's
    ``x-openstack-image-size`` check and some proxies refuse), read ``block`` bytes at a time.

    Raises IntegrityError from ``read`` if the stream ends early or holds more bytes.
    """

    def __init__(self, stream: Any, size: int, what: str, block: int = 1024 * 1024) -> None:
        if isinstance(stream, bytes | bytearray | memoryview):
            stream = io.BytesIO(bytes(stream))
        self._read = stream.read if hasattr(stream, "read") else _reader_of(iter(stream))
        self._size = size
        self._what = what
        self._block = block
        self.sent = 0

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        left = self._size - self.sent
        if left <= 0:
            if self._read(1):
                raise IntegrityError(f"{self._what}: the stream holds more than {self._size} bytes")
            return b""
        wanted = left if amount is None or amount < 0 else min(amount, left, self._block)
        data: bytes = self._read(wanted)
        if not data:
            raise IntegrityError(
                f"{self._what}: the stream ended after {self.sent} of {self._size} bytes"
            )
        self.sent += len(data)
        return data


def _reader_of(chunks: Iterator[bytes]) -> Callable[[int], bytes]:
    """``read(n)`` over an iterator of byte strings."""
    pending = bytearray()

    def read(amount: int) -> bytes:
        while len(pending) < amount:
            chunk = next(chunks, None)
            if chunk is None:
                break
            pending.extend(chunk)
        data = bytes(pending[:amount])
        del pending[:amount]
        return data

    return read


def check_answered_range(
    response: requests.Response,
    start: int,
    length: int,
    what: str,
    expect_checksum: str | None = None,
) -> None:
    """Raise IntegrityError unless ``response`` is exactly ``length`` bytes at ``start``
    (206 with that ``Content-Range``, or 200 for a whole image from 0) and, with
    ``expect_checksum``, its ``Content-MD5`` is that checksum."""
    status = response.status_code
    headers = response.headers
    if status == 204:
        raise IntegrityError(f"GET {what}: the image has no data (204)")
    size = headers.get("Content-Length")
    if size is None or int(size) != length:
        raise IntegrityError(f"GET {what}: expected {length} bytes, the source sends {size}")
    if status == 206:
        got = headers.get("Content-Range", "")
        if not got.startswith(f"bytes {start}-{start + length - 1}/"):
            raise IntegrityError(f"GET {what}: the source answered the range {got!r}")
    elif start != 0:
        raise IntegrityError(f"GET {what}: the source ignored the range (status {status})")
    if expect_checksum is not None:
        got_md5 = headers.get("Content-MD5", "")
        if got_md5 != expect_checksum:
            raise IntegrityError(
                f"GET {what}: the image changed since it was planned "
                f"(Content-MD5 {got_md5 or 'missing'}, planned checksum {expect_checksum})"
            )


def import_failed_error(image: Image, task: Task | None) -> TaskFailedError:
    """The error for a failed import: the task's message (the cloud's reason) and the stores
    the image lists as failed."""
    stores = str(image.value_of(FAILED_IMPORT_KEY) or "")
    said = (task.message if task is not None else None) or "no message from the cloud"
    where = f" (failed stores: {stores})" if stores else ""
    advice = (
        "Read the cloud's reason; fix it (for web-download: a URL the cloud may fetch and "
        "that is still valid) and import again, or delete the image"
    )
    return TaskFailedError(
        f"the import of image {image.id} failed{where}: {said.rstrip('. ')}. {advice}",
        None,
        task.id if task is not None else None,
        task.type if task is not None else "import",
        task.message if task is not None else None,
        advice,
    )
