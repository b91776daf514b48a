"""Signed bearer tokens shared by the local Identity service and the Swift auth filter.

A token is ``ihtk1.<payload>.<signature>``: base64url JSON ``{"tenant", "user", "exp", "n"}``
and an HMAC-SHA256 over it with the sandbox's secret. Anyone holding the secret can check a
token without a lookup, which is how one token works for every service in both regions.
A token from a per-region Keystone (``/identity/<region>``, as on OpenStack Flex) also names
its ``regions``, the regions of its catalog: Glance's ``glance-download`` finds the remote
region's Images endpoint in the caller's token catalog, so it works only with a token of a
Keystone that serves both regions (v2.0 Identity, or ``/identity``).
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
    #: The regions of the token's catalog; None: every region (a Keystone for both).
    regions: tuple[str, ...] | None = None

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


def issue(
    secret: str,
    tenant: str,
    user: str,
    lifetime_seconds: float,
    regions: tuple[str, ...] | None = None,
) -> tuple[str, float]:
    """Return a new token and its expiry (epoch seconds); ``regions``: of its catalog."""
    expires_at = time.time() + lifetime_seconds
    body: dict[str, object] = {
        "tenant": tenant,
        "user": user,
        "exp": expires_at,
        "n": _b64(os.urandom(6)),
    }
    if regions is not None:
        body["regions"] = list(regions)
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
        regions = body.get("regions")
        claims = TokenClaims(
            str(body["tenant"]),
            str(body["user"]),
            float(body["exp"]),
            None if regions is None else tuple(str(r) for r in regions),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if claims.expires_at <= (time.time() if now is None else now):
        return None
    return claims
