"""Caps on concurrent cloud work shared by every worker and batch: global concurrency limits.

Three kinds of limit, each held for exactly the time its step runs:

* ``imagehop-export-<REGION>``: an export task of that region (start it, wait for it);
* ``imagehop-import-<REGION>``: an import task of that region (start it, wait for it);
* ``imagehop-copy-<SRC>-<DST>``: a segment copy from SRC to DST (the ``copy-segments`` task).

The API server counts the slots, so the caps hold across every process that talks to it. The
deployment set-up creates the limits (``python deployments/limits.py --region DFW --region IAD``);
a run never creates or changes one (others may rely on its value).

**No limit, no cap.** A run whose limit does not exist or is inactive (an embedded run, the
CLI's temporary server, a server set up without them) goes on uncapped and says so once per
process and limit, one log line. Prefect itself would warn at every acquisition.

**Leases.** A held slot is a lease of ``limit_lease_seconds`` (Prefect's default 300 s, at
least 60 s) that a thread of the holding process renews every three quarters of it; leaving
the block releases it at once. A process that dies holding one (kill -9, a lost machine)
renews nothing: the server's repossessor (every 15 s by default,
``PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS``) frees the slot once the lease expired,
so it comes back within the lease time plus one repossessor pass. A failed renewal (the API
unreachable three times in a row) logs a warning and lets the cloud task go on: stopping a
long export halfway helps no one (``raise_on_lease_renewal_failure=False``).

**Waiting.** A step waits for a free slot up to ``limit_wait_deadline_seconds``, then fails
with :class:`~imagehop.errors.WaitTimeoutError` naming the limit. A step that gets its slot
after the process was told to stop (:func:`imagehop.tasks.cloud.stop`) gives it back at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

from imagehop.errors import WaitTimeoutError
from imagehop.procedure.limit_names import CloudTask, copy_limit_name, task_limit_name
from imagehop.tasks.cloud import clients, raise_if_stopped

_noted_missing: set[str] = set()
_lock = threading.Lock()


@contextmanager
def region_slot(kind: CloudTask, region: str) -> Iterator[None]:
    """Hold one slot of ``region``'s ``kind`` limit for the block (uncapped without one)."""
    with holding(task_limit_name(kind, region), f"{kind} tasks in {region.upper()}"):
        yield


@contextmanager
def copy_slot(source_region: str, target_region: str) -> Iterator[None]:
    """Hold one slot of the region pair's copy limit for the block (uncapped without one)."""
    what = f"copies {source_region.upper()} -> {target_region.upper()}"
    with holding(copy_limit_name(source_region, target_region), what):
        yield


@contextmanager
def holding(name: str, what: str) -> Iterator[None]:
    """One slot of the global concurrency limit ``name`` for the block.

    Raises:
        WaitTimeoutError: no slot came free within ``limit_wait_deadline_seconds``.
    """
    if not _limit_exists(name):
        _note_missing(name, what)
        yield
        return
    settings = clients().settings()
    deadline = settings.limit_wait_deadline_seconds
    with ExitStack() as held:
        try:
            held.enter_context(
                concurrency(
                    name,
                    occupy=1,
                    timeout_seconds=deadline,
                    lease_duration=settings.limit_lease_seconds,
                    strict=False,  # deleted since the look-up: go on uncapped, as without it
                    raise_on_lease_renewal_failure=False,
                )
            )
        except TimeoutError as error:  # Prefect's AcquireConcurrencySlotTimeoutError
            raise WaitTimeoutError(
                f"no slot of the global concurrency limit {name} came free within "
                f"{deadline:.0f} s (it caps {what}); raise the limit with "
                f"`prefect gcl update {name} --limit N`, or the wait with "
                "IMAGEHOP_LIMIT_WAIT_DEADLINE_SECONDS",
                resource=name,
                wanted="a free slot",
            ) from error
        raise_if_stopped()
        yield


def _limit_exists(name: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name).active
        except ObjectNotFound:
            return False


def _note_missing(name: str, what: str) -> None:
    with _lock:
        if name in _noted_missing:
            return
        _noted_missing.add(name)
    get_run_logger().info(
        "no active global concurrency limit %s: %s are not capped "
        "(python deployments/limits.py creates the limits)",
        name,
        what,
    )
