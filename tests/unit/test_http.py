"""The shared HTTP layer against a real loopback server: error mapping, request ids,
messages without secrets, and the one retry policy (Retry-After, 5xx, dropped connections,
401 re-authentication)."""

from __future__ import annotations

import socket

import pytest

from imagehop import errors
from imagehop.http import NO_RETRY, HttpClient, RetryPolicy
from tests.support.scripted_bodies import make_settings
from tests.support.scripted_clock import ScriptedClock
from tests.support.scripted_server import ScriptedServer


class RecordingTokens:
    """A token provider that hands out token-1, token-2, ... after each invalidation."""

    def __init__(self) -> None:
        self.current = "token-1"
        self.invalidated: list[str] = []

    def token(self) -> str:
        return self.current

    def invalidate(self, stale: str) -> None:
        self.invalidated.append(stale)
        if stale == self.current:
            self.current = f"token-{int(stale.split('-')[1]) + 1}"


def client(clock: ScriptedClock, tokens: RecordingTokens | None = None, **kw: object) -> HttpClient:
    return HttpClient(make_settings(**kw), tokens=tokens, clock=clock)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (403, errors.ForbiddenError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (415, errors.UnsupportedMediaTypeError),
        (405, errors.ApiError),
        (500, errors.ServerError),
        (503, errors.ServerError),
        # A 413 without a retry hint is a size limit (a rate limit's carries Retry-After).
        (413, errors.RequestTooLargeError),
        (429, errors.RateLimitedError),
        (401, errors.AuthenticationError),
    ],
)
def test_error_answers_map_onto_the_tree(
    server: ScriptedServer, clock: ScriptedClock, status: int, cls: type[Exception]
) -> None:
    server.expect("POST", "/v2/tasks").reply(status, json={"message": "nope"})
    with pytest.raises(cls) as caught:
        client(clock).request("POST", f"{server.url}/v2/tasks", json_body={})
    assert type(caught.value) is cls
    assert "POST /v2/tasks" in str(caught.value)
    assert "nope" in str(caught.value)


@pytest.mark.parametrize(
    "header",
    ["X-Openstack-Request-Id", "X-Compute-Request-Id", "X-Trans-Id", "X-Request-Id"],
)
def test_every_error_keeps_the_request_id(
    server: ScriptedServer, clock: ScriptedClock, header: str
) -> None:
    server.expect("GET", "/v2/images/x").reply(404, headers={header: "req-77"})
    with pytest.raises(errors.NotFoundError) as caught:
        client(clock).request("GET", f"{server.url}/v2/images/x")
    assert caught.value.request_id == "req-77"
    assert "req-77" in str(caught.value)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (
            "application/json",
            '{"itemNotFound": {"message": "Instance could not be found", "code": 404}}',
            "Instance could not be found",
        ),
        (
            "application/json",
            '{"unauthorized": {"code": 401, "message": "Username or api key is invalid."}}',
            "Username or api key is invalid.",
        ),
        (
            "text/html",
            "<html><head><title>409 Conflict</title></head><body><h1>409 Conflict</h1>"
            "There was a conflict.<br /><br />\nProperty com.x already present.</body></html>",
            "There was a conflict. Property com.x already present.",
        ),
        ("text/plain", "Over limit, slow down\n", "Over limit, slow down"),
    ],
)
def test_the_clouds_message_is_read_from_json_html_or_text(
    server: ScriptedServer, clock: ScriptedClock, content_type: str, body: str, expected: str
) -> None:
    server.expect("GET", "/v2/images/x").reply(
        409, body=body, headers={"Content-Type": content_type}
    )
    with pytest.raises(errors.ApiError) as caught:
        client(clock).request("GET", f"{server.url}/v2/images/x")
    assert caught.value.message.endswith(expected)


def test_messages_show_the_path_but_no_query_and_no_token(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    tokens = RecordingTokens()
    server.expect("GET", "/v2/images").reply(400, json={"message": "bad token-1 in request"})
    with pytest.raises(errors.BadRequestError) as caught:
        client(clock, tokens).request(
            "GET", f"{server.url}/v2/images", params={"secret-filter": "hush"}
        )
    text = str(caught.value)
    assert "GET /v2/images -> 400" in text
    assert "hush" not in text and "token-1" not in text
    assert caught.value.url == "/v2/images"


def test_requests_carry_the_token_and_json(server: ScriptedServer, clock: ScriptedClock) -> None:
    server.expect(
        "POST", "/v2/tasks", headers={"X-Auth-Token": "token-1"}, json={"type": "export"}
    ).reply(201, json={"id": "t1"})
    response = client(clock, RecordingTokens()).request(
        "POST", f"{server.url}/v2/tasks", json_body={"type": "export"}
    )
    assert response.json() == {"id": "t1"}
    assert server.received[0].headers["content-type"] == "application/json"


# Retry-After on 413/429 -------------------------------------------------------------------


def test_a_short_retry_after_is_waited_out_inline_even_for_a_post(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/servers").reply(413, headers={"Retry-After": "2"})
    server.expect("POST", "/servers").reply(202, json={"server": {"id": "s1"}})
    client(clock).request("POST", f"{server.url}/servers", json_body={})
    assert clock.sleeps == [2.0]
    gap = server.received[1].at - server.received[0].at
    assert gap >= 2.0


def test_a_long_retry_after_is_raised_for_the_step_above(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("GET", "/v2/images").reply(429, headers={"Retry-After": "120"})
    with pytest.raises(errors.RateLimitedError) as caught:
        client(clock).request("GET", f"{server.url}/v2/images")
    assert caught.value.retry_after == 120.0
    assert caught.value.retryable
    assert clock.sleeps == []


def test_retry_after_as_an_http_date(server: ScriptedServer, clock: ScriptedClock) -> None:
    # the scripted clock stands at 2023-11-14T22:13:20Z
    server.expect("GET", "/v2/images").reply(
        429, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:25 GMT"}
    )
    server.expect("GET", "/v2/images").reply(200, json={"images": []})
    client(clock).request("GET", f"{server.url}/v2/images")
    assert clock.sleeps == [5.0]


def test_retry_after_from_a_rackspace_overlimit_body(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    body = {
        "overLimit": {"code": 413, "message": "slow down", "retryAfter": "2023-11-14T22:13:23Z"}
    }
    server.expect("POST", "/v2.0/tokens").reply(413, json=body)
    server.expect("POST", "/v2.0/tokens").reply(200, json={})
    client(clock).request("POST", f"{server.url}/v2.0/tokens", json_body={})
    assert clock.sleeps == [3.0]


def test_rate_limit_waits_are_bounded(server: ScriptedServer, clock: ScriptedClock) -> None:
    for _ in range(4):
        server.expect("GET", "/v2/images").reply(429, headers={"Retry-After": "1"})
    with pytest.raises(errors.RateLimitedError):
        client(clock).request("GET", f"{server.url}/v2/images")
    assert clock.sleeps == [1.0, 1.0, 1.0]


# 5xx and transport errors -----------------------------------------------------------------


def test_a_5xx_on_a_get_is_retried_with_jittered_backoff(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("GET", "/v2/tasks/t1").reply(503)
    server.expect("GET", "/v2/tasks/t1").reply(500)
    server.expect("GET", "/v2/tasks/t1").reply(200, json={"id": "t1"})
    client(clock).request("GET", f"{server.url}/v2/tasks/t1")
    first, second = clock.sleeps
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0


def test_5xx_retries_are_bounded(server: ScriptedServer, clock: ScriptedClock) -> None:
    for _ in range(3):
        server.expect("GET", "/v2/tasks/t1").reply(502, headers={"X-Openstack-Request-Id": "r"})
    with pytest.raises(errors.ServerError) as caught:
        client(clock).request("GET", f"{server.url}/v2/tasks/t1")
    assert caught.value.status == 502
    assert len(clock.sleeps) == 2


def test_a_5xx_on_a_post_is_not_replayed(server: ScriptedServer, clock: ScriptedClock) -> None:
    server.expect("POST", "/v2/tasks").reply(503)
    with pytest.raises(errors.ServerError):
        client(clock).request("POST", f"{server.url}/v2/tasks", json_body={})
    assert clock.sleeps == []


def test_a_post_marked_idempotent_is_replayed(server: ScriptedServer, clock: ScriptedClock) -> None:
    server.expect("POST", "/v2.0/tokens").reply(503)
    server.expect("POST", "/v2.0/tokens").reply(200, json={})
    client(clock).request("POST", f"{server.url}/v2.0/tokens", json_body={}, idempotent=True)
    assert len(clock.sleeps) == 1


def test_a_dropped_connection_on_a_get_is_retried(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("GET", "/servers/s1").drop()
    server.expect("GET", "/servers/s1").reply(200, json={"server": {}})
    client(clock).request("GET", f"{server.url}/servers/s1")
    assert len(clock.sleeps) == 1


def test_a_dropped_connection_on_a_post_is_not_replayed(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/servers").drop()
    with pytest.raises(errors.TransportError) as caught:
        client(clock).request("POST", f"{server.url}/servers", json_body={})
    assert "POST /servers failed" in str(caught.value)
    assert caught.value.retryable


def test_a_refused_connection_is_retried_even_for_a_post(clock: ScriptedClock) -> None:
    """Nothing was sent, so replaying cannot create anything twice."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    with pytest.raises(errors.TransportError):
        client(clock).request("POST", f"http://127.0.0.1:{port}/servers", json_body={})
    assert len(clock.sleeps) == 2


def test_a_read_timeout_from_settings_becomes_a_transport_error(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("POST", "/v2/tasks").reply(201, json={}, delay=1.0)
    with pytest.raises(errors.TransportError) as caught:
        client(clock, read_timeout_seconds=0.2).request(
            "POST", f"{server.url}/v2/tasks", json_body={}
        )
    assert "read timed out" in str(caught.value)


@pytest.mark.parametrize("url", ["cloud.example/v2", "ftp://cloud.example/v2", "http://"])
def test_a_malformed_url_is_a_configuration_error(clock: ScriptedClock, url: str) -> None:
    with pytest.raises(errors.ConfigurationError):
        client(clock).request("GET", url)
    assert clock.sleeps == []


def test_no_retry_policy_raises_at_once(server: ScriptedServer, clock: ScriptedClock) -> None:
    server.expect("GET", "/v2/tasks/t1").reply(503)
    with pytest.raises(errors.ServerError):
        client(clock).request("GET", f"{server.url}/v2/tasks/t1", retry=NO_RETRY)
    assert clock.sleeps == []


def test_backoff_never_exceeds_its_cap() -> None:
    import random

    policy = RetryPolicy(backoff_seconds=1.0, backoff_cap_seconds=4.0)
    delays = [policy.backoff(n, random.Random(n)) for n in range(1, 10)]
    assert all(0 < d <= 4.0 for d in delays)
    assert max(delays) > 2.0


# 401 -----------------------------------------------------------------------------------


def test_a_401_renews_the_token_once_and_repeats_the_request(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    tokens = RecordingTokens()
    server.expect("GET", "/v2/images", headers={"X-Auth-Token": "token-1"}).reply(401)
    server.expect("GET", "/v2/images", headers={"X-Auth-Token": "token-2"}).reply(
        200, json={"images": []}
    )
    client(clock, tokens).request("GET", f"{server.url}/v2/images")
    assert tokens.invalidated == ["token-1"]
    assert clock.sleeps == []


def test_a_second_401_is_an_authentication_error(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    tokens = RecordingTokens()
    server.expect("POST", "/v2/tasks").reply(401, json={"unauthorized": {"message": "no"}})
    server.expect("POST", "/v2/tasks").reply(401, json={"unauthorized": {"message": "no"}})
    with pytest.raises(errors.AuthenticationError):
        client(clock, tokens).request("POST", f"{server.url}/v2/tasks", json_body={})
    assert tokens.invalidated == ["token-1"]
