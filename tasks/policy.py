"""Retry and cache policy shared by the tasks.

**Retries.** A task is retried only when its error's class says ``retryable`` (transport
errors, 5xx, rate limits, a refused token that has been renewed, a DLO listing that has not
caught up), with exponential backoff and jitter. Anything else (a pre-flight refusal, a
failed export, bytes that did not verify) fails at once: retrying cannot help.

**Caching.** Steps that create something in the cloud (snapshot, export task, import task,
server) are cached under their *business identity* (e.g. ``export-DFW-<image>-<container>``),
persisted, for less than the cloud's 48 h task lifetime; the flow wraps each with its wait in
a transaction, so only a step whose wait succeeded is cached. The cache is a shortcut, not
the guarantee: every such step also looks at the cloud before creating anything. Reads that
must be fresh (pre-flight, task status, image lookups, resume checks) use ``NO_CACHE``.
Cached results are small records (ids, locations); none holds a token, key or client.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import Task, exponential_backoff

from imagehop.errors import ImagehopError

#: Below the 48 h after which the cloud forgets a finished task.
CACHE_TTL = timedelta(hours=36)
RETRIES = 3
BACKOFF_SECONDS = 2.0  # delays of about 2, 4, 8 s, +-50 % jitter


def retry_if_retryable(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry only errors whose class is ``retryable``."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, ImagehopError) and error.retryable


RETRYING: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=BACKOFF_SECONDS),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_retryable,
}
"""Task options for a step that may be retried."""

FRESH: dict[str, Any] = {**RETRYING, "cache_policy": NO_CACHE}
"""A retried step whose answer must come from the cloud every time."""


def cache_key(*parts: object) -> str:
    """A cache key (and storage file name) from identity parts: ``export-DFW-<id>-<c>``."""
    text = "-".join(str(part) for part in parts)
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", text)


def cached_by(prefix: str, *names: str) -> dict[str, Any]:
    """Options caching a step by the values of its parameters ``names`` (dotted names reach
    into a parameter: ``identity.run_key``)."""

    def key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        return cache_key(prefix, *(_value(parameters, name) for name in names))

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
