"""Process settings: read from ``IMAGEHOP_*`` environment variables and an optional ``.env``.

Build a :class:`Settings` at the edge (CLI, flow entry point), never at import. Secrets are
``SecretStr`` so they never show up in reprs, logs or cached task results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import annotated_types
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imagehop.errors import ConfigurationError

MiB = 1024 * 1024
GB = 1000**3
RACKSPACE_IDENTITY_URL = "https://identity.api.rackspacecloud.com/v2.0"


class Credentials(BaseModel):
    """One account's login: a username plus an API key or a password."""

    username: str
    api_key: SecretStr | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if self.api_key is None and self.password is None:
            raise ValueError(f"user {self.username!r} needs an API key or a password")
        return self

    def __hash__(self) -> int:  # usable as a dict key for per-account token managers
        return hash((self.username, self.api_key, self.password))


class Settings(BaseSettings):
    """Everything imagehop needs to reach the cloud, and how hard to push it."""

    model_config = SettingsConfigDict(
        env_prefix="IMAGEHOP_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    identity_url: str = Field(
        RACKSPACE_IDENTITY_URL,
        description="Identity v2.0 endpoint (POST {identity_url}/tokens).",
    )
    username: str | None = Field(None, description="Account user name (source account).")
    api_key: SecretStr | None = Field(None, description="API key of `username`.")
    password: SecretStr | None = Field(None, description="Password of `username` (if no key).")
    target_username: str | None = Field(
        None, description="User in a different target account; unset = same account."
    )
    target_api_key: SecretStr | None = Field(None, description="API key of `target_username`.")
    target_password: SecretStr | None = Field(None, description="Password of `target_username`.")
    api_key_secret_block: str | None = Field(
        None,
        description="Name of a Prefect Secret block holding the API key, used by the flows "
        "when IMAGEHOP_API_KEY is unset (a name, not a secret).",
    )
    password_secret_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding the password (if no key)."
    )
    target_api_key_secret_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding the target user's API key."
    )
    target_password_secret_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding the target user's password."
    )

    poll_interval_seconds: float = Field(
        30.0,
        ge=30.0,
        description="Seconds between polls of one export/import task. The cloud asks for "
        "no more than one poll every 30 s, so lower values are refused.",
    )
    status_poll_interval_seconds: float = Field(
        10.0,
        ge=2.0,
        description="Seconds between status checks of a server image being created or a "
        "server being built (not task polls, which keep their own 30 s floor).",
    )
    token_refresh_margin_seconds: float = Field(
        3600.0,
        gt=0,
        description="Fetch a new token when the current one expires within this many "
        "seconds (Rackspace only issues a new token within the last hour).",
    )
    snapshot_deadline_seconds: float = Field(
        24 * 3600.0, gt=0, description="Longest wait for a server image to become active."
    )
    export_deadline_seconds: float = Field(
        12 * 3600.0, gt=0, description="Longest wait for an export task to finish."
    )
    import_deadline_seconds: float = Field(
        12 * 3600.0, gt=0, description="Longest wait for an import task to finish."
    )
    boot_deadline_seconds: float = Field(
        2 * 3600.0, gt=0, description="Longest wait for a booted server to become ACTIVE."
    )
    limit_wait_deadline_seconds: float = Field(
        24 * 3600.0,
        gt=0,
        description="Longest wait for a slot of a global concurrency limit (export, import "
        "or copy cap).",
    )
    limit_lease_seconds: float = Field(
        300.0,
        ge=60,
        le=24 * 3600,
        description="Lease of a held limit slot, renewed while held: a process that dies "
        "holding one frees it this long after its last renewal (60 s to 1 day).",
    )
    segment_size_bytes: int = Field(
        256 * MiB,
        ge=1,
        description="Target segment size. Larger segments mean fewer requests; the plan "
        "grows it when an image would need more segments than the SLO limit (1000).",
    )
    transfer_concurrency: int = Field(
        8, ge=1, le=64, description="Segments copied at once (one connection pair each)."
    )
    chunk_size_bytes: int = Field(
        MiB,
        ge=64 * 1024,
        le=64 * MiB,
        description="Bytes read per step while streaming a segment. Peak buffer memory is "
        "about 3 x transfer_concurrency x chunk_size_bytes.",
    )
    source_uses_internal_url: bool = Field(
        False,
        description="Read the source region over ServiceNet (internalURL). Only works "
        "when imagehop runs in the source region's data center.",
    )
    import_size_limit_bytes: int = Field(
        160 * GB, gt=0, description="Largest image the target's import accepts (160 GB)."
    )
    connect_timeout_seconds: float = Field(10.0, gt=0, description="TCP connect deadline.")
    read_timeout_seconds: float = Field(
        120.0, gt=0, description="Deadline for each read from a cloud API or Swift."
    )
    verify_tls: bool = Field(True, description="Verify TLS certificates.")
    ca_bundle: Path | None = Field(None, description="CA bundle for TLS verification.")

    @property
    def http_timeout(self) -> tuple[float, float]:
        """(connect, read) timeout for requests and python-swiftclient."""
        return (self.connect_timeout_seconds, self.read_timeout_seconds)

    @property
    def tls_verify(self) -> bool | str:
        """The ``verify`` argument for requests: False, True or a CA bundle path."""
        if not self.verify_tls:
            return False
        return str(self.ca_bundle) if self.ca_bundle else True

    def source_credentials(self) -> Credentials:
        """Credentials of the source account; raises ConfigurationError if unset."""
        return _credentials(self.username, self.api_key, self.password, "IMAGEHOP_USERNAME")

    def target_credentials(self) -> Credentials:
        """Credentials of the target account (the source account unless set)."""
        if self.target_username is None:
            return self.source_credentials()
        return _credentials(
            self.target_username,
            self.target_api_key,
            self.target_password,
            "IMAGEHOP_TARGET_USERNAME",
        )


ENV_PREFIX = "IMAGEHOP_"
#: What a value must be, by pydantic error type (when the type itself is wrong).
_KIND_OF_VALUE = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "url_parsing": "a URL",
}


def read_settings() -> Settings:
    """``Settings()`` from the environment and ``.env``.

    Raises:
        ConfigurationError: a variable has a value imagehop refuses; one line naming each
            variable and the rule it breaks.
    """
    try:
        return Settings()  # type: ignore[call-arg]  # the fields come from the environment
    except ValidationError as error:
        problems = "; ".join(setting_problem(e) for e in error.errors())
        raise ConfigurationError(problems) from None


def setting_problem(error: Any) -> str:
    """One pydantic error of :class:`Settings` as ``IMAGEHOP_X=value: must be ...``."""
    loc = error.get("loc") or ()
    name = str(loc[0]) if loc else ""
    field = Settings.model_fields.get(name)
    if field is None:
        return str(error.get("msg", "invalid settings"))
    variable = ENV_PREFIX + name.upper()
    secret = field.annotation is not None and "SecretStr" in str(field.annotation)
    shown = variable if secret else f"{variable}={error.get('input')!s}"
    rule = value_rule(field.metadata, _KIND_OF_VALUE.get(str(error.get("type")), ""))
    if not rule:
        rule = str(error.get("msg", "")).removeprefix("Value error, ").lower()
    return f"{shown} is refused: it must be {rule}; fix it or unset it{_default_of(field.default)}"


def _default_of(default: Any) -> str:
    if default is None:
        return ""
    shown = f"{default:g}" if isinstance(default, float) else str(default)
    return f" (default {shown})"


def value_rule(metadata: list[Any], kind: str = "") -> str:
    """``at least 30``, ``from 1 to 64``, ``a whole number from 1 to 64``, ... from a field's
    constraints (``Ge``, ``Gt``, ``Le``, ``Lt``)."""
    low = high = ""
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"at least {item.ge:g}"
        elif isinstance(item, annotated_types.Gt):
            low = f"more than {item.gt:g}"
        elif isinstance(item, annotated_types.Le):
            high = f"at most {item.le:g}"
        elif isinstance(item, annotated_types.Lt):
            high = f"less than {item.lt:g}"
    if low.startswith("at least") and high.startswith("at most"):
        bounds = f"from {low.split()[-1]} to {high.split()[-1]}"
    else:
        bounds = " and ".join(part for part in (low, high) if part)
    return " ".join(part for part in (kind, bounds) if part)


def _credentials(
    username: str | None, api_key: SecretStr | None, password: SecretStr | None, env_name: str
) -> Credentials:
    if not username:
        raise ConfigurationError(
            f"no user name: set {env_name} (and the matching _API_KEY or _PASSWORD), "
            "or run `eval $(imagehop sandbox env)` to use the local cloud"
        )
    if api_key is None and password is None:
        key_env = env_name.replace("USERNAME", "API_KEY")
        raise ConfigurationError(f"user {username!r} has no secret: set {key_env}")
    return Credentials(username=username, api_key=api_key, password=password)
