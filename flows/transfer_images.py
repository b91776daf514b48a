"""The ``transfer-images`` flow: many images, each a concurrent ``transfer-image`` subflow.

At most ``max_parallel_transfers`` images move at once (a new one starts when one ends), and
at most ``max_exports_per_region`` export and ``max_imports_per_region`` import tasks run at
once (process-local slots, :mod:`imagehop.tasks.limits`; see there for multi-worker setups).
One image failing does not stop the others: each image's outcome is recorded, listed in a
table artifact and returned.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from imagehop.flows.transfer_image import run_name, transfer_image
from imagehop.procedure.request import BatchRequest, TransferRequest, slug
from imagehop.procedure.result import BatchResult, ImageOutcome, TransferResult
from imagehop.tasks import limits
from imagehop.tasks.checks import list_source_images

MAX_WORKERS = 32  # the batch's own cap (max_parallel_transfers) is lower


@task(
    name="transfer-one-image",
    task_run_name="transfer-{request.image_id}",
    cache_policy=NO_CACHE,
    retries=0,  # the transfer's own steps retry; a failed image is an outcome, not an error
)
def transfer_one(request: TransferRequest) -> ImageOutcome:
    """Run ``transfer-image`` for one image and record how it ended (never raises for it)."""
    began = time.perf_counter()
    state = transfer_image(request, return_state=True)
    seconds = time.perf_counter() - began
    value = state.result(raise_on_failure=False)
    source = request.image_id or request.source_ref
    if isinstance(value, TransferResult):
        return ImageOutcome(
            source=source, status="succeeded", target_image_id=value.target_image_id,
            seconds=seconds,
        )  # fmt: skip
    message = str(value) if isinstance(value, BaseException) else f"ended {state.type.value}"
    return ImageOutcome(source=source, status="failed", message=message, seconds=seconds)


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
    image_ids = list(batch.image_ids) or list_source_images(batch.source_region, batch.image_filter)
    get_run_logger().info("%d image(s) to transfer", len(image_ids))
    limits.configure(batch.max_exports_per_region, batch.max_imports_per_region)
    try:
        outcomes = _run_windowed([batch.request_for(i) for i in image_ids], batch)
    finally:
        limits.configure(None, None)
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
        future = transfer_one.submit(request)
        running.append(future)
        submitted.append(future)
    return tuple(future.result() for future in submitted)


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
