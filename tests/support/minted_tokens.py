"""A TokenProvider for tests that talk to the local cloud's APIs without logging in."""

from __future__ import annotations

import threading

from imagehop_sandbox.handle import LocalCloud


class MintedTokens:
    """Mints the local cloud's signed tokens for its main account (stands in for Identity);
    a token the service refused is minted again."""

    def __init__(self, cloud: LocalCloud) -> None:
        self._cloud = cloud
        self._lock = threading.Lock()
        self._token: str | None = None

    def token(self) -> str:
        with self._lock:
            if self._token is None:
                self._token = self._cloud.mint_token(self._cloud.main)
            return self._token

    def invalidate(self, stale: str) -> None:
        with self._lock:
            if stale == self._token:
                self._token = None
