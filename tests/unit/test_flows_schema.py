"""The flows' parameters render as documented forms (no server needed)."""

from __future__ import annotations

from typing import Any

from prefect.utilities.callables import parameter_schema

from imagehop.flows.transfer_image import transfer_image
from imagehop.flows.transfer_images import transfer_images


def _definition(schema: dict[str, Any], name: str) -> dict[str, Any]:
    definition: dict[str, Any] = schema["definitions"][name]
    return definition


def test_every_request_field_has_a_description() -> None:
    schema = parameter_schema(transfer_image.fn).model_dump_for_openapi()
    for model in ("TransferRequest", "BootRequest"):
        fields = _definition(schema, model)["properties"]
        undocumented = [name for name, spec in fields.items() if not spec.get("description")]
        assert not undocumented, (model, undocumented)
    request = _definition(schema, "TransferRequest")["properties"]
    assert request["cleanup"]["enum"] == ["delete-intermediates", "keep"]
    assert (
        request["concurrency"]["anyOf"][0]["minimum"],
        request["concurrency"]["anyOf"][0]["maximum"],
    ) == (1, 64)
    secrets = ("api_key", "password", "token", "secret")  # credentials are never parameters
    assert not [name for name in request if any(word in name for word in secrets)]


def test_batch_fields_are_documented() -> None:
    schema = parameter_schema(transfer_images.fn).model_dump_for_openapi()
    fields = _definition(schema, "BatchRequest")["properties"]
    assert all(spec.get("description") for spec in fields.values())
