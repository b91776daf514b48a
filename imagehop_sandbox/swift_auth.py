"""Swift proxy filter that accepts the local Identity's tokens (stands in for Cloud Files auth).

A request to ``/v1/<account>/...`` needs ``X-Auth-Token`` with a valid signature, not expired,
whose tenant owns ``<account>`` (``MossoCloudFS_<tenant>``): 401 otherwise, 403 for another
tenant's account. ``/info`` and ``/healthcheck`` stay public, as on Cloud Files. A request
that Swift's ``tempurl`` middleware (before this filter in the pipeline) has already accepted,
or a sub-request of an authorized one, carries ``swift.authorize_override`` and passes as it
is, which is how a temporary URL works without a token.

Paste config::

    [filter:imagehop_auth]
    use = call:imagehop_sandbox.swift_auth:filter_factory
    token_secret_file = /abs/path/secret
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from imagehop_sandbox.tokens import verify

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

UNAUTHORIZED = (
    b"<html><h1>Unauthorized</h1><p>This server could not verify that you are "
    b"authorized to access the document you requested.</p></html>"
)
FORBIDDEN = b"<html><h1>Forbidden</h1><p>Access was denied to this resource.</p></html>"


def _allow(_request: Any) -> None:
    return None


class TokenAuth:
    def __init__(self, app: WsgiApp, secret: str) -> None:
        self.app = app
        self.secret = secret

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        parts = environ.get("PATH_INFO", "").split("/", 3)
        if len(parts) < 3 or parts[1] != "v1" or not parts[2]:
            return self.app(environ, start_response)
        if environ.get("swift.authorize_override"):  # a sub-request of an authorized one
            return self.app(environ, start_response)
        token = environ.get("HTTP_X_AUTH_TOKEN") or environ.get("HTTP_X_STORAGE_TOKEN") or ""
        claims = verify(self.secret, token)
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if claims is None:
            return _deny(start_response, "401 Unauthorized", UNAUTHORIZED, head)
        if claims.account != parts[2]:
            return _deny(start_response, "403 Forbidden", FORBIDDEN, head)
        environ["REMOTE_USER"] = claims.user
        environ["swift.authorize"] = _allow
        environ["swift.authorize_override"] = True
        environ["swift_owner"] = True
        return self.app(environ, start_response)


def _deny(start_response: StartResponse, status: str, body: bytes, head: bool) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=UTF-8"),
            ("Content-Length", str(len(body))),
            ("Www-Authenticate", 'Swift realm="imagehop-sandbox"'),
        ],
    )
    return [] if head else [body]  # a HEAD answer has no body (Swift says 500 otherwise)


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Callable[[WsgiApp], WsgiApp]:
    """Paste entry point; reads the signing secret from ``token_secret_file``."""
    secret = Path(local_conf["token_secret_file"]).read_text().strip()

    def make(app: WsgiApp) -> WsgiApp:
        return TokenAuth(app, secret)

    return make
