"""What deployments/prefect.yaml asks for, to compare with what the Prefect server holds."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deployments.processes import PREFECT_YAML

ADHOC = "transfer-image/adhoc"
NIGHTLY = "replicate-server/nightly-dr"
WEEKLY = "transfer-images/weekly-dr-batch"
FLOW_OF_ENTRYPOINT = {
    "imagehop.flows.transfer_image:transfer_image": "transfer-image",
    "imagehop.flows.transfer_images:transfer_images": "transfer-images",
    "imagehop.flows.replicate_server:replicate_server": "replicate-server",
}


def prefect_yaml() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    return document


def yaml_deployments() -> dict[str, dict[str, Any]]:
    """The YAML's deployments by ``<flow name>/<deployment name>``."""
    return {
        f"{FLOW_OF_ENTRYPOINT[spec['entrypoint']]}/{spec['name']}": spec
        for spec in prefect_yaml()["deployments"]
    }


def schedules(deployment: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(cron, timezone, active) of each schedule the server holds."""
    return [
        (s["schedule"]["cron"], s["schedule"]["timezone"], s["active"])
        for s in deployment["schedules"]
    ]


def concurrency(deployment: dict[str, Any]) -> tuple[int, str] | None:
    """(limit, collision strategy) the server enforces, or None."""
    limit = deployment.get("global_concurrency_limit")
    if limit is None:
        return None
    return limit["limit"], deployment["concurrency_options"]["collision_strategy"]


def mismatches(held: dict[str, dict[str, Any]]) -> list[str]:
    """Where the server's deployments differ from prefect.yaml (schedules, limits, tags ...)."""
    problems = []
    for name, spec in yaml_deployments().items():
        deployment = held.get(name)
        if deployment is None:
            problems.append(f"{name}: not deployed")
            continue
        wanted_schedules = [
            (s["cron"], s.get("timezone", "UTC"), s.get("active", True))
            for s in spec.get("schedules") or []
        ]
        limit = spec.get("concurrency_limit")
        wanted = {
            "entrypoint": spec["entrypoint"],
            "description": " ".join(spec["description"].split()),
            "tags": sorted(spec["tags"]),
            "parameters": spec["parameters"],
            "schedules": wanted_schedules,
            "concurrency": (limit["limit"], limit["collision_strategy"]) if limit else None,
        }
        actual = {
            "entrypoint": deployment["entrypoint"],
            "description": " ".join((deployment["description"] or "").split()),
            "tags": sorted(deployment["tags"]),
            "parameters": deployment["parameters"],
            "schedules": schedules(deployment),
            "concurrency": concurrency(deployment),
        }
        problems += [
            f"{name} {key}: {actual[key]!r} != {wanted[key]!r}"
            for key in wanted
            if actual[key] != wanted[key]
        ]
    return problems
