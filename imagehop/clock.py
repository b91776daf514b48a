"""Time as a seam: every wait and every token-expiry decision asks a :class:`Clock`.

Production code uses :data:`SYSTEM_CLOCK`; tests pass a fake whose ``sleep`` only moves the
hands, so a 12-hour wait runs in microseconds and every sleep can be asserted on.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time (for token expiry), a monotonic reading (for deadlines) and sleep."""

    def time(self) -> float:
        """Seconds since the epoch, comparable to the expiry the cloud sends."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; only differences mean anything."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


def parse_timestamp(value: str) -> float:
    """Epoch seconds of an ISO 8601 time as OpenStack writes it (``...Z``, offsets, or
    naive meaning UTC). Raises ValueError if it is not one."""
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
