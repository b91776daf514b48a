"""The one HTTP layer under the identity, image and compute clients.

Each client owns an :class:`HttpClient`: a ``requests.Session`` with the ``(connect, read)``
timeout and TLS verification from :class:`~imagehop.settings.Settings`, and the request layer
of :mod:`imagehop.retries` (the retry table says who retries what):

* 401 with a token: ``tokens.invalidate(token)``, then the request is repeated once with a
  fresh token. A second 401 raises :class:`~imagehop.errors.AuthenticationError`.
* 413/429 with a short ``Retry-After``, 5xx and transport errors: as the client's
  :class:`~imagehop.retries.RetryPolicy` says; 5xx and transport errors **only** for requests
  that are safe to replay (idempotent methods, or a connection that failed before anything
  was sent). A POST that creates something is never replayed here; the step above decides.

Pollers (:mod:`imagehop.waiting`) and the clients inside Prefect tasks pass
:data:`~imagehop.retries.NO_RETRY`. Error answers become exceptions in
:func:`imagehop.error_map.error_from_answer`, the map the object store uses too; this module
only adapts a ``requests.Response`` to it (:func:`answer_of`).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

import requests
import urllib3.exceptions

from imagehop.clock import SYSTEM_CLOCK, Clock
from imagehop.error_map import (
    ErrorAnswer,
    error_from_answer,
    refused_again,
    request_id_in,
    url_path,
)
from imagehop.errors import (
    ApiError,
    ConfigurationError,
    ImagehopError,
    TransportError,
    UnauthorizedError,
)
from imagehop.retries import NO_RETRY as NO_RETRY  # re-exported: the policy pollers pass
from imagehop.retries import REQUEST_RETRY, TOKEN_RENEWALS, RetryBudget, RetryPolicy
from imagehop.settings import Settings
from imagehop.tokens import TokenProvider

if TYPE_CHECKING:
    from imagehop.identity import TokenManager

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
USER_AGENT = "imagehop/0.1"

_BAD_URL = (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL)  # fmt: skip

#: The request layer of a client used on its own (see :mod:`imagehop.retries`).
DEFAULT_RETRY = REQUEST_RETRY


def answer_of(response: requests.Response) -> ErrorAnswer:
    """The error-map input for a ``requests`` answer."""
    return ErrorAnswer(
        method=response.request.method or "?",
        url=response.url or response.request.url or "",
        status=response.status_code,
        reason=response.reason or "",
        headers=response.headers,
        body=response.text,
    )


def error_from_response(
    response: requests.Response, now: float, secrets: tuple[str, ...] = ()
) -> ImagehopError:
    """The error-tree exception for an error answer (status >= 400)."""
    return error_from_answer(answer_of(response), now, secrets)


def raise_from_response(response: requests.Response, now: float) -> None:
    """Raise the error-tree exception for ``response`` if it is an error answer."""
    if response.status_code >= 400:
        raise error_from_response(response, now)


def _log_creation(response: requests.Response) -> None:
    """A POST (a snapshot, an export or import task, a server, a token) was answered: log it
    with the cloud's request id, the handle its support asks for."""
    method = response.request.method or "?"
    if method != "POST":
        return
    request_id = request_id_in(answer_of(response)) or "none given"
    path = url_path(response.url or "")
    log.info("%s %s -> %d, request id %s", method, path, response.status_code, request_id)


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
        request_id_in(answer_of(response)),
        response.status_code,
        method,
        path,
    )


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is in the chain of reasons and contexts of ``exc``."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, kind):
            return True
        reason = getattr(cause, "reason", None)
        cause = reason if isinstance(reason, BaseException) else cause.__context__
    return False


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection failed before the request left this machine."""
    return isinstance(exc, requests.ConnectTimeout) or _caused_by(
        exc, urllib3.exceptions.NewConnectionError
    )


@dataclass
class _Failure:
    error: ImagehopError
    replayable: bool


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

    @property
    def retry(self) -> RetryPolicy:
        """The client's request-layer policy."""
        return self._retry

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
        data: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one request and return its (non-error) response.

        Args:
            idempotent: whether replaying is harmless; defaults to True for GET, HEAD,
                OPTIONS, PUT and DELETE.
            data: a raw body instead of ``json_body`` (bytes, or a file-like object or
                iterator that is streamed: pass ``idempotent=False`` and ``NO_RETRY`` then,
                a stream cannot be sent twice).
            stream: leave the answer's body unread (``response.raw``) for the caller.
            retry: overrides the client's policy for this call (pollers pass NO_RETRY).
            redact: secrets sent in the body, blanked out should the answer quote them
                (the token is always blanked).

        Raises:
            ApiError subclasses for error answers, AuthenticationError for a 401 that a
            fresh token did not cure, TransportError when no answer arrived.
        """
        replayable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        budget = RetryBudget(retry or self._retry, self._clock, self._rng)
        prepared = _Prepared(method, url, json_body, params, headers, redact, data)
        renewals = 0
        while True:
            token = self._tokens.token() if self._tokens is not None else None
            outcome = self._attempt(prepared, token, replayable, stream)
            if isinstance(outcome, requests.Response):
                _log_creation(outcome)
                return outcome
            if isinstance(outcome.error, UnauthorizedError):
                if self._tokens is None or not token or renewals >= TOKEN_RENEWALS:
                    raise refused_again(outcome.error, renewed=renewals > 0)
                self._tokens.invalidate(token)
                renewals += 1
                continue
            self._wait_or_raise(budget, outcome)

    def _wait_or_raise(self, budget: RetryBudget, failure: _Failure) -> None:
        delay = budget.delay_before_retry(failure.error, failure.replayable)
        if delay is None:
            raise failure.error
        log.warning("%s; retrying in %.1f s", failure.error, delay)
        self._clock.sleep(delay)

    def _attempt(
        self, req: _Prepared, token: str | None, replayable: bool, stream: bool = False
    ) -> requests.Response | _Failure:
        try:
            response = self._session.request(
                req.method,
                req.url,
                data=req.body,
                params=req.params,
                headers=req.headers_with(token),
                timeout=self._timeout,
                stream=stream,
            )
        except _BAD_URL as exc:
            raise ConfigurationError(f"cannot send {req.method} to {req.url!r}: {exc}") from None
        except requests.RequestException as exc:
            never_sent = _never_sent(exc)
            error = TransportError(
                f"{req.method} {url_path(req.url)} failed: {_describe(exc)}",
                connect_failed=never_sent,
            )
            return _Failure(error, replayable or never_sent)
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
    data: Any = None

    @property
    def body(self) -> Any:
        if self.json_body is None:
            return self.data
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
    if _caused_by(exc, urllib3.exceptions.NameResolutionError):
        return "host name not resolved"
    if _caused_by(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or unreachable"
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
