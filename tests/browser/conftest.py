"""Browser tests: Debian's ``chromium`` driven by Playwright against a real ``prefect server``
that serves its UI, set up as deployments/README.md says (tests/deployments/conftest.py) with
the team server's PostgreSQL, and a process worker running the deployments on the local cloud.

Playwright cannot download browsers here: the test uses the ``chromium`` on PATH (Debian's
package, ``apt-get install -y chromium``; .ci/run installs it), or ``$IMAGEHOP_CHROMIUM``.
Screenshots go to ``$CI_ARTIFACTS/browser-screenshots`` when CI_ARTIFACTS is set, else to
``tests/browser/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from imagehop_sandbox.handle import LocalCloud
from tests.browser.ui import UI_TIMEOUT_MS
from tests.deployments.conftest import (
    Operator,
    PrefectServer,
    running_worker,
    set_up_operator,
    start_prefect_server,
)
from tests.deployments.postgres import running_postgres
from tests.deployments.processes import Background

WORKER_NAME = "imagehop-browser-worker"
#: Any URL not on 127.0.0.1. A regex, so Playwright matches it in the browser: a Python
#: predicate would hold up every request until the test calls into Playwright again.
NOT_LOOPBACK = re.compile(r"^(?!https?://127\.0\.0\.1[:/])")


@dataclass
class Visits:
    """Every page a test looked at: a full-page screenshot each, and no API key in any."""

    page: Page
    folder: Path
    secrets: tuple[str, ...]

    def record(self, name: str) -> str:
        """Screenshot the page as ``<name>.png``, check its HTML holds no API key of the
        local cloud's accounts, and return that HTML."""
        self.page.screenshot(path=self.folder / f"{name}.png", full_page=True)
        html = self.page.content()
        leaked = [key for key in self.secrets if key in html]
        assert not leaked, f"{name}: an API key is in the page ({self.page.url})"
        return html


@dataclass
class UiSetup:
    """An operator's server with its UI, the deployments, and a worker taking their runs."""

    operator: Operator
    worker: Background

    @property
    def ui_url(self) -> str:
        """The UI is served at the server's root."""
        return self.operator.server.api_url.removesuffix("/api")


def chromium_path() -> str:
    """Debian's chromium (or ``$IMAGEHOP_CHROMIUM``); fails, never skips, when missing."""
    path = os.environ.get("IMAGEHOP_CHROMIUM") or shutil.which("chromium")
    assert path, "no chromium on PATH: apt-get install -y chromium (.ci/run does)"
    return path


def screenshot_folder() -> Path:
    """Where the screenshots go: a folder CI keeps, else tests/browser/screenshots/."""
    kept = os.environ.get("CI_ARTIFACTS")
    folder = Path(kept) / "browser-screenshots" if kept else Path(__file__).parent / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="package")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A `prefect server start` with its UI, on PostgreSQL as deployments/README.md's team
    server: on SQLite a submit of the form was once answered 503 ("Service Unavailable", the
    server's answer to a busy database, which the UI, unlike Prefect's client, does not retry)
    under CI's load. Started before the local cloud is asked for, so that both come up at the
    same time."""
    with running_postgres() as database:
        server = start_prefect_server(
            tmp_path_factory.mktemp("prefect-ui-server"),
            ui=True,
            PREFECT_API_DATABASE_CONNECTION_URL=database.url,
        )
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="package")
def ui_setup(
    ui_server: PrefectServer, local_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiSetup]:
    """README steps 3-7: pool, credentials, result storage, `prefect deploy`, a worker."""
    workdir = tmp_path_factory.mktemp("ui-operator")
    # One script after the other: on a fresh PostgreSQL database two saving their first
    # blocks at once can collide (deployments/README.md, Gotchas).
    operator = set_up_operator(ui_server, local_cloud, workdir, together=False)
    with running_worker(operator, WORKER_NAME) as worker:
        operator.deploy()
        yield UiSetup(operator, worker)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium, launched by Playwright."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies or local storage from another test) that reaches
    only this machine: the V2 UI also asks a third-party host for a configuration (product
    analytics, even with analytics off), which is refused here."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.route(NOT_LOOPBACK, lambda route: route.abort())
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def visits(page: Page, ui_setup: UiSetup) -> Visits:
    cloud = ui_setup.operator.cloud
    keys = tuple(account.api_key for account in cloud.info.accounts)
    return Visits(page, screenshot_folder(), keys)
