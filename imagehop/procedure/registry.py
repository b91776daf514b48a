"""Clients of both sides of a transfer, built on demand from :class:`~imagehop.settings.Settings`.

One :class:`~imagehop.identity.TokenManager` per account (shared by every thread), one object
store per account and region (thread-safe), and Images/Servers clients per thread (their HTTP
sessions are not shared between threads). Nothing here is ever a task input or a result: tasks
ask the registry for a client by side and region.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Literal, TypeVar

from imagehop.clock import SYSTEM_CLOCK, Clock
from imagehop.compute import ComputeClient
from imagehop.glance import GlanceImages
from imagehop.http import HttpClient
from imagehop.identity import TokenManager
from imagehop.image import ImageClient
from imagehop.object_store import ObjectStore
from imagehop.retries import REQUEST_RETRY, RetryPolicy
from imagehop.settings import AccountCredentials, Settings

Side = Literal["source", "target"]
C = TypeVar("C", ImageClient, GlanceImages, ComputeClient)


class CloudClients:
    """Process-local registry of clients, keyed by account (identity URL + credentials)."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        clock: Clock = SYSTEM_CLOCK,
        retry: RetryPolicy = REQUEST_RETRY,
    ) -> None:
        """
        Args:
            settings: where current settings come from (called on every lookup, so a changed
                environment means other accounts, never stale credentials).
            clock: handed to every client (tests pass a fast-forward clock).
            retry: the request layer's policy for the Images, Servers and object-store
                clients (the Identity client keeps its own); a caller that retries failed
                steps itself passes ``NO_RETRY``, so each failure kind is retried in one
                layer (see :mod:`imagehop.retries`).
        """
        self._settings = settings
        self.clock = clock
        self._retry = retry
        self._lock = threading.Lock()
        self._managers: dict[tuple[str, AccountCredentials], TokenManager] = {}
        self._stores: dict[tuple[int, str], ObjectStore] = {}
        self._local = threading.local()

    def settings(self) -> Settings:
        return self._settings()

    def reading(self, settings: Callable[[], Settings]) -> CloudClients:
        """This registry reading other settings, e.g. one request's clouds
        (:meth:`Settings.for_clouds`): it shares the token managers, object stores and each
        thread's clients (all keyed by account), so views that log in as one account use one
        token, and views of other accounts never see each other's clients."""
        view = copy.copy(self)
        view._settings = settings
        return view

    def tokens(self, side: Side) -> TokenManager:
        """The token manager of the source or the target account."""
        settings = self._settings()
        credentials = (
            settings.source_credentials() if side == "source" else settings.target_credentials()
        )
        url = settings.identity_url if side == "source" else settings.target_identity
        key = (url, credentials)
        with self._lock:
            if key not in self._managers:
                make = TokenManager.for_source if side == "source" else TokenManager.for_target
                self._managers[key] = make(settings, clock=self.clock)
            return self._managers[key]

    def images(self, side: Side, region: str) -> ImageClient:
        """This thread's Images client of ``side``'s account in ``region``."""
        return self._regional(ImageClient, side, region)

    def glance(self, side: Side, region: str) -> GlanceImages:
        """This thread's upstream-Glance client (import methods, image data) of ``side``'s
        account in ``region``: the same Images endpoint as :meth:`images`."""
        return self._regional(GlanceImages, side, region)

    def compute(self, side: Side, region: str) -> ComputeClient:
        """This thread's Servers client of ``side``'s account in ``region``."""
        return self._regional(ComputeClient, side, region)

    def _regional(self, kind: type[C], side: Side, region: str) -> C:
        tokens = self.tokens(side)
        return self._per_thread(
            (kind.__name__, id(tokens), region.upper()),
            lambda settings: kind(
                tokens.endpoint(kind.service_type, region),
                tokens,
                settings,
                clock=self.clock,
                http=self._http(settings, tokens),
            ),
        )

    def objects(self, side: Side, region: str) -> ObjectStore:
        """The (thread-safe) object store of ``side``'s account in ``region``; the source is
        read over ServiceNet when ``source_uses_internal_url`` is set."""
        tokens = self.tokens(side)
        key = (id(tokens), region.upper())
        with self._lock:
            store = self._stores.get(key)
        if store is not None:
            return store
        settings = self._settings()
        internal = side == "source" and settings.source_uses_internal_url
        url = tokens.endpoint("object-store", region, "internal" if internal else "public")
        store = ObjectStore(
            url,
            tokens,
            timeout=settings.http_timeout,
            region=region.upper(),
            retry=self._retry,
            block_size=settings.chunk_size_bytes,
            verify_tls=settings.tls_verify,
            clock=self.clock,
        )
        with self._lock:
            return self._stores.setdefault(key, store)

    def close(self) -> None:
        """Close the object stores and this thread's clients; forget every token."""
        with self._lock:
            stores = list(self._stores.values())
            self._stores.clear()
            self._managers.clear()
        for store in stores:
            store.close()
        for client in getattr(self._local, "clients", {}).values():
            client.close()
        self._local = threading.local()

    def _http(self, settings: Settings, tokens: TokenManager) -> HttpClient:
        return HttpClient(settings, tokens=tokens, clock=self.clock, retry=self._retry)

    def _per_thread(self, key: tuple[str, int, str], build: Callable[[Settings], C]) -> C:
        clients: dict[tuple[str, int, str], C] = self._local.__dict__.setdefault("clients", {})
        client = clients.get(key)
        if client is None:
            client = clients[key] = build(self._settings())
        return client
