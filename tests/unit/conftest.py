"""Fixtures of the unit tests that talk HTTP to a scripted server on a scripted clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scripted_clock import ScriptedClock
from tests.support.scripted_server import ScriptedServer


@pytest.fixture
def clock() -> ScriptedClock:
    return ScriptedClock()


@pytest.fixture
def server(clock: ScriptedClock) -> Iterator[ScriptedServer]:
    """A scripted server whose every scripted answer must have been asked for by the end."""
    with ScriptedServer(clock.monotonic) as scripted:
        yield scripted
        scripted.assert_done()
