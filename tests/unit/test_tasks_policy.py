"""Task retry and cache policy, without a Prefect server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prefect.states import Completed, Failed

from imagehop import errors
from imagehop.procedure.request import TransferIdentity
from imagehop.tasks.policy import cache_key, cached_by, retry_if_retryable

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
