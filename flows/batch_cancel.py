"""Cancelling a ``transfer-images`` run cancels the image runs it started.

An operator cancels a batch in the UI or with ``prefect flow-run cancel``: the batch's run goes
to *Cancelling*, and the worker (or ``serve.py``) running it stops its process with SIGTERM and
marks it *Cancelled* (Prefect 3.9: the runner's ``CancellationManager``; the SIGTERM reaches
the flow's code as ``TerminationSignal``). Prefect itself does not stop the runs the batch
started at once: its server's cancellation clean-up service gets to deployment subflows only
once the batch is *Cancelled*, on a later pass of its loop (every 20 s; measured once here: 27
and 47 s after the batch was *Cancelled*, itself 33 s after the cancel), and not at all when
that service is off. So the batch, told to stop, does it itself
(``transfer_images``), before its process exits:

* every run it started that has not finished gets the state an operator's cancel gives it,
  *Cancelling* (:func:`cancel_started_runs`): the worker running a deployment run stops it
  the normal way (SIGTERM; the run's steps unwind, which releases the global-concurrency slots
  they hold; its ``on_cancellation`` hooks run) and marks it *Cancelled*; a run no worker has
  taken yet goes straight to *Cancelled* (the server's rule for a Scheduled run without
  infrastructure);
* its in-process subflows (``run_as: subflows``) then stop at their next wait or chunk
  (:func:`imagehop.tasks.cloud.stop`) and end *Cancelled* themselves;
* finished runs are not touched, nor any run but the batch's own: the runs linked to the batch
  as its subflows (Prefect's parent link) or carrying an idempotency key the batch gave
  (``<batch run id>-<image>``).

Each cancelled run is one plain line in the batch's log. What the batch could not do (its
process was killed first, a subflow did not stop in time) the flow's ``on_cancellation`` hook
(:func:`cancel_image_runs`) does once Prefect has stopped the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterIdempotencyKey,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import FlowRun, State
from prefect.flows import Flow
from prefect.logging.loggers import flow_run_logger
from prefect.states import Cancelled, Cancelling
from pydantic import ValidationError

from imagehop.procedure.request import TransferRequest

PAGE = 200
#: A run whose batch was cancelled: the message its Cancelling/Cancelled state carries.
REASON = "the batch {batch} was cancelled"

Logger = logging.Logger | logging.LoggerAdapter[Any]


def idempotency_key(batch_run_id: UUID | str, request: TransferRequest) -> str:
    """The key the batch gives an image's deployment run: a re-run of the batch finds it."""
    return f"{batch_run_id}-{request.source_ref}"


@dataclass
class CancelReport:
    """What cancelling a batch's image runs did, run by run."""

    cancelled: list[FlowRun] = field(default_factory=list)  # asked to stop by this call
    stopping: list[FlowRun] = field(default_factory=list)  # already Cancelling before it
    finished: list[FlowRun] = field(default_factory=list)  # final: left as they were

    def runs(self) -> list[FlowRun]:
        return [*self.cancelled, *self.stopping, *self.finished]


def batch_is_cancelled(batch_run_id: UUID) -> bool:
    """Whether the batch's own run is being cancelled (Cancelling) or was (Cancelled): what
    tells a cancel from other ends of its process (a crash, Ctrl-C, a lost worker)."""
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(batch_run_id).state
    return state is not None and (state.is_cancelling() or state.is_cancelled())


def cancel_started_runs(
    batch_run_id: UUID,
    keys: Iterable[str],
    logger: Logger,
    process_gone: bool = False,
) -> CancelReport:
    """Cancel every run the batch started that has not finished, and log each one.

    Args:
        keys: the idempotency keys the batch gave (its deployment runs are found by their
            parent link as well).
        process_gone: the batch's process has stopped, so its in-process subflows are
            *Cancelled* outright (before that they are marked *Cancelling*: they stop with
            the process).
    """
    report = CancelReport()
    reason = REASON.format(batch=batch_run_id)
    with get_client(sync_client=True) as client:
        for run in started_runs(client, batch_run_id, keys):
            state = run.state
            if state is None or state.is_final():
                report.finished.append(run)
            elif state.is_cancelling() and not (process_gone and run.deployment_id is None):
                report.stopping.append(run)
            else:
                final = process_gone and run.deployment_id is None
                proposed: State = Cancelled(message=reason) if final else Cancelling(message=reason)
                answer = client.set_flow_run_state(run.id, proposed)
                now = answer.state
                if now is not None and (now.is_cancelling() or now.is_cancelled()):
                    # accepted, or the server chose Cancelled itself (a run no worker
                    # picked up yet has no process to stop)
                    report.cancelled.append(run)
                    logger.info(
                        "cancelled image run %s (flow run %s): it was %s, now %s",
                        run.name,
                        run.id,
                        state.name,
                        now.name,
                    )
                else:  # it finished meanwhile, or the server refused
                    report.finished.append(run)
                    logger.info(
                        "image run %s (flow run %s) was not cancelled: %s",
                        run.name,
                        run.id,
                        getattr(answer.details, "reason", None) or answer.status.value,
                    )
    _log_summary(report, logger)
    return report


def started_runs(
    client: SyncPrefectClient, batch_run_id: UUID, keys: Iterable[str]
) -> list[FlowRun]:
    """The flow runs the batch started: its subflows (parent link) and the runs with one of
    its idempotency keys, each once, oldest first."""
    prefix = f"{batch_run_id}-"
    by_key = [key for key in keys if key.startswith(prefix)]  # never another batch's runs
    filters = [FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[batch_run_id]))]
    if by_key:
        filters.append(FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=by_key)))
    found: dict[UUID, FlowRun] = {}
    for flow_run_filter in filters:
        for run in _all_pages(client, flow_run_filter):
            if run.id != batch_run_id:
                found.setdefault(run.id, run)
    return sorted(found.values(), key=lambda run: (str(run.created), str(run.id)))


def source_of(run: FlowRun) -> str | None:
    """The image (or server) a ``transfer-image`` run moves, from its parameters."""
    try:
        return TransferRequest.model_validate(run.parameters.get("request")).source_ref
    except (ValidationError, TypeError, ValueError):
        return None


def cancel_image_runs(flow: Flow[Any, Any], flow_run: FlowRun, state: State) -> None:
    """``on_cancellation`` hook of ``transfer-images``: once Prefect has stopped the batch's
    process, cancel what it started that is still going (the batch itself did so when it
    could; this pass finds the rest: runs it could not reach, its in-process subflows)."""
    logger = flow_run_logger(flow_run, flow)
    try:
        cancel_started_runs(flow_run.id, (), logger, process_gone=True)
    except Exception as error:  # a hook's failure must not hide the cancel itself
        logger.error(
            "the batch was cancelled, but cancelling the image runs it started failed: %s; "
            "cancel them in the UI (they are listed under the batch)",
            error,
        )


def _all_pages(client: SyncPrefectClient, flow_run_filter: FlowRunFilter) -> list[FlowRun]:
    runs: list[FlowRun] = []
    while True:
        page = client.read_flow_runs(flow_run_filter=flow_run_filter, limit=PAGE, offset=len(runs))
        runs += page
        if len(page) < PAGE:
            return runs


def _log_summary(report: CancelReport, logger: Logger) -> None:
    """One line for the whole cancel, when it cancelled anything."""
    if not report.cancelled:
        return
    parts = [f"cancelled {len(report.cancelled)} image run(s) it started that had not finished"]
    if report.stopping:
        parts.append(f"{len(report.stopping)} already being cancelled")
    if report.finished:
        parts.append(f"{len(report.finished)} finished before and left as they were")
    logger.info("the batch was cancelled: %s", "; ".join(parts))
