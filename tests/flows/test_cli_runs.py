"""The imagehop command running the flow: exit codes, one-line errors, results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from imagehop.flows.cli import PREFECT_DEFAULTS, app
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import created, image, new_image

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner; the variables the CLI sets for Prefect are restored after the test."""
    for name in (*PREFECT_DEFAULTS, "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL",
                 "PREFECT_SERVER_LOGGING_LEVEL"):  # fmt: skip
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    return CliRunner()


def args(image_id: str, *more: str) -> list[str]:
    return ["--source-region", "DFW", "--target-region", "IAD", "--image-id", image_id, *more]


def test_transfer_prints_the_new_image(on_cloud: LocalCloud, runner: CliRunner) -> None:
    image_id = new_image(on_cloud, disk_bytes=1024 * 1024 + 5)
    outcome = runner.invoke(app, ["transfer", *args(image_id, "--json")])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    assert result["source_image_id"] == image_id and result["target_image_id"]


def test_the_summary_in_a_log_keeps_ids_whole(on_cloud: LocalCloud, runner: CliRunner) -> None:
    image_id = new_image(on_cloud, disk_bytes=1024 * 1024 + 5)
    outcome = runner.invoke(app, ["transfer", *args(image_id)])
    assert outcome.exit_code == 0, outcome.output
    new_line = outcome.stdout.strip().splitlines()[0]
    assert new_line.startswith("new image ") and new_line.endswith(" in IAD")
    target_id = new_line.split()[2]
    summary = outcome.stderr
    assert f"DFW {image_id}" in summary and f"IAD {target_id}" in summary
    assert f"com.imagehop.image-of={image_id}" in summary  # one line, not folded at 80 columns
    lines = summary.splitlines()
    progress = [line for line in lines if line.startswith("copy ")]
    assert progress[0].startswith("copy    0 %") and progress[-1].startswith("copy  100 %")
    assert "" not in lines and all(line == line.rstrip() for line in lines)


def test_plan_changes_nothing(on_cloud: LocalCloud, runner: CliRunner) -> None:
    outcome = runner.invoke(app, ["plan", *args(new_image(on_cloud))])
    assert outcome.exit_code == 0, outcome.output
    assert "nothing was changed" in outcome.stdout


def test_refusal_is_one_line_and_exit_code_3(on_cloud: LocalCloud, runner: CliRunner) -> None:
    licensed = on_cloud.admin.seed()["DFW"]["licensed_image"]
    outcome = runner.invoke(app, ["transfer", *args(licensed)])
    assert outcome.exit_code == 3
    lines = outcome.stderr.strip().splitlines()
    assert lines[-1].startswith("imagehop: error: image ") and "cannot be exported" in lines[-1]
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize("key", ["os_distro", "name", "COM.RACKSPACE.x"])
def test_a_coordinating_key_that_is_not_imagehops_is_refused_before_anything_changes(
    key: str, on_cloud: LocalCloud, runner: CliRunner
) -> None:
    """A key that names a property the user owns (or the cloud reserves) would overwrite it:
    refused with the key and a valid example, and the source image is left as it was."""
    image_id = new_image(on_cloud)
    before, counts = image(on_cloud, "DFW", image_id), created(on_cloud)
    outcome = runner.invoke(app, ["transfer", *args(image_id, "--coordinating-property-key", key)])
    assert outcome.exit_code == 2, outcome.output
    last = outcome.stderr.strip().splitlines()[-1]
    assert repr(key) in last and "e.g. com.mycompany.image-of" in last
    assert image(on_cloud, "DFW", image_id) == before
    assert created(on_cloud) == counts


def test_bad_credentials_exit_code_4(
    on_cloud: LocalCloud, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEHOP_API_KEY", "wrong")
    outcome = runner.invoke(app, ["plan", *args(new_image(on_cloud))])
    assert outcome.exit_code == 4
    assert "IMAGEHOP_API_KEY" in outcome.stderr.strip().splitlines()[-1]
    assert "wrong" not in outcome.output  # the secret is never echoed


def test_a_refusal_in_its_own_process_shows_no_prefect_log_or_traceback(
    on_cloud: LocalCloud,
) -> None:
    """Prefect's console log (task failed, flow crashed, tracebacks) is not the CLI's output."""
    licensed = on_cloud.admin.seed()["DFW"]["licensed_image"]
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    for name in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_LOGGING_LEVEL"):
        env.pop(name, None)
    command = [sys.executable, "-c", "from imagehop.flows.cli import main; main()", "transfer"]
    command += args(licensed)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == ["...   preflight", "failed preflight", lines[-1]], done.stderr
    assert lines[-1].startswith("imagehop: error: image ") and "cannot be exported" in lines[-1]


def test_a_failed_import_says_what_is_kept_and_how_to_remove_it(
    on_cloud: LocalCloud, runner: CliRunner
) -> None:
    image_id = new_image(on_cloud)
    on_cloud.admin.fail_next_task("IAD", "import", "Image import failed: code 609 too large")
    outcome = runner.invoke(app, ["transfer", *args(image_id)])
    assert outcome.exit_code == 1
    lines = outcome.stderr.strip().splitlines()
    assert lines[-1].startswith("imagehop: error: import task ") and "code 609" in lines[-1]
    kept = lines[-2]
    assert kept.startswith("the transfer failed; kept for a re-run with run key")
    assert f"swift delete imagehop-exports --prefix {image_id}.vhd" in kept
