"""The flows' parameters render as documented forms (no server needed): the JSON schema the
Prefect UI builds its form from, and the deployments' defaults checked against it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import validate
from pydantic import BaseModel

from imagehop.flows.replicate_server import replicate_server
from imagehop.flows.transfer_image import transfer_image
from imagehop.flows.transfer_images import transfer_images
from imagehop.procedure.request import BatchRequest, ReplicateRequest, TransferRequest
from tests.deployments.expected import yaml_deployments

SCHEMAS = {
    "transfer-image": (parameter_schema(transfer_image.fn).model_dump_for_openapi(), "request"),
    "transfer-images": (parameter_schema(transfer_images.fn).model_dump_for_openapi(), "batch"),
    "replicate-server": (parameter_schema(replicate_server.fn).model_dump_for_openapi(), "request"),
}
MODELS: dict[str, type[BaseModel]] = {
    "transfer-image": TransferRequest,
    "transfer-images": BatchRequest,
    "replicate-server": ReplicateRequest,
}
#: What the UI's markdown renderer would eat or reformat in a description.
MARKDOWN = re.compile(r"[<>*`\[\]]|__|^\s*[-+#]")


def _definition(schema: dict[str, Any], name: str) -> dict[str, Any]:
    definition: dict[str, Any] = schema["definitions"][name]
    return definition


def _request_schema() -> dict[str, Any]:
    return _definition(SCHEMAS["transfer-image"][0], "TransferRequest")


def _described(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, spec) of every property of every definition, and of the definitions."""
    for model, definition in schema["definitions"].items():
        yield model, definition
        for name, spec in definition.get("properties", {}).items():
            yield f"{model}.{name}", spec


def _bounds(spec: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    for variant in [spec, *spec.get("anyOf", [])]:
        if "minimum" in variant or "maximum" in variant:
            yield variant.get("minimum"), variant.get("maximum")


def test_every_request_field_has_a_description() -> None:
    schema = SCHEMAS["transfer-image"][0]
    for model in ("TransferRequest", "BootRequest", "ImageSource", "ServerSource"):
        fields = _definition(schema, model)["properties"]
        undocumented = [name for name, spec in fields.items() if not spec.get("description")]
        assert not undocumented, (model, undocumented)
    request = _request_schema()["properties"]
    assert request["cleanup"]["enum"] == ["delete-intermediates", "keep"]
    assert list(_bounds(request["concurrency"])) == [(1, 64)]
    secrets = ("api_key", "password", "token", "secret")  # credentials are never parameters
    assert not [name for name in request if any(word in name for word in secrets)]


def test_batch_fields_are_documented() -> None:
    fields = _definition(SCHEMAS["transfer-images"][0], "BatchRequest")["properties"]
    assert all(spec.get("description") for spec in fields.values())


def test_the_source_is_a_choice_with_one_required_id_and_no_none_toggle() -> None:
    schema = SCHEMAS["transfer-image"][0]
    request = _request_schema()
    assert {"source_region", "target_region", "source"} <= set(request["required"])
    assert "image_id" not in request["properties"] and "server_id" not in request["properties"]
    choices = [ref["$ref"].rsplit("/", 1)[-1] for ref in request["properties"]["source"]["anyOf"]]
    assert [
        (_definition(schema, c)["title"], _definition(schema, c)["required"]) for c in choices
    ] == [
        ("Image", ["image_id"]),
        ("Server", ["server_id"]),
    ]
    for choice in choices:
        (field,) = _definition(schema, choice)["properties"].values()
        assert field["type"] == "string" and "anyOf" not in field  # no "None" toggle


def test_regions_must_look_like_region_codes() -> None:
    for flow, (schema, _) in SCHEMAS.items():
        properties = _definition(schema, MODELS[flow].__name__)["properties"]
        for name in ("source_region", "target_region"):
            pattern = properties[name]["pattern"]
            assert re.fullmatch(pattern, "DFW") and re.fullmatch(pattern, "iad"), (flow, name)
            for wrong in ("D", "DFW IAD", "dfw-1", "ABCDEFGHI", ""):
                assert not re.fullmatch(pattern, wrong), (flow, name, wrong)


@pytest.mark.parametrize("flow", SCHEMAS)
def test_every_bound_is_stated_in_the_description(flow: str) -> None:
    for where, spec in _described(SCHEMAS[flow][0]):
        for low, high in _bounds(spec):
            assert f"{low} to {high}" in spec.get("description", ""), where


@pytest.mark.parametrize("flow", SCHEMAS)
def test_no_help_text_is_lost_to_markdown(flow: str) -> None:
    """The UI renders descriptions as markdown: angle brackets would be HTML tags."""
    for where, spec in _described(SCHEMAS[flow][0]):
        description = spec.get("description", "")
        assert not MARKDOWN.search(description), (where, description)


@pytest.mark.parametrize("name", yaml_deployments())
def test_every_deployment_default_fits_the_schema_and_the_model(name: str) -> None:
    """As the server checks a deployment's parameters (required fields may be left to the
    form), and as the flow reads them once the form's required fields are filled in."""
    spec = yaml_deployments()[name]
    schema, parameter = SCHEMAS[name.split("/")[0]]
    assert validate(spec["parameters"], schema, ignore_required=True) == []
    values = dict(spec["parameters"][parameter])
    missing = [e.message for e in validate({parameter: values}, schema)]
    if name == "transfer-image/adhoc":  # the form asks for the one thing left out
        assert missing == ["'source' is a required property"]
        values["source"] = {"image_id": "an-image"}
    else:
        assert missing == []
    jsonschema.validate({parameter: values}, schema)
    MODELS[name.split("/")[0]].model_validate(values)


def test_the_adhoc_form_as_it_opens_is_refused_with_a_clear_message() -> None:
    schema = SCHEMAS["transfer-image"][0]
    opened = yaml_deployments()["transfer-image/adhoc"]["parameters"]
    with pytest.raises(jsonschema.ValidationError, match="'source' is a required property"):
        jsonschema.validate(opened, schema)


@pytest.mark.parametrize(
    ("source", "kind", "ref"),
    [({"image_id": "i-1"}, "image", "i-1"), ({"server_id": "s-1"}, "server", "s-1")],
)
def test_what_the_form_sends_is_what_the_flow_reads(
    source: dict[str, str], kind: str, ref: str
) -> None:
    schema = SCHEMAS["transfer-image"][0]
    sent = {"source_region": "DFW", "target_region": "IAD", "source": source}
    jsonschema.validate({"request": sent}, schema)
    request = TransferRequest.model_validate(sent)
    assert (request.source_kind, request.source_ref) == (kind, ref)
    both = {**sent, "source": {"image_id": "i-1", "server_id": "s-1"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"request": both}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"request": {**sent, "concurrency": 100}}, schema)
