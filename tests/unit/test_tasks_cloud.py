"""The tasks' process-wide seams: settings with Secret block names, and the clock."""

from __future__ import annotations

import os
import time

import pytest

from imagehop.clock import SYSTEM_CLOCK
from imagehop.errors import StoppedError
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
        assert cloud.clock().wrapped is fake
        assert cloud.clients() is not before and cloud.clients().clock is cloud.clock()
        cloud.clock().sleep(30.0)
        assert fake.sleeps == [30.0] and cloud.clock().time() == fake.time()
    assert cloud.clock().wrapped is SYSTEM_CLOCK
    assert cloud.clients().clock is cloud.clock()


def test_stop_ends_the_waits_of_the_process_until_reset() -> None:
    """What a cancelled batch does to the subflows in its process: a real-clock sleep ends
    at once, a test clock's after its sleep, each with StoppedError naming the reason."""
    cloud.reset()
    began = time.monotonic()
    cloud.stop("the batch b-1 was cancelled")
    try:
        with pytest.raises(StoppedError, match="the batch b-1 was cancelled"):
            cloud.clock().sleep(30.0)
        assert time.monotonic() - began < 5.0
        with pytest.raises(StoppedError):
            cloud.raise_if_stopped()
        fake = ScriptedClock()
        with cloud.use_clock(fake):  # use_clock resets: a fresh start
            cloud.clock().sleep(30.0)
            cloud.stop("again")
            with pytest.raises(StoppedError, match="again"):
                cloud.clock().sleep(30.0)
        assert fake.sleeps == [30.0, 30.0]
    finally:
        cloud.reset()
    cloud.raise_if_stopped()  # forgotten after reset
    assert not cloud.stopping().is_set()
