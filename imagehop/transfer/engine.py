"""Copy one object from a source region's Swift to a target region's Swift as an SLO.

Usable in one call (:func:`transfer_object`), or as the two halves the Prefect tasks wrap
(``plan-copy``, then ``copy-segments`` running :func:`copy_plan`)::

    layout = discover_source(src, container, name)          # what the source is made of
    plan = plan_transfer(layout, dst.limits(), tc, to, segment_size)   # pure data
    report = copy_plan(src, dst, plan, concurrency=8, progress=show)
        # prepare_target: the containers exist
        # find_finished_segments: resume from what a past run verified
        # copy_segments: the missing segments, by worker threads
        # write_manifest (unless an earlier run's still matches) and verify_target

:func:`copy_plan` is the one copy orchestrator: the CLI, the flows, the tests and the
benchmark all copy through it.

**Sources.** The source is a region's Swift (a DLO, SLO or plain object, above) or a Glance
image (``discover_glance_source(images, image_id)`` instead of ``discover_source``, then
``copy_plan(images, ...)`` with the source region's
:class:`~imagehop.glance.GlanceImages`): the workers read their pieces through one small seam,
:mod:`imagehop.transfer.ranges`, so this loop, its verification, resume and retries are the
same for both. A Glance image is one source segment keyed on its ``checksum``; the identity
each ranged GET is checked against is the ``Content-MD5`` Glance sends (the checksum). A plan
whose source kind does not match the source passed is refused before anything is created.

**Streaming.** Each worker thread copies one target segment at a time: ranged GETs of its
source pieces feed one PUT through a file-like reader, ``chunk_size`` bytes per read. No
segment is ever held whole in memory and nothing touches local disk.

**Memory bound.** A worker reads ``chunk = min(chunk_size, block size of the target store)``
bytes at a time (both 1 MiB by default) and holds at most three such buffers at once (the
chunk being received, the copy handed to the PUT, the one being sent), so the copy's buffers
stay below::

    3 x concurrency x chunk        (8 workers x 1 MiB: at most 24 MiB)

on top of the interpreter and its libraries (about 43 MiB), whatever the segment or object
size. Measured by ``benchmarks/transfer_bench.py`` (peak RSS of the copier process): 45.5 MiB
with 1 worker, 60 MiB with 8, the same for 1 GiB and 4 GiB objects, i.e. about 2 chunks per
worker in practice.

**Streams.** ``concurrency=N`` copies N segments at once, always. ``concurrency=None`` (the
default of the settings and the CLI) lets the count adapt to the link: it grows while the
aggregate rate still grows, halves on 429/503, measures again after 5 minutes settled below
its cap, and stays within what the memory bound above allows for 48 MiB of buffers (16
streams of 1 MiB chunks: a process without Prefect peaks within 96 MiB) and the per-region
cap; the same worker loop runs, a gate decides how many of its threads may start a segment
(:mod:`imagehop.transfer.streams`). The report says what it settled on (``streams``).

**Verification.** A target segment that is exactly one whole source object is PUT with the
listed MD5 as its ``ETag``: Swift recomputes it and answers 422 (IntegrityError) on any
difference, which verifies the bytes end to end. Other segments (a split or merged range, a
plain source object, a range of a Glance image) are checked on the way: each ranged GET must
answer exactly the requested range of an object whose ETag (for Glance: ``Content-MD5``) still
equals the listed one, and the MD5 computed while sending must equal the ETag Swift returns.
Only then is the segment marked verified with the metadata
``X-Object-Meta-Imagehop-Verified: <source_key> <md5>``, which is what a later run's resume
check trusts. The SLO manifest PUT makes Swift check every segment's size and ETag, and
:func:`verify_target` compares the result with the plan. The range checks cannot see bytes
altered in flight from the source (they are what is sent and stored); for a Glance image the
hash check of the imported copy (:func:`~imagehop.glance.check_same_image`) is the end-to-end
proof.

**Stopping and resuming.** After a failed segment, an exception from ``progress`` or Ctrl-C,
no new segment starts and the ones in flight are finished, so a later run (same plan, same
segment names) skips them. A crash loses only the segments in flight: at most
``concurrency x segment size`` bytes are copied twice.

**Retries.** A failed segment is retried here, and only here, by re-opening its source ranges
(never by replaying a stream): up to ``attempts`` tries with the backoff formula of
:mod:`imagehop.retries` (at least the cloud's ``Retry-After``), for errors it allows
(transport, 5xx, rate limits, a refused token, which the store has already invalidated so the
next try uses a new one). An error that used up more than one attempt is marked
``exhausted_by == "segment"``, so a layer around the copy (a Prefect task) does not retry it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait

from pydantic import BaseModel, ConfigDict

from imagehop.errors import ImagehopError, IntegrityError, NotFoundError
from imagehop.object_store import VERIFIED_META, MiB, ObjectInfo, ObjectStore, RangeReader
from imagehop.retries import SEGMENT, SEGMENT_RETRY, Backoff, give_up, may_retry, retry_delay
from imagehop.transfer.plan import Piece, SegmentSpec, TransferPlan, plan_transfer
from imagehop.transfer.ranges import Source, opened, range_source
from imagehop.transfer.source import LISTING_ATTEMPTS, LISTING_DELAY_SECONDS, discover_source
from imagehop.transfer.streams import (
    DEFAULT_START,
    MAX_STREAMS,
    StreamChange,
    StreamController,
    StreamGate,
    memory_stream_cap,
)

#: ``progress(bytes_done, bytes_total, segments_done, segments_total)``. Called from the worker
#: threads (serialized by a lock, so values never go backwards except when a failed attempt's
#: bytes are taken back); keep it quick. An exception raised by it aborts the transfer.
Progress = Callable[[int, int, int, int], None]
Sleep = Callable[[float], None]

#: The segment layer of the retry table (:data:`imagehop.retries.SEGMENT_RETRY`).
DEFAULT_ATTEMPTS = SEGMENT_RETRY.attempts
DEFAULT_BACKOFF_SECONDS = SEGMENT_RETRY.backoff.first_seconds
MAX_BACKOFF_SECONDS = SEGMENT_RETRY.backoff.cap_seconds


class SegmentResult(BaseModel):
    """A target segment that is in place and verified."""

    model_config = ConfigDict(frozen=True)

    index: int
    name: str
    size: int
    etag: str
    copied: bool  # False when a previous run had already copied it
    attempts: int = 0
    seconds: float = 0.0


class TransferReport(BaseModel):
    """What :func:`transfer_object` did."""

    model_config = ConfigDict(frozen=True)

    plan: TransferPlan
    results: tuple[SegmentResult, ...]
    manifest_etag: str
    seconds: float
    #: Streams the copy ran with: the fixed ``concurrency``, or the count the adaptive
    #: controller settled on (``streams_adaptive``; how it got there: ``stream_changes``).
    streams: int = 0
    streams_adaptive: bool = False
    stream_changes: tuple[StreamChange, ...] = ()

    @property
    def bytes_copied(self) -> int:
        return sum(result.size for result in self.results if result.copied)

    @property
    def segments_skipped(self) -> int:
        return sum(1 for result in self.results if not result.copied)

    def counting_as_copied(self, indexes: Iterable[int]) -> TransferReport:
        """The same report, with the segments ``indexes`` counted as copied (e.g. by an earlier
        try of the same step)."""
        wanted = set(indexes)
        results = tuple(
            result.model_copy(update={"copied": True}) if result.index in wanted else result
            for result in self.results
        )
        return self.model_copy(update={"results": results})


class TransferAborted(Exception):
    """Internal: a worker stops because another one failed (never escapes the engine)."""


# -- one segment ---------------------------------------------------------------------------


class SegmentReader:
    """File-like body of one target segment: its source pieces, read in order, chunk by chunk.

    Opens each piece's ranged GET only when the previous one is exhausted, optionally computes
    the MD5 of everything read, reports each chunk to ``on_bytes``, and stops with
    TransferAborted as soon as ``abort`` is set.
    """

    def __init__(
        self,
        source: Source,
        spec: SegmentSpec,
        chunk_size: int,
        on_bytes: Callable[[int], None] | None = None,
        abort: threading.Event | None = None,
    ) -> None:
        self._source = range_source(source)
        self._pieces = list(spec.pieces)
        self._chunk_size = chunk_size
        self._check_source = spec.expected_md5 is None  # else the target verifies the bytes
        self._md5 = hashlib.md5(usedforsecurity=False) if spec.expected_md5 is None else None
        self._on_bytes = on_bytes
        self._abort = abort
        self._current: RangeReader | None = None
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        if self._abort is not None and self._abort.is_set():
            raise TransferAborted("another segment failed")
        wanted = self._chunk_size if size is None or size < 0 else min(size, self._chunk_size)
        while True:
            if self._current is None:
                if not self._pieces:
                    return b""
                self._current = self._open(self._pieces.pop(0))
            data = self._current.read(wanted)
            if data:
                break
            self._current = None
        self.bytes_read += len(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._on_bytes is not None:
            self._on_bytes(len(data))
        return data

    def _open(self, piece: Piece) -> RangeReader:
        return self._source.open_piece(piece, self._chunk_size, self._check_source)

    def md5(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None else None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None


def copy_segment(
    source: Source,
    target: ObjectStore,
    plan: TransferPlan,
    spec: SegmentSpec,
    chunk_size: int = MiB,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF_SECONDS,
    sleep: Sleep = time.sleep,
    on_bytes: Callable[[int], None] | None = None,
    abort: threading.Event | None = None,
    on_retry: Callable[[ImagehopError], None] | None = None,
) -> SegmentResult:
    """Copy one target segment and verify it; retry it from its source on retryable errors.

    Args:
        source, target: the two regions' stores (the source: the source region's
            :class:`~imagehop.glance.GlanceImages` for a Glance image's plan, see
            :mod:`imagehop.transfer.ranges`).
        plan: the transfer plan ``spec`` belongs to.
        spec: the segment to copy.
        chunk_size: bytes per read (the memory bound's unit).
        attempts: tries in all, for retryable errors; when more than one were used up, the
            error raised is marked ``exhausted_by == "segment"`` (no layer above retries it).
        backoff: first delay between tries (doubles, jittered, at most 30 s, at least the
            cloud's ``Retry-After``).
        sleep: injectable sleep.
        on_bytes: called with each chunk's size (negative to take back a failed attempt's).
        abort: when set, the copy stops at the next chunk.
        on_retry: called with each error that is retried (the adaptive stream count
            backs off on them).

    Returns:
        The verified segment.

    Raises:
        IntegrityError: the bytes did not verify (not retried).
        ImagehopError: the last error once ``attempts`` are used up, or one that may not be
            retried (not retryable, or already given up on by the object store).
    """
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        reader = SegmentReader(source, spec, chunk_size, on_bytes, abort)
        try:
            etag = _copy_once(target, plan, spec, reader)
        except ImagehopError as error:
            if on_bytes is not None and reader.bytes_read:
                on_bytes(-reader.bytes_read)
            if not may_retry(error):
                raise
            if attempt == attempts:
                if attempts > 1:
                    give_up(error, SEGMENT)  # this layer owned the retries: none above
                raise
            if on_retry is not None:
                on_retry(error)
            sleep(_delay(error, attempt, backoff))
            continue
        finally:
            reader.close()
        return SegmentResult(
            index=spec.index,
            name=spec.name,
            size=spec.length,
            etag=etag,
            copied=True,
            attempts=attempt,
            seconds=time.monotonic() - started,
        )
    raise AssertionError("unreachable")  # the loop returns or raises


def _copy_once(
    target: ObjectStore, plan: TransferPlan, spec: SegmentSpec, reader: SegmentReader
) -> str:
    etag = target.put_stream(
        plan.segments_container, spec.name, reader, spec.length, etag=spec.expected_md5
    )
    if reader.bytes_read != spec.length:
        raise IntegrityError(f"segment {spec.index}: read {reader.bytes_read} of {spec.length}")
    expected = spec.expected_md5 or reader.md5()
    if etag != expected:
        raise IntegrityError(
            f"segment {spec.index} ({spec.name}): the target stored ETag {etag}, "
            f"the bytes sent have MD5 {expected}"
        )
    if spec.expected_md5 is None:
        target.post_metadata(
            plan.segments_container, spec.name, {VERIFIED_META: verified_marker(spec, etag)}
        )
    return etag


def verified_marker(spec: SegmentSpec, etag: str) -> str:
    """Metadata value saying ``spec``'s bytes were verified to have MD5 ``etag``."""
    return f"{spec.source_key} {etag}"


def _delay(error: ImagehopError, attempt: int, backoff: float) -> float:
    return retry_delay(Backoff(backoff, MAX_BACKOFF_SECONDS), attempt, error)


# -- all segments --------------------------------------------------------------------------


class _Tracker:
    """Progress counters shared by the workers."""

    def __init__(
        self, callback: Progress | None, plan: TransferPlan, done: Sequence[SegmentResult]
    ) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._bytes_total = plan.size
        self._segments_total = len(plan.segments)
        self._bytes = sum(result.size for result in done)
        self._segments = len(done)

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self._bytes += count
            self._report()

    def add_segment(self) -> None:
        with self._lock:
            self._segments += 1
            self._report()

    def _report(self) -> None:
        if self._callback is None:
            return
        try:
            self._callback(self._bytes, self._bytes_total, self._segments, self._segments_total)
        except BaseException:
            # The error stops the copy from the worker that met it; the callback is not called
            # again, so the other workers' segments in flight finish instead of failing too.
            self._callback = None
            raise


def copy_segments(
    source: Source,
    target: ObjectStore,
    plan: TransferPlan,
    concurrency: int | None = 8,
    progress: Progress | None = None,
    finished: Iterable[SegmentResult] = (),
    chunk_size: int = MiB,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF_SECONDS,
    sleep: Sleep = time.sleep,
    streams: StreamGate | None = None,
) -> list[SegmentResult]:
    """Copy every segment of ``plan`` not in ``finished`` with ``concurrency`` worker threads.

    Args:
        concurrency: streams at once; None: adaptive (``streams``, or a gate capped by
            :func:`~imagehop.transfer.streams.memory_stream_cap`), see
            :mod:`imagehop.transfer.streams`.
        progress: see :data:`Progress`; called from the worker threads.
        finished: segments already in place (from :func:`find_finished_segments`).
        streams: the adaptive gate to use when ``concurrency`` is None (the caller reads the
            settled count from it).
        Others: as for :func:`copy_segment`.

    Returns:
        One result per segment of the plan, in index order (``finished`` ones included).

    Stopping: after the first failed segment (or an exception from ``progress``) no new
    segment starts; the ones in flight are finished, since a later run can reuse them, and
    then the error is raised. The same goes for Ctrl-C (KeyboardInterrupt) in the calling
    thread; a second Ctrl-C while waiting stops the workers at their next chunk.

    Raises:
        The first error of any segment, once the segments in flight are done.
    """
    done = {result.index: result for result in finished}
    todo = [spec for spec in plan.segments if spec.index not in done]
    tracker = _Tracker(progress, plan, list(done.values()))
    abort = threading.Event()  # stop the segments in flight at their next chunk
    stopping = threading.Event()  # start no new segment
    gate, workers = None, concurrency or 1
    if concurrency is None:
        gate = streams or adaptive_gate(chunk_size, None, len(todo))
        workers = gate.controller.cap
    on_bytes = tracker.add_bytes if gate is None else _both(tracker.add_bytes, gate.on_bytes)

    def work(spec: SegmentSpec) -> SegmentResult | None:
        if stopping.is_set() or (gate is not None and not gate.enter(stopping)):
            return None
        try:
            result = copy_segment(
                reader,  # the workers' source, opened below
                target,
                plan,
                spec,
                chunk_size,
                attempts,
                backoff,
                sleep,
                on_bytes,
                abort,
                None if gate is None else gate.on_error,
            )
            tracker.add_segment()
        except BaseException:
            stopping.set()
            raise
        finally:
            if gate is not None:
                gate.leave()
        return result

    with (
        opened(source, plan.source.kind) as reader,
        ThreadPoolExecutor(max(1, workers), thread_name_prefix="imagehop-copy") as pool,
    ):
        futures = [pool.submit(work, spec) for spec in todo]
        try:
            failure = _collect(futures, done)
        except BaseException:
            stopping.set()
            _finish_in_flight(futures, abort)
            raise
    if failure is not None:
        raise failure
    return [done[index] for index in sorted(done)]


def adaptive_gate(chunk_size: int, stream_cap: int | None, segments: int) -> StreamGate:
    """The adaptive stream count for a copy of ``segments`` segments: capped by memory
    (``chunk_size``), by ``stream_cap`` (per-region settings) and by the segments."""
    cap = min(memory_stream_cap(chunk_size), stream_cap or MAX_STREAMS, max(1, segments))
    return StreamGate(StreamController(cap))


def _both(first: Callable[[int], None], second: Callable[[int], None]) -> Callable[[int], None]:
    def both(count: int) -> None:
        first(count)
        second(count)

    return both


def _collect(
    futures: list[Future[SegmentResult | None]], done: dict[int, SegmentResult]
) -> BaseException | None:
    """Gather results as they come; the first failure is returned once all are done (after
    it, the workers start no new segment: theirs come back as None)."""
    failure: BaseException | None = None
    for future in as_completed(futures):
        error = future.exception()
        if error is not None:
            failure = failure or error
        elif (result := future.result()) is not None:
            done[result.index] = result
    return failure


def _finish_in_flight(futures: list[Future[SegmentResult | None]], abort: threading.Event) -> None:
    """Interrupted while waiting: let running segments finish, unless interrupted again."""
    try:
        wait(futures)
    except BaseException:
        abort.set()
        raise


# -- around the copy -----------------------------------------------------------------------


def prepare_target(target: ObjectStore, plan: TransferPlan) -> None:
    """Make sure the target container and the segments container exist; the ones created
    here are marked as imagehop's (``owned``, see :mod:`imagehop.transfer.tempurl`)."""
    target.ensure_container(plan.target_container, owned=True)
    if plan.segments:
        target.ensure_container(plan.segments_container, owned=True)


def find_finished_segments(
    target: ObjectStore, plan: TransferPlan, concurrency: int = 8
) -> list[SegmentResult]:
    """Segments of ``plan`` that a previous run already put in place and verified.

    A segment counts when an object of that name exists with the planned size and either
    its ETag equals the expected MD5, or (MD5 unknown in advance) it carries the engine's
    verified marker for the same source ranges and its current ETag.
    """
    try:
        listing = target.list_objects(plan.segments_container, plan.segment_prefix)
    except NotFoundError:
        return []
    present = {item.name: item for item in listing}
    candidates = [
        spec
        for spec in plan.segments
        if spec.name in present and present[spec.name].size == spec.length
    ]
    known = [spec for spec in candidates if spec.expected_md5 is not None]
    unknown = [spec for spec in candidates if spec.expected_md5 is None]
    finished = [spec for spec in known if present[spec.name].etag == spec.expected_md5]
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="imagehop-resume") as pool:
        heads = pool.map(lambda s: target.head_object(plan.segments_container, s.name), unknown)
        for spec, info in zip(unknown, heads, strict=True):
            if info.metadata.get(VERIFIED_META) == verified_marker(spec, info.etag):
                finished.append(spec)
    results = [
        SegmentResult(
            index=spec.index,
            name=spec.name,
            size=spec.length,
            etag=present[spec.name].etag,
            copied=False,
        )
        for spec in finished
    ]
    return sorted(results, key=lambda result: result.index)


def write_manifest(
    target: ObjectStore, plan: TransferPlan, results: Iterable[SegmentResult]
) -> str:
    """PUT the target object as an SLO of the plan's segments; return its ETag.

    A 0-byte source becomes a plain 0-byte object (an SLO needs non-empty segments).

    Raises:
        IntegrityError: a segment has no result or its size/ETag contradicts the plan, or
            Swift refused the manifest.
    """
    by_index = {result.index: result for result in results}
    entries = []
    for spec in plan.segments:
        result = by_index.get(spec.index)
        _check_result(spec, result)
        assert result is not None
        entries.append(
            {"path": plan.segment_path(spec), "etag": result.etag, "size_bytes": spec.length}
        )
    if not entries:
        return target.put_bytes(plan.target_container, plan.target_object, b"")
    return target.put_slo_manifest(
        plan.target_container, plan.target_object, entries, plan.source.content_type
    )


def _check_result(spec: SegmentSpec, result: SegmentResult | None) -> None:
    if result is None:
        raise IntegrityError(f"segment {spec.index} ({spec.name}) was not copied")
    if result.size != spec.length or (spec.expected_md5 and result.etag != spec.expected_md5):
        raise IntegrityError(
            f"segment {spec.index} ({spec.name}) is {result.size} bytes with ETag "
            f"{result.etag}; the plan wants {spec.length} bytes"
            + (f" with MD5 {spec.expected_md5}" if spec.expected_md5 else "")
        )


def verify_target(target: ObjectStore, plan: TransferPlan) -> ObjectInfo:
    """Check the written target against the plan: total size, SLO segment count, names,
    sizes, known MD5s, and the SLO ETag (MD5 of the segments' MD5s).

    Raises:
        IntegrityError: any difference.
        NotFoundError: there is no target object.
    """
    info = target.head_object(plan.target_container, plan.target_object)
    where = f"{plan.target_container}/{plan.target_object}"
    if info.size != plan.size:
        raise IntegrityError(f"{where} is {info.size} bytes, the source {plan.size}")
    if not plan.segments:
        return info
    if not info.is_slo:
        raise IntegrityError(f"{where} is not a static large object")
    manifest = target.get_slo_manifest(plan.target_container, plan.target_object)
    if len(manifest) != len(plan.segments):
        raise IntegrityError(f"{where} has {len(manifest)} segments, the plan {len(plan.segments)}")
    for entry, spec in zip(manifest, plan.segments, strict=True):
        _check_manifest_entry(where, plan, spec, entry)
    expected = _md5_of_md5s(str(entry["hash"]) for entry in manifest)
    if info.etag != expected:
        raise IntegrityError(f"{where} has ETag {info.etag}, its segments give {expected}")
    return info


def _check_manifest_entry(
    where: str, plan: TransferPlan, spec: SegmentSpec, entry: dict[str, object]
) -> None:
    problems = []
    if entry.get("name") != plan.segment_path(spec):
        problems.append(f"is {entry.get('name')!r}")
    if entry.get("bytes") != spec.length:
        problems.append(f"has {entry.get('bytes')} bytes, not {spec.length}")
    if spec.expected_md5 and entry.get("hash") != spec.expected_md5:
        problems.append(f"has MD5 {entry.get('hash')}, not {spec.expected_md5}")
    if problems:
        raise IntegrityError(f"{where}: segment {spec.index} " + ", ".join(problems))


def _md5_of_md5s(etags: Iterable[str]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for etag in etags:
        digest.update(etag.encode())
    return digest.hexdigest()


def delete_segments(target: ObjectStore, plan: TransferPlan) -> int:
    """Bulk-delete every object under the plan's segment prefix (e.g. after a failure, or
    when the target object is no longer wanted); return how many were deleted."""
    try:
        listing = target.list_objects(plan.segments_container, plan.segment_prefix)
    except NotFoundError:
        return 0
    result = target.bulk_delete((plan.segments_container, item.name) for item in listing)
    return result.deleted


# -- a plan, copied -------------------------------------------------------------------------


def copy_plan(
    source: Source,
    target: ObjectStore,
    plan: TransferPlan,
    concurrency: int | None = 8,
    progress: Progress | None = None,
    chunk_size: int = MiB,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF_SECONDS,
    sleep: Sleep = time.sleep,
    finished: Sequence[SegmentResult] | None = None,
    stream_cap: int | None = None,
) -> TransferReport:
    """Put the plan's target object in place: the containers, every segment not verified in
    place yet (copied by ``concurrency`` workers), the SLO manifest, and the final check.

    ``concurrency`` None: the stream count adapts to the link (:mod:`imagehop.transfer.streams`),
    at most ``stream_cap`` (and what memory allows); the report says what it settled on.

    ``finished``: the resume check's answer if the caller already has it (else it is read
    from the target, :func:`find_finished_segments`).

    A manifest an earlier run wrote that still matches the plan is left as it is (the staged
    object keeps its timestamp, which tells imports of it from older ones).

    Raises:
        IntegrityError: a segment or the written object does not verify.
        ImagehopError: the first segment error once the segments in flight are done.
    """
    started = time.monotonic()
    range_source(source, plan.source.kind)  # the right kind of source, before any side effect
    prepare_target(target, plan)
    if finished is None:
        finished = find_finished_segments(target, plan, concurrency or DEFAULT_START)
    gate = None
    if concurrency is None:
        gate = adaptive_gate(chunk_size, stream_cap, len(plan.segments) - len(finished))
    results = copy_segments(
        source, target, plan, concurrency, progress, finished, chunk_size, attempts, backoff,
        sleep, gate,
    )  # fmt: skip
    etag = _existing_manifest(target, plan) if len(finished) == len(results) else None
    if etag is None:
        etag = write_manifest(target, plan, results)
        verify_target(target, plan)
    return TransferReport(
        plan=plan,
        results=tuple(results),
        manifest_etag=etag,
        seconds=time.monotonic() - started,
        streams=concurrency or (gate.controller.reported if gate else 0),
        streams_adaptive=gate is not None,
        stream_changes=tuple(gate.controller.changes) if gate else (),
    )


def _existing_manifest(target: ObjectStore, plan: TransferPlan) -> str | None:
    """The ETag of a target object that already matches the plan, else None."""
    try:
        return verify_target(target, plan).etag
    except (NotFoundError, IntegrityError):
        return None


# -- all in one ----------------------------------------------------------------------------


def transfer_object(
    source: ObjectStore,
    target: ObjectStore,
    source_container: str,
    source_object: str,
    target_container: str,
    target_object: str,
    segment_size: int = 256 * MiB,
    concurrency: int | None = 8,
    chunk_size: int = MiB,
    progress: Progress | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF_SECONDS,
    listing_attempts: int = LISTING_ATTEMPTS,
    listing_delay: float = LISTING_DELAY_SECONDS,
    sleep: Sleep = time.sleep,
    stream_cap: int | None = None,
) -> TransferReport:
    """Copy ``source_container/source_object`` to ``target_container/target_object``.

    Discovers the source, plans against the target's limits and copies the plan
    (:func:`copy_plan`; ``concurrency`` None: adaptive streams, at most ``stream_cap``).
    Arguments as for the step functions this chains.
    """
    layout = discover_source(
        source, source_container, source_object, listing_attempts, listing_delay, sleep
    )
    plan = plan_transfer(layout, target.limits(), target_container, target_object, segment_size)
    return copy_plan(
        source, target, plan, concurrency, progress, chunk_size, attempts, backoff, sleep,
        stream_cap=stream_cap,
    )  # fmt: skip
