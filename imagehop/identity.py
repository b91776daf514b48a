"""Identity v2.0: authenticate, read the service catalog, keep one account's token fresh.

Keystone v3 accounts (any OpenStack cloud, Rackspace OpenStack Flex) log in through
:mod:`imagehop.keystone` into the same records (:mod:`imagehop.access`), so one token manager
serves both kinds of cloud; source and target may be on different ones.

One :class:`TokenManager` per account (source and target may be different accounts) is
shared by every client of that account, including the object-store connections of the
transfer workers, so it is thread-safe. It refreshes the token *before* it expires
(``Settings.token_refresh_margin_seconds``; Rackspace only issues a new token in the last
hour of the old one) and re-authenticates after a 401 (``invalidate``).

The token is a secret: it never appears in a repr, a log line or an exception message, and
nothing here is meant to be pickled into a Prefect result except the catalog records.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from imagehop.access import Access, Endpoint, Interface, ServiceCatalog, Token, User
from imagehop.clock import SYSTEM_CLOCK, Clock, parse_timestamp
from imagehop.errors import (
    ApiError,
    AuthenticationError,
)
from imagehop.http import HttpClient, json_body
from imagehop.keystone import authenticate_v3
from imagehop.login import SOURCE_VARIABLES, LoginEndpoint, SettingNames, post_login, url_variable
from imagehop.settings import AccountCredentials, Credentials, KeystoneCredentials, Settings


def auth_request_body(credentials: Credentials) -> dict[str, Any]:
    """The ``POST /tokens`` body: API-key credentials if there is a key, else password."""
    if credentials.api_key is not None:
        inner = {"username": credentials.username, "apiKey": credentials.api_key.get_secret_value()}
        return {"auth": {"RAX-KSKEY:apiKeyCredentials": inner}}
    assert credentials.password is not None  # Credentials guarantees one of the two
    inner = {"username": credentials.username, "password": credentials.password.get_secret_value()}
    return {"auth": {"passwordCredentials": inner}}


def parse_access(body: Any) -> Access:
    """Typed records from a ``POST /tokens`` answer.

    Raises:
        ValueError: the body lacks the token id or a readable expiry.
    """
    access = body.get("access") if isinstance(body, Mapping) else None
    if not isinstance(access, Mapping):
        raise ValueError("no 'access' object")
    return Access(
        token=_parse_token(access.get("token") or {}),
        user=_parse_user(access.get("user") or {}),
        catalog=parse_catalog(access.get("serviceCatalog") or []),
    )


def _parse_token(token: Mapping[str, Any]) -> Token:
    if not token.get("id") or not token.get("expires"):
        raise ValueError("the token has no id or no expiry")
    tenant = token.get("tenant") or {}
    return Token(
        id=str(token["id"]),
        expires_at=parse_timestamp(str(token["expires"])),
        tenant_id=_optional_str(tenant.get("id")),
        tenant_name=_optional_str(tenant.get("name")),
    )


def _parse_user(user: Mapping[str, Any]) -> User:
    roles = tuple(str(r.get("name")) for r in user.get("roles") or [] if isinstance(r, Mapping))
    return User(
        id=_optional_str(user.get("id")),
        name=_optional_str(user.get("name")),
        default_region=_optional_str(user.get("RAX-AUTH:defaultRegion")),
        roles=roles,
    )


def parse_catalog(services: Any) -> ServiceCatalog:
    """A :class:`ServiceCatalog` from ``access.serviceCatalog``."""
    endpoints = []
    for service in services if isinstance(services, list) else []:
        for entry in service.get("endpoints") or []:
            endpoints.append(
                Endpoint(
                    service_name=str(service.get("name", "")),
                    service_type=str(service.get("type", "")),
                    region=_optional_str(entry.get("region")),
                    public_url=_optional_str(entry.get("publicURL")),
                    internal_url=_optional_str(entry.get("internalURL")),
                    tenant_id=_optional_str(entry.get("tenantId")),
                )
            )
    return ServiceCatalog(tuple(endpoints))


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def tokens_url(identity_url: str) -> str:
    """``{identity_url}/tokens``, accepting the Identity URL with or without ``/v2.0``."""
    base = identity_url.rstrip("/")
    if not base.endswith("/v2.0"):
        base += "/v2.0"
    return f"{base}/tokens"


def authenticate(
    http: HttpClient,
    identity_url: str,
    credentials: AccountCredentials,
    names: SettingNames = SOURCE_VARIABLES,
    *,
    first: bool = False,
) -> Access:
    """Log in once: Identity v2.0, or Keystone v3 for :class:`KeystoneCredentials`
    (:func:`imagehop.keystone.authenticate_v3`).

    Args:
        http: a client *without* a token provider.
        names: the settings these credentials came from, named in the error so the user
            knows what to fix (``IMAGEHOP_TARGET_*`` for a separate target account, a cloud
            profile's fields for a side that names one).
        first: the first login of this account: a connection that cannot be made is not
            retried (:func:`~imagehop.retries.first_login`) and is a configuration
            problem.

    Raises:
        AuthenticationError: Identity refused the credentials (400/401/403).
        ConfigurationError: the Identity URL does not answer like Identity v2.0, or (first
            login) cannot be reached at all.
    """
    if isinstance(credentials, KeystoneCredentials):
        return authenticate_v3(http, identity_url, credentials, names, first=first)
    endpoint = LoginEndpoint(
        tokens_url(identity_url),
        "Identity",
        "an Identity v2.0",
        url_variable(names),
        "; unset it for Rackspace's",
    )
    response = post_login(
        http,
        endpoint,
        auth_request_body(credentials),
        _secrets_of(credentials),
        lambda exc: _refused(exc, credentials, names),
        first=first,
    )
    try:
        return parse_access(json_body(response))
    except ValueError as exc:
        raise ApiError(f"POST /tokens answered with an unusable body: {exc}") from None


def _secrets_of(credentials: Credentials) -> tuple[str, ...]:
    secrets = (credentials.api_key, credentials.password)
    return tuple(s.get_secret_value() for s in secrets if s is not None)


def _refused(
    exc: ApiError | AuthenticationError, credentials: Credentials, names: SettingNames
) -> Exception:
    secret = "API_KEY" if credentials.api_key is not None else "PASSWORD"
    return AuthenticationError(
        f"Identity refused user {credentials.username!r} ({exc.message}); check "
        f"{names.check('USERNAME', secret)} (a 401 can also mean the account "
        "requires multi-factor authentication)",
        exc.request_id,
    )


SKEWED_TOKEN_REUSE_SECONDS = 60.0


def refresh_time(obtained_at: float, expires_at: float, margin: float) -> float:
    """When to fetch a new token: ``margin`` before expiry, or half-way through a token
    whose whole lifetime is shorter than twice the margin (so short tokens never thrash).

    A token that looks expired on arrival (our clock is ahead of the cloud's) is kept for
    ``SKEWED_TOKEN_REUSE_SECONDS`` instead of being renewed on every call; a 401 still
    replaces it at once.
    """
    lifetime = expires_at - obtained_at
    if lifetime <= 0:
        return obtained_at + SKEWED_TOKEN_REUSE_SECONDS
    return expires_at - min(margin, lifetime / 2)


class TokenManager:
    """The token of one account, shared by all its clients and threads."""

    def __init__(
        self,
        identity_url: str,
        credentials: AccountCredentials,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        names: SettingNames = SOURCE_VARIABLES,
        http: HttpClient | None = None,
    ) -> None:
        self._identity_url = identity_url
        self._credentials = credentials
        self._margin = settings.token_refresh_margin_seconds
        self._clock = clock
        self._names = names
        self._http = http or HttpClient(settings, clock=clock)
        self._lock = threading.Lock()
        self._access: Access | None = None
        self._refresh_at = 0.0

    @classmethod
    def for_source(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> TokenManager:
        """The manager of the source account named by ``settings``."""
        credentials = settings.source_credentials()
        names = SettingNames(cloud=settings.cloud_names[0])
        return cls(settings.identity_url, credentials, settings, clock=clock, names=names)

    @classmethod
    def for_target(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> TokenManager:
        """The manager of the target account (the source account unless one is set)."""
        prefix = "IMAGEHOP_TARGET_" if settings.separate_target_account else "IMAGEHOP_"
        names = SettingNames(prefix, settings.cloud_names[1])
        credentials = settings.target_credentials()
        return cls(settings.target_identity, credentials, settings, clock=clock, names=names)

    def __repr__(self) -> str:
        who = (
            self._credentials.label
            if isinstance(self._credentials, KeystoneCredentials)
            else f"user {self._credentials.username!r}"
        )
        return f"TokenManager({who}, url={self._identity_url!r})"

    def token(self) -> str:
        """A valid token, from cache unless it is near expiry or was invalidated."""
        return self._current().token.id

    def invalidate(self, stale: str) -> None:
        """Forget ``stale`` after a 401; a no-op if another thread already replaced it."""
        with self._lock:
            if self._access is not None and self._access.token.id == stale:
                self._refresh_at = float("-inf")

    @property
    def catalog(self) -> ServiceCatalog:
        """The account's service catalog (authenticates on first use)."""
        return self._current().catalog

    @property
    def tenant_id(self) -> str | None:
        """The account's tenant id."""
        return self._current().token.tenant_id

    @property
    def user(self) -> User:
        """The authenticated user (roles tell whether it may create tasks)."""
        return self._current().user

    def endpoint(self, service_type: str, region: str, interface: Interface = "public") -> str:
        """Shortcut for ``catalog.endpoint(...)``."""
        return self.catalog.endpoint(service_type, region, interface)

    def _current(self) -> Access:
        with self._lock:
            if self._access is None or self._clock.time() >= self._refresh_at:
                self._renew()
            assert self._access is not None
            return self._access

    def _renew(self) -> None:
        obtained_at = self._clock.time()
        first = self._access is None
        access = authenticate(
            self._http, self._identity_url, self._credentials, self._names, first=first
        )
        self._access = access
        self._refresh_at = refresh_time(obtained_at, access.token.expires_at, self._margin)
