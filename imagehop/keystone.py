"""Keystone v3: one ``POST /v3/auth/tokens`` with a password or an application credential.

The token comes back in the ``X-Subject-Token`` header and the body is ``{"token": {...}}``
with the project and a v3 catalog (one entry per ``interface`` and region). The answer is
read into the same :class:`~imagehop.access.Access` records as Identity v2.0, so the token
manager, the catalog lookups and every client work the same on either kind of cloud.
Errors go through the one error map (:mod:`imagehop.http`), then into messages naming the
variables to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagehop.access import Access, Endpoint, ServiceCatalog, Token, User
from imagehop.clock import parse_timestamp
from imagehop.errors import (
    ApiError,
    AuthenticationError,
)
from imagehop.http import HttpClient, json_body
from imagehop.login import SOURCE_VARIABLES, LoginEndpoint, SettingNames, post_login, url_variable
from imagehop.settings import KeystoneCredentials

SUBJECT_TOKEN = "X-Subject-Token"


def v3_tokens_url(identity_url: str) -> str:
    """``.../v3/auth/tokens`` from the Keystone URL with or without ``/v3``."""
    base = identity_url.rstrip("/")
    if not base.endswith("/v3"):
        base += "/v3"
    return f"{base}/auth/tokens"


def v3_auth_body(credentials: KeystoneCredentials) -> dict[str, Any]:
    """The ``POST /v3/auth/tokens`` body (secrets in clear: send it, never log it)."""
    if credentials.method == "application_credential":
        assert credentials.application_credential_secret is not None  # settings checked it
        secret = credentials.application_credential_secret.get_secret_value()
        inner = {"id": credentials.application_credential_id, "secret": secret}
        identity = {"methods": ["application_credential"], "application_credential": inner}
        return {"auth": {"identity": identity}}  # already scoped: asking for a scope is a 401
    assert credentials.password is not None  # settings checked it
    user = {
        "name": credentials.username,
        "domain": {"name": credentials.user_domain_name},
        "password": credentials.password.get_secret_value(),
    }
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
    if credentials.project_id:
        auth["scope"] = {"project": {"id": credentials.project_id}}
    elif credentials.project_name:
        domain = {"name": credentials.project_domain_name or credentials.user_domain_name}
        auth["scope"] = {"project": {"name": credentials.project_name, "domain": domain}}
    return {"auth": auth}


def parse_v3_token(subject_token: str | None, body: Any) -> Access:
    """Typed records from a v3 token answer.

    Raises:
        ValueError: no ``X-Subject-Token``, no ``token`` object or no readable expiry.
    """
    token = body.get("token") if isinstance(body, Mapping) else None
    if not subject_token:
        raise ValueError(f"no {SUBJECT_TOKEN} header")
    if not isinstance(token, Mapping) or not token.get("expires_at"):
        raise ValueError("no 'token' object with an 'expires_at'")
    project = token.get("project") or {}
    user = token.get("user") or {}
    return Access(
        token=Token(
            id=subject_token,
            expires_at=parse_timestamp(str(token["expires_at"])),
            tenant_id=_optional_str(project.get("id")),
            tenant_name=_optional_str(project.get("name")),
        ),
        user=User(
            id=_optional_str(user.get("id")),
            name=_optional_str(user.get("name")),
            default_region=None,
            roles=tuple(str(r.get("name")) for r in token.get("roles") or [] if r),
        ),
        catalog=parse_v3_catalog(token.get("catalog") or []),
    )


def parse_v3_catalog(services: Any) -> ServiceCatalog:
    """One :class:`Endpoint` per service and region, its public and internal URLs joined."""
    endpoints = []
    for service in services if isinstance(services, list) else []:
        urls: dict[str | None, dict[str, str]] = {}
        for entry in service.get("endpoints") or []:
            region = _optional_str(entry.get("region_id") or entry.get("region"))
            urls.setdefault(region, {})[str(entry.get("interface"))] = str(entry.get("url"))
        for region, by_interface in urls.items():
            endpoints.append(
                Endpoint(
                    service_name=str(service.get("name", "")),
                    service_type=str(service.get("type", "")),
                    region=region,
                    public_url=by_interface.get("public"),
                    internal_url=by_interface.get("internal"),
                    tenant_id=None,
                )
            )
    return ServiceCatalog(tuple(endpoints))


def authenticate_v3(
    http: HttpClient,
    identity_url: str,
    credentials: KeystoneCredentials,
    names: SettingNames = SOURCE_VARIABLES,
    *,
    first: bool = False,
) -> Access:
    """Log in once to Keystone v3 (see :func:`imagehop.identity.authenticate`).

    Raises:
        AuthenticationError: Keystone refused the credentials (400/401/403), naming the
            variables that hold them.
        ConfigurationError: the URL is not a Keystone v3, or (first login) cannot be reached.
    """
    endpoint = LoginEndpoint(
        v3_tokens_url(identity_url), "Keystone", "a Keystone v3", url_variable(names)
    )
    response = post_login(
        http,
        endpoint,
        v3_auth_body(credentials),
        _secrets_of(credentials),
        lambda exc: _refused(exc, credentials, names),
        first=first,
    )
    try:
        return parse_v3_token(response.headers.get(SUBJECT_TOKEN), json_body(response))
    except ValueError as exc:
        raise ApiError(f"POST /v3/auth/tokens answered with an unusable answer: {exc}") from None


def _secrets_of(credentials: KeystoneCredentials) -> tuple[str, ...]:
    secrets = (credentials.password, credentials.application_credential_secret)
    return tuple(s.get_secret_value() for s in secrets if s is not None)


def _refused(
    exc: ApiError | AuthenticationError, credentials: KeystoneCredentials, names: SettingNames
) -> AuthenticationError:
    if credentials.method == "application_credential":
        variables = (
            names.check("APPLICATION_CREDENTIAL_ID", "APPLICATION_CREDENTIAL_SECRET")
            + " (it may also have expired or been deleted)"
        )
    else:
        project = (
            ("PROJECT_ID",) if credentials.project_id else ("PROJECT_NAME", "PROJECT_DOMAIN_NAME")
        )
        variables = (
            names.check("USERNAME", "PASSWORD", "USER_DOMAIN_NAME", *project)
            + " (Keystone says 401 for any of them)"
        )
    return AuthenticationError(
        f"Keystone refused {credentials.label} ({exc.message}); check {variables}",
        exc.request_id,
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
