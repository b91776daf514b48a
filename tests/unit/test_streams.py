"""The adaptive stream count's decision (imagehop.transfer.streams): a fake clock and
synthetic links, no network."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from imagehop.errors import RateLimitedError, ServerError, TransportError
from imagehop.transfer.streams import (
    StreamController,
    StreamGate,
    is_throttle,
    memory_stream_cap,
)

MB = 1_000_000
MiB = 1024 * 1024

Link = Callable[[int], float]  # streams -> aggregate bytes/s


def per_connection(cap_per_stream: float, total: float = float("inf")) -> Link:
    """A link whose bandwidth is per connection (a WAN pair), optionally with a ceiling."""
    return lambda streams: min(streams * cap_per_stream, total)


def run(
    controller: StreamController, link: Link, seconds: float, step: float = 0.1, start: float = 0.0
) -> None:
    """Feed ``controller`` samples of ``link`` at its current count, every ``step`` s, from
    ``start`` to ``seconds``."""
    run_changing(controller, lambda now: link, seconds, step, start)


def run_changing(
    controller: StreamController,
    link_at: Callable[[float], Link],
    seconds: float,
    step: float = 0.1,
    start: float = 0.0,
) -> None:
    """As :func:`run`, on a link that changes with time (``link_at(now)``)."""
    now, done = start, 0.0
    while now < seconds:
        now += step
        done += link_at(now)(controller.target) * step
        controller.sample(now, int(done))


def test_grows_to_the_cap_on_a_link_with_per_connection_caps() -> None:
    controller = StreamController(cap=16, start=4)
    run(controller, per_connection(20 * MB), seconds=20)
    assert controller.target == 16
    assert controller.settled == 16
    assert [c.streams for c in controller.changes] == [4, 8, 16, 16]


def test_stops_growing_where_the_aggregate_flattens() -> None:
    # 10 MB/s per connection, but 70 MB/s in all: 4 -> 8 gains 40 -> 70 (3/4 of the ideal
    # gain, so it tries 16), 8 -> 16 gains nothing, so it settles back on 8.
    controller = StreamController(cap=32, start=4)
    run(controller, per_connection(10 * MB, total=70 * MB), seconds=20)
    assert controller.settled == 8
    assert controller.target == 8
    assert max(c.streams for c in controller.changes) == 16


def test_a_link_full_with_the_first_streams_settles_on_them() -> None:
    controller = StreamController(cap=16, start=4)
    run(controller, per_connection(100 * MB, total=300 * MB), seconds=20)
    assert controller.settled == 4


def test_a_step_with_a_partial_gain_keeps_the_larger_count_but_stops_growing() -> None:
    # 4 -> 8 brings 80 -> 110 MB/s: 30 of an ideal 80, more than nothing, less than half.
    rates = {4: 80 * MB, 8: 110 * MB, 16: 160 * MB}
    controller = StreamController(cap=16, start=4)
    run(controller, lambda streams: rates[streams], seconds=20)
    assert controller.settled == 8


def measured_again(controller: StreamController) -> list[float]:
    return [c.at_seconds for c in controller.changes if "measuring again" in c.reason]


def test_a_link_that_frees_up_later_is_measured_again_and_its_streams_taken() -> None:
    # Full at 70 MB/s for the first 100 s (settles on 8), then per connection only.
    def link_at(now: float) -> Link:
        return per_connection(10 * MB, total=70 * MB if now < 100 else float("inf"))

    controller = StreamController(cap=32, start=4)
    run_changing(controller, link_at, seconds=400)
    assert controller.target == controller.settled == 32
    assert len(measured_again(controller)) == 1
    assert 300 <= measured_again(controller)[0] < 310  # 300 s after it settled on 8


def test_a_new_measurement_that_brings_nothing_settles_back_and_waits_again() -> None:
    controller = StreamController(cap=32, start=4)
    run(controller, per_connection(10 * MB, total=70 * MB), seconds=1000)
    assert controller.target == controller.settled == 8
    assert len(measured_again(controller)) == 3  # about every 300 s
    tried, back = controller.changes[-2:]
    assert (tried.streams, back.streams) == (16, 8)  # each time: 16 tried, flat, back on 8
    assert back.reason.startswith("settled: aggregate flat")


def test_at_the_cap_it_never_measures_again() -> None:
    controller = StreamController(cap=16, start=4)
    run(controller, per_connection(20 * MB), seconds=1000)
    assert [c.streams for c in controller.changes] == [4, 8, 16, 16]


def test_after_a_cut_it_recovers_first_and_measures_again_only_once_quiet_after_that() -> None:
    controller = StreamController(cap=32, start=8, recover_after=30.0)
    run(controller, per_connection(10 * MB, total=70 * MB), seconds=10)  # settles on 8
    controller.throttled(10.0)  # 4; back to 8 one stream per 30 s: 5, 6, 7, 8 by 130 s
    run(controller, per_connection(10 * MB, total=70 * MB), seconds=500, start=10.0)
    recovered = max(c.at_seconds for c in controller.changes if "one more" in c.reason)
    assert 120 <= recovered < 135
    assert measured_again(controller)[0] >= recovered + 300


def test_halves_on_429_and_on_503_once_per_window() -> None:
    controller = StreamController(cap=16, start=16)
    assert controller.throttled(1.0) == 8
    assert controller.throttled(1.2) == 8  # the other streams met the same limit
    assert controller.throttled(2.5) == 4
    assert controller.settled == 4
    # no growth by doubling after a throttle, however good the rate
    run(controller, per_connection(50 * MB), seconds=10)
    assert controller.target == 4


def test_after_a_throttle_one_stream_comes_back_per_quiet_period_up_to_the_count_before() -> None:
    controller = StreamController(cap=16, start=16, recover_after=30.0)
    assert controller.throttled(1.0) == 8
    controller.sample(30.0, 0)
    assert controller.target == 8  # 29 s: not yet
    controller.sample(31.0, 0)
    assert controller.target == 9
    for second in range(32, 400):
        controller.sample(float(second), 0)
    assert controller.target == controller.settled == 16  # back where it was, not beyond
    assert controller.changes[-1].reason.startswith("settled: no throttle or error for 30 s")


def test_a_throttle_during_the_recovery_halves_again_and_restarts_the_wait() -> None:
    controller = StreamController(cap=16, start=16, recover_after=30.0)
    controller.throttled(1.0)
    for second in range(2, 92):  # 3 quiet periods: 8 -> 11
        controller.sample(float(second), 0)
    assert controller.target == 11
    assert controller.throttled(92.0) == 5
    controller.sample(121.0, 0)
    assert controller.target == 5  # the wait starts again at the new cut
    controller.sample(122.0, 0)
    assert controller.target == 6


def test_rising_errors_recover_as_throttles_do() -> None:
    controller = StreamController(cap=16, start=8, recover_after=30.0)
    controller.failed(1.0)
    assert controller.failed(1.2) == 6
    for second in range(2, 200):
        controller.sample(float(second), 0)
    assert controller.target == 8


def test_never_below_one_stream() -> None:
    controller = StreamController(cap=2, start=1)
    for second in range(10):
        controller.throttled(float(second * 2))
    assert controller.target == 1


def test_rising_errors_take_a_quarter_off() -> None:
    controller = StreamController(cap=16, start=8)
    assert controller.failed(1.0) == 8  # one error: nothing yet
    assert controller.failed(5.0) == 8  # a second, but not within the window
    assert controller.failed(5.5) == 6
    assert controller.settled == 6


def test_samples_while_streams_idle_are_not_read_as_a_flat_link() -> None:
    # The tail of a copy: fewer segments than streams. Not busy -> no decision.
    controller = StreamController(cap=16, start=4)
    now, done = 0.0, 0
    for _ in range(100):
        now += 0.1
        done += 1 * MB
        controller.sample(now, done, busy=False)
    assert controller.target == 4
    assert controller.growing


def test_starts_with_the_old_fixed_default_of_8_or_the_cap_if_smaller() -> None:
    assert StreamController(cap=16).target == 8
    controller = StreamController(cap=2)
    assert controller.target == 2
    assert controller.settled == 2


def test_memory_cap_keeps_the_buffers_within_96_mib() -> None:
    assert memory_stream_cap(MiB) == 16
    assert memory_stream_cap(256 * 1024) == 64
    assert memory_stream_cap(16 * MiB) == 1
    for chunk in (64 * 1024, 256 * 1024, MiB, 4 * MiB):
        streams = memory_stream_cap(chunk)
        assert 48 * MiB + streams * 3 * chunk <= 96 * MiB or streams == 1


def test_throttles_are_429_498_and_503_only() -> None:
    assert is_throttle(RateLimitedError("slow down", status=429))
    assert is_throttle(ServerError("busy", status=503))
    assert not is_throttle(ServerError("broken", status=500))
    assert not is_throttle(TransportError("reset"))


def test_gate_lets_at_most_target_workers_in_and_releases_them_on_stop() -> None:
    clock = [0.0]
    gate = StreamGate(StreamController(cap=8, start=2), clock=lambda: clock[0])
    stop = threading.Event()
    assert gate.enter(stop) and gate.enter(stop)
    entered: list[bool] = []
    waiter = threading.Thread(target=lambda: entered.append(gate.enter(stop)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # a third stream must wait
    gate.leave()
    waiter.join(2)
    assert entered == [True]
    late = threading.Thread(target=lambda: entered.append(gate.enter(stop)))
    late.start()
    stop.set()
    late.join(2)
    assert entered == [True, False]


def test_gate_halves_on_a_throttle_reported_by_a_worker() -> None:
    gate = StreamGate(StreamController(cap=8, start=8), clock=lambda: 1.0)
    gate.on_error(RateLimitedError("slow down", status=429))
    assert gate.controller.target == 4


@pytest.mark.parametrize(("cap", "start"), [(0, 1), (1, 0)])
def test_a_cap_or_start_below_one_is_refused(cap: int, start: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StreamController(cap=cap, start=start)
