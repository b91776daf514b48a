"""The run summary a user reads (CLI table, Prefect table artifact)."""

from __future__ import annotations

from imagehop.procedure.result import SOURCE_GONE, TransferResult


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
