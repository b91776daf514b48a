"""How the local cloud's services talk to its Swift clusters (plain HTTP, as any client would).

The image service mints its own tokens with the sandbox secret: for its service account
(where image bytes live) and, during export/import, for the task owner's account.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from imagehop_sandbox.tokens import ACCOUNT_PREFIX, issue

TIMEOUT = (5.0, 120.0)
CHUNK = 1024 * 1024


class SwiftFailure(Exception):
    """Swift answered with an unexpected status."""

    def __init__(self, method: str, path: str, status: int, body: str = "") -> None:
        super().__init__(f"Swift {method} {path} answered {status} {body[:200]}".strip())
        self.status = status


@dataclass
class SwiftAccount:
    """One account on one cluster, e.g. ``MossoCloudFS_100001`` on the DFW proxy."""

    storage_host: str
    tenant: str
    secret: str
    user: str = "image-service"

    @property
    def url(self) -> str:
        return f"{self.storage_host}/v1/{ACCOUNT_PREFIX}{self.tenant}"

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        token, _ = issue(self.secret, self.tenant, self.user, 600)
        return {"X-Auth-Token": token, **(extra or {})}

    def _url(self, container: str, name: str | None = None) -> str:
        url = f"{self.url}/{quote(container, safe='')}"
        return url if name is None else f"{url}/{quote(name, safe='/')}"

    def head(self, container: str, name: str | None = None) -> requests.Response | None:
        """HEAD a container or object; None when it does not exist."""
        response = requests.head(
            self._url(container, name), headers=self._headers(), timeout=TIMEOUT
        )
        if response.status_code == 404:
            return None
        _check(response, "HEAD", container, name)
        return response

    def ensure_container(self, container: str) -> None:
        response = requests.put(self._url(container), headers=self._headers(), timeout=TIMEOUT)
        _check(response, "PUT", container)

    def put(
        self,
        container: str,
        name: str,
        body: bytes | Iterable[bytes],
        headers: dict[str, str] | None = None,
        query: str = "",
    ) -> requests.Response:
        url = self._url(container, name) + query
        response = requests.put(url, data=body, headers=self._headers(headers), timeout=TIMEOUT)
        _check(response, "PUT", container, name)
        return response

    def open(self, container: str, name: str, byte_range: str | None = None) -> requests.Response:
        """A streaming GET (the caller closes it); raises SwiftFailure on 404 and errors."""
        extra = {"Range": byte_range} if byte_range else None
        response = requests.get(
            self._url(container, name), headers=self._headers(extra), stream=True, timeout=TIMEOUT
        )
        if response.status_code not in (200, 206):
            response.close()
            _check(response, "GET", container, name)
        return response

    def list_names(self, container: str, prefix: str) -> list[str]:
        """Names of the objects under ``prefix`` (one listing page: up to 10,000)."""
        response = requests.get(
            self._url(container),
            params={"prefix": prefix, "format": "json"},
            headers=self._headers(),
            timeout=TIMEOUT,
        )
        if response.status_code == 404:
            return []
        _check(response, "GET", container)
        return [str(item["name"]) for item in response.json()]

    def delete(self, container: str, name: str, query: str = "") -> None:
        url = self._url(container, name) + query
        response = requests.delete(url, headers=self._headers(), timeout=TIMEOUT)
        if response.status_code != 404:
            _check(response, "DELETE", container, name)


def _check(
    response: requests.Response, method: str, container: str, name: str | None = None
) -> None:
    if response.status_code >= 300:
        path = container if name is None else f"{container}/{name}"
        raise SwiftFailure(method, path, response.status_code, response.text)


def stream_body(response: requests.Response) -> Iterator[bytes]:
    """Chunks of a streaming response, closing it at the end."""
    try:
        yield from response.iter_content(CHUNK)
    finally:
        response.close()


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[Iterator[bytes]]:
    """Split a byte stream into consecutive parts of ``size`` bytes (the last may be shorter).

    Each part is an iterator that must be consumed before asking for the next part.
    """
    source = iter(chunks)
    pending = b""
    while True:
        if not pending:
            pending = next(source, b"")
            if not pending:
                return
        first = pending
        pending = b""

        def part(first: bytes = first) -> Iterator[bytes]:
            nonlocal pending
            left = size
            buffer = first
            while left > 0:
                if not buffer:
                    buffer = next(source, b"")
                    if not buffer:
                        return
                take, buffer = buffer[:left], buffer[left:]
                left -= len(take)
                yield take
            pending = buffer

        yield part()


@dataclass
class Written:
    size: int
    md5: str
    parts: list[tuple[str, str, int]]  # (name, etag, size) of each object written


def write_parts(
    account: SwiftAccount,
    container: str,
    names: Callable[[int], str],
    chunks: Iterable[bytes],
    part_size: int,
    observe: Callable[[bytes], None] | None = None,
) -> Written:
    """Write a stream as consecutive objects ``names(1)``, ``names(2)``, ... of ``part_size``."""
    content_md5 = hashlib.md5(usedforsecurity=False)
    parts: list[tuple[str, str, int]] = []
    for number, part in enumerate(rechunk(chunks, part_size), start=1):
        part_md5 = hashlib.md5(usedforsecurity=False)
        counted = [0]

        def body(
            part: Iterator[bytes] = part, md5: Any = part_md5, n: list[int] = counted
        ) -> Iterator[bytes]:
            for chunk in part:
                md5.update(chunk)
                content_md5.update(chunk)
                if observe is not None:
                    observe(chunk)
                n[0] += len(chunk)
                yield chunk

        name = names(number)
        response = account.put(container, name, body())
        etag = response.headers.get("Etag", "").strip('"')
        if etag != part_md5.hexdigest():
            raise SwiftFailure("PUT", f"{container}/{name}", 422, "ETag mismatch after write")
        parts.append((name, etag, counted[0]))
    total = sum(size for _, _, size in parts)
    return Written(total, content_md5.hexdigest(), parts)


def put_slo_manifest(
    account: SwiftAccount, container: str, name: str, segment_container: str, written: Written
) -> None:
    manifest = [
        {"path": f"/{segment_container}/{part}", "etag": etag, "size_bytes": size}
        for part, etag, size in written.parts
    ]
    account.put(container, name, json.dumps(manifest).encode(), query="?multipart-manifest=put")
