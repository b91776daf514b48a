"""deployments/serve.py: the same deployments served from one process, no pool, no worker.

The served run is a dry run (pre-flight and plan only): what is tested here is that serve.py
registers the YAML's deployments, runs one with the credentials from the Secret block, and
pauses them when it stops. The full transfer through a deployment is test_process_pool.py's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deployments.conftest import POOL, Operator
from tests.deployments.expected import mismatches, yaml_deployments
from tests.deployments.processes import (
    PROJECT_ROOT,
    PYTHON,
    Background,
    json_output,
    run,
    wait_for,
)
from tests.flows.helpers import new_image

pytestmark = [pytest.mark.cloud, pytest.mark.deployment]

SERVE = [PYTHON, str(PROJECT_ROOT / "deployments" / "serve.py")]


@pytest.fixture(scope="module")
def pool_deployed(operator: Operator) -> Operator:
    """The YAML's deployments on the process pool, as after the worker journey (which
    test_process_pool.py, collected first, leaves behind; deployed here when run alone)."""
    held = operator.api.deployments()
    if set(held) != set(yaml_deployments()) or any(
        d["work_pool_name"] != POOL for d in held.values()
    ):
        operator.deploy()
    return operator


def test_serve_takes_over_only_after_the_pool_deployments_are_deleted(
    pool_deployed: Operator,
) -> None:
    operator = pool_deployed
    api = operator.api
    env = operator.env("serve", PREFECT_RUNNER_POLL_FREQUENCY="1")

    refused = run(SERVE, env)
    assert refused.returncode == 2
    assert "work pool 'imagehop'" in refused.stderr
    assert all(d["work_pool_name"] == "imagehop" for d in api.deployments().values())

    for deployment in api.deployments().values():
        api.delete_deployment(deployment["id"])
    folder = operator.workdir / "serve"
    folder.mkdir()  # serve.py goes to the project root itself
    log = folder / "serve.log"
    serving = Background.start("serve.py", [*SERVE, "--limit", "1"], env, log, folder)
    try:
        held = wait_for("served deployments", lambda: _served(operator), 120)
        assert not mismatches(held), mismatches(held)
        image_id = new_image(operator.cloud)
        command = [PYTHON, "-m", "deployments.embed", "--source-region", "DFW"]
        command += ["--target-region", "IAD", "--image-id", image_id, "--dry-run"]
        command += ["--poll-interval", "1", "--timeout", "120"]
        report = json_output(run(command, operator.env("embed"), timeout=180))
        serving.wait_for_its_runs(timeout=60)
    finally:
        stopped = serving.stop()
        print("\n".join(stopped))
    left = serving.leftovers()
    assert not left, f"serve.py processes left behind: {left}"

    assert report["result_type"] == "DryRunPlan"
    assert image_id in report["result"]["source"]
    flow_run = api.flow_run(report["flow_run_id"])
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["work_pool_name"] is None and "prefect.worker.name" not in flow_run["labels"]
    assert operator.cloud.main.api_key not in serving.output(last=1_000_000)
    assert all(d["paused"] for d in api.deployments().values())  # paused on the way out
    assert stopped == [stopped[0]] and "SIGTERM" in stopped[0]  # one SIGTERM was enough


def _served(operator: Operator) -> dict[str, dict[str, Any]] | None:
    held = operator.api.deployments()
    done = set(held) == set(yaml_deployments()) and all(
        d["work_pool_name"] is None for d in held.values()
    )
    return held if done else None
