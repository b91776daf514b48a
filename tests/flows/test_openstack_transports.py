"""transfer-image between OpenStack Glance regions of the local cloud (issue 12): each transport
the sandbox offers, Rackspace-style DFW -> a Flex-like region, a hash mismatch caught and never
left usable, a resume after an interrupted copy, and refused at pre-flight: a target with no
usable import method, and an import container imagehop did not create where a temporary URL
is needed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import imagehop.tasks.glance
import imagehop.transfer.engine
from imagehop.errors import (
    ForeignContainerError,
    IntegrityError,
    PreflightError,
    UnknownRegionError,
)
from imagehop.flows.transfer_image import transfer_image
from imagehop.flows.transfer_images import transfer_images
from imagehop.procedure import BootRequest, DryRunPlan, TransferRequest, TransferResult
from imagehop.procedure.request import (
    COPY_OF_PROPERTY,
    DEFAULT_COORDINATING_KEY,
    DEFAULT_EXPORT_CONTAINER,
    DEFAULT_IMPORT_CONTAINER,
    BatchRequest,
    segments_container,
    staged_object,
)
from imagehop.tasks import cloud
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.options import MiB
from tests.flows.helpers import created, image, new_image, objects, request_for

pytestmark = [pytest.mark.cloud, pytest.mark.flow]

BOTH = "DFW,IAD"


def _log_in_with(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("IMAGEHOP_API_KEY", "IMAGEHOP_PASSWORD", "IMAGEHOP_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cloud.reset()


@pytest.fixture
def one_keystone(on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> LocalCloud:
    """Both sides log in at the one Keystone with the main account (glance-download works)."""
    _log_in_with(monkeypatch, on_cloud.keystone_settings_env())
    return on_cloud


@pytest.fixture
def keystone_per_region(on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> LocalCloud:
    """Each side logs in at its region's own Keystone, as on Flex."""
    source = on_cloud.keystone_settings_env(region="DFW", application_credential=True)
    target = on_cloud.keystone_settings_env(region="IAD", application_credential=True)
    _log_in_with(
        monkeypatch, {**source, "IMAGEHOP_TARGET_IDENTITY_URL": target["IMAGEHOP_IDENTITY_URL"]}
    )
    return on_cloud


def _assert_same_image(
    cloud_: LocalCloud, source_id: str, result: TransferResult
) -> dict[str, Any]:
    source, new = image(cloud_, "DFW", source_id), image(cloud_, "IAD", result.target_image_id)
    assert new["status"] == "active"
    assert new["checksum"] == source["checksum"]
    assert new["os_hash_algo"] == source["os_hash_algo"] == "sha512"
    assert new["os_hash_value"] == source["os_hash_value"]
    assert (new["disk_format"], new["container_format"]) == (
        source["disk_format"],
        source["container_format"],
    )
    assert new[COPY_OF_PROPERTY] == source_id
    # the property allow-list across Glance regions (the import itself keeps none)
    assert new["os_distro"] == source["os_distro"] == "ubuntu"
    assert "os_distro" in result.properties.copied
    key, value = next(iter(result.coordinating_property.items()))
    assert new[key] == value  # tagged only once verified
    return new


STREAMS = [
    ("stream", {"IAD": ["web-download"]}),
    ("stream-stage", {"IAD": ["glance-direct"]}),
    ("single-put", {"IAD": []}),  # with IMAGEHOP_TARGET_ALLOWS_IMAGE_UPLOAD=true
]


@pytest.mark.parametrize(("transport", "methods"), STREAMS, ids=[t for t, _ in STREAMS])
def test_generic_region_to_region_by_streaming(
    transport: str,
    methods: dict[str, list[str]],
    keystone_per_region: LocalCloud,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cloud_ = keystone_per_region
    if transport == "single-put":
        monkeypatch.setenv("IMAGEHOP_TARGET_ALLOWS_IMAGE_UPLOAD", "true")
    with cloud_.admin.temporary_options(glance_regions=BOTH, import_methods=methods):
        image_id = new_image(cloud_)
        before = created(cloud_)
        plan = transfer_image(request_for(image_id, dry_run=True))
        assert isinstance(plan, DryRunPlan) and plan.transport == transport
        assert not any(step.startswith("export") for step in plan.steps)

        boot = BootRequest() if transport == "stream" else None
        result = transfer_image(request_for(image_id, boot=boot))

        assert isinstance(result, TransferResult) and result.transport == transport
        _assert_same_image(cloud_, image_id, result)
        assert result.bytes_copied == result.bytes_total > 0
        assert (result.server_id is not None) == (boot is not None)  # booted from the copy
        # the temporary URL (a secret) is in no log line and not in the result
        assert f"copy of {image_id}" in caplog.text  # the library's lines are captured
        assert "temp_url_sig" not in caplog.text
        assert "temp_url_sig" not in result.model_dump_json()
        after = created(cloud_)
        assert after.get("DFW export_tasks_created", 0) == before.get("DFW export_tasks_created", 0)
        # cleanup deleted the staged copy imagehop wrote
        assert objects(cloud_, "IAD", DEFAULT_IMPORT_CONTAINER, image_id) == []
        assert objects(cloud_, "IAD", segments_container(DEFAULT_IMPORT_CONTAINER), image_id) == []


def test_a_glance_source_without_object_storage_in_its_catalog_transfers(
    keystone_per_region: LocalCloud,
) -> None:
    """A Glance source's data is read from its Images API (ranged GET .../file): pre-flight
    does not ask for object storage in the source region, and no step (the cleanup neither)
    touches the source's Swift."""
    cloud_ = keystone_per_region
    with cloud_.admin.temporary_options(
        glance_regions=BOTH,
        import_methods={"IAD": ["web-download"]},
        catalog_missing_services={"DFW": ["object-store"]},
    ):
        image_id = new_image(cloud_)
        plan = transfer_image(request_for(image_id, dry_run=True))
        assert isinstance(plan, DryRunPlan) and plan.transport == "stream"
        assert "DFW offers image to the source account" in plan.checks

        result = transfer_image(request_for(image_id))

        assert isinstance(result, TransferResult) and result.transport == "stream"
        _assert_same_image(cloud_, image_id, result)
        assert [line.split(":")[0] for line in result.cleaned_up] == ["IAD"]  # not DFW's Swift
        assert objects(cloud_, "IAD", DEFAULT_IMPORT_CONTAINER, image_id) == []


def test_a_rackspace_source_without_object_storage_is_refused_naming_it(
    flex_like_target: LocalCloud,
) -> None:
    """Rackspace's legacy cloud exports into its Cloud Files: that source still needs object
    storage, refused as before (a legacy target too:
    test_bad_inputs.py::test_a_region_missing_one_service_in_the_catalog_is_named_with_that_service)."""
    cloud_ = flex_like_target
    with cloud_.admin.temporary_options(
        glance_regions="IAD", catalog_missing_services={"DFW": ["object-store"]}
    ):
        image_id = new_image(cloud_)
        before, source = created(cloud_), image(cloud_, "DFW", image_id)
        with pytest.raises(UnknownRegionError) as refused:
            transfer_image(request_for(image_id))
        message = str(refused.value)
        assert message.startswith(
            "region DFW offers image but no object-store to the source account (the catalog "
            "lists no object-store endpoint there): pick a source region that offers image, "
            "object-store"
        )
        assert message.endswith("or have object-store enabled for this account in DFW")
        assert created(cloud_) == before
        assert image(cloud_, "DFW", image_id) == source


def test_a_batch_between_glance_regions_streams_each_image(
    keystone_per_region: LocalCloud,
) -> None:
    """transfer-images runs the same transport choice for each image of a batch."""
    cloud_ = keystone_per_region
    with cloud_.admin.temporary_options(glance_regions=BOTH):
        images = [new_image(cloud_, disk_bytes=2 * 1024 * 1024 + n) for n in (1, 2)]
        batch = BatchRequest(source_region="DFW", target_region="IAD", image_ids=tuple(images))

        result = transfer_images(batch)

        assert [o.status for o in result.outcomes] == ["succeeded", "succeeded"]
        for outcome, source_id in zip(result.outcomes, images, strict=True):
            assert outcome.target_image_id
            source = image(cloud_, "DFW", source_id)
            new = image(cloud_, "IAD", outcome.target_image_id)
            assert (new["status"], new["os_hash_value"]) == ("active", source["os_hash_value"])
            assert new[COPY_OF_PROPERTY] == source_id


def test_generic_region_to_region_by_glance_download(one_keystone: LocalCloud) -> None:
    cloud_ = one_keystone
    methods = {"IAD": ["glance-download", "web-download"]}
    with cloud_.admin.temporary_options(glance_regions=BOTH, import_methods=methods):
        image_id = new_image(cloud_)
        result = transfer_image(request_for(image_id))

        assert isinstance(result, TransferResult) and result.transport == "glance-download"
        _assert_same_image(cloud_, image_id, result)
        assert result.bytes_copied == 0  # imagehop moved no byte itself
        segments = segments_container(DEFAULT_IMPORT_CONTAINER)
        assert objects(cloud_, "IAD", segments, image_id) == []


def test_a_target_without_object_storage_takes_a_glance_download_and_refuses_staging(
    one_keystone: LocalCloud,
) -> None:
    """glance-download stages nothing in the target (its Glance pulls from the source's), so
    a target region whose catalog has no object storage still takes it; a transport that
    stages the copy there is refused at pre-flight, naming object-store, nothing created."""
    cloud_ = one_keystone
    missing = {"IAD": ["object-store"]}
    methods = {"IAD": ["glance-download", "web-download"]}
    with cloud_.admin.temporary_options(
        glance_regions=BOTH, import_methods=methods, catalog_missing_services=missing
    ):
        image_id = new_image(cloud_)
        result = transfer_image(request_for(image_id))
        assert isinstance(result, TransferResult) and result.transport == "glance-download"
        _assert_same_image(cloud_, image_id, result)
    with cloud_.admin.temporary_options(
        glance_regions=BOTH,
        import_methods={"IAD": ["web-download"]},
        catalog_missing_services=missing,
    ):
        image_id = new_image(cloud_)
        before = created(cloud_)
        with pytest.raises(UnknownRegionError) as refused:
            transfer_image(request_for(image_id))
        assert str(refused.value).startswith(
            "region IAD offers image but no object-store to the target account"
        )
        assert created(cloud_) == before


@pytest.fixture
def flex_like_target(on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> LocalCloud:
    """The source logs in at the Rackspace-style Identity v2.0 (DFW, Cloud Images); the
    target at IAD's own Keystone (IAD in Glance mode, as on Flex)."""
    target = on_cloud.keystone_settings_env(region="IAD", application_credential=True)
    monkeypatch.setenv("IMAGEHOP_TARGET_AUTH_TYPE", "v3applicationcredential")
    monkeypatch.setenv("IMAGEHOP_TARGET_IDENTITY_URL", target["IMAGEHOP_IDENTITY_URL"])
    for name in ("APPLICATION_CREDENTIAL_ID", "APPLICATION_CREDENTIAL_SECRET"):
        monkeypatch.setenv(f"IMAGEHOP_TARGET_{name}", target[f"IMAGEHOP_{name}"])
    cloud.reset()
    return on_cloud


def test_rackspace_dfw_to_a_flex_like_region_is_planned_as_export_then_stream(
    flex_like_target: LocalCloud,
) -> None:
    """The plan: export (VHD) in DFW, segments into IAD's Swift, a vhd/bare image imported
    by web-download; it says plainly what booting it needs and that imagehop cannot tell."""
    with flex_like_target.admin.temporary_options(glance_regions="IAD"):
        image_id = new_image(flex_like_target)
        plan = transfer_image(request_for(image_id, dry_run=True))

        assert isinstance(plan, DryRunPlan) and plan.transport == "stream"
        assert "DFW is Rackspace Cloud Images: it exports a VHD" in plan.transport_reason
        assert any(step.startswith("export it to DFW") for step in plan.steps)
        assert any("(disk_format vhd, container_format bare)" in step for step in plan.steps)
        assert any("does not know whether IAD's compute boots VHD images" in n for n in plan.notes)


def test_rackspace_dfw_to_a_flex_like_region(flex_like_target: LocalCloud) -> None:
    """The legacy source exports a VHD; its segments stream into IAD's Swift, which IAD's
    Glance imports by web-download as vhd/bare; the allow-listed properties follow."""
    with flex_like_target.admin.temporary_options(glance_regions="IAD"):
        image_id = new_image(flex_like_target)
        result = transfer_image(request_for(image_id))

        assert isinstance(result, TransferResult) and result.transport == "stream"
        assert result.export_task_id is not None
        new = image(flex_like_target, "IAD", result.target_image_id)
        assert new["status"] == "active"
        assert (new["disk_format"], new["container_format"]) == ("vhd", "bare")
        assert new["size"] == result.bytes_total
        admin = flex_like_target.admin
        assert admin.image_content_md5(result.target_image_id) == admin.image_content_md5(image_id)
        assert new["os_distro"] == "ubuntu"  # the property allow-list works across clouds


def _container_state(cloud_: LocalCloud, region: str, container: str) -> dict[str, Any]:
    """A container's metadata headers and its objects, as the account sees them."""
    head = cloud_.session().storage(region, "HEAD", f"/{container}")
    head.raise_for_status()
    metadata = {k.lower(): v for k, v in head.headers.items() if "-meta-" in k.lower()}
    return {"metadata": metadata, "objects": objects(cloud_, region, container)}


@pytest.mark.parametrize("route", ["generic", "rackspace-to-flex"])
def test_a_staging_container_imagehop_did_not_create_is_refused_before_the_copy(
    route: str, request: pytest.FixtureRequest
) -> None:
    """The stream transport imports by web-download of a temporary URL, whose key imagehop
    sets only on a container it created: a container of the import container's name that the
    user made is refused by pre-flight (also in a dry run), before any byte is copied,
    nothing created and the container left exactly as it was; a new name then transfers.
    Both routes into a Glance target that stream: Glance -> Glance, and Rackspace's legacy
    DFW (export, then its segments) -> a Flex-like IAD."""
    generic = route == "generic"
    cloud_: LocalCloud = request.getfixturevalue(
        "keystone_per_region" if generic else "flex_like_target"
    )
    methods = {"IAD": ["web-download"]}
    with cloud_.admin.temporary_options(
        glance_regions=BOTH if generic else "IAD", import_methods=methods
    ):
        image_id = new_image(cloud_)
        session = cloud_.session()
        foreign = session.new_container("IAD", "mine")
        session.storage("IAD", "POST", f"/{foreign}", headers={"X-Container-Meta-Owner": "ops"})
        session.storage("IAD", "PUT", f"/{foreign}/notes.txt", data=b"the user's own object")
        container_before = _container_state(cloud_, "IAD", foreign)
        before, source = created(cloud_), image(cloud_, "DFW", image_id)

        for dry_run in (True, False):
            with pytest.raises(ForeignContainerError) as refused:
                transfer_image(request_for(image_id, import_container=foreign, dry_run=dry_run))
            message = str(refused.value)
            assert f"container {foreign!r} in IAD already exists and was not created by " in message
            assert "no X-Container-Meta-Imagehop-Created metadata" in message
            assert "imagehop puts a temporary-URL key only on containers it created" in message
            assert "name another container with the request's import_container option" in message
            assert f"or delete or rename {foreign!r} in IAD" in message

        assert created(cloud_) == before  # no image, export or import in either region
        assert image(cloud_, "DFW", image_id) == source  # not even tagged
        assert _container_state(cloud_, "IAD", foreign) == container_before  # no key, no object
        assert "x-container-meta-temp-url-key" not in container_before["metadata"]
        assert objects(cloud_, "IAD", segments_container(foreign)) == []
        assert objects(cloud_, "DFW", DEFAULT_EXPORT_CONTAINER, image_id) == []  # no export

        if generic:  # a container that does not exist yet: the copy creates it as imagehop's
            fresh = f"imports-{image_id[:8]}"
            result = transfer_image(request_for(image_id, import_container=fresh))
            assert isinstance(result, TransferResult) and result.transport == "stream"
            _assert_same_image(cloud_, image_id, result)
            assert _container_state(cloud_, "IAD", foreign) == container_before


def test_a_hash_mismatch_is_caught_and_the_image_never_left_usable(
    keystone_per_region: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target's Glance is handed a temporary URL of another object (1 MiB of zeros, in
    the same container): the import succeeds, the hashes differ, the new image is deleted and
    the run fails; a re-run imports the right bytes."""
    cloud_ = keystone_per_region
    real_url = imagehop.tasks.glance.temporary_url
    decoy, size = "decoy.bin", 1024 * 1024

    def url_of_the_decoy(store, container, name, seconds):  # type: ignore[no-untyped-def]
        store.put_stream(container, decoy, _Zeros(size), size)
        return real_url(store, container, decoy, seconds)

    monkeypatch.setattr(imagehop.tasks.glance, "temporary_url", url_of_the_decoy)
    with cloud_.admin.temporary_options(
        glance_regions=BOTH, import_methods={"IAD": ["web-download"]}
    ):
        image_id = new_image(cloud_)
        with pytest.raises(IntegrityError) as caught:
            transfer_image(request_for(image_id))
        message = str(caught.value)
        assert f"is not a copy of image {image_id}" in message and "imagehop deleted it" in message
        session = cloud_.session()
        listed = session.images("IAD", "GET", "/images", params={COPY_OF_PROPERTY: image_id})
        usable = [i for i in listed.json()["images"] if i["status"] == "active"]
        assert usable == []
        # the staged copy stays for a re-run, which then imports the right bytes
        assert objects(cloud_, "IAD", DEFAULT_IMPORT_CONTAINER, staged_object(image_id, "vhd"))
        monkeypatch.setattr(imagehop.tasks.glance, "temporary_url", real_url)
        result = transfer_image(request_for(image_id))
        assert isinstance(result, TransferResult)
        _assert_same_image(cloud_, image_id, result)


class _Zeros:
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int = -1) -> bytes:
        n = self.left if size < 0 else min(size, self.left)
        self.left -= n
        return b"\0" * n


@contextmanager
def _third_segment_fails() -> Iterator[None]:
    """Within the block, the engine's copy of segment 2 fails its check (injected): an
    interrupted copy that leaves segments 0 and 1 in place for a re-run."""
    real_copy = imagehop.transfer.engine.copy_segment

    def third_segment_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        if args[3].index == 2:
            raise IntegrityError("segment 2: the target stored another ETag (injected)")
        return real_copy(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imagehop.transfer.engine, "copy_segment", third_segment_fails)
        yield


def test_resume_after_an_interrupted_copy_copies_only_the_missing_segments(
    keystone_per_region: LocalCloud,
) -> None:
    cloud_ = keystone_per_region
    with cloud_.admin.temporary_options(
        glance_regions=BOTH, import_methods={"IAD": ["web-download"]}
    ):
        image_id = new_image(cloud_)
        request = request_for(image_id, concurrency=1)
        with _third_segment_fails(), pytest.raises(IntegrityError, match="injected"):
            transfer_image(request)
        # web-download: the segments sit beside the manifest (a temporary URL's reach)
        staged = objects(
            cloud_, "IAD", DEFAULT_IMPORT_CONTAINER, f"{staged_object(image_id, 'vhd')}/"
        )
        assert len(staged) == 2

        result = transfer_image(request)

        assert isinstance(result, TransferResult)
        assert result.segments_skipped == 2
        assert result.segments_copied == result.segments_total - 2
        assert result.bytes_copied < result.bytes_total
        _assert_same_image(cloud_, image_id, result)


def _glance_image(cloud_: LocalCloud, region: str, disk_format: str, data: bytes) -> str:
    """An active image of the main account uploaded through a Glance region's API."""
    session = cloud_.session()
    body = {"name": f"{disk_format}-image", "disk_format": disk_format,
            "container_format": "bare", "os_distro": "ubuntu"}  # fmt: skip
    made = session.images(region, "POST", "/images", json=body)
    made.raise_for_status()
    image_id = str(made.json()["id"])
    octet = {"Content-Type": "application/octet-stream"}
    session.images(region, "PUT", f"/images/{image_id}/file", data=data, headers=octet)
    assert image(cloud_, region, image_id)["status"] == "active"
    return image_id


def test_a_qcow2_image_is_staged_under_its_own_extension_and_resumed_there(
    keystone_per_region: LocalCloud,
) -> None:
    """The staged copy of a qcow2 image is <id>.qcow2 (not .vhd): in the plan, in the
    target's Swift, in what a failed run says it kept; the re-run finds its segments there and
    copies only the missing ones; the cleanup removes them."""
    cloud_ = keystone_per_region
    qcow2 = b"QFI\xfb" + b"\x00\x00\x00\x03" + bytes(16) + (64 * MiB).to_bytes(8, "big")
    data = qcow2 + os.urandom(5 * MiB + 4321)
    with cloud_.admin.temporary_options(
        glance_regions=BOTH, import_methods={"IAD": ["web-download"]}
    ):
        image_id = _glance_image(cloud_, "DFW", "qcow2", data)
        staged = f"{image_id}.qcow2"
        request = request_for(image_id, concurrency=1)
        plan = transfer_image(request.model_copy(update={"dry_run": True}))
        assert isinstance(plan, DryRunPlan)
        assert f"as an SLO {DEFAULT_IMPORT_CONTAINER}/{staged} " in plan.steps[1]

        with _third_segment_fails(), pytest.raises(IntegrityError, match="injected"):
            transfer_image(request)
        kept = objects(cloud_, "IAD", DEFAULT_IMPORT_CONTAINER, image_id)
        assert len(kept) == 2 and all(name.startswith(f"{staged}/imagehop/") for name in kept)

        result = transfer_image(request)

        assert isinstance(result, TransferResult) and result.transport == "stream"
        assert result.segments_skipped == 2  # the first run's segments, found by name
        assert result.segments_copied == result.segments_total - 2
        new = image(cloud_, "IAD", result.target_image_id)
        source = image(cloud_, "DFW", image_id)
        assert (new["status"], new["disk_format"]) == ("active", "qcow2")
        assert new["os_hash_value"] == source["os_hash_value"]
        assert result.cleaned_up == (f"IAD: {DEFAULT_IMPORT_CONTAINER}/{staged} (4 objects)",)
        assert objects(cloud_, "IAD", DEFAULT_IMPORT_CONTAINER, image_id) == []


def test_a_servers_snapshot_in_a_glance_source_is_staged_under_the_format_the_cloud_gave_it(
    keystone_per_region: LocalCloud,
) -> None:
    """Before the snapshot exists its format is unknown (the dry run says so); once it exists,
    the staged copy is named after it, and the kept staged copy says that name."""
    cloud_ = keystone_per_region
    server_id = cloud_.admin.seed()["DFW"]["demo_server"]
    # Its own run key: the default (<server id>@<date>) would hand this run's images to the
    # later runs of the demo server on this test worker (they found it transferred already).
    run_key = f"glance-snapshot-{uuid.uuid4().hex[:8]}"
    request = TransferRequest(
        source_region="DFW", target_region="IAD", server_id=server_id, cleanup="keep",
        run_key=run_key,
    )  # fmt: skip
    with cloud_.admin.temporary_options(
        glance_regions=BOTH, import_methods={"IAD": ["web-download"]}
    ):
        plan = transfer_image(request.model_copy(update={"dry_run": True}))
        assert isinstance(plan, DryRunPlan) and plan.transport == "stream"
        assert any("<new image>.<its disk_format>" in step for step in plan.steps)

        result = transfer_image(request)

        assert isinstance(result, TransferResult) and result.snapshot_created
        snapshot = image(cloud_, "DFW", result.source_image_id)
        staged = staged_object(result.source_image_id, snapshot["disk_format"])
        assert objects(cloud_, "IAD", DEFAULT_IMPORT_CONTAINER, staged) != []
        assert any(f"{DEFAULT_IMPORT_CONTAINER}/{staged} " in kept for kept in result.remaining)
        new = image(cloud_, "IAD", result.target_image_id)
        assert new["disk_format"] == snapshot["disk_format"]
        assert new["os_hash_value"] == snapshot["os_hash_value"]


def test_no_usable_import_method_is_refused_at_preflight(keystone_per_region: LocalCloud) -> None:
    cloud_ = keystone_per_region
    with cloud_.admin.temporary_options(glance_regions=BOTH, import_methods={"IAD": []}):
        image_id = new_image(cloud_)
        before = created(cloud_)
        source = image(cloud_, "DFW", image_id)
        with pytest.raises(PreflightError) as refused:
            transfer_image(request_for(image_id))
        assert str(refused.value).startswith(
            "IAD offers the import methods none (GET /v2/info/import)"
        )
        assert "ask the cloud operator to enable web-download or glance-direct in IAD" in str(
            refused.value
        )
        assert created(cloud_) == before
        assert image(cloud_, "DFW", image_id) == source  # not even tagged
        assert objects(cloud_, "IAD", DEFAULT_IMPORT_CONTAINER, image_id) == []


def test_rerun_after_a_stop_before_the_check_carries_on_with_the_imported_image(
    keystone_per_region: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after the import, before the hashes were compared: the image is not tagged
    (not taken for a finished transfer); the re-run checks and tags that same image, and
    neither copies nor imports again."""
    cloud_ = keystone_per_region
    real_verify = imagehop.tasks.glance.verify_copy

    def stop(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("stopped (injected) between the import and the check")

    with cloud_.admin.temporary_options(
        glance_regions=BOTH, import_methods={"IAD": ["web-download"]}
    ):
        image_id = new_image(cloud_)
        request = request_for(image_id, cleanup="keep")
        monkeypatch.setattr(imagehop.tasks.glance, "verify_copy", stop)
        with pytest.raises(RuntimeError, match="injected"):
            transfer_image(request)
        session = cloud_.session()
        listed = session.images("IAD", "GET", "/images", params={COPY_OF_PROPERTY: image_id})
        first = [i for i in listed.json()["images"] if i["status"] == "active"]
        assert len(first) == 1
        assert DEFAULT_COORDINATING_KEY not in first[0]  # not tagged before the check

        monkeypatch.setattr(imagehop.tasks.glance, "verify_copy", real_verify)
        result = transfer_image(request)

        assert isinstance(result, TransferResult)
        assert result.target_image_id == first[0]["id"]
        assert "target image" in result.reused
        assert result.bytes_copied == 0 and result.segments_skipped == result.segments_total
        _assert_same_image(cloud_, image_id, result)


def test_an_openstack_image_into_rackspace_legacy_by_its_import_task(
    on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DFW in Glance mode (a VHD image), IAD Rackspace-style: the image data streams into
    IAD's Cloud Files and IAD's import task imports it; no export task runs."""
    source = on_cloud.keystone_settings_env(region="DFW", application_credential=True)
    _log_in_with(monkeypatch, {**source, "IMAGEHOP_TARGET_AUTH_TYPE": "rackspace",
                               "IMAGEHOP_TARGET_IDENTITY_URL": on_cloud.identity_url,
                               "IMAGEHOP_TARGET_USERNAME": on_cloud.main.username,
                               "IMAGEHOP_TARGET_API_KEY": on_cloud.main.api_key})  # fmt: skip
    with on_cloud.admin.temporary_options(glance_regions="DFW"):
        image_id = new_image(on_cloud)
        assert image(on_cloud, "DFW", image_id)["disk_format"] == "vhd"
        before = created(on_cloud)

        result = transfer_image(request_for(image_id))

        assert isinstance(result, TransferResult) and result.transport == "stream-import-task"
        assert result.import_task_id is not None and result.export_task_id is None
        after = created(on_cloud)
        assert after.get("DFW export_tasks_created", 0) == before.get("DFW export_tasks_created", 0)
        admin = on_cloud.admin
        assert admin.image_content_md5(result.target_image_id) == admin.image_content_md5(image_id)
