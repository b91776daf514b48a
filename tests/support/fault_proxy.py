"""A fault-injecting HTTP proxy on loopback, for tests against a real Swift proxy.

Placed between imagehop and one Swift cluster (point the client's storage URL, or the
catalog, at :attr:`FaultProxy.url`), it forwards every request unchanged except those a
:class:`Fault` matches, which it answers, cuts or alters::

    with FaultProxy("http://127.0.0.1:8080") as proxy:
        proxy.add(Fault("GET", r"-00003$", reset_after=300_000))   # RST mid-body, once
        proxy.add(Fault("PUT", r"/segments/", status=429, headers={"Retry-After": "7"}))
        ... run the copy against proxy.url ...
        proxy.count("GET", r"-00003$")                              # requests seen

A fault applies to the next ``times`` matching requests (first match wins). Bodies are
buffered whole (test-scale objects are a few MiB), then sent on in 64 KiB writes. Every wait
is bounded: the upstream connection has a timeout and a stall ends at :meth:`close`.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te"}
UPSTREAM_TIMEOUT = 30.0
WRITE_SIZE = 64 * 1024


@dataclass
class Fault:
    """What to do to the next ``times`` requests matching ``method`` and ``path`` (a regex
    searched in the path with its query string).

    Exactly one of:
        status: answer this status (with ``headers`` and ``body``) without forwarding.
        reset_after: forward, then send the answer's head and this many body bytes and reset
            the connection (TCP RST).
        reset_request_after: read this many bytes of the request body, then reset.
        stall_after: forward, send the head and this many body bytes, then send nothing for
            ``stall_seconds`` and reset.
        flip_byte_at: forward, but invert the body byte at this offset.
        hide_listed: forward a JSON container listing without the entries whose name matches
            this regex (an eventually consistent listing).
        delay_seconds: forward, but only after this long (a slow link).
    """

    method: str | None
    path: str
    times: int = 1
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    reset_after: int | None = None
    reset_request_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 0.0
    flip_byte_at: int | None = None
    hide_listed: str | None = None
    delay_seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.method in (None, method) and re.search(self.path, path) is not None


@dataclass
class Seen:
    method: str
    path: str
    fault: Fault | None


class FaultProxy:
    """The proxy; a context manager that starts it and stops it (no thread left)."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.seen: list[Seen] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def storage_url(self, storage_url: str) -> str:
        """``storage_url`` (of the upstream cluster) with this proxy's address instead."""
        return self.url + urlsplit(storage_url).path

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request (using up one of its ``times``), recorded as seen."""
        with self._lock:
            fault = next((f for f in self._faults if f.times > 0 and f.matches(method, path)), None)
            if fault is not None:
                fault.times -= 1
            self.seen.append(Seen(method, path, fault))
            return fault

    def count(self, method: str | None = None, path: str = "", faulted: bool | None = None) -> int:
        """How many requests matching ``method``/``path`` arrived (only faulted ones, or only
        forwarded ones, with ``faulted``)."""
        with self._lock:
            seen = list(self.seen)
        probe = Fault(method, path)
        return sum(
            1
            for s in seen
            if probe.matches(s.method, s.path)
            and (faulted is None or (s.fault is not None) is faulted)
        )

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the tests read counts, not logs

    def finish(self) -> None:
        with suppress(OSError):
            super().finish()

    def handle_one_request(self) -> None:
        with suppress(ConnectionError, socket.timeout):
            super().handle_one_request()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        if name.startswith("do_"):
            return self._proxy_request
        raise AttributeError(name)

    # -- one request -----------------------------------------------------------------

    def _proxy_request(self) -> None:
        fault = self.proxy.take(self.command, self.path)
        if fault is not None and fault.reset_request_after is not None:
            self.rfile.read(min(fault.reset_request_after, self._body_length()))
            self._reset()
            return
        body = self._read_body()
        if fault is not None and fault.delay_seconds:
            self.proxy.stopping.wait(fault.delay_seconds)
        if fault is not None and fault.status is not None:
            self._answer(fault.status, fault.headers, fault.body)
            return
        status, headers, answer = self._forward(body)
        self._answer_with_fault(status, headers, answer, fault)

    def _body_length(self) -> int:
        return int(self.headers.get("Content-Length") or 0)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return b"".join(_chunks(self.rfile))
        return self.rfile.read(self._body_length())

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(*self.proxy.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            if self.command in ("GET", "HEAD", "DELETE") and not body:
                del headers["Content-Length"]
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            if self.command == "HEAD":
                kept.append(("Content-Length", response.getheader("Content-Length") or "0"))
            return response.status, kept, answer
        finally:
            upstream.close()

    def _answer_with_fault(
        self, status: int, headers: list[tuple[str, str]], body: bytes, fault: Fault | None
    ) -> None:
        if fault is None:
            self._answer(status, dict(headers), body)
        elif fault.flip_byte_at is not None and fault.flip_byte_at < len(body):
            at = fault.flip_byte_at
            self._answer(
                status, dict(headers), body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]
            )
        elif fault.hide_listed is not None and status == 200:
            self._answer(status, dict(headers), _without(body, fault.hide_listed))
        elif fault.reset_after is not None:
            self._send_head(status, headers, len(body))
            self._write(body[: fault.reset_after])
            self._reset()
        elif fault.stall_after is not None:
            self._send_head(status, headers, len(body))
            self._write(body[: fault.stall_after])
            self.proxy.stopping.wait(fault.stall_seconds)
            self._reset()
        else:
            self._answer(status, dict(headers), body)

    # -- the wire --------------------------------------------------------------------

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self._send_head(status, list(headers.items()), len(body))
        if self.command != "HEAD":
            self._write(body)

    def _send_head(self, status: int, headers: list[tuple[str, str]], length: int) -> None:
        """The status line and headers; a HEAD answer keeps the upstream's Content-Length."""
        given = dict((name.lower(), value) for name, value in headers)
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        if self.command == "HEAD" and "content-length" in given:
            self.send_header("Content-Length", given["content-length"])
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _write(self, data: bytes) -> None:
        for start in range(0, len(data), WRITE_SIZE):
            self.wfile.write(data[start : start + WRITE_SIZE])
        self.wfile.flush()

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (what a crashed or cut peer looks like)."""
        with suppress(OSError):
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        self.close_connection = True


def _chunks(stream: object) -> Iterator[bytes]:
    read = stream.readline  # type: ignore[attr-defined]
    while True:
        size = int(read().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            read()  # the blank line after the last chunk
            return
        yield stream.read(size)  # type: ignore[attr-defined]
        read()


def _without(listing: bytes, hidden: str) -> bytes:
    entries = json.loads(listing)
    return json.dumps(
        [e for e in entries if not re.search(hidden, str(e.get("name", "")))]
    ).encode()
