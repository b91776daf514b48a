"""The run summary a user reads (CLI table, Prefect table artifact)."""

from __future__ import annotations

import re

from imagehop.procedure.result import (
    ROW_WIDTH,
    SOURCE_GONE,
    BatchResult,
    DryRunPlan,
    ImageOutcome,
    PropertyReport,
    TransferResult,
    human_bytes,
)


def _result(source_image_id: str) -> TransferResult:
    return TransferResult(
        run_key="srv@2026-11-30",
        source_region="DFW",
        target_region="IAD",
        source_image_id=source_image_id,
        target_image_id="new-image",
        coordinating_property={"com.imagehop.image-of": "srv@2026-11-30"},
    )


def _row(result: TransferResult, item: str) -> str:
    return next(row["value"] for row in result.summary_rows() if row["item"] == item)


def test_summary_names_both_images_with_their_regions() -> None:
    result = _result("old-image")
    assert _row(result, "source image") == "DFW old-image"
    assert _row(result, "target image") == "IAD new-image"


def test_summary_says_when_a_rerun_no_longer_finds_the_source_image() -> None:
    """A re-run that finds the new image but not the source (deleted since) says so instead of
    showing a region with no id."""
    assert _row(_result(""), "source image") == f"DFW {SOURCE_GONE}"


def _values(rows: list[dict[str, str]]) -> list[str]:
    return [value for row in rows for value in row.values()]


def test_no_summary_value_renders_as_markdown_structure() -> None:
    """The UI renders table cells as markdown: a lone '-' would be a list bullet."""
    empty = _result("old-image").summary_rows()
    plan = DryRunPlan(
        run_key="k", source_region="DFW", target_region="IAD", source="image i", checks=(),
        steps=("export",), bytes=3 * 1024**3, bytes_exact=False, segments=3,
        segment_size=2 * 1024**2, estimated_seconds=60, assumptions=(),
    )  # fmt: skip
    batch = BatchResult(
        source_region="DFW",
        target_region="IAD",
        outcomes=(ImageOutcome(source="i-1", status="succeeded", target_image_id="t-1"),),
    )
    for rows in (empty, plan.summary_rows(), batch.summary_rows()):
        for value in _values(rows):
            assert value.strip() and not re.match(r"\s*([-+*#>]|\d+\.)(\s|$)", value), value
    assert _row(_result("old-image"), "export task") == "none"
    assert dict(row.values() for row in plan.summary_rows())["size"] == "at most 3.0 GiB"


def test_sizes_are_in_binary_units() -> None:
    assert [human_bytes(n) for n in (512, 5 * 1024**2 + 4321, 1536 * 1024**2, 2 * 1024**4)] == [
        "512 bytes",
        "5.0 MiB",
        "1.5 GiB",
        "2.0 TiB",
    ]
    result = _result("old-image").model_copy(
        update={"bytes_total": 6 * 1024**2, "bytes_copied": 4 * 1024**2}
    )
    assert _row(result, "data copied") == "4.0 MiB of 6.0 MiB"


def test_long_lists_are_split_over_rows_and_never_cut() -> None:
    copied = tuple(f"org.openstack__1__property_{n}" for n in range(6))
    remaining = ("DFW: " + "x" * 90, "IAD: " + "y" * 90)
    result = _result("old-image").model_copy(
        update={"properties": PropertyReport(copied=copied), "remaining": remaining}
    )
    rows = [row["value"] for row in result.summary_rows() if row["item"] == "properties copied"]
    assert len(rows) > 1 and all(len(value) <= ROW_WIDTH for value in rows)
    assert ", ".join(rows).split(", ") == list(copied)
    kept = [row["value"] for row in result.summary_rows() if row["item"] == "remaining"]
    assert kept == list(remaining)
