"""Retention of replicate-server: which images are copies imagehop made of a server, which
snapshots are imagehop's, and which copies go (pure rules, no cloud)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from imagehop.image import Image
from imagehop.procedure.request import (
    COORDINATING_KEY_PROPERTY,
    MAX_KEEP,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    SNAPSHOT_PROPERTY,
    ReplicateRequest,
    TransferRequest,
    replication_run_key,
)
from imagehop.procedure.result import Deletion, KeptCopy, ReplicationResult, TransferResult
from imagehop.procedure.retention import (
    is_copy_of,
    is_snapshot_for,
    newest_first,
    split_by_age,
)

KEY = "com.mycompany.dr-copy-of"
OWNER = "tenant-1"


def copy(image_id: str, created_at: str | None = "2026-12-01T02:05:00Z", **changes: Any) -> Image:
    """A copy of server s-1 as imagehop tags it; ``changes`` set (None: remove) properties."""
    properties: dict[str, Any] = {
        KEY: "s-1",
        COORDINATING_KEY_PROPERTY: KEY,
        RUN_KEY_PROPERTY: f"s-1@{created_at}",
        SERVER_PROPERTY: "s-1",
    }
    for name, value in changes.items():
        properties.pop(name.replace("__", "."), None)
        if value is not None:
            properties[name.replace("__", ".")] = value
    return Image(
        id=image_id,
        name="web-1-2026-12-01",
        status="active",
        owner=OWNER,
        created_at=created_at,
        properties=properties,
    )


def is_copy(image: Image) -> bool:
    return is_copy_of(image, "s-1", KEY, "s-1", OWNER)


def test_an_image_with_every_marker_is_a_copy() -> None:
    assert is_copy(copy("a"))


@pytest.mark.parametrize(
    "look_alike",
    [
        # the same name and the coordinating property set by hand, no imagehop marker
        Image(
            id="u",
            name="web-1-2026-12-01",
            status="active",
            owner=OWNER,
            created_at="2026-12-01T02:05:00Z",
            properties={KEY: "s-1"},
        ),
        copy("b", **{SERVER_PROPERTY: None}),
        copy("c", **{SERVER_PROPERTY: "s-2"}),  # another server's copy
        copy("d", **{COORDINATING_KEY_PROPERTY: None}),
        copy("e", **{COORDINATING_KEY_PROPERTY: "com.other.key"}),  # inconsistent marker
        copy("f", **{KEY: "s-1-manual"}),
        copy("g", **{RUN_KEY_PROPERTY: None}),
        copy("h", **{RUN_KEY_PROPERTY: ""}),
        copy("i", created_at=None),  # no reliable age: never deleted
        copy("j", created_at="yesterday"),
    ],
)
def test_an_image_without_consistent_markers_is_never_a_copy(look_alike: Image) -> None:
    assert not is_copy(look_alike)


def test_another_accounts_or_an_unfinished_image_is_not_a_copy() -> None:
    theirs = copy("a")
    assert not is_copy_of(theirs, "s-1", KEY, "s-1", "tenant-2")
    saving = Image(**{**theirs.__dict__, "status": "saving"})
    assert not is_copy(saving)


def snapshot(image_id: str = "snap", **changes: Any) -> Image:
    properties: dict[str, Any] = {
        SNAPSHOT_PROPERTY: "s-1",
        SERVER_PROPERTY: "s-1",
        RUN_KEY_PROPERTY: "s-1@r1",
        "instance_uuid": "s-1",
    }
    properties.update(changes)
    return Image(id=image_id, name="web-1", status="active", owner=OWNER, properties=properties)


def test_only_snapshots_imagehop_made_of_the_server_for_that_run_key_are_its_own() -> None:
    assert is_snapshot_for(snapshot(), "s-1", "s-1@r1", OWNER)
    assert not is_snapshot_for(snapshot(), "s-1", "s-1@r2", OWNER)
    assert not is_snapshot_for(snapshot(), "s-1", "s-1@r1", "tenant-2")
    user_made = Image(**{**snapshot().__dict__, "properties": {
        SERVER_PROPERTY: "s-1", RUN_KEY_PROPERTY: "s-1@r1", "instance_uuid": "s-1"}})  # fmt: skip
    assert not is_snapshot_for(user_made, "s-1", "s-1@r1", OWNER)
    assert not is_snapshot_for(snapshot(instance_uuid="s-9"), "s-1", "s-1@r1", OWNER)


def test_newest_first_by_creation_time_then_run_key_then_id() -> None:
    old = copy("z-old", "2026-11-29T02:00:00Z")
    same_second = [
        copy("b", "2026-12-01T02:00:00Z", **{RUN_KEY_PROPERTY: "s-1@2026-12-01T01:59:58Z"}),
        copy("a", "2026-12-01T02:00:00Z", **{RUN_KEY_PROPERTY: "s-1@2026-12-01T01:59:59Z"}),
    ]
    offset = copy("y", "2026-11-30T04:00:00+02:00")  # 02:00 UTC, between the two days

    ordered = newest_first([old, *same_second, offset])

    assert [image.id for image in ordered] == ["a", "b", "y", "z-old"]


def test_the_newest_keep_copies_are_kept() -> None:
    copies = [copy(f"c{day}", f"2026-12-0{day}T02:00:00Z") for day in (1, 2, 3, 4)]

    kept, gone = split_by_age(copies, 2, "c4")

    assert [i.id for i in kept] == ["c4", "c3"]
    assert [i.id for i in gone] == ["c2", "c1"]


def test_this_runs_copy_is_kept_even_if_the_clock_calls_it_older() -> None:
    copies = [copy("mine", "2026-12-01T02:00:00Z"), copy("newer", "2026-12-02T02:00:00Z")]

    kept, gone = split_by_age(copies, 1, "mine")

    assert ([i.id for i in kept], [i.id for i in gone]) == (["mine"], ["newer"])


def test_a_dry_run_leaves_room_for_the_copy_it_would_make() -> None:
    copies = [copy(f"c{day}", f"2026-12-0{day}T02:00:00Z") for day in (1, 2, 3)]

    kept, gone = split_by_age(copies, 2, None)

    assert ([i.id for i in kept], [i.id for i in gone]) == (["c3"], ["c2", "c1"])


def test_fewer_copies_than_keep_deletes_nothing_and_keep_must_be_positive() -> None:
    assert split_by_age([copy("a")], 3, "a") == ([copy("a")], [])
    with pytest.raises(ValueError, match="at least 1"):
        split_by_age([copy("a")], 0, "a")


# -- the request --------------------------------------------------------------------------


def replicate(**fields: Any) -> ReplicateRequest:
    return ReplicateRequest(
        **{"source_region": "DFW", "target_region": "IAD", "server_id": "s-1", **fields}
    )


@pytest.mark.parametrize("keep", [0, -1, MAX_KEEP + 1])
def test_keep_out_of_bounds_is_refused(keep: int) -> None:
    with pytest.raises(ValidationError, match="keep"):
        replicate(keep=keep)


def test_the_form_bounds_keep() -> None:
    schema = ReplicateRequest.model_json_schema()["properties"]["keep"]
    assert (schema["minimum"], schema["maximum"], schema["default"]) == (1, MAX_KEEP, 7)
    assert "boot" not in ReplicateRequest.model_json_schema()["properties"]


@pytest.mark.parametrize(
    "fields",
    [{"server_id": None, "image_id": "i-1"}, {"server_id": None, "source": {"image_id": "i-1"}}],
)
def test_an_image_source_is_refused_naming_transfer_image(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="use transfer-image"):
        replicate(**fields)


def test_booting_is_refused() -> None:
    with pytest.raises(ValidationError, match="boots no server"):
        replicate(boot={"name": "x"})


def test_the_transfer_request_carries_the_run_key_and_the_servers_value() -> None:
    made = replicate(coordinating_property_key=KEY, keep=3, cleanup="keep")

    transfer = made.transfer_request("s-1@2026-12-01T02:00:00Z")

    assert transfer == TransferRequest(
        source_region="DFW",
        target_region="IAD",
        server_id="s-1",
        coordinating_property_key=KEY,
        coordinating_property_value="s-1",
        run_key="s-1@2026-12-01T02:00:00Z",
        cleanup="keep",
    )
    assert made.model_copy(update={"coordinating_property_value": "web"}).coordinating_value == (
        "web"
    )


def test_every_run_is_its_own_transfer_to_the_second_in_utc() -> None:
    started = datetime(2026, 12, 1, 3, 0, 7, 999, tzinfo=UTC).astimezone()
    assert replication_run_key("s-1", started) == "s-1@2026-12-01T03:00:07Z"


def test_the_summary_lists_what_was_kept_and_deleted() -> None:
    transfer = TransferResult(
        run_key="s-1@r3", source_region="DFW", target_region="IAD", source_image_id="snap-3",
        target_image_id="c3", coordinating_property={KEY: "s-1"},
    )  # fmt: skip
    result = ReplicationResult(
        server_id="s-1", source_region="DFW", target_region="IAD", keep=1, dry_run=True,
        transfer=transfer,
        kept=(KeptCopy(image_id="c3", run_key="s-1@r3", created_at="t3", current=True),),
        deleted=(Deletion(kind="target image", region="IAD", what="c1", run_key="s-1@r1"),),
    )  # fmt: skip

    rows = [(row["item"], row["value"]) for row in result.summary_rows()]

    assert ("kept", "c3 (t3, this run)") in rows
    assert ("would delete", "target image IAD c1 (run key s-1@r1)") in rows
    assert result.deleted_images == ("c1",)
