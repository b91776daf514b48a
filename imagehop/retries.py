"""Who retries what: the retry table, the one backoff formula, the one ``Retry-After`` parser.

Every failure kind is retried by exactly one layer. A layer retries an error only if its class
is ``retryable`` and no other layer has used up its attempts on it (:func:`may_retry`); a layer
that gives up on an error it was entitled to retry marks it (:func:`give_up`), so the layers
above raise it instead of retrying it again. The layers, innermost first:

* **request**: one HTTP request, in :class:`~imagehop.http.HttpClient` and in
  :class:`~imagehop.object_store.ObjectStore` (replayable calls only), bounded by a
  :class:`RetryPolicy`. Clients used on their own get :data:`REQUEST_RETRY`; inside Prefect
  tasks they get :data:`NO_RETRY` (the task is the layer), except the Identity client, which
  every task shares and which keeps :data:`REQUEST_RETRY`. A refused token is renewed once
  (:data:`TOKEN_RENEWALS`) in every context; a second 401 is an ``AuthenticationError``.
* **segment**: :func:`~imagehop.transfer.engine.copy_segment` re-opens a segment's source
  ranges (Swift objects, or a Glance image's ``/file``) and copies it again
  (:data:`SEGMENT_RETRY`); streams are never replayed.
* **poll**: :func:`~imagehop.waiting.poll_until`: a failed poll is a poll; the next one comes
  after the interval (or ``Retry-After``), until the wait's deadline.
* **listing**: :func:`~imagehop.transfer.source.discover_source` lists a DLO's segments again
  until the listing adds up (listings are eventually consistent).
* **task**: Prefect's task retries (:mod:`imagehop.tasks.policy`, :data:`TASK_RETRY`), for
  what failed in a task step and was not retried below.

Retry table (``tests/unit/test_retries.py`` parses it and compares it with the code):

| failure kind | where | retried by | attempts | backoff | deadline |
| --- | --- | --- | --- | --- | --- |
| 401 | request with a token | request | 1 renewal | none | none |
| refused, DNS, connect timeout | first login to Identity | nobody | 1 | none | none |
| 5xx, transport | replayable request, own client | request | 3 | 1-20 s | 300 s |
| 413/429, Retry-After <= 15 s | request, own client | request | 3 waits | Retry-After | 300 s |
| 413/429, longer or no hint | request, own client | caller | none | none | none |
| 5xx, transport, 413/429 | task step | task | 4 | 2-60 s, >= Retry-After | none |
| transport, 5xx, 401, 413/429 | segment copy | segment | 4 | 1-30 s, >= Retry-After | none |
| 5xx, transport, 413/429 | poll | poll | 10 in a row | interval, >= Retry-After | wait's |
| DLO listing with gaps | DLO listing | listing | 12 | 10 s fixed | none |

Reading the table:

* *first login to Identity*: a token manager's first ``POST /tokens``. A connection that
  could not be made at all (refused, host name not resolved, connect timed out) is not
  retried there: before anything worked it is almost always a wrong ``IMAGEHOP_IDENTITY_URL``
  or network, and it is reported at once as a ``ConfigurationError`` (within one connect
  timeout). Every other failure of the first login, and every failure of a later renewal,
  follows the *own client* rows.
* *own client*: a client used on its own (library use), and the Identity client everywhere.
  *task step*: what a Prefect task does, outside a segment copy; its clients use
  ``NO_RETRY``. *segment copy*: a segment's ranged GETs (of Swift objects, or of a Glance
  image's data) and PUT (streams: one try each), and its metadata POST when the store uses
  ``NO_RETRY`` (with an own client the request layer retries that POST first, and marks what
  it gives up on). *poll*: one poll of a wait (sent with ``NO_RETRY``; also
  :meth:`~imagehop.glance.GlanceImages.wait_for_import`'s image and task reads).
* *attempts* counts tries in all (4 means 3 retries). *backoff* ``a-b s``: the formula below,
  from ``a`` seconds doubling to at most ``b``; ``>= Retry-After``: never less than the
  cloud's hint. *deadline*: no retry starts later than that after the first try (*wait's*:
  the wait's own deadline). *caller*: raised, with ``retry_after``, for the layer around
  the call (in a task, the task layer).

Why each kind has the layer it has:

* **Rate limits inside tasks go to the task layer, not to an inline wait** in the request
  layer. The task already is the layer for every other transient failure of its step, and its
  next try waits at least the ``Retry-After`` the cloud gave (:mod:`imagehop.tasks.policy`), so
  a single layer handles short and long hints alike, with no threshold between two layers; the
  wait is visible as the task's ``AwaitingRetry`` state instead of a silent sleep inside a
  request. Repeating the whole step is safe: steps look at the cloud before creating anything.
* A bulk delete's 200 answer whose failed deletes are all 401 (Swift checks the token on
  each delete inside the request, so a token can expire part-way) is the 401 row: one
  renewal, the refused objects sent again.
* A 401 after a renewal is an ``AuthenticationError``, which nobody retries. The one exception
  is a segment stream: it cannot be repeated in place, so the store invalidates the token and
  raises a retryable ``UnauthorizedError``, and the segment layer's next try gets a new token.
* **Segment copy failures belong to the segment layer**: the ``copy-segments`` task runs the
  engine with :data:`SEGMENT_RETRY` attempts per segment; when a segment uses them up, the
  error is marked ``exhausted_by == "segment"`` and the task does not retry it (a task retry
  would copy every missing segment again for one segment's failure). What fails in the task
  outside a segment (the resume listing, the manifest) is the task layer's.
* Errors the request layer gave up on (e.g. Identity answering 503 three times) are marked
  ``"request"`` and not retried by the segment or task layer either.
* swiftclient's own retries are off (``retries=0``): the object store's request layer
  replaces them, so its backoff is the formula below too.

The backoff formula, for every layer that backs off (request, segment, task): before retry
``n`` (1-based) wait a uniform draw from ``[c / 2, c]`` with ``c = min(cap, first * 2**(n-1))``
("equal jitter": never above the cap, never below half of it); a layer that honours
``Retry-After`` waits at least that long (:func:`retry_delay`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import TypeVar

from imagehop.clock import SYSTEM_CLOCK, Clock, parse_timestamp
from imagehop.errors import ImagehopError, RateLimitedError, ServerError, TransportError

E = TypeVar("E", bound=ImagehopError)

#: Layer names, as set in ``ImagehopError.exhausted_by``.
REQUEST, SEGMENT, POLL, LISTING, TASK = "request", "segment", "poll", "listing", "task"
#: How often the request layer renews a refused token and repeats the request.
TOKEN_RENEWALS = 1

_RANDOM = random.Random()


# -- the formula ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff with a cap: the one formula (see the module docstring)."""

    first_seconds: float
    cap_seconds: float

    def ceiling(self, failures: int) -> float:
        """The longest delay before retry number ``failures`` (1-based)."""
        return float(min(self.cap_seconds, self.first_seconds * 2.0 ** (failures - 1)))

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """A delay before retry number ``failures``: half fixed, half jitter."""
        ceiling = self.ceiling(failures)
        return ceiling / 2 + (rng or _RANDOM).uniform(0, ceiling / 2)


def retry_after_of(error: BaseException | None) -> float | None:
    """The ``Retry-After`` seconds a rate-limited answer carried, if any."""
    if isinstance(error, RateLimitedError):
        return error.retry_after
    return None


def retry_delay(
    backoff: Backoff, failures: int, error: BaseException | None, rng: random.Random | None = None
) -> float:
    """The delay before retry number ``failures``: the formula, but never less than the
    ``Retry-After`` the cloud gave with ``error``."""
    return max(backoff.delay(failures, rng), retry_after_of(error) or 0.0)


@dataclass(frozen=True)
class StepRetry:
    """A layer that retries a whole step: ``attempts`` tries in all, :func:`retry_delay`
    between them. ``layer`` is the name errors it gives up on are marked with."""

    layer: str
    attempts: int
    backoff: Backoff

    def delay(
        self, failures: int, error: BaseException | None, rng: random.Random | None = None
    ) -> float:
        return retry_delay(self.backoff, failures, error, rng)


SEGMENT_RETRY = StepRetry(SEGMENT, attempts=4, backoff=Backoff(1.0, 30.0))
TASK_RETRY = StepRetry(TASK, attempts=4, backoff=Backoff(2.0, 60.0))


# -- who may retry -------------------------------------------------------------------------


def give_up(error: E, layer: str) -> E:
    """Mark ``error`` as one ``layer`` retried until its attempts ran out; returns it.

    Layers above do not retry a marked error (:func:`may_retry`). Only the layer that owns
    the failure kind marks: a layer that had no retries for it (one attempt) leaves it alone.
    The first mark stays (an inner layer gave up first).
    """
    if error.exhausted_by is None:
        error.exhausted_by = layer
    return error


def may_retry(error: BaseException) -> bool:
    """Whether a retry layer may try again after ``error``: an imagehop error whose class is
    retryable and that no layer has given up on."""
    return isinstance(error, ImagehopError) and error.retryable and error.exhausted_by is None


# -- Retry-After ---------------------------------------------------------------------------


def parse_retry_after(header: str | None, body: str | None, now: float) -> float | None:
    """Seconds the cloud asks us to wait, or None if it gives no (readable) hint.

    Args:
        header: the ``Retry-After`` header: seconds, or an HTTP date.
        body: the answer's body; a Rackspace ``{"overLimit": {"retryAfter": "<ISO time>"}}``
            is read when there is no header.
        now: the current epoch time (dates become seconds from now; never negative).
    """
    if header:
        return _seconds_until(header, now)
    hint = _over_limit_retry_after(body)
    return _seconds_until(hint, now) if hint is not None else None


def _over_limit_retry_after(body: str | None) -> str | None:
    try:
        data = json.loads(body or "")
    except ValueError:
        return None
    over_limit = data.get("overLimit") if isinstance(data, dict) else None
    hint = over_limit.get("retryAfter") if isinstance(over_limit, dict) else None
    return hint if isinstance(hint, str) else None


def _seconds_until(value: str, now: float) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        pass
    try:
        return max(0.0, parse_timestamp(value) - now)
    except ValueError:
        return None


# -- the request layer ---------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the request layer (one HTTP request; see the module docstring).

    * 5xx and transport errors of a replayable request: ``attempts`` tries in all, with the
      backoff formula (``backoff_seconds`` doubling to ``backoff_cap_seconds``) between them.
    * 413/429 with a ``Retry-After`` of at most ``max_inline_wait_seconds``: waited out, at
      most ``rate_limit_waits`` times, for any method (the cloud refused the request, so
      nothing happened). A longer or missing hint is raised for the caller's layer.
    * No retry starts later than ``deadline_seconds`` after the first try.
    * ``retry_connect_failures=False``: a connection that could not be made is not retried.
    """

    attempts: int = 3
    #: Whether a transport error with no connection made (refused, DNS, connect timeout)
    #: is retried like the others.
    retry_connect_failures: bool = True
    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 20.0
    rate_limit_waits: int = 3
    max_inline_wait_seconds: float = 15.0
    deadline_seconds: float | None = 300.0

    @property
    def formula(self) -> Backoff:
        return Backoff(self.backoff_seconds, self.backoff_cap_seconds)

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Delay before retry number ``failures`` (1-based), by the one formula."""
        return self.formula.delay(failures, rng)


#: Clients used on their own (library use), and the Identity client everywhere.
REQUEST_RETRY = RetryPolicy()
#: Pollers (the poll loop is their layer) and clients inside Prefect tasks (the task is).
NO_RETRY = RetryPolicy(attempts=1, rate_limit_waits=0)


def first_login(policy: RetryPolicy) -> RetryPolicy:
    """The policy of a token manager's first login: its client's, but a connection that
    cannot be made is not retried (a wrong URL or no network: reported within one connect
    timeout)."""
    return replace(policy, retry_connect_failures=False)


class RetryBudget:
    """What one request has used of its policy; says how long to wait before the next try,
    or None to raise (marking the error when this layer gave up on a kind it retries)."""

    def __init__(
        self, policy: RetryPolicy, clock: Clock = SYSTEM_CLOCK, rng: random.Random | None = None
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng or _RANDOM
        self._started = clock.monotonic()
        self._failures = 0
        self._rate_limit_waits = 0

    def delay_before_retry(self, error: ImagehopError, replayable: bool) -> float | None:
        if not may_retry(error):
            return None
        if not self._policy.retry_connect_failures and _no_connection(error):
            return None
        if isinstance(error, RateLimitedError):
            delay = self._rate_limit_delay(error)
        elif isinstance(error, ServerError | TransportError) and replayable:
            delay = self._backoff_delay(error)
        else:
            return None
        if delay is not None and not self._before_deadline(delay):
            give_up(error, REQUEST)
            return None
        return delay

    def _rate_limit_delay(self, error: RateLimitedError) -> float | None:
        wait = error.retry_after
        if wait is None or wait > self._policy.max_inline_wait_seconds:
            return None  # the caller's layer decides
        if self._rate_limit_waits >= self._policy.rate_limit_waits:
            if self._policy.rate_limit_waits > 0:
                give_up(error, REQUEST)
            return None
        self._rate_limit_waits += 1
        return wait

    def _backoff_delay(self, error: ImagehopError) -> float | None:
        self._failures += 1
        if self._failures >= self._policy.attempts:
            if self._policy.attempts > 1:
                give_up(error, REQUEST)
            return None
        return self._policy.backoff(self._failures, self._rng)

    def _before_deadline(self, delay: float) -> bool:
        deadline = self._policy.deadline_seconds
        if deadline is None:
            return True
        return self._clock.monotonic() + delay - self._started <= deadline


def _no_connection(error: ImagehopError) -> bool:
    return isinstance(error, TransportError) and error.connect_failed
