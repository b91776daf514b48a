"""What the run page shows, read back through the Prefect API: a refusal's state message and
log, a successful run's phase lines, request ids and task run names, and the run's name.

Runs go the way a worker runs a deployment's run: the flow run is created first (with the
name typed into the UI's form, if any), then the engine runs it with its error logger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from prefect import Task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, Log, StateType
from prefect.flow_engine import run_flow
from prefect.logging.loggers import flow_run_logger

from imagehop import errors
from imagehop.flows.transfer_image import transfer_image
from imagehop.procedure import TransferRequest, TransferResult
from imagehop.tasks import checks, cleanup, copy, source, target
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import new_image, request_for
from tests.flows.run_record import run_record

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


@dataclass
class Run:
    """A finished flow run as the API holds it, its logs and what the engine returned."""

    flow_run: FlowRun
    logs: list[Log]
    task_runs: list[str]
    outcome: object

    def messages(self, level: int = 0) -> list[str]:
        return [log.message for log in self.logs if log.level >= level]


def _run_as_deployed(request: TransferRequest, name: str | None = None) -> Run:
    parameters: dict[str, Any] = {"request": request.model_dump(mode="json")}
    with get_client(sync_client=True) as client:
        made = client.create_flow_run(transfer_image, name=name, parameters=parameters)
    outcome: object
    try:
        outcome = run_flow(transfer_image, flow_run=made, error_logger=flow_run_logger(made))
    except Exception as error:  # what the worker's engine process would end with
        outcome = error
    record = run_record(made.id)
    return Run(record.flow_run, record.logs, [t.name for t in record.task_runs], outcome)


def test_a_refusal_is_one_line_and_the_state_message_without_a_traceback(
    on_cloud: LocalCloud,
) -> None:
    request = TransferRequest(
        source_region="DFW", target_region="ORD", source={"image_id": new_image(on_cloud)}
    )

    refused = _run_as_deployed(request)

    assert isinstance(refused.outcome, errors.UnknownRegionError)  # a caller still gets it
    reason = str(refused.outcome)
    assert "\n" not in reason and "regions that do: DFW, IAD" in reason
    state = refused.flow_run.state
    assert state is not None and state.type == StateType.FAILED
    assert state.message == reason
    assert not [m for m in refused.messages() if "Traceback" in m or "Engine execution" in m]
    assert [m for m in refused.messages(level=40)] == [f"refused, nothing was created: {reason}"]


def test_a_successful_run_logs_phases_request_ids_and_readable_task_names(
    on_cloud: LocalCloud,
) -> None:
    done = _run_as_deployed(request_for(new_image(on_cloud)), name="ticket-4711 rebuild")

    assert isinstance(done.outcome, TransferResult)
    assert done.flow_run.name == "ticket-4711 rebuild"  # the name given in the form is kept
    messages = done.messages()
    for phase in [p.name for p in done.outcome.phases]:
        assert sum(m.startswith(f"phase {phase} started") for m in messages) == 1, phase
        assert sum(m.startswith(f"phase {phase} finished in") for m in messages) == 1, phase
    created = [m for m in messages if m.startswith("POST ") and re.search(r"/tasks -> 20\d", m)]
    assert len(created) == 2, messages  # the export task and the import task
    assert all(re.search(r"request id req-[0-9a-f-]{36}$", m) for m in created), created
    for started in ("export task", "import task"):  # once, not by the task and its step
        assert len([m for m in messages if m.startswith(started) and "started" in m]) == 1
    assert done.task_runs and not [n for n in done.task_runs if _has_a_random_suffix(n)]
    assert "preflight-DFW-to-IAD" in done.task_runs


def test_a_run_without_a_given_name_says_what_moves_where(on_cloud: LocalCloud) -> None:
    """Names Prefect made up: the server's (adjective-animal) and the UI form's suggestion."""
    image_id = new_image(on_cloud)
    for made_up in ("crimson-otter", "pi870-canis-majoris-nebula", "alpha-ceti", "Sleek-Tuna"):
        done = _run_as_deployed(request_for(image_id, dry_run=True), name=made_up)

        assert done.flow_run.name == f"DFW-to-IAD-image-{image_id[:8]}", made_up


def _task_names() -> set[str]:
    modules = (checks, cleanup, copy, source, target)
    return {v.name for m in modules for v in vars(m).values() if isinstance(v, Task)}


def _has_a_random_suffix(name: str) -> bool:
    """Prefect's default task run name: the task's name, a dash, 3 characters of a key."""
    return any(re.fullmatch(rf"{re.escape(task)}-[0-9a-f]{{1,3}}", name) for task in _task_names())
