"""Progress events, phase timings and the per-region task slots (process-local state)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from imagehop.tasks import progress

MiB = 1024 * 1024


def test_listeners_get_events_and_a_failing_listener_is_dropped() -> None:
    seen: list[progress.Event] = []

    def broken(event: progress.Event) -> None:
        raise RuntimeError("display bug")

    with progress.subscribed(seen.append), progress.subscribed(broken):
        progress.publish(progress.Event("phase-started", "run-1", phase="export"))
        progress.publish(progress.Event("phase-finished", "run-1", phase="export", seconds=2.0))
    assert [(e.kind, e.phase) for e in seen] == [
        ("phase-started", "export"),
        ("phase-finished", "export"),
    ]
    progress.publish(progress.Event("phase-started", "run-1"))
    assert len(seen) == 2  # unsubscribed after the block


def test_phases_are_timed_and_announced_also_when_they_fail() -> None:
    seen: list[progress.Event] = []
    phases = progress.Phases("run-1")
    with progress.subscribed(seen.append):
        with phases("export"):
            pass
        try:
            with phases("copy"):
                raise RuntimeError("segment 3 failed")
        except RuntimeError:
            pass
    assert [(e.kind, e.phase) for e in seen] == [
        ("phase-started", "export"),
        ("phase-finished", "export"),
        ("phase-started", "copy"),
        ("phase-failed", "copy"),
    ]
    assert seen[-1].detail == "segment 3 failed"
    assert [timing.name for timing in phases.timings] == ["export", "copy"]


def test_the_copy_watch_says_bytes_segments_rate_and_time_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    watch = progress.CopyWatch("run-1", 100 * MiB, 10)
    assert watch.describe() == "0 bytes of 100.0 MiB, 0/10 segments"
    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    seen: list[progress.Event] = []
    with progress.subscribed(seen.append):
        watch.on_progress(20 * MiB, 100 * MiB, 2, 10)  # 2 segments found in place
        now[0] += 10.0
        watch.on_progress(40 * MiB, 100 * MiB, 4, 10)  # 20 MiB in 10 s
    assert watch.describe() == "40.0 MiB of 100.0 MiB, 2.0 MiB/s, about 0:30 left, 4/10 segments"
    assert (seen[-1].kind, seen[-1].bytes_done, seen[-1].segments_done) == (
        "copy-progress", 40 * MiB, 4,
    )  # fmt: skip
    assert watch.fraction() == 0.4


def test_the_finished_copy_watch_names_the_stream_count_it_ran_with() -> None:
    watch = progress.CopyWatch("run-1", 100 * MiB, 10)
    report = SimpleNamespace(streams=12, streams_adaptive=True)
    watch.finished(report)  # type: ignore[arg-type]  # the fields CopyWatch reads
    assert watch.describe() == "100.0 MiB copied, 12 streams (adaptive), 10/10 segments"
