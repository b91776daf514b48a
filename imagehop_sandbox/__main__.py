"""``python -m imagehop_sandbox up|down|env|status``: the local two-region cloud from a shell.

python -m imagehop_sandbox up                # start in the background (idempotent)
eval "$(python -m imagehop_sandbox env)"     # point imagehop at it
python -m imagehop_sandbox status
python -m imagehop_sandbox down              # stop; no process left behind
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from imagehop_sandbox import control
from imagehop_sandbox.options import INSTANT_JOBS, parse_size

# CLI flag -> (option name, converter, help)
UP_OPTIONS: dict[str, tuple[str, Any, str]] = {
    "--token-lifetime": ("token_lifetime_seconds", float, "token lifetime in seconds"),
    "--export-segment-size": (
        "export_segment_bytes",
        parse_size,
        "size of the DLO segments an export writes (e.g. 8MiB)",
    ),
    "--task-pending": ("task_pending_seconds", float, "seconds a task stays pending"),
    "--task-processing": (
        "task_processing_seconds",
        float,
        "least seconds a task stays processing",
    ),
    "--snapshot-time": ("snapshot_seconds", float, "seconds a createImage takes"),
    "--boot-time": ("boot_seconds", float, "seconds a new server stays in BUILD"),
    "--task-ttl": ("task_ttl_seconds", float, "seconds a finished task stays readable"),
    "--max-file-size": (
        "max_file_size",
        parse_size,
        "Swift single-object cap (stands in for 5 GiB; new state folders only)",
    ),
    "--max-manifest-segments": (
        "max_manifest_segments",
        int,
        "SLO segment limit (new state folders only)",
    ),
    "--import-size-limit": (
        "import_size_limit_bytes",
        parse_size,
        "largest VHD an import accepts (e.g. 160GB)",
    ),
    "--disk-size": ("server_disk_bytes", parse_size, "disk size of new servers (e.g. 40MiB)"),
    "--glance-regions": (
        "glance_regions",
        str,
        "regions whose Images API is upstream Glance, e.g. IAD or DFW,IAD",
    ),
    "--import-methods": (
        "import_methods",
        json.loads,
        'Glance regions\' import methods as JSON, e.g. \'{"IAD": ["glance-direct"]}\'',
    ),
}


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imagehop_sandbox",
        description="The local two-region cloud (real Swift + Identity/Images/Servers APIs).",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=control.default_state_dir(),
        help=f"state folder (default: ${control.STATE_DIR_ENV} or ~/.imagehop_sandbox)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start in the background (idempotent)")
    for flag, (_, convert, text) in UP_OPTIONS.items():
        start.add_argument(flag, type=convert, help=text)
    start.add_argument(
        "--instant-jobs",
        action=argparse.BooleanOptionalAction,
        help="run each export or import task and snapshot before answering the request that "
        "starts it, in no time (the answer still says pending): a client's first poll finds "
        "it done, so a test of a pipeline waits no 30 s poll interval",
    )
    commands.add_parser("down", help="stop everything")
    env = commands.add_parser("env", help="print export lines for imagehop")
    env.add_argument("--user", help="account to use (default: the first one)")
    env.add_argument("--target-user", help="also set a separate target account")
    commands.add_parser("status", help="show whether it runs, and its URLs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        info = control.up(args.state_dir, **up_options(args))
        _say(f"local cloud up in {info.state_dir}")
        _say(f"  identity  {info.identity_url}")
        for name, region in info.regions.items():
            _say(f"  {name}  images {region.images_url}  storage {region.storage_host}")
        _say(f"  accounts  {', '.join(a.username for a in info.accounts)}")
        _say(f'point imagehop at it:  eval "$({_env_command(info.state_dir)})"')
    elif args.command == "down":
        control.down(args.state_dir)
        _say("local cloud stopped")
    elif args.command == "env":
        _say("\n".join(control.env_lines(args.state_dir, args.user, args.target_user)))
    else:
        report = control.status(args.state_dir)
        _say(json.dumps(report, indent=2))
        return 0 if report["state"] == "up" else 3
    return 0


def up_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options ``up`` was given. ``--instant-jobs`` sets the durations it needs to 0
    unless they are given too; ``--no-instant-jobs`` puts only the answering back."""
    options = {
        name: getattr(args, flag[2:].replace("-", "_"))
        for flag, (name, _, _) in UP_OPTIONS.items()
        if getattr(args, flag[2:].replace("-", "_")) is not None
    }
    if args.instant_jobs:
        return {**INSTANT_JOBS, **options}
    if args.instant_jobs is False:
        options["jobs_before_answer"] = False
    return options


def _env_command(state_dir: str) -> str:
    """The ``env`` command for this cloud, runnable as printed (no PATH or venv assumed)."""
    command = [sys.executable, "-m", "imagehop_sandbox"]
    if Path(state_dir) != control.resolve_state_dir(control.default_state_dir()):
        command += ["--state-dir", state_dir]
    return shlex.join([*command, "env"])


if __name__ == "__main__":
    sys.exit(main())
