"""What the browser tests know about Prefect 3.9's UI: its URLs and selectors, in one place.

Prefect 3.9 serves two UIs: V2 (React) under ``/v2``, where the server's root redirects by
default, and V1 (Vue) at the root paths. These tests drive V2, the one an operator reaches
from ``http://<host>:4200``. When the form changes (e.g. optional fields that no longer start
as None), change the constants and :class:`RunForm` here, not the tests.

The custom-run form, as Prefect 3.9's V2 UI renders a pydantic model parameter:

* each field is a ``div.group`` holding a ``<label>`` with the schema's ``title`` (plus
  `` (Optional)`` when the field is not required), a ``<p>`` with its ``description``, then
  the input;
* a ``str | None`` field starts on a ``None`` tab: its ``str`` tab (role ``tab``) must be
  clicked before a ``<textarea>`` appears; a ``str`` field is a ``<textarea>`` at once;
* a choice between models (the request's ``source``: *Image* or *Server*) is a row of tabs
  named by the models' titles; the chosen one's fields show below it;
* a required field left empty keeps the form on the page and shows the schema's message
  (``'source' is a required property``) under it;
* ``Submit`` schedules the run and goes to the deployment's page, where a toast says
  ``<run name> scheduled to start now`` with a ``View run`` button to the flow run's page.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, Response, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

UI_PREFIX = "/v2"
FLOW_RUN_PATH = re.compile(r"/runs/flow-run/(?P<id>[0-9a-f-]{36})")

FIELD_OF_LABEL = (
    "xpath=ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' group ')][1]"
)
OPTIONAL_SUFFIX = " (Optional)"
TEXT_TAB = "str"  # the tab that turns a ``str | None`` field from None into a text input
TEXT_INPUT = "textarea"
NAV_DEPLOYMENTS = "Deployments"  # sidebar link
RUN_MENU = "Run"  # the deployment page's button; it opens a menu with "Custom run"
CUSTOM_RUN = "Custom run"
SUBMIT = "Submit"
VIEW_RUN = "View run"
#: How long a UI element may take to appear: the server shares 2 cores with a worker, the
#: local cloud and the browser.
UI_TIMEOUT_MS = 30_000


def run_form_url(ui_url: str, deployment_id: str) -> str:
    """The deployment's custom-run form (*Run → Custom run*)."""
    return f"{ui_url}{UI_PREFIX}/deployments/deployment/{deployment_id}/run"


def flow_run_url(ui_url: str, flow_run_id: str) -> str:
    return f"{ui_url}{UI_PREFIX}/runs/flow-run/{flow_run_id}"


class RunForm:
    """The custom-run form of one deployment."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, ui_url: str, deployment_id: str) -> None:
        self.page.goto(run_form_url(ui_url, deployment_id))
        expect(self.submit_button).to_be_visible(timeout=UI_TIMEOUT_MS)

    def open_by_clicks(self, ui_url: str, deployment: str) -> None:
        """The README's way: the UI's root, *Deployments*, the deployment, *Run*, *Custom
        run*."""
        self.page.goto(ui_url)
        self.page.get_by_role("link", name=NAV_DEPLOYMENTS, exact=True).click()
        self.page.get_by_role("link", name=deployment, exact=True).click()
        self.page.get_by_role("button", name=RUN_MENU, exact=True).click()
        self.page.get_by_role("menuitem", name=CUSTOM_RUN).click()
        expect(self.submit_button).to_be_visible(timeout=UI_TIMEOUT_MS)

    @property
    def submit_button(self) -> Locator:
        return self.page.get_by_role("button", name=SUBMIT, exact=True)

    def label(self, title: str) -> Locator:
        """A field's label: its schema title, with or without " (Optional)"."""
        text = re.compile(rf"^{re.escape(title)}({re.escape(OPTIONAL_SUFFIX)})?$")
        return self.page.locator("label", has_text=text)

    def field(self, title: str) -> Locator:
        """The block of one field: label, help text, input."""
        return self.label(title).locator(FIELD_OF_LABEL)

    def help_text(self, description: str) -> Locator:
        return self.page.locator("p", has_text=description)

    def fill_text(self, title: str, value: str) -> None:
        """Type ``value`` into a text field; a ``str | None`` field is switched to ``str``
        first."""
        field = self.field(title)
        expect(field).to_be_visible(timeout=UI_TIMEOUT_MS)  # rendered after the Submit button
        text_tab = field.get_by_role("tab", name=TEXT_TAB, exact=True)
        if text_tab.count():
            text_tab.click()
        field.locator(TEXT_INPUT).fill(value)

    def choose(self, title: str, option: str) -> None:
        """Pick ``option`` (a tab) of the choice field ``title`` (e.g. Source: Server)."""
        field = self.field(title)
        expect(field).to_be_visible(timeout=UI_TIMEOUT_MS)
        field.get_by_role("tab", name=option, exact=True).first.click()

    def submit(self) -> str:
        """Submit; returns the id of the flow run the form created (the answer to its own
        create-run request), after following the toast's *View run* to the run's page.

        The field being edited is left first, so that its blur's re-render cannot move the
        button under the click. A refused request fails here with the server's answer (CI,
        SQLite: 503 "Service Unavailable", hence the PostgreSQL server of conftest.py). The
        toast goes away after a few seconds unless the pointer is on it: on a loaded machine
        it came and went unseen (CI, twice); the caller then opens the run's page by its
        address, as the deployment's run list would lead a user there."""
        self.page.evaluate("document.activeElement && document.activeElement.blur()")
        with self.page.expect_response(_creates_flow_run, timeout=UI_TIMEOUT_MS) as answer:
            self.submit_button.click()
        created = answer.value
        assert created.ok, f"the form's create-run request: HTTP {created.status} {created.text()}"
        run_id = str(created.json()["id"])
        view_run = self.page.get_by_role("button", name=VIEW_RUN)
        try:
            view_run.hover(timeout=UI_TIMEOUT_MS)
            view_run.click(timeout=UI_TIMEOUT_MS)
        except PlaywrightTimeoutError:
            return run_id
        self.page.wait_for_url(FLOW_RUN_PATH, timeout=UI_TIMEOUT_MS)
        found = FLOW_RUN_PATH.search(self.page.url)
        assert found and found["id"] == run_id, (self.page.url, run_id)
        return run_id


def _creates_flow_run(response: Response) -> bool:
    """The run form's ``POST /api/deployments/{id}/create_flow_run``."""
    return response.request.method == "POST" and response.url.endswith("/create_flow_run")


class FlowRunPage:
    """A flow run's page: header (name, state), graph, tabs."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, ui_url: str, flow_run_id: str) -> None:
        self.page.goto(flow_run_url(ui_url, flow_run_id))
        expect(self.tab("Logs")).to_be_visible(timeout=UI_TIMEOUT_MS)

    def tab(self, name: str) -> Locator:
        return self.page.get_by_role("tab", name=name, exact=True)

    def show(self, name: str) -> None:
        """Switch to one tab and wait until it is the selected one."""
        self.tab(name).click()
        expect(self.tab(name)).to_have_attribute("aria-selected", "true")

    def state(self, name: str) -> Locator:
        """The state badge's text (``Completed``, ``Failed`` ...)."""
        return self.page.get_by_text(name, exact=True).first
