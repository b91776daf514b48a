"""Adaptive stream count: how many segments the engine copies at once when no concurrency
is given.

Cross-region bandwidth is per connection, and links differ per region pair and over the day,
so a fixed count is either too few streams (a capped link left idle) or too many (memory,
throttling, no gain on a link that is already full). With no ``concurrency`` the copy finds
its count:

* it starts with ``start`` streams (8, the fixed default it replaces) and **doubles** the count
  while the aggregate rate still grows (one rate sample of ``window`` seconds per step, after
  ``warmup`` seconds for new streams to get going): each step must deliver at least
  ``min_gain`` (half) of the gain the added streams would bring on a link whose bandwidth is
  per connection;
* when a step brings less, it **settles**: on the count before the step if the step brought
  (almost) nothing, else on the new one;
* a rate limit or an overloaded server (429, 498, 503) **halves** the count at once (once per
  ``window``, however many streams meet it), and two other retryable errors within one
  ``window`` take a quarter off; both stop the growth by doubling;
* after such a cut the count **recovers** one stream at a time, one per ``recover_after``
  seconds (30) without a throttle or rising errors, back to the count before the first cut
  and no further: a limit met once at the start of a two-hour copy does not halve all of it,
  and a limit that is still there halves it again;
* settled below ``cap``, it **measures again** after ``reprobe_after`` seconds (300) with no
  change and no throttle: a link that was full at the start may have room later in the day,
  so it takes a sample at the current count, tries the doubled count and keeps it only by
  the growth rule above (else it settles back where it was, and waits again);
* it never exceeds ``cap``: :func:`memory_stream_cap` (the copy's buffers stay within 48 MiB,
  each stream holding about 2 to 3 chunks, see :mod:`imagehop.transfer.engine`: a copier
  process without Prefect peaks within 96 MiB, measured 77 MiB with 16 streams; a Prefect
  flow run holds about 87 MiB before its copy starts, so it peaks near 130 MiB), a
  per-region cap from the settings, and the number of segments left.

:class:`StreamController` is the decision alone: pure, rate samples (a clock reading and the
bytes done so far) in, the target count out, testable with a fake clock. :class:`StreamGate`
is the engine's side: the worker threads of :func:`~imagehop.transfer.engine.copy_segments`
(``cap`` of them) each take a slot before a segment and give it back after, and at most
``target`` slots are out. Samples are taken only while every slot is busy, so the tail of a
copy (fewer segments left than streams) never reads as a flat link.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from imagehop.errors import ImagehopError, RateLimitedError, ServerError
from imagehop.object_store import MiB

log = logging.getLogger("imagehop.transfer")

#: The copier's peak RSS goal (issue 8), and what the interpreter and imagehop's libraries
#: hold before any buffer (measured: about 43 MiB; 48 leaves a margin). Under Prefect the
#: process holds about 87 MiB before the copy: the buffers' share (48 MiB) is what is capped.
MEMORY_BUDGET_BYTES = 96 * MiB
BASE_BYTES = 48 * MiB
#: Buffers one stream may hold, in chunks (the engine's bound; about 2 measured).
CHUNKS_PER_STREAM = 3
#: The most streams any copy uses (as the settings' explicit range).
MAX_STREAMS = 64
DEFAULT_START = 8  # the fixed default before the count adapted: never fewer to begin

Clock = Callable[[], float]


def memory_stream_cap(
    chunk_size: int, budget: int = MEMORY_BUDGET_BYTES, base: int = BASE_BYTES
) -> int:
    """Most streams whose buffers (``CHUNKS_PER_STREAM x chunk_size`` each) fit in ``budget``
    on top of ``base``: 16 with 1 MiB chunks, 64 with 256 KiB ones."""
    return max(1, min(MAX_STREAMS, (budget - base) // (CHUNKS_PER_STREAM * max(1, chunk_size))))


def is_throttle(error: BaseException) -> bool:
    """A rate limit (429, 498, 413 with a retry hint) or an overloaded server (503)."""
    return isinstance(error, RateLimitedError) or (
        isinstance(error, ServerError) and error.status == 503
    )


class StreamChange(BaseModel):
    """One change of the stream count: when (seconds since the copy began), to what, why."""

    model_config = ConfigDict(frozen=True)

    at_seconds: float
    streams: int
    reason: str


class StreamController:
    """The stream count's decision: rate samples in, target count out (pure; no threads, no
    clock of its own).

    Feed it :meth:`sample` with the time and the bytes done so far (and whether every stream
    was busy), :meth:`throttled` and :meth:`failed` with errors; read :attr:`target`.
    """

    def __init__(
        self,
        cap: int,
        start: int = DEFAULT_START,
        window: float = 0.7,
        warmup: float = 0.3,
        min_gain: float = 0.5,
        recover_after: float = 30.0,
        reprobe_after: float = 300.0,
        now: float = 0.0,
    ) -> None:
        if cap < 1 or start < 1:
            raise ValueError("cap and start must be at least 1")
        self.cap = cap
        self.target = min(start, cap)
        self.settled: int | None = None if self.target < cap else self.target
        self.changes = [StreamChange(at_seconds=0.0, streams=self.target, reason="start")]
        self._window = window
        self._warmup = warmup
        self._min_gain = min_gain
        self._recover_after = recover_after
        self._reprobe_after = reprobe_after
        self._recover_to: int | None = None  # the count before the first cut, while below it
        self._began = now
        self._changed_at = now
        self._mark: tuple[float, int] | None = None
        self._previous: tuple[int, float] | None = None  # (streams, rate) of the last step
        self._throttled_at: float | None = None
        self._errors: list[float] = []
        self.rates: dict[int, float] = {}  # bytes/s measured per stream count

    @property
    def growing(self) -> bool:
        return self.settled is None

    def sample(self, now: float, bytes_done: int, busy: bool = True) -> int:
        """Record that ``bytes_done`` bytes were done at ``now``; return the target count.

        ``busy``: every stream allowed had a segment (else the sample says nothing about the
        link and restarts the measurement).
        """
        if not self.growing:
            self._recover(now)
            self._reprobe(now)
            return self.target
        if not busy or now - self._changed_at < self._warmup:
            self._mark = None
            return self.target
        if self._mark is None:
            self._mark = (now, bytes_done)
            return self.target
        began, done = self._mark
        if now - began < self._window:
            return self.target
        self._step(now, (bytes_done - done) / (now - began))
        return self.target

    def _step(self, now: float, rate: float) -> None:
        self.rates[self.target] = rate
        previous = self._previous
        if previous is not None:
            streams, before = previous
            ideal = before * self.target / streams - before
            if ideal > 0 and rate - before < self._min_gain * ideal:
                keep = streams if rate <= before * 1.05 else self.target
                self._settle(
                    now,
                    keep,
                    f"aggregate flat: {_mb(rate)} with {self.target}, {_mb(before)} with {streams}",
                )
                return
        self._previous = (self.target, rate)
        grown = min(self.cap, self.target * 2)
        if grown == self.target:
            self._settle(now, self.target, f"at the cap ({self.cap}): {_mb(rate)}")
            return
        self._change(now, grown, f"{_mb(rate)} with {self.target}: growing")

    def throttled(self, now: float) -> int:
        """A 429/498/503 was met: halve the count (once per window) and stop growing."""
        if self._throttled_at is not None and now - self._throttled_at < self._window:
            return self.target
        self._throttled_at = now
        self._cut(now, max(1, self.target // 2), "throttled by the cloud (429/503): halved")
        return self.target

    def failed(self, now: float) -> int:
        """Another retryable error: two within one window take a quarter off the count."""
        self._errors = [t for t in self._errors if now - t < self._window] + [now]
        if len(self._errors) >= 2:
            self._errors = []
            fewer = max(1, self.target - max(1, self.target // 4))
            self._cut(now, fewer, "errors rising: a quarter fewer streams")
        return self.target

    def _cut(self, now: float, streams: int, reason: str) -> None:
        if self._recover_to is None and streams < self.target:
            self._recover_to = self.target
        self._settle(now, streams, reason)

    def _recover(self, now: float) -> None:
        """One stream back after ``recover_after`` s with no cut, up to the count before it."""
        if self._recover_to is None or now - self._changed_at < self._recover_after:
            return
        quiet = now - self._changed_at
        self._settle(now, self.target + 1, f"no throttle or error for {quiet:.0f} s: one more")
        if self.target >= self._recover_to:
            self._recover_to = None

    def _reprobe(self, now: float) -> None:
        """Grow again from the current count, measured afresh, after ``reprobe_after`` s
        settled below the cap with no change and no throttle (a cut is recovered first)."""
        if self.target >= self.cap or self._recover_to is not None:
            return
        quiet = now - max(self._changed_at, self._throttled_at or self._changed_at)
        if quiet < self._reprobe_after:
            return
        self.settled = None
        self._previous = None
        self._change(now, self.target, f"{quiet:.0f} s settled below the cap: measuring again")

    def _settle(self, now: float, streams: int, reason: str) -> None:
        self.settled = streams
        self._change(now, streams, "settled: " + reason)

    def _change(self, now: float, streams: int, reason: str) -> None:
        self.target = streams
        self._changed_at = now
        self._mark = None
        self.changes.append(
            StreamChange(at_seconds=round(now - self._began, 3), streams=streams, reason=reason)
        )

    @property
    def reported(self) -> int:
        """The count to report: the settled one, else the current target."""
        return self.settled if self.settled is not None else self.target


def _mb(rate: float) -> str:
    return f"{rate / 1e6:.1f} MB/s"


class StreamGate:
    """The engine's side of :class:`StreamController`: at most ``target`` segments in flight.

    Thread-safe. Workers call :meth:`enter` before a segment (False: stop was asked) and
    :meth:`leave` after it; the engine reports bytes (:meth:`on_bytes`) and retried errors
    (:meth:`on_error`).
    """

    def __init__(self, controller: StreamController, clock: Clock = time.monotonic) -> None:
        self.controller = controller
        self._clock = clock
        self._began = clock()
        self._condition = threading.Condition()
        self._running = 0
        self._bytes = 0

    def _now(self) -> float:
        return self._clock() - self._began

    def enter(self, stop: threading.Event) -> bool:
        with self._condition:
            while self._running >= self.controller.target:
                if stop.is_set():
                    return False
                self._condition.wait(0.2)
            if stop.is_set():
                return False
            self._running += 1
            return True

    def leave(self) -> None:
        with self._condition:
            self._running -= 1
            self._condition.notify_all()

    def on_bytes(self, count: int) -> None:
        with self._condition:
            self._bytes += count
            before = self.controller.target
            busy = self._running >= before
            after = self.controller.sample(self._now(), self._bytes, busy)
            self._changed(before, after)

    def on_error(self, error: ImagehopError) -> None:
        with self._condition:
            before = self.controller.target
            if is_throttle(error):
                after = self.controller.throttled(self._now())
            else:
                after = self.controller.failed(self._now())
            self._changed(before, after)

    def _changed(self, before: int, after: int) -> None:
        if after != before:
            log.info("streams %d -> %d (%s)", before, after, self.controller.changes[-1].reason)
            self._condition.notify_all()
