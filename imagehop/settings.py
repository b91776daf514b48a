"""Process settings: read from ``IMAGEHOP_*`` environment variables and an optional ``.env``.

Build a :class:`Settings` at the edge (CLI, flow entry point), never at import. Secrets are
``SecretStr`` so they never show up in reprs, logs or cached task results.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import annotated_types
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from imagehop.errors import ConfigurationError, UnknownCloudError

MiB = 1024 * 1024
GB = 1000**3
RACKSPACE_IDENTITY_URL = "https://identity.api.rackspacecloud.com/v2.0"
AuthType = Literal["rackspace", "v3password", "v3applicationcredential"]
KEYSTONE_EXAMPLE_URL = "https://keystone.api.sjc3.rackspacecloud.com/v3"


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


class KeystoneCredentials(BaseModel):
    """One account's Keystone v3 login: a password (user in a domain, optionally a project to
    scope to; else the user's default project) or an application credential (already scoped).
    Built and checked by :meth:`Settings.source_credentials` / ``target_credentials``."""

    method: Literal["password", "application_credential"]
    username: str | None = None
    password: SecretStr | None = None
    user_domain_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_name: str | None = None
    application_credential_id: str | None = None
    application_credential_secret: SecretStr | None = None

    @property
    def label(self) -> str:
        """Who logs in, for messages (never a secret)."""
        if self.method == "application_credential":
            return f"application credential {self.application_credential_id!r}"
        return f"user {self.username!r}"

    def __hash__(self) -> int:  # usable as a dict key for per-account token managers
        return hash(tuple(self.model_dump().items()))


#: Either kind of login; :func:`imagehop.identity.authenticate` picks the API from the type.
AccountCredentials = Credentials | KeystoneCredentials


#: A cloud's name in ``IMAGEHOP_CLOUDS`` and in a request: a lower-case slug.
CLOUD_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
_CLOUD_NAME = re.compile(CLOUD_NAME_PATTERN)
#: What a good ``IMAGEHOP_CLOUDS`` looks like (in refusals and the docs).
CLOUDS_EXAMPLE = (
    '{"legacy-dfw": {"username": "myuser", "api_key_secret_block": "rackspace-api-key"}, '
    '"flex-sjc3": {"auth_type": "v3password", "identity_url": '
    f'"{KEYSTONE_EXAMPLE_URL}", "username": "myuser", "user_domain_name": '
    '"rackspace_cloud_domain", "password_secret_block": "flex-password"}}'
)
#: Secret fields of one side's settings: never in a profile (their block names are).
PROFILE_SECRETS = {
    "api_key": "api_key_secret_block",
    "password": "password_secret_block",
    "application_credential_secret": "application_credential_secret_block",
}


class CloudProfile(BaseModel):
    """One cloud account, by name in ``IMAGEHOP_CLOUDS``: the fields of one side's settings,
    its secrets only as names of Prefect Secret blocks (a profile holds no secret)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auth_type: AuthType = "rackspace"
    identity_url: str = RACKSPACE_IDENTITY_URL
    username: str | None = None
    user_domain_name: str | None = None
    project_name: str | None = None
    project_id: str | None = None
    project_domain_name: str | None = None
    application_credential_id: str | None = None
    api_key_secret_block: str | None = None
    password_secret_block: str | None = None
    application_credential_secret_block: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for secret, block in PROFILE_SECRETS.items():
                if secret in data:
                    raise ValueError(
                        f"field {secret}: a profile holds no secret; put it in a Prefect Secret "
                        f"block and give the block's name as {block}"
                    )
        return data

    @model_validator(mode="after")
    def _complete(self) -> Self:
        """Every field the profile's kind of login needs (the secrets' block names too)."""
        need: list[str] = []
        if self.auth_type == "rackspace":
            need += [] if self.username else ["username"]
            if not (self.api_key_secret_block or self.password_secret_block):
                need.append("api_key_secret_block (or password_secret_block)")
        elif self.auth_type == "v3password":
            need += [name for name in ("username", "user_domain_name", "password_secret_block")
                     if not getattr(self, name)]  # fmt: skip
        else:
            need += [
                name
                for name in ("application_credential_id", "application_credential_secret_block")
                if not getattr(self, name)
            ]
        if need:
            raise ValueError(f"field {need[0]}: missing, a {self.auth_type} login needs it")
        if self.auth_type != "rackspace" and self.identity_url.rstrip("/") == (
            RACKSPACE_IDENTITY_URL
        ):
            raise ValueError(
                f"field identity_url: a {self.auth_type} login needs the cloud's Keystone "
                f"(e.g. {KEYSTONE_EXAMPLE_URL}), not Rackspace's v2.0 Identity"
            )
        return self

    def side_fields(self, side: str) -> dict[str, Any]:
        """The settings fields of one side (``side`` is ``""`` or ``"target_"``) that log in
        as this profile: every account field, the direct secrets unset (they come from the
        profile's Secret blocks)."""
        fields: dict[str, Any] = {
            "identity_url": self.identity_url,
            "auth_type": self.auth_type,
            **{secret: None for secret in PROFILE_SECRETS},
            **self.model_dump(exclude={"identity_url", "auth_type"}),
        }
        return {side + name: value for name, value in fields.items()}


def parse_clouds(value: Any) -> dict[str, CloudProfile]:
    """``IMAGEHOP_CLOUDS`` (JSON text, or already a dict) as profiles by name; ValueError
    naming the profile and the field that is wrong, and an example. The value itself is
    never repeated (someone may have pasted a secret into it)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            problem = f"not JSON: {error.msg} at character {error.pos}"
            raise ValueError(_clouds_rule(problem)) from None
    if not isinstance(value, dict):
        raise ValueError(_clouds_rule(f"a JSON {type(value).__name__}, not an object"))
    profiles: dict[str, CloudProfile] = {}
    for name, fields in value.items():
        if not isinstance(name, str) or not _CLOUD_NAME.fullmatch(name):
            raise ValueError(_clouds_rule(
                f"cloud name {name!r} is not a lower-case slug (letters, digits and '-', "
                "e.g. flex-sjc3)"
            ))  # fmt: skip
        if isinstance(fields, CloudProfile):
            profiles[name] = fields
            continue
        try:
            profiles[name] = CloudProfile.model_validate(fields)
        except ValidationError as error:
            problem = f"profile {name!r}: {_profile_problem(error)}"
            raise ValueError(_clouds_rule(problem)) from None
    return profiles


def _profile_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    message = str(first.get("msg", "")).removeprefix("Value error, ")
    loc = [str(part) for part in first.get("loc", ())]
    if first.get("type") == "extra_forbidden":
        known = ", ".join(CloudProfile.model_fields)
        return f"field {loc[-1]}: unknown (a profile has {known})"
    if first.get("type") == "model_type":
        return "not a JSON object of fields"
    return f"field {loc[0]}: {message}" if loc else message


def _clouds_rule(problem: str) -> str:
    return f"a JSON object of cloud profiles by name ({problem}), e.g. {CLOUDS_EXAMPLE}"


class Settings(BaseSettings):
    """Everything imagehop needs to reach the cloud, and how hard to push it."""

    model_config = SettingsConfigDict(
        env_prefix="IMAGEHOP_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )
    #: The profiles the sides log in as (:meth:`for_clouds`); never read from the environment.
    _cloud_names: tuple[str | None, str | None] = PrivateAttr((None, None))

    identity_url: str = Field(
        RACKSPACE_IDENTITY_URL,
        description="Identity of the source cloud: Rackspace Identity v2.0 (POST "
        "{identity_url}/tokens), or Keystone with or without /v3 for the v3 auth types.",
    )
    auth_type: AuthType = Field(
        "rackspace",
        description="How the source account logs in: rackspace (Identity v2.0, API key or "
        "password), v3password or v3applicationcredential (Keystone v3, any OpenStack cloud).",
    )
    username: str | None = Field(None, description="Account user name (source account).")
    api_key: SecretStr | None = Field(None, description="API key of `username`.")
    password: SecretStr | None = Field(None, description="Password of `username` (if no key).")
    target_username: str | None = Field(
        None, description="User in a different target account; unset = same account."
    )
    target_api_key: SecretStr | None = Field(None, description="API key of `target_username`.")
    target_password: SecretStr | None = Field(None, description="Password of `target_username`.")
    user_domain_name: str | None = Field(
        None, description="Keystone v3: the user's domain (Flex: rackspace_cloud_domain)."
    )
    project_name: str | None = Field(
        None, description="Keystone v3: project to work in, by name; unset = default project."
    )
    project_id: str | None = Field(None, description="Keystone v3: project to work in, by id.")
    project_domain_name: str | None = Field(
        None, description="Keystone v3: domain of project_name; unset = the user's domain."
    )
    application_credential_id: str | None = Field(
        None, description="Keystone v3: application credential id (v3applicationcredential)."
    )
    application_credential_secret: SecretStr | None = Field(
        None, description="Keystone v3: the application credential's secret."
    )
    target_identity_url: str | None = Field(
        None,
        description="Identity of the target: another cloud, or the target region's own "
        "Keystone (as on Flex); unset = identity_url.",
    )
    target_auth_type: AuthType | None = Field(
        None, description="How the target account logs in; unset = auth_type."
    )
    target_user_domain_name: str | None = Field(None, description="The target user's domain.")
    target_project_name: str | None = Field(None, description="The target project, by name.")
    target_project_id: str | None = Field(None, description="The target project, by id.")
    target_project_domain_name: str | None = Field(
        None, description="Domain of target_project_name; unset = the target user's domain."
    )
    target_application_credential_id: str | None = Field(
        None, description="Application credential id of a separate target account."
    )
    target_application_credential_secret: SecretStr | None = Field(
        None, description="Secret of target_application_credential_id."
    )
    application_credential_secret_block: str | None = Field(
        None,
        description="Name of a Prefect Secret block holding the application credential's "
        "secret (a name, not a secret).",
    )
    target_application_credential_secret_block: str | None = Field(
        None, description="Name of a Prefect Secret block holding the target's secret."
    )
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

    clouds: Annotated[dict[str, CloudProfile], NoDecode] = Field(
        {},
        description="Cloud profiles a request may name as its source_cloud or target_cloud, "
        "as JSON {name: profile}; a profile has one side's account fields and its secrets "
        "only as Prefect Secret block names (api_key_secret_block, password_secret_block, "
        "application_credential_secret_block). Names: lower-case slugs.",
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
    transfer_concurrency: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Segments copied at once (one connection pair each), 1 to 64; unset or "
        "'auto' (the default): the count adapts to the link, growing while the aggregate rate "
        "grows, halved on 429/503, at most transfer_max_streams and what memory allows.",
    )
    transfer_max_streams: int = Field(
        32,
        ge=1,
        le=64,
        description="Most streams the adaptive count (transfer_concurrency auto) may use; "
        "memory caps it further (16 with 1 MiB chunks, 64 with 256 KiB).",
    )
    region_max_streams: Annotated[dict[str, int], NoDecode] = Field(
        {},
        description='Per-region caps of the adaptive count, as JSON, e.g. {"SYD": 8}: a '
        "copy from or to a listed region uses at most that many streams.",
    )
    chunk_size_bytes: int = Field(
        MiB,
        ge=64 * 1024,
        le=64 * MiB,
        description="Bytes read per step while streaming a segment. Peak buffer memory is "
        "about 3 x streams x chunk_size_bytes.",
    )
    source_uses_internal_url: bool = Field(
        False,
        description="Read the source region over ServiceNet (internalURL). Only works "
        "when imagehop runs in the source region's data center.",
    )
    import_size_limit_bytes: int = Field(
        160 * GB,
        gt=0,
        description="Largest image the target's import task accepts (160 GB, Rackspace "
        "Cloud Images; an OpenStack Glance target has no such limit here).",
    )
    target_allows_image_upload: bool = Field(
        False,
        description="The target's Glance accepts PUT /v2/images/{id}/file (no cloud advertises "
        "it): then a target without web-download or glance-direct is uploaded to in one stream.",
    )
    connect_timeout_seconds: float = Field(10.0, gt=0, description="TCP connect deadline.")
    read_timeout_seconds: float = Field(
        120.0, gt=0, description="Deadline for each read from a cloud API or Swift."
    )
    verify_tls: bool = Field(True, description="Verify TLS certificates.")
    ca_bundle: Path | None = Field(None, description="CA bundle for TLS verification.")

    @field_validator("transfer_concurrency", mode="before")
    @classmethod
    def _auto(cls, value: Any) -> Any:
        """``auto`` (any case) or an empty value: the adaptive stream count (None)."""
        if isinstance(value, str) and value.strip().lower() in ("", "auto"):
            return None
        return value

    @field_validator("clouds", mode="before")
    @classmethod
    def _profiles(cls, value: Any) -> dict[str, CloudProfile]:
        return parse_clouds(value)

    @field_validator("region_max_streams", mode="before")
    @classmethod
    def _region_caps_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return {}
        try:
            return json.loads(value)
        except ValueError as error:
            raise ValueError(
                f'a JSON object of region codes and caps from 1 to 64, e.g. {{"SYD": 8}} '
                f"(not JSON: {error})"
            ) from None

    @field_validator("region_max_streams", mode="after")
    @classmethod
    def _region_codes(cls, value: dict[str, int]) -> dict[str, int]:
        bad = sorted(region for region, cap in value.items() if not 1 <= cap <= 64)
        if bad:
            raise ValueError(
                f'a JSON object of region codes and caps from 1 to 64, e.g. {{"SYD": 8}} '
                f"(not {', '.join(f'{region}={value[region]}' for region in bad)})"
            )
        return {region.strip().upper(): cap for region, cap in value.items()}

    def stream_cap(self, source_region: str, target_region: str) -> int:
        """The adaptive count's cap for a copy between the two regions: the settings' caps
        and what memory allows for the chunk size (:func:`memory_stream_cap`)."""
        from imagehop.transfer.streams import memory_stream_cap

        caps = [self.transfer_max_streams, memory_stream_cap(self.chunk_size_bytes)]
        caps += [
            self.region_max_streams[code]
            for code in (source_region.strip().upper(), target_region.strip().upper())
            if code in self.region_max_streams
        ]
        return min(caps)

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

    @property
    def separate_target_account(self) -> bool:
        """Whether the target logs in with its own ``IMAGEHOP_TARGET_*`` credentials."""
        return bool(self.target_username or self.target_application_credential_id)

    @property
    def target_identity(self) -> str:
        """The target's Identity URL (the source's unless ``target_identity_url`` is set)."""
        return self.target_identity_url or self.identity_url

    def for_clouds(self, source_cloud: str | None, target_cloud: str | None) -> Settings:
        """These settings with the source side and the target side logging in as the named
        profiles of :attr:`clouds`; a side without a name keeps these settings' side (None
        and None: these settings themselves). The secrets of a profile's side are unset here:
        they come from its Secret blocks (the flows' tasks read them).

        Raises:
            UnknownCloudError: a name that is not in ``IMAGEHOP_CLOUDS``.
            ConfigurationError: only the source is named and these settings have no account
                of their own for the target.
        """
        if source_cloud is None and target_cloud is None:
            return self
        source = self.profile(source_cloud, "source_cloud") if source_cloud else None
        target = self.profile(target_cloud, "target_cloud") if target_cloud else None
        update: dict[str, Any] = {}
        if target is not None:
            update.update(target.side_fields("target_"))
        else:
            update.update(self._target_side_spelled_out(source_cloud))
        if source is not None:
            update.update(source.side_fields(""))
        resolved = self.model_copy(update=update)
        resolved._cloud_names = (source_cloud, target_cloud)
        return resolved

    @property
    def cloud_names(self) -> tuple[str | None, str | None]:
        """The profiles the source and the target log in as (:meth:`for_clouds`), for the
        errors that say what to fix; None: the side's own ``IMAGEHOP_*`` settings."""
        return self._cloud_names

    def profile(self, name: str, field: str = "cloud") -> CloudProfile:
        """The profile ``name`` of ``IMAGEHOP_CLOUDS``; UnknownCloudError naming the known
        ones otherwise (``field`` is the request field that named it)."""
        found = self.clouds.get(name)
        if found is None:
            known = ", ".join(sorted(self.clouds)) or "none"
            raise UnknownCloudError(
                f"{field} {name!r} is not a cloud of IMAGEHOP_CLOUDS (known: {known}): name one "
                f"of them, or add a profile {name!r} to IMAGEHOP_CLOUDS where the flow runs "
                "(this shell for the CLI, the worker's environment for a deployment)"
            )
        return found

    def _target_side_spelled_out(self, source_cloud: str | None) -> dict[str, Any]:
        """The target side of these settings in ``target_*`` fields alone, so that it stays
        when the source side is replaced by a profile (a target that is "the source account"
        would otherwise follow the source to the profile)."""
        update: dict[str, Any] = {
            "target_identity_url": self.target_identity,
            "target_auth_type": self.target_auth_type or self.auth_type,
        }
        if self.separate_target_account:
            return update
        if self.target_auth_type not in (None, self.auth_type):
            self.target_credentials()  # refused as without profiles: needs its own account
        if not (self.username or self.application_credential_id):
            known = ", ".join(sorted(self.clouds)) or "none"
            raise ConfigurationError(
                f"source_cloud {source_cloud!r} is named but no target_cloud, and this worker "
                "has no account of its own for the target (IMAGEHOP_USERNAME or "
                f"IMAGEHOP_APPLICATION_CREDENTIAL_ID): name a target_cloud too (known: {known})"
            )
        for name in _SIDE_FIELDS:
            update["target_" + name] = getattr(self, name)
        return update

    def source_credentials(self) -> AccountCredentials:
        """Credentials of the source account; raises ConfigurationError if unset."""
        return self._side_credentials("", self.auth_type, self.identity_url)

    def target_credentials(self) -> AccountCredentials:
        """Credentials of the target account (the source account unless set)."""
        auth_type = self.target_auth_type or self.auth_type
        if not self.separate_target_account:
            if auth_type != self.auth_type:
                raise ConfigurationError(
                    f"IMAGEHOP_TARGET_AUTH_TYPE={auth_type} differs from IMAGEHOP_AUTH_TYPE="
                    f"{self.auth_type}: another kind of login needs the target's own account; "
                    "set IMAGEHOP_TARGET_USERNAME (or IMAGEHOP_TARGET_APPLICATION_CREDENTIAL_ID) "
                    "and its secret, or unset IMAGEHOP_TARGET_AUTH_TYPE"
                )
            return self._side_credentials("", auth_type, self.target_identity)
        return self._side_credentials("target_", auth_type, self.target_identity)

    def _side_credentials(
        self, side: str, auth_type: AuthType, identity_url: str
    ) -> AccountCredentials:
        """The login of one side; ``side`` is ``""`` or ``"target_"`` (a field prefix)."""
        env = ENV_PREFIX + side.upper()

        def value(name: str) -> Any:
            return getattr(self, side + name)

        if auth_type == "rackspace":
            return _credentials(
                value("username"), value("api_key"), value("password"), f"{env}USERNAME"
            )
        if identity_url.rstrip("/") == RACKSPACE_IDENTITY_URL:
            url_env = "IMAGEHOP_TARGET_IDENTITY_URL" if side else "IMAGEHOP_IDENTITY_URL"
            raise ConfigurationError(
                f"{env}AUTH_TYPE={auth_type} logs in with Keystone v3, but the Identity URL is "
                f"Rackspace's v2.0 one: set {url_env} to your cloud's Keystone "
                f"(e.g. {KEYSTONE_EXAMPLE_URL})"
            )
        if auth_type == "v3applicationcredential":
            return _application_credential(
                value("application_credential_id"), value("application_credential_secret"), env
            )
        return _keystone_password(
            KeystoneCredentials(
                method="password",
                username=value("username"),
                password=value("password"),
                user_domain_name=value("user_domain_name"),
                project_id=value("project_id"),
                project_name=value("project_name"),
                project_domain_name=value("project_domain_name") or value("user_domain_name"),
            ),
            env,
        )


ENV_PREFIX = "IMAGEHOP_"
#: The fields of one side's account that have a ``target_`` twin (the identity URL and the
#: auth type aside).
_SIDE_FIELDS = (
    "username", "api_key", "password", "user_domain_name", "project_name", "project_id",
    "project_domain_name", "application_credential_id", "application_credential_secret",
    "api_key_secret_block", "password_secret_block", "application_credential_secret_block",
)  # fmt: skip
#: Settings whose refused value is never repeated in the message (it may hold a secret).
_VALUE_NOT_SHOWN = frozenset({"clouds"})
#: What a value must be, by pydantic error type (when the type itself is wrong).
_KIND_OF_VALUE = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "url_parsing": "a URL",
    "dict_type": "a JSON object",
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
    except SettingsError as error:  # a value the environment source itself cannot read
        raise ConfigurationError(f"{error}: fix it or unset it") from None


def setting_problem(error: Any) -> str:
    """One pydantic error of :class:`Settings` as ``IMAGEHOP_X=value: must be ...``."""
    loc = error.get("loc") or ()
    name = str(loc[0]) if loc else ""
    field = Settings.model_fields.get(name)
    if field is None:
        return str(error.get("msg", "invalid settings"))
    variable = ENV_PREFIX + name.upper()
    secret = field.annotation is not None and "SecretStr" in str(field.annotation)
    hidden = secret or name in _VALUE_NOT_SHOWN
    shown = variable if hidden else f"{variable}={_as_typed(error.get('input'))}"
    rule = value_rule(field.metadata, _KIND_OF_VALUE.get(str(error.get("type")), ""))
    if not rule:
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        rule = message[:1].lower() + message[1:]
    rule += _ALSO_ACCEPTED.get(name, "")
    return f"{shown} is refused: it must be {rule}; fix it or unset it{_default_of(field.default)}"


#: What a field takes beside what its constraints say (its validators turn it into None).
_ALSO_ACCEPTED = {"transfer_concurrency": ", or auto"}


def _as_typed(value: Any) -> str:
    """A refused value as the user wrote it: JSON settings arrive here already parsed."""
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


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


def _keystone_password(credentials: KeystoneCredentials, env: str) -> KeystoneCredentials:
    """``credentials`` if they can log in with the v3 password method, else which variable
    to set."""
    if not credentials.username:
        raise ConfigurationError(f"no user name: set {env}USERNAME (and {env}PASSWORD)")
    if credentials.password is None:
        raise ConfigurationError(
            f"user {credentials.username!r} has no password: set {env}PASSWORD "
            f"(or {env}PASSWORD_SECRET_BLOCK)"
        )
    if not credentials.user_domain_name:
        raise ConfigurationError(
            f"Keystone v3 needs the user's domain: set {env}USER_DOMAIN_NAME "
            "(Flex: rackspace_cloud_domain; many clouds: Default)"
        )
    return credentials


def _application_credential(
    credential_id: str | None, secret: SecretStr | None, env: str
) -> KeystoneCredentials:
    if not credential_id:
        raise ConfigurationError(
            f"no application credential: set {env}APPLICATION_CREDENTIAL_ID and "
            f"{env}APPLICATION_CREDENTIAL_SECRET (openstack application credential create)"
        )
    if secret is None:
        raise ConfigurationError(
            f"application credential {credential_id!r} has no secret: set "
            f"{env}APPLICATION_CREDENTIAL_SECRET (or {env}APPLICATION_CREDENTIAL_SECRET_BLOCK)"
        )
    return KeystoneCredentials(
        method="application_credential",
        application_credential_id=credential_id,
        application_credential_secret=secret,
    )
