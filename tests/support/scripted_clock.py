"""A clock whose hands move only when someone sleeps (or the test advances it)."""

from __future__ import annotations

import threading
import time as _time

START = 1_700_000_000.0


class ScriptedClock:
    """Implements :class:`imagehop.clock.Clock`; records every requested sleep."""

    def __init__(self, start: float = START) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.time()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Let time pass without anyone sleeping (e.g. a slow answer)."""
        with self._lock:
            self._now += seconds


class FastForwardClock:
    """Real time, except that sleeps are skipped: a requested sleep moves the readings by
    its full length but blocks for at most ``real_sleep`` seconds. For tests against the
    local cloud, whose tasks finish in about a second while task polls wait 30 s."""

    def __init__(self, real_sleep: float = 0.2) -> None:
        self._offset = 0.0
        self._real_sleep = real_sleep
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return _time.time() + self._offset

    def monotonic(self) -> float:
        return _time.monotonic() + self._offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._offset += max(0.0, seconds)
        _time.sleep(min(max(0.0, seconds), self._real_sleep))
