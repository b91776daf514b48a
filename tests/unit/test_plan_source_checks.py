"""The DLO listing checks that run before a plan is made (pure functions, no servers)."""

from __future__ import annotations

import pytest

from imagehop.object_store import ListedObject
from imagehop.transfer.source import dlo_listing_problem

PREFIX = "3f0c.vhd-"


def listing(*entries: tuple[str, int]) -> list[ListedObject]:
    return [ListedObject(PREFIX + suffix, size, "0" * 32, "") for suffix, size in entries]


@pytest.mark.parametrize(
    ("entries", "expected", "problem"),
    [
        ((("00001", 5), ("00002", 5), ("00003", 2)), 12, None),
        ((("00000", 5), ("00001", 5)), 10, None),  # swiftclient numbers from 0
        ((("a", 5), ("b", 7)), 12, None),  # not numbered: only the sum is checked
        ((("00001", 5), ("00002", 5), ("00004", 2)), 12, "segment(s) 3 missing"),
        ((("00002", 5), ("00003", 5)), 10, "the first segment is number 2"),
        ((("00001", 5), ("00002", 5)), 12, "hold 10 bytes, the manifest says 12"),
        ((), 0, "no segments listed"),
    ],
)
def test_dlo_listing_problem(
    entries: tuple[tuple[str, int], ...], expected: int, problem: str | None
) -> None:
    found = dlo_listing_problem(listing(*entries), PREFIX, expected)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
