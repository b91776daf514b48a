"""Where the tasks get their clients, their settings and their clock (one of each per process).

* **Clients** come from one :class:`~imagehop.procedure.registry.CloudClients` registry, keyed
  by account: one token manager per account shared by every task thread, Images/Servers
  clients per thread. Tasks take regions and ids, never clients, tokens or settings.
* **Retries**: the registry's Images, Servers and object-store clients retry nothing
  (:data:`TASK_REQUEST_RETRY` is ``NO_RETRY``): 5xx, transport errors and rate limits go to
  the task's Prefect retries, which wait at least the cloud's ``Retry-After``. The request
  layer still renews a refused token once. The Identity client keeps its own request retries
  (a token is shared by every task); what it gives up on is marked, so no task retries it
  again. One layer per failure kind: the table is in :mod:`imagehop.retries`.
* **Clouds**: a task that talks to the cloud takes its request's :class:`Clouds` (profile
  names of ``IMAGEHOP_CLOUDS``, or None for the worker's own settings of a side) and asks
  ``clients(clouds)``: the same registry read through those profiles
  (:meth:`~imagehop.settings.Settings.for_clouds`). Nothing records a "current" request, so
  the images of one batch, threads of one process, each use their own clouds.
* **Credentials** come from ``IMAGEHOP_*`` variables; when a secret is unset but a Secret
  block is named (``IMAGEHOP_API_KEY_SECRET_BLOCK`` ..., or a profile's
  ``api_key_secret_block`` ...), the block is loaded once per process.
* **Clock**: every wait asks :func:`clock`; tests swap in a fast-forward clock with
  :func:`use_clock` so 30 s polls cost no real time.
* **Stopping**: :func:`stop` tells every transfer of the process to stop (a batch whose
  subflows run here was cancelled, and Prefect is stopping the process): each wait on
  :func:`clock` ends at once, a copy at its next chunk, a slot wait once the slot is held,
  with :class:`~imagehop.errors.StoppedError`; the steps unwind and release what they hold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from pydantic import SecretStr

from imagehop.clock import SYSTEM_CLOCK, Clock
from imagehop.errors import StoppedError
from imagehop.procedure.registry import CloudClients
from imagehop.procedure.request import Clouds
from imagehop.retries import NO_RETRY
from imagehop.settings import Settings, read_settings

#: The request layer inside a task: no retries, no inline rate-limit waits (the task retries).
TASK_REQUEST_RETRY = NO_RETRY
#: (secret field, Secret block name field) pairs of Settings.
SECRET_BLOCK_FIELDS = (
    ("api_key", "api_key_secret_block"),
    ("password", "password_secret_block"),
    ("target_api_key", "target_api_key_secret_block"),
    ("target_password", "target_password_secret_block"),
    ("application_credential_secret", "application_credential_secret_block"),
    ("target_application_credential_secret", "target_application_credential_secret_block"),
)

_lock = threading.Lock()
_registry: CloudClients | None = None
_block_values: dict[str, SecretStr] = {}
_stop = threading.Event()
_stop_reason = ["stopped"]


class StoppableClock:
    """A clock (the real one, or a test's) whose sleeps end with StoppedError once
    :func:`stop` was called: at once on the real clock, after the sleep on a test's."""

    def __init__(self, wrapped: Clock) -> None:
        self.wrapped = wrapped

    def time(self) -> float:
        return self.wrapped.time()

    def monotonic(self) -> float:
        return self.wrapped.monotonic()

    def sleep(self, seconds: float) -> None:
        if self.wrapped is not SYSTEM_CLOCK:
            self.wrapped.sleep(seconds)
        elif seconds > 0:
            _stop.wait(seconds)
        raise_if_stopped()


# One instance per clock in use: the Images client spaces task polls per clock instance.
_clock = StoppableClock(SYSTEM_CLOCK)


def clock() -> StoppableClock:
    """The clock every client and wait uses in this process."""
    return _clock


def stop(reason: str) -> None:
    """Tell every transfer of this process to stop (see the module's *Stopping*)."""
    _stop_reason[0] = reason
    _stop.set()


def raise_if_stopped() -> None:
    """Raises StoppedError once :func:`stop` was called."""
    if _stop.is_set():
        raise StoppedError(_stop_reason[0])


def stopping() -> threading.Event:
    """Set once :func:`stop` was called (to wait on)."""
    return _stop


def clients(clouds: Clouds | None = None) -> CloudClients:
    """The process's client registry (created on first use), read through ``clouds``: the
    source and target sides log in as those profiles of ``IMAGEHOP_CLOUDS`` (None, or a
    side without a name: the worker's own settings of that side)."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = CloudClients(load_settings, clock=_clock, retry=TASK_REQUEST_RETRY)
        registry = _registry
    if clouds is None or not clouds.named:
        return registry
    return registry.reading(lambda: load_settings(clouds))


@contextmanager
def use_clock(replacement: Clock) -> Iterator[Clock]:
    """Run with another clock (and fresh clients that use it), then restore the previous."""
    global _clock
    previous = _clock
    reset()
    _clock = StoppableClock(replacement)
    try:
        yield replacement
    finally:
        reset()
        _clock = previous


def reset() -> None:
    """Close every client and forget every token (e.g. after the environment changed), and
    forget a :func:`stop`."""
    global _registry
    _stop.clear()
    with _lock:
        registry, _registry = _registry, None
    if registry is not None:
        registry.close()


def load_settings(clouds: Clouds | None = None) -> Settings:
    """``Settings()`` (its sides the profiles ``clouds`` names, if any) with secrets from
    Prefect Secret blocks where only a block is named; a refused variable is a
    ConfigurationError naming it (:func:`read_settings`), an unknown cloud an
    UnknownCloudError naming the known ones."""
    settings = read_settings()
    if clouds is not None:
        settings = settings.for_clouds(clouds.source, clouds.target)
    updates = {
        secret: _block_secret(str(getattr(settings, block)))
        for secret, block in SECRET_BLOCK_FIELDS
        if getattr(settings, secret) is None and getattr(settings, block)
    }
    return settings.model_copy(update=updates) if updates else settings


def _block_secret(name: str) -> SecretStr:
    with _lock:
        cached = _block_values.get(name)
    if cached is not None:
        return cached
    from prefect.blocks.system import Secret  # needs the Prefect API; only when asked for

    block = cast("Secret[Any]", Secret.load(name))  # sync call: a block, not a coroutine
    value = SecretStr(str(block.get()))
    with _lock:
        _block_values[name] = value
    return value
