"""A clock whose hands move only when someone sleeps (or the test advances it)."""

from __future__ import annotations

import threading

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
