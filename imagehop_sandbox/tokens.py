"""Signed bearer tokens shared by the local Identity service and the Swift auth filter.

A token is ``ihtk1.<payload>.<signature>``: base64url JSON ``{"tenant", "user", "exp", "n"}``
and an HMAC-SHA256 over it with the sandbox's secret. Anyone holding the secret can check a
token without a lookup, which is how one token works for every service in both regions.
Standard library only: the Swift proxy imports this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass

PREFIX = "ihtk1"
ACCOUNT_PREFIX = "MossoCloudFS_"


@dataclass(frozen=True)
class TokenClaims:
    tenant: str
    user: str
    expires_at: float

    @property
    def account(self) -> str:
        """The Swift account this token may use."""
        return ACCOUNT_PREFIX + self.tenant


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def issue(secret: str, tenant: str, user: str, lifetime_seconds: float) -> tuple[str, float]:
    """Return a new token and its expiry (epoch seconds)."""
    expires_at = time.time() + lifetime_seconds
    body = {"tenant": tenant, "user": user, "exp": expires_at, "n": _b64(os.urandom(6))}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{PREFIX}.{payload}.{_sign(secret, payload)}", expires_at


def verify(secret: str, token: str, now: float | None = None) -> TokenClaims | None:
    """Claims of a valid, unexpired token; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    if not hmac.compare_digest(_sign(secret, parts[1]), parts[2]):
        return None
    try:
        body = json.loads(_unb64(parts[1]))
        claims = TokenClaims(str(body["tenant"]), str(body["user"]), float(body["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    if claims.expires_at <= (time.time() if now is None else now):
        return None
    return claims
