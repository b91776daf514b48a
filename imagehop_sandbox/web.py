"""A very small HTTP toolkit on the standard library: requests, responses, a router, a server.

Each API of the local cloud (Identity, Images per region, Servers per region) is one
:class:`App` bound to its own port, as the real services live on their own hosts. Errors are
raised as :class:`HttpError` and rendered by the app in its service's own error format.

Request bodies are read whole (at most :data:`MAX_BODY`), except on the routes an app lists in
:attr:`App.streamed` (e.g. Glance's ``PUT /v2/images/{id}/file``): there the handler reads
``request.stream`` (:class:`BodyReader`), a ``Content-Length`` or ``chunked`` body of any size.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("imagehop_sandbox.web")

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
MAX_BODY = 1024 * 1024
STREAM_CHUNK = 1024 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024


class ClientDisconnected(OSError):
    """The client closed the connection before the end of its request body."""


class BodyReader:
    """A request body read as it arrives: ``Content-Length`` bytes, or ``chunked`` encoding."""

    def __init__(self, rfile: Any, length: int | None) -> None:
        self.rfile = rfile
        self.length = length  # None: chunked
        self.read_bytes = 0
        self.finished = length == 0

    def drain(self, limit: int) -> bool:
        """Read and drop what is left of the body, up to ``limit`` bytes; True if it ended."""
        if self.finished:
            return True
        start = self.read_bytes
        try:
            for _ in self:
                if self.read_bytes - start > limit:
                    return False
        except (ClientDisconnected, OSError, ValueError):
            return False
        return self.finished

    def __iter__(self) -> Iterator[bytes]:
        if self.length is not None:
            while self.read_bytes < self.length:
                chunk = self.rfile.read(min(STREAM_CHUNK, self.length - self.read_bytes))
                if not chunk:
                    raise ClientDisconnected("request body ended early")
                self.read_bytes += len(chunk)
                yield chunk
            self.finished = True
            return
        while not self.finished:
            line = self.rfile.readline(1024)
            if not line:
                raise ClientDisconnected("chunked request body ended early")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ClientDisconnected("malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                self.finished = True
                return
            left = size
            while left:
                chunk = self.rfile.read(min(STREAM_CHUNK, left))
                if not chunk:
                    raise ClientDisconnected("chunked request body ended early")
                left -= len(chunk)
                self.read_bytes += len(chunk)
                yield chunk
            self.rfile.readline(1024)  # the CRLF after each chunk


class HttpError(Exception):
    """An error answer; ``kind`` names it in JSON error bodies (e.g. ``itemNotFound``)."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4()}")
    #: The body as it arrives, on the routes of :attr:`App.streamed` (``body`` is then empty).
    stream: BodyReader | None = None

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def arg(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default

    def host_url(self, default: str) -> str:
        """``http://<Host>``: where the client called us (``default`` if it sent no Host)."""
        host = (self.headers.get("Host") or "").strip()
        return f"http://{host}" if host else default

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise HttpError(400, "Malformed JSON in request body.", "badRequest") from None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Sent instead of ``body`` when set (its length in the ``Content-Length`` header).
    stream: Iterable[bytes] | None = None

    @classmethod
    def json(cls, status: int, doc: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(doc, indent=None, separators=(", ", ": ")).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


Handler = Callable[[Request], Response]
ErrorRenderer = Callable[[Request, HttpError], Response]
Hook = Callable[[Request], Response | None]


class App:
    """Routes ``METHOD /path/{param}`` to handlers; renders errors with ``render_error``."""

    def __init__(
        self, name: str, render_error: ErrorRenderer, request_id_header: str | None = None
    ) -> None:
        self.name = name
        self.render_error = render_error
        self.request_id_header = request_id_header
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.before: list[Hook] = []
        #: ``(method, regex searched in the path)`` of requests whose body is streamed.
        self.streamed: list[tuple[str, re.Pattern[str]]] = []

    def streams_body(self, method: str, path: str) -> bool:
        return any(m == method and regex.search(path) for m, regex in self.streamed)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")

        def register(handler: Handler) -> Handler:
            self.routes.append((method, regex, handler))
            return handler

        return register

    def handle(self, request: Request) -> Response:
        try:
            for hook in self.before:
                early = hook(request)
                if early is not None:
                    return early
            return self._dispatch(request)
        except HttpError as error:
            response = self.render_error(request, error)
            response.headers.update(error.headers)
            return response
        except Exception:
            log.exception("%s: %s %s failed", self.name, request.method, request.path)
            return self.render_error(request, HttpError(500, "Internal error.", "computeFault"))

    def _dispatch(self, request: Request) -> Response:
        allowed = []
        for method, regex, handler in self.routes:
            match = regex.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            request.params = match.groupdict()
            return handler(request)
        if allowed:
            raise HttpError(
                405,
                "The method is not allowed for this resource.",
                "badMethod",
                {"Allow": ", ".join(sorted(set(allowed)))},
            )
        raise HttpError(404, "The resource could not be found.", "itemNotFound")


def _handler_class(app: App) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"imagehop-sandbox-{app.name}"

        def _serve(self) -> None:
            split = urlsplit(self.path)
            if app.streams_body(self.command, split.path):
                self._serve_streamed(split)
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                self._send(Response(413, b"request body too large", {"Connection": "close"}))
                return
            body = self.rfile.read(length) if length else b""
            request = Request(
                self.command, split.path, parse_qsl(split.query, True), self.headers, body
            )
            response = app.handle(request)
            if app.request_id_header:
                response.headers.setdefault(app.request_id_header, request.request_id)
            self._send(response)

        def _serve_streamed(self, split: Any) -> None:
            chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            length = None if chunked else int(self.headers.get("Content-Length") or 0)
            reader = BodyReader(self.rfile, length)
            request = Request(
                self.command,
                split.path,
                parse_qsl(split.query, True),
                self.headers,
                b"",
                stream=reader,
            )
            response = app.handle(request)
            if app.request_id_header:
                response.headers.setdefault(app.request_id_header, request.request_id)
            # An answer given before the whole body was read (a refusal): read the rest, so
            # the client, still sending, gets the answer; hang up after when there is too much.
            if not reader.drain(DRAIN_LIMIT):
                self.close_connection = True
                response.headers["Connection"] = "close"
            self._send(response)

        def _send(self, response: Response) -> None:
            self.send_response(response.status, REASONS.get(response.status))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.stream is None:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.stream is not None:
                self._send_stream(response.stream)
            elif self.command != "HEAD":
                self.wfile.write(response.body)

        def _send_stream(self, chunks: Iterable[bytes]) -> None:
            try:
                for chunk in chunks if self.command != "HEAD" else ():
                    self.wfile.write(chunk)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", app.name, format % args)

    return RequestHandler


class Server:
    """One app on one port of 127.0.0.1, served by a background thread."""

    def __init__(self, app: App, port: int) -> None:
        self.app = app
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(app))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.1,), name=f"http-{app.name}", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
