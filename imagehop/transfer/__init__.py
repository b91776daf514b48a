"""The segment transfer engine: copy one object between two regions' Swift, or a Glance image
into a region's Swift, as an SLO, verified, resumable, in bounded memory. See
:mod:`imagehop.transfer.engine`."""

from imagehop.transfer.engine import (
    Progress,
    SegmentResult,
    TransferReport,
    copy_plan,
    copy_segment,
    copy_segments,
    delete_segments,
    find_finished_segments,
    prepare_target,
    transfer_object,
    verify_target,
    write_manifest,
)
from imagehop.transfer.glance_source import discover_glance_source
from imagehop.transfer.plan import Piece, SegmentSpec, TransferPlan, plan_transfer
from imagehop.transfer.ranges import RangeSource
from imagehop.transfer.source import discover_source
from imagehop.transfer.source_layout import SourceLayout, SourceSegment
from imagehop.transfer.streams import StreamChange, StreamController, memory_stream_cap

__all__ = [
    "Piece",
    "Progress",
    "RangeSource",
    "SegmentResult",
    "SegmentSpec",
    "SourceLayout",
    "SourceSegment",
    "StreamChange",
    "StreamController",
    "TransferPlan",
    "TransferReport",
    "copy_plan",
    "copy_segment",
    "copy_segments",
    "delete_segments",
    "discover_glance_source",
    "discover_source",
    "find_finished_segments",
    "memory_stream_cap",
    "plan_transfer",
    "prepare_target",
    "transfer_object",
    "verify_target",
    "write_manifest",
]
