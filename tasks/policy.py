"""Retry and cache policy shared by the tasks.

**Retries.** The task layer of the retry table in :mod:`imagehop.retries`: inside tasks the
clients retry nothing, so a step that failed with a 5xx, a transport error or a rate limit is
tried again, up to :data:`~imagehop.retries.TASK_RETRY` tries in all, with the one backoff
formula between tries and never sooner than the ``Retry-After`` the cloud gave
(:class:`RetryDelays`). Only errors :func:`~imagehop.retries.may_retry` allows are retried:
retryable classes that no inner layer (the Identity client, the segment copy, a DLO listing)
has already given up on. Anything else (a pre-flight refusal, a failed export, bytes that did
not verify) fails at once: retrying cannot help.

**Caching.** Steps that create something in the cloud (snapshot, export task, import task,
server) are cached under their *business identity* (e.g. ``export-DFW-<image>-<container>``,
led by the cloud profile of the step's side when the request names one:
``import-<cloud>-IAD-...``, so that one image sent to two accounts' IAD is two imports),
persisted, for less than the cloud's 48 h task lifetime; the flow wraps each with its wait in
a transaction, so only a step whose wait succeeded is cached. The cache is a shortcut, not
the guarantee: every such step also looks at the cloud before creating anything. Reads that
must be fresh (pre-flight, task status, image lookups, resume checks) use ``NO_CACHE``.
Cached results are small records (ids, locations); none holds a token, key or client.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any, SupportsIndex, overload

from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import Task

from imagehop.retries import TASK_RETRY, StepRetry, may_retry

#: Below the 48 h after which the cloud forgets a finished task.
CACHE_TTL = timedelta(hours=36)
#: Prefect's ``retries`` of a task (tries in all, less the first).
RETRIES = TASK_RETRY.attempts - 1

_failure = threading.local()  # the failure retry_if_retryable let through, per thread


def retry_if_retryable(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry only what :func:`~imagehop.retries.may_retry`
    allows, and remember the failure so that its retry waits out the cloud's ``Retry-After``
    (see :class:`RetryDelays`)."""
    error = state.result(raise_on_failure=False)
    retry = may_retry(error)
    _failure.error = error if retry else None
    return retry


class RetryDelays(list[float]):
    """Prefect ``retry_delay_seconds`` whose every delay is drawn when Prefect asks for it:
    the one backoff formula, and at least the ``Retry-After`` of the failure being retried.

    Prefect 3.9 gives the delay no exception: its ``handle_retry`` first calls the
    ``retry_condition_fn`` with the failed state, then, in the same thread, reads
    ``retry_delay_seconds[min(retries, len - 1)]``. So :func:`retry_if_retryable` leaves the
    failure for this thread and ``__getitem__`` takes it. Prefect's own jitter stays off
    (``retry_jitter_factor=None``): it could shorten a delay below the ``Retry-After``. The
    stored values (what Prefect sends to the API) are the formula's ceilings.
    """

    def __init__(self, retry: StepRetry) -> None:
        super().__init__(retry.backoff.ceiling(n) for n in range(1, retry.attempts))
        self.retry = retry

    @overload
    def __getitem__(self, index: SupportsIndex) -> float: ...

    @overload
    def __getitem__(self, index: slice) -> list[float]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> float | list[float]:
        if isinstance(index, slice):
            return list(super().__getitem__(index))
        failures = range(len(self))[index] + 1
        error, _failure.error = getattr(_failure, "error", None), None
        return self.retry.delay(failures, error)


def retrying(retry: StepRetry = TASK_RETRY) -> dict[str, Any]:
    """Task options retrying as ``retry`` says (tests pass a faster one)."""
    return {
        "retries": retry.attempts - 1,
        "retry_delay_seconds": RetryDelays(retry),
        "retry_jitter_factor": None,
        "retry_condition_fn": retry_if_retryable,
    }


RETRYING: dict[str, Any] = retrying()
"""Task options for a step that may be retried."""

FRESH: dict[str, Any] = {**RETRYING, "cache_policy": NO_CACHE}
"""A retried step whose answer must come from the cloud every time."""


def cache_key(*parts: object) -> str:
    """A cache key (and storage file name) from identity parts: ``export-DFW-<id>-<c>``."""
    text = "-".join(str(part) for part in parts)
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", text)


def cached_by(prefix: str, *names: str) -> dict[str, Any]:
    """Options caching a step by the values of its parameters ``names`` (dotted names reach
    into a parameter: ``identity.run_key``). A part that is None (``clouds.target`` of a
    request naming no cloud: the worker's own account) is left out, so such keys stay as
    they were before requests could name clouds."""

    def key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        parts = (_value(parameters, name) for name in names)
        return cache_key(prefix, *(part for part in parts if part is not None))

    return {
        **RETRYING,
        "cache_key_fn": key,
        "cache_expiration": CACHE_TTL,
        "persist_result": True,
    }


WAITING: dict[str, Any] = {"cache_policy": NO_CACHE, "retries": 0}
"""A wait: its poll loop is the one retry layer for failed polls (a failed poll is simply
the next poll 30 s later), so the task itself is not retried on top of it."""


def _value(parameters: dict[str, Any], dotted: str) -> Any:
    first, *rest = dotted.split(".")
    value = parameters[first]
    for attribute in rest:
        value = getattr(value, attribute)
    return value
