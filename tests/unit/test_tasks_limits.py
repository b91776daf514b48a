"""What imagehop reads of the server's lease storage (tasks/limits.py), without a server.

The real answers are tested against real servers: Prefect's test server, which keeps its
leases in memory (tests/flows/test_transfer_images.py), and the README's team server, which
keeps them in files (tests/deployments/test_leases.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from imagehop.tasks.limits import (
    FILESYSTEM_LEASE_STORAGE,
    MEMORY_LEASE_STORAGE,
    leases_in_memory,
    server_leases_in_memory,
)


def settings_with(storage: Any) -> dict[str, Any]:
    return {"home": "/x", "server": {"concurrency": {"lease_storage": storage}}}


@pytest.mark.parametrize(
    ("settings", "in_memory"),
    [
        (settings_with(MEMORY_LEASE_STORAGE), True),
        (settings_with(FILESYSTEM_LEASE_STORAGE), False),
        (settings_with("prefect_redis.lease_storage"), False),
        (settings_with(None), None),  # the server does not say: no guess
        ({"server": {"concurrency": {}}}, None),
        ({"server": {"concurrency": "memory"}}, None),
        ({"server": None}, None),
        ({}, None),
    ],
)
def test_leases_in_memory_only_where_the_server_says_so(
    settings: dict[str, Any], in_memory: bool | None
) -> None:
    assert leases_in_memory(settings) is in_memory


class Answer:
    def __init__(self, document: Any) -> None:
        self.document = document

    def json(self) -> Any:
        return self.document


class Client:
    """The one call server_leases_in_memory makes of a Prefect client."""

    def __init__(self, answer: Answer | Exception) -> None:
        self.answer, self.asked = answer, []

    def request(self, method: str, path: str) -> Answer:
        self.asked.append((method, path))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_server_is_asked_for_its_settings_and_a_failed_call_says_nothing() -> None:
    asked = Client(Answer(settings_with(MEMORY_LEASE_STORAGE)))
    assert server_leases_in_memory(asked) is True  # type: ignore[arg-type]
    assert asked.asked == [("GET", "/admin/settings")]
    for answer in (Answer(["not", "a", "mapping"]), RuntimeError("404 Not Found")):
        assert server_leases_in_memory(Client(answer)) is None  # type: ignore[arg-type]
