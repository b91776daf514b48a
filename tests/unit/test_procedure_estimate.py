"""The dry run's numbers: segments within the target's limits, durations with assumptions."""

from __future__ import annotations

import pytest

from imagehop.object_store import ClusterLimits
from imagehop.procedure.estimate import (
    POLL_SECONDS,
    effective_segment_size,
    estimate_seconds,
    estimate_segments,
)

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.mark.parametrize(
    ("nbytes", "segment", "cap", "expected"),
    [
        (10 * GiB, 256 * MiB, 5 * GiB, 40),
        (10 * GiB, 8 * GiB, 5 * GiB, 2),  # clamped to the object cap
        (1, 256 * MiB, 5 * GiB, 1),
        (0, 256 * MiB, 5 * GiB, 1),
    ],
)
def test_segments(nbytes: int, segment: int, cap: int, expected: int) -> None:
    assert estimate_segments(nbytes, segment, ClusterLimits(max_file_size=cap)) == expected


def test_segment_count_stays_within_the_manifest_limit() -> None:
    limits = ClusterLimits(max_file_size=MiB, max_manifest_segments=10)
    assert estimate_segments(100 * MiB, MiB, limits) == 10
    assert effective_segment_size(1, limits) == limits.min_segment_size


def test_duration_grows_with_size_and_shrinks_with_streams() -> None:
    small, large = (
        estimate_seconds(GiB, 8, False, False),
        estimate_seconds(40 * GiB, 8, False, False),
    )
    assert small < large
    assert estimate_seconds(40 * GiB, 1, False, False) > large
    assert estimate_seconds(GiB, 8, True, True) > small
    assert small >= 4 * POLL_SECONDS  # export and import are each seen through >= 2 polls
