"""Identity v2.0: authenticate, read the service catalog, keep one account's token fresh.

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
from dataclasses import dataclass, field
from typing import Any, Literal

from imagehop.clock import SYSTEM_CLOCK, Clock, parse_timestamp
from imagehop.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ForbiddenError,
    NotFoundError,
    PreflightError,
    TransportError,
    UnknownRegionError,
)
from imagehop.http import HttpClient, json_body
from imagehop.retries import first_login
from imagehop.settings import Credentials, Settings

Interface = Literal["public", "internal"]


@dataclass(frozen=True)
class Endpoint:
    """One service's URLs in one region, as listed in the catalog."""

    service_name: str
    service_type: str
    region: str | None
    public_url: str | None
    internal_url: str | None
    tenant_id: str | None


@dataclass(frozen=True)
class ServiceCatalog:
    """The services and regions an account may use."""

    endpoints: tuple[Endpoint, ...]

    def regions(self, service_type: str) -> list[str]:
        """Regions offering ``service_type``, sorted."""
        return sorted({e.region for e in self._of_type(service_type) if e.region})

    def endpoint(self, service_type: str, region: str, interface: Interface = "public") -> str:
        """The URL of ``service_type`` in ``region`` (region codes are case-insensitive).

        Raises:
            UnknownRegionError: the region does not offer that service (lists those that do).
            PreflightError: the region offers it, but not on the ``internal`` interface.
        """
        found = self._find(service_type, region)
        url = found.public_url if interface == "public" else found.internal_url
        if not url:
            raise PreflightError(
                f"the {service_type} service in {found.region or region} has no "
                f"{interface} URL in the catalog; use the other interface"
            )
        return url

    def _of_type(self, service_type: str) -> list[Endpoint]:
        return [e for e in self.endpoints if e.service_type == service_type]

    def _find(self, service_type: str, region: str) -> Endpoint:
        candidates = self._of_type(service_type)
        for endpoint in candidates:
            if endpoint.region and endpoint.region.upper() == region.upper():
                return endpoint
        global_ones = [e for e in candidates if not e.region]
        if global_ones:
            return global_ones[0]
        raise UnknownRegionError(_unknown_region_message(self, service_type, region))


def _unknown_region_message(catalog: ServiceCatalog, service_type: str, region: str) -> str:
    offered = catalog.regions(service_type)
    if not offered:
        types = sorted({e.service_type for e in catalog.endpoints})
        return (
            f"this account's catalog has no {service_type!r} service "
            f"(it has: {', '.join(types) or 'nothing'})"
        )
    message = (
        f"region {region!r} offers no {service_type!r} endpoint to this account; "
        f"regions that do: {', '.join(offered)}"
    )
    if region.upper() == "LON":
        message += " (LON appears only in UK accounts' catalogs)"
    return message


@dataclass(frozen=True)
class Token:
    """A token and what it is good for. ``id`` is the secret and stays out of the repr."""

    id: str = field(repr=False)
    expires_at: float
    tenant_id: str | None
    tenant_name: str | None


@dataclass(frozen=True)
class User:
    """Who the token belongs to."""

    id: str | None
    name: str | None
    default_region: str | None
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Access:
    """Everything one authentication returns."""

    token: Token
    user: User
    catalog: ServiceCatalog


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
    credentials: Credentials,
    setting_prefix: str = "IMAGEHOP_",
    *,
    first: bool = False,
) -> Access:
    """Log in once.

    Args:
        http: a client *without* a token provider.
        setting_prefix: prefix of the environment variables these credentials came from,
            named in the error so the user knows what to fix (``IMAGEHOP_TARGET_`` for a
            separate target account).
        first: the first login of this account: a connection that cannot be made is not
            retried (:func:`~imagehop.retries.first_login`) and is a configuration
            problem.

    Raises:
        AuthenticationError: Identity refused the credentials (400/401/403).
        ConfigurationError: the Identity URL does not answer like Identity v2.0, or (first
            login) cannot be reached at all.
    """
    url = tokens_url(identity_url)
    try:
        response = http.request(
            "POST",
            url,
            json_body=auth_request_body(credentials),
            idempotent=True,
            retry=first_login(http.retry) if first else None,
            redact=_secrets_of(credentials),
        )
    except TransportError as exc:
        if first and exc.connect_failed:
            raise _unreachable(url, exc) from None
        raise
    except (AuthenticationError, BadRequestError, ForbiddenError) as exc:
        raise _refused(exc, credentials, setting_prefix) from None
    except NotFoundError as exc:
        raise ConfigurationError(
            f"{url} is not an Identity v2.0 endpoint ({exc.message}): check IMAGEHOP_IDENTITY_URL",
            exc.request_id,
        ) from None
    try:
        return parse_access(json_body(response))
    except ValueError as exc:
        raise ApiError(f"POST /tokens answered with an unusable body: {exc}") from None


def _unreachable(url: str, exc: TransportError) -> ConfigurationError:
    reason = exc.message.rsplit(": ", 1)[-1]
    return ConfigurationError(
        f"cannot reach Identity at {url} ({reason}): check IMAGEHOP_IDENTITY_URL (host, port, "
        "http or https; unset it for Rackspace's), and that this machine can reach it "
        "(network, proxy, firewall)"
    )


def _secrets_of(credentials: Credentials) -> tuple[str, ...]:
    secrets = (credentials.api_key, credentials.password)
    return tuple(s.get_secret_value() for s in secrets if s is not None)


def _refused(
    exc: ApiError | AuthenticationError, credentials: Credentials, prefix: str
) -> Exception:
    secret = "API_KEY" if credentials.api_key is not None else "PASSWORD"
    return AuthenticationError(
        f"Identity refused user {credentials.username!r} ({exc.message}); check "
        f"{prefix}USERNAME and {prefix}{secret} (a 401 can also mean the account "
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
        credentials: Credentials,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        setting_prefix: str = "IMAGEHOP_",
        http: HttpClient | None = None,
    ) -> None:
        self._identity_url = identity_url
        self._credentials = credentials
        self._margin = settings.token_refresh_margin_seconds
        self._clock = clock
        self._prefix = setting_prefix
        self._http = http or HttpClient(settings, clock=clock)
        self._lock = threading.Lock()
        self._access: Access | None = None
        self._refresh_at = 0.0

    @classmethod
    def for_source(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> TokenManager:
        """The manager of the source account named by ``settings``."""
        credentials = settings.source_credentials()
        return cls(settings.identity_url, credentials, settings, clock=clock)

    @classmethod
    def for_target(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> TokenManager:
        """The manager of the target account (the source account unless one is set)."""
        prefix = "IMAGEHOP_" if settings.target_username is None else "IMAGEHOP_TARGET_"
        credentials = settings.target_credentials()
        return cls(settings.identity_url, credentials, settings, clock=clock, setting_prefix=prefix)

    def __repr__(self) -> str:
        return f"TokenManager(user={self._credentials.username!r}, url={self._identity_url!r})"

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
            self._http, self._identity_url, self._credentials, self._prefix, first=first
        )
        self._access = access
        self._refresh_at = refresh_time(obtained_at, access.token.expires_at, self._margin)
