"""Journey 2 of deployments/README.md in a real browser: the ``adhoc`` deployment's custom-run
form in the Prefect UI, a run submitted from it, and what its run page shows.

The run goes through a real process worker to the local cloud and uses the real clock; the
local cloud runs its snapshot, export and import before answering their creation
(``imagehop_sandbox.options.INSTANT_JOBS``), so its first poll of each finds it done and no
30 s poll interval is waited (the waits have their own tests). Every page
visited is screenshotted (conftest.screenshot_folder) and must not contain an API key.
Selectors and URLs are in ``tests/browser/ui.py``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from imagehop_sandbox.options import INSTANT_JOBS
from tests.browser.conftest import UiSetup, Visits
from tests.browser.ui import UI_TIMEOUT_MS, FlowRunPage, RunForm, run_form_url
from tests.deployments.expected import ADHOC
from tests.deployments.processes import wait_for

pytestmark = [pytest.mark.cloud, pytest.mark.deployment, pytest.mark.browser]

RUN_TIMEOUT_SECONDS = 300
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
#: The progress artifact's text at the end: "3.1 MiB copied, 4 streams (adaptive), 4/4
#: segments" (the stream count the copy ran with, once it is done, before what the card cuts).
COPIED_ALL = re.compile(
    r"^[\d.]+ [KMG]iB copied, \d+ streams \((?:adaptive|fixed)\), (\d+)/\1 segments$"
)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: What the form says when it is submitted without the image or server id.
REQUIRED_SOURCE = "'source' is a required property"


def test_custom_run_form_shows_every_field_with_its_help_text(
    ui_setup: UiSetup, page: Page, visits: Visits
) -> None:
    deployment = _adhoc(ui_setup)
    form = RunForm(page)

    form.open_by_clicks(ui_setup.ui_url, deployment["name"])

    # The form's address (it also carries the deployment's parameters in its query).
    assert page.url.partition("?")[0] == run_form_url(ui_setup.ui_url, deployment["id"])
    for name, spec in _request_fields(deployment).items():
        if "title" in spec:  # `boot` has none in the schema: the form calls it "Field"
            expect(form.label(spec["title"]), name).to_be_visible()
        expect(form.help_text(spec["description"]), name).to_be_visible()
    expect(form.field("Source Region").locator("textarea")).to_have_value("DFW")
    expect(form.field("Target Region").locator("textarea")).to_have_value("IAD")
    visits.record("01-run-form")

    # Submitted as it opens (no image or server id), the form refuses: no run, no traceback.
    runs_before = len(ui_setup.operator.api.flow_runs())
    form.submit_button.click()
    expect(page.get_by_text(REQUIRED_SOURCE).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(form.submit_button).to_be_visible()  # still on the form
    assert len(ui_setup.operator.api.flow_runs()) == runs_before
    visits.record("01b-run-form-defaults-refused")


def test_server_run_from_the_form_completes_with_artifacts_and_logs(
    ui_setup: UiSetup, page: Page, visits: Visits
) -> None:
    cloud = ui_setup.operator.cloud
    server_id = cloud.admin.seed()["DFW"]["demo_server"]
    # Its own run key: the default (<server id>@<date>) would hand this run's snapshot to
    # the flow tests' run of the same demo server later in the session.
    run_key = f"browser-{uuid.uuid4().hex[:8]}"
    form = RunForm(page)
    form.open(ui_setup.ui_url, _adhoc(ui_setup)["id"])
    form.choose("Source", "Server")
    form.fill_text("Server Id", server_id)
    form.fill_text("Run Key", run_key)
    visits.record("02-run-form-filled")

    with cloud.admin.temporary_options(**INSTANT_JOBS):
        flow_run = _finished(ui_setup, form.submit())

    assert flow_run["state_type"] == "COMPLETED", flow_run["state"]
    request = flow_run["parameters"]["request"]
    assert (request["source"]["server_id"], request["run_key"]) == (server_id, run_key)
    # The form's suggested name (e.g. "Sleek-Tuna") gives way to one saying what moves where.
    assert flow_run["name"] == f"DFW-to-IAD-server-{server_id[:8]}", flow_run["name"]
    run_page = FlowRunPage(page)
    run_page.open(ui_setup.ui_url, flow_run["id"])
    expect(run_page.state("Completed")).to_be_visible()
    _check_logs(page, server_id)
    _check_run_logs(ui_setup, flow_run["id"])
    visits.record("03-run-completed-logs")
    run_page.show("Artifacts")
    expect(page.get_by_text(f"copy-{run_key}", exact=True)).to_be_visible()
    expect(page.get_by_text(COPIED_ALL)).to_be_visible()  # the progress artifact's text
    expect(page.get_by_text(f"transfer-{run_key}", exact=True)).to_be_visible()
    visits.record("04-run-artifacts")
    page.get_by_text(f"transfer-{run_key}", exact=True).click()
    _check_summary_table(page, run_key, cloud.admin.image_record)
    visits.record("05-summary-table")
    run_page.open(ui_setup.ui_url, flow_run["id"])
    run_page.show("Parameters")
    # A JSON editor that renders only the lines in view: the request's first lines.
    expect(page.get_by_role("tabpanel", name="Parameters")).to_contain_text('"DFW"')
    visits.record("06-run-parameters")


def test_refused_run_shows_why_on_its_run_page(
    ui_setup: UiSetup, page: Page, visits: Visits
) -> None:
    missing = f"no-such-image-{uuid.uuid4().hex[:8]}"
    form = RunForm(page)
    form.open(ui_setup.ui_url, _adhoc(ui_setup)["id"])
    form.choose("Source", "Image")
    form.fill_text("Image Id", missing)

    flow_run = _finished(ui_setup, form.submit())

    assert flow_run["state_type"] == "FAILED", flow_run["state"]
    message = flow_run["state"]["message"]
    assert f"image {missing} does not exist in DFW" in message, message
    assert re.search(rf"\(request id: req-{UUID}\)$", message), message
    run_page = FlowRunPage(page)
    run_page.open(ui_setup.ui_url, flow_run["id"])
    expect(run_page.state("Failed")).to_be_visible()
    request_id = re.compile(rf"does not exist in DFW .*\(request id: req-{UUID}\)")
    expect(page.get_by_text(request_id).first).to_be_visible()  # in the Logs tab
    visits.record("07-refused-run-logs")
    run_page.show("Details")
    expect(page.get_by_text("State Message", exact=True)).to_be_visible()
    expect(page.get_by_text(message, exact=True)).to_be_visible()
    visits.record("08-refused-run-details")


# -- helpers ---------------------------------------------------------------------------------


def _adhoc(ui_setup: UiSetup) -> dict[str, Any]:
    return ui_setup.operator.api.deployments()[ADHOC]


def _request_fields(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The request model's fields as the server holds them (title, description ...)."""
    fields: dict[str, dict[str, Any]] = deployment["parameter_openapi_schema"]["definitions"][
        "TransferRequest"
    ]["properties"]
    return fields


def _finished(ui_setup: UiSetup, flow_run_id: str) -> dict[str, Any]:
    """The flow run once it reached a terminal state (bounded wait)."""
    api = ui_setup.operator.api

    def final() -> dict[str, Any] | None:
        flow_run = api.flow_run(flow_run_id)
        return flow_run if flow_run["state_type"] in TERMINAL else None

    try:
        finished: dict[str, Any] = wait_for("flow run finished", final, RUN_TIMEOUT_SECONDS, 2)
    except AssertionError:
        print(ui_setup.worker.output())
        raise
    return finished


def _check_logs(page: Page, server_id: str) -> None:
    """The run's log as the Logs tab shows it (its first lines; the tab loads more on
    scrolling): a line as each phase starts and ends, the snapshot by id, and the cloud's
    request id of the create call."""
    expect(page.get_by_text("phase snapshot started", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^phase snapshot finished in [\d.]+ s$"))).to_be_visible()
    created = re.compile(rf"^created image {UUID} of server {server_id}$")
    expect(page.get_by_text(created)).to_be_visible()
    request_id = re.compile(rf"^POST /\S+ -> 20\d, request id req-{UUID}$")
    expect(page.get_by_text(request_id).first).to_be_visible()


def _check_run_logs(ui_setup: UiSetup, flow_run_id: str) -> None:
    """The rest of the run's log, read through the API: every phase started and finished, the
    export and import tasks by id, each create line once."""
    lines = [
        log["message"]
        for log in ui_setup.operator.api.all_logs()
        if log.get("flow_run_id") == flow_run_id
    ]
    for phase in ("preflight", "snapshot", "export", "copy", "import", "properties", "cleanup"):
        assert f"phase {phase} started" in lines, phase
        assert any(re.fullmatch(rf"phase {phase} finished in [\d.]+ s", x) for x in lines), phase
    exports = [x for x in lines if re.fullmatch(rf"export task {UUID} started: \S+\.vhd", x)]
    imports = [x for x in lines if re.fullmatch(rf"import task {UUID} started for \S+", x)]
    assert len(exports) == 1 and len(imports) == 1, lines


def _check_summary_table(page: Page, run_key: str, image_record: Any) -> None:
    """The summary table artifact's page: the run key and the new image in the target."""
    expect(page.get_by_text("run key", exact=True)).to_be_visible()
    expect(page.get_by_text(run_key, exact=True).first).to_be_visible()
    target = page.get_by_text(re.compile(rf"^IAD {UUID}$"))
    expect(target).to_be_visible()
    image_id = target.inner_text().split()[1]
    assert image_record(image_id)["region"] == "IAD"
