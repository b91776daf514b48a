"""A real loopback HTTP server that answers from an ordered script.

For the HTTP behaviour a real cloud will not produce on demand (429 with ``Retry-After``, a
503, a connection closed without an answer). The script reads as the wire protocol::

    server.expect("GET", "/v2/tasks/t1").reply(429, headers={"Retry-After": "1"})
    server.expect("GET", "/v2/tasks/t1").drop()
    server.expect("GET", "/v2/tasks/t1").reply(200, json={"id": "t1", "status": "success"})

Requests must arrive in script order; anything else is answered ``599`` and recorded in
``problems``. :meth:`ScriptedServer.assert_done` fails the test on a mismatch, an unexpected
request or an unused expectation. Every request is recorded with the time the injected clock
showed when it arrived, so tests can check the spacing of polls as the server saw it.
"""

from __future__ import annotations

import itertools
import json as jsonlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MISMATCH_STATUS = 599


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return jsonlib.loads(self.body)


@dataclass
class Expectation:
    """One step of the script: what must arrive, and what to answer."""

    method: str
    path: str
    query: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    json: Any = None
    status: int = 200
    reply_headers: dict[str, str] = field(default_factory=dict)
    reply_body: bytes = b""
    drop_connection: bool = False
    delay_seconds: float = 0.0

    def reply(
        self,
        status: int = 200,
        *,
        json: Any = None,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Expectation:
        """Answer with this status, headers and body (``json`` sets the content type)."""
        self.status = status
        self.reply_headers = dict(headers or {})
        self.delay_seconds = delay
        if json is not None:
            self.reply_body = jsonlib.dumps(json).encode()
            self.reply_headers.setdefault("Content-Type", "application/json")
        else:
            self.reply_body = body.encode() if isinstance(body, str) else body
        return self

    def drop(self) -> Expectation:
        """Close the connection without answering."""
        self.drop_connection = True
        return self

    def mismatch(self, got: Received) -> str | None:
        """Why ``got`` is not this step, or None if it is."""
        if (got.method, got.path) != (self.method, self.path):
            return f"expected {self.method} {self.path}, got {got.method} {got.path}"
        for key, value in (self.query or {}).items():
            if got.query.get(key) != value:
                return (
                    f"{got.method} {got.path}: query {key}={got.query.get(key)!r}, want {value!r}"
                )
        for key, value in (self.headers or {}).items():
            if got.headers.get(key.lower()) != value:
                return f"{got.method} {got.path}: header {key}={got.headers.get(key.lower())!r}"
        if self.json is not None and _json_or_text(got.body) != self.json:
            return f"{got.method} {got.path}: body {got.body!r}, want {self.json!r}"
        return None


def _json_or_text(body: bytes) -> Any:
    try:
        return jsonlib.loads(body)
    except ValueError:
        return body.decode(errors="replace")


class ScriptedServer:
    """Serve the script on ``127.0.0.1`` (a free port) in a background thread."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._script: list[Expectation] = []
        self.received: list[Received] = []
        self.problems: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def expect(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Expectation:
        """Append a step; chain ``.reply(...)`` or ``.drop()`` to say how to answer."""
        step = Expectation(method, path, query, headers, json)
        with self._lock:
            self._script.append(step)
        return step

    def requests_to(self, method: str, path: str) -> list[Received]:
        """What arrived for ``method path``, in order."""
        return [r for r in self.received if (r.method, r.path) == (method, path)]

    def gaps(self, method: str, path: str) -> list[float]:
        """Seconds between consecutive arrivals of ``method path`` (by the injected clock)."""
        times = [r.at for r in self.requests_to(method, path)]
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    def assert_done(self) -> None:
        """Fail unless every step was used and nothing unexpected arrived."""
        with self._lock:
            leftover = [f"{s.method} {s.path}" for s in self._script]
        assert not self.problems, self.problems
        assert not leftover, f"expected but never received: {leftover}"

    def _next_step(self, got: Received) -> Expectation | None:
        with self._lock:
            self.received.append(got)
            if not self._script:
                self.problems.append(f"unexpected {got.method} {got.path}")
                return None
            step = self._script.pop(0)
            if reason := step.mismatch(got):
                self.problems.append(reason)
                return None
            return step

    def _now(self) -> float:
        return self._clock()


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            got = Received(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                at=server._now(),
            )
            step = server._next_step(got)
            if step is None:
                self._answer(MISMATCH_STATUS, {}, b"script mismatch")
            elif step.drop_connection:
                self.close_connection = True
            else:
                if step.delay_seconds:
                    time.sleep(step.delay_seconds)
                self._answer(step.status, step.reply_headers, step.reply_body)

        def _answer(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


class FixedTokens:
    """A token provider that always gives the same token and expects no 401."""

    def token(self) -> str:
        return "token-1"

    def invalidate(self, stale: str) -> None:
        raise AssertionError("no 401 expected")
