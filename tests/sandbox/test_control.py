"""The local cloud's description file and the shell lines that point imagehop at it."""

from __future__ import annotations

import os
import shlex
import stat
import sys
from pathlib import Path

import pytest

from imagehop.settings import Settings
from imagehop_sandbox import control
from imagehop_sandbox.__main__ import _env_command, build_parser, up_options
from imagehop_sandbox.info import AccountInfo, RegionInfo, SandboxInfo, read_info
from imagehop_sandbox.options import INSTANT_JOBS, SandboxOptions


def sample_info(state_dir: Path, ready: bool = True) -> SandboxInfo:
    region = RegionInfo(
        "DFW",
        "http://127.0.0.1:1",
        "http://127.0.0.1:2/v2",
        "http://127.0.0.1:3/v2/{tenant}",
        "http://127.0.0.1:1/v1/MossoCloudFS_{tenant}",
    )
    accounts = [
        AccountInfo("demo", "key-1 with space", "pw-1", "900001"),
        AccountInfo("demo-other", "key-2", "pw-2", "900002"),
    ]
    return SandboxInfo(
        identity_url="http://127.0.0.1:4/v2.0",
        regions={"DFW": region},
        accounts=accounts,
        token_secret_file=str(state_dir / "token_secret"),
        admin_url="http://127.0.0.1:4/_sandbox",
        state_dir=str(state_dir),
        service_tenant="sandbox-images",
        ready=ready,
    )


def test_info_round_trips_through_a_private_file(tmp_path: Path) -> None:
    info = sample_info(tmp_path)
    info.save(tmp_path)
    assert read_info(tmp_path) == info
    mode = stat.S_IMODE(os.stat(tmp_path / "sandbox.json").st_mode)
    assert mode == 0o600


def test_account_repr_keeps_secrets_out() -> None:
    text = repr(AccountInfo("demo", "the-api-key", "the-password", "900001"))
    assert "the-api-key" not in text
    assert "the-password" not in text


def test_templates_give_per_tenant_urls(tmp_path: Path) -> None:
    region = sample_info(tmp_path).region("dfw")
    assert region.compute_url_for("900001") == "http://127.0.0.1:3/v2/900001"
    assert region.storage_url_for("900001").endswith("/v1/MossoCloudFS_900001")


def test_env_lines_configure_imagehop_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample_info(tmp_path).save(tmp_path)
    lines = control.env_lines(tmp_path, target_username="demo-other")
    for line in lines:
        name, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, shlex.split(value)[0])
    settings = Settings(_env_file=None)
    assert settings.identity_url == "http://127.0.0.1:4/v2.0"
    source = settings.source_credentials()
    assert source.api_key is not None
    assert (source.username, source.api_key.get_secret_value()) == ("demo", "key-1 with space")
    assert settings.target_credentials().username == "demo-other"


def test_env_lines_need_a_running_cloud(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not up"):
        control.env_lines(tmp_path)
    sample_info(tmp_path, ready=False).save(tmp_path)
    with pytest.raises(RuntimeError, match="not up"):
        control.env_lines(tmp_path)


def test_status_of_an_empty_folder_is_down(tmp_path: Path) -> None:
    assert control.status(tmp_path)["state"] == "down"
    control.down(tmp_path)  # nothing to stop: no error


def test_cli_maps_flags_to_options() -> None:
    args = build_parser().parse_args(
        ["--state-dir", "/x", "up", "--export-segment-size", "1MiB", "--task-pending", "0.5"]
    )
    assert args.state_dir == Path("/x")
    assert (args.export_segment_size, args.task_pending) == (1024 * 1024, 0.5)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], {}),
        (["--instant-jobs"], INSTANT_JOBS),
        (["--instant-jobs", "--boot-time", "2"], {**INSTANT_JOBS, "boot_seconds": 2.0}),
        (["--no-instant-jobs"], {"jobs_before_answer": False}),
    ],
)
def test_instant_jobs_flag_sets_the_answering_and_the_durations_not_given(
    flags: list[str], expected: dict[str, object]
) -> None:
    options = up_options(build_parser().parse_args(["up", *flags]))
    assert options == expected
    assert SandboxOptions().updated(options).jobs_before_answer is bool(
        expected.get("jobs_before_answer")
    )


@pytest.mark.parametrize("default", [True, False])
def test_the_env_hint_after_up_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default: bool
) -> None:
    """The hint names this interpreter (no venv on PATH needed) and a state folder that is not
    the default one."""
    monkeypatch.setenv(control.STATE_DIR_ENV, str(tmp_path / "default"))
    state_dir = tmp_path / ("default" if default else "elsewhere")
    words = shlex.split(_env_command(str(state_dir.resolve())))
    assert words[:3] == [sys.executable, "-m", "imagehop_sandbox"] and words[-1] == "env"
    if default:
        assert "--state-dir" not in words
    else:
        assert words[3:5] == ["--state-dir", str(state_dir.resolve())]
        assert build_parser().parse_args(words[3:]).state_dir == state_dir.resolve()
