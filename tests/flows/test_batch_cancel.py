"""Which runs a cancelled batch cancels (imagehop.flows.batch_cancel), on the flow tests' own
Prefect server: its unfinished runs only, found by their parent link or its idempotency keys;
never a finished run, never another batch's or anyone else's run.

The runs are made with Prefect's client as a batch makes them (a task run of the batch as
each child's parent; ``<batch run id>-<image>`` idempotency keys), with no process behind
them: what a worker does with a Cancelling run is the deployment tests' part
(tests/deployments/test_batch_cancel.py).
"""

from __future__ import annotations

import logging
from uuid import UUID, uuid4

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.states import Completed, Running, Scheduled, State
from prefect.tasks import Task

from imagehop.flows.batch_cancel import cancel_started_runs, started_runs

pytestmark = [pytest.mark.flow]


@flow(name="batch-cancel-probe")
def probe() -> None:
    """Only its name: the runs below are made through the API, never run."""


def _run(
    client: SyncPrefectClient,
    state: State,
    parent: UUID | None = None,
    deployment: UUID | None = None,
    key: str | None = None,
) -> FlowRun:
    """A flow run in ``state`` (of ``deployment``, with idempotency key ``key``, if given), a
    subflow of ``parent`` if given (through a task run of it, as
    ``run_deployment(..., as_subflow=True)`` links one)."""
    link = None
    if parent is not None:
        task = Task(name="link", fn=lambda: None)
        link = client.create_task_run(task, parent, dynamic_key=str(uuid4())).id
    if deployment is None:
        run = client.create_flow_run(probe, state=Scheduled(), parent_task_run_id=link)
    else:
        run = client.create_flow_run_from_deployment(
            deployment, state=Scheduled(), parent_task_run_id=link, idempotency_key=key
        )
    if not state.is_scheduled():
        client.set_flow_run_state(run.id, state, force=True)
    return client.read_flow_run(run.id)


def test_only_the_batchs_unfinished_runs_are_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.batch_cancel")
    with get_client(sync_client=True) as client:
        deployment = client.create_deployment(client.create_flow(probe), f"probe-{uuid4()}")
        batch, other_batch = _run(client, Running()), _run(client, Running())
        key = f"{batch.id}-img-1"
        subflow = _run(client, Running(), parent=batch.id)  # in the batch's own process
        done = _run(client, Completed(), parent=batch.id, deployment=deployment)
        working = _run(client, Running(), parent=batch.id, deployment=deployment)
        queued = _run(client, Scheduled(), deployment=deployment, key=key)  # by its key only
        others = [
            _run(client, Running(), parent=other_batch.id),
            _run(client, Running(), deployment=deployment, key="someone-else"),
            _run(client, Scheduled(), deployment=deployment, key=f"{other_batch.id}-img-1"),
        ]
        keys = [key, "someone-else", f"{other_batch.id}-img-1"]  # only the batch's own count
        mine = [subflow, done, working, queued]

        found = {run.id for run in started_runs(client, batch.id, keys)}
        with caplog.at_level(logging.INFO, logger="test.batch_cancel"):
            report = cancel_started_runs(batch.id, keys, logger)
        after = {run.id: client.read_flow_run(run.id).state for run in mine}
        untouched = [client.read_flow_run(run.id).state for run in [batch, *others]]
        # the flow's on_cancellation hook, once the batch's process is gone
        again = cancel_started_runs(batch.id, (), logger, process_gone=True)
        at_last = {run.id: client.read_flow_run(run.id).state for run in mine}

    assert found == {run.id for run in mine}  # not the other batch's, not someone else's
    assert {run.id for run in report.cancelled} == {subflow.id, working.id, queued.id}
    assert [run.id for run in report.finished] == [done.id]
    assert _type(after[subflow.id]) == _type(after[working.id]) == "CANCELLING"
    assert _type(after[queued.id]) == "CANCELLED"  # no worker took it: no process to stop
    assert _type(after[done.id]) == "COMPLETED"
    assert [_type(state) for state in untouched] == ["RUNNING", "RUNNING", "RUNNING", "SCHEDULED"]
    line = f"cancelled image run {working.name} (flow run {working.id}): it was Running, now"
    assert f"{line} Cancelling" in caplog.text
    summary = "the batch was cancelled: cancelled 3 image run(s) it started that had not finished"
    assert f"{summary}; 1 finished before and left as they were" in caplog.text
    # the in-process subflow is Cancelled outright; the deployment run is its worker's to end
    assert [run.id for run in again.cancelled] == [subflow.id]
    assert [run.id for run in again.stopping] == [working.id]
    assert _type(at_last[subflow.id]) == "CANCELLED"
    assert _type(at_last[working.id]) == "CANCELLING"


def _type(state: State | None) -> str:
    return state.type.value if state is not None else "none"
