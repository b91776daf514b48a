"""The segment plan: which target segment gets which source bytes. Pure data, computed before
any byte moves, picklable and JSON-able (:meth:`TransferPlan.to_json`).

Rules, in order of priority:

1. Respect the target: every segment is at most ``max_file_size`` bytes, every segment but the
   last at least ``min_segment_size`` (Cloud Files documents 1 MiB), at most
   ``max_manifest_segments`` segments. No segment is empty (a 0-byte source has no segments
   and becomes a plain 0-byte object).
2. Map target segments 1:1 onto source segments where they fit: the listed MD5 of the source
   segment is then the ETag the target must compute, which verifies the bytes end to end.
3. Split a source segment larger than ``segment_size`` into balanced parts; merge source
   segments smaller than the minimum with their successors.
4. When that would need too many segments, raise the minimum and the size until it fits.

Segment names derive from the source's identity (its content fingerprint, size and the
segment size), so a second run plans the same names and can find what the first one finished.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from imagehop.errors import PreflightError
from imagehop.object_store import ClusterLimits
from imagehop.transfer.source_layout import SourceLayout, SourceSegment


class Piece(BaseModel):
    """``length`` bytes at ``offset`` of one source object."""

    model_config = ConfigDict(frozen=True)

    container: str
    name: str
    offset: int
    length: int
    source_etag: str | None  # the whole object's MD5 as listed, if known


class SegmentSpec(BaseModel):
    """One target segment: its name, where it sits in the object, and where its bytes come
    from. ``expected_md5`` is known when the segment is exactly one whole source object."""

    model_config = ConfigDict(frozen=True)

    index: int
    name: str
    offset: int
    length: int
    pieces: tuple[Piece, ...]
    expected_md5: str | None

    @property
    def source_key(self) -> str:
        """Short digest of the source ranges; recorded on segments verified by the engine."""
        text = "|".join(
            f"{p.container}/{p.name}@{p.offset}+{p.length}#{p.source_etag}" for p in self.pieces
        )
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class TransferPlan(BaseModel):
    """Everything needed to copy one object as an SLO; no network handles, no secrets."""

    model_config = ConfigDict(frozen=True)

    source: SourceLayout
    target_container: str
    target_object: str
    segments_container: str
    segment_size: int  # effective (after the limits), at most limits.max_file_size
    limits: ClusterLimits
    segments: tuple[SegmentSpec, ...]

    @property
    def size(self) -> int:
        return self.source.size

    @property
    def segment_prefix(self) -> str:
        """Common prefix of this plan's segment names in ``segments_container``."""
        return segment_prefix(self.target_object, self.source, self.segment_size)

    def segment_path(self, spec: SegmentSpec) -> str:
        """The ``path`` of ``spec`` in an SLO manifest (``/container/object``, unquoted)."""
        return f"/{self.segments_container}/{spec.name}"

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> TransferPlan:
        return cls.model_validate_json(text)


#: The smallest target segment :func:`segment_size_for_streams` goes down to: a split segment
#: costs the copier an MD5 (about 2 ms of CPU per MiB here) and one more request (its verified
#: marker), which smaller segments pay more often.
MIN_SPLIT_SEGMENT = 32 * 1024 * 1024


def segment_size_for_streams(
    layout: SourceLayout,
    segment_size: int,
    streams: int,
    waves: int = 3,
    smallest: int = MIN_SPLIT_SEGMENT,
) -> int:
    """A target segment size that gives ``streams`` streams at least ``waves`` segments each,
    where the source's own segments are too few (a few large segments cannot feed many
    streams, and the last wave runs half empty); ``segment_size`` itself otherwise.

    Never below ``smallest``, never above ``segment_size``. Not applied by default: split
    segments lose the source's MD5 (see the module docstring and benchmarks/README.md for
    what that costs); ``benchmarks.transfer_bench --split-for-streams`` measures it.
    """
    pieces = sum(1 for segment in layout.segments if segment.length)
    if layout.size == 0 or streams < 1 or pieces >= waves * streams:
        return segment_size
    wanted = -(-layout.size // (waves * streams))
    return min(segment_size, max(smallest, wanted))


def segment_prefix(target_object: str, source: SourceLayout, segment_size: int) -> str:
    return f"{target_object}/imagehop/{source.etag}/{source.size}/{segment_size}/"


def plan_transfer(
    layout: SourceLayout,
    limits: ClusterLimits,
    target_container: str,
    target_object: str,
    segment_size: int,
    segments_container: str | None = None,
) -> TransferPlan:
    """Plan the copy of ``layout`` to ``target_container/target_object`` as an SLO.

    Args:
        layout: the source, from :func:`~imagehop.transfer.source.discover_source`.
        limits: the *target* cluster's limits.
        target_container: container of the target object (the SLO manifest).
        target_object: name of the target object.
        segment_size: largest target segment wanted; clamped to the target's limits and grown
            when the object would need more segments than the target allows.
        segments_container: where segments go; default ``<target_container>_segments``.

    Raises:
        PreflightError: the object cannot fit in ``max_manifest_segments`` segments of at most
            ``max_file_size`` bytes, or the limits contradict each other.
    """
    if segment_size < 1:
        raise ValueError("segment_size must be positive")
    floor = max(limits.min_segment_size, 1)
    if floor > limits.max_file_size:
        raise PreflightError(
            f"the target's minimum segment size {floor} exceeds its object cap "
            f"{limits.max_file_size}"
        )
    size = max(min(segment_size, limits.max_file_size), floor)
    sources = [segment for segment in layout.segments if segment.length]
    boundaries = list(itertools.accumulate(segment.length for segment in sources))
    ends = cut_points(boundaries, layout.size, size, floor, limits.max_manifest_segments)
    if len(ends) > limits.max_manifest_segments:
        size, ends = _fewer_segments(boundaries, layout.size, size, limits)
    segments_container = segments_container or f"{target_container}_segments"
    prefix = segment_prefix(target_object, layout, size)
    starts = [0, *ends][: len(ends)]
    specs = tuple(
        _spec(index, prefix, start, end, sources, boundaries)
        for index, (start, end) in enumerate(zip(starts, ends, strict=True))
    )
    return TransferPlan(
        source=layout,
        target_container=target_container,
        target_object=target_object,
        segments_container=segments_container,
        segment_size=size,
        limits=limits,
        segments=specs,
    )


def cut_points(
    boundaries: Sequence[int], total: int, size: int, floor: int, limit: int | None = None
) -> list[int]:
    """End offsets of the target segments (stops early once there are more than ``limit``).

    Cuts at the nearest source boundary at least ``floor`` bytes ahead (or the end); when that
    boundary is more than ``size`` bytes ahead, cuts the span into balanced parts of at most
    ``size`` bytes. Every segment is then at most ``size`` and, except the last, at least
    ``floor`` bytes long.
    """
    ends: list[int] = []
    position = 0
    while position < total:
        index = bisect.bisect_left(boundaries, position + floor)
        boundary = boundaries[index] if index < len(boundaries) else total
        span = boundary - position
        if span <= size:
            cut = boundary
        else:
            parts = -(-span // size)
            part = -(-span // parts)
            cut = position + (part if part >= floor else size)
        ends.append(cut)
        position = cut
        if limit is not None and len(ends) > limit:
            break
    return ends


def _fewer_segments(
    boundaries: Sequence[int], total: int, size: int, limits: ClusterLimits
) -> tuple[int, list[int]]:
    """Raise the minimum (and the size with it) until the plan fits the manifest limit.

    With a minimum of ``total / (limit - 1)`` at most ``limit`` segments remain, since every
    segment but the last reaches the minimum; the gentler ``total / limit`` is tried first.
    """
    limit = limits.max_manifest_segments
    for divisor in (limit, limit - 1):
        floor = max(limits.min_segment_size, -(-total // divisor) if divisor > 0 else total)
        if floor > limits.max_file_size:
            break
        grown = min(limits.max_file_size, max(size, 2 * floor))
        ends = cut_points(boundaries, total, grown, floor, limit)
        if len(ends) <= limit:
            return grown, ends
    raise PreflightError(
        f"{total} bytes do not fit in {limit} segments of at most "
        f"{limits.max_file_size} bytes (the target's limits)"
    )


def _spec(
    index: int,
    prefix: str,
    start: int,
    end: int,
    segments: Sequence[SourceSegment],
    boundaries: Sequence[int],
) -> SegmentSpec:
    """The target segment [start, end) and the source pieces it is read from."""
    pieces = []
    first = bisect.bisect_right(boundaries, start)
    for number in range(first, len(segments)):
        segment_start = boundaries[number] - segments[number].length
        if segment_start >= end:
            break
        low, high = max(start, segment_start), min(end, boundaries[number])
        pieces.append(_piece(segments[number], low - segment_start, high - low))
    return SegmentSpec(
        index=index,
        name=f"{prefix}{index:08d}",
        offset=start,
        length=end - start,
        pieces=tuple(pieces),
        expected_md5=_expected_md5(pieces, segments[first] if first < len(segments) else None),
    )


def _piece(segment: SourceSegment, skip: int, length: int) -> Piece:
    return Piece(
        container=segment.container,
        name=segment.name,
        offset=segment.offset + skip,
        length=length,
        source_etag=segment.etag,
    )


def _expected_md5(pieces: Sequence[Piece], segment: SourceSegment | None) -> str | None:
    if len(pieces) != 1 or segment is None or not segment.whole or segment.etag is None:
        return None
    piece = pieces[0]
    if piece.offset != segment.offset or piece.length != segment.length:
        return None
    return segment.etag
