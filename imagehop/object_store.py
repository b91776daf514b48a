"""Object storage (Swift / Cloud Files) client for one region, on python-swiftclient.

One :class:`ObjectStore` per region and account. It is safe to share between threads: each
thread gets its own ``swiftclient`` connection (so a worker reuses one keep-alive connection
for all its requests), and every request asks the :class:`TokenProvider` for the current token
first, so a long transfer picks up refreshed tokens without restarting.

Retries (the retry table in :mod:`imagehop.retries` says who retries what):

* replayable single requests (HEAD, listings, container PUT, manifest PUT, ...) are the
  request layer: one retry with a new token after a 401 (the stale token is handed to
  ``TokenProvider.invalidate`` first; a second 401 raises
  :class:`~imagehop.errors.AuthenticationError`; a bulk delete whose refused deletes inside
  Swift's 200 answer are all 401, the token having expired during the request, counts as
  such a 401: the refused objects are sent again once), and 5xx, transport errors and short
  ``Retry-After`` waits as the store's :class:`~imagehop.retries.RetryPolicy` says, with the
  same backoff formula as the HTTP clients (swiftclient's own retries are off);
* the streaming calls of the segment copy (:meth:`ObjectStore.open_range`,
  :meth:`ObjectStore.put_stream`) make exactly one attempt: the transfer engine retries the
  whole segment by re-opening its source range, which is the only safe way to retry a stream.
  A 401 there invalidates the token and raises :class:`~imagehop.errors.UnauthorizedError`
  (retryable), so the engine's next attempt uses a fresh token.

Every request has a ``(connect, read)`` timeout. swiftclient's ``ClientException`` is adapted
to the error map shared with the HTTP clients (:func:`imagehop.error_map.error_from_answer`:
same class and message shape for the same status; Swift's ``X-Trans-Id`` is the request id);
transport errors become :class:`~imagehop.errors.TransportError`. Tokens never appear in
messages: swiftclient only puts URLs and statuses there.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote

import requests
import urllib3.exceptions
from pydantic import BaseModel, ConfigDict
from requests.adapters import HTTPAdapter
from swiftclient import client as swift
from swiftclient.exceptions import ClientException

from imagehop.clock import SYSTEM_CLOCK, Clock
from imagehop.error_map import TIMEOUT_STATUSES, ErrorAnswer, error_from_answer, refused_again
from imagehop.errors import (
    ApiError,
    BadRequestError,
    ImagehopError,
    IntegrityError,
    NotFoundError,
    ServerError,
    TransportError,
    UnauthorizedError,
)
from imagehop.retries import NO_RETRY, REQUEST_RETRY, TOKEN_RENEWALS, RetryBudget, RetryPolicy
from imagehop.tokens import TokenProvider

if TYPE_CHECKING:  # only for from_settings(); keeps pydantic-settings off the copy path
    from imagehop.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
MiB = 1024 * 1024

#: Rackspace documents 1 MiB as the smallest SLO segment (all but the last), even though
#: upstream Swift's ``/info`` says 1 byte; plans honour the larger of the two.
RACKSPACE_MIN_SEGMENT_SIZE = MiB
#: Cloud Files' documented single-object cap, used when ``/info`` does not say.
DEFAULT_MAX_FILE_SIZE = 5 * 1024 * MiB + 2
DEFAULT_MAX_MANIFEST_SEGMENTS = 1000
DEFAULT_MAX_DELETES_PER_REQUEST = 10000
#: Bytes handed to the socket per send. urllib3's default is 16 KiB; larger blocks save CPU.
DEFAULT_BLOCK_SIZE = MiB
VERIFIED_META = "x-object-meta-imagehop-verified"
#: Bulk deletes sent at once by :meth:`ObjectStore.bulk_delete` (Swift works through each
#: request's objects two at a time), and the fewest objects worth a request of their own.
BULK_DELETE_STREAMS = 4
BULK_DELETE_MIN_BATCH = 100
#: Set on the containers imagehop creates (:meth:`ObjectStore.ensure_container` with
#: ``owned=True``, as the engine's target containers are): only those may carry imagehop's
#: temporary-URL key (:mod:`imagehop.transfer.tempurl`). The value is the creation time.
OWNED_CONTAINER_META = "x-container-meta-imagehop-created"


class ClusterLimits(BaseModel):
    """What the target cluster accepts (from ``/info``, with documented Cloud Files floors)."""

    model_config = ConfigDict(frozen=True)

    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_manifest_segments: int = DEFAULT_MAX_MANIFEST_SEGMENTS
    min_segment_size: int = RACKSPACE_MIN_SEGMENT_SIZE
    max_deletes_per_request: int = DEFAULT_MAX_DELETES_PER_REQUEST
    #: The cluster has the ``tempurl`` middleware (temporary URLs an import can read).
    tempurl: bool = False

    @classmethod
    def from_info(
        cls, info: Mapping[str, Any], min_segment_floor: int = RACKSPACE_MIN_SEGMENT_SIZE
    ) -> ClusterLimits:
        """Limits from a ``GET /info`` document; missing sections keep Cloud Files' values."""
        swift_info = info.get("swift", {})
        slo = info.get("slo", {})
        bulk = info.get("bulk_delete", {})
        return cls(
            max_file_size=int(swift_info.get("max_file_size", DEFAULT_MAX_FILE_SIZE)),
            max_manifest_segments=int(
                slo.get("max_manifest_segments", DEFAULT_MAX_MANIFEST_SEGMENTS)
            ),
            min_segment_size=max(int(slo.get("min_segment_size", 1)), min_segment_floor),
            max_deletes_per_request=int(
                bulk.get("max_deletes_per_request", DEFAULT_MAX_DELETES_PER_REQUEST)
            ),
            tempurl="tempurl" in info,
        )


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD says about an object."""

    container: str
    name: str
    size: int
    etag: str  # unquoted; for a large object, the md5 of its segments' md5s
    content_type: str
    last_modified: str
    timestamp: str
    dlo_manifest: str | None = None  # "container/prefix" of a DLO (unquoted)
    is_slo: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-object-meta-*, lower case


@dataclass(frozen=True)
class ListedObject:
    """One entry of a container listing."""

    name: str
    size: int
    etag: str
    last_modified: str


@dataclass(frozen=True)
class BulkDeleteResult:
    deleted: int
    not_found: int


class _TokenSession:
    """Stands in for a keystoneauth session in swiftclient's 401 handling (``invalidate()``).

    swiftclient re-authenticates after a 401 only when it has a session (or credentials); this
    shim hands the refused token to the provider and says whether swiftclient may retry.
    """

    def __init__(self, connection: _TokenConnection) -> None:
        self._connection = weakref.ref(connection)  # no cycle: a worker's connection dies with it

    def invalidate(self) -> bool:
        connection = self._connection()
        if connection is None:
            return False
        if connection.token:
            connection.tokens.invalidate(connection.token)
        return not connection.single_attempt


class _WideBlockAdapter(HTTPAdapter):
    """A requests adapter whose connections send request bodies in ``blocksize`` pieces."""

    def __init__(self, blocksize: int) -> None:
        self._blocksize = blocksize
        super().__init__(pool_connections=1, pool_maxsize=2)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = self._blocksize
        super().init_poolmanager(*args, **kwargs)


class _TokenConnection(swift.Connection):  # type: ignore[misc]
    """A swiftclient connection to one storage URL whose tokens come from a provider."""

    def __init__(
        self,
        storage_url: str,
        tokens: TokenProvider,
        timeout: tuple[float, float],
        block_size: int,
        insecure: bool = False,
        cacert: str | None = None,
    ) -> None:
        super().__init__(
            preauthurl=storage_url,
            # One try, plus one with a renewed token after a 401 (at once, as in the HTTP
            # clients): the store's request layer does the other retries, by the one formula.
            retries=0,
            starting_backoff=0,
            max_backoff=0,
            timeout=timeout,
            insecure=insecure,
            cacert=cacert,
        )
        self.storage_url = storage_url
        self.tokens = tokens
        self.block_size = block_size
        self.single_attempt = False
        self.session = _TokenSession(self)

    def get_auth(self) -> tuple[str, str]:
        """Called by swiftclient when it has no token (first use, or after a 401)."""
        return self.storage_url, self.tokens.token()

    def http_connection(self, url: str | None = None) -> Any:
        parsed, connection = super().http_connection(url)
        adapter = _WideBlockAdapter(self.block_size)
        connection.request_session.mount("http://", adapter)
        connection.request_session.mount("https://", adapter)
        return parsed, connection

    def _retry(self, reset_func: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
        self.url = self.storage_url
        self.token = self.tokens.token()  # proactive: the provider refreshes before expiry
        return super()._retry(reset_func, func, *args, **kwargs)

    @contextmanager
    def one_attempt(self) -> Iterator[None]:
        """A stream: not even repeated with a renewed token after a 401."""
        self.single_attempt = True
        try:
            yield
        finally:
            self.single_attempt = False

    def drop_http(self) -> None:
        """Forget the HTTP connection (after an aborted stream its framing is unknown)."""
        try:
            self.close()
        finally:
            self.http_conn = None


class RangeReader:
    """File-like view of one ranged GET: ``read(n)`` returns at most n bytes, never more
    than the range, and raises instead of returning a short body."""

    def __init__(self, body: Any, length: int, what: str, close: Callable[[], None]) -> None:
        self._body = body
        self._remaining = length
        self._what = what
        self._close = close

    @property
    def remaining(self) -> int:
        return self._remaining

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        wanted = self._remaining if size is None or size < 0 else min(size, self._remaining)
        try:
            data: bytes = self._body.read(wanted)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise TransportError(f"reading {self._what}: {type(exc).__name__}: {exc}") from exc
        if not data:
            raise TransportError(
                f"reading {self._what}: the source closed the body "
                f"{self._remaining} bytes before the end of the range"
            )
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        """Abandon the response (closing its connection) unless it was read to the end."""
        if self._remaining > 0:
            self._close()


class ObjectStore:
    """Swift in one region for one account: containers, objects, large-object manifests."""

    def __init__(
        self,
        storage_url: str,
        tokens: TokenProvider,
        timeout: tuple[float, float] = (10.0, 120.0),
        region: str = "",
        retry: RetryPolicy = REQUEST_RETRY,
        block_size: int = DEFAULT_BLOCK_SIZE,
        verify_tls: bool | str = True,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """
        Args:
            storage_url: the account URL, e.g. ``https://.../v1/MossoCloudFS_<tenant>``.
            tokens: where each request gets its token.
            timeout: (connect, read) seconds for every request.
            region: label used in messages.
            retry: the request layer's policy for replayable requests (``NO_RETRY`` when a
                layer above retries them, as inside Prefect tasks).
            block_size: bytes per socket send of a request body.
            verify_tls: False, True or a CA bundle path.
            clock: for ``Retry-After`` dates, deadlines and the waits between retries.
        """
        self.storage_url = storage_url.rstrip("/")
        self.region = region
        self._tokens = tokens
        self._timeout = timeout
        self._retry = retry
        self._clock = clock
        self._block_size = block_size
        self._verify_tls = verify_tls
        self._local = threading.local()
        self._lock = threading.Lock()
        # Weak: a worker thread's connection (and its socket) goes when the thread ends.
        self._connections: weakref.WeakSet[_TokenConnection] = weakref.WeakSet()
        self._limits: ClusterLimits | None = None

    @classmethod
    def from_settings(
        cls, storage_url: str, tokens: TokenProvider, settings: Settings, region: str = ""
    ) -> ObjectStore:
        """A store using the timeouts, chunk size and TLS options of ``settings``."""
        return cls(
            storage_url,
            tokens,
            timeout=settings.http_timeout,
            region=region,
            block_size=settings.chunk_size_bytes,
            verify_tls=settings.tls_verify,
        )

    def __repr__(self) -> str:
        return f"ObjectStore(region={self.region!r}, storage_url={self.storage_url!r})"

    # -- connections ---------------------------------------------------------------------

    def _connection(self) -> _TokenConnection:
        connection: _TokenConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = _TokenConnection(
                self.storage_url,
                self._tokens,
                self._timeout,
                self._block_size,
                insecure=self._verify_tls is False,
                cacert=self._verify_tls if isinstance(self._verify_tls, str) else None,
            )
            self._local.connection = connection
            with self._lock:
                self._connections.add(connection)
        return connection

    def close(self) -> None:
        """Close every thread's connection (they reopen on next use)."""
        with self._lock:
            connections = list(self._connections)
            self._connections = weakref.WeakSet()
        for connection in connections:
            connection.drop_http()
        self._local = threading.local()

    def _call(
        self,
        method: str,
        what: str,
        operation: Callable[[_TokenConnection], T],
        stream: bool = False,
    ) -> T:
        """Run ``operation`` (one ``method`` request) on this thread's connection, map its
        errors, and retry it as the store's policy says, unless it is a stream (one try)."""
        budget = RetryBudget(NO_RETRY if stream else self._retry, self._clock)
        while True:
            try:
                return self._call_once(method, what, operation, stream)
            except ImagehopError as error:
                delay = budget.delay_before_retry(error, replayable=not stream)
                if delay is None:
                    raise
                log.warning("%s; retrying in %.1f s", error, delay)
                self._clock.sleep(delay)

    def _call_once(
        self,
        method: str,
        what: str,
        operation: Callable[[_TokenConnection], T],
        stream: bool,
    ) -> T:
        """One try. After a failed stream, a timeout or a transport error the HTTP connection
        is dropped: its framing is unknown."""
        connection = self._connection()
        try:
            return operation(connection)
        except ClientException as exc:
            if stream or exc.http_status is None or exc.http_status in TIMEOUT_STATUSES:
                connection.drop_http()
            error = map_client_exception(exc, method, self._clock.time(), self.region)
            if isinstance(error, UnauthorizedError) and not stream:
                error = refused_again(error)  # swiftclient renewed the token already
            raise error from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            connection.drop_http()
            raise TransportError(
                f"{what} in {self.region or self.storage_url}: {type(exc).__name__}: {exc}"
            ) from exc
        except BaseException:
            connection.drop_http()  # e.g. a stream body raised mid-request
            raise

    # -- account and containers ----------------------------------------------------------

    def limits(self) -> ClusterLimits:
        """The cluster's limits from ``/info`` (cached); Cloud Files defaults if it has none."""
        if self._limits is None:
            try:
                info = self._call("GET", "GET /info", lambda c: c.get_capabilities())
            except NotFoundError:
                info = {}
            self._limits = ClusterLimits.from_info(info)
        return self._limits

    def ensure_container(
        self, container: str, headers: Mapping[str, str] | None = None, *, owned: bool = False
    ) -> None:
        """Create ``container`` if it does not exist (a PUT; harmless if it does).

        ``owned``: look first, and only if it is missing create it marked as imagehop's
        (:data:`OWNED_CONTAINER_META`); a container that exists is left exactly as it is.
        """
        if owned:
            try:
                self.container_metadata(container)
                return
            except NotFoundError:
                created = str(int(self._clock.time()))
                headers = {**(headers or {}), OWNED_CONTAINER_META: created}
        self._call(
            "PUT",
            f"PUT container {container!r}",
            lambda c: c.put_container(container, headers=dict(headers or {})),
        )

    def container_metadata(self, container: str) -> dict[str, str]:
        """HEAD a container: its headers, names in lower case (``x-container-meta-*`` ...).

        Raises:
            NotFoundError: no such container.
        """
        headers: Mapping[str, str] = self._call(
            "HEAD", f"HEAD container {container!r}", lambda c: c.head_container(container)
        )
        return {k.lower(): v for k, v in headers.items()}

    def post_container_metadata(self, container: str, metadata: Mapping[str, str]) -> None:
        """Set container metadata (``X-Container-Meta-*`` headers); others are kept."""
        self._call(
            "POST",
            f"POST container {container!r}",
            lambda c: c.post_container(container, headers=dict(metadata)),
        )

    def list_objects(self, container: str, prefix: str | None = None) -> list[ListedObject]:
        """Every object in ``container`` whose name starts with ``prefix`` (all pages)."""
        _, listing = self._call(
            "GET",
            f"list {container!r} (prefix {prefix!r})",
            lambda c: c.get_container(container, prefix=prefix, full_listing=True),
        )
        return [
            ListedObject(item["name"], int(item["bytes"]), item["hash"], item["last_modified"])
            for item in listing
            if "subdir" not in item
        ]

    # -- objects -------------------------------------------------------------------------

    def head_object(self, container: str, name: str) -> ObjectInfo:
        """HEAD an object (a large object's manifest: total size, multipart ETag)."""
        headers = self._call(
            "HEAD", f"HEAD {container}/{name}", lambda c: c.head_object(container, name)
        )
        return _object_info(container, name, headers)

    def delete_object(self, container: str, name: str, missing_ok: bool = True) -> None:
        try:
            self._call(
                "DELETE", f"DELETE {container}/{name}", lambda c: c.delete_object(container, name)
            )
        except NotFoundError:
            if not missing_ok:
                raise

    def put_bytes(
        self, container: str, name: str, data: bytes, content_type: str | None = None
    ) -> str:
        """PUT a small object held in memory (replayable, so retried); return its ETag."""
        etag: str = self._call(
            "PUT",
            f"PUT {container}/{name} ({len(data)} bytes)",
            lambda c: c.put_object(container, name, data, content_type=content_type),
        )
        return etag

    def post_metadata(self, container: str, name: str, metadata: Mapping[str, str]) -> None:
        """Replace an object's user metadata (``X-Object-Meta-*`` headers)."""
        self._call(
            "POST",
            f"POST {container}/{name}",
            lambda c: c.post_object(container, name, headers=dict(metadata)),
        )

    def bulk_delete(
        self, objects: Iterable[tuple[str, str]], streams: int = BULK_DELETE_STREAMS
    ) -> BulkDeleteResult:
        """Delete (container, name) pairs with the bulk middleware. Swift answers 200 even when
        some deletions failed; any error inside the body raises.

        Swift deletes a request's objects one by one (two at a time), so a large delete is
        split into up to ``streams`` requests sent at once, each of at least
        :data:`BULK_DELETE_MIN_BATCH` objects and at most the cluster's maximum per request.
        After a failed batch the others still run; the first error is raised once all ended.
        """
        paths = [f"/{container}/{name}" for container, name in objects]
        requests = max(1, min(streams, len(paths) // BULK_DELETE_MIN_BATCH))
        batch = min(self.limits().max_deletes_per_request, -(-len(paths) // requests) or 1)
        batches = [paths[start : start + batch] for start in range(0, len(paths), batch)]
        if len(batches) <= 1:
            results = [self._bulk_delete_batch(part) for part in batches]
        else:
            with ThreadPoolExecutor(
                min(len(batches), max(1, streams)), thread_name_prefix="imagehop-delete"
            ) as pool:
                futures = [pool.submit(self._bulk_delete_batch, part) for part in batches]
                wait(futures)
            results = [future.result() for future in futures]
        return BulkDeleteResult(
            sum(result.deleted for result in results),
            sum(result.not_found for result in results),
        )

    def _bulk_delete_batch(self, paths: list[str]) -> BulkDeleteResult:
        """One batch. Swift's bulk middleware deletes each object with the request's token, so
        a token that expires during a long request fails the later deletes with 401 inside a
        200 answer: that is a 401 of the request layer (:data:`~imagehop.retries.TOKEN_RENEWALS`
        renewal), so the refused token is invalidated and the refused objects sent again; a
        second refusal is an ``AuthenticationError``."""
        deleted = not_found = 0
        for renewal in range(TOKEN_RENEWALS + 1):
            answer, token = self._post_bulk_delete(paths)
            deleted, not_found = deleted + answer.deleted, not_found + answer.not_found
            error = answer.error(self._where("POST"), self.region or None)
            if error is None:
                return BulkDeleteResult(deleted, not_found)
            if not isinstance(error, UnauthorizedError):
                raise error
            if renewal == TOKEN_RENEWALS:
                raise refused_again(error)
            log.info("%s; renewing the token and deleting those %d again", error, len(paths))
            if token:
                self._tokens.invalidate(token)
            refused = set(answer.failed_paths)
            paths = [path for path in paths if path in refused]
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_bulk_delete(self, paths: list[str]) -> tuple[BulkDeleteAnswer, str | None]:
        """POST one bulk delete; its answer and the token it was sent with."""
        body = b"".join(quote(path).encode() + b"\n" for path in paths)
        headers = {"Accept": "application/json", "Content-Type": "text/plain"}
        response: dict[str, Any] = {}
        sent: list[str | None] = []

        def post(c: _TokenConnection) -> Any:
            answer = c.post_account(
                headers, query_string="bulk-delete", data=body, response_dict=response
            )
            sent.append(c.token)
            return answer

        _, text = self._call("POST", f"bulk delete of {len(paths)} objects", post)
        request_id = response.get("headers", {}).get("x-trans-id")
        return read_bulk_delete(text, request_id), sent[-1] if sent else None

    def _where(self, method: str) -> ErrorAnswer:
        """The request a bulk delete's error names (the account's path, no host)."""
        return ErrorAnswer(method=method, url=self.storage_url, status=0)

    # -- streaming -----------------------------------------------------------------------

    def open_range(
        self,
        container: str,
        name: str,
        offset: int,
        length: int,
        chunk_size: int = MiB,
        expect_etag: str | None = None,
    ) -> RangeReader:
        """Start a GET of ``length`` bytes at ``offset`` and check what came back.

        One attempt only (see the module docstring). Raises IntegrityError when the answer
        is not exactly the requested range, or when ``expect_etag`` is given and the object's
        ETag differs (the object changed since it was listed).
        """
        what = f"{container}/{name} bytes {offset}-{offset + length - 1}"
        response: dict[str, Any] = {}
        connection = self._connection()

        def get(c: _TokenConnection) -> tuple[Mapping[str, str], Any]:
            with c.one_attempt():
                return c.get_object(  # type: ignore[no-any-return]
                    container,
                    name,
                    resp_chunk_size=chunk_size,
                    headers={"Range": f"bytes={offset}-{offset + length - 1}"},
                    response_dict=response,
                )

        headers, body = self._call("GET", f"GET {what}", get, stream=True)
        try:
            _check_range(headers, response.get("status"), offset, length, what)
            _check_etag(headers, expect_etag, what)
        except ImagehopError:
            body.close()
            connection.drop_http()
            raise

        def abandon() -> None:
            body.close()
            connection.drop_http()

        return RangeReader(body, length, what, abandon)

    def put_stream(
        self,
        container: str,
        name: str,
        body: Any,
        length: int,
        etag: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """PUT ``length`` bytes read from the file-like ``body``; return the stored ETag.

        One attempt only (a stream cannot be replayed). With ``etag`` Swift checks the MD5 and
        answers 422 on a mismatch, raised as IntegrityError.
        """

        def put(c: _TokenConnection) -> str:
            with c.one_attempt():
                return c.put_object(  # type: ignore[no-any-return]
                    container,
                    name,
                    body,
                    content_length=length,
                    etag=etag,
                    headers=dict(headers or {}),
                )

        return self._call("PUT", f"PUT {container}/{name} ({length} bytes)", put, stream=True)

    # -- static large objects ------------------------------------------------------------

    def put_slo_manifest(
        self,
        container: str,
        name: str,
        segments: list[dict[str, Any]],
        content_type: str | None = None,
    ) -> str:
        """Write an SLO manifest (``[{path, etag, size_bytes}, ...]``); return its ETag.

        Swift checks every segment's size and ETag first; a 400 listing bad segments is raised
        as IntegrityError.
        """
        manifest = json.dumps(segments)
        try:
            etag: str = self._call(
                "PUT",
                f"PUT SLO manifest {container}/{name} ({len(segments)} segments)",
                lambda c: c.put_object(
                    container,
                    name,
                    manifest,
                    content_type=content_type,
                    query_string="multipart-manifest=put",
                ),
            )
        except BadRequestError as exc:
            raise IntegrityError(
                f"the target refused the manifest of {container}/{name}: {exc.message}",
                exc.request_id,
            ) from exc
        return etag

    def get_slo_manifest(self, container: str, name: str) -> list[dict[str, Any]]:
        """The stored manifest of an SLO: ``[{name, hash, bytes, [range], [sub_slo]}, ...]``."""
        _, body = self._call(
            "GET",
            f"GET SLO manifest {container}/{name}",
            lambda c: c.get_object(container, name, query_string="multipart-manifest=get"),
        )
        try:
            manifest = json.loads(body)
        except ValueError as exc:
            raise IntegrityError(f"{container}/{name} has no readable SLO manifest") from exc
        if not isinstance(manifest, list):
            raise IntegrityError(f"{container}/{name} has no readable SLO manifest")
        return manifest


# -- helpers ------------------------------------------------------------------------------


def _object_info(container: str, name: str, headers: Mapping[str, str]) -> ObjectInfo:
    manifest = headers.get("x-object-manifest")
    return ObjectInfo(
        container=container,
        name=name,
        size=int(headers.get("content-length", 0)),
        etag=headers.get("etag", "").strip('"'),
        content_type=headers.get("content-type", ""),
        last_modified=headers.get("last-modified", ""),
        timestamp=headers.get("x-timestamp", ""),
        dlo_manifest=unquote(manifest) if manifest is not None else None,
        is_slo=headers.get("x-static-large-object", "").lower() == "true",
        metadata={
            k.lower(): v for k, v in headers.items() if k.lower().startswith("x-object-meta-")
        },
    )


def _check_range(
    headers: Mapping[str, str], status: int | None, offset: int, length: int, what: str
) -> None:
    size = headers.get("content-length")
    if size is None or int(size) != length:
        raise IntegrityError(f"GET {what}: expected {length} bytes, the source sends {size}")
    if status == 206:
        got = headers.get("content-range", "")
        wanted = f"bytes {offset}-{offset + length - 1}/"
        if not got.startswith(wanted):
            raise IntegrityError(f"GET {what}: the source answered the range {got!r}")
    elif offset != 0:
        raise IntegrityError(f"GET {what}: the source ignored the range (status {status})")


def _check_etag(headers: Mapping[str, str], expected: str | None, what: str) -> None:
    if expected is None:
        return
    got = headers.get("etag", "").strip('"')
    if got != expected:
        raise IntegrityError(
            f"GET {what}: the source object changed since it was listed "
            f"(ETag {got or 'missing'}, listed {expected})"
        )


@dataclass(frozen=True)
class BulkDeleteAnswer:
    """A bulk-delete answer (Swift says 200 whatever happened to each object)."""

    status: str
    body: str
    deleted: int
    not_found: int
    #: (path, status) of each object that could not be deleted, paths unquoted.
    failures: tuple[tuple[str, str], ...]
    request_id: str | None = None

    @property
    def failed_paths(self) -> tuple[str, ...]:
        return tuple(path for path, _ in self.failures)

    def error(self, request: ErrorAnswer, where: str | None = None) -> ImagehopError | None:
        """None if every object went; else the error to raise. Every failure a 401 (the
        token expired during the request) maps, through the error map, to an
        ``UnauthorizedError``; anything else to a ``ServerError`` (5xx) or ``ApiError``."""
        if not self.failures and self.status.startswith("2"):
            return None
        details = "; ".join(f"{path}: {why}" for path, why in self.failures[:5])
        more = f" (+{len(self.failures) - 5} more)" if len(self.failures) > 5 else ""
        if self.failures and all(why.startswith("401") for _, why in self.failures):
            answer = replace(
                request,
                status=401,
                reason="Unauthorized",
                body=f"bulk delete: {len(self.failures)} objects refused: {details}{more}",
                request_id=self.request_id,
            )
            return error_from_answer(answer, 0.0, where=where)
        error_class = ServerError if self.status.startswith("5") else ApiError
        return error_class(
            f"bulk delete failed: {self.status or 'no status'} {self.body}".strip()
            + (f": {details}{more}" if details else ""),
            self.request_id,
        )


def read_bulk_delete(body: bytes | str, request_id: str | None = None) -> BulkDeleteAnswer:
    """Read a bulk-delete answer.

    Raises:
        ServerError: the body is not the bulk middleware's JSON.
    """
    try:
        result = json.loads(body)
    except ValueError as exc:
        raise ServerError(
            "bulk delete: unreadable answer (is the bulk middleware enabled?)", request_id
        ) from exc
    return BulkDeleteAnswer(
        status=str(result.get("Response Status", "")),
        body=str(result.get("Response Body", "")),
        deleted=int(result.get("Number Deleted", 0)),
        not_found=int(result.get("Number Not Found", 0)),
        failures=tuple((unquote(str(path)), str(why)) for path, why in result.get("Errors") or []),
        request_id=request_id,
    )


def parse_bulk_delete(body: bytes | str, request_id: str | None = None) -> BulkDeleteResult:
    """Read a bulk-delete answer; raise if it reports any error (Swift says 200 regardless)."""
    answer = read_bulk_delete(body, request_id)
    error = answer.error(ErrorAnswer(method="POST", url="/", status=0))
    if error is not None:
        raise error
    return BulkDeleteResult(answer.deleted, answer.not_found)


def answer_of(exc: ClientException, method: str) -> ErrorAnswer:
    """The error-map input for a swiftclient ``ClientException`` with an HTTP status."""
    content = exc.http_response_content
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return ErrorAnswer(
        method=method,
        url=exc.http_path or "/",
        status=int(exc.http_status),
        reason=exc.http_reason or "",
        headers=exc.http_response_headers or {},
        body=str(content or ""),
        request_id=exc.transaction_id,
    )


def map_client_exception(
    exc: ClientException, method: str, now: float, where: str = ""
) -> ImagehopError:
    """The imagehop error for a swiftclient ``ClientException``.

    Args:
        method: the request's method (swiftclient does not keep it).
        now: the current epoch time, for a ``Retry-After`` given as a date.
        where: the region, named first in the message.
    """
    if exc.http_status is None:
        prefix = f"{where}: " if where else ""
        return TransportError(f"{prefix}{method} failed: {exc.msg}", exc.transaction_id)
    return error_from_answer(answer_of(exc, method), now, where=where or None)
