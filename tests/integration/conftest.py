"""Two real Swift clusters on loopback, "DFW" and "IAD", for the whole session.

IAD caps single objects at 8 MiB (a test-scale stand-in for Cloud Files' 5 GiB), so large
objects must be segmented there. Both accept the sandbox's signed tokens; one token works in
both regions, as with the local Identity.

The handle given to tests is deliberately small (a storage URL per region, a token provider,
a way to make a fresh container) so the lead can later back it with the full local cloud.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from swiftclient import client as swift

from imagehop.object_store import ObjectStore
from imagehop_sandbox.swift_cluster import SwiftCluster
from imagehop_sandbox.tokens import ACCOUNT_PREFIX, issue

MiB = 1024 * 1024
TARGET_CAP = 8 * MiB
TENANT = "914527"
USER = "tester"


class SandboxTokens:
    """A TokenProvider on the sandbox's signed tokens, with counters for the tests.

    ``lifetime`` is how long each token really lives; ``believed_lifetime`` how long the
    provider thinks it lives (longer simulates clock skew or a revoked token, so requests hit
    401s); tokens are refreshed ``margin`` seconds before the believed expiry.
    """

    def __init__(
        self,
        secret: str,
        lifetime: float = 3600.0,
        believed_lifetime: float | None = None,
        margin: float = 0.0,
    ) -> None:
        self._secret = secret
        self._lifetime = lifetime
        self._believed = believed_lifetime or lifetime
        self._margin = margin
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.issued = 0
        self.invalidated = 0

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._renew_at:
                self._token, _ = issue(self._secret, TENANT, USER, self._lifetime)
                self._renew_at = time.time() + self._believed - self._margin
                self.issued += 1
            return self._token

    def invalidate(self, stale: str) -> None:
        with self._lock:
            self.invalidated += 1
            if stale == self._token:
                self._token = None


@dataclass
class SwiftPair:
    """The handle tests get: storage URLs, tokens, fresh containers."""

    secret: str
    storage_urls: dict[str, str]
    _names: Iterator[int] = field(default_factory=itertools.count)

    def tokens(
        self, lifetime: float = 3600.0, believed_lifetime: float | None = None
    ) -> SandboxTokens:
        return SandboxTokens(self.secret, lifetime, believed_lifetime)

    def store(self, region: str, tokens: SandboxTokens | None = None) -> ObjectStore:
        return ObjectStore(
            self.storage_urls[region],
            tokens or self.tokens(),
            timeout=(5.0, 30.0),
            region=region,
        )

    def new_container(self, region: str) -> str:
        """A container that did not exist before (created, empty)."""
        name = f"c{os.getpid()}-{next(self._names)}-{int(time.time() * 1000) % 100000}"
        self.raw(region).put_container(name)
        return name

    def raw(self, region: str) -> swift.Connection:
        """A plain swiftclient connection, for test setup independent of the code under test."""
        token, _ = issue(self.secret, TENANT, USER, 3600)
        return swift.Connection(
            preauthurl=self.storage_urls[region], preauthtoken=token, retries=0, timeout=30
        )


@pytest.fixture(scope="session")
def swift_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftPair]:
    root: Path = tmp_path_factory.mktemp("swift")
    secret_file = root / "token-secret"
    secret = hashlib.sha256(os.urandom(32)).hexdigest()
    secret_file.write_text(secret)
    clusters = {
        "DFW": SwiftCluster.prepare(root / "dfw", "DFW", secret_file),
        "IAD": SwiftCluster.prepare(root / "iad", "IAD", secret_file, max_file_size=TARGET_CAP),
    }
    account = ACCOUNT_PREFIX + TENANT
    try:
        for cluster in clusters.values():
            cluster.start()
        token, _ = issue(secret, TENANT, USER, 600)
        for cluster in clusters.values():
            cluster.wait_ready(account, token)
        yield SwiftPair(
            secret,
            {name: f"{c.storage_host}/v1/{account}" for name, c in clusters.items()},
        )
    finally:
        for cluster in clusters.values():
            cluster.stop()
