"""Records the local cloud keeps (images, tasks, servers) and how they are stored.

Times are epoch seconds; the APIs render them as ISO 8601 with a ``Z``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from imagehop_sandbox.state import Doc, Store

R = TypeVar("R", bound="Record")


def iso(epoch: float) -> str:
    """``2014-02-26T02:01:13Z`` (the Images and Servers APIs' format)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(epoch: float) -> str:
    """``2014-02-26T02:01:13.123Z`` (the Identity API's token expiry format)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Record:
    KIND = ""

    id: str
    region: str

    def to_doc(self) -> Doc:
        return asdict(self)

    @classmethod
    def from_doc(cls: type[R], doc: Doc) -> R:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})

    def save(self, store: Store) -> None:
        store.put(self.KIND, self.id, self.to_doc(), self.region)

    @classmethod
    def load(cls: type[R], store: Store, key: str) -> R | None:
        doc = store.get(cls.KIND, key)
        return None if doc is None else cls.from_doc(doc)

    @classmethod
    def load_all(cls: type[R], store: Store, region: str | None = None) -> list[R]:
        return [cls.from_doc(doc) for doc in store.all(cls.KIND, region)]


@dataclass
class ImageContent:
    """Where an image's bytes live in the region's Swift (the sandbox's service account)."""

    container: str
    name: str
    size: int
    md5: str
    checksum: str
    layout: str  # "plain", "slo" or "dlo"
    parts: int = 1
    sha512: str | None = None  # None for bytes stored before the sandbox computed it


# Longest image name, property value or tag: the image schema's maxLength.
MAX_NAME = 255


@dataclass
class ImageRecord(Record):
    KIND = "image"

    name: str = ""
    owner: str = ""
    status: str = "queued"
    visibility: str = "private"
    protected: bool = False
    tags: list[str] = field(default_factory=list)
    min_disk: int = 0
    min_ram: int = 0
    disk_format: str | None = "vhd"
    container_format: str | None = "ovf"
    properties: dict[str, str] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    content: dict[str, Any] | None = None
    # How the bytes are made, e.g. {"kind": "disk", "seed": ..., "disk_bytes": ...}.
    origin: dict[str, Any] = field(default_factory=dict)
    # Glance regions only: bytes of ``PUT .../stage`` waiting for a glance-direct import
    # (an ImageContent), the ``os_hidden`` attribute, and ``virtual_size`` as Glance's format
    # inspection found it (:mod:`imagehop_sandbox.formats`).
    staged: dict[str, Any] | None = None
    os_hidden: bool = False
    virtual_size: int | None = None

    def visible_to(self, tenant: str) -> bool:
        return self.visibility == "public" or self.owner == tenant

    @property
    def stored(self) -> ImageContent | None:
        return None if self.content is None else ImageContent(**self.content)

    @property
    def staged_content(self) -> ImageContent | None:
        return None if self.staged is None else ImageContent(**self.staged)


@dataclass
class TaskRecord(Record):
    KIND = "task"

    type: str = "export"
    status: str = "pending"
    owner: str = ""
    user: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    message: str = "None"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    processing_at: float | None = None
    # Set when the task was created, so a restart cannot lose an injected fault.
    fault: dict[str, Any] | None = None
    # Progress that must survive a restart (e.g. the new image id of an import).
    work: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in ("success", "failure")


@dataclass
class ImageTaskRecord(Record):
    """A Glance ``api_image_import`` task (``GET /v2/images/{id}/tasks``), apart from the
    Cloud Images tasks of ``/v2/tasks``."""

    KIND = "image_task"

    image_id: str = ""
    type: str = "api_image_import"
    status: str = "pending"
    owner: str = ""
    user_id: str = ""
    request_id: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    message: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    # The caller's token, which glance-download reuses as Glance does (never shown).
    token: str = ""
    fault: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("success", "failure")


@dataclass
class ServerRecord(Record):
    KIND = "server"

    tenant_id: str = ""
    user_id: str = ""
    name: str = ""
    image_id: str = ""
    flavor_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    ready_at: float = field(default_factory=time.time)
    disk_seed: str = ""
    disk_bytes: int = 0
    image_properties: dict[str, str] = field(default_factory=dict)
    min_ram: int = 0
    imaging_image_id: str | None = None
    address: str = "10.0.0.2"


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    ram: int  # MB
    disk: int  # GB
    vcpus: int


FLAVORS = (
    Flavor("general1-1", "1 GB General Purpose v1", 1024, 20, 1),
    Flavor("general1-2", "2 GB General Purpose v1", 2048, 40, 2),
    Flavor("general1-4", "4 GB General Purpose v1", 4096, 80, 4),
    Flavor("general1-8", "8 GB General Purpose v1", 8192, 160, 8),
)


def flavor(flavor_id: str) -> Flavor | None:
    return next((f for f in FLAVORS if f.id == flavor_id), None)
