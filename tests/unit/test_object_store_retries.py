"""The object store's request layer, without a Swift: swiftclient's calls are replaced by
scripts of answers, so the retries, waits and marks can be watched on a scripted clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from swiftclient.exceptions import ClientException

from imagehop import errors
from imagehop.object_store import ClusterLimits, ObjectStore, _TokenConnection
from imagehop.retries import NO_RETRY
from tests.support.scripted_clock import ScriptedClock

PATH = "/v1/AUTH_t/c/o"


class StaticTokens:
    def token(self) -> str:
        return "tk"

    def invalidate(self, stale: str) -> None:
        pass


def answer(status: int, headers: dict[str, str] | None = None) -> ClientException:
    return ClientException(
        "Object failed", http_path=PATH, http_status=status, http_response_headers=headers
    )


def scripted(monkeypatch: pytest.MonkeyPatch, method: str, outcomes: list[Any]) -> list[int]:
    """Replace ``_TokenConnection.<method>``: each call raises or returns the next outcome."""
    calls: list[int] = []

    def call(self: _TokenConnection, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(_TokenConnection, method, call)
    return calls


def store(clock: ScriptedClock, **kwargs: Any) -> ObjectStore:
    return ObjectStore("http://127.0.0.1:9/v1/AUTH_t", StaticTokens(), clock=clock, **kwargs)


HEAD_OK = {"content-length": "1", "etag": "e"}


def test_a_5xx_on_a_head_is_retried_with_the_one_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ScriptedClock()
    scripted(monkeypatch, "head_object", [answer(503), answer(500), HEAD_OK])
    assert store(clock, region="DFW").head_object("c", "o").size == 1
    first, second = clock.sleeps
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0


def test_a_short_retry_after_from_swift_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ScriptedClock()
    scripted(monkeypatch, "head_object", [answer(429, {"retry-after": "2"}), HEAD_OK])
    store(clock).head_object("c", "o")
    assert clock.sleeps == [2.0]


def test_used_up_retries_are_marked_for_the_layers_above(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ScriptedClock()
    calls = scripted(monkeypatch, "head_object", [answer(503)] * 3)
    with pytest.raises(errors.ServerError) as caught:
        store(clock, region="DFW").head_object("c", "o")
    assert len(calls) == 3
    assert caught.value.exhausted_by == "request"
    assert caught.value.message == f"DFW: HEAD {PATH} -> 503"


def test_with_no_retry_the_error_is_left_to_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside tasks: one try, nothing marked, so the task layer retries it."""
    clock = ScriptedClock()
    scripted(monkeypatch, "head_object", [answer(429, {"retry-after": "2"})])
    with pytest.raises(errors.RateLimitedError) as caught:
        store(clock, retry=NO_RETRY).head_object("c", "o")
    assert clock.sleeps == [] and caught.value.exhausted_by is None
    assert caught.value.retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "cls"),
    [(503, errors.ServerError), (429, errors.RateLimitedError), (401, errors.UnauthorizedError)],
)
def test_a_stream_is_never_retried_here(
    monkeypatch: pytest.MonkeyPatch, status: int, cls: type[Exception]
) -> None:
    clock = ScriptedClock()
    calls = scripted(monkeypatch, "put_object", [answer(status, {"retry-after": "1"})])
    with pytest.raises(cls) as caught:
        store(clock).put_stream("c", "o", b"", 0)
    assert (len(calls), clock.sleeps) == (1, [])
    assert getattr(caught.value, "exhausted_by", None) is None  # the segment layer's to retry


def test_a_413_without_a_hint_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted(monkeypatch, "put_object", [answer(413)])
    with pytest.raises(errors.RequestTooLargeError):
        store(ScriptedClock()).put_bytes("c", "o", b"x")


def test_a_401_after_swiftclients_renewal_is_an_authentication_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted(monkeypatch, "head_object", [answer(401, {"x-trans-id": "tx-1"})])
    with pytest.raises(errors.AuthenticationError) as caught:
        store(ScriptedClock()).head_object("c", "o")
    assert not caught.value.retryable and caught.value.request_id == "tx-1"


def bulk_answer(deleted: int, errors_: list[list[str]]) -> tuple[dict[str, str], bytes]:
    status = "400 Bad Request" if errors_ else "200 OK"
    body = {"Response Status": status, "Response Body": "", "Number Deleted": deleted,
            "Number Not Found": 0, "Errors": errors_}  # fmt: skip
    return {}, json.dumps(body).encode()


def scripted_bulk(
    monkeypatch: pytest.MonkeyPatch, answers: list[tuple[dict[str, str], bytes]]
) -> list[list[str]]:
    """Replace the bulk-delete POST; returns the object paths each POST carried."""
    bodies: list[list[str]] = []

    def post_account(self: _TokenConnection, headers: Any, **kwargs: Any) -> Any:
        self.token = self.tokens.token()  # as the connection's _retry does before each call
        bodies.append(kwargs["data"].decode().split())
        return answers.pop(0)

    monkeypatch.setattr(_TokenConnection, "post_account", post_account)
    monkeypatch.setattr(ObjectStore, "limits", lambda self: ClusterLimits())
    return bodies


class CountingTokens(StaticTokens):
    def __init__(self) -> None:
        self.invalidated: list[str] = []

    def invalidate(self, stale: str) -> None:
        self.invalidated.append(stale)


def test_a_bulk_delete_whose_later_deletes_got_401_sends_only_those_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The token expired during the request: the first two went, the last two got 401."""
    refused = [["/c/seg%201", "401 Unauthorized"], ["/c/seg%202", "401 Unauthorized"]]
    bodies = scripted_bulk(monkeypatch, [bulk_answer(2, refused), bulk_answer(2, [])])
    tokens = CountingTokens()
    objects = [("c", "seg 0"), ("c", "seg 3"), ("c", "seg 1"), ("c", "seg 2")]
    result = ObjectStore("http://127.0.0.1:9/v1/AUTH_t", tokens).bulk_delete(objects)
    assert (result.deleted, result.not_found) == (4, 0)
    assert bodies[1] == ["/c/seg%201", "/c/seg%202"]
    assert tokens.invalidated == ["tk"]


def test_a_bulk_delete_with_other_failures_besides_401_is_not_renewed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mixed = [["/c/a", "401 Unauthorized"], ["/c", "409 Conflict"]]
    bodies = scripted_bulk(monkeypatch, [bulk_answer(0, mixed)])
    tokens = CountingTokens()
    with pytest.raises(errors.ApiError, match="409 Conflict") as caught:
        ObjectStore("http://127.0.0.1:9/v1/AUTH_t", tokens).bulk_delete([("c", "a"), ("c", "")])
    assert not isinstance(caught.value, errors.UnauthorizedError | errors.AuthenticationError)
    assert len(bodies) == 1 and tokens.invalidated == []


def counting_bulk(monkeypatch: pytest.MonkeyPatch, conflict: str | None = None) -> list[list[str]]:
    """A bulk-delete POST that deletes what it is sent (answering 409 for ``conflict``);
    returns the object paths each POST carried (from several threads)."""
    bodies: list[list[str]] = []

    def post_account(self: _TokenConnection, headers: Any, **kwargs: Any) -> Any:
        paths = kwargs["data"].decode().split()
        bodies.append(paths)
        failed = [[path, "409 Conflict"] for path in paths if path == conflict]
        return bulk_answer(len(paths) - len(failed), failed)

    monkeypatch.setattr(_TokenConnection, "post_account", post_account)
    monkeypatch.setattr(ObjectStore, "limits", lambda self: ClusterLimits())
    return bodies


def test_a_large_bulk_delete_is_split_into_requests_sent_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Swift deletes a request's objects one after another: 901 segments go as 4 requests of
    at most 226 objects, every object in exactly one of them."""
    bodies = counting_bulk(monkeypatch)
    objects = [("c", f"seg {n:05d}") for n in range(901)]
    result = ObjectStore("http://127.0.0.1:9/v1/AUTH_t", StaticTokens()).bulk_delete(objects)
    assert (result.deleted, result.not_found) == (901, 0)
    assert sorted(len(body) for body in bodies) == [223, 226, 226, 226]
    assert sorted(path for body in bodies for path in body) == sorted(
        f"/c/seg%20{n:05d}" for n in range(901)
    )


def test_a_small_bulk_delete_stays_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = counting_bulk(monkeypatch)
    objects = [("c", f"o{n}") for n in range(150)]
    result = ObjectStore("http://127.0.0.1:9/v1/AUTH_t", StaticTokens()).bulk_delete(objects)
    assert result.deleted == 150 and len(bodies) == 1


def test_a_failed_batch_of_a_split_bulk_delete_lets_the_others_finish_then_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bodies = counting_bulk(monkeypatch, conflict="/c/o0")
    objects = [("c", f"o{n}") for n in range(400)]
    with pytest.raises(errors.ApiError, match="409 Conflict"):
        ObjectStore("http://127.0.0.1:9/v1/AUTH_t", StaticTokens()).bulk_delete(objects)
    assert sum(len(body) for body in bodies) == 400 and len(bodies) == 4
