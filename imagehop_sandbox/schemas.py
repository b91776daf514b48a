"""The JSON schemas Cloud Images serves at ``/v2/schemas/{image,images,task,tasks}``.

Built the way Glance of the Havana-Juno releases (which Cloud Images v2 runs) builds them:
``image`` is permissive (other properties are strings) with links; ``images`` lists full
images; ``task`` and ``tasks`` are the minimal forms, task summaries without ``input``,
``result`` and ``message``. Attributes with no value are left out of answers
(:func:`without_nulls`, as Glance's ``Schema.filter`` did then), which is why ``result`` is
absent until a task succeeds and ``size``/``checksum`` until an image has bytes: every answer
of the Images API validates against these schemas. Only properties the local cloud shows or
checks are declared, with the enums its PATCH enforces.

A region switched to upstream Glance (option ``glance_regions``) serves today's Glance schemas
instead (:data:`GLANCE_SCHEMAS`): the image schema of ``glance/api/v2/images.py``
(``get_base_properties``, Glance's default disk and container formats), where attributes
without a value are ``null`` (``size``, ``checksum``, ``os_hash_algo``, ...) rather than left
out, statuses include ``uploading`` and ``importing``, and visibility is one of four.
"""

from __future__ import annotations

from typing import Any

from imagehop_sandbox.models import MAX_NAME
from imagehop_sandbox.patch import CONTAINER_FORMATS, DISK_FORMATS

UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
IMAGE_STATUSES = ("queued", "saving", "active", "killed", "deleted", "pending_delete")
TASK_STATUSES = ("pending", "processing", "success", "failure")
TASK_TYPES = ("import", "export")
SUMMARY_HIDES = ("input", "result", "message")


def _string(description: str | None = None, **rules: Any) -> dict[str, Any]:
    prop: dict[str, Any] = {"type": "string", **rules}
    if description:
        prop["description"] = description
    return prop


def _link(rel: str, field: str) -> dict[str, str]:
    return {"rel": rel, "href": "{" + field + "}"}


TASK_PROPERTIES: dict[str, Any] = {
    "id": _string("An identifier for the task", pattern=UUID_PATTERN),
    "type": _string("The type of task represented by this content", enum=list(TASK_TYPES)),
    "status": _string("The current status of this task", enum=list(TASK_STATUSES)),
    "input": {"type": "object", "description": "The parameters required by task, JSON blob"},
    "result": {"type": "object", "description": "The result of current task, JSON blob"},
    "owner": _string("An identifier for the owner of this task"),
    "message": _string(
        "Human-readable informative message only included when appropriate (usually on failure)"
    ),
    "expires_at": _string("Datetime when this resource would be subject to removal"),
    "created_at": _string("Datetime when this resource was created"),
    "updated_at": _string("Datetime when this resource was updated"),
    "self": _string(),
    "schema": _string(),
}
IMAGE_PROPERTIES: dict[str, Any] = {
    "id": _string("An identifier for the image", pattern=UUID_PATTERN),
    "name": _string("Descriptive name for the image", maxLength=MAX_NAME),
    "status": _string("Status of the image (READ-ONLY)", enum=list(IMAGE_STATUSES)),
    "visibility": _string("Scope of image accessibility", enum=["public", "private"]),
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "checksum": _string("md5 hash of image contents. (READ-ONLY)", maxLength=32),
    "size": {"type": "integer", "description": "Size of image file in bytes (READ-ONLY)"},
    "min_disk": {
        "type": "integer",
        "description": "Amount of disk space (in GB) required to boot image.",
    },
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "disk_format": _string("Format of the disk", enum=list(DISK_FORMATS)),
    "container_format": _string("Format of the container", enum=list(CONTAINER_FORMATS)),
    "tags": {
        "type": "array",
        "description": "List of strings related to the image",
        "items": _string(maxLength=MAX_NAME),
    },
    "instance_uuid": _string("ID of instance used to create this image."),
    "created_at": _string("Date and time of image registration (READ-ONLY)"),
    "updated_at": _string("Date and time of the last image modification (READ-ONLY)"),
    "self": _string("(READ-ONLY)"),
    "file": _string("(READ-ONLY)"),
    "schema": _string("(READ-ONLY)"),
}
IMAGE_SCHEMA: dict[str, Any] = {
    "name": "image",
    "properties": IMAGE_PROPERTIES,
    "additionalProperties": {"type": "string"},
    "links": [_link("self", "self"), _link("enclosure", "file"), _link("describedby", "schema")],
}
TASK_SCHEMA: dict[str, Any] = {"name": "task", "properties": TASK_PROPERTIES}
TASK_SUMMARY_SCHEMA: dict[str, Any] = {
    "name": "task",
    "properties": {k: v for k, v in TASK_PROPERTIES.items() if k not in SUMMARY_HIDES},
}
SCHEMAS: dict[str, Any] = {
    "image": IMAGE_SCHEMA,
    "images": {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": IMAGE_SCHEMA},
            "first": _string(),
            "next": _string(),
            "schema": _string(),
        },
        "links": [_link("first", "first"), _link("next", "next"), _link("describedby", "schema")],
    },
    "task": TASK_SCHEMA,
    "tasks": {
        "name": "tasks",
        "properties": {
            "tasks": {"type": "array", "items": TASK_SUMMARY_SCHEMA},
            "schema": _string(),
        },
        "links": [_link("describedby", "schema")],
    },
}


GLANCE_IMAGE_STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
)
GLANCE_VISIBILITIES = ("community", "public", "private", "shared")
# glance/common/config.py [image_format] defaults.
GLANCE_DISK_FORMATS = (
    "ami",
    "ari",
    "aki",
    "vhd",
    "vhdx",
    "vmdk",
    "raw",
    "qcow2",
    "vdi",
    "iso",
    "ploop",
)
GLANCE_CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")


def _nullable(kind: str, description: str, **rules: Any) -> dict[str, Any]:
    return {"type": ["null", kind], "description": description, **rules}


def _read_only(prop: dict[str, Any]) -> dict[str, Any]:
    return {**prop, "readOnly": True}


GLANCE_IMAGE_PROPERTIES: dict[str, Any] = {
    "id": _string("An identifier for the image", pattern=UUID_PATTERN),
    "name": _nullable("string", "Descriptive name for the image", maxLength=MAX_NAME),
    "status": _read_only(
        _string("Status of the image", enum=list(GLANCE_IMAGE_STATUSES)),
    ),
    "visibility": _string("Scope of image accessibility", enum=list(GLANCE_VISIBILITIES)),
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {
        "type": "boolean",
        "description": "If true, image will not appear in default image list response.",
    },
    "checksum": _read_only(_nullable("string", "md5 hash of image contents.", maxLength=32)),
    "os_hash_algo": _read_only(
        _nullable("string", "Algorithm to calculate the os_hash_value", maxLength=64)
    ),
    "os_hash_value": _read_only(
        _nullable(
            "string",
            "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
            maxLength=128,
        )
    ),
    "owner": _nullable("string", "Owner of the image", maxLength=255),
    "size": _read_only(_nullable("integer", "Size of image file in bytes")),
    "virtual_size": _read_only(_nullable("integer", "Virtual size of image in bytes")),
    "container_format": _nullable(
        "string", "Format of the container", enum=[None, *GLANCE_CONTAINER_FORMATS]
    ),
    "disk_format": _nullable("string", "Format of the disk", enum=[None, *GLANCE_DISK_FORMATS]),
    "created_at": _read_only(_string("Date and time of image registration")),
    "updated_at": _read_only(_string("Date and time of the last image modification")),
    "tags": {
        "type": "array",
        "description": "List of strings related to the image",
        "items": {"type": "string", "maxLength": MAX_NAME},
    },
    "direct_url": _read_only(
        _string("URL to access the image file kept in external store"),
    ),
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {
        "type": "integer",
        "description": "Amount of disk space (in GB) required to boot image.",
    },
    "self": _read_only(_string("An image self url")),
    "file": _read_only(_string("An image file url")),
    "stores": _read_only(
        _string(
            "Store in which image data resides.  Only present when the operator has enabled "
            "multiple stores.  May be a comma-separated list of store identifiers."
        )
    ),
    "schema": _read_only(_string("An image schema url")),
}
GLANCE_IMAGE_SCHEMA: dict[str, Any] = {
    "name": "image",
    "properties": GLANCE_IMAGE_PROPERTIES,
    "additionalProperties": {"type": "string"},
    "links": IMAGE_SCHEMA["links"],
}
GLANCE_SCHEMAS: dict[str, Any] = {
    **SCHEMAS,
    "image": GLANCE_IMAGE_SCHEMA,
    "images": {
        **SCHEMAS["images"],
        "properties": {
            **SCHEMAS["images"]["properties"],
            "images": {"type": "array", "items": GLANCE_IMAGE_SCHEMA},
        },
    },
}


def without_nulls(view: dict[str, Any]) -> dict[str, Any]:
    """``view`` without the attributes that have no value (None)."""
    return {key: value for key, value in view.items() if value is not None}
