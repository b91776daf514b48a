"""Rackspace Identity v2.0: ``POST /v2.0/tokens`` with an API key or a password; version
discovery at ``/`` and ``/v2.0`` as Keystone answers it (:mod:`imagehop_sandbox.discovery`).

Tokens are signed with the sandbox secret (:mod:`imagehop_sandbox.tokens`), so the Images and
Servers APIs and both Swift clusters accept them without a lookup. As on Rackspace, asking
for a token again returns the same one until it is within an hour of expiring; then (and
always, for lifetimes under an hour) a new one is issued.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from imagehop_sandbox.cloud import Cloud, user_id
from imagehop_sandbox.discovery import identity_v2, identity_versions
from imagehop_sandbox.info import REGIONS, AccountInfo, RegionInfo
from imagehop_sandbox.keystone_v3 import is_v3_path, render_v3_error
from imagehop_sandbox.models import iso_ms
from imagehop_sandbox.tokens import ACCOUNT_PREFIX, issue, verify
from imagehop_sandbox.web import App, HttpError, Request, Response

APIKEY = "RAX-KSKEY:apiKeyCredentials"
PASSWORD = "passwordCredentials"
REISSUE_WINDOW = 3600.0
BAD_BODY = "Invalid json request body"
FAULT_KINDS = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound"}


def render_identity_error(request: Request, error: HttpError) -> Response:
    """v2.0 fault bodies, Keystone v3 error bodies under the v3 paths."""
    if is_v3_path(request.path):
        return render_v3_error(request, error)
    kind = FAULT_KINDS.get(error.status, "identityFault")
    return Response.json(error.status, {kind: {"code": error.status, "message": error.message}})


class IdentityApi:
    def __init__(self, cloud: Cloud, app: App) -> None:
        self.cloud = cloud
        self.store = cloud.store
        root = urlsplit(cloud.info.identity_url)
        self.base_url = f"{root.scheme}://{root.netloc}"
        app.route("GET", "/")(self.versions)
        app.route("GET", "/v2.0")(self.version)
        app.route("POST", "/v2.0/tokens")(self.tokens)
        app.route("GET", "/auth/v1.0")(self.legacy_auth)
        app.route("GET", "/auth/v1.0/{region}")(self.legacy_auth)

    def versions(self, request: Request) -> Response:
        return identity_versions(request, self.base_url)

    def version(self, request: Request) -> Response:
        return identity_v2(request, self.base_url)

    def tokens(self, request: Request) -> Response:
        auth = request.json()
        if not isinstance(auth, dict) or not isinstance(auth.get("auth"), dict):
            raise HttpError(400, BAD_BODY)
        body: dict[str, Any] = auth["auth"]
        if "tenantId" in body and "tenantName" in body:
            raise HttpError(400, "Invalid request. Specify tenantId OR tenantName, not both.")
        account, method = self._authenticate(body)
        wanted = body.get("tenantId") or body.get("tenantName")
        if wanted is not None and str(wanted) != account.tenant_id:
            raise HttpError(401, f"Token doesn't belong to Tenant with Id/Name: '{wanted}'")
        token, expires = self._token_for(account)
        return Response.json(200, {"access": self._access(account, method, token, expires)})

    def legacy_auth(self, request: Request) -> Response:
        """Auth v1.0 (``X-Auth-User``/``X-Auth-Key``), so the ``swift`` CLI can log in with
        ``-A <identity>/auth/v1.0[/<REGION>] -U <user> -K <api key>``; the storage URL is the
        user's default region unless the path names one."""
        username = request.headers.get("X-Auth-User") or ""
        key = request.headers.get("X-Auth-Key") or ""
        account = self.cloud.account(username)
        if account is None or account.api_key != key:
            raise HttpError(401, "Username or api key is invalid.")
        region_name = request.params.get("region") or account.default_region
        try:
            region = self.cloud.info.region(region_name)
        except KeyError:
            raise HttpError(404, f"No region {region_name}.") from None
        token, _ = self._token_for(account)
        headers = {
            "X-Auth-Token": token,
            "X-Storage-Token": token,
            "X-Storage-Url": self._storage_url(region, account.tenant_id),
            "X-Server-Management-Url": region.compute_url_for(account.tenant_id),
        }
        return Response.empty(204, headers)

    def _authenticate(self, body: dict[str, Any]) -> tuple[AccountInfo, str]:
        if isinstance(body.get(APIKEY), dict):
            username, key = _credentials(body[APIKEY], "apiKey")
            account = self.cloud.account(username)
            if account is None or account.api_key != key:
                raise HttpError(401, "Username or api key is invalid.")
            return account, "APIKEY"
        if isinstance(body.get(PASSWORD), dict):
            username, password = _credentials(body[PASSWORD], "password")
            account = self.cloud.account(username)
            if account is None or account.password != password:
                raise HttpError(401, "Unable to authenticate user with credentials provided.")
            return account, "PASSWORD"
        raise HttpError(400, BAD_BODY)

    def _token_for(self, account: AccountInfo) -> tuple[str, float]:
        """The user's current token, or a new one near (or past) its expiry."""
        lifetime = self.cloud.options.token_lifetime_seconds
        with self.store.lock:
            cached = self.store.get("token", account.username)
            if cached is not None and verify(self.cloud.secret, cached["id"]) is not None:
                left = cached["expires"] - time.time()
                if REISSUE_WINDOW < left <= lifetime:
                    return cached["id"], cached["expires"]
            token, expires = issue(self.cloud.secret, account.tenant_id, account.username, lifetime)
            self.store.put("token", account.username, {"id": token, "expires": expires})
        return token, expires

    def _access(
        self, account: AccountInfo, method: str, token: str, expires: float
    ) -> dict[str, Any]:
        tenant = account.tenant_id
        return {
            "token": {
                "id": token,
                "expires": iso_ms(expires),
                "tenant": {"id": tenant, "name": tenant},
                "RAX-AUTH:authenticatedBy": [method],
            },
            "user": {
                "id": user_id(account.username),
                "name": account.username,
                "roles": _roles(account),
                "RAX-AUTH:defaultRegion": account.default_region,
            },
            "serviceCatalog": self._catalog(tenant),
        }

    def _storage_url(self, region: RegionInfo, tenant: str) -> str:
        """The region's storage URL, at the host the options publish for it if any."""
        url = region.storage_url_for(tenant)
        host = self.cloud.options.catalog_storage_hosts.get(region.name)
        return url.replace(region.storage_host, host, 1) if host else url

    def _catalog(self, tenant: str) -> list[dict[str, Any]]:
        """Every service in every region, less the ones the options leave out."""
        regions = [self.cloud.info.region(name) for name in REGIONS]
        files = ACCOUNT_PREFIX + tenant
        missing = self.cloud.options.catalog_missing_services
        services: list[dict[str, Any]] = [
            {
                "name": "cloudFiles",
                "type": "object-store",
                "endpoints": [
                    {
                        "region": r.name,
                        "tenantId": files,
                        "publicURL": self._storage_url(r, tenant),
                        "internalURL": self._storage_url(r, tenant),
                    }
                    for r in regions
                ],
            },
            {
                "name": "cloudImages",
                "type": "image",
                "endpoints": [
                    {"region": r.name, "tenantId": tenant, "publicURL": r.images_url}
                    for r in regions
                ],
            },
            {
                "name": "cloudServersOpenStack",
                "type": "compute",
                "endpoints": [
                    {
                        "region": r.name,
                        "tenantId": tenant,
                        "publicURL": r.compute_url_for(tenant),
                        "versionId": "2",
                        "versionInfo": r.compute_url_for(tenant).rsplit("/", 1)[0],
                        "versionList": r.compute_url_for(tenant).rsplit("/", 2)[0],
                    }
                    for r in regions
                ],
            },
        ]
        for service in services:
            service["endpoints"] = [
                endpoint
                for endpoint in service["endpoints"]
                if service["type"] not in missing.get(endpoint["region"], ())
            ]
        return services


def _credentials(section: dict[str, Any], secret_name: str) -> tuple[str, str]:
    username, secret = section.get("username"), section.get(secret_name)
    if not isinstance(username, str) or not username:
        raise HttpError(400, "Expecting username")
    if not isinstance(secret, str) or not secret:
        raise HttpError(400, f"Expecting {secret_name}")
    return username, secret


def _roles(account: AccountInfo) -> list[dict[str, str]]:
    tenant = account.tenant_id
    roles = [
        {
            "id": "5",
            "name": "object-store:default",
            "tenantId": ACCOUNT_PREFIX + tenant,
            "description": "A Role that allows a user access to keystone Service methods",
        },
        {
            "id": "6",
            "name": "compute:default",
            "tenantId": tenant,
            "description": "A Role that allows a user access to keystone Service methods",
        },
    ]
    if account.admin:
        roles.append({"id": "3", "name": "identity:user-admin", "description": "User Admin Role."})
    else:
        roles.append({"id": "2", "name": "identity:default", "description": "Default Role."})
        roles.append(
            {
                "id": "1000",
                "name": "cloudImages:observer",
                "tenantId": tenant,
                "description": "Read-only access to Cloud Images.",
            }
        )
    return roles
