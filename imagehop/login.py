"""The one login request of both Identity protocols (Rackspace's v2.0, Keystone v3).

A first login is retried only briefly (:func:`~imagehop.retries.first_login`), secrets are
redacted from every error, and the answers that mean "fix the settings" become errors that
name the variable to fix: unreachable (first login only) and 404 are ConfigurationError,
400/401/403 are what ``refused`` makes of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from imagehop.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ForbiddenError,
    NotFoundError,
    TransportError,
)
from imagehop.http import HttpClient
from imagehop.retries import first_login


@dataclass(frozen=True)
class LoginEndpoint:
    """Where a login goes, and how its errors name it."""

    url: str
    service: str  # "Identity", "Keystone"
    version: str  # "an Identity v2.0", "a Keystone v3"
    url_variable: str  # IMAGEHOP_IDENTITY_URL or IMAGEHOP_TARGET_IDENTITY_URL
    url_hint: str = ""  # e.g. "; unset it for Rackspace's"


@dataclass(frozen=True)
class SettingNames:
    """How a login's errors name the settings its credentials came from: environment
    variables (``IMAGEHOP_`` or ``IMAGEHOP_TARGET_`` and the field), or the fields of the
    cloud profile ``cloud`` of ``IMAGEHOP_CLOUDS`` (a secret there is a Secret block name)."""

    prefix: str = "IMAGEHOP_"
    cloud: str | None = None

    def check(self, *fields: str) -> str:
        """``IMAGEHOP_USERNAME and IMAGEHOP_API_KEY``, or ``username and
        api_key_secret_block of cloud 'flex' in IMAGEHOP_CLOUDS``."""
        if self.cloud is None:
            return _and([self.prefix + field for field in fields])
        names = _and([_profile_field(field) for field in fields])
        return f"{names} of cloud {self.cloud!r} in IMAGEHOP_CLOUDS"


#: The source side's own ``IMAGEHOP_*`` variables.
SOURCE_VARIABLES = SettingNames()


def _profile_field(field: str) -> str:
    name = field.lower()
    if name.endswith("_secret"):
        return name + "_block"
    return name + "_secret_block" if name in ("api_key", "password") else name


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def url_variable(names: SettingNames) -> str:
    """What holds the Identity URL of the side ``names`` names."""
    return names.check("IDENTITY_URL")


def post_login(
    http: HttpClient,
    endpoint: LoginEndpoint,
    body: dict[str, Any],
    secrets: tuple[str, ...],
    refused: Callable[[ApiError | AuthenticationError], Exception],
    *,
    first: bool,
) -> requests.Response:
    """``POST body`` to the endpoint; its answer, or the error that says what to fix."""
    try:
        return http.request(
            "POST",
            endpoint.url,
            json_body=body,
            idempotent=True,
            retry=first_login(http.retry) if first else None,
            redact=secrets,
        )
    except TransportError as exc:
        if first and exc.connect_failed:
            reason = exc.message.rsplit(": ", 1)[-1]
            raise ConfigurationError(
                f"cannot reach {endpoint.service} at {endpoint.url} ({reason}): check "
                f"{endpoint.url_variable} (host, port, http or https{endpoint.url_hint}), and "
                "that this machine can reach it (network, proxy, firewall)"
            ) from None
        raise
    except (AuthenticationError, BadRequestError, ForbiddenError) as exc:
        raise refused(exc) from None
    except NotFoundError as exc:
        raise ConfigurationError(
            f"{endpoint.url} is not {endpoint.version} endpoint ({exc.message}): check "
            f"{endpoint.url_variable}",
            exc.request_id,
        ) from None
