"""Swift proxy filter standing in for the memcache every production Swift proxy runs.

Without a ``swift.cache`` a Swift proxy asks the account and container servers for their
info (a ``HEAD`` each) before *every* object request: each segment PUT, GET, the SLO
middleware's HEAD of each segment, each object of a bulk delete. A real cluster answers those
from memcache (``recheck_account_existence`` / ``recheck_container_existence``, 60 s by
default), so per-object work the client waits for on the local cloud, and not on Cloud Files,
was about half of each object request's time. Each local cluster runs a single proxy process
(``workers = 0``), so a process-local store is what one memcache shared by a cluster's proxies
is: the proxy's own invalidations (a container PUT, POST or DELETE) reach every later request.

Values are stored serialized, as memcache stores them, so a caller never gets another
caller's object. Paste config::

    [filter:imagehop_cache]
    use = call:imagehop_sandbox.swift_cache:filter_factory
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: Memcache's rule: an expiry above 30 days is an absolute Unix time, else seconds from now.
RELATIVE_LIMIT = 30 * 24 * 3600


class LocalMemcache:
    """The subset of :class:`swift.common.memcached.MemcacheRing` the proxy uses."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._items: dict[str, tuple[str | int, float | None]] = {}

    def _expiry(self, seconds: float) -> float | None:
        if not seconds:
            return None
        return seconds if seconds > RELATIVE_LIMIT else self._clock() + seconds

    def _live(self, key: str) -> str | int | None:
        item = self._items.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock():
            del self._items[key]
            return None
        return value

    def get(self, key: str, raise_on_error: bool = False) -> Any:
        value = self._live(key)
        if value is None or isinstance(value, int):
            return value
        return json.loads(value)

    def set(
        self,
        key: str,
        value: Any,
        serialize: bool = True,
        time: float = 0,
        min_compress_len: int = 0,
        raise_on_error: bool = False,
    ) -> None:
        self._items[key] = (json.dumps(value), self._expiry(time))

    def delete(self, key: str, server_key: str | None = None) -> None:
        self._items.pop(key, None)

    def incr(self, key: str, delta: int = 1, time: float = 0) -> int:
        current = self._live(key)
        number = max(0, (current if isinstance(current, int) else 0) + delta)
        expires = self._items[key][1] if current is not None else self._expiry(time)
        self._items[key] = (number, expires)
        return number

    def decr(self, key: str, delta: int = 1, time: float = 0) -> int:
        return self.incr(key, -delta, time)

    def get_multi(self, keys: Iterable[str], server_key: str) -> list[Any]:
        return [self.get(key) for key in keys]

    def set_multi(
        self,
        mapping: dict[str, Any],
        server_key: str,
        serialize: bool = True,
        time: float = 0,
        min_compress_len: int = 0,
    ) -> None:
        for key, value in mapping.items():
            self.set(key, value, time=time)


class CacheMiddleware:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.memcache = LocalMemcache()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ["swift.cache"] = self.memcache
        return self.app(environ, start_response)


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Callable[[WsgiApp], WsgiApp]:
    """Paste entry point (no options)."""
    return CacheMiddleware
