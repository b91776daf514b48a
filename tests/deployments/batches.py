"""Batches on a real server: the weekly deployment run with given images, its image runs, its
table; and deployments/limits.py as the README runs it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tests.deployments.conftest import Operator
from tests.deployments.expected import WEEKLY
from tests.deployments.processes import PYTHON, Api, output_of, run, wait_for

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def run_limits(operator: Operator, *arguments: str) -> list[str]:
    """``python deployments/limits.py ...``; its output lines."""
    result = run([PYTHON, "deployments/limits.py", *arguments], operator.env("limits"))
    assert result.returncode == 0, output_of(result)
    return result.stdout.splitlines()


def global_limits(api: Api) -> dict[str, int]:
    """name -> limit of imagehop's global concurrency limits on the server (not the ones
    Prefect keeps for deployments' concurrency limits)."""
    limits = api.call("POST", "/v2/concurrency_limits/filter", {"limit": 200})
    return {
        limit["name"]: limit["limit"] for limit in limits if limit["name"].startswith("imagehop-")
    }


def start_weekly_batch(api: Api, image_ids: Sequence[str], **fields: Any) -> str:
    """A run of the weekly batch deployment for these images (fan-out as the YAML sets it)."""
    deployment = api.deployments()[WEEKLY]
    batch = {**deployment["parameters"]["batch"], "image_ids": list(image_ids), **fields}
    batch.pop("image_filter", None)
    flow_run = api.call(
        "POST", f"/deployments/{deployment['id']}/create_flow_run", {"parameters": {"batch": batch}}
    )
    return str(flow_run["id"])


def wait_final(api: Api, flow_run_id: str, timeout: float) -> dict[str, Any]:
    """The flow run once it is in a final state (AssertionError after ``timeout``)."""
    return dict(
        wait_for(
            f"flow run {flow_run_id} final",
            lambda: (run := api.flow_run(flow_run_id))["state_type"] in FINAL and run,
            timeout,
            interval=2.0,
        )
    )


def image_runs(api: Api, batch_run_id: str) -> list[dict[str, Any]]:
    """The flow runs the batch started (its subflows), oldest first."""
    body = {"flow_runs": {"parent_flow_run_id": {"any_": [batch_run_id]}}, "sort": "START_TIME_ASC"}
    runs: list[dict[str, Any]] = api.call("POST", "/flow_runs/filter", body)
    return runs


def batch_table(api: Api, batch_run_id: str) -> list[dict[str, str]]:
    """The rows of the batch's table artifact."""
    body = {"artifacts": {"flow_run_id": {"any_": [batch_run_id]}, "type": {"any_": ["table"]}}}
    artifacts = api.call("POST", "/artifacts/filter", body)
    assert artifacts, f"no table artifact on batch run {batch_run_id}"
    data = artifacts[-1]["data"]
    rows: list[dict[str, str]] = json.loads(data) if isinstance(data, str) else data
    return rows


def limit_acquisitions(api: Api) -> dict[str, int]:
    """How often each imagehop limit was acquired, from Prefect's own events
    (``prefect.concurrency-limit.acquired``, one per slot taken; at most 20 pages of 50)."""
    body = {"filter": {"event": {"name": ["prefect.concurrency-limit.acquired"]}}, "limit": 50}
    page = api.call("POST", "/events/filter", body)
    events = list(page["events"])
    for _ in range(20):
        if not page.get("next_page"):
            break
        response = api.http.get(page["next_page"], timeout=30)
        response.raise_for_status()
        page = response.json()
        events += page["events"]
    counts: dict[str, int] = {}
    for event in events:
        name = event["resource"].get("prefect.resource.name", "")
        if name.startswith("imagehop-"):
            counts[name] = counts.get(name, 0) + 1
    return counts
