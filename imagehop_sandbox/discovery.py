"""Version discovery, answered where Glance and Keystone answer it.

Images, like Glance's version negotiation (of the Havana-Juno releases Cloud Images v2 was
built on): the first path segment picks the API. ``/versions`` answers 200 with the versions
document; a known version (``v2``, ``v2.0`` to ``v2.2``) is the v2 API, so ``/v2.1/images``
is ``/v2/images``; any other path, ``/`` too, answers 300 Multiple Choices with the same
document. Identity, like Keystone serving v2.0 only: ``/`` answers 300 with
``{"versions": {"values": [...]}}`` and ``/v2.0`` answers 200 with ``{"version": ...}``.
No token is needed. Every ``self`` link names the host the client called, so a client that
follows it lands back on the same API. A region switched to upstream Glance (``glance_regions``)
lists today's Glance versions instead (:data:`GLANCE_VERSIONS`, as ``glance/api/versions.py``
builds them with several stores configured and no image cache: 2.17 is CURRENT, 2.12 brings
``GET /v2/images/{id}/tasks``).
"""

from __future__ import annotations

from typing import Any

from imagehop_sandbox.web import Request, Response

IMAGES_VERSIONS = (("v2.2", "CURRENT"), ("v2.1", "SUPPORTED"), ("v2.0", "SUPPORTED"))
IMAGES_PREFIXES = frozenset({"v2", *(version for version, _ in IMAGES_VERSIONS)})
GLANCE_VERSIONS = (
    ("v2.15", "SUPPORTED"),
    *((f"v2.{minor}", "SUPPORTED") for minor in range(13, 7, -1)),
    ("v2.17", "CURRENT"),
    *((f"v2.{minor}", "SUPPORTED") for minor in range(7, -1, -1)),
)
GLANCE_PREFIXES = frozenset({"v2", *(version for version, _ in GLANCE_VERSIONS)})
IDENTITY_MEDIA_TYPE = "application/vnd.openstack.identity-v2.0+json"


def images_versions(base_url: str, glance: bool = False) -> dict[str, Any]:
    """Glance's versions document; every version's ``self`` is ``<base_url>/v2/``."""
    link = {"rel": "self", "href": f"{base_url}/v2/"}
    return {
        "versions": [
            {"id": version, "status": status, "links": [dict(link)]}
            for version, status in (GLANCE_VERSIONS if glance else IMAGES_VERSIONS)
        ]
    }


def negotiate_images_version(
    request: Request, base_url: str, glance: bool = False
) -> Response | None:
    """Answer a versions request, or point a versioned path at ``/v2`` (then None).

    Args:
        request: the request; its path is rewritten for a known version.
        base_url: scheme and host of the Images endpoint, used when the client sent no Host.
        glance: the region is upstream Glance (today's versions).
    """
    first, slash, rest = request.path.lstrip("/").partition("/")
    if first == "versions":
        return Response.json(200, images_versions(request.host_url(base_url), glance))
    if first not in (GLANCE_PREFIXES if glance else IMAGES_PREFIXES):
        return Response.json(300, images_versions(request.host_url(base_url), glance))
    request.path = f"/v2{slash}{rest}"
    return None


def identity_version(base_url: str) -> dict[str, Any]:
    """Keystone's description of Identity v2.0, ``self`` being ``<base_url>/v2.0/``."""
    return {
        "id": "v2.0",
        "status": "stable",
        "updated": "2014-04-17T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base_url}/v2.0/"}],
        "media-types": [{"base": "application/json", "type": IDENTITY_MEDIA_TYPE}],
    }


def identity_versions(request: Request, base_url: str) -> Response:
    """``GET /`` of Identity: 300 with every version (here v2.0 alone)."""
    values = [identity_version(request.host_url(base_url))]
    return Response.json(300, {"versions": {"values": values}})


def identity_v2(request: Request, base_url: str) -> Response:
    """``GET /v2.0`` of Identity: 200 with the v2.0 version document."""
    return Response.json(200, {"version": identity_version(request.host_url(base_url))})
