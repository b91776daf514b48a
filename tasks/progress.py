"""Progress of the runs in this process, for whoever watches (the CLI's progress bar, logs).

The flows announce phases and the segment tasks report bytes here; listeners (e.g. the CLI)
subscribe. Everything is process-local and in memory: events are never task inputs or
results. A listener that raises is logged and dropped, so a display bug cannot fail a copy.
The copy's Prefect progress artifact is updated separately, throttled (see
``imagehop.flows.transfer_image``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger(__name__)

#: ``run-failed`` carries, in ``detail``, what a failed run keeps for a re-run.
EventKind = Literal[
    "phase-started", "phase-finished", "phase-failed", "copy-progress", "run-failed"
]


@dataclass(frozen=True)
class Event:
    """Something a watcher may want to show; ``transfer`` is the run key."""

    kind: EventKind
    transfer: str
    phase: str = ""
    seconds: float = 0.0
    bytes_done: int = 0
    bytes_total: int = 0
    segments_done: int = 0
    segments_total: int = 0
    detail: str = ""


Listener = Callable[[Event], None]


@dataclass
class CopyProgress:
    """Counters of one copy, shared by its segment tasks (threads)."""

    transfer: str
    bytes_total: int
    segments_total: int
    bytes_done: int = 0
    segments_done: int = 0
    aborted: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_bytes(self, count: int) -> None:
        """Count bytes sent (negative: take back a failed attempt's)."""
        with self._lock:
            self.bytes_done += count
        self._publish()

    def add_segment(self) -> None:
        with self._lock:
            self.segments_done += 1
        self._publish()

    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0

    def _publish(self) -> None:
        publish(
            Event(
                "copy-progress",
                self.transfer,
                phase="copy",
                bytes_done=self.bytes_done,
                bytes_total=self.bytes_total,
                segments_done=self.segments_done,
                segments_total=self.segments_total,
            )
        )


_lock = threading.Lock()
_listeners: list[Listener] = []
_copies: dict[str, CopyProgress] = {}


@contextmanager
def subscribed(listener: Listener) -> Iterator[Listener]:
    """Call ``listener`` with every event while the block runs (from any thread)."""
    with _lock:
        _listeners.append(listener)
    try:
        yield listener
    finally:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)


def publish(event: Event) -> None:
    """Hand ``event`` to every listener; a failing listener is logged and unsubscribed."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            log.exception("progress listener %r failed; it gets no more events", listener)
            with _lock:
                if listener in _listeners:
                    _listeners.remove(listener)


def start_copy(copy_id: str, progress: CopyProgress) -> CopyProgress:
    """Register the counters of a copy under ``copy_id`` (its flow run id)."""
    with _lock:
        _copies[copy_id] = progress
    progress._publish()
    return progress


def copy_of(copy_id: str) -> CopyProgress | None:
    """The counters of a running copy (None once it ended, or in another process)."""
    with _lock:
        return _copies.get(copy_id)


def end_copy(copy_id: str) -> None:
    with _lock:
        _copies.pop(copy_id, None)
