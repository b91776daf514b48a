"""A Glance image as the engine's source: which images can be copied (and the refusals that
name why), how the planner cuts one into target segments, the segment names a re-run finds
again, and the source kind a plan needs (refused before any side effect)."""

from __future__ import annotations

import threading

import pytest

from imagehop import errors
from imagehop.glance import GlanceImages
from imagehop.image import Image
from imagehop.object_store import ClusterLimits, ObjectStore
from imagehop.transfer.glance_source import glance_layout
from imagehop.transfer.plan import TransferPlan, plan_transfer
from imagehop.transfer.ranges import GlanceRanges, SwiftRanges, range_source
from tests.support import scripted_bodies as bodies
from tests.support.scripted_server import FixedTokens

MiB, GiB = 1024**2, 1024**3
CHECKSUM = "c" * 32
CLOUD = ClusterLimits(max_file_size=5 * GiB, max_manifest_segments=1000, min_segment_size=MiB)


def image(**values: object) -> Image:
    record = {"checksum": CHECKSUM, "size": 10 * MiB + 7, **values}
    return Image.from_api(bodies.image("img-1", **record))


def test_an_active_image_is_one_whole_segment_keyed_on_its_checksum() -> None:
    layout = glance_layout(image())
    assert (layout.kind, layout.name, layout.size, layout.etag) == (
        "glance",
        "img-1",
        10 * MiB + 7,
        CHECKSUM,
    )
    (segment,) = layout.segments
    assert (segment.name, segment.length, segment.etag, segment.whole) == (
        "img-1",
        10 * MiB + 7,
        CHECKSUM,
        True,
    )


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"status": "queued"}, "'queued': only an active image"),
        ({"status": "deactivated"}, "'deactivated'"),
        ({"size": None}, "has no size"),
        ({"checksum": None}, "has no checksum"),
    ],
)
def test_images_that_cannot_be_copied_are_refused_naming_why(
    values: dict[str, object], says: str
) -> None:
    with pytest.raises(errors.ImageNotTransferableError, match=says):
        glance_layout(image(**values))


def test_an_empty_image_has_no_segments_and_becomes_an_empty_object() -> None:
    plan = plan_transfer(glance_layout(image(size=0)), CLOUD, "c", "o", 4 * MiB)
    assert plan.segments == () and plan.size == 0


def test_a_large_image_is_cut_into_balanced_ranges_checked_on_the_way() -> None:
    plan = plan_transfer(glance_layout(image()), CLOUD, "c", "img.raw", 4 * MiB)
    assert [spec.length for spec in plan.segments] == [3_495_256, 3_495_256, 3_495_255]
    offsets = [spec.offset for spec in plan.segments]
    assert offsets == sorted(offsets) and offsets[0] == 0
    for spec in plan.segments:
        (piece,) = spec.pieces
        assert (piece.name, piece.offset, piece.length) == ("img-1", spec.offset, spec.length)
        assert piece.source_etag == CHECKSUM  # the identity each ranged GET is checked against
        assert spec.expected_md5 is None  # a range's MD5 is not known in advance


def test_an_image_within_one_segment_is_verified_by_the_target_against_its_checksum() -> None:
    plan = plan_transfer(glance_layout(image(size=3 * MiB)), CLOUD, "c", "o", 4 * MiB)
    (spec,) = plan.segments
    assert spec.expected_md5 == CHECKSUM


def test_a_rerun_plans_the_same_names_and_a_changed_image_other_ones() -> None:
    first = plan_transfer(glance_layout(image()), CLOUD, "c", "o", 4 * MiB)
    again = plan_transfer(glance_layout(image()), CLOUD, "c", "o", 4 * MiB)
    changed = plan_transfer(glance_layout(image(checksum="d" * 32)), CLOUD, "c", "o", 4 * MiB)
    assert [s.name for s in first.segments] == [s.name for s in again.segments]
    assert {s.name for s in first.segments}.isdisjoint(s.name for s in changed.segments)
    assert TransferPlan.from_json(first.to_json()) == first  # a task result survives JSON


def test_the_source_must_be_of_the_plans_kind() -> None:
    store = ObjectStore("http://127.0.0.1:9/v1/AUTH_x", FixedTokens())
    glance = GlanceImages("http://127.0.0.1:9/v2", FixedTokens(), bodies.make_settings())
    assert isinstance(range_source(store, "dlo"), SwiftRanges)
    assert isinstance(range_source(glance, "glance"), GlanceRanges)
    with pytest.raises(errors.ConfigurationError, match="pass the source region's GlanceImages"):
        range_source(store, "glance")
    with pytest.raises(errors.ConfigurationError, match="pass its ObjectStore"):
        range_source(glance, "slo")


def test_each_worker_thread_reads_through_its_own_client() -> None:
    glance = GlanceImages("http://127.0.0.1:9/v2", FixedTokens(), bodies.make_settings())
    ranges = GlanceRanges(glance)
    seen: list[GlanceImages] = []
    threads = [threading.Thread(target=lambda: seen.append(ranges._client())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in seen}) == 3 and glance not in seen
    assert all(client.base_url == glance.base_url for client in seen)
    ranges.close()
