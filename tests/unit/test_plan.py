"""The segment plan's invariants, over a table of hand-picked layouts and a seeded random sweep."""

from __future__ import annotations

import pickle
import random

import pytest

from imagehop.errors import PreflightError
from imagehop.object_store import ClusterLimits
from imagehop.transfer.plan import TransferPlan, cut_points, plan_transfer, segment_size_for_streams
from imagehop.transfer.source_layout import SourceLayout, SourceSegment

KiB, MiB, GiB = 1024, 1024**2, 1024**3
CLOUD_FILES = ClusterLimits(max_file_size=5 * GiB, max_manifest_segments=1000, min_segment_size=MiB)


def dlo(*sizes: int, etags: bool = True) -> SourceLayout:
    segments = tuple(
        SourceSegment(
            container="exports",
            name=f"img.vhd-{n:05d}",
            length=size,
            etag=f"{n:032x}" if etags else None,
        )
        for n, size in enumerate(sizes, 1)
    )
    return SourceLayout(
        kind="dlo",
        container="exports",
        name="img.vhd",
        size=sum(sizes),
        etag="f" * 32,
        segments=segments,
    )


def plain(size: int) -> SourceLayout:
    segments = (SourceSegment(container="c", name="o", length=size, etag="a" * 32),)
    return SourceLayout(
        kind="plain",
        container="c",
        name="o",
        size=size,
        etag="a" * 32,
        segments=segments if size else (),
    )


def ranged_slo() -> SourceLayout:
    segments = (
        SourceSegment(container="p", name="s0", length=3 * MiB, etag="0" * 32),
        SourceSegment(
            container="p", name="s1", offset=MiB, length=2 * MiB, etag="1" * 32, whole=False
        ),
        SourceSegment(container="p", name="nested", length=5 * MiB, etag=None),
        SourceSegment(container="p", name="s3", length=100, etag="3" * 32),
    )
    return SourceLayout(
        kind="slo", container="c", name="o", size=10 * MiB + 100, etag="e" * 32, segments=segments
    )


def assert_invariants(plan: TransferPlan, limits: ClusterLimits) -> None:
    """Lengths add up, ranges are contiguous, none is empty, count and sizes within the limits,
    every piece reads the right source bytes, expected MD5s only where they are certain."""
    specs = plan.segments
    source = plan.source
    assert sum(s.length for s in specs) == source.size
    assert (len(specs) == 0) == (source.size == 0)
    assert len(specs) <= limits.max_manifest_segments
    assert [s.index for s in specs] == list(range(len(specs)))
    assert len({s.name for s in specs}) == len(specs)
    assert all(s.name.startswith(plan.segment_prefix) for s in specs)
    position = 0
    for spec in specs:
        assert spec.offset == position
        assert 0 < spec.length <= min(plan.segment_size, limits.max_file_size)
        assert sum(p.length for p in spec.pieces) == spec.length
        position += spec.length
    for spec in specs[:-1]:
        assert spec.length >= limits.min_segment_size
    assert_pieces_follow_the_source(plan)


def assert_pieces_follow_the_source(plan: TransferPlan) -> None:
    """Concatenating every piece of every segment gives exactly the source's ranges in order,
    and a segment expects an MD5 exactly when it is one whole source object with a known MD5."""
    pieces = [(p.container, p.name, p.offset, p.length) for s in plan.segments for p in s.pieces]
    source = [(s.container, s.name, s.offset, s.length) for s in plan.source.segments if s.length]
    assert _merge(pieces) == _merge(source)
    whole_md5s = {
        (s.container, s.name, s.offset, s.length): s.etag
        for s in plan.source.segments
        if s.whole and s.etag
    }
    for spec in plan.segments:
        only = spec.pieces[0] if len(spec.pieces) == 1 else None
        key = (only.container, only.name, only.offset, only.length) if only else None
        assert spec.expected_md5 == whole_md5s.get(key)  # type: ignore[arg-type]


def _merge(ranges: list[tuple[str, str, int, int]]) -> list[tuple[str, str, int, int]]:
    """Join adjacent ranges of the same object: the source as a sequence of byte runs."""
    merged: list[tuple[str, str, int, int]] = []
    for container, name, offset, length in ranges:
        if merged and merged[-1][:2] == (container, name) and sum(merged[-1][2:]) == offset:
            merged[-1] = (container, name, merged[-1][2], merged[-1][3] + length)
        else:
            merged.append((container, name, offset, length))
    return merged


CASES = {
    "empty plain object": (plain(0), MiB, CLOUD_FILES),
    "one byte": (plain(1), MiB, CLOUD_FILES),
    "exactly one segment": (plain(256 * MiB), 256 * MiB, CLOUD_FILES),
    "one byte over a segment": (plain(256 * MiB + 1), 256 * MiB, CLOUD_FILES),
    "plain, many segments": (plain(10 * 256 * MiB - 1), 256 * MiB, CLOUD_FILES),
    "export with uneven last": (dlo(*[100 * MiB] * 7, 3 * MiB + 17), 256 * MiB, CLOUD_FILES),
    "export segments over the segment size": (
        dlo(1000 * MiB, 1000 * MiB, 5),
        256 * MiB,
        CLOUD_FILES,
    ),
    "export segments over the object cap": (dlo(6 * GiB, 6 * GiB + 3), 8 * GiB, CLOUD_FILES),
    "tiny segments are merged": (dlo(*[300 * KiB] * 20), 256 * MiB, CLOUD_FILES),
    "tiny and huge mixed": (dlo(5, 7 * MiB, 1, 1, 3 * MiB, 2, 9 * MiB), 2 * MiB, CLOUD_FILES),
    "zero-byte segments are skipped": (dlo(MiB, 0, MiB, 0, 10), MiB, CLOUD_FILES),
    "unknown md5s": (dlo(MiB, MiB, 5, etags=False), MiB, CLOUD_FILES),
    "slo with range and nested slo": (ranged_slo(), 2 * MiB, CLOUD_FILES),
    "segment size under the minimum": (plain(10 * MiB), 1000, CLOUD_FILES),
    "2000 export segments, limit 1000": (dlo(*[MiB] * 2000), 256 * MiB, CLOUD_FILES),
    "160 GB at 100 MiB": (plain(160 * 10**9), 100 * MiB, CLOUD_FILES),
    "small cluster limits": (
        dlo(*[3 * MiB] * 9, 5),
        MiB,
        ClusterLimits(max_file_size=8 * MiB, max_manifest_segments=7, min_segment_size=MiB),
    ),
    "min equals max": (
        dlo(MiB + 1, MiB + 1, MiB + 1),
        MiB,
        ClusterLimits(max_file_size=MiB, max_manifest_segments=100, min_segment_size=MiB),
    ),
}


@pytest.mark.parametrize(("layout", "segment_size", "limits"), CASES.values(), ids=CASES.keys())
def test_plan_invariants(layout: SourceLayout, segment_size: int, limits: ClusterLimits) -> None:
    plan = plan_transfer(layout, limits, "images", "img.vhd", segment_size)
    assert_invariants(plan, limits)


def test_random_layouts_keep_the_invariants() -> None:
    """A seeded sweep of 400 random layouts and limits (hypothesis is not installed)."""
    rng = random.Random(20261127)
    for _ in range(400):
        floor = rng.choice([1, 1000, MiB])
        cap = rng.choice([floor, 2 * floor, 8 * MiB, 5 * GiB])
        limits = ClusterLimits(
            max_file_size=cap,
            max_manifest_segments=rng.choice([2, 3, 10, 1000]),
            min_segment_size=floor,
        )
        sizes = [
            rng.choice([0, 1, 999, MiB, 3 * MiB + 7, rng.randrange(20 * MiB)])
            for _ in range(rng.randrange(1, 12))
        ]
        layout = dlo(*sizes, etags=rng.random() < 0.8)
        try:
            plan = plan_transfer(layout, limits, "t", "o", rng.choice([1, MiB, 4 * MiB, 64 * MiB]))
        except PreflightError:
            assert layout.size > limits.max_file_size * (limits.max_manifest_segments - 1)
            continue
        assert_invariants(plan, limits)


def test_segments_map_one_to_one_onto_export_segments_that_fit() -> None:
    """Then each target segment's ETag must equal the listed MD5: end-to-end verification."""
    layout = dlo(*[100 * MiB] * 7, 3 * MiB + 17)
    plan = plan_transfer(layout, CLOUD_FILES, "images", "img.vhd", 256 * MiB)
    assert [s.length for s in plan.segments] == [s.length for s in layout.segments]
    assert [s.expected_md5 for s in plan.segments] == [s.etag for s in layout.segments]


def test_big_segments_are_split_into_balanced_parts() -> None:
    plan = plan_transfer(dlo(1000 * MiB, 5), CLOUD_FILES, "images", "img.vhd", 256 * MiB)
    assert [s.length for s in plan.segments] == [250 * MiB] * 4 + [5]
    assert all(s.expected_md5 is None for s in plan.segments[:4])


def test_segment_size_grows_when_the_manifest_limit_would_be_exceeded() -> None:
    plan = plan_transfer(plain(500 * GiB), CLOUD_FILES, "images", "img.vhd", 256 * MiB)
    assert len(plan.segments) <= 1000
    assert plan.segment_size > 256 * MiB


def test_an_object_too_big_for_the_target_is_refused() -> None:
    with pytest.raises(PreflightError, match="do not fit"):
        plan_transfer(plain(5 * GiB * 1000 + 1), CLOUD_FILES, "images", "img.vhd", 256 * MiB)


def test_segment_size_is_clamped_to_the_cap() -> None:
    limits = ClusterLimits(max_file_size=8 * MiB, min_segment_size=MiB)
    plan = plan_transfer(plain(20 * MiB), limits, "images", "img.vhd", GiB)
    assert plan.segment_size == 8 * MiB


def test_names_derive_from_the_source_identity() -> None:
    """Same source and settings: same names (a re-run finds its segments); other content: other
    names."""
    first = plan_transfer(plain(3 * MiB), CLOUD_FILES, "images", "img.vhd", MiB)
    again = plan_transfer(plain(3 * MiB), CLOUD_FILES, "images", "img.vhd", MiB)
    other = plan_transfer(
        plain(3 * MiB).model_copy(update={"etag": "b" * 32}), CLOUD_FILES, "images", "img.vhd", MiB
    )
    assert [s.name for s in first.segments] == [s.name for s in again.segments]
    assert not {s.name for s in first.segments} & {s.name for s in other.segments}
    assert first.segments[2].name == f"img.vhd/imagehop/{'a' * 32}/{3 * MiB}/{MiB}/00000002"
    assert first.segments_container == "images_segments"


def test_source_keys_differ_for_different_ranges() -> None:
    plan = plan_transfer(plain(3 * MiB), CLOUD_FILES, "images", "img.vhd", MiB)
    assert len({s.source_key for s in plan.segments}) == 3


def test_plan_round_trips_through_json_and_pickle() -> None:
    plan = plan_transfer(ranged_slo(), CLOUD_FILES, "images", "img.vhd", 2 * MiB)
    assert TransferPlan.from_json(plan.to_json()) == plan
    assert pickle.loads(pickle.dumps(plan)) == plan


@pytest.mark.parametrize(
    ("boundaries", "total", "size", "floor", "ends"),
    [
        ([10], 10, 4, 1, [4, 7, 10]),  # balanced 4+3+3, not 4+4+2
        ([3, 6, 9, 10], 10, 3, 2, [3, 6, 9, 10]),  # the short last one is allowed
        ([1, 2, 3, 10], 10, 5, 2, [2, 6, 10]),  # merge 1+1, then 8 bytes as 4+4
        ([], 0, 5, 1, []),
    ],
)
def test_cut_points(
    boundaries: list[int], total: int, size: int, floor: int, ends: list[int]
) -> None:
    assert cut_points(boundaries, total, size, floor) == ends


def test_few_large_source_segments_are_split_to_feed_the_streams() -> None:
    """16 x 64 MiB for 16 streams: 32 MiB target segments (32 of them, the floor); 1000
    segments already feed them; never above the configured size or below the floor."""
    sixteen = dlo(*[64 * MiB] * 16)
    size = segment_size_for_streams(sixteen, 256 * MiB, streams=16)
    assert size == 32 * MiB
    plan = plan_transfer(sixteen, CLOUD_FILES, "t", "img.vhd", size)
    assert len(plan.segments) == 32 and not any(s.expected_md5 for s in plan.segments)
    assert segment_size_for_streams(sixteen, 256 * MiB, streams=2) == 256 * MiB
    assert segment_size_for_streams(dlo(*[MiB] * 1000), 256 * MiB, streams=16) == 256 * MiB
    assert segment_size_for_streams(dlo(4 * GiB), 256 * MiB, streams=8) == -(-4 * GiB // 24)
    assert segment_size_for_streams(dlo(4 * GiB), 100 * MiB, streams=8) == 100 * MiB
