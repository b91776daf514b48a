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
"""

from __future__ import annotations

import time
from typing import cast
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run as current_flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from imagehop.errors import ConfigurationError
from imagehop.flows.transfer_image import run_name, transfer_image
from imagehop.procedure.request import BatchRequest, TransferRequest, slug
from imagehop.procedure.result import BatchResult, ImageOutcome, TransferResult
from imagehop.tasks.checks import list_source_images

MAX_WORKERS = 32  # the batch's own cap (max_parallel_transfers) is lower
#: How often a batch asks the API whether an image's deployment run has finished.
POLL_SECONDS = 5.0


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
    end (at most ``timeout`` s) and record how it ended (never raises for it). The batch's
    run id and the image make the idempotency key: a re-run of the batch finds the image's
    run instead of starting a second one."""
    began = time.perf_counter()
    batch_run = current_flow_run.id
    try:
        flow_run = cast(
            FlowRun,  # a sync call returns the flow run, not a coroutine
            run_deployment(
                deployment,
                parameters={"request": request.model_dump(mode="json", exclude_unset=True)},
                timeout=timeout,
                poll_interval=POLL_SECONDS,
                idempotency_key=f"{batch_run}-{request.source_ref}",
                as_subflow=True,
            ),
        )
    except Exception as error:  # e.g. the server refused the run: this image's outcome
        message = f"no run of {deployment} started: {error}"
        return ImageOutcome(source=request.source_ref, status="failed", message=message)
    seconds = time.perf_counter() - began
    state = flow_run.state
    if state is None or not state.is_final():
        where = state.name if state else "not started"
        return ImageOutcome(
            source=request.source_ref, status="failed", seconds=seconds,
            message=f"still {where} after {timeout:.0f} s (the run goes on)",
            flow_run_id=str(flow_run.id), flow_run_name=flow_run.name,
        )  # fmt: skip
    return _outcome(request, state, seconds, flow_run.id, flow_run.name)


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
)
def transfer_images(batch: BatchRequest) -> BatchResult:
    """Transfer every image of the batch; returns one outcome per image, in order."""
    if batch.run_as == "deployment-runs":
        _check_deployment(batch.deployment)
    image_ids = list(batch.image_ids) or list_source_images(
        batch.source_region, batch.image_filter, clouds=batch.clouds
    )
    get_run_logger().info("%d image(s) to transfer (%s)", len(image_ids), batch.run_as)
    outcomes = _run_windowed([batch.request_for(i) for i in image_ids], batch)
    result = BatchResult(
        source_region=batch.source_region, target_region=batch.target_region, outcomes=outcomes
    )
    _report(result)
    return result


def _run_windowed(requests: list[TransferRequest], batch: BatchRequest) -> tuple[ImageOutcome, ...]:
    """Submit the transfers, never more than ``max_parallel_transfers`` at once."""
    running: list[PrefectFuture[ImageOutcome]] = []
    submitted: list[PrefectFuture[ImageOutcome]] = []
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
    done = len(result.outcomes) - len(result.failed)
    logger.info("%d of %d image(s) transferred", done, len(result.outcomes))
    create_table_artifact(
        result.summary_rows(),
        key=f"batch-{slug(result.source_region)}-to-{slug(result.target_region)}",
        description=f"transfer-images {result.source_region} -> {result.target_region}: "
        f"{done} succeeded, {len(result.failed)} failed",
    )
