"""The plumbing of every *create, then wait* step (snapshot, export, import, boot).

A create step is cached under its business identity (see :mod:`imagehop.tasks.policy`), but
its cache entry must only be written once the wait after it succeeded: a cached export whose
task then failed would otherwise be "reused" by every re-run. So the pair runs as one
transaction. A cached result may name something deleted since (the exported VHD an earlier
run's clean-up removed, a new image the user deleted): the wait finds it gone, says so in its
log and ends without failing (:func:`gone`), and the pair runs once more bypassing the cache,
so the cloud's state decides. Any other NotFoundError in the pair gets that second try too,
with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from prefect import State, Task, get_run_logger
from prefect.transactions import transaction

from imagehop.errors import NotFoundError

T = TypeVar("T")
R = TypeVar("R")


class StaleCacheError(Exception):
    """A cached create step named something that is gone (its wait said what)."""


def create_then_wait(pair: Callable[[bool], T], what: str) -> T:
    """Run ``pair(refresh)`` (a create step and its wait) as one transaction; once more with
    ``refresh=True`` if its cached result named something gone, or it met NotFoundError."""
    try:
        with transaction():
            return pair(False)
    except StaleCacheError:
        pass
    except NotFoundError as error:
        get_run_logger().warning("%s: %s; asking the cloud again, not the cache", what, error)
    with transaction():
        return pair(True)


def gone(cached: bool, error: NotFoundError, what: str, again: str) -> None:
    """In a wait task: re-raise ``error`` unless the awaited thing came from the cache; then
    log (info) that it is gone and what happens instead, and return None (the task does not
    fail: a re-run finding an earlier run's VHD deleted by that run's clean-up is normal)."""
    if not cached:
        raise error
    get_run_logger().info("%s an earlier run made is gone (%s); %s", what, error, again)


def present(awaited: T | None) -> T:
    """In a pair: what the wait returned, or StaleCacheError when the wait found it gone."""
    if awaited is None:
        raise StaleCacheError
    return awaited


def run_create(step: Task[..., R], refresh: bool, *args: Any, **kwargs: Any) -> tuple[R, bool]:
    """Run a cached create step (ignoring its cache when ``refresh``); returns its result and
    whether that came from the cache."""
    task = step.with_options(refresh_cache=True) if refresh else step
    state = cast(State[R], task(*args, return_state=True, **kwargs))
    return state.result(), state.name == "Cached"
