"""The retry table, read from :mod:`imagehop.retries`' docstring, against the code; the one
backoff formula; the one Retry-After parser; giving up, so no kind is retried by two layers."""

from __future__ import annotations

import inspect
import pickle
import random

import pytest

from imagehop import errors, http, retries, waiting
from imagehop.identity import TokenManager
from imagehop.object_store import ObjectStore
from imagehop.retries import (
    NO_RETRY,
    REQUEST_RETRY,
    SEGMENT_RETRY,
    TASK_RETRY,
    Backoff,
    RetryBudget,
    RetryPolicy,
    first_login,
    give_up,
    may_retry,
    parse_retry_after,
    retry_delay,
)
from imagehop.settings import Credentials
from imagehop.tasks import cloud, policy
from imagehop.transfer import engine, source
from tests.support.scripted_bodies import make_settings
from tests.support.scripted_clock import ScriptedClock

# the table ---------------------------------------------------------------------------------


def table(doc: str) -> list[list[str]]:
    """The body rows of the first markdown table in ``doc``, cells stripped."""
    lines = [line for line in doc.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    assert rows[0] == ["failure kind", "where", "retried by", "attempts", "backoff", "deadline"]
    return rows[2:]


def span(backoff: Backoff) -> str:
    return f"{backoff.first_seconds:g}-{backoff.cap_seconds:g} s"


def rows_from_code() -> list[list[str]]:
    """What the table must say, every number taken from the code that does the retrying."""
    request, task, segment = REQUEST_RETRY, TASK_RETRY, SEGMENT_RETRY
    deadline = f"{request.deadline_seconds:g} s"
    own, transient = "request, own client", "5xx, transport, 413/429"
    inline = f"413/429, Retry-After <= {request.max_inline_wait_seconds:g} s"
    task_backoff = f"{span(task.backoff)}, >= Retry-After"
    segment_backoff = f"{span(segment.backoff)}, >= Retry-After"
    polls = f"{waiting.MAX_CONSECUTIVE_ERRORS} in a row"
    listings, gap = f"{source.LISTING_ATTEMPTS}", f"{source.LISTING_DELAY_SECONDS:g} s fixed"
    renewals, tries = f"{retries.TOKEN_RENEWALS} renewal", f"{request.attempts}"
    segment_kinds, seg_tries = "transport, 5xx, 401, 413/429", f"{segment.attempts}"
    login = "3" if first_login(request).retry_connect_failures else "1"
    first = ["refused, DNS, connect timeout", "first login to Identity"]
    return [
        ["401", "request with a token", "request", renewals, "none", "none"],
        [*first, "nobody", login, "none", "none"],
        ["5xx, transport", f"replayable {own}", "request", tries, span(request.formula), deadline],
        [inline, own, "request", f"{request.rate_limit_waits} waits", "Retry-After", deadline],
        ["413/429, longer or no hint", own, "caller", "none", "none", "none"],
        [transient, "task step", task.layer, f"{task.attempts}", task_backoff, "none"],
        [segment_kinds, "segment copy", segment.layer, seg_tries, segment_backoff, "none"],
        [transient, "poll", retries.POLL, polls, "interval, >= Retry-After", "wait's"],
        ["DLO listing with gaps", "DLO listing", retries.LISTING, listings, gap, "none"],
    ]


def test_the_retry_table_says_what_the_code_does() -> None:
    """Change a number in the code and this fails until the table says it too (and back)."""
    assert table(retries.__doc__ or "") == rows_from_code()


def test_each_failure_kind_and_place_has_one_row() -> None:
    places = [(row[0], row[1]) for row in table(retries.__doc__ or "")]
    assert len(places) == len(set(places))


def test_the_code_uses_the_layers_of_the_table() -> None:
    """Each layer's constants are the table's policies, where the retrying happens."""
    assert http.DEFAULT_RETRY is REQUEST_RETRY
    assert inspect.signature(http.HttpClient).parameters["retry"].default is REQUEST_RETRY
    assert inspect.signature(ObjectStore).parameters["retry"].default is REQUEST_RETRY
    identity = TokenManager(
        "http://id.example", Credentials(username="u", api_key="k"), make_settings()
    )
    assert identity._http._retry is REQUEST_RETRY  # the Identity client: "own client" rows
    assert cloud.TASK_REQUEST_RETRY is NO_RETRY  # requests inside tasks: the task row
    assert policy.RETRYING["retries"] == policy.RETRIES == TASK_RETRY.attempts - 1
    assert policy.RETRYING["retry_delay_seconds"].retry is TASK_RETRY
    assert policy.RETRYING["retry_jitter_factor"] is None  # never below the Retry-After
    assert policy.RETRYING["retry_condition_fn"] is policy.retry_if_retryable
    defaults = inspect.signature(engine.copy_segment).parameters
    assert defaults["attempts"].default == SEGMENT_RETRY.attempts
    assert defaults["backoff"].default == SEGMENT_RETRY.backoff.first_seconds
    assert SEGMENT_RETRY.backoff.cap_seconds == engine.MAX_BACKOFF_SECONDS
    assert inspect.signature(waiting.poll_until).parameters["max_consecutive_errors"].default == (
        waiting.MAX_CONSECUTIVE_ERRORS
    )
    assert inspect.signature(source.discover_source).parameters["listing_attempts"].default == (
        source.LISTING_ATTEMPTS
    )


TRANSIENT = [
    errors.ServerError("503", None, 503),
    errors.TransportError("reset"),
    errors.RateLimitedError("429", None, 429, retry_after=1.0),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_requests_inside_tasks_and_polls_leave_every_kind_to_their_layer(
    error: errors.ImagehopError,
) -> None:
    """NO_RETRY retries nothing and marks nothing: the task (or poll) layer gets it."""
    assert RetryBudget(NO_RETRY, ScriptedClock()).delay_before_retry(error, True) is None
    assert may_retry(error)


# giving up ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["request", "segment", "poll", "listing"])
def test_an_error_a_layer_gave_up_on_is_retried_by_no_other(layer: str) -> None:
    error = give_up(errors.ServerError("503", None, 503), layer)
    assert error.exhausted_by == layer and error.retryable
    assert not may_retry(error)
    assert RetryBudget(REQUEST_RETRY, ScriptedClock()).delay_before_retry(error, True) is None


def test_the_first_layer_to_give_up_is_the_one_named() -> None:
    error = give_up(give_up(errors.TransportError("reset"), "request"), "segment")
    assert error.exhausted_by == "request"


def test_the_mark_survives_pickling() -> None:
    """Prefect stores failed states; the retry condition may see an unpickled copy."""
    error = give_up(errors.RateLimitedError("429", "r-1", 429, retry_after=3.0), "segment")
    copy = pickle.loads(pickle.dumps(error))
    assert copy.exhausted_by == "segment" and copy.retry_after == 3.0


def test_only_imagehop_errors_that_are_retryable_may_be_retried() -> None:
    assert not may_retry(ValueError("a bug"))
    assert not may_retry(errors.IntegrityError("md5"))
    assert may_retry(errors.SourceIncompleteError("gaps"))


# the request layer's budget ----------------------------------------------------------------


def test_the_request_layer_marks_what_it_used_up() -> None:
    budget = RetryBudget(REQUEST_RETRY, ScriptedClock(), random.Random(1))
    first, second, third = (errors.ServerError("503", None, 503) for _ in range(3))
    assert budget.delay_before_retry(first, True) is not None
    assert budget.delay_before_retry(second, True) is not None
    assert budget.delay_before_retry(third, True) is None
    assert third.exhausted_by == "request"


def test_what_the_request_layer_does_not_retry_stays_unmarked() -> None:
    """A POST's 5xx and a long Retry-After go to the caller's layer, which may retry them."""
    budget = RetryBudget(REQUEST_RETRY, ScriptedClock())
    post_failure = errors.ServerError("503", None, 503)
    long_wait = errors.RateLimitedError("429", None, 429, retry_after=60.0)
    assert budget.delay_before_retry(post_failure, replayable=False) is None
    assert budget.delay_before_retry(long_wait, replayable=True) is None
    assert may_retry(post_failure) and may_retry(long_wait)


def test_a_first_login_does_not_retry_a_connection_that_could_not_be_made() -> None:
    """Refused, DNS, connect timeout: no retry, and no mark (no layer retried it); a
    transport error after connecting, and a 5xx, are retried as by the client's policy."""
    budget = RetryBudget(first_login(REQUEST_RETRY), ScriptedClock())
    refused = errors.TransportError("refused", connect_failed=True)
    assert budget.delay_before_retry(refused, True) is None
    assert refused.exhausted_by is None
    assert budget.delay_before_retry(errors.TransportError("reset"), True) is not None
    assert budget.delay_before_retry(errors.ServerError("503", None, 503), True) is not None
    assert RetryBudget(REQUEST_RETRY, ScriptedClock()).delay_before_retry(refused, True)


def test_no_retry_starts_after_the_deadline() -> None:
    clock = ScriptedClock()
    budget = RetryBudget(RetryPolicy(attempts=10, deadline_seconds=30.0), clock)
    assert budget.delay_before_retry(errors.TransportError("reset"), True) is not None
    clock.advance(40)
    late = errors.TransportError("reset")
    assert budget.delay_before_retry(late, True) is None
    assert late.exhausted_by == "request"


# the formula and the parser ---------------------------------------------------------------


@pytest.mark.parametrize("failures", range(1, 12))
def test_the_backoff_is_between_half_and_all_of_its_capped_ceiling(failures: int) -> None:
    backoff = Backoff(1.0, 20.0)
    ceiling = min(20.0, 2.0 ** (failures - 1))
    delays = [backoff.delay(failures, random.Random(seed)) for seed in range(50)]
    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 1  # jittered


def test_a_retry_waits_at_least_the_clouds_retry_after() -> None:
    backoff = Backoff(1.0, 30.0)
    slow_down = errors.RateLimitedError("429", None, 429, retry_after=45.0)
    assert retry_delay(backoff, 1, slow_down) == 45.0
    assert retry_delay(backoff, 1, errors.ServerError("503")) <= 1.0


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        ("12", None, 12.0),
        ("0.5", None, 0.5),
        ("-3", None, 0.0),
        ("Tue, 14 Nov 2023 22:13:50 GMT", None, 30.0),
        (None, '{"overLimit": {"retryAfter": "2023-11-14T22:14:20Z"}}', 60.0),
        (None, '{"overLimit": {"retryAfter": "2023-11-14T22:14:20"}}', 60.0),  # naive = UTC
        ("5", '{"overLimit": {"retryAfter": "2023-11-14T22:14:20Z"}}', 5.0),  # header wins
        (None, '{"overLimit": {"message": "no time"}}', None),
        (None, "<html>slow down</html>", None),
        ("later", None, None),
        (None, None, None),
    ],
)
def test_retry_after_parser(header: str | None, body: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, body, 1_700_000_000.0) == expected
