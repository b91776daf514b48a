"""JSON-patch of images, as Cloud Images (Glance v2 of the Havana era) does it.

Two media types: ``application/openstack-images-v2.1-json-patch`` (RFC 6902 style
``{"op": "add", "path": "/x", "value": "y"}``) and the deprecated
``application/openstack-images-v2.0-json-patch`` (``{"add": "/x", "value": "y"}``). Pointers
are restricted to one token (escape ``~`` as ``~0`` and ``/`` as ``~1``). ``add`` of a
property that exists is a 409 (the Glance quirk clients must handle); ``replace``/``remove``
of a missing one too; ``com.rackspace*`` properties are protected (403).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from imagehop_sandbox.models import MAX_NAME, ImageRecord
from imagehop_sandbox.web import HttpError

PATCH_V20 = "application/openstack-images-v2.0-json-patch"
PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_TYPES = {PATCH_V20: 4, PATCH_V21: 10}
OPERATIONS = ("add", "remove", "replace")

READ_ONLY = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "status",
        "checksum",
        "size",
        "virtual_size",
        "direct_url",
        "self",
        "file",
        "schema",
    }
)
RESERVED = frozenset({"owner", "is_public", "location", "locations", "deleted", "deleted_at"})
PROTECTED_PREFIX = "com.rackspace"
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vmdk", "raw", "qcow2", "vdi", "iso")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova")
# Base attributes a customer may change, with a validator returning the stored value.
UPDATABLE = ("name", "min_disk", "min_ram", "protected", "tags", "disk_format", "container_format")
MAX_PROPERTIES = 128


@dataclass(frozen=True)
class Change:
    op: str
    name: str
    value: Any = None


def parse_patch(content_type: str, body: Any) -> list[Change]:
    """Validate a PATCH request (media type, shape, pointers) into changes."""
    if content_type not in PATCH_TYPES:
        raise HttpError(
            415,
            "The request has a media type which the server or resource does not support.",
            "unsupportedMediaType",
            {"Accept-Patch": ", ".join(PATCH_TYPES)},
        )
    if not isinstance(body, list):
        raise HttpError(400, "Request body must be a JSON array of operation objects.")
    return [_parse_change(raw, PATCH_TYPES[content_type]) for raw in body]


def _parse_change(raw: Any, draft: int) -> Change:
    if not isinstance(raw, dict):
        raise HttpError(400, "Operations must be JSON objects.")
    op, pointer = _op_and_path_d10(raw) if draft == 10 else _op_and_path_d4(raw)
    if not isinstance(pointer, str):
        raise HttpError(400, "Pointer must be a string.")
    name = decode_pointer(pointer)
    if op == "remove":
        return Change(op, name)
    if "value" not in raw:
        raise HttpError(400, f'Operation "{op}" requires a member named "value".')
    _check_writable(name)
    return Change(op, name, raw["value"])


def _op_and_path_d10(raw: dict[str, Any]) -> tuple[str, Any]:
    for key in ("op", "path"):
        if key not in raw:
            raise HttpError(400, f"Unable to find '{key}' in JSON Schema change")
    if raw["op"] not in OPERATIONS:
        raise HttpError(
            400,
            f"Invalid operation: `{raw['op']}`. It must be one of the following: "
            "add, remove, replace.",
        )
    return str(raw["op"]), raw["path"]


def _op_and_path_d4(raw: dict[str, Any]) -> tuple[str, Any]:
    present = [op for op in ("replace", "add", "remove") if op in raw]
    if len(present) != 1:
        raise HttpError(
            400,
            "Operation objects must contain exactly one member named "
            '"add", "remove", or "replace".',
        )
    return present[0], raw[present[0]]


def decode_pointer(pointer: str) -> str:
    """The one property name a restricted JSON pointer designates (``/a~1b`` -> ``a/b``)."""
    if not pointer.startswith("/"):
        raise HttpError(400, f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise HttpError(400, f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise HttpError(400, f'Pointer `{pointer}` end with "/".')
    if re.search(r"~[^01]", pointer) or pointer.endswith("~"):
        raise HttpError(
            400, f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.'
        )
    tokens = [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]
    if len(tokens) != 1 or not tokens[0].strip():
        raise HttpError(400, f"Invalid JSON pointer for this resource: '{pointer}'")
    return tokens[0]


def _check_writable(name: str) -> None:
    if name in READ_ONLY:
        raise HttpError(403, f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(PROTECTED_PREFIX):
        raise HttpError(403, f"Attribute '{name}' is reserved.")


def apply_changes(image: ImageRecord, changes: list[Change]) -> None:
    """Apply all changes to ``image`` in order; raises before touching it if any fails."""
    properties = dict(image.properties)
    base: dict[str, Any] = {name: getattr(image, name) for name in (*UPDATABLE, "visibility")}
    for change in changes:
        _apply(change, base, properties)
    if len(properties) > MAX_PROPERTIES:
        raise HttpError(
            413, f"Attempted to add {len(properties)} image properties; the limit is 128."
        )
    for name, value in base.items():
        setattr(image, name, value)
    image.properties = properties


def _apply(change: Change, base: dict[str, Any], properties: dict[str, str]) -> None:
    name = change.name
    if change.op == "remove":
        if name.startswith(PROTECTED_PREFIX) or name in RESERVED:
            raise HttpError(403, f"Attribute '{name}' is reserved.")
        if name in base or name in READ_ONLY:
            raise HttpError(403, f"Property {name} may not be removed.")
        if name not in properties:
            raise HttpError(409, f"Property {name} does not exist.")
        del properties[name]
        return
    if name in base:
        if change.op == "add":
            raise HttpError(409, f"Property {name} already present.")
        base[name] = _base_value(name, change.value)
        return
    if change.op == "add" and name in properties:
        raise HttpError(409, f"Property {name} already present.")
    if change.op == "replace" and name not in properties:
        raise HttpError(409, f"Property {name} does not exist.")
    properties[name] = _string_value(change.value)


def _string_value(value: Any) -> str:
    if not isinstance(value, str):
        raise HttpError(
            400,
            f"Provided object does not match schema 'image': {value!r} is not of type 'string'",
        )
    if len(value) > MAX_NAME:
        raise HttpError(400, "Provided object does not match schema 'image': value too long")
    return value


def _base_value(name: str, value: Any) -> Any:
    mismatch = HttpError(
        400, f"Provided object does not match schema 'image': invalid value for '{name}'"
    )
    if name == "name":
        return _string_value(value)
    if name in ("min_disk", "min_ram"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise mismatch
        return value
    if name == "protected":
        if not isinstance(value, bool):
            raise mismatch
        return value
    if name == "tags":
        if not isinstance(value, list) or not all(
            isinstance(t, str) and len(t) <= MAX_NAME for t in value
        ):
            raise mismatch
        return list(dict.fromkeys(value))
    if name == "visibility":
        if value == "public":
            raise HttpError(403, "You are not authorized to complete publicize_image action.")
        if value != "private":
            raise mismatch
        return value
    allowed = DISK_FORMATS if name == "disk_format" else CONTAINER_FORMATS
    if value not in allowed:
        raise mismatch
    return value
