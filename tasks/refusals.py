"""Pre-flight refusals on the run page: the reason as the run's state message and as one log
line, no traceback (unless the Prefect loggers are at DEBUG).

A refusal is an expected outcome with a one-line reason, not a crash. The pre-flight task
returns it as a :class:`Refusal` (the check ran; its verdict is no), and the flow then
returns ``Failed(message=reason, data=error)`` instead of raising: Prefect then logs no
"Encountered exception during execution" traceback, and a caller of the flow (directly or
as a subflow) still gets the error raised, as Prefect raises a failed state's exception.
A deployment run's engine re-raises it as well and logs "Engine execution exited with
unexpected exception" with the traceback; :class:`RefusalTracebacks` drops that record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Failed

from imagehop.errors import AuthenticationError, ConfigurationError, PreflightError

#: Errors that refuse a request before anything was created, each with a one-line reason.
REFUSALS = (PreflightError, AuthenticationError, ConfigurationError)
#: Prefect's record when a deployment run's engine re-raises the run's failure.
ENGINE_EXIT = "Engine execution exited with unexpected exception"
RUN_LOGGER = "prefect.flow_runs"


@dataclass(frozen=True)
class Refusal:
    """Pre-flight's verdict that the request cannot work, with the error to raise."""

    error: Exception


class RefusalTracebacks(logging.Filter):
    """Drops the engine's traceback record of a refusal (already reported in one line),
    unless its logger is enabled for DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.msg != ENGINE_EXIT or not isinstance(error, REFUSALS):
            return True
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_refusal_tracebacks() -> None:
    """Install :class:`RefusalTracebacks` on Prefect's flow-run logger (once)."""
    logger = logging.getLogger(RUN_LOGGER)
    if not any(isinstance(f, RefusalTracebacks) for f in logger.filters):
        logger.addFilter(RefusalTracebacks())


def refused(error: Exception) -> State[Any]:
    """What the flow returns for a refusal: a Failed state with the reason as its message
    (calling the flow raises ``error`` instead of returning this)."""
    get_run_logger().error("refused, nothing was created: %s", error)
    return Failed(message=str(error), data=error)
