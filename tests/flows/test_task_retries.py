"""The task layer on real Prefect task runs: a retry waits out the cloud's ``Retry-After``
(Prefect 3.9 hands the delay no exception; see ``imagehop.tasks.policy.RetryDelays``), and an
error an inner layer gave up on is not retried."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from prefect import flow, task

from imagehop import errors
from imagehop.retries import Backoff, StepRetry, give_up
from imagehop.tasks.policy import retrying

pytestmark = pytest.mark.flow

#: Fast enough for a test: delays of 0.025-0.05 s, then 0.05-0.1 s.
FAST = StepRetry("task", attempts=3, backoff=Backoff(0.05, 0.1))


def failing_once(error: errors.ImagehopError) -> tuple[Callable[[], Any], list[float]]:
    """A flow whose one task raises ``error`` on its first try, then succeeds; and the
    monotonic start time of every try."""
    starts: list[float] = []

    @task(name="flaky-step", **retrying(FAST))
    def step() -> int:
        starts.append(time.monotonic())
        if len(starts) == 1:
            raise error
        return len(starts)

    @flow(name="retry-after-check")
    def run() -> int:
        return step()

    return run, starts


def test_the_next_try_starts_no_sooner_than_the_clouds_retry_after() -> None:
    run, starts = failing_once(errors.RateLimitedError("429", None, 429, retry_after=2.0))
    assert run() == 2
    assert starts[1] - starts[0] >= 2.0


def test_without_a_hint_the_backoff_formula_sets_the_delay() -> None:
    """The control: the same task, a 503 instead of a 429, retries within a fraction of it."""
    run, starts = failing_once(errors.ServerError("503", None, 503))
    assert run() == 2
    assert starts[1] - starts[0] < 1.5


def test_an_error_an_inner_layer_gave_up_on_is_not_retried() -> None:
    """E.g. the engine used up a segment's attempts inside the copy task."""
    run, starts = failing_once(give_up(errors.ServerError("503", None, 503), "segment"))
    with pytest.raises(errors.ServerError):
        run()
    assert len(starts) == 1
