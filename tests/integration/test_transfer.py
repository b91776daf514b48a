"""The segment transfer engine between two real Swift clusters (DFW -> IAD, IAD capped at 8 MiB).

Objects are a few MiB with 1 MiB segments, so every path (1:1 segments, split, merged, resumed,
refused) runs in well under a second per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from swiftclient import client as swift

from imagehop.errors import IntegrityError, NotFoundError, RateLimitedError, SourceIncompleteError
from imagehop.object_store import VERIFIED_META, ObjectStore
from imagehop.transfer import (
    Progress,
    SegmentResult,
    TransferPlan,
    copy_segments,
    discover_source,
    find_finished_segments,
    plan_transfer,
    prepare_target,
    transfer_object,
    verify_target,
    write_manifest,
)
from tests.integration.conftest import TARGET_CAP, SwiftPair

pytestmark = pytest.mark.cloud
MiB = 1024 * 1024
FAST = {"segment_size": MiB, "chunk_size": 256 * 1024, "backoff": 0.01, "listing_delay": 0.0}


class Interrupt(Exception):
    pass


def put_dlo(raw: swift.Connection, container: str, name: str, sizes: Sequence[int]) -> bytes:
    """An export-style DLO: ``name`` (0 bytes) + ``name-00001`` ... in the same container."""
    parts = [os.urandom(size) for size in sizes]
    for number, part in enumerate(parts, 1):
        raw.put_object(container, f"{name}-{number:05d}", part)
    raw.put_object(container, name, b"", headers={"X-Object-Manifest": f"{container}/{name}-"})
    return b"".join(parts)


def put_slo(
    raw: swift.Connection, container: str, name: str, sizes: Sequence[int], ranged: bool = False
) -> bytes:
    """An SLO whose segments live in ``<container>_parts``; the last entry is a sub-range of its
    object when ``ranged``."""
    parts_container = f"{container}_parts"
    raw.put_container(parts_container)
    manifest, content = [], b""
    for number, size in enumerate(sizes):
        part = os.urandom(size)
        raw.put_object(parts_container, f"p{number}", part)
        entry = {"path": f"/{parts_container}/p{number}"}
        if ranged and number == len(sizes) - 1:
            entry["range"] = f"100-{size - 101}"
            part = part[100 : size - 100]
        manifest.append(entry)
        content += part
    raw.put_object(container, name, json.dumps(manifest), query_string="multipart-manifest=put")
    return content


def read_all(raw: swift.Connection, container: str, name: str) -> bytes:
    body: bytes = raw.get_object(container, name)[1]
    return body


def md5_of_md5s(etags: Sequence[str]) -> str:
    return hashlib.md5("".join(etags).encode()).hexdigest()


@pytest.fixture
def dfw(swift_pair: SwiftPair) -> ObjectStore:
    return swift_pair.store("DFW")


@pytest.fixture
def iad(swift_pair: SwiftPair) -> ObjectStore:
    return swift_pair.store("IAD")


def test_dlo_with_uneven_last_segment_arrives_as_an_equal_slo(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    """Segments map 1:1, so the target SLO has the same ETag as the source DLO; progress ends
    at (size, size, segments, segments) and never goes backwards."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = put_dlo(swift_pair.raw("DFW"), src, "img.vhd", [MiB, MiB, MiB, 300_000])
    calls: list[tuple[int, int, int, int]] = []

    report = transfer_object(
        dfw,
        iad,
        src,
        "img.vhd",
        dst,
        "img.vhd",
        concurrency=3,
        progress=lambda *c: calls.append(c),
        **FAST,
    )

    raw = swift_pair.raw("IAD")
    assert read_all(raw, dst, "img.vhd") == content
    head = raw.head_object(dst, "img.vhd")
    assert head["x-static-large-object"] == "True"
    assert head["etag"].strip('"') == dfw.head_object(src, "img.vhd").etag
    assert [s.length for s in report.plan.segments] == [MiB, MiB, MiB, 300_000]
    assert all(s.expected_md5 for s in report.plan.segments)
    assert report.bytes_copied == len(content)
    assert calls[-1] == (len(content), len(content), 4, 4)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_slo_source_with_a_ranged_entry_is_split_and_merged_correctly(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    sizes = [MiB + MiB // 2, 2 * MiB, 700_000]
    content = put_slo(swift_pair.raw("DFW"), src, "img.vhd", sizes, ranged=True)

    report = transfer_object(dfw, iad, src, "img.vhd", dst, "copy.vhd", concurrency=2, **FAST)

    assert read_all(swift_pair.raw("IAD"), dst, "copy.vhd") == content
    assert report.plan.source.kind == "slo"
    assert sum(s.length for s in report.plan.segments) == len(content)
    assert any(len(s.pieces) > 1 for s in report.plan.segments)  # a merged remainder


def test_plain_object_is_split_and_each_part_marked_verified(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = os.urandom(3 * MiB + MiB // 2)
    swift_pair.raw("DFW").put_object(src, "disk.vhd", content)

    report = transfer_object(dfw, iad, src, "disk.vhd", dst, "disk.vhd", **FAST)

    assert read_all(swift_pair.raw("IAD"), dst, "disk.vhd") == content
    assert len(report.plan.segments) == 4
    for result in report.results:
        info = iad.head_object(report.plan.segments_container, result.name)
        assert info.metadata[VERIFIED_META].endswith(" " + info.etag)


def test_object_larger_than_the_target_cap(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    """10 MiB cannot be one object in IAD (8 MiB cap); asking for 64 MiB segments still works."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = os.urandom(10 * MiB)
    swift_pair.raw("DFW").put_object(src, "big.vhd", content)
    options = {**FAST, "segment_size": 64 * MiB}

    report = transfer_object(dfw, iad, src, "big.vhd", dst, "big.vhd", **options)

    assert read_all(swift_pair.raw("IAD"), dst, "big.vhd") == content
    assert report.plan.segment_size == TARGET_CAP
    assert all(s.length <= TARGET_CAP for s in report.plan.segments)
    assert len(report.plan.segments) == 2


def test_zero_byte_source_becomes_an_empty_object(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    swift_pair.raw("DFW").put_object(src, "empty", b"")

    report = transfer_object(dfw, iad, src, "empty", dst, "empty", **FAST)

    assert report.plan.segments == ()
    assert iad.head_object(dst, "empty").size == 0


def _interrupt_after(segments: int) -> Progress:
    def progress(done: int, total: int, segments_done: int, segments_total: int) -> None:
        if segments_done >= segments:
            raise Interrupt

    return progress


def test_resume_after_an_interrupted_run_moves_only_the_missing_segments(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    """Run 1 stops after 3 of 6 segments; run 2 copies the other 3 and leaves the first
    ones untouched (their Swift timestamps do not change)."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = put_dlo(swift_pair.raw("DFW"), src, "img.vhd", [MiB] * 5 + [123_456])
    with pytest.raises(Interrupt):
        transfer_object(
            dfw,
            iad,
            src,
            "img.vhd",
            dst,
            "img.vhd",
            concurrency=1,
            progress=_interrupt_after(3),
            **FAST,
        )
    plan = plan_transfer(discover_source(dfw, src, "img.vhd"), iad.limits(), dst, "img.vhd", MiB)
    first = find_finished_segments(iad, plan)
    assert [r.index for r in first] == [0, 1, 2]
    stamps = {r.name: iad.head_object(plan.segments_container, r.name).timestamp for r in first}
    moved: list[int] = []

    report = transfer_object(
        dfw, iad, src, "img.vhd", dst, "img.vhd", progress=lambda *c: moved.append(c[0]), **FAST
    )

    assert report.bytes_copied == 2 * MiB + 123_456
    assert moved[0] > 3 * MiB and moved[-1] == len(content)  # counting started at 3 MiB
    assert report.segments_skipped == 3
    for name, stamp in stamps.items():
        assert iad.head_object(plan.segments_container, name).timestamp == stamp
    assert read_all(swift_pair.raw("IAD"), dst, "img.vhd") == content


def test_resume_trusts_split_segments_only_with_the_verified_marker(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    """A split segment of the right size but without the marker (e.g. a PUT that completed
    but was never verified) is copied again."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = os.urandom(4 * MiB)
    swift_pair.raw("DFW").put_object(src, "disk.vhd", content)
    plan = plan_transfer(discover_source(dfw, src, "disk.vhd"), iad.limits(), dst, "d", MiB)
    prepare_target(iad, plan)
    with pytest.raises(Interrupt):
        copy_segments(dfw, iad, plan, 1, _interrupt_after(2), chunk_size=256 * 1024)
    iad.post_metadata(plan.segments_container, plan.segments[1].name, {})  # drop the marker

    finished = find_finished_segments(iad, plan)
    results = copy_segments(dfw, iad, plan, 2, finished=finished, chunk_size=256 * 1024)

    assert [r.index for r in finished] == [0]
    assert [r.index for r in results if r.copied] == [1, 2, 3]
    write_manifest(iad, plan, results)
    verify_target(iad, plan)
    assert read_all(swift_pair.raw("IAD"), dst, "d") == content


def test_missing_dlo_segment_is_found_before_any_byte_moves(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    raw = swift_pair.raw("DFW")
    put_dlo(raw, src, "img.vhd", [MiB, MiB, MiB, 1000])
    raw.delete_object(src, "img.vhd-00003")
    slept: list[float] = []

    with pytest.raises(SourceIncompleteError, match=r"segment\(s\) 3 missing") as caught:
        transfer_object(
            dfw,
            iad,
            src,
            "img.vhd",
            dst,
            "img.vhd",
            listing_attempts=3,
            listing_delay=7.0,
            sleep=slept.append,
            segment_size=MiB,
        )

    assert caught.value.retryable
    assert slept == [7.0, 7.0]
    assert iad.list_objects(dst) == []
    with pytest.raises(NotFoundError):  # not even the segments container was made
        iad.list_objects(f"{dst}_segments")


def test_source_segment_changed_after_listing_is_refused_by_the_target(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    """Segment 2 is overwritten (same size, other bytes) after the plan was made: the target
    recomputes the MD5, answers 422, and nothing is stored for that segment."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    raw = swift_pair.raw("DFW")
    put_dlo(raw, src, "img.vhd", [MiB, MiB, MiB])
    plan = plan_transfer(discover_source(dfw, src, "img.vhd"), iad.limits(), dst, "x", MiB)
    prepare_target(iad, plan)
    raw.put_object(src, "img.vhd-00002", os.urandom(MiB))

    with pytest.raises(IntegrityError, match="422"):
        copy_segments(dfw, iad, plan, 1, chunk_size=256 * 1024, backoff=0.01)

    names = [o.name for o in iad.list_objects(plan.segments_container)]
    assert plan.segments[1].name not in names


def test_plain_source_changed_after_listing_is_refused_before_upload(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    """Split segments cannot be checked by the target, so the source's ETag is checked on GET."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    raw = swift_pair.raw("DFW")
    raw.put_object(src, "disk.vhd", os.urandom(2 * MiB + 10))
    plan = plan_transfer(discover_source(dfw, src, "disk.vhd"), iad.limits(), dst, "x", MiB)
    prepare_target(iad, plan)
    raw.put_object(src, "disk.vhd", os.urandom(2 * MiB + 10))

    with pytest.raises(IntegrityError, match="changed since it was listed"):
        copy_segments(dfw, iad, plan, 2, chunk_size=256 * 1024)

    assert iad.list_objects(plan.segments_container) == []


def test_token_expiry_in_the_middle_of_a_copy_is_survived(swift_pair: SwiftPair) -> None:
    """Tokens die after 1 s but the provider believes they last an hour, so requests get 401s
    mid-transfer; the stale token is invalidated and the refused segment copied again."""
    tokens = swift_pair.tokens(lifetime=1.0, believed_lifetime=3600.0)
    dfw, iad = swift_pair.store("DFW", tokens), swift_pair.store("IAD", tokens)
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = put_dlo(swift_pair.raw("DFW"), src, "img.vhd", [MiB] * 6)

    def slow(*_: int) -> None:
        time.sleep(0.1)  # 24 chunks: the copy lasts about 2.4 s, over two token lifetimes

    report = transfer_object(
        dfw, iad, src, "img.vhd", dst, "img.vhd", concurrency=2, progress=slow, **FAST
    )

    assert read_all(swift_pair.raw("IAD"), dst, "img.vhd") == content
    assert tokens.invalidated >= 2 and tokens.issued >= 3
    assert max(r.attempts for r in report.results) >= 2


def _transferred(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore, sizes: Sequence[int]
) -> tuple[TransferPlan, list[SegmentResult], str]:
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    put_dlo(swift_pair.raw("DFW"), src, "img.vhd", sizes)
    report = transfer_object(dfw, iad, src, "img.vhd", dst, "img.vhd", **FAST)
    return report.plan, list(report.results), dst


def test_manifest_needs_every_segment(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    plan, results, dst = _transferred(swift_pair, dfw, iad, [MiB, MiB, 5])
    iad.delete_object(dst, "img.vhd")

    with pytest.raises(IntegrityError, match=r"segment 1 \(.*\) was not copied"):
        write_manifest(iad, plan, [results[0], results[2]])
    assert iad.list_objects(dst) == []


def test_manifest_with_a_wrong_etag_is_refused_by_swift(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    """For split segments the engine has no MD5 of its own to compare; Swift's manifest check
    catches a wrong one."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    swift_pair.raw("DFW").put_object(src, "disk", os.urandom(2 * MiB))
    report = transfer_object(dfw, iad, src, "disk", dst, "disk", **FAST)
    wrong = [*report.results[:-1], report.results[-1].model_copy(update={"etag": "0" * 32})]

    with pytest.raises(IntegrityError, match="Etag Mismatch"):
        write_manifest(iad, report.plan, wrong)


@pytest.mark.parametrize("tamper", ["plain", "fewer", "swapped"])
def test_verify_target_detects_a_target_that_differs_from_the_plan(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore, tamper: str
) -> None:
    plan, results, dst = _transferred(swift_pair, dfw, iad, [MiB, MiB, MiB])
    raw = swift_pair.raw("IAD")
    entries = [
        {"path": plan.segment_path(s), "etag": r.etag, "size_bytes": s.length}
        for s, r in zip(plan.segments, results, strict=True)
    ]
    if tamper == "plain":
        raw.put_object(dst, "img.vhd", read_all(raw, dst, "img.vhd"))
    else:
        entries = entries[:2] if tamper == "fewer" else [entries[1], entries[0], entries[2]]
        raw.put_object(dst, "img.vhd", json.dumps(entries), query_string="multipart-manifest=put")

    with pytest.raises(IntegrityError):
        verify_target(iad, plan)


def test_after_a_failure_the_segments_in_flight_are_finished_for_the_next_run(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 3 workers, every segment that had started when the first finished one raised is
    finished (none is cut off by the error); the next run copies only what is left."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = put_dlo(swift_pair.raw("DFW"), src, "img.vhd", [MiB] * 6)
    plan = plan_transfer(discover_source(dfw, src, "img.vhd"), iad.limits(), dst, "img.vhd", MiB)
    prepare_target(iad, plan)
    started: list[str] = []
    put_stream = iad.put_stream

    def recording_put_stream(container: str, name: str, *args: Any, **kwargs: Any) -> str:
        started.append(name)
        return put_stream(container, name, *args, **kwargs)

    monkeypatch.setattr(iad, "put_stream", recording_put_stream)

    with pytest.raises(Interrupt):
        copy_segments(dfw, iad, plan, 3, _interrupt_after(1), chunk_size=256 * 1024)

    finished = find_finished_segments(iad, plan)
    stored = [o.name for o in iad.list_objects(plan.segments_container)]
    assert finished, "the segment that raised was stored before the error"
    assert [r.name for r in finished] == sorted(started) == sorted(stored)
    results = copy_segments(dfw, iad, plan, 3, finished=finished, chunk_size=256 * 1024)
    assert sum(r.size for r in results if r.copied) == len(content) - len(finished) * MiB
    write_manifest(iad, plan, results)
    assert read_all(swift_pair.raw("IAD"), dst, "img.vhd") == content


def _count_puts_in_flight(monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> list[int]:
    """Wrap ``store.put_stream``: returns [in flight now, most in flight so far]."""
    counts, lock, put_stream = [0, 0], threading.Lock(), store.put_stream

    def counting_put_stream(*args: Any, **kwargs: Any) -> str:
        with lock:
            counts[0] += 1
            counts[1] = max(counts)
        try:
            return put_stream(*args, **kwargs)
        finally:
            with lock:
                counts[0] -= 1

    monkeypatch.setattr(store, "put_stream", counting_put_stream)
    return counts


def test_without_a_concurrency_the_stream_count_adapts_and_is_reported(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No concurrency: the copy is the same verified SLO; the report names the adaptive
    count it settled on, and no more segments were in flight than the count allowed."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = put_dlo(swift_pair.raw("DFW"), src, "img.vhd", [MiB] * 12)
    counts = _count_puts_in_flight(monkeypatch, iad)

    report = transfer_object(dfw, iad, src, "img.vhd", dst, "img.vhd", concurrency=None, **FAST)

    assert read_all(swift_pair.raw("IAD"), dst, "img.vhd") == content
    assert report.streams_adaptive
    assert report.stream_changes[0].streams == 8  # starts with 8 of at most 12 (segments)
    assert 1 <= report.streams <= 12
    assert counts[1] <= max(change.streams for change in report.stream_changes)


def test_a_fixed_concurrency_is_reported_as_such(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore
) -> None:
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    put_dlo(swift_pair.raw("DFW"), src, "img.vhd", [MiB] * 3)
    report = transfer_object(dfw, iad, src, "img.vhd", dst, "img.vhd", concurrency=3, **FAST)
    assert (report.streams, report.streams_adaptive, report.stream_changes) == (3, False, ())


def test_a_429_halves_the_adaptive_stream_count_and_the_copy_still_completes(
    swift_pair: SwiftPair, dfw: ObjectStore, iad: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target answers one segment PUT with 429: that segment is retried, the count is
    halved (8 -> 4) and stays there (a stream comes back only after 30 s without one); the
    object arrives whole."""
    src, dst = swift_pair.new_container("DFW"), swift_pair.new_container("IAD")
    content = put_dlo(swift_pair.raw("DFW"), src, "img.vhd", [MiB] * 12)
    put_stream, refused = iad.put_stream, []

    def throttled_once(container: str, name: str, *args: Any, **kwargs: Any) -> str:
        if not refused:
            refused.append(name)
            raise RateLimitedError("429 Too Many Requests", status=429, retry_after=0.01)
        return put_stream(container, name, *args, **kwargs)

    monkeypatch.setattr(iad, "put_stream", throttled_once)

    report = transfer_object(dfw, iad, src, "img.vhd", dst, "img.vhd", concurrency=None, **FAST)

    assert read_all(swift_pair.raw("IAD"), dst, "img.vhd") == content
    assert refused
    throttles = [c for c in report.stream_changes if "throttled" in c.reason]
    assert len(throttles) == 1
    assert report.streams == throttles[0].streams == 4
