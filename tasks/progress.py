"""Progress of the runs in this process, for whoever watches (the CLI's progress bar, logs,
the Prefect UI).

The flows announce phases and the copy task reports bytes here; listeners (e.g. the CLI)
subscribe. Events are process-local and in memory, never task inputs or results. A listener
that raises is logged and dropped, so a display bug cannot fail a copy. :class:`CopyWatch`
also keeps a progress artifact on the flow run up to date (bytes, segments, MB/s, ETA), from
a thread of its own, at most every :data:`PROGRESS_EVERY_SECONDS`, so the copy's workers
never wait for the Prefect API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, cast
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.exceptions import MissingContextError

from imagehop.procedure.request import slug
from imagehop.procedure.result import PhaseTiming, human_bytes
from imagehop.transfer import TransferReport

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 2.0
MiB = 1024 * 1024

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


_lock = threading.Lock()
_listeners: list[Listener] = []


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


class Phases:
    """Times the phases of one run, logs a line when each starts and ends (the run's log, on
    the run page) and announces them to the listeners (e.g. the CLI)::

    phases = Phases(run_key)
    with phases("export"):
        ...
    phases.timings   # (PhaseTiming("export", 31.2), ...)
    """

    def __init__(self, transfer: str) -> None:
        self._transfer = transfer
        self._timings: list[PhaseTiming] = []
        self.started = time.perf_counter()

    @property
    def timings(self) -> tuple[PhaseTiming, ...]:
        return tuple(self._timings)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        logger = _run_logger()
        logger.info("phase %s started", name)
        publish(Event("phase-started", self._transfer, phase=name))
        began = time.perf_counter()
        try:
            yield
        except BaseException as error:
            # The error itself is logged once, by whoever handles it (not repeated here).
            logger.info("phase %s failed after %.1f s", name, time.perf_counter() - began)
            publish(Event("phase-failed", self._transfer, phase=name, detail=str(error)))
            raise
        finally:
            self._timings.append(PhaseTiming(name=name, seconds=time.perf_counter() - began))
        seconds = self._timings[-1].seconds
        logger.info("phase %s finished in %.1f s", name, seconds)
        publish(Event("phase-finished", self._transfer, phase=name, seconds=seconds))


def _run_logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The flow run's logger (its lines reach the run page), else this module's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return log


class CopyWatch:
    """Watches one copy: each engine progress call becomes a ``copy-progress`` event, and a
    progress artifact (key ``copy-<run key>``) on the current flow run says how far it is.

    Use as a context manager around the copy; pass :meth:`on_progress` to the engine.
    """

    def __init__(
        self,
        transfer: str,
        bytes_total: int,
        segments_total: int,
        bytes_done: int = 0,
        segments_done: int = 0,
        every: float = PROGRESS_EVERY_SECONDS,
    ) -> None:
        self._transfer = transfer
        self._bytes_total = bytes_total
        self._segments_total = segments_total
        self._every = every
        self._lock = threading.Lock()
        self._bytes, self._segments = bytes_done, segments_done  # in place before the copy
        self._first: tuple[float, int] | None = None  # (time, bytes) of the first report
        self._sent: tuple[int, int, str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep_updated, name="imagehop-progress", daemon=True
        )
        self._artifact: UUID | None = None
        self._streams = ""  # ", 8 streams (adaptive)", once the copy is done

    def __enter__(self) -> CopyWatch:
        created = create_progress_artifact(
            0.0, key=f"copy-{slug(self._transfer)}", description=self.describe()
        )
        self._artifact = cast(UUID, created)  # sync call: an id, not a coroutine
        self._thread.start()
        self._publish(self._bytes, self._segments)  # where the copy starts (0 %, or a resume)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._send()

    def on_progress(
        self, bytes_done: int, bytes_total: int, segments_done: int, segments_total: int
    ) -> None:
        """The engine's :data:`~imagehop.transfer.Progress` callback (any worker thread)."""
        with self._lock:
            self._bytes, self._segments = bytes_done, segments_done
            if self._first is None:
                self._first = (time.monotonic(), bytes_done)
        self._publish(bytes_done, segments_done)

    def _publish(self, bytes_done: int, segments_done: int) -> None:
        publish(
            Event(
                "copy-progress",
                self._transfer,
                phase="copy",
                bytes_done=bytes_done,
                bytes_total=self._bytes_total,
                segments_done=segments_done,
                segments_total=self._segments_total,
            )
        )

    def finished(self, report: TransferReport) -> None:
        """Every segment is in place (copied now or before)."""
        with self._lock:
            self._bytes, self._segments = self._bytes_total, self._segments_total
            if report.streams:
                how = "adaptive" if report.streams_adaptive else "fixed"
                self._streams = f", {report.streams} streams ({how})"

    def describe(self) -> str:
        """``412.0 MiB of 1.0 GiB, 115.0 MiB/s, about 0:05 left, 7/16 segments``; once done,
        ``1.0 GiB copied, 8 streams (adaptive), 16/16 segments``. What matters comes first:
        the UI's artifact card shows only the first forty characters or so."""
        with self._lock:
            done, segments, first = self._bytes, self._segments, self._first
        count = f"{segments}/{self._segments_total} segments"
        if done >= self._bytes_total and self._streams:
            return f"{human_bytes(done)} copied{self._streams}, {count}"
        text = f"{human_bytes(done)} of {human_bytes(self._bytes_total)}"
        if first is None or done >= self._bytes_total:
            return f"{text}, {count}"
        seconds = time.monotonic() - first[0]
        rate = (done - first[1]) / seconds if seconds > 0 else 0.0
        if rate <= 0:
            return f"{text}, {count}"
        left = int((self._bytes_total - done) / rate)
        return f"{text}, {rate / MiB:.1f} MiB/s, about {left // 60}:{left % 60:02d} left, {count}"

    def fraction(self) -> float:
        with self._lock:
            return self._bytes / self._bytes_total if self._bytes_total else 1.0

    def _keep_updated(self) -> None:
        while not self._stop.wait(self._every):
            self._send()

    def _send(self) -> None:
        with self._lock:
            now = (self._bytes, self._segments, self._streams)
        if self._artifact is None or now == self._sent:
            return
        try:
            update_progress_artifact(self._artifact, 100 * self.fraction(), self.describe())
        except Exception:  # the UI's view must never fail the copy
            log.warning("could not update the copy's progress artifact", exc_info=True)
            return
        self._sent = now
