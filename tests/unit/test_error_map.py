"""The one error map: the same answer gives the same class, message and request id whether
``requests`` (the Identity/Images/Servers clients) or swiftclient (the object store) got it."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from swiftclient.exceptions import ClientException

from imagehop import errors
from imagehop.error_map import ErrorAnswer, error_from_answer, refused_again
from imagehop.http import error_from_response
from imagehop.object_store import map_client_exception

NOW = 1_700_000_000.0
PATH = "/v1/MossoCloudFS_914527/images/disk.vhd"
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    498: "Rate Limited",
    499: "Client Disconnect",
    500: "Internal Server Error",
    503: "Service Unavailable",
    507: "Insufficient Storage",
}


def from_requests(
    status: int, body: str = "", headers: dict[str, str] | None = None, method: str = "PUT"
) -> errors.ImagehopError:
    """What the HTTP clients raise for this answer."""
    response = requests.Response()
    response.status_code = status
    response.reason = REASONS.get(status, "")
    response.headers = CaseInsensitiveDict(headers or {})
    response._content = body.encode()
    response.encoding = "utf-8"
    response.url = f"https://storage.example:443{PATH}?temp_url_sig=hush"
    response.request = requests.Request(method, response.url).prepare()
    return error_from_response(response, NOW)


def from_swift(
    status: int, body: str = "", headers: dict[str, str] | None = None, method: str = "PUT"
) -> errors.ImagehopError:
    """What the object store raises for the same answer (swiftclient lower-cases headers)."""
    exc = ClientException(
        f"Object {method} failed",
        http_scheme="https",
        http_host="storage.example",
        http_port=443,
        http_path=PATH,
        http_query="temp_url_sig=hush",
        http_status=status,
        http_reason=REASONS.get(status, ""),
        http_response_content=body.encode(),
        http_response_headers={k.lower(): v for k, v in (headers or {}).items()},
    )
    return map_client_exception(exc, method, NOW)


BOTH = pytest.mark.parametrize("raised", [from_requests, from_swift], ids=["requests", "swift"])
EXPECTED = [
    (400, {}, errors.BadRequestError),
    (401, {}, errors.UnauthorizedError),
    (403, {}, errors.ForbiddenError),
    (404, {}, errors.NotFoundError),
    (405, {}, errors.ApiError),
    (408, {}, errors.TransportError),
    (409, {}, errors.ConflictError),
    (413, {}, errors.RequestTooLargeError),
    (413, {"Retry-After": "5"}, errors.RateLimitedError),
    (415, {}, errors.UnsupportedMediaTypeError),
    (416, {}, errors.ApiError),
    (422, {}, errors.UnprocessableEntityError),
    (429, {}, errors.RateLimitedError),
    (498, {}, errors.RateLimitedError),
    (499, {}, errors.TransportError),
    (500, {}, errors.ServerError),
    (503, {}, errors.ServerError),
    (507, {}, errors.InsufficientStorageError),
]


@pytest.mark.parametrize(("status", "headers", "cls"), EXPECTED)
def test_both_stacks_map_a_status_to_the_same_class_and_message(
    status: int, headers: dict[str, str], cls: type[errors.ImagehopError]
) -> None:
    """Same class, same message, same request id, from either library's answer object."""
    body = json.dumps({"error": {"message": "the cloud says no"}})
    headers = {**headers, "X-Trans-Id": "tx-123"}
    via_requests, via_swift = (
        from_requests(status, body, headers),
        from_swift(status, body, headers),
    )

    assert type(via_requests) is cls and type(via_swift) is cls
    assert via_requests.message == via_swift.message
    assert via_requests.message == f"PUT {PATH} -> {status} {REASONS[status]}: the cloud says no"
    assert via_requests.request_id == via_swift.request_id == "tx-123"
    assert str(via_swift).endswith("(request id: tx-123)")
    assert vars(via_requests) == vars(via_swift)


@BOTH
def test_messages_never_show_the_query_or_the_host(raised: type) -> None:
    text = str(raised(404, "no such object"))
    assert "hush" not in text and "storage.example" not in text
    assert text == f"PUT {PATH} -> 404 Not Found: no such object"


@BOTH
def test_the_clouds_message_is_read_from_an_html_body(raised: type) -> None:
    """Swift answers errors in HTML; the status line it repeats is not repeated again."""
    body = "<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized"
    body += " to access the document you requested.</p></html>"
    assert raised(401, body).message == (
        f"PUT {PATH} -> 401 Unauthorized: This server could not verify that you are authorized"
        " to access the document you requested."
    )


@pytest.mark.parametrize(
    ("status", "retryable"), [(401, True), (413, False), (422, False), (429, True), (507, False)]
)
def test_what_a_status_means_for_retrying(status: int, retryable: bool) -> None:
    error = from_swift(status)
    assert error.retryable is retryable
    assert isinstance(error, errors.IntegrityError) is (status == 422)  # Swift's ETag mismatch


# Retry-After: seconds, HTTP date, Rackspace overLimit body ----------------------------------


@BOTH
@pytest.mark.parametrize("status", [413, 429])
def test_retry_after_in_seconds(raised: type, status: int) -> None:
    error = raised(status, headers={"Retry-After": "7"})
    assert isinstance(error, errors.RateLimitedError)
    assert error.retry_after == 7.0 and error.status == status


@BOTH
@pytest.mark.parametrize("status", [413, 429])
def test_retry_after_as_an_http_date(raised: type, status: int) -> None:
    error = raised(status, headers={"Retry-After": formatdate(NOW + 42, usegmt=True)})
    assert isinstance(error, errors.RateLimitedError)
    assert error.retry_after == 42.0


@BOTH
@pytest.mark.parametrize("status", [413, 429])
def test_retry_after_from_a_rackspace_overlimit_body(raised: type, status: int) -> None:
    body = json.dumps(
        {"overLimit": {"code": 413, "message": "slow down", "retryAfter": "2023-11-14T22:13:35Z"}}
    )
    error = raised(status, body)
    assert isinstance(error, errors.RateLimitedError)
    assert error.retry_after == 15.0  # NOW is 2023-11-14T22:13:20Z
    assert error.message.endswith(": slow down")


@BOTH
def test_a_retry_after_in_the_past_means_now_and_nonsense_means_no_hint(raised: type) -> None:
    assert raised(429, headers={"Retry-After": "Tue, 14 Nov 2023 22:00:00 GMT"}).retry_after == 0
    assert raised(429, headers={"Retry-After": "soon"}).retry_after is None
    assert type(raised(413, headers={"Retry-After": "soon"})) is errors.RequestTooLargeError


# the rest of the one function -------------------------------------------------------------


def test_secrets_named_by_the_caller_are_blanked_out() -> None:
    answer = ErrorAnswer("POST", "/v2.0/tokens", 400, "Bad Request", body="bad key s3cr3t")
    error = error_from_answer(answer, NOW, secrets=("s3cr3t",))
    assert "s3cr3t" not in str(error) and "<redacted>" in error.message


def test_the_object_store_names_its_region_first() -> None:
    exc = ClientException("Object HEAD failed", http_path=PATH, http_status=404)
    error = map_client_exception(exc, "HEAD", NOW, "DFW")
    assert error.message == f"DFW: HEAD {PATH} -> 404"


def test_a_401_a_renewed_token_did_not_cure_is_an_authentication_error() -> None:
    refused = from_swift(401, "no", {"X-Trans-Id": "tx-9"})
    assert isinstance(refused, errors.UnauthorizedError)
    final = refused_again(refused)
    assert type(final) is errors.AuthenticationError and not final.retryable
    assert final.request_id == "tx-9" and final.message.startswith(refused.message)
    assert refused_again(refused, renewed=False).message == refused.message
