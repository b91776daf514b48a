"""What a transfer reports: typed, picklable, JSON-able records without secrets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PhaseTiming(BaseModel):
    """Wall-clock seconds one phase of the run took (waits for the cloud included)."""

    model_config = ConfigDict(frozen=True)

    name: str
    seconds: float


class SkippedProperty(BaseModel):
    """A property that was not copied to the new image, and why."""

    model_config = ConfigDict(frozen=True)

    key: str
    reason: str


class PropertyReport(BaseModel):
    """What copying the properties to the new image did."""

    model_config = ConfigDict(frozen=True)

    copied: tuple[str, ...] = ()  # the new image now has the source's value
    skipped: tuple[SkippedProperty, ...] = ()


#: The summary's source image when a re-run found the new image but no longer the source.
SOURCE_GONE = "not found (no image there carries the run key any more)"
#: An empty value of a summary row (a lone "-" would render as a list bullet in the UI).
NOTHING = "none"
#: A side of a plan without a cloud profile: the worker's own settings of that side.
WORKER_SOURCE = "the worker's own account (IMAGEHOP_*)"
WORKER_TARGET = "the worker's target account (IMAGEHOP_TARGET_*, else its own)"
#: Longest list value of one summary row: a longer list goes on several rows of that item.
ROW_WIDTH = 60
_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_bytes(count: int) -> str:
    """``512 bytes``, ``5.0 MiB``, ``1.2 GiB`` (binary units, one decimal)."""
    if count < 1024:
        return f"{count} bytes"
    value = float(count)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def list_rows(
    item: str, values: tuple[str, ...] | list[str], sep: str = ", "
) -> list[tuple[str, str]]:
    """``(item, value)`` rows of a list: as many values per row as fit :data:`ROW_WIDTH`
    (a longer value gets a row of its own, uncut); one ``none`` row for an empty list."""
    lines: list[str] = []
    for value in values:
        if lines and len(lines[-1]) + len(sep) + len(value) <= ROW_WIDTH:
            lines[-1] += sep + value
        else:
            lines.append(value)
    return [(item, line) for line in lines or [NOTHING]]


def cloud_rows(source_cloud: str | None, target_cloud: str | None) -> list[tuple[str, str]]:
    """Which cloud each side is, when a request named one (else no rows: as before)."""
    if source_cloud is None and target_cloud is None:
        return []
    return [
        ("source cloud", source_cloud or WORKER_SOURCE),
        ("target cloud", target_cloud or WORKER_TARGET),
    ]


class TransferResult(BaseModel):
    """The outcome of one transfer-image run."""

    model_config = ConfigDict(frozen=True)

    run_key: str
    source_region: str
    target_region: str
    source_image_id: str
    target_image_id: str
    coordinating_property: dict[str, str]
    transport: str = Field(
        default="rackspace-tasks", description="How the bytes moved (pre-flight's choice)."
    )
    snapshot_created: bool = False
    export_task_id: str | None = None
    import_task_id: str | None = None
    reused: tuple[str, ...] = Field(
        default=(), description="What an earlier run with the same run key had already done."
    )
    bytes_total: int = 0
    bytes_copied: int = 0
    segments_total: int = 0
    segments_copied: int = 0
    segments_skipped: int = 0
    properties: PropertyReport = PropertyReport()
    server_id: str | None = None
    flavor_id: str | None = None
    cleaned_up: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()
    phases: tuple[PhaseTiming, ...] = ()
    seconds: float = 0.0
    source_cloud: str | None = Field(
        default=None, description="The source's cloud profile (None: the worker's settings)."
    )
    target_cloud: str | None = Field(
        default=None, description="The target's cloud profile (None: the worker's settings)."
    )

    def summary_rows(self) -> list[dict[str, Any]]:
        """Rows of ``{"item", "value"}`` for a table artifact or a terminal table."""
        rows: list[tuple[str, Any]] = [
            ("run key", self.run_key),
            ("source image", f"{self.source_region} {self.source_image_id or SOURCE_GONE}"),
            ("target image", f"{self.target_region} {self.target_image_id}"),
            *cloud_rows(self.source_cloud, self.target_cloud),
            ("coordinating property", _pairs(self.coordinating_property)),
            ("transport", self.transport),
            ("snapshot created", "yes" if self.snapshot_created else "no"),
            ("export task", self.export_task_id or NOTHING),
            ("import task", self.import_task_id or NOTHING),
            *list_rows("reused from an earlier run", self.reused),
            ("data copied", self._copied()),
            (
                "segments copied / skipped / total",
                f"{self.segments_copied} / {self.segments_skipped} / {self.segments_total}",
            ),
            *list_rows("properties copied", self.properties.copied),
            *list_rows(
                "properties skipped", [f"{s.key} ({s.reason})" for s in self.properties.skipped]
            ),
            ("server booted", self.server_id or NOTHING),
            *list_rows("cleaned up", self.cleaned_up, "; "),
            *list_rows("remaining", self.remaining, "; "),
        ]
        rows += [(f"phase: {phase.name}", f"{phase.seconds:.1f} s") for phase in self.phases]
        rows.append(("total", f"{self.seconds:.1f} s"))
        return [{"item": item, "value": str(value)} for item, value in rows]

    def _copied(self) -> str:
        if not self.bytes_total:
            return NOTHING
        return f"{human_bytes(self.bytes_copied)} of {human_bytes(self.bytes_total)}"


class DryRunPlan(BaseModel):
    """What a transfer would do, from a dry run: nothing was created or moved."""

    model_config = ConfigDict(frozen=True)

    run_key: str
    source_region: str
    target_region: str
    source: str = Field(description="The image or server the transfer starts from.")
    checks: tuple[str, ...] = Field(description="Pre-flight checks that passed.")
    steps: tuple[str, ...]
    bytes: int
    bytes_exact: bool = Field(description="False when the size is an upper bound (a server).")
    segments: int
    segment_size: int
    estimated_seconds: float
    assumptions: tuple[str, ...]
    boot_flavor: str | None = None
    transport: str = Field(
        default="rackspace-tasks", description="How the bytes would move (pre-flight's choice)."
    )
    transport_reason: str = Field(default="", description="Why that transport.")
    notes: tuple[str, ...] = Field(
        default=(), description="What the target needs to boot the image (stated, not checked)."
    )
    source_cloud: str | None = Field(
        default=None, description="The source's cloud profile (None: the worker's settings)."
    )
    target_cloud: str | None = Field(
        default=None, description="The target's cloud profile (None: the worker's settings)."
    )

    def summary_rows(self) -> list[dict[str, Any]]:
        """Rows of ``{"item", "value"}`` for a table artifact or a terminal table."""
        size = human_bytes(self.bytes) if self.bytes_exact else f"at most {human_bytes(self.bytes)}"
        rows: list[tuple[str, Any]] = [
            ("run key", self.run_key),
            ("source", f"{self.source_region} {self.source}"),
            ("target region", self.target_region),
        ]
        rows += cloud_rows(self.source_cloud, self.target_cloud)
        rows += [
            ("size", size),
            ("segments (estimate)", f"{self.segments} of at most {human_bytes(self.segment_size)}"),
            ("estimated duration", f"{self.estimated_seconds / 60:.0f} min"),
            ("boot flavor", self.boot_flavor or NOTHING),
            ("transport", self.transport),
        ]
        if self.transport_reason:
            rows.append(("why this transport", self.transport_reason))
        rows += [("to boot it", note) for note in self.notes]
        rows += [(f"step {n}", step) for n, step in enumerate(self.steps, 1)]
        rows += [("check", check) for check in self.checks]
        rows += [("assumption", text) for text in self.assumptions]
        return [{"item": item, "value": str(value)} for item, value in rows]


Outcome = Literal["succeeded", "failed", "cancelled"]


class ImageOutcome(BaseModel):
    """One image of a batch."""

    model_config = ConfigDict(frozen=True)

    source: str
    status: Outcome
    target_image_id: str | None = None
    message: str = ""
    seconds: float = 0.0
    flow_run_id: str | None = Field(default=None, description="The image's transfer-image run.")
    flow_run_name: str | None = None


class BatchResult(BaseModel):
    """The outcome of a transfer-images run: one entry per image, in request order."""

    model_config = ConfigDict(frozen=True)

    source_region: str
    target_region: str
    outcomes: tuple[ImageOutcome, ...]

    @property
    def succeeded(self) -> tuple[ImageOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "succeeded")

    @property
    def failed(self) -> tuple[ImageOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def cancelled(self) -> tuple[ImageOutcome, ...]:
        """Images whose run was cancelled (with the batch, or on its own)."""
        return tuple(o for o in self.outcomes if o.status == "cancelled")

    def summary_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "source": o.source,
                "status": o.status,
                "target image": o.target_image_id or NOTHING,
                "seconds": f"{o.seconds:.1f}",
                "flow run": o.flow_run_name or o.flow_run_id or NOTHING,
                "message": o.message or NOTHING,
            }
            for o in self.outcomes
        ]


class KeptCopy(BaseModel):
    """A copy of the server that retention keeps in the target region."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    run_key: str
    created_at: str
    current: bool = Field(default=False, description="The copy this run made.")


DeletionKind = Literal["target image", "source snapshot", "intermediates"]


class Deletion(BaseModel):
    """One thing retention deleted (or, in a dry run, would delete)."""

    model_config = ConfigDict(frozen=True)

    kind: DeletionKind
    region: str
    what: str  # an image id, or the intermediate objects of a source image
    run_key: str
    created_at: str | None = None


class ReplicationResult(BaseModel):
    """The outcome of one replicate-server run: the transfer, then retention."""

    model_config = ConfigDict(frozen=True)

    server_id: str
    source_region: str
    target_region: str
    keep: int
    dry_run: bool = False
    transfer: TransferResult | DryRunPlan
    kept: tuple[KeptCopy, ...] = ()
    deleted: tuple[Deletion, ...] = Field(
        default=(), description="What retention deleted; in a dry run, what it would delete."
    )

    @property
    def deleted_images(self) -> tuple[str, ...]:
        """Ids of the target images deleted (or that would be)."""
        return tuple(d.what for d in self.deleted if d.kind == "target image")

    def summary_rows(self) -> list[dict[str, Any]]:
        """Rows of ``{"item", "value"}`` for a table artifact or a terminal table."""
        verb = "would delete" if self.dry_run else "deleted"
        target = (
            f"{self.target_region} {self.transfer.target_image_id}"
            if isinstance(self.transfer, TransferResult)
            else f"{self.target_region} (dry run: nothing created)"
        )
        rows: list[tuple[str, Any]] = [
            ("server", f"{self.source_region} {self.server_id}"),
            ("run key", self.transfer.run_key),
            ("new copy", target),
            ("copies kept (at most)", self.keep),
        ]
        rows += [
            ("kept", f"{c.image_id} ({c.created_at}{', this run' if c.current else ''})")
            for c in self.kept
        ]
        rows += [
            (verb, f"{d.kind} {d.region} {d.what} (run key {d.run_key})") for d in self.deleted
        ]
        if not self.deleted:
            rows.append((verb, NOTHING))
        return [{"item": item, "value": str(value)} for item, value in rows]


def _pairs(values: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items())
