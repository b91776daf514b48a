"""The plumbing of every *create, then wait* step (snapshot, export, import, boot).

A create step is cached under its business identity (see :mod:`imagehop.tasks.policy`), but
its cache entry must only be written once the wait after it succeeded: a cached export whose
task then failed would otherwise be "reused" by every re-run. So the pair runs as one
transaction. If the pair fails with NotFoundError, a cached result may name something deleted
since (e.g. the staged copy in the target was deleted, and the same request runs again): the
pair runs once more, bypassing the cache, so the cloud's state decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from prefect import State, Task, get_run_logger
from prefect.transactions import transaction

from imagehop.errors import NotFoundError

T = TypeVar("T")
R = TypeVar("R")


def create_then_wait(pair: Callable[[bool], T], what: str) -> T:
    """Run ``pair(refresh)`` (a create step and its wait) as one transaction; once more with
    ``refresh=True`` if it met NotFoundError."""
    try:
        with transaction():
            return pair(False)
    except NotFoundError as error:
        get_run_logger().warning("%s: %s; asking the cloud again, not the cache", what, error)
        with transaction():
            return pair(True)


def run_create(step: Task[..., R], refresh: bool, *args: Any, **kwargs: Any) -> tuple[R, bool]:
    """Run a cached create step (ignoring its cache when ``refresh``); returns its result and
    whether that came from the cache."""
    task = step.with_options(refresh_cache=True) if refresh else step
    state = cast(State[R], task(*args, return_state=True, **kwargs))
    return state.result(), state.name == "Cached"
