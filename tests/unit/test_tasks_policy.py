"""Task retry and cache policy, without a Prefect server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prefect.states import Completed, Failed

from imagehop import errors
from imagehop.procedure.request import Clouds, TransferIdentity
from imagehop.retries import Backoff, StepRetry, give_up
from imagehop.tasks.policy import RetryDelays, cache_key, cached_by, retry_if_retryable

RETRYABLE = [
    errors.ServerError("503", None, 503),
    errors.TransportError("reset"),
    errors.RateLimitedError("slow down", None, 429, retry_after=5.0),
    errors.SourceIncompleteError("listing has gaps"),
]
FINAL = [
    errors.PreflightError("no"),
    errors.IntegrityError("md5"),
    errors.TaskFailedError("export failed"),
    errors.ForbiddenError("403"),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_retryable_errors_are_retried(error: Exception) -> None:
    assert retry_if_retryable(None, None, Failed(data=error))  # type: ignore[arg-type]


@pytest.mark.parametrize("error", FINAL, ids=lambda e: type(e).__name__)
def test_other_errors_are_not(error: Exception) -> None:
    assert not retry_if_retryable(None, None, Failed(data=error))  # type: ignore[arg-type]


def test_a_completed_state_is_not_retried() -> None:
    assert not retry_if_retryable(None, None, Completed(data=1))  # type: ignore[arg-type]


def test_cache_keys_are_business_identities_safe_as_file_names() -> None:
    assert cache_key("import", "IAD", "imports/abc.vhd", "s-1@2025-03-01") == (
        "import-IAD-imports_abc.vhd-s-1@2025-03-01"
    )


def test_cached_by_reads_dotted_parameters() -> None:
    identity = TransferIdentity(run_key="r-1", coordinating_key="k", coordinating_value="v")
    options: dict[str, Any] = cached_by("snapshot", "region", "server_id", "identity.run_key")
    key = options["cache_key_fn"](SimpleNamespace(), {
        "region": "DFW", "server_id": "s-1", "identity": identity, "name": "ignored",
    })  # fmt: skip
    assert key == "snapshot-DFW-s-1-r-1"
    assert options["persist_result"] and options["cache_expiration"].total_seconds() < 48 * 3600


@pytest.mark.parametrize(("clouds", "expected"), [
    (Clouds(), "import-IAD-imports_a.vhd-r-1"),  # the worker's own account: as before profiles
    (Clouds(target="dr-b"), "import-dr-b-IAD-imports_a.vhd-r-1"),
    (Clouds(source="dr-b"), "import-IAD-imports_a.vhd-r-1"),  # the source's cloud: no part
])  # fmt: skip
def test_a_cache_key_names_the_cloud_of_its_side(clouds: Clouds, expected: str) -> None:
    """One image sent to two accounts' IAD with one run key is two imports, not one."""
    identity = TransferIdentity(run_key="r-1", coordinating_key="k", coordinating_value="v")
    options: dict[str, Any] = cached_by(
        "import", "clouds.target", "region", "location", "identity.run_key"
    )
    parameters = {
        "clouds": clouds, "region": "IAD", "location": "imports/a.vhd", "identity": identity,
    }  # fmt: skip
    assert options["cache_key_fn"](SimpleNamespace(), parameters) == expected


@pytest.mark.parametrize("layer", ["request", "segment", "poll", "listing"])
def test_an_error_an_inner_layer_gave_up_on_is_not_retried(layer: str) -> None:
    """E.g. the engine used up a segment's attempts inside the copy task."""
    error = give_up(errors.ServerError("503", None, 503), layer)
    assert not retry_if_retryable(None, None, Failed(data=error))  # type: ignore[arg-type]


def test_the_delay_after_a_rate_limit_is_at_least_its_retry_after() -> None:
    """Prefect asks retry_condition_fn first, then reads retry_delay_seconds[n]."""
    delays = RetryDelays(StepRetry("task", attempts=4, backoff=Backoff(2.0, 60.0)))
    assert list(delays) == [2.0, 4.0, 8.0]  # what Prefect sends to the API: the ceilings
    limited = errors.RateLimitedError("slow down", None, 429, retry_after=45.0)
    assert retry_if_retryable(None, None, Failed(data=limited))  # type: ignore[arg-type]
    assert delays[0] == 45.0
    assert 1.0 <= delays[0] <= 2.0  # the hint was used once; the next delay is the formula's
    assert retry_if_retryable(None, None, Failed(data=errors.TransportError("reset")))  # type: ignore[arg-type]
    assert 4.0 <= delays[2] <= 8.0 and 4.0 <= delays[-1] <= 8.0
