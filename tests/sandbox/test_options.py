"""Options of the local cloud: sizes, validation, the export segment clamp, Glance mode's
import methods and URI filtering."""

from __future__ import annotations

import pytest

from imagehop_sandbox.__main__ import build_parser
from imagehop_sandbox.options import GB, KiB, MiB, SandboxOptions, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", MiB), ("64KiB", 64 * KiB), ("64k", 64 * KiB), ("8 MiB", 8 * MiB), ("1GB", GB)],
)
def test_sizes_read_with_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "8 parsecs", "-1"])
def test_nonsense_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_updates_coerce_strings_and_refuse_unknown_names() -> None:
    options = SandboxOptions().updated({"export_segment_bytes": "2MiB", "boot_seconds": "1.5"})
    assert (options.export_segment_bytes, options.boot_seconds) == (2 * MiB, 1.5)
    with pytest.raises(ValueError, match="unknown option"):
        SandboxOptions().updated({"segment": 1})


def test_export_segments_never_exceed_the_single_object_cap() -> None:
    options = SandboxOptions(export_segment_bytes=8 * MiB, max_file_size=2 * MiB)
    assert options.effective_segment_bytes == 2 * MiB
    assert SandboxOptions(max_file_size=None).effective_segment_bytes == 8 * MiB


@pytest.mark.parametrize(
    "changes",
    [
        {"export_segment_bytes": 0},
        {"token_lifetime_seconds": 0},
        {"task_pending_seconds": -1},
        {"max_file_size": 10},
    ],
)
def test_impossible_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SandboxOptions().updated(changes)


def test_catalog_storage_hosts_take_a_scheme_and_host_per_region() -> None:
    options = SandboxOptions().updated({"catalog_storage_hosts": {"iad": "http://127.0.0.1:9"}})
    assert options.catalog_storage_hosts == {"IAD": "http://127.0.0.1:9"}
    for bad in ({"IAD": "127.0.0.1:9"}, {"IAD": "http://h/v1"}, "http://127.0.0.1:9"):
        with pytest.raises(ValueError, match="catalog_storage_hosts"):
            SandboxOptions().updated({"catalog_storage_hosts": bad})


def test_catalog_missing_services_name_known_service_types_per_region() -> None:
    options = SandboxOptions().updated({"catalog_missing_services": {"iad": ["image"]}})
    assert options.catalog_missing_services == {"IAD": ["image"]}
    for bad in ({"IAD": ["images"]}, {"IAD": "image"}, ["image"]):
        with pytest.raises(ValueError, match="catalog_missing_services"):
            SandboxOptions().updated({"catalog_missing_services": bad})


def test_import_methods_default_to_glances_in_glance_regions_only() -> None:
    options = SandboxOptions().updated({"glance_regions": "IAD"})
    assert options.enabled_import_methods("IAD") == ["glance-direct", "web-download"]
    assert options.enabled_import_methods("DFW") == []  # Cloud Images: no interoperable import
    chosen = options.updated({"import_methods": {"iad": ["web-download", "glance-download"]}})
    assert chosen.enabled_import_methods("IAD") == ["web-download", "glance-download"]
    assert options.updated({"import_methods": {"IAD": []}}).enabled_import_methods("IAD") == []
    with pytest.raises(ValueError, match="unknown method"):
        options.updated({"import_methods": {"IAD": ["copy-image"]}})
    with pytest.raises(ValueError, match="region: \\[method\\]"):
        options.updated({"import_methods": ["glance-direct"]})


def test_import_filtering_keeps_glances_defaults_plus_the_clouds_own_ports() -> None:
    options = SandboxOptions()
    assert options.filtering([8080])["allowed_ports"] == [80, 443, 8080]
    assert options.filtering([8080])["allowed_schemes"] == ["http", "https"]
    strict = options.updated({"import_filtering": {"allowed_ports": ["443"]}})
    assert strict.filtering([8080])["allowed_ports"] == [443]
    with pytest.raises(ValueError, match="no option allowed_port"):
        options.updated({"import_filtering": {"allowed_port": [80]}})


def test_cli_flags_for_glance_mode() -> None:
    args = build_parser().parse_args(
        ["up", "--glance-regions", "IAD", "--import-methods", '{"IAD": ["glance-direct"]}']
    )
    assert (args.glance_regions, args.import_methods) == ("IAD", {"IAD": ["glance-direct"]})
