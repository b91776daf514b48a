"""The one poll loop behind every wait (export/import tasks, server images, servers).

Gaps are measured between the *starts* of two polls, so a slow answer never shortens the
spacing the cloud asked for. A poll that fails with a retryable error (5xx, 413/429, a
dropped connection) counts as a poll: the next one comes after the full interval, or after
``Retry-After`` if that is longer. This loop is the only retry layer for polls (the "poll" row
of the table in :mod:`imagehop.retries`); the fetch functions call the HTTP layer with
``NO_RETRY``. The error that ends a wait after ``max_consecutive_errors`` failed polls in a
row is marked ``exhausted_by == "poll"``, so no layer above retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from imagehop.clock import SYSTEM_CLOCK, Clock
from imagehop.errors import ImagehopError, WaitTimeoutError
from imagehop.retries import POLL, give_up, may_retry, retry_after_of

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CONSECUTIVE_ERRORS = 10


def poll_until(
    fetch: Callable[[], T],
    finished: Callable[[T], bool],
    *,
    status_of: Callable[[T], str],
    resource: str,
    wanted: str,
    interval: float,
    deadline_seconds: float,
    clock: Clock = SYSTEM_CLOCK,
    on_poll: Callable[[T], None] | None = None,
    max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS,
) -> T:
    """Fetch until ``finished`` says so, at most once per ``interval`` seconds.

    Args:
        fetch: one poll (called right away, then after each wait).
        finished: True when done; raise from it to stop on a terminal failure state.
        status_of: the status to name in logs and in the timeout error.
        resource, wanted: e.g. ``"export task 3f2a..."`` and ``"success"``.
        on_poll: called with every successfully fetched value (progress logging).

    Raises:
        WaitTimeoutError: the next poll would come after the deadline.
        ImagehopError: a non-retryable error from ``fetch``, whatever ``finished`` raises,
            or the last error after ``max_consecutive_errors`` retryable ones in a row.
    """
    deadline = clock.monotonic() + deadline_seconds
    last_status = "none (no successful poll)"
    errors = 0
    while True:
        polled_at = clock.monotonic()
        try:
            value = fetch()
        except ImagehopError as exc:
            errors = _count_error(exc, errors, max_consecutive_errors, resource)
            gap = max(interval, retry_after_of(exc) or 0.0)
        else:
            errors = 0
            last_status = status_of(value)
            if on_poll is not None:
                on_poll(value)
            if finished(value):
                return value
            gap = interval
        next_poll = polled_at + gap
        if next_poll > deadline:
            raise _timeout(resource, wanted, last_status, deadline_seconds)
        clock.sleep(max(0.0, next_poll - clock.monotonic()))


def _count_error(exc: ImagehopError, errors: int, limit: int, resource: str) -> int:
    if not may_retry(exc):
        raise exc
    if errors + 1 >= limit:
        raise give_up(exc, POLL) if limit > 1 else exc
    log.warning("polling %s failed (%s); polling again at the next interval", resource, exc)
    return errors + 1


def _timeout(resource: str, wanted: str, last_status: str, seconds: float) -> WaitTimeoutError:
    return WaitTimeoutError(
        f"{resource} did not reach {wanted!r} within {seconds:.0f} s (last status: {last_status})",
        None,
        resource,
        wanted,
        last_status,
    )
