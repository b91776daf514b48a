"""deployments/prefect.yaml deployed with `prefect deploy`, run by a real process worker.

The ad-hoc run transfers a real image of the local cloud DFW -> IAD; the weekly batch runs each
of its images as a run of the ad-hoc deployment (fan-out) under the global limits that
deployments/limits.py created. The worker's flow runs use
the real clock: the ad-hoc run's two task waits (export, import) cost one 30 s poll interval
each, and that floor stays. The batch's runs find their tasks done at the first poll (the
``instant_jobs`` fixture: the local cloud runs a task before answering its creation). What is
kept short is everything around the waits: the worker looks for work every second
(PREFECT_WORKER_QUERY_SECONDS=1) and the embedding client polls the run every second.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imagehop.procedure.request import DEFAULT_EXPORT_CONTAINER
from tests.deployments.batches import (
    batch_table,
    global_limits,
    image_runs,
    run_limits,
    start_weekly_batch,
    wait_final,
)
from tests.deployments.conftest import POOL, Operator, running_worker
from tests.deployments.expected import (
    ADHOC,
    NIGHTLY,
    WEEKLY,
    concurrency,
    mismatches,
    schedules,
)
from tests.deployments.processes import (
    PROJECT_ROOT,
    PYTHON,
    Background,
    json_output,
    run,
)
from tests.flows.helpers import new_image, objects

pytestmark = [pytest.mark.cloud, pytest.mark.deployment]

WORKER_NAME = "imagehop-test-worker"
RUN_TIMEOUT_SECONDS = 240


@dataclass
class Deployed:
    operator: Operator
    worker: Background
    worker_home: Path


@pytest.fixture(scope="module")
def deployed(operator: Operator) -> Iterator[Deployed]:
    """`prefect deploy --all` from the YAML, and a process worker polling the pool
    (:func:`running_worker`: code and settings must come from the deployment)."""
    with running_worker(operator, WORKER_NAME) as worker:
        operator.deploy()
        yield Deployed(operator, worker, Path(worker.home))


def test_prefect_yaml_deploys_schedules_limits_and_settings(deployed: Deployed) -> None:
    held = deployed.operator.api.deployments()

    assert not mismatches(held), mismatches(held)
    assert schedules(held[NIGHTLY]) == [("0 2 * * *", "UTC", False)]  # placeholder server id
    placeholder = {"server_id": "REPLACE-WITH-SERVER-ID"}
    assert held[NIGHTLY]["parameters"]["request"]["source"] == placeholder
    assert schedules(held[WEEKLY]) == [("0 3 * * 6", "UTC", True)]
    assert schedules(held[ADHOC]) == []
    assert concurrency(held[NIGHTLY]) == concurrency(held[WEEKLY]) == (1, "CANCEL_NEW")
    cloud = deployed.operator.cloud
    for deployment in held.values():
        assert deployment["work_pool_name"] == POOL
        assert deployment["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}
        ]
        env = deployment["job_variables"]["env"]
        assert env["IMAGEHOP_USERNAME"] == cloud.main.username  # from the Prefect Variable
        assert env["IMAGEHOP_IDENTITY_URL"] == cloud.identity_url
        assert env["IMAGEHOP_API_KEY_SECRET_BLOCK"] == "imagehop-api-key"
        assert cloud.main.api_key not in json.dumps(deployment)


def test_ui_form_documents_every_field_and_the_server_refuses_bad_requests(
    deployed: Deployed,
) -> None:
    api = deployed.operator.api
    held = api.deployments()
    for name, model in ((ADHOC, "TransferRequest"), (WEEKLY, "BatchRequest")):
        schema = held[name]["parameter_openapi_schema"]
        fields = schema["definitions"][model]["properties"]
        assert fields and all(spec.get("description") for spec in fields.values()), name
        assert held[name]["enforce_parameter_schema"]
    adhoc = held[ADHOC]["id"]
    request = {"source_region": "DFW", "target_region": "IAD", "image_id": "any"}
    for bad in ({**request, "api_key": "not-a-parameter"}, {**request, "concurrency": 0}):
        response = api.http.post(
            f"{api.url}/deployments/{adhoc}/create_flow_run",
            json={"parameters": {"request": bad}},
            timeout=30,
        )
        assert response.status_code == 409, response.text
        assert "Validation failed" in response.json()["detail"]


def test_adhoc_run_goes_through_the_worker_and_returns_a_typed_result(
    deployed: Deployed,
) -> None:
    operator = deployed.operator
    cloud = operator.cloud
    image_id = new_image(cloud)
    command = [PYTHON, "-m", "deployments.embed", "--source-region", "DFW"]
    command += ["--target-region", "IAD", "--image-id", image_id, "--poll-interval", "1"]
    command += ["--timeout", str(RUN_TIMEOUT_SECONDS)]

    report = json_output(run(command, operator.env("embed"), RUN_TIMEOUT_SECONDS + 60))

    assert report["result_type"] == "TransferResult"
    result = report["result"]
    assert result["source_image_id"] == image_id
    assert cloud.admin.image_content_md5(result["target_image_id"]) == (
        cloud.admin.image_content_md5(image_id)
    )
    assert result["bytes_copied"] == result["bytes_total"] > 0
    assert not objects(cloud, "DFW", DEFAULT_EXPORT_CONTAINER, image_id)  # cleaned up
    flow_run = operator.api.flow_run(report["flow_run_id"])
    assert flow_run["state_type"] == "COMPLETED"
    assert flow_run["work_pool_name"] == POOL
    assert flow_run["labels"]["prefect.worker.name"] == WORKER_NAME
    assert flow_run["infrastructure_pid"] not in (None, str(os.getpid()))
    assert report["flow_run_id"] in deployed.worker.output(last=1_000_000)
    _assert_no_secret_stored(operator, flow_run)
    assert _result_files(operator.results), "no result in the shared result storage"
    assert not (deployed.worker_home / "storage").exists()  # not in the worker's own home


def _assert_no_secret_stored(operator: Operator, flow_run: dict[str, Any]) -> None:
    """The API key is in the Secret block only: not in the run's parameters or job
    variables, not in any log line, not in any persisted result."""
    key = operator.cloud.main.api_key
    assert key not in json.dumps(flow_run["parameters"])
    assert key not in json.dumps(flow_run["job_variables"])
    logs = operator.api.all_logs()
    assert logs and not [log for log in logs if key in log["message"]]
    for path, content in _result_files(operator.results).items():
        assert key.encode() not in content, path


def _result_files(folder: Path) -> dict[Path, bytes]:
    """Every persisted result file: its bytes, plus its base64 payload decoded (a result
    record is JSON with a base64 pickle in ``result``; a bare payload is base64 alone)."""
    return {path: _with_payload(path.read_bytes()) for path in folder.rglob("*") if path.is_file()}


def _with_payload(content: bytes) -> bytes:
    try:
        payload = json.loads(content).get("result") or ""
    except (ValueError, AttributeError):
        payload = content
    try:
        return content + base64.b64decode(payload, validate=False)
    except ValueError:
        return content


def test_limits_script_creates_the_limits_once_and_changes_them_only_when_asked(
    deployed: Deployed,
) -> None:
    operator = deployed.operator
    regions = ["--region", "DFW", "--region", "IAD"]
    names = ["export-DFW", "export-IAD", "import-DFW", "import-IAD", "copy-DFW-IAD", "copy-IAD-DFW"]

    first = run_limits(operator, *regions, "--export", "1", "--import", "1", "--copy", "1")
    again = run_limits(operator, *regions, "--export", "1", "--import", "1", "--copy", "1")
    other = run_limits(operator, *regions, "--export", "3", "--import", "1", "--copy", "1")
    held_after_other = global_limits(operator.api)
    updated = run_limits(operator, "--region", "DFW", "--export", "2", "--update")

    assert first == [f"created   imagehop-{name} = 1" for name in names]
    assert again == [f"unchanged imagehop-{name} = 1" for name in names]
    assert other[0] == "kept      imagehop-export-DFW = 1 (asked 3; --update changes it)"
    assert held_after_other["imagehop-export-DFW"] == 1  # a batch others rely on keeps its cap
    assert updated == [
        "updated   imagehop-export-DFW = 2 (was 1)",
        "kept      imagehop-import-DFW = 1",  # not given: not changed
    ]
    assert global_limits(operator.api) == {
        **{f"imagehop-{name}": 1 for name in names},
        "imagehop-export-DFW": 2,
    }


def test_weekly_batch_runs_each_image_as_a_run_of_the_adhoc_deployment(
    deployed: Deployed, instant_jobs: None
) -> None:
    operator, cloud = deployed.operator, deployed.operator.cloud
    good = new_image(cloud, disk_bytes=1024 * 1024 + 11)
    licensed = cloud.admin.seed()["DFW"]["licensed_image"]

    batch_run = start_weekly_batch(operator.api, [good, licensed])
    batch = wait_final(operator.api, batch_run, 2 * RUN_TIMEOUT_SECONDS)

    assert batch["state_type"] == "COMPLETED"  # one image failing does not fail the batch
    runs = image_runs(operator.api, batch_run)
    adhoc = operator.api.deployments()[ADHOC]["id"]
    assert {r["deployment_id"] for r in runs} == {adhoc} and len(runs) == 2
    assert all(r["labels"]["prefect.worker.name"] == WORKER_NAME for r in runs)
    by_name = {r["name"]: r["state_type"] for r in runs}
    rows = {row["source"]: row for row in batch_table(operator.api, batch_run)}
    assert rows[good]["status"] == "succeeded" and by_name[rows[good]["flow run"]] == "COMPLETED"
    assert rows[licensed]["status"] == "failed" and by_name[rows[licensed]["flow run"]] == "FAILED"
    assert "cannot be exported" in rows[licensed]["message"]  # the run's own exception
    target = rows[good]["target image"]  # read back from the image run's persisted result
    assert cloud.admin.image_content_md5(target) == cloud.admin.image_content_md5(good)
