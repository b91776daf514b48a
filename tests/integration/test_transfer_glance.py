"""The engine with a Glance image as its source: the local cloud's IAD switched to Glance
(option ``glance_regions``), an image with real bytes there, read by ranged
``GET /v2/images/{id}/file`` into DFW's real Swift as an SLO of 1 MiB segments, verified,
interrupted and resumed, with a changed image and bytes corrupted in flight caught."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from imagehop.errors import ConfigurationError, IntegrityError, NotFoundError, ServerError
from imagehop.glance import GlanceImages
from imagehop.object_store import OWNED_CONTAINER_META, VERIFIED_META, ObjectStore
from imagehop.transfer import copy_plan, find_finished_segments, plan_transfer, verify_target
from imagehop.transfer.glance_source import discover_glance_source
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.options import MiB
from tests.support import scripted_bodies as bodies
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.minted_tokens import MintedTokens

pytestmark = pytest.mark.cloud

GLANCE_REGION, TARGET_REGION = "IAD", "DFW"
DISK_BYTES = 3 * MiB + 4321  # an image of a few 1 MiB segments with an uneven last one
FAST: dict[str, Any] = {"chunk_size": 256 * 1024, "backoff": 0.01}


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def glance_region(local_cloud: LocalCloud) -> Iterator[str]:
    with local_cloud.admin.temporary_options(glance_regions=GLANCE_REGION):
        yield GLANCE_REGION


def make_image(cloud: LocalCloud, region: str, disk_bytes: int) -> dict[str, Any]:
    """An active image with bytes in the Glance region, and those bytes (read once)."""
    made = cloud.admin.create_image(region, cloud.main.tenant_id, disk_bytes=disk_bytes)
    session = cloud.session()
    view: dict[str, Any] = session.images(region, "GET", f"/images/{made['id']}").json()
    view["bytes"] = session.images(region, "GET", f"/images/{made['id']}/file").content
    assert len(view["bytes"]) == view["size"]
    return view


@pytest.fixture(scope="module")
def image(local_cloud: LocalCloud, glance_region: str) -> dict[str, Any]:
    made = make_image(local_cloud, glance_region, DISK_BYTES)
    assert made["size"] > 3 * MiB
    return made


@pytest.fixture(scope="module")
def small_image(local_cloud: LocalCloud, glance_region: str) -> dict[str, Any]:
    """A raw image uploaded by Glance's own API (the cloud's own images are dynamic VHDs of
    at least one 2 MiB block): one segment in the target (2 MiB object cap)."""
    session = local_cloud.session()
    body = {"name": "small raw", "disk_format": "raw", "container_format": "bare"}
    made = session.images(glance_region, "POST", "/images", json=body)
    made.raise_for_status()
    image_id = made.json()["id"]
    data = hashlib.sha256(b"small").digest() * (300_000 // 32)
    headers = {"Content-Type": "application/octet-stream"}
    session.images(
        glance_region, "PUT", f"/images/{image_id}/file", data=data, headers=headers
    ).raise_for_status()
    view: dict[str, Any] = session.images(glance_region, "GET", f"/images/{image_id}").json()
    assert view["status"] == "active" and view["size"] == len(data) < 2 * MiB
    view["bytes"] = data
    return view


def glance_client(cloud: LocalCloud, url: str | None = None) -> GlanceImages:
    return GlanceImages(
        url or cloud.images_url(GLANCE_REGION), MintedTokens(cloud), bodies.make_settings()
    )


def target_store(cloud: LocalCloud) -> ObjectStore:
    tenant = cloud.main.tenant_id
    return ObjectStore(cloud.storage_url(TARGET_REGION, tenant), MintedTokens(cloud), region="DFW")


def fresh_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def read_target(store: ObjectStore, container: str, name: str, size: int) -> bytes:
    reader = store.open_range(container, name, 0, size)
    data = b""
    while chunk := reader.read(MiB):
        data += chunk
    return data


def test_a_glance_image_streams_into_target_segments_and_verifies(
    local_cloud: LocalCloud, image: dict[str, Any]
) -> None:
    images = glance_client(local_cloud)
    target = target_store(local_cloud)
    container = fresh_name("glance-copy")

    layout = discover_glance_source(images, image["id"])
    plan = plan_transfer(layout, target.limits(), container, f"{image['id']}.raw", MiB)
    report = copy_plan(images, target, plan, concurrency=3, **FAST)

    assert layout.kind == "glance" and layout.etag == image["checksum"]
    assert len(plan.segments) == -(-image["size"] // MiB) > 1  # 1 MiB ranges, the last short
    assert all(spec.expected_md5 is None for spec in plan.segments)
    assert report.bytes_copied == image["size"] and report.segments_skipped == 0
    assert read_target(target, container, plan.target_object, image["size"]) == image["bytes"]
    assert hashlib.md5(image["bytes"]).hexdigest() == image["checksum"]
    verify_target(target, plan)
    for spec in plan.segments:  # each split range carries the engine's verified marker
        info = target.head_object(plan.segments_container, spec.name)
        assert info.metadata[VERIFIED_META] == f"{spec.source_key} {info.etag}"
    assert OWNED_CONTAINER_META in target.container_metadata(container)


def test_an_image_in_one_segment_is_put_with_its_checksum_as_etag(
    local_cloud: LocalCloud, small_image: dict[str, Any]
) -> None:
    images = glance_client(local_cloud)
    target = target_store(local_cloud)
    container = fresh_name("glance-one")
    layout = discover_glance_source(images, small_image["id"])
    plan = plan_transfer(layout, target.limits(), container, "one", 2 * MiB)

    copy_plan(images, target, plan, **FAST)

    assert len(plan.segments) == 1 and plan.segments[0].expected_md5 == small_image["checksum"]
    stored = target.head_object(plan.segments_container, plan.segments[0].name)
    assert stored.etag == small_image["checksum"]  # Swift checked the MD5 on arrival
    assert VERIFIED_META not in stored.metadata  # nothing to mark: the ETag is the proof
    got = read_target(target, container, "one", small_image["size"])
    assert got == small_image["bytes"]


def test_an_interrupted_copy_resumes_from_the_verified_segments(
    local_cloud: LocalCloud, image: dict[str, Any]
) -> None:
    images = glance_client(local_cloud)
    target = target_store(local_cloud)
    container = fresh_name("glance-resume")
    plan = plan_transfer(
        discover_glance_source(images, image["id"]), target.limits(), container, "img", MiB
    )

    def stop_after_two(_bytes: int, _total: int, segments: int, _count: int) -> None:
        if segments >= 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        copy_plan(images, target, plan, concurrency=1, progress=stop_after_two, **FAST)
    with pytest.raises(NotFoundError):
        target.head_object(container, "img")  # nothing usable before every segment is in
    assert len(find_finished_segments(target, plan)) == 2

    report = copy_plan(images, target, plan, concurrency=2, **FAST)

    assert report.segments_skipped == 2
    assert report.bytes_copied == image["size"] - 2 * MiB
    assert read_target(target, container, "img", image["size"]) == image["bytes"]


def test_an_image_changed_since_the_plan_is_refused_and_nothing_is_stored(
    local_cloud: LocalCloud, image: dict[str, Any]
) -> None:
    images = glance_client(local_cloud)
    target = target_store(local_cloud)
    container = fresh_name("glance-changed")
    layout = discover_glance_source(images, image["id"])
    other = "0123456789abcdef" * 2  # the checksum the planned image had
    stale = layout.model_copy(
        update={
            "etag": other,
            "segments": tuple(s.model_copy(update={"etag": other}) for s in layout.segments),
        }
    )
    plan = plan_transfer(stale, target.limits(), container, "img", MiB)

    with pytest.raises(IntegrityError, match="changed since it was planned"):
        copy_plan(images, target, plan, concurrency=2, **FAST)
    assert find_finished_segments(target, plan) == []
    with pytest.raises(NotFoundError):
        target.head_object(container, "img")


def test_a_connection_reset_mid_range_is_read_again_and_bytes_flipped_in_flight_are_caught(
    local_cloud: LocalCloud, image: dict[str, Any], small_image: dict[str, Any]
) -> None:
    """A reset is retried by the segment layer from a new ranged GET; a flipped byte of the
    whole-image segment (PUT with the checksum as ETag) is refused by Swift, not stored."""
    target = target_store(local_cloud)
    images_url = local_cloud.images_url(GLANCE_REGION)
    with FaultProxy(images_url) as proxy:
        images = glance_client(local_cloud, proxy.storage_url(images_url))
        layout = discover_glance_source(images, image["id"])
        container = fresh_name("glance-faults")
        plan = plan_transfer(layout, target.limits(), container, "img", MiB)
        proxy.add(Fault("GET", r"/file$", reset_after=300_000))
        report = copy_plan(images, target, plan, concurrency=1, **FAST)
        assert read_target(target, container, "img", image["size"]) == image["bytes"]
        assert max(result.attempts for result in report.results) == 2
        assert proxy.count("GET", r"/file$") == len(plan.segments) + 1

        small = discover_glance_source(images, small_image["id"])
        whole = plan_transfer(small, target.limits(), fresh_name("glance-flip"), "img", 2 * MiB)
        assert whole.segments[0].expected_md5 == small_image["checksum"]
        proxy.add(Fault("GET", r"/file$", flip_byte_at=1000))
        with pytest.raises(IntegrityError):
            copy_plan(images, target, whole, concurrency=1, **FAST)
        assert find_finished_segments(target, whole) == []


def test_a_glance_plan_needs_a_glance_source_before_anything_is_created(
    local_cloud: LocalCloud, image: dict[str, Any]
) -> None:
    images = glance_client(local_cloud)
    target = target_store(local_cloud)
    container = fresh_name("glance-wrong")
    plan = plan_transfer(
        discover_glance_source(images, image["id"]), target.limits(), container, "img", MiB
    )
    with pytest.raises(ConfigurationError, match="GlanceImages"):
        copy_plan(target, target, plan)
    with pytest.raises(NotFoundError):
        target.container_metadata(container)


def test_a_glance_source_answering_503_is_retried_by_the_segment_layer_then_raised(
    local_cloud: LocalCloud, image: dict[str, Any]
) -> None:
    images_url = local_cloud.images_url(GLANCE_REGION)
    target = target_store(local_cloud)
    with FaultProxy(images_url) as proxy:
        images = glance_client(local_cloud, proxy.storage_url(images_url))
        plan = plan_transfer(
            discover_glance_source(images, image["id"]),
            target.limits(),
            fresh_name("glance-down"),
            "img",
            MiB,
        )
        proxy.add(Fault("GET", r"/file$", status=503, times=100))
        with pytest.raises(ServerError, match="/file -> 503") as caught:
            copy_plan(images, target, plan, concurrency=1, attempts=3, **FAST)
        assert caught.value.exhausted_by == "segment"  # no layer above retries it again
        assert proxy.count("GET", r"/file$") == 3
