"""The transfer request: validation, run-key defaults, names of the intermediate objects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from imagehop.procedure.request import (
    DEFAULT_COORDINATING_KEY,
    RUN_KEY_PROPERTY,
    BatchRequest,
    TransferRequest,
    import_location,
    slug,
    staged_segments_prefix,
    transfer_identity,
)

MIDNIGHT = datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()


def request(**fields: object) -> TransferRequest:
    return TransferRequest(**{"source_region": "dfw", "target_region": " iad ", **fields})


def test_regions_are_upper_case_codes() -> None:
    made = request(image_id="i-1")
    assert (made.source_region, made.target_region) == ("DFW", "IAD")


@pytest.mark.parametrize("fields", [{}, {"image_id": "i-1", "server_id": "s-1"}])
def test_exactly_one_source(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of image_id and server_id"):
        request(**fields)


@pytest.mark.parametrize("key", ["com.rackspace__1__x", "org.openstack__1__y", " "])
def test_coordinating_property_must_be_the_users_own(key: str) -> None:
    with pytest.raises(ValidationError, match=r"cloud reserves|must not be empty"):
        request(image_id="i-1", coordinating_property_key=key)


def test_unknown_fields_and_credentials_are_refused() -> None:
    """A request never carries a secret: there is no field for one."""
    with pytest.raises(ValidationError, match="api_key"):
        request(image_id="i-1", api_key="secret")


def test_run_key_of_an_image_is_its_id_and_the_value_defaults_to_it() -> None:
    identity = transfer_identity(request(image_id="i-1"), MIDNIGHT)
    assert identity.run_key == "i-1"
    assert identity.tags == {DEFAULT_COORDINATING_KEY: "i-1", RUN_KEY_PROPERTY: "i-1"}


def test_run_key_of_a_server_is_per_utc_day() -> None:
    """A nightly run snapshots again each night; a same-day re-run is the same transfer."""
    made = request(server_id="s-1")
    assert transfer_identity(made, MIDNIGHT).run_key == "s-1@2025-03-01"
    assert transfer_identity(made, MIDNIGHT + 1).run_key == "s-1@2025-03-02"


def test_explicit_run_key_and_coordinating_value_win() -> None:
    made = request(
        server_id="s-1",
        run_key="db-3-weekly",
        coordinating_property_key="com.mycompany.image-of",
        coordinating_property_value="db-replica-3",
    )
    identity = transfer_identity(made, MIDNIGHT)
    assert identity.tags == {
        "com.mycompany.image-of": "db-replica-3",
        RUN_KEY_PROPERTY: "db-3-weekly",
    }


def test_staged_names_follow_the_source_image() -> None:
    assert import_location("imports", "abc") == "imports/abc.vhd"
    assert staged_segments_prefix("abc") == "abc.vhd/imagehop/"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("s-1@2025-03-01", "s-1-2025-03-01"), ("UPPER/slash", "upper-slash"), ("--", "x")],
)
def test_slug_is_artifact_key_safe(text: str, expected: str) -> None:
    assert slug(text) == expected


def test_batch_needs_ids_or_a_filter_and_makes_one_request_per_image() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        BatchRequest(source_region="DFW", target_region="IAD")
    batch = BatchRequest(
        source_region="DFW", target_region="IAD", image_ids=("a", "b"), cleanup="keep"
    )
    made = batch.request_for("b")
    assert (made.image_id, made.cleanup, made.run_key) == ("b", "keep", None)
