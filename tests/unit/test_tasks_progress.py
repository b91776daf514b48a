"""Progress events, copy counters and the per-region task slots (process-local state)."""

from __future__ import annotations

import threading
import time

from imagehop.tasks import limits, progress


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


def test_copy_counters_take_back_a_failed_attempts_bytes() -> None:
    counters = progress.start_copy("copy-1", progress.CopyProgress("run-1", 100, 4, 25, 1))
    try:
        assert progress.copy_of("copy-1") is counters and counters.fraction() == 0.25
        counters.add_bytes(30)
        counters.add_bytes(-30)  # that attempt failed
        counters.add_bytes(25)
        counters.add_segment()
        assert (counters.bytes_done, counters.segments_done) == (50, 2)
    finally:
        progress.end_copy("copy-1")
    assert progress.copy_of("copy-1") is None


def test_region_slots_cap_concurrent_exports_per_region() -> None:
    limits.configure(exports=2, imports=None)
    active = {"DFW": 0, "ORD": 0}
    peak = {"DFW": 0, "ORD": 0}
    lock = threading.Lock()

    def export(region: str) -> None:
        with limits.region_slot("export", region):
            with lock:
                active[region] += 1
                peak[region] = max(peak[region], active[region])
            time.sleep(0.05)
            with lock:
                active[region] -= 1

    try:
        threads = [threading.Thread(target=export, args=(r,)) for r in ["DFW"] * 6 + ["ORD"] * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        limits.configure(None, None)
    assert peak == {"DFW": 2, "ORD": 2}


def test_without_a_cap_slots_do_not_block() -> None:
    with limits.region_slot("import", "IAD"), limits.region_slot("import", "IAD"):
        pass
