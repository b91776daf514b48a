"""Flow tests: the real flows on one session-wide Prefect test harness, against the local cloud.

Polls use a fast-forward clock (:func:`imagehop.tasks.cloud.use_clock`): the flows still space task
polls 30 s apart *in clock time*, but a sleep costs a few real milliseconds, while the local
cloud (test scale: tasks finish in about 0.2 s) does its work in real time.

The harness runs flows without Prefect's flow-run heartbeats: Prefect 3.9 waits up to a second
at the end of every flow run for its heartbeat thread (it sleeps in 1 s steps), about 1 s of
each short test run here. imagehop neither sends nor reads them; the deployment and CLI tests
run with Prefect's default (every 180 s).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

# Before Prefect is imported: a private Prefect home (database, result storage) for this run,
# no telemetry, a generous start-up timeout for the temporary server on 2 busy cores, and the
# library's log lines in the runs' logs (as deployments/prefect.yaml sets it).
if "prefect" in sys.modules:  # its settings and logging would ignore what is set here
    raise RuntimeError(
        "Prefect was imported before tests/flows/conftest.py set its environment: a test module "
        "collected earlier imports it (keep Prefect imports out of the test process there)"
    )
_HOME = tempfile.mkdtemp(prefix="imagehop-prefect-")
for _name, _value in {
    "PREFECT_HOME": _HOME,
    "PREFECT_RESULTS_LOCAL_STORAGE_PATH": os.path.join(_HOME, "storage"),
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "imagehop",  # as deployed: the library's lines in the runs
}.items():
    os.environ[_name] = _value

from prefect.settings import temporary_settings  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from imagehop.tasks import cloud  # noqa: E402
from imagehop_sandbox.handle import LocalCloud  # noqa: E402
from tests.flows.helpers import RecordingClock  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    try:
        with (
            prefect_test_harness(server_startup_timeout=90),
            temporary_settings(updates={"flows.heartbeat_frequency": None}),
        ):
            yield
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture
def clock() -> Iterator[RecordingClock]:
    """A fast-forward clock for every client the tasks build during the test."""
    fake = RecordingClock(real_sleep=0.02)
    with cloud.use_clock(fake):
        yield fake


@pytest.fixture
def on_cloud(
    local_cloud: LocalCloud, clock: RecordingClock, monkeypatch: pytest.MonkeyPatch
) -> LocalCloud:
    """IMAGEHOP_* variables pointing at the local cloud's main account."""
    for name in list(os.environ):
        if name.startswith("IMAGEHOP_") and not name.startswith("IMAGEHOP_SANDBOX_"):
            monkeypatch.delenv(name)
    for name, value in local_cloud.settings_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IMAGEHOP_CONNECT_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("IMAGEHOP_READ_TIMEOUT_SECONDS", "30")
    cloud.reset()
    return local_cloud
