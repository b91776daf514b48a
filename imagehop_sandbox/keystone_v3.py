"""Keystone v3 of the local cloud's generic-OpenStack mode, beside the Rackspace v2.0 Identity.

Served on the Identity port under its own paths, so the Rackspace-style root stays as it is:

=============================  ==============================================================
``/identity``                  one Keystone for both regions; catalog of both
``/identity/<region>``         a Keystone per region, as on Rackspace OpenStack Flex
                               (``keystone.api.<region>.rackspacecloud.com``); catalog of
                               that region only
=============================  ==============================================================

Under each: ``GET /`` (300, every version), ``GET /v3`` (200, the v3 version document) and
``POST /v3/auth/tokens`` with the ``password`` method (user by id, or by name with its domain)
or the ``application_credential`` method (by id, or by name with its user). The token comes
in ``X-Subject-Token`` (201), the body is ``{"token": {...}}`` with a catalog of
``endpoints`` carrying ``interface``, ``region``/``region_id`` and ``url``. Without a scope
the token is scoped to the user's default project (Keystone does that when the user has one).
Errors are Keystone's: ``{"error": {"code", "message", "title"}}``; every refused login is
the same 401, naming nothing. Tokens are the sandbox's signed tokens, so Images, Servers and
Swift accept them as they accept v2.0 ones.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from imagehop_sandbox.cloud import Cloud, user_id
from imagehop_sandbox.info import DOMAIN_ID, DOMAIN_NAME, REGIONS, AccountInfo, RegionInfo
from imagehop_sandbox.tokens import issue
from imagehop_sandbox.web import App, HttpError, Request, Response

PREFIX = "/identity"
MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"
VERSION_ID = "v3.14"
VERSION_UPDATED = "2020-04-07T00:00:00Z"
APP_CREDENTIAL_NAME = "imagehop-sandbox"
UNAUTHORIZED = "The request you have made requires authentication."
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
CLIENT_ERROR = (
    "The server could not comply with the request since it is either malformed or otherwise "
    "incorrect. The client is assumed to be in error."
)


def is_v3_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def render_v3_error(request: Request, error: HttpError) -> Response:
    """Keystone's error body; a 401 also names where to authenticate."""
    title = TITLES.get(error.status, "Internal Server Error")
    body = {"error": {"code": error.status, "message": error.message, "title": title}}
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = f'Keystone uri="{request.host_url("")}{_base(request)}"'
    return Response.json(error.status, body, headers)


def keystone_time(epoch: float) -> str:
    """``2015-11-05T22:00:11.000000Z``, Keystone's timestamp format."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _base(request: Request) -> str:
    """``/identity`` or ``/identity/<region>``: the Keystone this request was sent to."""
    region = request.params.get("region")
    return f"{PREFIX}/{region}" if region else PREFIX


def _invalid(attribute: str, target: str) -> HttpError:
    return HttpError(400, f"Expecting to find {attribute} in {target}. {CLIENT_ERROR}")


def _unauthorized() -> HttpError:
    return HttpError(401, UNAUTHORIZED)


class KeystoneV3Api:
    def __init__(self, cloud: Cloud, app: App) -> None:
        self.cloud = cloud
        for base in (PREFIX, PREFIX + "/{region}"):
            app.route("GET", base)(self.versions)
            app.route("GET", base + "/v3")(self.version)
            app.route("POST", base + "/v3/auth/tokens")(self.tokens)

    # -- discovery -----------------------------------------------------------------------

    def versions(self, request: Request) -> Response:
        self._regions(request)
        return Response.json(300, {"versions": {"values": [self._version(request)]}})

    def version(self, request: Request) -> Response:
        self._regions(request)
        return Response.json(200, {"version": self._version(request)})

    def _version(self, request: Request) -> dict[str, Any]:
        return {
            "id": VERSION_ID,
            "status": "stable",
            "updated": VERSION_UPDATED,
            "links": [{"rel": "self", "href": f"{self._url(request)}/v3/"}],
            "media-types": [{"base": "application/json", "type": MEDIA_TYPE}],
        }

    def _url(self, request: Request) -> str:
        return request.host_url(self.cloud.info.identity_url.rsplit("/", 1)[0]) + _base(request)

    def _regions(self, request: Request) -> list[RegionInfo]:
        """The regions this Keystone serves: both, or the one its path names (404 if none)."""
        name = request.params.get("region")
        if name is None:
            return [self.cloud.info.region(r) for r in REGIONS]
        if name.upper() not in self.cloud.info.regions:
            raise HttpError(404, f"Could not find region: {name}.")
        return [self.cloud.info.region(name)]

    # -- tokens --------------------------------------------------------------------------

    def tokens(self, request: Request) -> Response:
        regions = self._regions(request)
        body = request.json()
        auth = body.get("auth") if isinstance(body, dict) else None
        if not isinstance(auth, dict):
            raise _invalid("auth", "request body")
        identity = _section(auth, "identity", "auth")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods:
            raise _invalid("methods", "identity")
        scope = auth.get("scope")
        if "application_credential" in methods:
            account = self._application_credential(identity)
            if scope is not None:
                raise HttpError(401, "Application credentials cannot request a scope.")
            method = "application_credential"
        elif "password" in methods:
            account = self._password(identity)
            self._check_scope(account, scope)
            method = "password"
        else:
            raise HttpError(401, f"Attempted to authenticate with an unsupported method: {methods}")
        lifetime = self.cloud.options.token_lifetime_seconds
        scope_regions = (
            tuple(region.name for region in regions) if request.params.get("region") else None
        )
        token, expires = issue(
            self.cloud.secret, account.tenant_id, account.username, lifetime, scope_regions
        )
        document = self._token(request, account, method, expires, regions)
        return Response.json(201, {"token": document}, {"X-Subject-Token": token})

    def _password(self, identity: dict[str, Any]) -> AccountInfo:
        user = _section(_section(identity, "password", "identity"), "user", "password")
        account = self._user(user, "user")
        password = user.get("password")
        if not isinstance(password, str):
            raise _invalid("password", "user")
        if account.password != password:
            raise _unauthorized()
        return account

    def _application_credential(self, identity: dict[str, Any]) -> AccountInfo:
        credential = _section(identity, "application_credential", "identity")
        secret = credential.get("secret")
        if not isinstance(secret, str):
            raise _invalid("secret", "application_credential")
        if "id" in credential:
            account = next(
                (
                    a
                    for a in self.cloud.info.accounts
                    if a.app_credential_id and a.app_credential_id == credential["id"]
                ),
                None,
            )
        elif credential.get("name") == APP_CREDENTIAL_NAME:
            account = self._user(_section(credential, "user", "application_credential"), "user")
        else:
            account = None
        if account is None or account.app_credential_secret != secret:
            raise _unauthorized()
        return account

    def _user(self, user: dict[str, Any], where: str) -> AccountInfo:
        """The account a ``user`` object names: by ``id``, or by ``name`` and ``domain``."""
        if "id" in user:
            found = next(
                (a for a in self.cloud.info.accounts if user_id(a.username) == str(user["id"])),
                None,
            )
        elif "name" in user:
            _check_domain(_section(user, "domain", where))
            found = self.cloud.account(str(user["name"]))
        else:
            raise _invalid("id or name", where)
        if found is None:
            raise _unauthorized()
        return found

    def _check_scope(self, account: AccountInfo, scope: Any) -> None:
        """Only the user's own project can be asked for (a domain or the system: 401)."""
        if scope is None:
            return
        if not isinstance(scope, dict) or not isinstance(scope.get("project"), dict):
            raise _unauthorized()
        project = scope["project"]
        if "id" in project:
            if str(project["id"]) != account.tenant_id:
                raise _unauthorized()
            return
        if "name" not in project:
            raise _invalid("id or name", "project")
        _check_domain(_section(project, "domain", "project"))
        if project["name"] != account.project_name:
            raise _unauthorized()

    # -- the token document --------------------------------------------------------------

    def _token(
        self,
        request: Request,
        account: AccountInfo,
        method: str,
        expires: float,
        regions: list[RegionInfo],
    ) -> dict[str, Any]:
        domain = {"id": DOMAIN_ID, "name": DOMAIN_NAME}
        document: dict[str, Any] = {
            "methods": [method],
            "user": {
                "domain": domain,
                "id": user_id(account.username),
                "name": account.username,
                "password_expires_at": None,
            },
            "audit_ids": [uuid.uuid4().hex[:22]],
            "expires_at": keystone_time(expires),
            "issued_at": keystone_time(time.time()),
            "project": {"domain": domain, "id": account.tenant_id, "name": account.project_name},
            "is_domain": False,
            "roles": _roles(account),
            "catalog": self._catalog(request, account.tenant_id, regions),
        }
        if method == "application_credential":
            document["application_credential"] = {
                "id": account.app_credential_id,
                "name": APP_CREDENTIAL_NAME,
                "restricted": True,
            }
        return document

    def _catalog(
        self, request: Request, tenant: str, regions: list[RegionInfo]
    ) -> list[dict[str, Any]]:
        identity = self._url(request) + "/v3"
        services: dict[tuple[str, str], Callable[[RegionInfo], str]] = {
            ("identity", "keystone"): lambda r: identity,
            ("image", "glance"): lambda r: r.images_url.removesuffix("/v2"),  # unversioned
            ("compute", "nova"): lambda r: r.compute_url_for(tenant),
            ("object-store", "swift"): lambda r: r.storage_url_for(tenant),
        }
        missing = self.cloud.options.catalog_missing_services  # as in the v2.0 catalog
        return [
            {
                "id": _stable_id(service_type),
                "type": service_type,
                "name": name,
                "endpoints": [
                    {
                        "id": _stable_id(f"{service_type}-{region.name}-{interface}"),
                        "interface": interface,
                        "region": region.name,
                        "region_id": region.name,
                        "url": url_of(region),
                    }
                    for region in regions
                    if service_type not in missing.get(region.name, ())
                    for interface in ("public", "internal")
                ],
            }
            for (service_type, name), url_of in services.items()
        ]


def _section(parent: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise _invalid(name, where)
    return value


def _check_domain(domain: dict[str, Any]) -> None:
    """The one domain of the sandbox, by id or by name; any other: 401, as Keystone says."""
    if domain.get("id", DOMAIN_ID) != DOMAIN_ID or domain.get("name", DOMAIN_NAME) != DOMAIN_NAME:
        raise _unauthorized()
    if "id" not in domain and "name" not in domain:
        raise _invalid("id or name", "domain")


def _roles(account: AccountInfo) -> list[dict[str, str]]:
    names = ["reader", "member", "admin"] if account.admin else ["reader"]
    return [{"id": _stable_id(f"role-{name}"), "name": name} for name in names]


def _stable_id(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"imagehop-sandbox:{name}").hex
