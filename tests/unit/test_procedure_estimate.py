"""The dry run's numbers: segments within the target's limits, durations with assumptions."""

from __future__ import annotations

import pytest

from imagehop.image import Image
from imagehop.object_store import ClusterLimits
from imagehop.procedure.estimate import (
    POLL_SECONDS,
    dry_run_plan,
    effective_segment_size,
    estimate_seconds,
    estimate_segments,
)
from imagehop.procedure.preflight import PreflightReport, SourceSummary
from imagehop.procedure.request import TransferRequest, transfer_identity
from imagehop.procedure.result import DryRunPlan
from imagehop.procedure.transport import SideOffer, choose_transport

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


# -- the dry run names the transport and why ---------------------------------------------------

LEGACY = SideOffer(region="DFW", import_methods=None)
FLEX = SideOffer(
    region="SJC3", import_methods=frozenset({"web-download", "glance-direct"}), tempurl=True
)
GLANCE_A = SideOffer(
    region="RegionA",
    import_methods=frozenset({"web-download"}),
    disk_format="qcow2",
    container_format="bare",
)


def plan_for(source: SideOffer, target: SideOffer, shared: bool = False) -> DryRunPlan:
    request = TransferRequest(
        source_region=source.region, target_region=target.region, image_id="img-1"
    )
    identity = transfer_identity(request, 0.0)
    image = Image(id="img-1", name="web", status="active", owner="t1", size=GiB)
    report = PreflightReport(
        source_tenant="t1",
        target_tenant="t1",
        source=SourceSummary(
            image=image, expected_bytes=GiB, bytes_exact=True, min_disk=1, min_ram=0
        ),
        transport=choose_transport(source, target, shared_identity=shared),
        checks=("all good",),
    )
    return dry_run_plan(request, identity, report, ClusterLimits(), 256 * MiB, 8)


def rows(plan: DryRunPlan) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in plan.summary_rows():
        found.setdefault(row["item"], []).append(row["value"])
    return found


def test_rackspace_plan_keeps_todays_steps_and_names_its_transport() -> None:
    plan = plan_for(LEGACY, SideOffer(region="IAD", import_methods=None))
    shown = rows(plan)
    assert shown["transport"] == ["rackspace-tasks"]
    assert shown["why this transport"][0].startswith("DFW and IAD serve no /v2/info/import")
    steps = list(plan.steps)
    assert steps[1].startswith("export it to DFW imagehop-exports/img-1.vhd")
    assert steps[3] == "import imagehop-imports/img-1.vhd in IAD"
    assert steps[-1] == "delete the exported VHD and the staged copy"
    assert "to boot it" not in shown


def test_rackspace_to_flex_plan_exports_streams_imports_and_says_what_booting_needs() -> None:
    plan = plan_for(LEGACY, FLEX)
    shown = rows(plan)
    assert shown["transport"] == ["stream"]
    assert plan.steps[2] == "copy the VHD to SJC3 as an SLO (segments in imagehop-imports)"
    assert plan.steps[3] == (
        "create an image in SJC3 (disk_format vhd, container_format bare); import "
        "imagehop-imports/img-1.vhd by web-download of a temporary URL; wait until it is active"
    )
    assert "a Rackspace export has no image hash to compare" in plan.steps[4]
    assert len(shown["to boot it"]) == 2
    assert "does not know whether SJC3's compute boots VHD images" in shown["to boot it"][1]


def test_generic_stream_plan_reads_image_data_and_compares_hashes() -> None:
    plan = plan_for(GLANCE_A, FLEX)
    assert plan.transport == "stream"
    assert not any(step.startswith("export") for step in plan.steps)
    assert plan.steps[1] == (
        "copy its image data to SJC3 as an SLO imagehop-imports/img-1.qcow2 (ranged reads in "
        "parallel, segments in imagehop-imports)"  # beside the manifest: a temporary URL's reach
    )
    assert plan.steps[3].startswith("compare its checksum and os_hash_value with the source's")
    assert plan.steps[-1] == "delete the staged copy (the SLO and its segments imagehop wrote)"
    # no export task to wait for: quicker than the same bytes through Rackspace's tasks
    assert plan.estimated_seconds < plan_for(LEGACY, FLEX).estimated_seconds


def test_glance_download_plan_copies_nothing_itself() -> None:
    target = SideOffer(region="RegionB", import_methods=frozenset({"glance-download"}))
    plan = plan_for(GLANCE_A, target, shared=True)
    assert plan.transport == "glance-download"
    assert plan.steps[1] == (
        "create an image in REGIONB (disk_format qcow2, container_format bare); import it by "
        "glance-download from REGIONA; wait until it is active"
    )
    assert not any("SLO" in step for step in plan.steps)
    assert plan.steps[-1] == "nothing to delete (glance-download stages nothing imagehop wrote)"
