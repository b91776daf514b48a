"""JSON-patch of images as Cloud Images does it (status codes and messages of Glance)."""

from __future__ import annotations

from typing import Any

import pytest

from imagehop_sandbox.models import ImageRecord
from imagehop_sandbox.patch import PATCH_V20, PATCH_V21, apply_changes, decode_pointer, parse_patch
from imagehop_sandbox.web import HttpError


def image(**properties: str) -> ImageRecord:
    return ImageRecord("id-1", "DFW", name="snap", owner="900001", properties=properties)


def patch(record: ImageRecord, operations: Any, content_type: str = PATCH_V21) -> None:
    apply_changes(record, parse_patch(content_type, operations))


def error_of(record: ImageRecord, operations: Any, content_type: str = PATCH_V21) -> HttpError:
    with pytest.raises(HttpError) as caught:
        patch(record, operations, content_type)
    return caught.value


def test_add_replace_remove_change_properties() -> None:
    record = image(keep="1", old="x")
    patch(
        record,
        [
            {"op": "add", "path": "/com.mycompany.image-of", "value": "db-replica-3"},
            {"op": "replace", "path": "/keep", "value": "2"},
            {"op": "remove", "path": "/old"},
            {"op": "replace", "path": "/name", "value": "renamed"},
        ],
    )
    assert record.properties == {"keep": "2", "com.mycompany.image-of": "db-replica-3"}
    assert record.name == "renamed"


def test_deprecated_v20_media_type_uses_operation_keys() -> None:
    record = image()
    patch(record, [{"add": "/os_version", "value": "22.04"}], PATCH_V20)
    assert record.properties == {"os_version": "22.04"}


@pytest.mark.parametrize("content_type", ["application/json", "application/json-patch+json", ""])
def test_other_media_types_get_415_with_accept_patch(content_type: str) -> None:
    error = error_of(image(), [], content_type)
    assert error.status == 415
    assert PATCH_V21 in error.headers["Accept-Patch"]


def test_adding_an_existing_property_is_a_409_conflict() -> None:
    error = error_of(image(x="1"), [{"op": "add", "path": "/x", "value": "2"}])
    assert (error.status, error.message) == (409, "Property x already present.")


@pytest.mark.parametrize("op", ["replace", "remove"])
def test_changing_a_missing_property_is_a_409_conflict(op: str) -> None:
    error = error_of(image(), [{"op": op, "path": "/missing", "value": "v"}])
    assert (error.status, error.message) == (409, "Property missing does not exist.")


@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_rackspace_properties_are_protected(op: str) -> None:
    record = image(**{"com.rackspace__1__options": "0"})
    operation = {"op": op, "path": "/com.rackspace__1__options", "value": "1"}
    error = error_of(record, [operation])
    assert error.status == 403
    assert record.properties == {"com.rackspace__1__options": "0"}


@pytest.mark.parametrize("name", ["checksum", "status", "size", "id", "created_at"])
def test_read_only_attributes_are_forbidden(name: str) -> None:
    error = error_of(image(), [{"op": "replace", "path": f"/{name}", "value": "x"}])
    assert (error.status, error.message) == (403, f"Attribute '{name}' is read-only.")


def test_escaped_pointer_names_one_property_with_slash_and_tilde() -> None:
    assert decode_pointer("/a~1b~0c") == "a/b~c"
    record = image()
    patch(record, [{"op": "add", "path": "/com.example~1path", "value": "v"}])
    assert record.properties == {"com.example/path": "v"}


@pytest.mark.parametrize(
    ("pointer", "fragment"),
    [
        ("a", 'does not start with "/"'),
        ("/a/b", "Invalid JSON pointer"),
        ("/a//b", 'contains adjacent "/"'),
        ("/a~2", "recognized escape sequence"),
        ("/a/", 'end with "/"'),
    ],
)
def test_bad_pointers_are_400(pointer: str, fragment: str) -> None:
    error = error_of(image(), [{"op": "add", "path": pointer, "value": "v"}])
    assert error.status == 400
    assert fragment in error.message


@pytest.mark.parametrize(
    "operations",
    [
        {"op": "add"},
        [["add", "/x", "v"]],
        [{"path": "/x", "value": "v"}],
        [{"op": "move", "path": "/x", "value": "v"}],
        [{"op": "add", "path": "/x"}],
        [{"op": "add", "path": "/x", "value": 5}],
        [{"op": "replace", "path": "/min_disk", "value": "big"}],
    ],
)
def test_malformed_patches_are_400(operations: Any) -> None:
    assert error_of(image(), operations).status == 400


def test_a_failing_operation_leaves_the_image_unchanged() -> None:
    record = image(a="1")
    operations = [
        {"op": "add", "path": "/b", "value": "2"},
        {"op": "add", "path": "/a", "value": "3"},
    ]
    assert error_of(record, operations).status == 409
    assert record.properties == {"a": "1"}


def test_base_attributes_cannot_be_removed_or_made_public() -> None:
    assert error_of(image(), [{"op": "remove", "path": "/name"}]).status == 403
    replace = [{"op": "replace", "path": "/visibility", "value": "public"}]
    assert error_of(image(), replace).status == 403
