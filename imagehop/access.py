"""What one authentication gives, whichever Identity API gave it: the token, the user and the
service catalog (records only; Identity v2.0 is :mod:`imagehop.identity`, Keystone v3
:mod:`imagehop.keystone`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from imagehop.errors import PreflightError, UnknownRegionError

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
