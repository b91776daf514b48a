"""The error tree: every class survives pickling (Prefect stores failed states) and says
whether retrying the step could help."""

from __future__ import annotations

import inspect
import pickle

import pytest

from imagehop import errors

ALL_ERRORS = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ImagehopError)
    ),
    key=lambda cls: cls.__name__,
)
RETRYABLE = {
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "SourceIncompleteError",
    "UnauthorizedError",  # the object store's 401 (engine branch): a retry gets a new token
}


def _full_instance(cls: type[errors.ImagehopError]) -> errors.ImagehopError:
    """An instance with every constructor argument set to a distinct value."""
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    values = {
        "message": "it broke",
        "request_id": "req-42",
        "status": 503,
        "retry_after": 7.5,
    }
    args = [values.get(name, f"value-of-{name}") for name in params]
    return cls(*args)


def test_the_tree_has_every_documented_class() -> None:
    """A class added without a test would not be covered by the pickling test."""
    names = {cls.__name__ for cls in ALL_ERRORS}
    assert {"ApiError", "ResourceFailedError", "TaskFailedError", "WaitTimeoutError"} <= names
    assert len(ALL_ERRORS) >= 20


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_round_trips_through_pickle(cls: type[errors.ImagehopError]) -> None:
    """Every attribute comes back after pickling, and so does the class."""
    original = _full_instance(cls)
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is cls
    assert vars(copy) == vars(original)
    assert str(copy) == str(original)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_retryable_flag_matches_the_documented_tree(cls: type[errors.ImagehopError]) -> None:
    assert cls.retryable is (cls.__name__ in RETRYABLE)


def test_request_id_is_part_of_the_message() -> None:
    error = errors.ServerError("GET /v2/tasks/t1 -> 503", "req-9", 503, "GET", "/v2/tasks/t1")
    assert str(error) == "GET /v2/tasks/t1 -> 503 (request id: req-9)"
