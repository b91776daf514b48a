"""The one token-provider protocol, shared by the HTTP clients and the object store.

:class:`~imagehop.identity.TokenManager` is the real provider; tests and benchmarks pass small
stand-ins. This module imports nothing else from imagehop, so the object store (on the copy
path) can use it without pulling in the HTTP clients or the settings.
"""

from __future__ import annotations

from typing import Protocol


class TokenProvider(Protocol):
    """Where a client gets the token it sends with each request."""

    def token(self) -> str:
        """A valid token, refreshed before it expires."""
        ...

    def invalidate(self, stale: str) -> None:
        """Forget ``stale`` (it was refused with a 401); the next ``token()`` gets a new one."""
        ...
