"""The transfer request: validation, run-key defaults, names of the intermediate objects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from imagehop.procedure.request import (
    COORDINATING_KEY_PROPERTY,
    DEFAULT_COORDINATING_KEY,
    EXPORT_DISK_FORMAT,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    BatchRequest,
    ImageSource,
    ServerSource,
    TransferRequest,
    import_location,
    is_staged_name,
    slug,
    staged_object,
    staged_segments_prefix,
    transfer_identity,
)

MIDNIGHT = datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()


def request(**fields: object) -> TransferRequest:
    return TransferRequest(**{"source_region": "dfw", "target_region": " iad ", **fields})


def test_regions_are_upper_case_codes() -> None:
    made = request(image_id="i-1")
    assert (made.source_region, made.target_region) == ("DFW", "IAD")


@pytest.mark.parametrize(
    "fields",
    [{}, {"image_id": "i-1", "server_id": "s-1"}, {"source": {"image_id": "i"}, "image_id": "i"}],
)
def test_exactly_one_source(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="exactly one of image_id and server_id"):
        request(**fields)


@pytest.mark.parametrize(
    ("fields", "source"),
    [
        ({"image_id": "i-1"}, ImageSource(image_id="i-1")),
        ({"server_id": "s-1"}, ServerSource(server_id="s-1")),
        ({"source": {"image_id": "i-1"}}, ImageSource(image_id="i-1")),
        ({"source": ServerSource(server_id="s-1")}, ServerSource(server_id="s-1")),
    ],
)
def test_the_shorthand_ids_and_the_source_are_the_same_request(
    fields: dict[str, object], source: ImageSource | ServerSource
) -> None:
    made = request(**fields)
    assert made.source == source
    shorthand = source.model_dump()
    assert (made.image_id, made.server_id) == (
        shorthand.get("image_id"),
        shorthand.get("server_id"),
    )
    dumped = made.model_dump(mode="json")
    assert "image_id" not in dumped and "server_id" not in dumped  # the form's shape
    assert TransferRequest.model_validate(dumped) == made


@pytest.mark.parametrize("source", [{}, {"image_id": "i", "server_id": "s"}, {"image_id": ""}])
def test_a_source_needs_exactly_one_id(source: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="source"):
        request(source=source)


REFUSED_KEYS = {
    "com.rackspace__1__x": "cloud reserves",
    "org.openstack__1__y": "cloud reserves",
    "COM.RACKSPACE.x": "cloud reserves",
    "Org.OpenStack.y": "cloud reserves",
    " ": "must not be empty",
    "os_distro": "image schema or a well-known image property",
    "name": "image schema or a well-known image property",
    "status": "image schema or a well-known image property",
    "Min_Disk": "image schema or a well-known image property",
    "hw_disk_bus": "image schema or a well-known image property",
    "img_config_drive": "image schema or a well-known image property",
    RUN_KEY_PROPERTY: "bookkeeping",
    COORDINATING_KEY_PROPERTY: "bookkeeping",
    "a b": "reverse-DNS",
    "com.mycompany": "reverse-DNS",
    "Com.MyCompany.image-of": "reverse-DNS",
    "com.mycompany.image of": "reverse-DNS",
    "com..image-of": "reverse-DNS",
    "com.mycompany.image-of.": "reverse-DNS",
}


@pytest.mark.parametrize(("key", "says"), REFUSED_KEYS.items(), ids=list(REFUSED_KEYS))
def test_coordinating_property_must_be_the_users_own(key: str, says: str) -> None:
    """A key that could name a property imagehop did not write is refused, with an example
    of a good one."""
    with pytest.raises(ValidationError, match=says) as refused:
        request(image_id="i-1", coordinating_property_key=key)
    assert "e.g. com.mycompany.image-of" in str(refused.value)


@pytest.mark.parametrize(
    "key", [DEFAULT_COORDINATING_KEY, "com.mycompany.image-of", "net.example.dr.image_of"]
)
def test_reverse_dns_keys_of_ones_own_are_accepted(key: str) -> None:
    assert (
        request(image_id="i-1", coordinating_property_key=f" {key} ").coordinating_property_key
        == key
    )


def test_batches_follow_the_same_key_rules() -> None:
    with pytest.raises(ValidationError, match="image schema"):
        BatchRequest(
            source_region="DFW", target_region="IAD", image_ids=("i-1",),
            coordinating_property_key="os_distro",
        )  # fmt: skip


def test_a_blank_coordinating_value_is_refused() -> None:
    with pytest.raises(ValidationError, match="must not be blank"):
        request(image_id="i-1", coordinating_property_value="  ")


def test_unknown_fields_and_credentials_are_refused() -> None:
    """A request never carries a secret: there is no field for one."""
    with pytest.raises(ValidationError, match="api_key"):
        request(image_id="i-1", api_key="secret")


def test_run_key_of_an_image_is_its_id_and_the_value_defaults_to_it() -> None:
    identity = transfer_identity(request(image_id="i-1"), MIDNIGHT)
    assert identity.run_key == "i-1"
    assert identity.tags == {
        DEFAULT_COORDINATING_KEY: "i-1",
        RUN_KEY_PROPERTY: "i-1",
        COORDINATING_KEY_PROPERTY: DEFAULT_COORDINATING_KEY,
    }


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
        COORDINATING_KEY_PROPERTY: "com.mycompany.image-of",
        SERVER_PROPERTY: "s-1",  # a server transfer's images name their server
    }


def test_staged_names_follow_the_source_image_and_its_disk_format() -> None:
    assert import_location("imports", "abc") == "imports/abc.vhd"  # an import task: a VHD
    assert staged_object("abc", EXPORT_DISK_FORMAT) == "abc.vhd"  # a Rackspace export
    assert staged_object("abc", "qcow2") == "abc.qcow2"
    assert staged_object("abc", "raw") == "abc.raw"
    assert staged_object("abc", "QCOW2") == "abc.qcow2"
    assert staged_object("abc", "my/fmt.x") == "abc.myfmtx"  # never a '/' or a second '.'
    assert staged_object("abc", "-") == "abc.img"
    # the same request names the same object every time (a re-run finds its segments)
    assert staged_object("abc", "qcow2") == staged_object("abc", "qcow2")
    assert staged_segments_prefix(staged_object("abc", "qcow2")) == "abc.qcow2/imagehop/"


@pytest.mark.parametrize("disk_format", ["vhd", "qcow2", "raw", "vmdk", "my/fmt.x"])
def test_every_staged_name_of_an_image_is_recognised(disk_format: str) -> None:
    staged = staged_object("abc", disk_format)
    assert is_staged_name("abc", staged)
    assert is_staged_name("abc", f"{staged_segments_prefix(staged)}e/1024/256/00000001")


@pytest.mark.parametrize(
    "name",
    ["abc", "abc.", "abcd.vhd", "ab.vhd", "abc.vhd-00001", "abc.vhd/other/1", "abc.vhd/imagehop/",
     "x/abc.vhd", "abc.tar.gz", "abc.vhd\n"],
)  # fmt: skip
def test_names_that_are_not_an_images_staged_copy(name: str) -> None:
    assert not is_staged_name("abc", name)


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


@pytest.mark.parametrize(
    "field", ["target_image_name", "export_container", "import_container", "run_key"]
)
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_name_is_refused(field: str, blank: str) -> None:
    with pytest.raises(ValidationError, match="must not be empty or only whitespace") as caught:
        TransferRequest(source_region="DFW", target_region="IAD", image_id="i", **{field: blank})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_names_are_trimmed() -> None:
    request = TransferRequest(
        source_region="DFW", target_region="IAD", image_id=" i ", target_image_name=" web ",
        export_container=" exports ", boot={"name": " srv "},
    )  # fmt: skip
    assert (request.image_id, request.target_image_name) == ("i", "web")
    assert request.export_container == "exports"
    assert request.boot is not None and request.boot.name == "srv"
