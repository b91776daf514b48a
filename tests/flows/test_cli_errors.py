"""What a new user sees when something is wrong: exit codes as the README lists them, one line
naming what to fix (the last line, ``--debug`` or not), ``--json`` error objects, refusals of
bad input before Prefect starts, and no process left behind by a killed CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from imagehop.flows.cli import app
from imagehop_sandbox.handle import LocalCloud
from tests.deployments.processes import (
    PROJECT_ROOT,
    free_port,
    prefect_env,
    processes_with_home,
    wait_for,
)
from tests.flows.helpers import created, new_image
from tests.flows.test_cli_runs import args, runner

pytestmark = [pytest.mark.cloud, pytest.mark.flow]
__all__ = ["runner"]  # the fixture, imported

CLI = [sys.executable, "-c", "from imagehop.flows.cli import main; main()"]
#: A refusal of bad input must take under 2 s (goal); the bound leaves room for a busy machine.
QUICK_SECONDS = 5.0


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def run_cli(
    command: list[str], env: Mapping[str, str], timeout: float = 120.0
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the CLI in its own process; the result and its wall time in seconds."""
    began = time.perf_counter()
    done = subprocess.run(
        [*CLI, *command], env=dict(env), cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    return done, time.perf_counter() - began


@pytest.fixture
def cli_env(tmp_path: Path, local_cloud: LocalCloud) -> dict[str, str]:
    """A clean environment for a CLI process: its own Prefect home, the local cloud's account."""
    return prefect_env(tmp_path / "prefect-home", **local_cloud.settings_env())


# settings: refused before Prefect is imported ----------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("IMAGEHOP_POLL_INTERVAL_SECONDS", "10", "must be at least 30"),
        ("IMAGEHOP_TRANSFER_CONCURRENCY", "0", "must be from 1 to 64"),
    ],
)
def test_a_bad_settings_variable_is_refused_at_once_with_exit_4(
    variable: str, value: str, rule: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    flag = tmp_path / "prefect-imported"
    probe = (  # the CLI, and a note of whether it imported Prefect (written at exit)
        "import atexit, sys; atexit.register(lambda path=sys.argv[1]: open(path, 'w').write("
        "str('prefect' in sys.modules))); from imagehop.flows.cli import main; "
        "sys.argv[1:2] = []; main()"
    )
    command = ["transfer", *args("any-image"), "--json"]
    env = {**cli_env, variable: value}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", probe, str(flag), *command], env=env, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    print(f"bad {variable}: refused in {seconds:.2f} s")
    assert done.returncode == 4, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line, "one line only"
    assert line.startswith(f"imagehop: error: {variable}={value} ") and rule in line
    assert json.loads(done.stdout) == {
        "error": line.removeprefix("imagehop: error: "),
        "exit_code": 4,
        "kind": "configuration",
        "type": "ConfigurationError",
    }
    assert flag.read_text() == "False", "Prefect was imported"
    assert seconds < QUICK_SECONDS


# the identity URL: one connect timeout at most, and named ----------------------------------


def test_an_unreachable_identity_url_is_named_and_fails_at_once(cli_env: dict[str, str]) -> None:
    """Nothing listens there: no retries, no Prefect, exit 4, what to check."""
    url = f"http://127.0.0.1:{free_port()}/v2.0"
    env = {**cli_env, "IMAGEHOP_IDENTITY_URL": url}
    done, seconds = run_cli(["plan", *args("any-image")], env)
    print(f"unreachable identity URL: refused in {seconds:.2f} s")
    assert done.returncode == 4, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line, "one line only"
    assert line.startswith(f"imagehop: error: cannot reach Identity at {url}/tokens")
    assert "check IMAGEHOP_IDENTITY_URL" in line
    assert seconds < QUICK_SECONDS


def test_an_identity_url_that_never_answers_fails_within_the_connect_timeout(
    cli_env: dict[str, str],
) -> None:
    """A black hole (a TEST-NET address): one connect timeout, not three plus backoff."""
    env = {
        **cli_env,
        "IMAGEHOP_IDENTITY_URL": "http://192.0.2.1:5000/v2.0",
        "IMAGEHOP_CONNECT_TIMEOUT_SECONDS": "2",
    }
    done, seconds = run_cli(["plan", *args("any-image")], env)
    print(f"black-hole identity URL (connect timeout 2 s): refused in {seconds:.2f} s")
    assert done.returncode == 4, done.stderr
    assert "check IMAGEHOP_IDENTITY_URL" in last_line(done.stderr)
    assert seconds < 2 + QUICK_SECONDS


# names: trimmed, whitespace refused naming the option ------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("--target-image-name", "   "), ("--export-container", " "), ("--import-container", "")],
)
def test_a_whitespace_name_is_refused_naming_its_option(
    option: str, value: str, on_cloud: LocalCloud, runner: CliRunner
) -> None:
    image_id, counts = new_image(on_cloud), created(on_cloud)
    outcome = runner.invoke(app, ["transfer", *args(image_id, option, value, "--json")])
    assert outcome.exit_code == 2, outcome.output
    line = last_line(outcome.stderr)
    assert line.startswith(f"imagehop: error: invalid request: {option}: must not be empty")
    assert "_" not in line.split(":")[3], "field names are not options"
    assert json.loads(outcome.stdout)["kind"] == "usage"
    assert created(on_cloud) == counts


def test_both_sources_name_the_options(runner: CliRunner) -> None:
    outcome = runner.invoke(app, ["plan", *args("i", "--server-id", "s")])
    assert outcome.exit_code == 2
    assert last_line(outcome.stderr) == (
        "imagehop: error: invalid request: give exactly one of --image-id and --server-id"
    )


def test_json_on_an_option_the_parser_refuses(cli_env: dict[str, str]) -> None:
    done, _ = run_cli(["plan", *args("i", "--concurrency", "many", "--json")], cli_env)
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stdout)
    assert error["kind"] == "usage" and error["exit_code"] == 2
    assert error["error"].startswith("Invalid value for '--concurrency'")


# pre-flight refusals, --debug and --json -----------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_bad_import_container_is_named_as_the_import_container(
    debug: bool, on_cloud: LocalCloud, runner: CliRunner
) -> None:
    image_id, counts = new_image(on_cloud), created(on_cloud)
    more = ["--import-container", "staged.images"] + (["--debug"] if debug else [])
    outcome = runner.invoke(app, ["transfer", *args(image_id, *more)])
    assert outcome.exit_code == 3, outcome.output
    line = last_line(outcome.stderr)
    assert line.startswith("imagehop: error: import container name 'staged.images' contains")
    assert "the import task needs" in line and "export" not in line
    assert ("Traceback" in outcome.stderr) is debug
    assert created(on_cloud) == counts


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_preflight_refusal_exits_3_with_and_without_debug(
    debug: bool, on_cloud: LocalCloud, runner: CliRunner
) -> None:
    licensed = on_cloud.admin.seed()["DFW"]["licensed_image"]
    more = ["--json"] + (["--debug"] if debug else [])
    outcome = runner.invoke(app, ["transfer", *args(licensed, *more)])
    assert outcome.exit_code == 3, outcome.output
    line = last_line(outcome.stderr)
    assert line.startswith("imagehop: error: image ") and "cannot be exported" in line
    assert ("Traceback" in outcome.stderr) is debug
    error = json.loads(outcome.stdout)
    assert error["exit_code"] == 3 and error["kind"] == "refused"
    assert error["error"] == line.removeprefix("imagehop: error: ")


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_bad_credentials_exit_4_with_and_without_debug(
    debug: bool, on_cloud: LocalCloud, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEHOP_API_KEY", "wrong-key-1234")
    more = ["--json"] + (["--debug"] if debug else [])
    outcome: Result = runner.invoke(app, ["plan", *args(new_image(on_cloud), *more)])
    assert outcome.exit_code == 4, outcome.output
    line = last_line(outcome.stderr)
    assert line.startswith("imagehop: error: Identity refused user") and "IMAGEHOP_API_KEY" in line
    assert ("Traceback" in outcome.stderr) is debug
    assert json.loads(outcome.stdout)["kind"] == "configuration"
    assert "wrong-key-1234" not in outcome.output  # the secret is never echoed


# no orphans --------------------------------------------------------------------------------


@contextlib.contextmanager
def background_cli(
    command: list[str], env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The CLI in its own session, output to ``log``; whatever is left of it (a process with
    its PREFECT_HOME) is killed afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CLI, *command], env=dict(env), cwd=PROJECT_ROOT, stdout=out, stderr=out,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)
        for pid in processes_with_home(env["PREFECT_HOME"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def test_a_finished_run_leaves_no_process_and_no_noise(
    on_cloud: LocalCloud, cli_env: dict[str, str]
) -> None:
    """The temporary server outlives Prefect's last log flush, then stops with the CLI."""
    done, seconds = run_cli(["plan", *args(new_image(on_cloud))], cli_env, timeout=180)
    print(f"plan in its own process, fresh Prefect home: {seconds:.1f} s")
    assert done.returncode == 0, done.stderr
    assert "nothing was changed" in done.stdout
    assert "Traceback" not in done.stderr and "rror" not in done.stderr, done.stderr
    assert not processes_with_home(cli_env["PREFECT_HOME"])


def test_kill_9_of_the_cli_leaves_no_prefect_server(
    on_cloud: LocalCloud, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The temporary Prefect server dies with the CLI, even when the CLI gets no chance to
    stop it."""
    log, home = tmp_path / "cli.log", cli_env["PREFECT_HOME"]
    with background_cli(["transfer", *args(new_image(on_cloud))], cli_env, log) as cli:
        wait_for(
            "the transfer to start (its Prefect server up)",
            lambda: "...   preflight" in log.read_text(errors="replace"),
            timeout=150,
        )
        running = processes_with_home(home)
        assert len(running) >= 2, running  # the CLI and its server
        cli.send_signal(signal.SIGKILL)
        cli.wait(timeout=10)
        began = time.perf_counter()
        with contextlib.suppress(AssertionError):
            wait_for("the CLI's processes to exit", lambda: not processes_with_home(home), 10, 0.1)
        left = processes_with_home(home)
        print(f"kill -9: {len(running) - 1} child process(es), {len(left)} left after "
              f"{time.perf_counter() - began:.1f} s")  # fmt: skip
        assert not left, f"left behind: {left}\n{log.read_text(errors='replace')[-2000:]}"
