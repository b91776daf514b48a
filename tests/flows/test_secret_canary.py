"""The secret canary: after a successful and a failed run through the CLI with ``--debug``, the
account's API key is nowhere a user, an operator or an attacker with the Prefect database
could read it.

The canary is the local cloud's API key of the main account (32 random hex characters, made
when the local cloud was created, so any occurrence is a leak); its first 16 characters are
searched too (a truncated or half-masked key is still a leak).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prefect.settings import (
    PREFECT_API_DATABASE_CONNECTION_URL,
    PREFECT_API_URL,
    PREFECT_HOME,
    PREFECT_RESULTS_LOCAL_STORAGE_PATH,
)
from typer.testing import CliRunner

from imagehop.flows.cli import app
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import new_image
from tests.flows.test_cli_runs import args, runner

pytestmark = [pytest.mark.cloud, pytest.mark.flow]
__all__ = ["runner"]  # the fixture, imported

#: What the Prefect API holds about runs, read back as a user of the UI or API would.
API_READS = (
    "flow_runs",
    "task_runs",
    "logs",
    "artifacts",
    "events",
    "variables",
    "block_documents",
)


def canaries(key: str) -> list[bytes]:
    assert len(key) >= 32, "the canary must be long enough to be unique"
    return [key.encode(), key[:16].encode()]


def api_dump(what: str) -> str:
    """Everything the API answers for ``what`` (first 200 items), as JSON text."""
    if what == "events":
        return events_dump()
    answer = httpx.post(f"{PREFECT_API_URL.value()}/{what}/filter", json={"limit": 200}, timeout=30)
    assert answer.status_code == 200, answer.text
    return json.dumps(answer.json())


def events_dump(pages: int = 40) -> str:
    """Every event of the session (pages of 50, following ``next_page``; bounded)."""
    body = {"limit": 50, "filter": {"occurred": {"since": "2000-01-01T00:00:00Z"}}}
    answer = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body, timeout=30)
    texts = []
    for _ in range(pages):
        assert answer.status_code == 200, answer.text
        page = answer.json()
        texts.append(json.dumps(page["events"]))
        if not page.get("next_page"):
            return "".join(texts)
        answer = httpx.get(page["next_page"], timeout=30)
    raise AssertionError(f"more than {pages} pages of events")


def files_of_prefect() -> list[Path]:
    """The Prefect database (with its journal files) and every result storage file."""
    database = str(PREFECT_API_DATABASE_CONNECTION_URL.value()).split(":///", 1)[-1]
    files = [Path(p) for p in (database, f"{database}-wal", f"{database}-journal")]
    for root in (PREFECT_RESULTS_LOCAL_STORAGE_PATH.value(), PREFECT_HOME.value()):
        files += [p for p in Path(str(root)).rglob("*") if p.is_file()]
    return [p for p in files if p.exists()]


def test_the_api_key_is_nowhere_after_a_run_and_a_failed_run(
    on_cloud: LocalCloud, runner: CliRunner, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = canaries(on_cloud.main.api_key)
    done = runner.invoke(app, ["transfer", *args(new_image(on_cloud), "--debug", "--json")])
    assert done.exit_code == 0, done.output
    on_cloud.admin.fail_next_task("IAD", "import", "Image cannot be imported. Error code: '614'.")
    failed = runner.invoke(app, ["transfer", *args(new_image(on_cloud), "--debug")])
    assert failed.exit_code == 1 and "Traceback" in failed.stderr  # the whole exception shown

    shown = {
        "CLI output (--debug)": (done.output + failed.output).encode(),
        "exception messages": repr(failed.exception).encode() + str(failed.exception).encode(),
        "log records": caplog.text.encode(),
        **{f"API {what}": api_dump(what).encode() for what in API_READS},
    }
    prefect_files = files_of_prefect()
    assert any(p.suffix == ".db" for p in prefect_files), prefect_files
    shown |= {f"file {p}": p.read_bytes() for p in prefect_files}
    assert len(shown["API logs"]) > 1000 and len(shown["API events"]) > 1000  # real content
    for where, content in shown.items():
        for secret in secrets:
            assert secret not in content, f"the API key leaked into {where}"
