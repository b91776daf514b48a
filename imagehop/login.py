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


def url_variable(setting_prefix: str) -> str:
    """The variable that holds the Identity URL of the side ``setting_prefix`` names."""
    if setting_prefix == "IMAGEHOP_TARGET_":
        return "IMAGEHOP_TARGET_IDENTITY_URL"
    return "IMAGEHOP_IDENTITY_URL"


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
