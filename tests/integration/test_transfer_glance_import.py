"""The streaming transport end to end on the local cloud, both regions upstream Glance: the
engine streams an IAD image into DFW's Swift (segments beside the manifest), a temporary URL of
that SLO is imported by DFW's Glance with ``web-download``, and the new image's checksum and
os_hash_value equal the source's. A copy whose hashes differ is caught and removed; a failed
import says the cloud's reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from imagehop.errors import IntegrityError, NotFoundError, TaskFailedError
from imagehop.glance import GlanceImages, check_same_image, hash_of
from imagehop.object_store import ObjectStore
from imagehop.transfer import copy_plan, plan_transfer
from imagehop.transfer.glance_source import discover_glance_source
from imagehop.transfer.tempurl import staged_object_url, temporary_url
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.options import MiB
from tests.support import scripted_bodies as bodies
from tests.support.minted_tokens import MintedTokens

pytestmark = pytest.mark.cloud

SOURCE, TARGET = "IAD", "DFW"
DEADLINE = 60.0


@pytest.fixture(scope="module")
def both_glance(local_cloud: LocalCloud) -> Iterator[None]:
    with local_cloud.admin.temporary_options(glance_regions=f"{SOURCE},{TARGET}"):
        yield


def glance(cloud: LocalCloud, region: str) -> GlanceImages:
    settings = bodies.make_settings(status_poll_interval_seconds=2.0)
    return GlanceImages(cloud.images_url(region), MintedTokens(cloud), settings)


def target_store(cloud: LocalCloud) -> ObjectStore:
    url = cloud.storage_url(TARGET, cloud.main.tenant_id)
    return ObjectStore(url, MintedTokens(cloud), region=TARGET)


@pytest.fixture(scope="module")
def source_image(local_cloud: LocalCloud, both_glance: None) -> dict[str, Any]:
    made = local_cloud.admin.create_image(
        SOURCE, local_cloud.main.tenant_id, disk_bytes=3 * MiB + 999
    )
    return made


def stream_to_target(cloud: LocalCloud, image_id: str) -> str:
    """Copy the source image into a new DFW container; return the temporary URL."""
    images = glance(cloud, SOURCE)
    target = target_store(cloud)
    container = f"stream-{uuid.uuid4().hex[:12]}"
    layout = discover_glance_source(images, image_id)
    plan = plan_transfer(layout, target.limits(), container, f"{image_id}.raw", MiB, container)
    copy_plan(images, target, plan, concurrency=3, chunk_size=256 * 1024)
    return staged_object_url(target, plan, 600)


def test_a_streamed_image_imported_by_web_download_has_the_sources_hashes(
    local_cloud: LocalCloud, source_image: dict[str, Any]
) -> None:
    source = glance(local_cloud, SOURCE).get_image(source_image["id"])
    assert source.checksum and hash_of(source)[1], "the source image carries hashes"
    assert glance(local_cloud, TARGET).import_methods() == {"glance-direct", "web-download"}
    url = stream_to_target(local_cloud, source.id)

    target_glance = glance(local_cloud, TARGET)
    new = target_glance.create_image(  # the source's formats (Glance checks bare images')
        "streamed copy",
        disk_format=source.disk_format or "raw",
        container_format=source.container_format or "bare",
    )
    assert new.status == "queued"
    target_glance.import_image(new.id, {"name": "web-download", "uri": url})
    imported = target_glance.wait_for_import(new.id, DEADLINE)

    assert imported.status == "active" and imported.size == source.size
    check_same_image(source, imported)  # checksum and sha512 both equal
    assert (imported.checksum, hash_of(imported)) == (source.checksum, hash_of(source))


def test_a_copy_with_other_bytes_is_caught_by_its_hashes_and_removed(
    local_cloud: LocalCloud, source_image: dict[str, Any]
) -> None:
    source = glance(local_cloud, SOURCE).get_image(source_image["id"])
    target = target_store(local_cloud)
    container = f"wrong-{uuid.uuid4().hex[:12]}"
    target.ensure_container(container, owned=True)
    target.put_bytes(container, "other.raw", b"not the image" * 1000)
    target_glance = glance(local_cloud, TARGET)
    new = target_glance.create_image("wrong copy", disk_format="raw")
    uri = temporary_url(target, container, "other.raw", 600)
    target_glance.import_image(new.id, {"name": "web-download", "uri": uri})
    imported = target_glance.wait_for_import(new.id, DEADLINE)

    with pytest.raises(IntegrityError, match=f"image {new.id} is not a copy"):
        check_same_image(source, imported)
    assert target_glance.discard_image(new.id) is True
    with pytest.raises(NotFoundError):
        target_glance.get_image(new.id)


def test_a_failed_web_download_raises_with_the_clouds_reason_and_a_new_import_works(
    local_cloud: LocalCloud, source_image: dict[str, Any]
) -> None:
    target = target_store(local_cloud)
    container = f"missing-{uuid.uuid4().hex[:12]}"
    target.ensure_container(container, owned=True)
    target_glance = glance(local_cloud, TARGET)
    new = target_glance.create_image("never arrives", disk_format="raw")
    uri = temporary_url(target, container, "no-such-object", 600)
    target_glance.import_image(new.id, {"name": "web-download", "uri": uri})
    with pytest.raises(TaskFailedError, match="Internal Error") as caught:
        target_glance.wait_for_import(new.id, DEADLINE)
    assert "failed stores: swift" in str(caught.value)
    assert "temp_url_sig" not in str(caught.value)

    # the image is queued again: importing the real copy into it is waited for, not taken
    # for the earlier failure
    url = stream_to_target(local_cloud, source_image["id"])
    target_glance.import_image(new.id, {"name": "web-download", "uri": url})
    imported = target_glance.wait_for_import(new.id, DEADLINE)
    check_same_image(glance(local_cloud, SOURCE).get_image(source_image["id"]), imported)


@pytest.mark.parametrize("path", ["single-put", "stage"])
def test_one_stream_from_the_source_glance_to_the_target_glance(
    local_cloud: LocalCloud, source_image: dict[str, Any], path: str
) -> None:
    """The fallbacks: the source's ``/file`` read as one range straight into the target's
    ``PUT .../file``, or into ``PUT .../stage`` and a ``glance-direct`` import."""
    source_glance = glance(local_cloud, SOURCE)
    source = source_glance.get_image(source_image["id"])
    assert source.size is not None and source.checksum
    target_glance = glance(local_cloud, TARGET)
    new = target_glance.create_image(f"one stream, {path}", disk_format="raw")
    reader = source_glance.open_range(source.id, 0, source.size, expect_checksum=source.checksum)
    try:
        if path == "single-put":
            target_glance.upload(new.id, reader, source.size)
        else:
            target_glance.stage(new.id, reader, source.size)
            target_glance.import_image(new.id, {"name": "glance-direct"})
    finally:
        reader.close()
    imported = target_glance.wait_for_import(new.id, DEADLINE)
    check_same_image(source, imported)
