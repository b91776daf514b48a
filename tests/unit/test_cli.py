"""The imagehop command without a cloud or a Prefect server: help, usage errors, sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from imagehop.errors import TaskFailedError
from imagehop.flows.cli import _one_line, app
from imagehop.image import IMPORT_CODE_ADVICE

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    outcome = runner.invoke(app, ["--help"])
    assert outcome.exit_code == 0
    for command in ("transfer", "plan", "demo", "sandbox"):
        assert command in outcome.stdout


def test_transfer_help_in_80_columns_shows_every_option_whole() -> None:
    outcome = runner.invoke(app, ["transfer", "--help"], env={"COLUMNS": "80"}, color=False)
    assert outcome.exit_code == 0
    for option in ("--coordinating-property-key", "--coordinating-property-value",
                   "--target-image-name", "--export-container", "--import-container"):  # fmt: skip
        assert f"{option} " in outcome.stdout
    assert max(len(line) for line in outcome.stdout.splitlines()) <= 80


def test_help_and_sandbox_do_not_import_prefect() -> None:
    """They must start fast: Prefect is imported only to run a flow."""
    code = (
        "import sys; from imagehop.flows.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['transfer', '--help']); assert r.exit_code == 0; "
        "r = CliRunner().invoke(app, ['sandbox', 'status', '--state-dir', sys.argv[1]]); "
        "assert r.exit_code == 3, r.output; "
        "assert 'prefect' not in sys.modules, 'prefect was imported'"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code, str(root / "no-such-sandbox")],
        cwd=root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_both_sources_is_a_usage_error_in_one_line() -> None:
    outcome = runner.invoke(
        app,
        ["transfer", "--source-region", "DFW", "--target-region", "IAD",
         "--image-id", "i", "--server-id", "s"],
    )  # fmt: skip
    assert outcome.exit_code == 2
    assert outcome.stderr.strip() == (
        "imagehop: error: invalid request: give exactly one of --image-id and --server-id"
    )


def test_missing_region_is_a_usage_error() -> None:
    outcome = runner.invoke(app, ["plan", "--image-id", "i"])
    assert outcome.exit_code == 2
    assert "--source-region" in outcome.output


def test_sandbox_env_of_a_stopped_cloud_is_one_line(tmp_path: Path) -> None:
    outcome = runner.invoke(app, ["sandbox", "env", "--state-dir", str(tmp_path)])
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("imagehop: error: the local cloud is not up")


def test_failed_import_line_carries_the_cloud_message_and_advice() -> None:
    error = TaskFailedError(
        "import task t-1 failed: Image cannot be imported. Error code: '609'. "
        + IMPORT_CODE_ADVICE["609"],
        "req-9",
    )
    line = _one_line(error)
    assert "\n" not in line and "Error code: '609'" in line
    assert IMPORT_CODE_ADVICE["609"] in line and line.endswith("(request id: req-9)")


def test_an_unknown_cloud_is_refused_before_prefect_starts(tmp_path: Path) -> None:
    """The clouds a request names are checked against IMAGEHOP_CLOUDS first (exit 3), and a
    bad profile refuses the command (exit 4), both without Prefect."""
    code = (
        "import sys; from imagehop.flows.cli import app; from typer.testing import CliRunner; "
        "args = ['plan', '--source-region', 'DFW', '--target-region', 'IAD', '--image-id', "
        "'i', '--source-cloud', 'legacy-dfw', '--target-cloud', sys.argv[1]]; "
        "r = CliRunner().invoke(app, args); print(r.exit_code); print(r.stderr); "
        "assert 'prefect' not in sys.modules, 'prefect was imported'"
    )
    env = {"PATH": "/usr/bin:/bin", "IMAGEHOP_CLOUDS": (
        '{"legacy-dfw": {"username": "u", "api_key_secret_block": "k"}}'
    )}  # fmt: skip

    def run(target: str, clouds: str | None = None) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", code, target], cwd=tmp_path, capture_output=True, text=True,
            timeout=60, env={**env, **({"IMAGEHOP_CLOUDS": clouds} if clouds else {})},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    code_line, message = run("flex-sjc3")[:2]
    assert code_line == "3"
    assert message == (
        "imagehop: error: target_cloud 'flex-sjc3' is not a cloud of IMAGEHOP_CLOUDS (known: "
        "legacy-dfw): name one of them, or add a profile 'flex-sjc3' to IMAGEHOP_CLOUDS where "
        "the flow runs (this shell for the CLI, the worker's environment for a deployment)"
    )
    code_line, message = run("legacy-dfw", '{"legacy-dfw": {"username": "u"}}')[:2]
    assert code_line == "4"
    assert message.startswith("imagehop: error: IMAGEHOP_CLOUDS is refused: it must be a JSON ")
    assert "profile 'legacy-dfw': field api_key_secret_block (or password_secret_block)" in message


def test_transfer_and_plan_take_the_clouds() -> None:
    for command in ("transfer", "plan"):
        outcome = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}, color=False)
        assert "--source-cloud" in outcome.stdout and "--target-cloud" in outcome.stdout
