"""What a user asks for (:class:`TransferRequest`) and the names and identities derived from it.

A transfer's *business identity* is its run key plus its coordinating property. Requests with
the same run key are the same transfer: a re-run finds what an earlier run created (snapshot,
export, staged copy, import, tagged image) instead of creating it again. The run key defaults
to the source image id; for a server it is ``<server id>@<UTC date>``, so a nightly run images
the server again each night while a same-day re-run reuses that day's snapshot.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from imagehop.settings import CLOUD_NAME_PATTERN

DEFAULT_COORDINATING_KEY = "com.imagehop.image-of"
#: Set on the snapshot, the source image and the imported image; finds them on a re-run.
RUN_KEY_PROPERTY = "com.imagehop.run-key"
#: Names the coordinating key imagehop wrote on an image, so that a later run can tell its
#: own value from one the user set (which imagehop never changes).
COORDINATING_KEY_PROPERTY = "com.imagehop.coordinating-key"
#: The server an image of a server transfer came from (snapshot, source and new image), so
#: that replicate-server's retention finds the copies of that server (with the other markers).
SERVER_PROPERTY = "com.imagehop.server-id"
#: Set only by imagehop's own createImage call: this snapshot of that server is imagehop's, so
#: a later run may delete it (never an image the user made).
SNAPSHOT_PROPERTY = "com.imagehop.snapshot-of"
#: Set on the imported image only: the source image it is a copy of. A run key reused for
#: another image is found by it (pre-flight refuses), and no step takes that copy for this one.
COPY_OF_PROPERTY = "com.imagehop.copy-of"
DEFAULT_EXPORT_CONTAINER = "imagehop-exports"
#: What a Rackspace export is (and so the staged copy of one), and what its import task takes.
EXPORT_DISK_FORMAT = "vhd"
DEFAULT_IMPORT_CONTAINER = "imagehop-imports"
#: Image properties an import drops (it accepts only a name) that a booted server relies on.
DEFAULT_PROPERTIES: tuple[str, ...] = (
    "os_distro",
    "os_version",
    "os_type",
    "vm_mode",
    "min_disk",
    "min_ram",
    "auto_disk_config",
    "org.openstack__1__os_distro",
    "org.openstack__1__os_version",
    "org.openstack__1__architecture",
)
#: Property prefixes the cloud reserves: a coordinating property there would be refused.
RESERVED_PREFIXES = ("com.rackspace", "org.openstack")
#: Attributes of the Images API's image schema (core and well-known optional ones): a
#: coordinating property of that name would overwrite what the image says about itself.
IMAGE_SCHEMA_KEYS = frozenset(
    {
        "id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
        "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "min_ram",
        "min_disk", "container_format", "disk_format", "created_at", "updated_at", "tags",
        "direct_url", "locations", "self", "file", "schema", "stores", "kernel_id",
        "ramdisk_id", "instance_uuid", "architecture", "os_distro", "os_version", "os_type",
        "vm_mode", "auto_disk_config", "image_type", "image_location", "image_state",
        "user_id", "base_image_ref", "owner_id", "hypervisor_type", "cache_in_nova",
    }
)  # fmt: skip
#: Prefixes of well-known image properties (Nova's hw_/img_/os_ hints, Cinder's, Glance's).
WELL_KNOWN_PREFIXES = ("hw_", "img_", "os_", "cinder_", "glance_", "trait:", "traits:")
#: imagehop's own bookkeeping properties (they hold the run key and the coordinating key).
BOOKKEEPING_KEYS = frozenset(
    {
        RUN_KEY_PROPERTY,
        COORDINATING_KEY_PROPERTY,
        SERVER_PROPERTY,
        SNAPSHOT_PROPERTY,
        COPY_OF_PROPERTY,
    }
)
_LABEL = r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?"
#: Reverse-DNS style: at least a domain of two labels and a name, dotted, lower case.
_COORDINATING_KEY = re.compile(rf"{_LABEL}(?:\.{_LABEL}){{2,}}")
COORDINATING_KEY_EXAMPLE = "com.mycompany.image-of"

Cleanup = Literal["delete-intermediates", "keep"]
#: What the form (the JSON schema) accepts as a region: a code of 2 to 8 letters or digits.
#: The model upper-cases it; pre-flight checks it against the service catalog.
REGION_PATTERN = r"^[A-Za-z0-9]{2,8}$"
#: The request names no source, or two.
ONE_SOURCE = "give exactly one of image_id and server_id"


def _region(description: str) -> Any:
    """A region field: the pattern is in the JSON schema (the form) only, so that API callers
    may still pass ``" dfw "``."""
    return Field(
        description=description, min_length=1, json_schema_extra={"pattern": REGION_PATTERN}
    )


def _cloud(description: str) -> Any:
    """A cloud field: a profile name of the worker's ``IMAGEHOP_CLOUDS`` (never a credential),
    or None for the worker's own settings of that side."""
    return Field(
        default=None, description=description, json_schema_extra={"pattern": CLOUD_NAME_PATTERN}
    )


def cloud_name(value: str | None) -> str | None:
    """A cloud name stripped and lower-cased; ValueError unless it is a lower-case slug
    (whether the worker knows it, pre-flight says)."""
    name = trimmed_name(value)
    if name is None:
        return None
    name = name.lower()
    if not re.fullmatch(CLOUD_NAME_PATTERN, name):
        raise ValueError(
            f"{value!r} is not a cloud name: a profile name of the worker's IMAGEHOP_CLOUDS is "
            "a lower-case slug of letters, digits and '-', e.g. flex-sjc3"
        )
    return name


SOURCE_CLOUD_HELP = (
    "Cloud the source region is in: the name of a cloud profile of the worker's "
    "IMAGEHOP_CLOUDS, e.g. legacy-dfw (a name, never a credential: its secrets are in Prefect "
    "Secret blocks). Default: the worker's own account (IMAGEHOP_USERNAME and the like)."
)
TARGET_CLOUD_HELP = (
    "Cloud the target region is in: the name of a cloud profile of the worker's "
    "IMAGEHOP_CLOUDS, e.g. flex-sjc3. Default: the worker's target account "
    "(IMAGEHOP_TARGET_USERNAME and the like, else the source's own account)."
)


class Clouds(BaseModel):
    """Which cloud profile each side of a transfer logs in as (None: the worker's settings
    of that side). What a task needs to pick its clients; names only, never credentials."""

    model_config = ConfigDict(frozen=True)

    source: str | None = None
    target: str | None = None

    @property
    def named(self) -> bool:
        return self.source is not None or self.target is not None


class ImageSource(BaseModel):
    """Transfer an existing image of the account."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Image")

    image_id: str = Field(
        min_length=1,
        description="Id of the image to transfer (active, owned by the account).",
    )


class ServerSource(BaseModel):
    """Image a server first (a new snapshot), then transfer that image."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Server")

    server_id: str = Field(min_length=1, description="Id of the server to image and transfer.")


#: Two objects with different required keys: Prefect's form offers them as a choice (its
#: anyOf widget tells them apart by their keys), and JSON Schema and pydantic tell them apart.
Source = ImageSource | ServerSource


def trimmed_name(value: str | None) -> str | None:
    """A name without surrounding whitespace; ValueError if nothing else is left (a name of
    spaces is a typo, never a name anyone wants)."""
    if value is None:
        return None
    name = value.strip()
    if not name:
        raise ValueError("must not be empty or only whitespace (omit it for the default)")
    return name


class BootRequest(BaseModel):
    """Boot a server from the new image once it is imported."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    flavor: str | None = Field(
        default=None,
        description="Flavor id or name of the new server. Default: the smallest flavor whose "
        "disk and RAM fit the image's min_disk and min_ram.",
    )
    name: str | None = Field(
        default=None, description="Name of the new server. Default: the target image's name."
    )

    @field_validator("flavor", "name")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        return trimmed_name(value)


class TransferRequest(BaseModel):
    """Move one image (or a new image of a server) from one region to another.

    Credentials are never part of a request: they come from the worker's environment
    (IMAGEHOP_USERNAME and the like) or from Prefect Secret blocks named there.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_region: str = _region(
        "Region the image or server is in: its code, 2 to 8 letters or digits, e.g. DFW."
    )
    target_region: str = _region(
        "Region to copy the image to: its code, 2 to 8 letters or digits, e.g. IAD."
    )
    source: Source = Field(
        description="What to transfer: an existing image, or a server (imaged first)."
    )
    source_cloud: str | None = _cloud(SOURCE_CLOUD_HELP)
    target_cloud: str | None = _cloud(TARGET_CLOUD_HELP)
    # Shorthands for ``source`` (Python callers, the CLI); not in the form, never dumped.
    image_id: SkipJsonSchema[str | None] = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Image to transfer. Give this or a server id, not both.",
    )
    server_id: SkipJsonSchema[str | None] = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Server to image first (a snapshot is taken, then transferred). Give "
        "this or an image id, not both.",
    )
    target_image_name: str | None = Field(
        default=None, description="Name of the new image. Default: the source image's name."
    )
    coordinating_property_key: str = Field(
        default=DEFAULT_COORDINATING_KEY,
        description="Image property that ties the source and the new image together, e.g. "
        "com.mycompany.image-of. Set on both; the new image is found by it.",
    )
    coordinating_property_value: str | None = Field(
        default=None, description="Value of the coordinating property. Default: the run key."
    )
    run_key: str | None = Field(
        default=None,
        description="Requests with the same run key are the same transfer: a re-run resumes "
        "instead of starting over. Default: the image id; for a server, its id, an @ and the "
        "UTC date, e.g. 4f1c2a@2026-12-01 (a new snapshot each day, the same one for a "
        "same-day re-run).",
    )
    export_container: str = Field(
        default=DEFAULT_EXPORT_CONTAINER,
        description="Cloud Files container in the source region that receives the export "
        "(created if missing; no '/', '?' or '.').",
    )
    import_container: str = Field(
        default=DEFAULT_IMPORT_CONTAINER,
        description="Cloud Files container in the target region the image is staged in for "
        "the import (created if missing; its segments go to a second container named like "
        "it plus _segments; no '/', '?' or '.').",
    )
    properties_to_copy: tuple[str, ...] = Field(
        default=DEFAULT_PROPERTIES,
        description="Image properties copied to the new image after the import (the import "
        "keeps only the name). Properties the cloud protects are reported, not fatal.",
    )
    boot: BootRequest | None = Field(
        default=None, description="Boot a server from the new image (omit to skip)."
    )
    cleanup: Cleanup = Field(
        default="delete-intermediates",
        description="After a successful import: delete the exported VHD (source) and the "
        "staged copy (target), or keep them. After a failure they are always kept.",
    )
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Segments copied at once, 1 to 64. Default: the worker's "
        "IMAGEHOP_TRANSFER_CONCURRENCY; unset or auto there, the count adapts to the link "
        "(grows while the copy gets faster, halves on 429/503) and the result says what it "
        "settled on.",
    )
    dry_run: bool = Field(
        default=False,
        description="Only check the request and return the plan (steps, bytes, segments, "
        "estimated duration); create and move nothing.",
    )

    @field_validator("source_region", "target_region")
    @classmethod
    def _region_code(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("source_cloud", "target_cloud")
    @classmethod
    def _cloud_name(cls, value: str | None) -> str | None:
        return cloud_name(value)

    @field_validator("coordinating_property_key")
    @classmethod
    def _own_namespace(cls, value: str) -> str:
        return check_coordinating_key(value)

    @field_validator(
        "image_id", "server_id", "target_image_name", "run_key", "export_container",
        "import_container",
    )  # fmt: skip
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        return trimmed_name(value)

    @field_validator("coordinating_property_value")
    @classmethod
    def _value_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "the coordinating property value must not be blank (omit it for the run key)"
            )
        return value

    @field_validator("properties_to_copy")
    @classmethod
    def _property_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(name.strip() for name in value))
        if any(not name for name in names):
            raise ValueError("property names must not be empty")
        return names

    @model_validator(mode="before")
    @classmethod
    def _source_or_shorthand(cls, data: Any) -> Any:
        """``image_id=`` or ``server_id=`` stand for ``source``; either way the request ends up
        with ``source`` and the matching shorthand set."""
        if not isinstance(data, dict):
            return data
        given = {key: data[key] for key in ("image_id", "server_id") if data.get(key) is not None}
        source = data.get("source")
        if source is None:
            if len(given) != 1:
                raise ValueError(ONE_SOURCE)
            return {**data, "source": given}
        if given:
            raise ValueError(f"{ONE_SOURCE}, or source instead, not both")
        return {**data, **_ids_of(source)}

    @property
    def clouds(self) -> Clouds:
        """The cloud profile of each side (None: the worker's settings)."""
        return Clouds(source=self.source_cloud, target=self.target_cloud)

    @property
    def source_kind(self) -> Literal["image", "server"]:
        return "image" if isinstance(self.source, ImageSource) else "server"

    @property
    def source_ref(self) -> str:
        """The image id or the server id."""
        if isinstance(self.source, ImageSource):
            return self.source.image_id
        return self.source.server_id


def _ids_of(source: Any) -> dict[str, str]:
    """The shorthand field that ``source`` (a model or its dict) fills in, if it is valid."""
    fields = source.model_dump() if isinstance(source, BaseModel) else source
    if not isinstance(fields, dict) or len(fields) != 1:
        return {}  # the field's own validation says what is wrong
    key, value = next(iter(fields.items()))
    return {key: value} if key in ("image_id", "server_id") and isinstance(value, str) else {}


def check_coordinating_key(value: str) -> str:
    """The coordinating key, stripped; ValueError unless it is a dotted, lower-case,
    reverse-DNS style name outside the cloud's namespaces, the image schema, well-known image
    properties and imagehop's own bookkeeping keys (a key there would change a property
    imagehop did not write)."""
    key = value.strip()
    lowered = key.lower()
    fix = f"use a property of your own namespace, e.g. {COORDINATING_KEY_EXAMPLE}"
    if not key:
        raise ValueError(f"the coordinating property key must not be empty: {fix}")
    if lowered.startswith(RESERVED_PREFIXES):
        reserved = ", ".join(f"{prefix}*" for prefix in RESERVED_PREFIXES)
        raise ValueError(f"{key!r} is in a namespace the cloud reserves ({reserved}): {fix}")
    if lowered in IMAGE_SCHEMA_KEYS or lowered.startswith(WELL_KNOWN_PREFIXES):
        raise ValueError(
            f"{key!r} is an attribute of the image schema or a well-known image property; "
            f"imagehop would overwrite it: {fix}"
        )
    if lowered in BOOKKEEPING_KEYS:
        raise ValueError(f"{key!r} is imagehop's own bookkeeping property: {fix}")
    if not _COORDINATING_KEY.fullmatch(key):
        raise ValueError(
            f"{key!r} is not a dotted, lower-case, reverse-DNS style name (letters, digits, "
            f"'-' and '_', at least three dotted parts): {fix}"
        )
    return key


class TransferIdentity(BaseModel):
    """Run key and coordinating property of one transfer, resolved once per run."""

    model_config = ConfigDict(frozen=True)

    run_key: str
    coordinating_key: str
    coordinating_value: str
    server_id: str | None = None  # the server imaged first, if the source is a server

    @property
    def tags(self) -> dict[str, str]:
        """The properties that mark every image of this transfer."""
        tags = {
            self.coordinating_key: self.coordinating_value,
            RUN_KEY_PROPERTY: self.run_key,
            COORDINATING_KEY_PROPERTY: self.coordinating_key,
        }
        if self.server_id is not None:
            tags[SERVER_PROPERTY] = self.server_id
        return tags

    @property
    def slug(self) -> str:
        """The run key as lowercase letters, digits and dashes (artifact keys, run names)."""
        return slug(self.run_key)


def default_run_key(request: TransferRequest, now: float) -> str:
    """The run key when the request names none; ``now`` is epoch seconds (UTC date taken)."""
    if request.image_id is not None:
        return request.image_id
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    return f"{request.server_id}@{day}"


def transfer_identity(request: TransferRequest, now: float) -> TransferIdentity:
    """The request's run key and coordinating property, defaults filled in."""
    run_key = request.run_key or default_run_key(request, now)
    return TransferIdentity(
        run_key=run_key,
        coordinating_key=request.coordinating_property_key,
        coordinating_value=request.coordinating_property_value or run_key,
        server_id=request.server_id,
    )


def slug(text: str, limit: int = 48) -> str:
    """Lowercase letters, digits and single dashes; at most ``limit`` characters."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:limit].rstrip("-") or "x"


# -- names ----------------------------------------------------------------------------------


def snapshot_name(request: TransferRequest, server_name: str | None, now: float) -> str:
    """Name of the server's image: the requested target image name, else
    ``<server name>-<UTC date>`` (``now`` in epoch seconds)."""
    if request.target_image_name:
        return request.target_image_name
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    return f"{server_name or request.server_id}-{day}"


def new_image_name(request: TransferRequest, source_name: str) -> str:
    """Name of the imported image: the requested one, else the source image's."""
    return request.target_image_name or source_name


def server_name(request: TransferRequest, image_name: str) -> str:
    """Name of the server booted from the new image: the requested one, else the image's."""
    boot_name = request.boot.name if request.boot is not None else None
    return boot_name or image_name


# -- names of the intermediate objects ------------------------------------------------------


def exported_object(image_id: str) -> str:
    """What an export writes: ``<image id>.vhd`` (a DLO; segments ``<image id>.vhd-00001``...)."""
    return f"{image_id}.{EXPORT_DISK_FORMAT}"


def staged_object(source_image_id: str, disk_format: str) -> str:
    """The SLO the import reads in the target region: ``<source image id>.<extension>``, the
    extension the disk format of the staged bytes: ``vhd`` for a Rackspace export
    (:data:`EXPORT_DISK_FORMAT`), else the source image's own ``disk_format`` (``qcow2``,
    ``raw``, ...), lower case, letters and digits only (``img`` if none is left).

    Both parts are the source image's, so every run of one request stages under the same name
    (a re-run finds the segments an earlier run copied). :func:`is_staged_name` recognises
    every name this gives for an image."""
    extension = re.sub(r"[^a-z0-9]", "", disk_format.lower()) or "img"
    return f"{source_image_id}.{extension}"


def is_staged_name(source_image_id: str, name: str) -> bool:
    """``name`` is a staged object :func:`staged_object` names for that image (whatever its
    format, also an earlier version's ``.vhd`` of any image), or one of its staged segments
    (under :func:`staged_segments_prefix`)."""
    pattern = rf"{re.escape(source_image_id)}\.[a-z0-9]+(?:/imagehop/.+)?"
    return re.fullmatch(pattern, name, re.DOTALL) is not None


def segments_container(import_container: str) -> str:
    """Where the staged SLO's segments go."""
    return f"{import_container}_segments"


def staged_segments_prefix(staged: str) -> str:
    """Prefix of every segment of the staged object ``staged`` (:func:`staged_object`),
    whatever the segment size of the run."""
    return f"{staged}/imagehop/"


def import_location(import_container: str, source_image_id: str) -> str:
    """``import_from`` of a Rackspace import task: ``<container>/<object>``, the staged VHD
    (the import task takes VHD only)."""
    return f"{import_container}/{staged_object(source_image_id, EXPORT_DISK_FORMAT)}"


#: How a batch runs its images (see ``BatchRequest.run_as``).
RunAs = Literal["subflows", "deployment-runs"]
DEFAULT_TRANSFER_DEPLOYMENT = "transfer-image/adhoc"
#: Batch parameters of earlier versions, refused with a pointer to what replaced them.
REMOVED_BATCH_CAPS = frozenset({"max_exports_per_region", "max_imports_per_region"})


class BatchRequest(BaseModel):
    """Move many images from one region to another: a list of ids, or every image of the
    account that matches a property filter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_region: str = _region(
        "Region the images are in: its code, 2 to 8 letters or digits, e.g. DFW."
    )
    target_region: str = _region(
        "Region to copy them to: its code, 2 to 8 letters or digits, e.g. IAD."
    )
    source_cloud: str | None = _cloud(SOURCE_CLOUD_HELP)
    target_cloud: str | None = _cloud(TARGET_CLOUD_HELP)
    image_ids: tuple[str, ...] = Field(default=(), description="Images to transfer.")
    image_filter: dict[str, str] = Field(
        default_factory=dict,
        description="Instead of ids: transfer every active image of the account whose "
        'properties have these values, e.g. {"com.mycompany.dr": "nightly"}.',
    )
    coordinating_property_key: str = Field(
        default=DEFAULT_COORDINATING_KEY,
        description="Coordinating property of every transfer (its value: the image id).",
    )
    export_container: str = Field(default=DEFAULT_EXPORT_CONTAINER, description="As for one image.")
    import_container: str = Field(default=DEFAULT_IMPORT_CONTAINER, description="As for one image.")
    properties_to_copy: tuple[str, ...] = Field(
        default=DEFAULT_PROPERTIES, description="As for one image."
    )
    cleanup: Cleanup = Field(default="delete-intermediates", description="As for one image.")
    concurrency: int | None = Field(
        default=None, ge=1, le=64, description="Segments copied at once per image, 1 to 64."
    )
    max_parallel_transfers: int = Field(
        default=4,
        ge=1,
        le=32,
        description="Images transferred at once (each a transfer-image run), 1 to 32.",
    )
    run_as: RunAs = Field(
        default="subflows",
        description="subflows: every image in this flow run's process (one host). "
        "deployment-runs: every image its own flow run of the deployment below, so the work "
        "pool's workers share the batch.",
    )
    deployment: str = Field(
        default=DEFAULT_TRANSFER_DEPLOYMENT,
        pattern=r"^transfer-image/[^/\s]+$",
        description="With run_as=deployment-runs: the deployment of the transfer-image flow "
        "each image runs on, transfer-image/NAME, e.g. transfer-image/adhoc.",
    )
    image_timeout_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="With run_as=deployment-runs: seconds the batch waits for one image's "
        "flow run, 60 to 604800 (a week), before it records the image as not finished (the "
        "run goes on).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_process_caps(cls, data: Any) -> Any:
        """The process-local caps are gone: say what replaced them, not just "extra input"."""
        if isinstance(data, dict):
            given = sorted(REMOVED_BATCH_CAPS & set(data))
            if given:
                raise ValueError(
                    f"{', '.join(given)}: no longer a batch parameter. The caps on export and "
                    "import tasks per region are Prefect global concurrency limits shared by "
                    "every worker and batch (imagehop-export-<REGION>, imagehop-import-"
                    "<REGION>): remove the parameter and set the caps with "
                    "`python deployments/limits.py --region DFW --region IAD --export N "
                    "--import N`"
                )
        return data

    @field_validator("source_region", "target_region")
    @classmethod
    def _region_code(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("source_cloud", "target_cloud")
    @classmethod
    def _cloud_name(cls, value: str | None) -> str | None:
        return cloud_name(value)

    @field_validator("coordinating_property_key")
    @classmethod
    def _own_namespace(cls, value: str) -> str:
        return check_coordinating_key(value)

    @property
    def clouds(self) -> Clouds:
        """The cloud profile of each side (None: the worker's settings)."""
        return Clouds(source=self.source_cloud, target=self.target_cloud)

    @field_validator("export_container", "import_container")
    @classmethod
    def _trimmed(cls, value: str) -> str | None:
        return trimmed_name(value)

    @model_validator(mode="after")
    def _ids_or_filter(self) -> Self:
        if bool(self.image_ids) == bool(self.image_filter):
            raise ValueError("give image_ids or an image_filter (exactly one of them)")
        return self

    def request_for(self, image_id: str) -> TransferRequest:
        """The transfer-image request of one image of the batch."""
        return TransferRequest(
            source_region=self.source_region,
            target_region=self.target_region,
            source=ImageSource(image_id=image_id),
            source_cloud=self.source_cloud,
            target_cloud=self.target_cloud,
            coordinating_property_key=self.coordinating_property_key,
            export_container=self.export_container,
            import_container=self.import_container,
            properties_to_copy=self.properties_to_copy,
            cleanup=self.cleanup,
            concurrency=self.concurrency,
        )


#: Copies of a server replicate-server keeps by default (a week of nightly copies).
DEFAULT_KEEP = 7
#: At most this many copies kept (a year of nightly copies).
MAX_KEEP = 366
#: The request names an image: replicate-server makes a new image of a server each run.
NOT_A_SERVER = (
    "replicate-server images a server each run: give source {server_id: ...} (or server_id); "
    "to copy an existing image use transfer-image"
)


class ReplicateRequest(TransferRequest):
    """Image a server, transfer the new image, then keep only the newest copies (keep) of
    that server in the target region (older copies, their source snapshots and intermediate
    objects deleted). Every field of a transfer applies, except booting a server."""

    source: ServerSource = Field(description="The server to image and copy.")
    boot: SkipJsonSchema[None] = Field(default=None, exclude=True)
    keep: int = Field(
        default=DEFAULT_KEEP,
        ge=1,
        le=MAX_KEEP,
        description=f"Copies of the server to keep in the target region, 1 to {MAX_KEEP}, "
        "this run's included: older copies imagehop made of this server are deleted there, "
        "with the source snapshots imagehop made for them and their exported and staged "
        "objects.",
    )
    coordinating_property_value: str | None = Field(
        default=None,
        description="Value of the coordinating property. Default: the server id (every copy "
        "of the server is listed by one property filter).",
    )
    run_key: str | None = Field(
        default=None,
        description="Requests with the same run key are the same transfer. Default: the "
        "server id, an @ and the run's scheduled start time in UTC to the second, e.g. "
        "4f1c2a@2026-12-01T02:00:00Z (a retry of the run resumes it; every run is a new copy).",
    )
    dry_run: bool = Field(
        default=False,
        description="Only check the request, plan the transfer and list the copies that "
        "would be deleted; create, move and delete nothing.",
    )

    @model_validator(mode="before")
    @classmethod
    def _a_server(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        source = data.get("source")
        fields = source.model_dump() if isinstance(source, BaseModel) else source
        if data.get("image_id") is not None or (isinstance(fields, dict) and "image_id" in fields):
            raise ValueError(NOT_A_SERVER)
        if data.get("boot") is not None:
            raise ValueError("replicate-server boots no server: omit boot")
        return data

    @property
    def coordinating_value(self) -> str:
        """The coordinating property's value on every copy: the given one, else the server."""
        return self.coordinating_property_value or self.source.server_id

    def transfer_request(self, run_key: str) -> TransferRequest:
        """The transfer-image request of this run."""
        fields = self.model_dump(exclude={"keep", "boot"})
        fields.update(run_key=run_key, coordinating_property_value=self.coordinating_value)
        return TransferRequest.model_validate(fields)


def replication_run_key(server_id: str, started: datetime) -> str:
    """``<server id>@<UTC time to the second>``: one transfer per replicate-server run."""
    return f"{server_id}@{started.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
