"""The generic poll loop, on a fake clock: spacing between polls, Retry-After, retryable
errors costing one poll, deadlines."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imagehop import errors
from imagehop.waiting import poll_until
from tests.support.scripted_clock import ScriptedClock


class Script:
    """Answers (or errors) handed out one per poll; records when each poll started."""

    def __init__(self, clock: ScriptedClock, steps: list[object], takes: float = 0.0) -> None:
        self.clock = clock
        self.steps = list(steps)
        self.takes = takes
        self.polled_at: list[float] = []

    def __call__(self) -> str:
        self.polled_at.append(self.clock.monotonic())
        self.clock.advance(self.takes)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return str(step)

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.polled_at, self.polled_at[1:], strict=False)]


def wait(
    script: Script,
    interval: float = 30.0,
    deadline: float = 3600.0,
    finished: Callable[[str], bool] = lambda s: s == "done",
    **kw: object,
) -> str:
    return poll_until(
        script,
        finished,
        status_of=lambda s: s,
        resource="task t1",
        wanted="done",
        interval=interval,
        deadline_seconds=deadline,
        clock=script.clock,
        **kw,  # type: ignore[arg-type]
    )


def rate_limited(seconds: float | None) -> errors.RateLimitedError:
    return errors.RateLimitedError("429", None, 429, "GET", "/x", seconds)


def test_returns_the_first_finished_value_polling_at_the_interval() -> None:
    script = Script(ScriptedClock(), ["pending", "processing", "done"])
    assert wait(script) == "done"
    assert script.gaps() == [30.0, 30.0]


def test_slow_answers_do_not_shorten_the_gap_between_poll_starts() -> None:
    clock = ScriptedClock()
    script = Script(clock, ["processing", "processing", "done"], takes=12.0)
    wait(script)
    assert script.gaps() == [30.0, 30.0]
    assert clock.sleeps == [18.0, 18.0]


def test_an_answer_slower_than_the_interval_is_followed_by_an_immediate_poll() -> None:
    script = Script(ScriptedClock(), ["processing", "done"], takes=45.0)
    wait(script)
    assert script.gaps() == [45.0]


def test_a_short_retry_after_keeps_the_full_interval() -> None:
    script = Script(ScriptedClock(), ["processing", rate_limited(1), "done"])
    wait(script)
    assert script.gaps() == [30.0, 30.0]


def test_a_long_retry_after_stretches_the_gap() -> None:
    script = Script(ScriptedClock(), [rate_limited(95), "done"])
    wait(script)
    assert script.gaps() == [95.0]


@pytest.mark.parametrize(
    "failure",
    [
        errors.ServerError("503", None, 503),
        errors.TransportError("connection reset"),
        rate_limited(None),
    ],
)
def test_a_retryable_error_costs_one_poll(failure: errors.ImagehopError) -> None:
    script = Script(ScriptedClock(), [failure, failure, "done"])
    assert wait(script) == "done"
    assert script.gaps() == [30.0, 30.0]


def test_a_non_retryable_error_stops_the_wait() -> None:
    script = Script(ScriptedClock(), ["processing", errors.NotFoundError("gone", None, 404)])
    with pytest.raises(errors.NotFoundError):
        wait(script)


def test_too_many_errors_in_a_row_stop_the_wait() -> None:
    failure = errors.ServerError("503", None, 503)
    script = Script(ScriptedClock(), [failure] * 3)
    with pytest.raises(errors.ServerError):
        wait(script, max_consecutive_errors=3)
    assert len(script.polled_at) == 3


def test_a_success_resets_the_error_count() -> None:
    failure = errors.ServerError("503", None, 503)
    steps: list[object] = [failure, failure, "processing", failure, failure, "done"]
    script = Script(ScriptedClock(), steps)
    assert wait(script, max_consecutive_errors=3) == "done"


def test_the_deadline_error_names_resource_wanted_and_last_status() -> None:
    script = Script(ScriptedClock(), ["pending", "processing", "processing", "processing"])
    with pytest.raises(errors.WaitTimeoutError) as caught:
        wait(script, deadline=100.0)
    assert len(script.polled_at) == 4  # at 0, 30, 60 and 90 s; the next would pass 100 s
    error = caught.value
    assert (error.resource, error.wanted, error.last_status) == ("task t1", "done", "processing")
    assert "task t1" in str(error) and "'done'" in str(error) and "processing" in str(error)


def test_a_terminal_state_raised_by_finished_stops_the_wait() -> None:
    def finished(status: str) -> bool:
        if status == "failure":
            raise errors.TaskFailedError("failed")
        return status == "done"

    script = Script(ScriptedClock(), ["processing", "failure"])
    with pytest.raises(errors.TaskFailedError):
        wait(script, finished=finished)


def test_on_poll_sees_every_successful_answer() -> None:
    seen: list[str] = []
    failure = errors.ServerError("503", None, 503)
    script = Script(ScriptedClock(), ["pending", failure, "processing", "done"])
    wait(script, on_poll=seen.append)
    assert seen == ["pending", "processing", "done"]


def test_the_error_that_ends_a_wait_is_marked_so_no_task_retries_the_wait() -> None:
    failures: list[object] = [errors.ServerError("503", None, 503) for _ in range(3)]
    with pytest.raises(errors.ServerError) as caught:
        wait(Script(ScriptedClock(), failures), max_consecutive_errors=3)
    assert caught.value.exhausted_by == "poll"


def test_an_error_an_inner_layer_gave_up_on_ends_the_wait_at_once() -> None:
    given_up = errors.ServerError("503", None, 503)
    given_up.exhausted_by = "request"
    script = Script(ScriptedClock(), [given_up, "done"])
    with pytest.raises(errors.ServerError):
        wait(script)
    assert len(script.polled_at) == 1
