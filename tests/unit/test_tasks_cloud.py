"""The tasks' process-wide seams: settings with Secret block names, and the clock."""

from __future__ import annotations

import os

import pytest

from imagehop.clock import SYSTEM_CLOCK
from imagehop.tasks import cloud
from tests.support.scripted_clock import ScriptedClock


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("IMAGEHOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir("/")  # no .env file


def test_a_secret_set_directly_wins_over_a_block_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Prefect call is made: the block is only read when the secret itself is unset."""
    monkeypatch.setenv("IMAGEHOP_USERNAME", "alice")
    monkeypatch.setenv("IMAGEHOP_API_KEY", "direct")
    monkeypatch.setenv("IMAGEHOP_API_KEY_SECRET_BLOCK", "no-such-block")
    settings = cloud.load_settings()
    assert settings.source_credentials().api_key is not None
    assert settings.source_credentials().api_key.get_secret_value() == "direct"
    assert "direct" not in repr(settings)


def test_use_clock_swaps_the_clock_and_gives_fresh_clients() -> None:
    before = cloud.clients()
    fake = ScriptedClock()
    with cloud.use_clock(fake):
        assert cloud.clock() is fake
        assert cloud.clients() is not before and cloud.clients().clock is fake
    assert cloud.clock() is SYSTEM_CLOCK
    assert cloud.clients().clock is SYSTEM_CLOCK
