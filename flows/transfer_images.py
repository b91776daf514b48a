"""The ``transfer-images`` flow: many images, each its own ``transfer-image`` run.

Two ways to run the images (``BatchRequest.run_as``):

* ``subflows``: each image a subflow in this flow run's process (threads): one host does the
  whole batch. What the CLI uses.
* ``deployment-runs``: each image a flow run of the ``transfer-image`` deployment
  (``run_deployment``, linked to the batch as a subflow): the pool's workers share the batch.
  Each run's result comes back through the result storage the deployment writes to.

Either way at most ``max_parallel_transfers`` images move at once (a new one starts when one
ends), and the exports, imports and copies hold slots of the global concurrency limits
(:mod:`imagehop.tasks.limits`) shared by every worker and batch. One image failing does not
stop the others: each image's outcome, with its flow run, is recorded, listed in a table
artifact and returned.

Cancelling the batch (UI, ``prefect flow-run cancel``) cancels the image runs it started that
have not finished (:mod:`imagehop.flows.batch_cancel`); its table then lists them as
cancelled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import cast
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound, TerminationSignal
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run as current_flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from imagehop.errors import ConfigurationError
from imagehop.flows.batch_cancel import (
    REASON,
    CancelReport,
    batch_is_cancelled,
    cancel_image_runs,
    cancel_started_runs,
    idempotency_key,
    source_of,
)
from imagehop.flows.transfer_image import run_name, transfer_image
from imagehop.procedure.request import BatchRequest, TransferRequest, slug
from imagehop.procedure.result import BatchResult, ImageOutcome, Outcome, TransferResult
from imagehop.tasks import cloud
from imagehop.tasks.checks import list_source_images

MAX_WORKERS = 32  # the batch's own cap (max_parallel_transfers) is lower
#: How often a batch asks the API whether an image's deployment run has finished.
POLL_SECONDS = 5.0

CANCELLED_WITH_THE_BATCH = "the batch was cancelled, and so was this image's run"


@task(
    name="transfer-one-image",
    task_run_name="transfer-{request.image_id}",
    cache_policy=NO_CACHE,
    retries=0,  # the transfer's own steps retry; a failed image is an outcome, not an error
)
def transfer_one(request: TransferRequest) -> ImageOutcome:
    """Run ``transfer-image`` as a subflow for one image and record how it ended (never
    raises for it)."""
    began = time.perf_counter()
    state = transfer_image(request, return_state=True)
    run_id = state.state_details.flow_run_id
    return _outcome(request, state, time.perf_counter() - began, run_id, _run_name_of(run_id))


@task(
    name="run-one-image",
    task_run_name="run-{request.image_id}",
    cache_policy=NO_CACHE,
    retries=0,
)
def run_one(request: TransferRequest, deployment: str, timeout: float) -> ImageOutcome:
    """Run one image as a flow run of ``deployment`` (any worker of its pool), wait for its
    end (at most ``timeout`` s, or until the batch is being cancelled) and record how it
    ended (never raises for it). The batch's run id and the image make the idempotency key:
    a re-run of the batch finds the image's run instead of starting a second one."""
    began = time.perf_counter()
    batch_run = UUID(str(current_flow_run.id))
    try:
        flow_run = cast(
            FlowRun,  # a sync call returns the flow run, not a coroutine
            run_deployment(
                deployment,
                parameters={"request": request.model_dump(mode="json", exclude_unset=True)},
                timeout=0,  # started; waited for below
                idempotency_key=idempotency_key(batch_run, request),
                as_subflow=True,
            ),
        )
    except Exception as error:  # e.g. the server refused the run: this image's outcome
        message = f"no run of {deployment} started: {error}"
        return ImageOutcome(source=request.source_ref, status="failed", message=message)
    stop = cloud.stopping()  # set when the batch is cancelled
    flow_run = _wait_for_end(flow_run, timeout, stop)
    seconds = time.perf_counter() - began
    state = flow_run.state
    run_id, run_name = str(flow_run.id), flow_run.name
    if (state is None or not state.is_final()) and stop.is_set():
        return ImageOutcome(
            source=request.source_ref, status="cancelled", seconds=seconds,
            message=CANCELLED_WITH_THE_BATCH, flow_run_id=run_id, flow_run_name=run_name,
        )  # fmt: skip
    if state is None or not state.is_final():
        where = state.name if state else "not started"
        return ImageOutcome(
            source=request.source_ref, status="failed", seconds=seconds,
            message=f"still {where} after {timeout:.0f} s (the run goes on)",
            flow_run_id=run_id, flow_run_name=run_name,
        )  # fmt: skip
    return _outcome(request, state, seconds, flow_run.id, flow_run.name)


def _wait_for_end(flow_run: FlowRun, timeout: float, stop: threading.Event) -> FlowRun:
    """The run once final, or as it is after ``timeout`` s or when ``stop`` is set."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run.id)
            if flow_run.state is not None and flow_run.state.is_final():
                return flow_run
            left = deadline - time.monotonic()
            if left <= 0 or stop.wait(min(POLL_SECONDS, left)):
                return flow_run


def _outcome(
    request: TransferRequest,
    state: State,
    seconds: float,
    run_id: UUID | None,
    run_name: str | None,
) -> ImageOutcome:
    """How one image's run ended: its result, or why it failed."""
    value = _result_of(state)
    source = request.image_id or request.source_ref
    run = {"flow_run_id": str(run_id) if run_id else None, "flow_run_name": run_name}
    if isinstance(value, TransferResult):
        return ImageOutcome(
            source=source, status="succeeded", target_image_id=value.target_image_id,
            seconds=seconds, **run,
        )  # fmt: skip
    if state.is_cancelled():
        message = f"its run was cancelled: {state.message}" if state.message else "cancelled"
        return ImageOutcome(source=source, status="cancelled", message=message, seconds=seconds,
                            **run)  # fmt: skip
    message = str(value) if isinstance(value, BaseException) else f"ended {state.name}"
    return ImageOutcome(source=source, status="failed", message=message, seconds=seconds, **run)


def _result_of(state: State) -> object:
    """The run's return value or exception; for a run whose result cannot be read (e.g. the
    result storage is not shared with this process), the error saying so."""
    try:
        return state.result(raise_on_failure=False)
    except Exception as error:  # the image's outcome, not the batch's
        return RuntimeError(f"{state.name}: {state.message or ''} (result not readable: {error})")


def _run_name_of(run_id: UUID | None) -> str | None:
    if run_id is None:
        return None
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).name


_run_name = run_name(
    "batch",
    BatchRequest,
    lambda batch: f"{batch.source_region}-to-{batch.target_region}-batch",
    "transfer-images",
)


@flow(
    name="transfer-images",
    flow_run_name=_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_WORKERS),
    persist_result=True,
    on_cancellation=[cancel_image_runs],  # what the batch could not cancel itself
)
def transfer_images(batch: BatchRequest) -> BatchResult:
    """Transfer every image of the batch; returns one outcome per image, in order."""
    if batch.run_as == "deployment-runs":
        _check_deployment(batch.deployment)
    image_ids = list(batch.image_ids) or list_source_images(
        batch.source_region, batch.image_filter, clouds=batch.clouds
    )
    get_run_logger().info("%d image(s) to transfer (%s)", len(image_ids), batch.run_as)
    requests = [batch.request_for(i) for i in image_ids]
    submitted: list[PrefectFuture[ImageOutcome]] = []
    try:
        outcomes = _run_windowed(requests, batch, submitted)
    except TerminationSignal:  # SIGTERM: how a worker or serve.py stops a cancelled run
        _if_cancelled(batch, requests, submitted)
        raise
    result = BatchResult(
        source_region=batch.source_region, target_region=batch.target_region, outcomes=outcomes
    )
    _report(result)
    return result


def _run_windowed(
    requests: list[TransferRequest],
    batch: BatchRequest,
    submitted: list[PrefectFuture[ImageOutcome]],
) -> tuple[ImageOutcome, ...]:
    """Submit the transfers, never more than ``max_parallel_transfers`` at once (each
    future also goes to ``submitted``, in request order)."""
    running: list[PrefectFuture[ImageOutcome]] = []
    for request in requests:
        if len(running) >= batch.max_parallel_transfers:
            running.remove(next(as_completed(running)))
        future = (
            run_one.submit(request, batch.deployment, batch.image_timeout_seconds)
            if batch.run_as == "deployment-runs"
            else transfer_one.submit(request)
        )
        running.append(future)
        submitted.append(future)
    return tuple(future.result() for future in submitted)


def _if_cancelled(
    batch: BatchRequest,
    requests: Sequence[TransferRequest],
    submitted: Sequence[PrefectFuture[ImageOutcome]],
) -> None:
    """If the batch's run is being cancelled: cancel the image runs it started that have not
    finished, write its table (those runs cancelled), and stop this process's transfers
    (:func:`imagehop.tasks.cloud.stop`: subflows end Cancelled at their next wait or chunk,
    the waits for deployment runs end). A SIGTERM for any other reason (a worker shut down,
    a crash) leaves its image runs alone: a re-run of the batch finds them."""
    logger = get_run_logger()
    batch_run = UUID(str(current_flow_run.id))
    try:
        if not batch_is_cancelled(batch_run):
            return
    except Exception as error:  # cannot tell: leave the image runs alone
        logger.warning("could not read whether the batch is being cancelled: %s", error)
        return
    try:
        keys = [idempotency_key(batch_run, request) for request in requests]
        report = cancel_started_runs(batch_run, keys, logger)
        if not report.cancelled:
            logger.info("the batch was cancelled: none of its image runs was still going")
        outcomes = tuple(
            _outcome_at_cancel(request, submitted[i] if i < len(submitted) else None, report)
            for i, request in enumerate(requests)
        )
        _report(BatchResult(source_region=batch.source_region,
                            target_region=batch.target_region, outcomes=outcomes))  # fmt: skip
    except Exception as error:  # say so, and let the cancel go on
        logger.error(
            "the batch was cancelled, but cancelling the image runs it started failed: %s; "
            "cancel them in the UI (they are listed under the batch)",
            error,
        )
    finally:  # the waits for deployment runs end, this process's subflows stop
        cloud.stop(REASON.format(batch=batch_run))


def _outcome_at_cancel(
    request: TransferRequest, future: PrefectFuture[ImageOutcome] | None, report: CancelReport
) -> ImageOutcome:
    """An image's outcome when the batch is cancelled: its own if it had ended, else
    cancelled (with its run, if it had one)."""
    if future is not None and future.state.is_completed():
        return future.result()
    source = request.image_id or request.source_ref
    runs = [run for run in report.runs() if source_of(run) == request.source_ref]
    if not runs:
        message = "the batch was cancelled before this image started"
        return ImageOutcome(source=source, status="cancelled", message=message)
    run = runs[-1]
    asked = run.id in {r.id for r in (*report.cancelled, *report.stopping)}
    state = run.state
    status: Outcome = "failed"
    if asked or (state is not None and state.is_cancelled()):
        status = "cancelled"
    elif state is not None and state.is_completed():
        status = "succeeded"  # just before the cancel: its result is not read now
    message = (
        CANCELLED_WITH_THE_BATCH
        if asked
        else f"ended {state.name if state else 'unknown'} as the batch was cancelled"
    )
    return ImageOutcome(source=source, status=status, message=message,
                        flow_run_id=str(run.id), flow_run_name=run.name)  # fmt: skip


def _check_deployment(name: str) -> None:
    """Before any image starts: the deployment the images are to run on exists.

    Raises:
        ConfigurationError: no such deployment on this Prefect server.
    """
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise ConfigurationError(
                f"no deployment {name} on this Prefect server: deploy it "
                "(prefect deploy --all --prefect-file deployments/prefect.yaml), name another "
                "in the batch's deployment, or set run_as=subflows"
            ) from None


def _report(result: BatchResult) -> None:
    logger = get_run_logger()
    for outcome in result.failed:
        logger.error("image %s failed: %s", outcome.source, outcome.message)
    done = len(result.succeeded)
    cancelled = f", {len(result.cancelled)} cancelled" if result.cancelled else ""
    logger.info("%d of %d image(s) transferred%s", done, len(result.outcomes), cancelled)
    create_table_artifact(
        result.summary_rows(),
        key=f"batch-{slug(result.source_region)}-to-{slug(result.target_region)}",
        description=f"transfer-images {result.source_region} -> {result.target_region}: "
        f"{done} succeeded, {len(result.failed)} failed{cancelled}",
    )
