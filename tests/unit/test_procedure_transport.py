"""The transport rules: each branch, and what each reason tells the user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagehop.errors import PreflightError
from imagehop.procedure.preflight import shares_identity
from imagehop.procedure.transport import (
    UPLOAD_SETTING,
    SideOffer,
    TransportChoice,
    choose_transport,
)
from imagehop.settings import Settings

LEGACY_DFW = SideOffer(region="DFW", import_methods=None)
LEGACY_IAD = SideOffer(region="IAD", import_methods=None)
ALL = frozenset({"glance-direct", "web-download", "glance-download"})


def glance_source(**changes: object) -> SideOffer:
    fields: dict[str, object] = dict(
        region="RegionA",
        import_methods=frozenset({"glance-direct", "web-download"}),
        disk_format="qcow2",
        container_format="bare",
    )
    return SideOffer.model_validate(fields | changes)


def glance_target(methods: frozenset[str] = ALL, **changes: object) -> SideOffer:
    fields: dict[str, object] = dict(region="RegionB", import_methods=methods, tempurl=True)
    return SideOffer.model_validate(fields | changes)


def choose(source: SideOffer, target: SideOffer, shared: bool = False) -> TransportChoice:
    return choose_transport(source, target, shared_identity=shared)


def test_rackspace_to_rackspace_is_todays_export_copy_import():
    choice = choose(LEGACY_DFW, LEGACY_IAD)
    assert choice.transport == "rackspace-tasks"
    assert choice.source_export and choice.target_import == "import-task"
    assert choice.disk_format is None  # the import task decides, as today
    assert choice.reason == (
        "DFW and IAD serve no /v2/info/import (Rackspace Cloud Images): export task in DFW, "
        "parallel segment copy, import task in IAD"
    )


def test_glance_download_when_advertised_and_one_identity():
    choice = choose(glance_source(), glance_target(), shared=True)
    assert choice.transport == "glance-download"
    assert not choice.source_export and not choice.stages_segments
    assert (choice.disk_format, choice.container_format) == ("qcow2", "bare")
    assert choice.reason == (
        "RegionB offers the import methods glance-direct, glance-download, web-download "
        "(GET /v2/info/import); both regions log in at one Identity with one account: RegionB "
        "pulls the image from RegionA itself (one call, server-side), then imagehop compares "
        "the images' hashes"
    )


def test_glance_download_advertised_but_separate_logins_streams_and_says_why():
    choice = choose(glance_source(), glance_target(), shared=False)
    assert choice.transport == "stream"
    assert choice.target_import == "web-download" and choice.stages_segments
    assert "glance-download needs both regions behind one Identity with one account" in (
        choice.reason
    )
    assert choice.reason.endswith(
        "ranged reads of RegionA's image data stream in parallel into segments in RegionB's "
        "object storage, which RegionB's Glance imports by web-download of a temporary URL"
    )


def test_stream_by_web_download_without_glance_download():
    choice = choose(glance_source(), glance_target(frozenset({"web-download"})), shared=True)
    assert choice.transport == "stream"
    assert "glance-download" not in choice.reason  # not advertised: nothing to explain
    assert choice.reason.startswith(
        "RegionB offers the import methods web-download (GET /v2/info/import): ranged reads"
    )


def test_web_download_without_tempurl_falls_back_to_glance_direct():
    target = glance_target(frozenset({"web-download", "glance-direct"}), tempurl=False)
    choice = choose(glance_source(), target)
    assert choice.transport == "stream-stage"
    assert choice.target_import == "glance-direct"
    assert (
        "web-download needs a temporary URL and RegionB's object storage has no tempurl "
        "middleware (GET /info)"
    ) in choice.reason
    assert choice.reason.endswith(
        "then one stream of them is staged (PUT .../stage) and imported by glance-direct"
    )


def test_glance_direct_only():
    choice = choose(glance_source(), glance_target(frozenset({"glance-direct"})))
    assert choice.transport == "stream-stage"
    assert "no web-download" in choice.reason


def test_single_put_only_when_the_setting_allows_it():
    target = glance_target(frozenset(), image_upload=True)
    choice = choose(glance_source(), target)
    assert choice.transport == "single-put"
    assert choice.target_import == "put-file"
    assert f"{UPLOAD_SETTING} is set" in choice.reason
    assert "uploaded (PUT .../file)" in choice.reason


def test_no_usable_import_method_is_refused_with_what_to_do():
    target = glance_target(frozenset({"glance-download", "copy-image"}))
    with pytest.raises(PreflightError) as refused:
        choose(glance_source(), target, shared=False)
    assert str(refused.value) == (
        "RegionB offers the import methods copy-image, glance-download (GET /v2/info/import); "
        "glance-download needs both regions behind one Identity with one account (it reuses "
        "the caller's token in the other region), and these log in separately, no "
        "web-download, no glance-direct: imagehop has no way to put the image into RegionB; "
        "ask the cloud operator to enable web-download or glance-direct in RegionB (Glance's "
        f"enabled_import_methods), or set {UPLOAD_SETTING}=true if RegionB allows "
        "PUT /v2/images/{id}/file"
    )


def test_no_import_method_at_all_is_refused():
    with pytest.raises(PreflightError, match="offers the import methods none"):
        choose(glance_source(), glance_target(frozenset()))


def test_a_source_refusing_image_download_is_refused():
    with pytest.raises(PreflightError) as refused:
        choose(glance_source(image_download=False), glance_target(), shared=True)
    assert str(refused.value) == (
        "RegionA refuses to download this image's data (GET /v2/images/{id}/file): every "
        "transport out of an OpenStack Glance reads it; ask the cloud operator to allow image "
        "download for your images (Glance policy download_image)"
    )


def test_rackspace_legacy_to_flex_exports_vhd_and_streams_into_web_download():
    flex = glance_target(frozenset({"glance-direct", "web-download"}), region="SJC3")
    choice = choose(LEGACY_DFW, flex)
    assert choice.transport == "stream"
    assert choice.source_export  # the legacy source can only export
    assert (choice.disk_format, choice.container_format) == ("vhd", "bare")
    assert "DFW is Rackspace Cloud Images: it exports a VHD, whose segments stream" in (
        choice.reason
    )
    assert choice.notes[0] == (
        "the image arrives in SJC3 as exported by DFW: a VHD (disk_format=vhd, "
        "container_format=bare), unconverted"
    )
    assert "imagehop does not know whether SJC3's compute boots VHD images" in choice.notes[1]


def test_rackspace_legacy_source_never_uses_glance_download():
    choice = choose(LEGACY_DFW, glance_target(), shared=True)
    assert choice.transport == "stream"
    assert "glance-download cannot read DFW (Rackspace Cloud Images)" in choice.reason


def test_rackspace_legacy_to_glance_direct_only_target_stages():
    choice = choose(LEGACY_DFW, glance_target(frozenset({"glance-direct"})))
    assert (choice.transport, choice.source_export) == ("stream-stage", True)
    assert choice.disk_format == "vhd"


def test_generic_vhd_into_rackspace_legacy_uses_its_import_task():
    choice = choose(glance_source(disk_format="vhd"), LEGACY_IAD)
    assert choice.transport == "stream-import-task"
    assert not choice.source_export and choice.target_import == "import-task"
    assert choice.reason == (
        "IAD serves no /v2/info/import (Rackspace Cloud Images) and RegionA is OpenStack "
        "Glance: the VHD streams from RegionA's image data into segments in IAD's Cloud Files, "
        "then IAD's import task imports it"
    )


def test_generic_qcow2_into_rackspace_legacy_is_refused():
    with pytest.raises(PreflightError) as refused:
        choose(glance_source(), LEGACY_IAD)
    assert str(refused.value) == (
        "IAD is Rackspace Cloud Images (no /v2/info/import): its import task takes VHD images "
        "only, and the image in RegionA is qcow2: convert it to a dynamic VHD (qemu-img "
        "convert -O vpc) in RegionA first, or pick an OpenStack target"
    )


# -- one Identity with one account (what glance-download needs) ------------------------------

KEYSTONE = "https://keystone.example.com"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("IMAGEHOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no developer's .env


def v3(**fields: str) -> Settings:
    base = dict(auth_type="v3password", identity_url=f"{KEYSTONE}/v3", username="ops",
                password="pw", user_domain_name="Default")  # fmt: skip
    return Settings.model_validate(base | fields)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("source", "target", "staged"),
    [
        (LEGACY_DFW, LEGACY_IAD, "vhd"),  # rackspace-tasks: the export
        (LEGACY_DFW, glance_target(), "vhd"),  # stream of the export into a Flex-like region
        (glance_source(), glance_target(frozenset({"web-download"})), "qcow2"),  # stream
        (glance_source(disk_format="raw"), glance_target(frozenset({"glance-direct"})), "raw"),
        (glance_source(disk_format="vhd"), LEGACY_IAD, "vhd"),  # stream-import-task
        (glance_source(disk_format=None), glance_target(), None),  # a server: not known yet
    ],
)
def test_the_staged_copy_has_the_format_of_the_bytes_staged(
    source: SideOffer, target: SideOffer, staged: str | None
) -> None:
    assert choose(source, target).staged_format == staged


def test_one_identity_with_or_without_v3_and_one_account_is_shared() -> None:
    assert shares_identity(v3())
    assert shares_identity(v3(target_identity_url=f"{KEYSTONE}/"))


@pytest.mark.usefixtures("clean_env")
def test_a_keystone_per_region_or_another_account_is_not_shared() -> None:
    assert not shares_identity(v3(target_identity_url="https://keystone.api.sjc3.example/v3"))
    other = v3(target_username="other", target_password="pw2", target_user_domain_name="Default")
    assert not shares_identity(other)
