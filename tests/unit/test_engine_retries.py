"""The segment layer's retries without a Swift: a target whose PUT fails as scripted. The
copies themselves are tested against real Swift in tests/integration/test_transfer.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from imagehop import errors
from imagehop.retries import give_up
from imagehop.tasks.policy import retry_if_retryable
from imagehop.transfer.engine import copy_segment

SPEC = SimpleNamespace(
    index=0, name="seg-00000", length=0, pieces=(), expected_md5=None, source_key="k"
)
PLAN = SimpleNamespace(segments_container="c_segments")


class FailingTarget:
    """A target store whose ``put_stream`` raises the scripted errors, then stores the bytes."""

    def __init__(self, *failures: errors.ImagehopError) -> None:
        self.failures = list(failures)
        self.puts = 0

    def put_stream(self, *args: Any, **kwargs: Any) -> str:
        self.puts += 1
        if self.failures:
            raise self.failures.pop(0)
        return "d41d8cd98f00b204e9800998ecf8427e"  # MD5 of no bytes

    def post_metadata(self, *args: Any) -> None:
        pass


def copy(target: FailingTarget, attempts: int, sleeps: list[float]) -> Any:
    return copy_segment(None, target, PLAN, SPEC, attempts=attempts, sleep=sleeps.append)  # type: ignore[arg-type]


def test_a_segment_is_retried_until_it_is_copied() -> None:
    sleeps: list[float] = []
    target = FailingTarget(errors.ServerError("503"), errors.TransportError("reset"))
    assert copy(target, 4, sleeps).attempts == 3
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_the_wait_is_at_least_the_clouds_retry_after() -> None:
    sleeps: list[float] = []
    copy(FailingTarget(errors.RateLimitedError("429", None, 429, retry_after=9.0)), 4, sleeps)
    assert sleeps == [9.0]


def test_used_up_attempts_mark_the_error_so_the_copy_task_does_not_retry_it() -> None:
    """The lead's one copy task: its Prefect retries must not repeat the engine's."""
    from prefect.states import Failed

    sleeps: list[float] = []
    with pytest.raises(errors.ServerError) as caught:
        copy(FailingTarget(*(errors.ServerError("503") for _ in range(4))), 4, sleeps)
    assert caught.value.exhausted_by == "segment"
    assert len(sleeps) == 3
    assert not retry_if_retryable(None, None, Failed(data=caught.value))  # type: ignore[arg-type]


def test_one_attempt_retries_nothing_and_marks_nothing() -> None:
    """A caller that wants to be the retry layer itself passes attempts=1."""
    with pytest.raises(errors.ServerError) as caught:
        copy(FailingTarget(errors.ServerError("503")), 1, [])
    assert caught.value.exhausted_by is None


def test_an_error_the_store_gave_up_on_is_not_retried_again() -> None:
    """E.g. the metadata POST after the store's own request retries (library use)."""
    target = FailingTarget(give_up(errors.ServerError("503"), "request"))
    with pytest.raises(errors.ServerError) as caught:
        copy(target, 4, [])
    assert target.puts == 1 and caught.value.exhausted_by == "request"


def test_integrity_errors_are_never_retried() -> None:
    target = FailingTarget(errors.UnprocessableEntityError("422", None, 422))
    with pytest.raises(errors.IntegrityError):
        copy(target, 4, [])
    assert target.puts == 1
