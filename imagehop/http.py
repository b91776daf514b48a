"""The one HTTP layer under the identity, image and compute clients.

Each client owns an :class:`HttpClient`: a ``requests.Session`` with the ``(connect, read)``
timeout and TLS verification from :class:`~imagehop.settings.Settings`, the mapping of error
answers onto :mod:`imagehop.errors`, and the **only** retry loop for single requests:

* 401 with a token: ``tokens.invalidate(token)``, then the request is repeated once with a
  fresh token. A second 401 raises :class:`~imagehop.errors.AuthenticationError`.
* 413/429 with a short ``Retry-After`` (at most ``RetryPolicy.max_inline_wait_seconds``): wait
  that long and repeat, at most ``RetryPolicy.rate_limit_waits`` times, for any method (the
  cloud refused the request, so nothing happened). Otherwise raise
  :class:`~imagehop.errors.RateLimitedError` with ``retry_after`` for the step above.
* 5xx and transport errors: retried with jittered exponential backoff, at most
  ``RetryPolicy.attempts`` tries in total, **only** for requests that are safe to replay
  (idempotent methods, or a connection that failed before anything was sent). A POST that
  creates something is never replayed here; the step above decides.

Pollers (:mod:`imagehop.waiting`) pass :data:`NO_RETRY`: a poll that fails is simply the
poll, and the next one waits the full poll interval. Error messages name the method, the URL
path (never the query or a token) and the cloud's own message; request ids are kept.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from imagehop.clock import SYSTEM_CLOCK, Clock
from imagehop.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    ImagehopError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnsupportedMediaTypeError,
)
from imagehop.settings import Settings
from imagehop.tokens import TokenProvider

if TYPE_CHECKING:
    from imagehop.identity import TokenManager

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
REQUEST_ID_HEADERS = (
    "X-Openstack-Request-Id",
    "X-Compute-Request-Id",
    "X-Trans-Id",
    "X-Request-Id",
)
USER_AGENT = "imagehop/0.1"
MAX_MESSAGE_CHARS = 300

_BAD_URL = (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL)  # fmt: skip
_ERROR_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequestError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    415: UnsupportedMediaTypeError,
}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the single-request retry loop (see the module docstring)."""

    attempts: int = 3
    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 20.0
    rate_limit_waits: int = 3
    max_inline_wait_seconds: float = 15.0

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Delay before retry number ``failures`` (1-based): half fixed, half jitter."""
        ceiling = min(self.backoff_cap_seconds, self.backoff_seconds * 2.0 ** (failures - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1, rate_limit_waits=0)


def url_path(url: str) -> str:
    """The path of ``url``: what error messages may show (no host, query or fragment)."""
    return urlsplit(url).path or "/"


def request_id(response: requests.Response) -> str | None:
    """The cloud's id for this request, from whichever header the service uses."""
    for header in REQUEST_ID_HEADERS:
        if value := response.headers.get(header):
            return value
    return None


def cloud_message(response: requests.Response) -> str:
    """The human part of an error body (JSON, HTML or text), one line, bounded."""
    try:
        found = _message_in_json(response.json())
    except ValueError:
        found = _text_of_html(response.text)
    text = " ".join(found.split())
    status_prefix = f"{response.status_code} {response.reason or ''}".strip()
    if status_prefix and text.startswith(status_prefix):
        text = text[len(status_prefix) :].lstrip(" :")
    return text[:MAX_MESSAGE_CHARS]


def _message_in_json(data: Any, depth: int = 0) -> str:
    if isinstance(data, str):
        return data
    if not isinstance(data, Mapping) or depth > 2:
        return ""
    for key in ("message", "description", "detail", "error_description", "error"):
        if isinstance(data.get(key), str):
            return str(data[key])
    for value in data.values():
        if found := _message_in_json(value, depth + 1):
            return found
    return ""


def _text_of_html(text: str) -> str:
    text = re.sub(r"(?is)<(head|script|style)\b.*?</\1>", " ", text)
    return re.sub(r"<[^>]+>", " ", text)


def retry_after(response: requests.Response, now: float) -> float | None:
    """Seconds the cloud asks us to wait: ``Retry-After`` (seconds or a date), else the
    ``retryAfter`` date of a Rackspace ``overLimit`` body; None if it gives no hint."""
    header = response.headers.get("Retry-After")
    if header:
        return _seconds_until(header, now)
    try:
        body = response.json()
        hint = body.get("overLimit", {}).get("retryAfter") if isinstance(body, dict) else None
    except ValueError:
        hint = None
    return _seconds_until(hint, now) if isinstance(hint, str) else None


def _seconds_until(value: str, now: float) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        pass
    try:
        return max(0.0, parse_timestamp(value) - now)
    except ValueError:
        return None


def parse_timestamp(value: str) -> float:
    """Epoch seconds of an ISO 8601 time as OpenStack writes it (``...Z``, offsets, or
    naive meaning UTC). Raises ValueError if it is not one."""
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def error_from_response(
    response: requests.Response, now: float, secrets: tuple[str, ...] = ()
) -> ImagehopError:
    """The error-tree exception for an error answer (status >= 400)."""
    method = response.request.method or "?"
    path = url_path(response.url or response.request.url or "")
    status = response.status_code
    message = f"{method} {path} -> {status} {response.reason or ''}".rstrip()
    if detail := _redact(cloud_message(response), secrets):
        message = f"{message}: {detail}"
    rid = request_id(response)
    if status == 401:
        return AuthenticationError(message, rid)
    if status in (413, 429):
        return RateLimitedError(message, rid, status, method, path, retry_after(response, now))
    if status >= 500:
        return ServerError(message, rid, status, method, path)
    return _ERROR_CLASSES.get(status, ApiError)(message, rid, status, method, path)


def raise_from_response(response: requests.Response, now: float) -> None:
    """Raise the error-tree exception for ``response`` if it is an error answer."""
    if response.status_code >= 400:
        raise error_from_response(response, now)


def json_body(response: requests.Response, key: str | None = None) -> Any:
    """The JSON of a successful answer, or its top-level ``key``.

    Raises:
        ApiError: the body is not JSON, or has no ``key`` (a cloud or proxy answering oddly).
    """
    method = response.request.method or "?"
    path = url_path(response.url or "")
    try:
        body = response.json()
    except ValueError:
        body = None
    if body is None or (key is not None and not isinstance(body, Mapping)):
        problem = "is not JSON"
    elif key is not None and key not in body:
        problem = f"has no {key!r}"
    else:
        return body if key is None else body[key]
    raise ApiError(
        f"{method} {path} -> {response.status_code}: the answer {problem}",
        request_id(response),
        response.status_code,
        method,
        path,
    )


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection failed before the request left this machine."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            return True
        reason = getattr(cause, "reason", None)
        cause = reason if isinstance(reason, BaseException) else cause.__context__
    return False


@dataclass
class _Failure:
    error: ImagehopError
    replayable: bool


class _RetryBudget:
    """Counts what one request has used of its policy and says how long to wait next."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng
        self._failures = 0
        self._rate_limit_waits = 0

    def delay_before_retry(self, failure: _Failure) -> float | None:
        error = failure.error
        if isinstance(error, RateLimitedError):
            return self._rate_limit_delay(error)
        if isinstance(error, ServerError | TransportError) and failure.replayable:
            return self._backoff_delay()
        return None

    def _rate_limit_delay(self, error: RateLimitedError) -> float | None:
        wait = error.retry_after
        if wait is None or wait > self._policy.max_inline_wait_seconds:
            return None
        if self._rate_limit_waits >= self._policy.rate_limit_waits:
            return None
        self._rate_limit_waits += 1
        return wait

    def _backoff_delay(self) -> float | None:
        self._failures += 1
        if self._failures >= self._policy.attempts:
            return None
        return self._policy.backoff(self._failures, self._rng)


class HttpClient:
    """A ``requests.Session`` for one cloud service (not shared between threads)."""

    def __init__(
        self,
        settings: Settings,
        *,
        tokens: TokenProvider | None = None,
        clock: Clock = SYSTEM_CLOCK,
        retry: RetryPolicy = DEFAULT_RETRY,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session or requests.Session()
        self._session.verify = settings.tls_verify
        self._timeout = settings.http_timeout
        self._tokens = tokens
        self._clock = clock
        self._retry = retry
        self._rng = rng or random.Random()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
        redact: tuple[str, ...] = (),
    ) -> requests.Response:
        """Send one request and return its (non-error) response.

        Args:
            idempotent: whether replaying is harmless; defaults to True for GET, HEAD,
                OPTIONS, PUT and DELETE.
            retry: overrides the client's policy for this call (pollers pass NO_RETRY).
            redact: secrets sent in the body, blanked out should the answer quote them
                (the token is always blanked).

        Raises:
            ApiError subclasses for error answers, AuthenticationError for a 401 that a
            fresh token did not cure, TransportError when no answer arrived.
        """
        replayable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        budget = _RetryBudget(retry or self._retry, self._rng)
        prepared = _Prepared(method, url, json_body, params, headers, redact)
        reauthenticated = False
        while True:
            token = self._tokens.token() if self._tokens is not None else None
            outcome = self._attempt(prepared, token, replayable)
            if isinstance(outcome, requests.Response):
                return outcome
            refused = isinstance(outcome.error, AuthenticationError)
            if refused and self._tokens is not None and token and not reauthenticated:
                self._tokens.invalidate(token)
                reauthenticated = True
                continue
            self._wait_or_raise(budget, outcome)

    def _wait_or_raise(self, budget: _RetryBudget, failure: _Failure) -> None:
        delay = budget.delay_before_retry(failure)
        if delay is None:
            raise failure.error
        log.warning("%s; retrying in %.1f s", failure.error, delay)
        self._clock.sleep(delay)

    def _attempt(
        self, req: _Prepared, token: str | None, replayable: bool
    ) -> requests.Response | _Failure:
        try:
            response = self._session.request(
                req.method,
                req.url,
                data=req.body,
                params=req.params,
                headers=req.headers_with(token),
                timeout=self._timeout,
            )
        except _BAD_URL as exc:
            raise ConfigurationError(f"cannot send {req.method} to {req.url!r}: {exc}") from None
        except requests.RequestException as exc:
            error = TransportError(f"{req.method} {url_path(req.url)} failed: {_describe(exc)}")
            return _Failure(error, replayable or _never_sent(exc))
        if response.status_code < 400:
            return response
        secrets = (*req.redact, token) if token else req.redact
        return _Failure(error_from_response(response, self._clock.time(), secrets), replayable)


@dataclass(frozen=True)
class _Prepared:
    method: str
    url: str
    json_body: Any
    params: Mapping[str, str] | None
    headers: Mapping[str, str] | None
    redact: tuple[str, ...] = ()

    @property
    def body(self) -> bytes | None:
        if self.json_body is None:
            return None
        return json.dumps(self.json_body).encode()

    def headers_with(self, token: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.json_body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(self.headers or {})
        if token is not None:
            headers["X-Auth-Token"] = token
        return headers


def _describe(exc: requests.RequestException) -> str:
    """A short, secret-free description of a transport failure."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "read timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed (refused, reset or closed without an answer)"
    return type(exc).__name__


class RegionalApiClient:
    """What the clients of the regional APIs share: the base URL of one region's endpoint,
    the settings, a clock and one pooled :class:`HttpClient` fed by the token provider."""

    #: The service type the account's catalog lists this API under.
    service_type: ClassVar[str]

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        http: HttpClient | None = None,
    ) -> None:
        self.base_url = self.normalize_url(base_url)
        self._settings = settings
        self._clock = clock
        self._http = http or HttpClient(settings, tokens=tokens, clock=clock)

    @staticmethod
    def normalize_url(url: str) -> str:
        return url.rstrip("/")

    @classmethod
    def for_region(
        cls, tokens: TokenManager, region: str, settings: Settings, *, clock: Clock = SYSTEM_CLOCK
    ) -> Self:
        """The client of ``region``, at the URL the account's catalog gives for it.

        Raises:
            UnknownRegionError: the catalog offers no endpoint of this API in ``region``.
        """
        return cls(tokens.endpoint(cls.service_type, region), tokens, settings, clock=clock)

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()
