"""Knobs of the local cloud: sizes, durations, lifetimes (test scale or demo scale), and the
generic-OpenStack mode's Glance regions (``glance_regions``, ``import_methods``,
``import_filtering``).

``SandboxOptions`` is saved as ``<state_dir>/options.json`` by ``up``. Most options can also be
changed while the cloud runs (admin API, ``PATCH /_sandbox/options``); the two that shape the
Swift clusters (``max_file_size``, ``max_manifest_segments``) are fixed when a state folder is
first created.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
GB = 1000**3

#: The service types the local cloud's catalog publishes (each in every region).
CATALOG_SERVICE_TYPES = ("object-store", "image", "compute")
#: Interoperable-import methods a Glance region can enable (``copy-image`` needs several
#: stores; the sandbox's Glance has one, so it is not offered).
IMPORT_METHODS = ("glance-direct", "web-download", "glance-download")
#: Glance's ``enabled_import_methods`` default, less ``copy-image`` (see above).
DEFAULT_IMPORT_METHODS = ("glance-direct", "web-download")
#: Glance's ``[import_filtering_opts]`` and their upstream defaults.
IMPORT_FILTERING_DEFAULTS: dict[str, list[Any]] = {
    "allowed_schemes": ["http", "https"],
    "disallowed_schemes": [],
    "allowed_hosts": [],
    "disallowed_hosts": [],
    "allowed_ports": [80, 443],
    "disallowed_ports": [],
}

# Fixed once the Swift clusters exist (their configuration is written at creation).
CLUSTER_OPTIONS = frozenset({"max_file_size", "max_manifest_segments"})

_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB,
    "kb": 1000,
    "kib": KiB,
    "m": MiB,
    "mb": 1000**2,
    "mib": MiB,
    "g": GiB,
    "gb": GB,
    "gib": GiB,
}


#: Options under which the local cloud runs each export or import task and each snapshot
#: before answering the request that starts it (``jobs_before_answer``), with no durations: a
#: client's first poll finds the job done, so a pipeline run on the real clock waits no 30 s
#: poll interval (``sandbox up --instant-jobs``; the tests of workers, batches and the UI).
INSTANT_JOBS: dict[str, Any] = {
    "jobs_before_answer": True,
    "task_pending_seconds": 0.0,
    "task_processing_seconds": 0.0,
    "snapshot_seconds": 0.0,
    "boot_seconds": 0.0,
}


@dataclass(frozen=True)
class SandboxOptions:
    """Everything tunable about the local cloud; defaults suit the demo."""

    token_lifetime_seconds: float = 24 * 3600.0
    export_segment_bytes: int = 8 * MiB
    task_pending_seconds: float = 2.0
    task_processing_seconds: float = 5.0
    snapshot_seconds: float = 3.0
    boot_seconds: float = 3.0
    task_ttl_seconds: float = 48 * 3600.0
    max_file_size: int | None = 16 * MiB
    max_manifest_segments: int = 1000
    import_size_limit_bytes: int = 160 * GB
    server_disk_bytes: int = 40_000_000  # not a multiple of the segment size: uneven last one
    #: ``{"IAD": "http://127.0.0.1:<port>"}``: the Swift address the catalog publishes for a
    #: region instead of its cluster's own (e.g. a test's fault proxy in front of it).
    catalog_storage_hosts: dict[str, str] = field(default_factory=dict)
    # Regions whose Images API is upstream Glance (image data API), comma-separated; the
    # others are Cloud Images, which documents no ``/file``. Off by default.
    glance_regions: str = ""
    #: ``{"IAD": ["image"]}``: service types the catalog leaves out for a region, as a real
    #: catalog does for a product the account does not have there (the service still runs);
    #: in every catalog the cloud hands out: Identity v2.0's and each Keystone v3's.
    catalog_missing_services: dict[str, list[str]] = field(default_factory=dict)
    #: ``{"IAD": ["glance-direct", "web-download", "glance-download"]}``: a Glance region's
    #: ``enabled_import_methods`` (``GET /v2/info/import``); a Glance region not named here
    #: has Glance's default, :data:`DEFAULT_IMPORT_METHODS`; ``[]`` disables import there.
    import_methods: dict[str, list[str]] = field(default_factory=dict)
    #: Glance's ``[import_filtering_opts]`` for ``web-download`` URIs and the endpoint
    #: ``glance-download`` reads, in every Glance region: keys of
    #: :data:`IMPORT_FILTERING_DEFAULTS`, each replacing Glance's default. One difference from
    #: upstream: unless ``allowed_ports`` is given, the ports of this cloud's own Swift proxies
    #: and Images APIs are allowed beside 80 and 443 (they all listen on loopback ports).
    import_filtering: dict[str, list[Any]] = field(default_factory=dict)
    #: Run each background job (an export or import task, a Glance image import, a snapshot)
    #: before answering the request that starts it. The answer still shows the starting status
    #: (a task ``pending``, an image ``queued``), as the real services' do; the client's first
    #: poll then finds the job done (with the durations above at 0). For tests of what runs
    #: around the waits (workers, deployments, the UI), not of the waits themselves.
    jobs_before_answer: bool = False

    def __post_init__(self) -> None:
        for name in ("export_segment_bytes", "max_manifest_segments", "server_disk_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_file_size is not None and self.max_file_size < 1024:
            raise ValueError("max_file_size must be at least 1024 bytes (or None for no cap)")
        if self.token_lifetime_seconds <= 0 or self.task_ttl_seconds <= 0:
            raise ValueError("lifetimes must be positive")
        for name in ("task_pending_seconds", "task_processing_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not isinstance(self.jobs_before_answer, bool):
            raise ValueError(
                f"jobs_before_answer must be true or false (got {self.jobs_before_answer!r})"
            )
        if self.snapshot_seconds < 0 or self.boot_seconds < 0:
            raise ValueError("durations must not be negative")
        for region, host in self.catalog_storage_hosts.items():
            if not re.fullmatch(r"https?://[^/\s]+", str(host)):
                raise ValueError(
                    f"catalog_storage_hosts[{region!r}] must be a scheme and host, "
                    f"e.g. http://127.0.0.1:8080 (got {host!r})"
                )
        for region, services in self.catalog_missing_services.items():
            unknown = sorted(set(services) - set(CATALOG_SERVICE_TYPES))
            if unknown:
                raise ValueError(
                    f"catalog_missing_services[{region!r}]: no service type "
                    f"{', '.join(unknown)} (the catalog has {', '.join(CATALOG_SERVICE_TYPES)})"
                )
        if not isinstance(self.glance_regions, str):
            raise ValueError("glance_regions must be a string such as 'IAD' or 'DFW,IAD'")
        for region, methods in self.import_methods.items():
            unknown = sorted(set(methods) - set(IMPORT_METHODS))
            if unknown:
                raise ValueError(
                    f"import_methods[{region!r}]: unknown method(s) {', '.join(unknown)} "
                    f"(the sandbox's Glance offers {', '.join(IMPORT_METHODS)})"
                )
        unknown_keys = sorted(set(self.import_filtering) - set(IMPORT_FILTERING_DEFAULTS))
        if unknown_keys:
            raise ValueError(
                f"import_filtering: no option {', '.join(unknown_keys)} "
                f"(Glance's are {', '.join(IMPORT_FILTERING_DEFAULTS)})"
            )

    def is_glance_region(self, region: str) -> bool:
        """Whether ``region``'s Images API serves Glance's image data API."""
        return region.upper() in {r.strip().upper() for r in self.glance_regions.split(",")}

    def enabled_import_methods(self, region: str) -> list[str]:
        """The import methods ``region``'s Glance offers (none where it is Cloud Images)."""
        if not self.is_glance_region(region):
            return []
        return list(self.import_methods.get(region.upper(), DEFAULT_IMPORT_METHODS))

    def filtering(self, own_ports: list[int]) -> dict[str, list[Any]]:
        """Glance's import filtering options in effect; ``own_ports``: the cloud's endpoints."""
        options = {name: list(value) for name, value in IMPORT_FILTERING_DEFAULTS.items()}
        if "allowed_ports" not in self.import_filtering:
            options["allowed_ports"] += own_ports
        options.update(self.import_filtering)
        return options

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxOptions:
        return cls().updated(data)

    def updated(self, changes: dict[str, Any]) -> SandboxOptions:
        """A copy with ``changes`` applied; sizes may be strings like ``"8MiB"``."""
        known = {field.name: field for field in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}")
        coerced = {name: _coerce(name, value) for name, value in changes.items()}
        return replace(self, **coerced)

    @property
    def effective_segment_bytes(self) -> int:
        """Export segment size, clamped to the clusters' single-object cap."""
        if self.max_file_size is None:
            return self.export_segment_bytes
        return min(self.export_segment_bytes, self.max_file_size)


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        if name != "max_file_size":
            raise ValueError(f"{name} cannot be None")
        return None
    if name == "catalog_storage_hosts":
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object of region: host (got {value!r})")
        return {str(region).upper(): str(host) for region, host in value.items()}
    if name == "catalog_missing_services":
        if not isinstance(value, dict) or not all(
            isinstance(types, list | tuple) for types in value.values()
        ):
            raise ValueError(f"{name} must be an object of region: [service type] (got {value!r})")
        return {str(region).upper(): [str(t) for t in types] for region, types in value.items()}
    if name == "import_methods":
        if not isinstance(value, dict) or not all(
            isinstance(methods, list | tuple) for methods in value.values()
        ):
            raise ValueError(
                f"{name} must be an object of region: [method], e.g. "
                f'{{"IAD": ["glance-direct", "web-download"]}} (got {value!r})'
            )
        return {str(region).upper(): [str(m) for m in methods] for region, methods in value.items()}
    if name == "import_filtering":
        if not isinstance(value, dict) or not all(
            isinstance(items, list | tuple) for items in value.values()
        ):
            raise ValueError(
                f'{name} must be an object of option: [value], e.g. {{"allowed_ports": [80]}} '
                f"(got {value!r})"
            )
        return {
            str(key): [int(v) if key.endswith("_ports") else str(v) for v in items]
            for key, items in value.items()
        }
    if name.endswith("_seconds"):
        return float(value)
    if name.endswith(("_bytes", "_size", "_segments")):
        return parse_size(value)
    return value


def parse_size(value: str | int | float) -> int:
    """Bytes from ``1048576``, ``"1MiB"``, ``"1.5 GB"``, ``"64k"`` (k/m/g are binary)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {value!r} (e.g. 1048576, 64KiB, 8MiB, 1GB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
