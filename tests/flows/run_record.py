"""What the Prefect API holds of one flow run, as its run page shows it: the run, its log lines
and its task runs (read after every log line has reached the API)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, Log, TaskRun
from prefect.logging.handlers import APILogWorker


@dataclass
class RunRecord:
    flow_run: FlowRun
    logs: list[Log]
    task_runs: list[TaskRun]

    def messages(self, level: int = 0) -> list[str]:
        return [log.message for log in self.logs if log.level >= level]

    def task_states(self) -> list[tuple[str, str | None]]:
        """(task run name, state name) of every task run, e.g. ("import-IAD", "Cached")."""
        return [(run.name, run.state_name) for run in self.task_runs]


def run_record(flow_run_id: UUID | None) -> RunRecord:
    assert flow_run_id is not None, "a state without a flow run"
    APILogWorker.drain_all(timeout=10)  # every log line is in the API
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return RunRecord(flow_run, logs, task_runs)
