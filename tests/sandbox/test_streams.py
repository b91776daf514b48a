"""Splitting a byte stream into parts (how exports cut DLO segments), and token checks."""

from __future__ import annotations

import time

import pytest

from imagehop_sandbox.swift_io import rechunk
from imagehop_sandbox.tokens import issue, verify


@pytest.mark.parametrize(
    ("chunks", "size"),
    [
        ([b"abcdefghij"], 3),
        ([b"ab", b"cde", b"f", b"ghij"], 4),
        ([b"abcd", b"efgh"], 4),
        ([b"a"] * 7, 2),
        ([b"abc"], 10),
    ],
)
def test_parts_are_consecutive_full_size_slices(chunks: list[bytes], size: int) -> None:
    data = b"".join(chunks)
    parts = [b"".join(part) for part in rechunk(iter(chunks), size)]
    assert b"".join(parts) == data
    assert all(len(part) == size for part in parts[:-1])
    assert 0 < len(parts[-1]) <= size


def test_an_empty_stream_has_no_parts() -> None:
    assert list(rechunk(iter([]), 4)) == []


def test_tokens_verify_only_with_the_secret_and_before_expiry() -> None:
    token, expires = issue("secret", "900001", "demo", 60)
    claims = verify("secret", token)
    assert claims is not None
    assert (claims.tenant, claims.user, claims.account) == ("900001", "demo", "MossoCloudFS_900001")
    assert verify("other-secret", token) is None
    assert verify("secret", token, now=expires + 1) is None
    assert verify("secret", token[:-2] + "xx") is None
    assert verify("secret", "not-a-token") is None
    assert expires > time.time()
