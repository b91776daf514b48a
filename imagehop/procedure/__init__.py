"""The documented transfer procedure as Prefect-free building blocks.

* :mod:`.request`: what a user asks for (:class:`TransferRequest`), run keys, names;
* :mod:`.result`: what a run reports (:class:`TransferResult`, :class:`DryRunPlan`);
* :mod:`.clients`: the clients of both sides, built on demand from settings;
* :mod:`.preflight`: the checks made before any side effect;
* :mod:`.steps`: the side-effecting steps, each *find what an earlier run left, else create*;
* :mod:`.estimate`: the dry run's plan and duration estimate.

The Prefect tasks (``tasks/``) and flows (``flows/``) are thin layers over these.
"""

from imagehop.procedure.request import (
    DEFAULT_COORDINATING_KEY,
    DEFAULT_PROPERTIES,
    RUN_KEY_PROPERTY,
    BootRequest,
    TransferIdentity,
    TransferRequest,
    transfer_identity,
)
from imagehop.procedure.result import (
    BatchResult,
    DryRunPlan,
    ImageOutcome,
    PhaseTiming,
    PropertyReport,
    SkippedProperty,
    TransferResult,
)

__all__ = [
    "DEFAULT_COORDINATING_KEY",
    "DEFAULT_PROPERTIES",
    "RUN_KEY_PROPERTY",
    "BatchResult",
    "BootRequest",
    "DryRunPlan",
    "ImageOutcome",
    "PhaseTiming",
    "PropertyReport",
    "SkippedProperty",
    "TransferIdentity",
    "TransferRequest",
    "TransferResult",
    "transfer_identity",
]
