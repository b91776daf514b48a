"""The one map from an HTTP error answer to :mod:`imagehop.errors`, for both HTTP stacks.

The ``requests`` clients (:mod:`imagehop.http`) and the object store (:mod:`imagehop.object_store`,
on python-swiftclient) each turn their answer object into an :class:`ErrorAnswer`, and
:func:`error_from_answer` does the rest, so a status means the same class in both:

======================  ===============================================================
400                     BadRequestError
401                     UnauthorizedError (the layer that renewed the token already and
                        still got a 401 raises :func:`refused_again` instead)
403, 404, 409, 415      ForbiddenError, NotFoundError, ConflictError,
                        UnsupportedMediaTypeError
408, 499                TransportError (the server or a proxy timed the request out)
413                     RateLimitedError with a retry hint (``Retry-After``, Rackspace
                        ``overLimit`` body), else RequestTooLargeError
422                     UnprocessableEntityError, an IntegrityError (Swift: ETag mismatch)
429, 498                RateLimitedError (``retry_after`` from the same hints, or None)
507                     InsufficientStorageError
other 5xx               ServerError
anything else >= 400    ApiError
======================  ===============================================================

Messages have one shape, ``[<where>: ]<METHOD> <path> -> <status> <reason>[: <cloud's
message>]``: the path never has the host, query or fragment, secrets the caller names (and
any token) are blanked out, and the request id is kept on the error (shown by ``str()``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imagehop.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    ImagehopError,
    InsufficientStorageError,
    NotFoundError,
    RateLimitedError,
    RequestTooLargeError,
    ServerError,
    TransportError,
    UnauthorizedError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from imagehop.retries import parse_retry_after

REQUEST_ID_HEADERS = (
    "X-Openstack-Request-Id",
    "X-Compute-Request-Id",
    "X-Trans-Id",
    "X-Request-Id",
)
MAX_MESSAGE_CHARS = 300
RATE_LIMIT_STATUSES = frozenset({429, 498})
TIMEOUT_STATUSES = frozenset({408, 499})

_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    507: InsufficientStorageError,
}


@dataclass(frozen=True)
class ErrorAnswer:
    """An HTTP error answer, whichever library received it.

    Args:
        method: the request's method.
        url: the request's URL or path (only the path is ever shown).
        status, reason: the status line.
        headers: the answer's headers (looked up case-insensitively).
        body: the answer's body as text.
        request_id: the cloud's request id when the stack found it already; else it is read
            from ``headers``.
    """

    method: str
    url: str
    status: int
    reason: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    request_id: str | None = None

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


def error_from_answer(
    answer: ErrorAnswer, now: float, secrets: tuple[str, ...] = (), where: str | None = None
) -> ImagehopError:
    """The error-tree exception for an error answer (status >= 400).

    Args:
        answer: the answer, adapted by the stack that received it.
        now: the current epoch time (a ``Retry-After`` date becomes seconds from now).
        secrets: strings to blank out should the cloud's message quote them (the token, a
            password sent in the body).
        where: what to name before the request (e.g. the region of an object store).
    """
    method, path, status = answer.method, url_path(answer.url), answer.status
    message = _message(answer, path, secrets, where)
    rid = answer.request_id or request_id_in(answer)
    if status in TIMEOUT_STATUSES:
        return TransportError(message, rid)
    if status in RATE_LIMIT_STATUSES or status == 413:
        wait = parse_retry_after(answer.header("Retry-After"), answer.body, now)
        if status in RATE_LIMIT_STATUSES or wait is not None:
            return RateLimitedError(message, rid, status, method, path, wait)
        return RequestTooLargeError(message, rid, status, method, path)
    default = ServerError if status >= 500 else ApiError
    return _CLASSES.get(status, default)(message, rid, status, method, path)


def refused_again(error: UnauthorizedError, renewed: bool = True) -> AuthenticationError:
    """The error for a 401 that renewing the token did not cure (``renewed``), or that came
    to a client with no token to renew (Identity's own): nobody retries it."""
    note = " (the renewed token was refused too)" if renewed else ""
    return AuthenticationError(error.message + note, error.request_id)


def url_path(url: str) -> str:
    """The path of ``url``: what error messages may show (no host, query or fragment)."""
    return urlsplit(url).path or "/"


def request_id_in(answer: ErrorAnswer) -> str | None:
    """The cloud's id for the request, from whichever header the service uses."""
    for header in REQUEST_ID_HEADERS:
        if value := answer.header(header):
            return value
    return None


def cloud_message(answer: ErrorAnswer) -> str:
    """The human part of an error body (JSON, HTML or text), one line, bounded."""
    try:
        found = _message_in_json(json.loads(answer.body))
    except ValueError:
        found = _text_of_html(answer.body)
    text = " ".join(found.split())
    for prefix in (f"{answer.status} {answer.reason}".strip(), answer.reason):
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :].lstrip(" :")
            break
    return text[:MAX_MESSAGE_CHARS]


def _message(answer: ErrorAnswer, path: str, secrets: tuple[str, ...], where: str | None) -> str:
    message = f"{answer.method} {path} -> {answer.status} {answer.reason}".rstrip()
    if where:
        message = f"{where}: {message}"
    if detail := _redact(cloud_message(answer), secrets):
        message = f"{message}: {detail}"
    return message


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


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text
