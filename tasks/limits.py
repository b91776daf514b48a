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

**Leases across a server restart.** Where the server keeps its leases is its setting
``PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE``. Prefect's default keeps them in the server's memory:
a restart loses them while the limits' active-slot counts stay in the database, so a slot held
across a restart is never freed (the release finds no lease, the repossessor none to expire).
The team set-up (deployments/README.md) uses ``prefect.server.concurrency.lease_storage.filesystem``
(files under the server's ``PREFECT_HOME``), which survives it. The server reports its setting
(``GET /api/admin/settings``): where it says memory, the first slot a process takes logs one
warning; where it says nothing (the call failed, no such setting) nothing is said.

**Waiting.** A step waits for a free slot up to ``limit_wait_deadline_seconds``, then fails
with :class:`~imagehop.errors.WaitTimeoutError` naming the limit. A step that gets its slot
after the process was told to stop (:func:`imagehop.tasks.cloud.stop`) gives it back at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

from imagehop.errors import WaitTimeoutError
from imagehop.procedure.limit_names import CloudTask, copy_limit_name, task_limit_name
from imagehop.tasks.cloud import clients, raise_if_stopped

#: Prefect's default lease storage: the server's memory, lost when it restarts.
MEMORY_LEASE_STORAGE = "prefect.server.concurrency.lease_storage.memory"
#: What the team set-up uses (deployments/README.md): files under the server's PREFECT_HOME.
FILESYSTEM_LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
MEMORY_LEASES_WARNING = (
    "the Prefect server keeps concurrency leases in memory "
    f"(PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE={MEMORY_LEASE_STORAGE}): a slot held while it "
    "restarts stays taken for good; start it with "
    f"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE={FILESYSTEM_LEASE_STORAGE} "
    "(deployments/README.md, Global concurrency limits)"
)

_noted_missing: set[str] = set()
_checked_lease_storage: set[str] = set()  # API URLs whose lease storage this process asked
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


def leases_in_memory(server_settings: Mapping[str, Any]) -> bool | None:
    """Whether a Prefect server's settings (what ``GET /api/admin/settings`` returns) keep
    concurrency leases in memory; None where they do not say."""
    server = server_settings.get("server")
    concurrency = server.get("concurrency") if isinstance(server, Mapping) else None
    storage = concurrency.get("lease_storage") if isinstance(concurrency, Mapping) else None
    return storage == MEMORY_LEASE_STORAGE if isinstance(storage, str) else None


def server_leases_in_memory(client: SyncPrefectClient) -> bool | None:
    """Whether the server ``client`` talks to keeps its concurrency leases in memory, as it
    reports it; None where it does not (the call failed, or the answer has no such setting)."""
    try:
        settings = client.request("GET", "/admin/settings").json()
    except Exception:  # only ever a warning: never fail a step over it
        return None
    return leases_in_memory(settings) if isinstance(settings, Mapping) else None


def _limit_exists(name: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            active = client.read_global_concurrency_limit_by_name(name).active
        except ObjectNotFound:
            return False
        if active:
            _note_memory_leases(client)
        return active


def _note_memory_leases(client: SyncPrefectClient) -> None:
    """Once per process and server: warn if the server keeps its leases in memory."""
    url = str(client.api_url)
    with _lock:
        if url in _checked_lease_storage:
            return
        _checked_lease_storage.add(url)
    if server_leases_in_memory(client):
        get_run_logger().warning(MEMORY_LEASES_WARNING)


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
