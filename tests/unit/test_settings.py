"""Settings: environment names, the 30 s polling floor, credentials and secret handling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from imagehop.errors import ConfigurationError
from imagehop.settings import Settings, read_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No IMAGEHOP_* variable or .env file of the developer leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("IMAGEHOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEHOP_USERNAME", "ops")
    monkeypatch.setenv("IMAGEHOP_API_KEY", "k-123")
    monkeypatch.setenv("IMAGEHOP_TRANSFER_CONCURRENCY", "4")
    settings = Settings()
    assert settings.source_credentials().username == "ops"
    assert settings.transfer_concurrency == 4


def test_reads_dotenv_file() -> None:
    Path(".env").write_text("IMAGEHOP_USERNAME=from-file\nIMAGEHOP_PASSWORD=pw\n")
    assert Settings().source_credentials().username == "from-file"


@pytest.mark.parametrize("interval", [0, 5, 29.9])
def test_poll_interval_below_30_seconds_is_refused(interval: float) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 30"):
        Settings(poll_interval_seconds=interval)


def test_poll_interval_defaults_to_30_seconds() -> None:
    assert Settings().poll_interval_seconds == 30


def test_secrets_never_show_in_repr_or_dump() -> None:
    settings = Settings(username="ops", api_key="very-secret-key", password="pw-secret")
    text = repr(settings) + str(settings.model_dump()) + repr(settings.source_credentials())
    assert "very-secret-key" not in text
    assert "pw-secret" not in text


def test_missing_username_says_which_variable_to_set() -> None:
    with pytest.raises(ConfigurationError, match="IMAGEHOP_USERNAME"):
        Settings().source_credentials()


def test_username_without_secret_names_the_key_variable() -> None:
    with pytest.raises(ConfigurationError, match="IMAGEHOP_API_KEY"):
        Settings(username="ops").source_credentials()


def test_target_account_defaults_to_source_account() -> None:
    settings = Settings(username="ops", api_key="k")
    assert settings.target_credentials() == settings.source_credentials()


def test_separate_target_account() -> None:
    settings = Settings(username="ops", api_key="k", target_username="dr", target_password="p")
    target = settings.target_credentials()
    assert target.username == "dr"
    assert target.password is not None and target.password.get_secret_value() == "p"


def test_tls_verify_uses_ca_bundle_when_given() -> None:
    assert Settings().tls_verify is True
    assert Settings(verify_tls=False).tls_verify is False
    assert Settings(ca_bundle="/etc/ssl/ca.pem").tls_verify == "/etc/ssl/ca.pem"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("IMAGEHOP_POLL_INTERVAL_SECONDS", "10", "it must be at least 30; fix it or unset it "
         "(default 30)"),
        ("IMAGEHOP_TRANSFER_CONCURRENCY", "0", "it must be from 1 to 64"),
        ("IMAGEHOP_TRANSFER_CONCURRENCY", "many", "it must be a whole number from 1 to 64, "
         "or auto; fix it or unset it"),
        ("IMAGEHOP_CONNECT_TIMEOUT_SECONDS", "0", "it must be more than 0"),
        ("IMAGEHOP_VERIFY_TLS", "maybe", "it must be true or false"),
    ],
)  # fmt: skip
def test_a_refused_variable_is_named_with_its_rule(
    variable: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        read_settings()
    assert str(caught.value).startswith(f"{variable}={value} is refused: {says}")


def test_two_refused_variables_are_both_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEHOP_POLL_INTERVAL_SECONDS", "1")
    monkeypatch.setenv("IMAGEHOP_TRANSFER_CONCURRENCY", "65")
    with pytest.raises(ConfigurationError) as caught:
        read_settings()
    assert "IMAGEHOP_POLL_INTERVAL_SECONDS=1" in str(caught.value)
    assert "IMAGEHOP_TRANSFER_CONCURRENCY=65" in str(caught.value)
    assert "\n" not in str(caught.value) and "pydantic" not in str(caught.value)


@pytest.mark.parametrize("value", ["auto", "AUTO", " Auto ", ""])
def test_transfer_concurrency_auto_means_the_adaptive_stream_count(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("IMAGEHOP_TRANSFER_CONCURRENCY", value)
    assert Settings().transfer_concurrency is None


def test_transfer_concurrency_is_adaptive_by_default() -> None:
    assert Settings().transfer_concurrency is None


@pytest.mark.parametrize(
    ("value", "rule"),
    [("0", "from 1 to 64"), ("65", "from 1 to 64"), ("many", "a whole number from 1 to 64")],
)
def test_bad_transfer_concurrency_is_refused_with_the_range(
    monkeypatch: pytest.MonkeyPatch, value: str, rule: str
) -> None:
    monkeypatch.setenv("IMAGEHOP_TRANSFER_CONCURRENCY", value)
    with pytest.raises(ConfigurationError, match=f"IMAGEHOP_TRANSFER_CONCURRENCY={value} .*{rule}"):
        read_settings()


def test_stream_cap_is_the_smallest_of_the_settings_region_and_memory_caps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMAGEHOP_REGION_MAX_STREAMS", '{"syd": 6, "IAD": 12}')
    settings = Settings()
    assert settings.stream_cap("DFW", "SYD") == 6
    assert settings.stream_cap("iad", "ORD") == 12
    assert settings.stream_cap("DFW", "ORD") == 16  # 1 MiB chunks: memory allows 16
    assert Settings(chunk_size_bytes=256 * 1024).stream_cap("DFW", "ORD") == 32  # the setting
    assert Settings(transfer_max_streams=3).stream_cap("DFW", "ORD") == 3


def test_a_region_stream_cap_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEHOP_REGION_MAX_STREAMS", '{"SYD": 0}')
    with pytest.raises(ConfigurationError) as caught:
        read_settings()
    assert str(caught.value).startswith(  # as typed, and the example in the region's case
        'IMAGEHOP_REGION_MAX_STREAMS={"SYD": 0} is refused: it must be a JSON object of region '
        'codes and caps from 1 to 64, e.g. {"SYD": 8} (not SYD=0)'
    )


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        (
            "{SYD: 8}",
            'a JSON object of region codes and caps from 1 to 64, e.g. {"SYD": 8} (not JSON',
        ),
        ("[8]", "a JSON object;"),
        ('{"SYD": "eight"}', "a whole number;"),
    ],
)
def test_region_stream_caps_that_are_not_a_json_object_of_numbers_are_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, typed: str, rule: str
) -> None:
    """Not a traceback from the settings library: the variable, the rule, the fix."""
    monkeypatch.setenv("IMAGEHOP_REGION_MAX_STREAMS", typed)
    with pytest.raises(ConfigurationError) as caught:
        read_settings()
    text = str(caught.value)
    assert (
        text.startswith("IMAGEHOP_REGION_MAX_STREAMS=") and f"is refused: it must be {rule}" in text
    )
    assert text.endswith("fix it or unset it (default {})")
