"""Start a transfer on the deployed ``transfer-image`` flow and get its typed result back.

This is the embedding path for other pipelines: the run happens wherever the deployment's
workers are; this process only asks for it and reads the result.

    from deployments.embed import transfer_via_deployment
    outcome = transfer_via_deployment(TransferRequest(source_region="DFW", target_region="IAD",
                                                      image_id="..."))
    outcome.result.target_image_id

or from a shell (prints the flow run id and the result as JSON):

    python -m deployments.embed --source-region DFW --target-region IAD --image-id <id>

Called inside a flow, ``run_deployment`` links the run as a subflow of the caller. Reading the
result needs the result storage the deployment writes to (see deployments/result_storage.py);
the request holds no credentials, so its parameters are safe to store in the Prefect API.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from uuid import UUID

from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from imagehop.procedure.request import TransferRequest
from imagehop.procedure.result import DryRunPlan, TransferResult

ADHOC = "transfer-image/adhoc"
DEFAULT_TIMEOUT = 24 * 3600.0


@dataclass(frozen=True)
class Outcome:
    """A finished run of the deployment: its id and what the flow returned."""

    flow_run_id: UUID
    result: TransferResult | DryRunPlan


def transfer_via_deployment(
    request: TransferRequest,
    deployment: str = ADHOC,
    timeout: float = DEFAULT_TIMEOUT,
    poll_interval: float = 5.0,
) -> Outcome:
    """Run ``deployment`` with ``request``, wait for the end, and return the typed result.

    Raises:
        TimeoutError: still not finished after ``timeout`` seconds (the run goes on).
        ImagehopError (or any other error): the flow's own exception, when the run failed.
    """
    parameters = {"request": request.model_dump(mode="json", exclude_unset=True)}
    flow_run = cast(
        FlowRun,  # a sync call returns the flow run, not a coroutine
        run_deployment(
            deployment, parameters=parameters, timeout=timeout, poll_interval=poll_interval
        ),
    )
    state = flow_run.state
    if state is None or not state.is_final():
        where = state.name if state else "no state"
        raise TimeoutError(f"flow run {flow_run.id} is still {where} after {timeout:.0f} s")
    result = state.result()  # raises the flow's exception if it failed
    if not isinstance(result, TransferResult | DryRunPlan):
        raise TypeError(f"flow run {flow_run.id} returned {type(result).__name__}")
    return Outcome(flow_run.id, result)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.embed",
        description="Run the deployed transfer-image flow and print its result as JSON.",
    )
    parser.add_argument("--deployment", default=ADHOC, help="<flow>/<deployment>")
    parser.add_argument("--source-region", required=True)
    parser.add_argument("--target-region", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image-id")
    source.add_argument("--server-id")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fields = {
        "source_region": args.source_region,
        "target_region": args.target_region,
        "image_id": args.image_id,
        "server_id": args.server_id,
        "dry_run": args.dry_run or None,
    }
    request = TransferRequest(**{k: v for k, v in fields.items() if v is not None})
    outcome = transfer_via_deployment(request, args.deployment, args.timeout, args.poll_interval)
    report = {
        "flow_run_id": str(outcome.flow_run_id),
        "result_type": type(outcome.result).__name__,
        "result": outcome.result.model_dump(mode="json"),
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
