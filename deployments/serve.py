"""Serve imagehop's deployments from one long-running process: no work pool, no worker.

    python deployments/serve.py                       # every deployment in prefect.yaml
    python deployments/serve.py --only adhoc --limit 2

The single-host alternative to ``prefect deploy`` plus a worker. The deployments are read from
``deployments/prefect.yaml`` (names, descriptions, tags, parameters, schedules, concurrency
limits), registered with the Prefect server at ``PREFECT_API_URL``, and their runs start here
as subprocesses. The work pool and pull steps do not apply; the job variables' ``env`` becomes
this process's environment, with its Prefect Variables read now. A variable already set in
the environment wins.

Stop it with Ctrl-C or SIGTERM: Prefect pauses the served deployments on the way out (no
runs pile up while nothing serves them) and the next start resumes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import yaml
from prefect import Flow, serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron, Interval, Schedule
from prefect.settings import PREFECT_API_URL
from prefect.utilities.templating import resolve_variables

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = Path(__file__).with_name("prefect.yaml")
DEFAULT_LIMIT = 4


class ServeError(Exception):
    """The deployments cannot be served as configured; the message says why."""


def read_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments`` of a prefect.yaml (YAML anchors resolved)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(document.get("deployments") or [])


def schedules_of(spec: Mapping[str, Any]) -> list[Schedule]:
    """The deployment's cron and interval schedules, with their timezone and active flag."""
    found: list[Schedule] = []
    for item in spec.get("schedules") or []:
        options = {
            "timezone": item.get("timezone"),
            "active": item.get("active", True),
            "parameters": item.get("parameters") or {},
        }
        if "cron" in item:
            found.append(Cron(item["cron"], **options))
        elif "interval" in item:
            found.append(Interval(timedelta(seconds=float(item["interval"])), **options))
        else:
            raise ServeError(f"{spec['name']}: only cron and interval schedules can be served")
    return found


def concurrency_of(spec: Mapping[str, Any]) -> int | ConcurrencyLimitConfig | None:
    """``concurrency_limit`` as a number, or a limit with its collision strategy."""
    limit = spec.get("concurrency_limit")
    if isinstance(limit, Mapping):
        return ConcurrencyLimitConfig.model_validate(dict(limit))
    return limit if limit is None else int(limit)


def runner_deployment(spec: Mapping[str, Any]) -> RunnerDeployment:
    """The served twin of one prefect.yaml deployment (entry point: an installed module)."""
    flow: Flow[..., Any] = load_flow_from_entrypoint(spec["entrypoint"])
    deployment = flow.to_deployment(
        name=spec["name"],
        description=spec.get("description"),
        tags=list(spec.get("tags") or []),
        parameters=dict(spec.get("parameters") or {}),
        schedules=schedules_of(spec),
        concurrency_limit=concurrency_of(spec),
    )
    served = cast(RunnerDeployment, deployment)  # sync call: a deployment, not a coroutine
    served.entrypoint = spec["entrypoint"]  # the installed module, as in prefect.yaml (not a file)
    return served


def shared_env(specs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The job-variable ``env`` of the deployments; one process can only have one."""
    envs = [_env_of(spec) for spec in specs]
    distinct = {json.dumps(env, sort_keys=True) for env in envs}
    if len(distinct) > 1:
        raise ServeError(
            "the deployments have different job-variable env; serve them from separate "
            "processes (--only) or run them through a work pool"
        )
    return {name: str(value) for name, value in (envs[0] if envs else {}).items()}


def _env_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    job_variables = (spec.get("work_pool") or {}).get("job_variables") or {}
    return dict(job_variables.get("env") or {})


def resolve_env(env: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The entries of ``env`` not already in ``environ``, with Prefect Variables filled in.

    Raises:
        ServeError: a Variable it names does not exist (deployments/credentials.py sets them).
    """
    wanted = {name: value for name, value in env.items() if name not in environ}
    resolved: dict[str, str] = asyncio.run(resolve_variables(wanted))
    missing = sorted(name for name, value in resolved.items() if not value and wanted[name])
    if missing:
        raise ServeError(
            f"{', '.join(missing)}: the Prefect Variables they name do not exist; run "
            "deployments/credentials.py, or set them in this process's environment"
        )
    return resolved


def pool_conflicts(deployments: Iterable[RunnerDeployment]) -> list[str]:
    """Deployments of the same name that a work pool already serves: serving them here too
    would keep their pool, so both its workers and this process would take their runs."""
    conflicts = []
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            if existing.work_pool_name:
                conflicts.append(f"{name} (work pool {existing.work_pool_name!r})")
    return conflicts


def _refuse_pool_deployments(deployments: Iterable[RunnerDeployment]) -> None:
    conflicts = pool_conflicts(deployments)
    if conflicts:
        raise ServeError(
            f"already deployed to a work pool: {', '.join(conflicts)}. Delete them first "
            "(prefect deployment delete <flow>/<name>) or stop using serve.py for them"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python deployments/serve.py",
        description="Serve the deployments of deployments/prefect.yaml from this process.",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="serve only these deployments (by name)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help="flow runs at once in this process (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not PREFECT_API_URL.value():
        sys.stderr.write(
            "serve: PREFECT_API_URL is not set: without it the deployments would live in a "
            "temporary private server and vanish with this process\n"
        )
        return 2
    specs = [s for s in read_deployments() if not args.only or s["name"] in args.only]
    if not specs:
        sys.stderr.write(f"serve: no deployment to serve in {PREFECT_YAML} (--only {args.only})\n")
        return 2
    os.chdir(PROJECT_ROOT)  # entry points (and the runs' imports) are relative to the root
    try:
        os.environ.update(resolve_env(shared_env(specs), os.environ))
        deployments = [runner_deployment(spec) for spec in specs]
        _refuse_pool_deployments(deployments)
    except ServeError as error:
        sys.stderr.write(f"serve: {error}\n")
        return 2
    serve(*deployments, limit=args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
