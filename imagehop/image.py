"""Cloud Images v2: images, their properties, and Rackspace's export/import tasks.

The records (:class:`Image`, :class:`Task`, :class:`PropertyChanges`) are frozen, picklable
and hold no client or token, so Prefect tasks can return them. Task polls never come closer
than :data:`TASK_POLL_FLOOR_SECONDS` (the cloud's documented limit), whatever the settings
say; image status checks use ``Settings.status_poll_interval_seconds``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from imagehop.clock import Clock
from imagehop.errors import (
    ApiError,
    ConflictError,
    ForbiddenError,
    InvalidContainerNameError,
    NotFoundError,
    ResourceFailedError,
    TaskFailedError,
)
from imagehop.http import RegionalApiClient, json_body
from imagehop.retries import NO_RETRY, RetryPolicy
from imagehop.waiting import poll_until

JSON_PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
TASK_POLL_FLOOR_SECONDS = 30.0
STATUS_POLL_FLOOR_SECONDS = 2.0
PAGE_SIZE = 100
MAX_PAGES = 10_000
IMAGE_FAILED_STATUSES = frozenset({"killed", "deleted", "pending_delete", "deactivated"})
PropertyValue = str | int | bool

_IMAGE_FIELDS = frozenset(
    {
        "id",
        "name",
        "status",
        "owner",
        "visibility",
        "size",
        "min_disk",
        "min_ram",
        "checksum",
        "disk_format",
        "container_format",
        "protected",
        "tags",
        "created_at",
        "updated_at",
    }
)
_NOT_PROPERTIES = {*_IMAGE_FIELDS, "self", "file", "schema", "locations", "direct_url"}
_MISSING = object()


@dataclass(frozen=True)
class Image:
    """An image as the Images API shows it; ``properties`` holds every other attribute."""

    id: str
    name: str | None
    status: str
    owner: str | None = None
    visibility: str | None = None
    size: int | None = None
    min_disk: int | None = None
    min_ram: int | None = None
    checksum: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    protected: bool | None = None
    tags: tuple[str, ...] = ()
    created_at: str | None = None
    updated_at: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Image:
        """Build from a ``GET /v2/images/{id}`` body."""
        known: dict[str, Any] = {name: data.get(name) for name in _IMAGE_FIELDS}
        known.update(
            id=str(data["id"]),
            status=str(data.get("status", "")),
            tags=tuple(data.get("tags") or ()),
        )
        extra = {k: v for k, v in data.items() if k not in _NOT_PROPERTIES}
        return cls(**known, properties=extra)

    def value_of(self, key: str) -> Any:
        """The attribute or property ``key``; ``None`` if the image has no such thing."""
        value = self._lookup(key)
        return None if value is _MISSING else value

    def has(self, key: str) -> bool:
        """Whether ``key`` is an attribute or a property of the image (even if null)."""
        return self._lookup(key) is not _MISSING

    def _lookup(self, key: str) -> Any:
        if key in self.properties:
            return self.properties[key]
        if key in _IMAGE_FIELDS:
            return getattr(self, key)
        return _MISSING


@dataclass(frozen=True)
class Task:
    """An export or import task; ``message`` is None when the cloud says "None" or ""."""

    id: str
    type: str
    status: str
    message: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    expires_at: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Task:
        """Build from a ``GET /v2/tasks/{id}`` body (or a task-list summary)."""
        return cls(
            id=str(data["id"]),
            type=str(data.get("type", "")),
            status=str(data.get("status", "")),
            message=_clean_message(data.get("message")),
            input=dict(data.get("input") or {}),
            result=dict(data.get("result") or {}),
            owner=data.get("owner"),
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            expires_at=data.get("expires_at"),
        )

    @property
    def finished(self) -> bool:
        """True once the task succeeded or failed."""
        return self.status in ("success", "failure")

    @property
    def export_location(self) -> str | None:
        """``<container>/<image id>.vhd`` of a successful export."""
        return _optional_str(self.result.get("export_location"))

    @property
    def image_id(self) -> str | None:
        """The new image of a successful import."""
        return _optional_str(self.result.get("image_id"))


@dataclass(frozen=True)
class PropertyChanges:
    """What ``set_properties``/``remove_properties`` did: the keys it changed, the keys that
    already had the wanted state, and the keys the cloud refused (403) with its reason."""

    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)


def _clean_message(message: Any) -> str | None:
    text = "" if message is None else str(message).strip()
    return None if text in ("", "None") else text


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def normalize_images_url(url: str) -> str:
    """The API root to append ``/images`` or ``/tasks`` to, given the catalog URL
    (``.../v2``), a tenant-scoped one (``.../v2/<tenant>``) or a bare host (``/v2`` added)."""
    base = url.rstrip("/")
    if re.search(r"/v2(/|$)", urlsplit(base).path):
        return base
    return f"{base}/v2"


def json_pointer(key: str) -> str:
    """The one-token JSON pointer of a property name (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def patch_operation(image: Image, key: str, value: PropertyValue) -> dict[str, Any]:
    """``replace`` if the image has ``key`` (Glance answers 409 to ``add`` then), else
    ``add`` (``replace`` of a missing property is an error)."""
    op = "replace" if image.has(key) else "add"
    return {"op": op, "path": json_pointer(key), "value": value}


def check_export_container(name: str) -> None:
    """Raise InvalidContainerNameError for a name the export task would reject."""
    check_container_name(name, "export")


def check_container_name(name: str, task: str) -> None:
    """Raise InvalidContainerNameError for a container name the ``task`` ("export" or
    "import") would reject; the message names which container it is."""
    bad = sorted({c for c in name if c in "/?."})
    if not name or bad or len(name.encode()) > 256:
        reason = f"contains {' '.join(repr(c) for c in bad)}" if bad else "is empty or too long"
        raise InvalidContainerNameError(
            f"{task} container name {name!r} {reason}: the {task} task needs a container "
            "name of 1-256 bytes without '/', '?' or '.' (e.g. "
            f"'{'exported' if task == 'export' else 'imported'}-images'): pick another {task} "
            "container"
        )


class _PollLedger:
    """When each task was last polled, process-wide, so that no two polls of one task come
    closer than the floor even across clients or a retried step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[tuple[int, str], float] = {}

    def record(self, clock: Clock, task_url: str) -> None:
        with self._lock:
            self._last[(id(clock), task_url)] = clock.monotonic()

    def wait_for_turn(self, clock: Clock, task_url: str, gap: float) -> None:
        with self._lock:
            last = self._last.get((id(clock), task_url))
        if last is not None:
            clock.sleep(max(0.0, last + gap - clock.monotonic()))


_POLLS = _PollLedger()


class ImageClient(RegionalApiClient):
    """The Images API of one region, for one account."""

    service_type = "image"

    @staticmethod
    def normalize_url(url: str) -> str:
        return normalize_images_url(url)

    # images -----------------------------------------------------------------------------

    def get_image(self, image_id: str, *, retry: RetryPolicy | None = None) -> Image:
        """One image. Raises NotFoundError if it is not visible to this account."""
        return Image.from_api(self._get_json(f"{self.base_url}/images/{image_id}", retry=retry))

    def list_images(
        self, filters: Mapping[str, str] | None = None, *, page_size: int = PAGE_SIZE
    ) -> list[Image]:
        """Every image matching ``filters`` (attributes or properties, e.g.
        ``{"com.mycompany.image-of": "db-3"}``), following pagination to the end."""
        pages = self._paginate(f"{self.base_url}/images", "images", filters or {}, page_size)
        return [Image.from_api(item) for item in pages]

    def find_images_by_property(self, key: str, value: str) -> list[Image]:
        """Images whose ``key`` equals ``value``. Re-checked here too, so a cloud that
        ignores an unknown filter cannot hand back unrelated images."""
        images = self.list_images({key: value})
        return [image for image in images if str(image.value_of(key)) == value]

    def delete_image(self, image_id: str) -> bool:
        """Delete an image of this account; False if it was already gone (404).

        Raises:
            ForbiddenError: another account's image, or a protected one (403).
        """
        try:
            self._http.request("DELETE", f"{self.base_url}/images/{image_id}")
        except NotFoundError:
            return False
        return True

    def set_properties(
        self, image_id: str, properties: Mapping[str, PropertyValue]
    ) -> PropertyChanges:
        """Give the image these values, choosing ``add`` or ``replace`` per key.

        Keys that already hold the value are left alone. Keys the cloud refuses (403, e.g.
        ``com.rackspace*``) are reported in ``refused`` instead of failing the call.
        """
        image = self.get_image(image_id)
        wanted = {k: v for k, v in properties.items() if image.value_of(k) != v}
        unchanged = tuple(k for k in properties if k not in wanted)
        ops = [patch_operation(image, k, v) for k, v in wanted.items()]
        if not ops or self._patch_all_or_nothing(image_id, ops):
            return PropertyChanges(tuple(wanted), unchanged)
        return self._apply_one_by_one(image_id, ops, unchanged)

    def remove_properties(self, image_id: str, keys: list[str]) -> PropertyChanges:
        """Remove these properties; absent ones are ``unchanged``, refused ones reported."""
        image = self.get_image(image_id)
        present = [k for k in keys if k in image.properties]
        unchanged = tuple(k for k in keys if k not in present)
        ops = [{"op": "remove", "path": json_pointer(k)} for k in present]
        if not ops or self._patch_all_or_nothing(image_id, ops):
            return PropertyChanges(tuple(present), unchanged)
        return self._apply_one_by_one(image_id, ops, unchanged)

    def _patch_all_or_nothing(self, image_id: str, ops: list[dict[str, Any]]) -> bool:
        """One PATCH with every operation; False if a 403/409 means going key by key."""
        try:
            self._patch(image_id, ops)
        except (ForbiddenError, ConflictError):
            return False
        return True

    def _apply_one_by_one(
        self, image_id: str, ops: list[dict[str, Any]], unchanged: tuple[str, ...]
    ) -> PropertyChanges:
        changed: list[str] = []
        refused: dict[str, str] = {}
        for op in ops:
            key = _key_of(op["path"])
            try:
                self._patch_one(image_id, op)
                changed.append(key)
            except ForbiddenError as exc:
                refused[key] = exc.message
        return PropertyChanges(tuple(changed), unchanged, refused)

    def _patch_one(self, image_id: str, op: dict[str, Any]) -> None:
        """Apply one operation; if the key appeared or vanished meanwhile (409), flip
        ``add``/``replace`` once. A ``remove`` of a key that is already gone is done."""
        try:
            self._patch(image_id, [op])
        except ConflictError:
            if op["op"] == "remove":
                return
            flipped = {**op, "op": "replace" if op["op"] == "add" else "add"}
            self._patch(image_id, [flipped])

    def _patch(self, image_id: str, ops: list[dict[str, Any]]) -> None:
        self._http.request(
            "PATCH",
            f"{self.base_url}/images/{image_id}",
            json_body=ops,
            headers={"Content-Type": JSON_PATCH_TYPE},
            idempotent=all(op["op"] == "replace" for op in ops),
        )

    def wait_for_image_active(
        self,
        image_id: str,
        deadline_seconds: float | None = None,
        *,
        on_poll: Callable[[Image], None] | None = None,
    ) -> Image:
        """Poll until the image is ``active`` (e.g. a server snapshot being saved).

        Raises:
            ResourceFailedError: the image became killed, deleted or deactivated.
            WaitTimeoutError: still not active at the deadline (default:
                ``Settings.snapshot_deadline_seconds``).
        """
        return poll_until(
            lambda: self.get_image(image_id, retry=NO_RETRY),
            _image_active,
            status_of=lambda image: image.status,
            resource=f"image {image_id}",
            wanted="active",
            interval=max(STATUS_POLL_FLOOR_SECONDS, self._settings.status_poll_interval_seconds),
            deadline_seconds=deadline_seconds or self._settings.snapshot_deadline_seconds,
            clock=self._clock,
            on_poll=on_poll,
        )

    # tasks ------------------------------------------------------------------------------

    def create_export_task(self, image_id: str, container: str) -> Task:
        """Start exporting ``image_id`` as ``<container>/<image_id>.vhd`` in this region's
        Cloud Files. The container must exist; its name is checked here first."""
        check_export_container(container)
        task_input = {"image_uuid": image_id, "receiving_swift_container": container}
        return self._create_task({"type": "export", "input": task_input})

    def create_import_task(self, import_from: str, name: str) -> Task:
        """Start importing ``<container>/<object>`` (this region, this account) as a new
        image called ``name`` (the only property an import accepts)."""
        task_input = {
            "import_from": import_from,
            "import_from_format": "vhd",
            "image_properties": {"name": name},
        }
        return self._create_task({"type": "import", "input": task_input})

    def _create_task(self, body: dict[str, Any]) -> Task:
        response = self._http.request("POST", f"{self.base_url}/tasks", json_body=body)
        return Task.from_api(json_body(response))

    def get_task(self, task_id: str, *, retry: RetryPolicy | None = None) -> Task:
        """One task (404 once it expired, 48 h after it finished). Counts as a poll."""
        url = f"{self.base_url}/tasks/{task_id}"
        _POLLS.record(self._clock, url)
        return Task.from_api(self._get_json(url, retry=retry))

    def list_tasks(
        self, filters: Mapping[str, str] | None = None, *, page_size: int = PAGE_SIZE
    ) -> list[Task]:
        """Task summaries (id, type, status, ...), following pagination."""
        pages = self._paginate(f"{self.base_url}/tasks", "tasks", filters or {}, page_size)
        return [Task.from_api(item) for item in pages]

    def wait_for_task(
        self,
        task_id: str,
        deadline_seconds: float,
        *,
        interval: float | None = None,
        on_poll: Callable[[Task], None] | None = None,
    ) -> Task:
        """Poll a task until ``success``, never more often than every 30 s.

        The gap is the largest of 30 s, ``Settings.poll_interval_seconds``, ``interval``
        and any ``Retry-After``, also counted from this process's previous poll of the task
        (a retried step does not poll again at once). A 5xx, 413/429 or dropped connection
        costs one poll.

        Raises:
            TaskFailedError: the task ended in ``failure``; carries the cloud's message and
                advice on what to do.
            WaitTimeoutError: not finished by the deadline.
        """
        gap = max(TASK_POLL_FLOOR_SECONDS, self._settings.poll_interval_seconds, interval or 0)
        _POLLS.wait_for_turn(self._clock, f"{self.base_url}/tasks/{task_id}", gap)
        return poll_until(
            lambda: self.get_task(task_id, retry=NO_RETRY),
            _task_succeeded,
            status_of=lambda task: task.status,
            resource=f"task {task_id}",
            wanted="success",
            interval=gap,
            deadline_seconds=deadline_seconds,
            clock=self._clock,
            on_poll=on_poll,
        )

    # plumbing ---------------------------------------------------------------------------

    def _get_json(
        self, url: str, params: Mapping[str, str] | None = None, retry: RetryPolicy | None = None
    ) -> Any:
        return json_body(self._http.request("GET", url, params=params, retry=retry))

    def _paginate(
        self, url: str, key: str, filters: Mapping[str, str], page_size: int
    ) -> Iterator[Mapping[str, Any]]:
        params: dict[str, str] = {"limit": str(page_size), **filters}
        markers: set[str] = set()
        for _ in range(MAX_PAGES):
            body = self._get_json(url, params)
            items = list(body.get(key) or [])
            yield from items
            if not body.get("next") or not items:
                return
            url, params = _next_page(url, str(body["next"]), params, str(items[-1].get("id")))
            if params["marker"] in markers:
                raise ApiError(f"GET {urlsplit(url).path}: the cloud repeated a page marker")
            markers.add(params["marker"])
        raise ApiError(f"GET {urlsplit(url).path}: more than {MAX_PAGES} pages")


def _next_page(
    url: str, next_link: str, params: Mapping[str, str], last_id: str
) -> tuple[str, dict[str, str]]:
    """URL and query of the page after this one. Filters the ``next`` link omits are kept,
    and without a marker in it the last id seen is the marker."""
    absolute = urljoin(url, next_link)
    query = dict(parse_qsl(urlsplit(absolute).query, keep_blank_values=True))
    merged = {**params, **query}
    if "marker" not in query:
        merged["marker"] = last_id
    return absolute.split("?", 1)[0], merged


def _key_of(pointer: str) -> str:
    return pointer[1:].replace("~1", "/").replace("~0", "~")


def _image_active(image: Image) -> bool:
    if image.status in IMAGE_FAILED_STATUSES:
        raise ResourceFailedError(
            f"image {image.id} became {image.status!r} instead of 'active'; create it again",
            None,
            f"image {image.id}",
            image.status,
        )
    return image.status == "active"


def _task_succeeded(task: Task) -> bool:
    if task.status == "failure":
        raise task_failed_error(task)
    return task.status == "success"


# failure advice -------------------------------------------------------------------------

#: The import limit the cloud documents; advice quotes the cloud's own figure when its
#: message gives one.
DOCUMENTED_IMPORT_LIMIT = "160 GB"
#: Advice per import error code; ``{limit}`` is the import limit.
IMPORT_CODE_ADVICE_TEMPLATES = {
    "111": "The VHD failed the cloud's validation checks: import the unmodified VHD a "
    "Rackspace export produced, or rebuild it as a dynamic VHD (creator 'tap').",
    "396": "The object is not a valid VHD: point import_from at the complete .vhd (the "
    "manifest, not a segment) and check that the copy finished.",
    "413": "The disk's virtual size is over the import limit ({limit}): image a server whose "
    "system disk is at most {limit} (a smaller flavor) and transfer that.",
    "523": "Only fixed or dynamic VHDs can be imported: convert the disk (it is probably a "
    "differencing VHD) to a dynamic one.",
    "609": "The VHD's physical size is over the import limit ({limit}): shrink the data on "
    "the server's system disk, image it again and transfer that.",
    "614": "The VHD's internal UUID is all zeros: give the VHD a unique UUID (e.g. "
    "`vhd-util set -f uuid`) and upload it again.",
    "721": "The VHD has a parent disk: coalesce it into one stand-alone VHD before importing.",
}
#: The advice when the cloud's message names no limit.
IMPORT_CODE_ADVICE = {
    code: text.format(limit=DOCUMENTED_IMPORT_LIMIT)
    for code, text in IMPORT_CODE_ADVICE_TEMPLATES.items()
}
_UNITS = {"bytes": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}  # fmt: skip
_LIMIT = re.compile(r"limit\D{0,24}?(\d+(?:\.\d+)?)\s*(bytes|[kmgt]i?b|b)\b", re.IGNORECASE)


def format_size(nbytes: float) -> str:
    """A size for people: ``160 GB``, ``171.8 GB``, ``1.049 MB`` (decimal units)."""
    for unit, factor in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if nbytes >= factor:
            return f"{nbytes / factor:.4g} {unit}"
    return f"{nbytes:.0f} bytes"


def limit_in(message: str) -> str | None:
    """The limit a cloud message states (``... exceeds the import limit (N bytes)``), as
    :func:`format_size` shows it; None if it states none."""
    match = _LIMIT.search(message)
    if match is None:
        return None
    return format_size(float(match.group(1)) * _UNITS[match.group(2).lower()])


_MESSAGE_ADVICE: tuple[tuple[str, str, str], ...] = (
    (
        "import",
        r"not found for import|invalid location",
        "Nothing readable at import_from in this region's Cloud Files: check that the "
        "container/object name is right, that it was copied to the *target* region, in the "
        "account of the Images endpoint, and that the copy finished.",
    ),
    (
        "export",
        r"already (has|exists)|object with id",
        "An earlier export left this .vhd in the container: reuse that object, or delete it "
        "(manifest and segments) first, or export into another container.",
    ),
    (
        "export",
        r"container",
        "The receiving container is missing or its name is invalid: create it in the source "
        "region first, with a name without '/', '?' or '.'.",
    ),
    (
        "export",
        r"licen[cs]|cannot be exported|not exportable|restrict",
        "Licence restrictions (e.g. Windows, Red Hat; com.rackspace__1__options is not '0') "
        "prevent exporting this image; this image cannot leave its region by export.",
    ),
    (
        "export",
        r"owner|not authori[sz]ed|permission",
        "Only the image's owner can export it: for a shared or public image, boot a server "
        "from it, image that server and export the new image.",
    ),
    (
        "export",
        r"not found",
        "The image does not exist in the source region, or this account cannot see it: "
        "check the image id and the region.",
    ),
    (
        "export",
        r"deactivated|status",
        "The image is not active (deactivated images cannot be exported): reactivate it or "
        "use another image.",
    ),
)

_GENERIC_ADVICE = {
    "export": "Check that the image is active, owned by this account and exportable, and "
    "that the container exists; then start a new export.",
    "import": "Check that import_from names a complete VHD exported from this cloud, at "
    "most {limit}; then start a new import.",
}


def failure_advice(task_type: str, message: str | None) -> str:
    """One line on what to do about a failed task, from its type and the cloud's message."""
    text = message or ""
    limit = limit_in(text) or DOCUMENTED_IMPORT_LIMIT
    if task_type == "import" and (code := _import_error_code(text)):
        return IMPORT_CODE_ADVICE_TEMPLATES[code].format(limit=limit)
    for kind, pattern, advice in _MESSAGE_ADVICE:
        if kind == task_type and re.search(pattern, text, re.IGNORECASE):
            return advice
    generic = _GENERIC_ADVICE.get(task_type, "Read the cloud's message, fix the cause, retry.")
    return generic.format(limit=limit)


def _import_error_code(message: str) -> str | None:
    match = re.search(r"code\W{0,4}(\d{3})\b", message, re.IGNORECASE)
    if match and match.group(1) in IMPORT_CODE_ADVICE_TEMPLATES:
        return match.group(1)
    return None


def task_failed_error(task: Task) -> TaskFailedError:
    """The error for a task in ``failure``: the cloud's message plus advice."""
    advice = failure_advice(task.type, task.message)
    said = (task.message or "no message from the cloud").rstrip(". ")
    return TaskFailedError(
        f"{task.type or 'the'} task {task.id} failed: {said}. {advice}",
        None,
        task.id,
        task.type,
        task.message,
        advice,
    )
