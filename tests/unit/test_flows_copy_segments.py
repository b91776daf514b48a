"""How the copy is cut into segment tasks (pure functions, no server)."""

from __future__ import annotations

import pytest

from imagehop.flows.copy_segments import segment_plan, shares
from imagehop.object_store import ClusterLimits
from imagehop.transfer import TransferPlan, plan_transfer
from imagehop.transfer.layout import SourceLayout, SourceSegment

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("count", "tasks", "sizes"),
    [(5, 128, [1] * 5), (10, 4, [3, 3, 3, 1]), (1000, 128, [8] * 125), (0, 128, [])],
)
def test_shares_are_runs_of_consecutive_segments(count: int, tasks: int, sizes: list[int]) -> None:
    indexes = list(range(100, 100 + count))
    cut = shares(indexes, tasks)
    assert [len(share) for share in cut] == sizes
    assert [index for share in cut for index in share] == indexes


def plan(segments: int) -> TransferPlan:
    parts = tuple(
        SourceSegment(container="exports", name=f"i.vhd-{n:05d}", length=MiB, etag=f"{n:032x}")
        for n in range(1, segments + 1)
    )
    layout = SourceLayout(
        kind="dlo", container="exports", name="i.vhd", size=segments * MiB, etag="e" * 32,
        segments=parts,
    )  # fmt: skip
    return plan_transfer(layout, ClusterLimits(max_file_size=2 * MiB), "imports", "i.vhd", MiB)


def test_a_segment_task_gets_only_its_segments() -> None:
    whole = plan(6)
    part = segment_plan(whole, [2, 3])
    assert [spec.index for spec in part.segments] == [2, 3]
    assert part.segments == whole.segments[2:4]
    assert part.source.segments == () and part.size == whole.size
    assert part.segments_container == whole.segments_container
    assert len(part.model_dump_json()) < len(whole.model_dump_json()) / 2
