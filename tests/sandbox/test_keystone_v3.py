"""Keystone v3 of the local cloud's generic-OpenStack mode: keystoneauth1 and
python-glanceclient, unchanged, log in with a password (user and project domains) or an
application credential, against one Keystone for both regions or a Keystone per region (as on
Flex); plain HTTP checks the wire format (``X-Subject-Token``, the v3 catalog, the errors)."""

from __future__ import annotations

from typing import Any

import glanceclient
import pytest
import requests
from keystoneauth1 import exceptions, session
from keystoneauth1.identity import generic, v3

from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.info import DOMAIN_ID, DOMAIN_NAME, AccountInfo

pytestmark = pytest.mark.cloud

TIMEOUT = 30.0
UNAUTHORIZED = "The request you have made requires authentication."


def password_session(
    cloud: LocalCloud, account: AccountInfo, region: str | None = None, **overrides: Any
) -> session.Session:
    options: dict[str, Any] = {
        "auth_url": cloud.keystone_url(region),
        "username": account.username,
        "password": account.password,
        "user_domain_name": DOMAIN_NAME,
        "project_name": account.project_name,
        "project_domain_name": DOMAIN_NAME,
    }
    options.update(overrides)
    return session.Session(auth=v3.Password(**options), timeout=TIMEOUT)


def token_request(cloud: LocalCloud, body: Any, region: str | None = None) -> requests.Response:
    return requests.post(f"{cloud.keystone_url(region)}/auth/tokens", json=body, timeout=TIMEOUT)


def password_body(account: AccountInfo, password: str | None = None) -> dict[str, Any]:
    user = {
        "name": account.username,
        "domain": {"name": DOMAIN_NAME},
        "password": account.password if password is None else password,
    }
    return {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": {"id": account.tenant_id}},
        }
    }


# -- keystoneauth1 ---------------------------------------------------------------------------


def test_password_login_with_domains_gives_every_regions_endpoints(
    local_cloud: LocalCloud,
) -> None:
    keystone = password_session(local_cloud, local_cloud.main)
    assert keystone.get_project_id() == local_cloud.main.tenant_id
    access = keystone.auth.get_access(keystone)
    assert (access.version, access.username) == ("v3", local_cloud.main.username)
    assert (access.user_domain_name, access.project_name) == (
        DOMAIN_NAME,
        local_cloud.main.project_name,
    )
    assert "member" in access.role_names
    for region in ("DFW", "IAD"):
        image = keystone.get_endpoint(service_type="image", region_name=region)
        assert image == local_cloud.images_url(region).removesuffix("/v2")
        storage = keystone.get_endpoint(service_type="object-store", region_name=region)
        assert storage == local_cloud.storage_url(region, local_cloud.main.tenant_id)
    with pytest.raises(exceptions.EndpointNotFound):
        keystone.get_endpoint(service_type="image", region_name="ORD")


def test_the_v3_token_works_on_images_and_swift(local_cloud: LocalCloud) -> None:
    keystone = password_session(
        local_cloud,
        local_cloud.main,
        user_domain_name=None,
        user_domain_id=DOMAIN_ID,
        project_name=None,
        project_domain_name=None,
        project_id=local_cloud.main.tenant_id,
    )
    glance = glanceclient.Client("2", session=keystone, region_name="IAD")
    seed = local_cloud.admin.seed()["IAD"]["base_image"]
    assert seed in {image.id for image in glance.images.list()}
    storage = keystone.get_endpoint(service_type="object-store", region_name="DFW")
    head = keystone.head(storage, timeout=TIMEOUT)
    assert head.status_code in (200, 204)
    assert "X-Account-Container-Count" in head.headers


def test_application_credential_login(local_cloud: LocalCloud) -> None:
    account = local_cloud.other
    auth = v3.ApplicationCredential(
        auth_url=local_cloud.keystone_url(),
        application_credential_id=account.app_credential_id,
        application_credential_secret=account.app_credential_secret,
    )
    keystone = session.Session(auth=auth, timeout=TIMEOUT)
    access = auth.get_access(keystone)
    assert access.project_id == account.tenant_id
    assert access.username == account.username
    url = keystone.get_endpoint(service_type="compute", region_name="IAD")
    assert url == local_cloud.compute_url("IAD", account.tenant_id)
    wrong = v3.ApplicationCredential(
        auth_url=local_cloud.keystone_url(),
        application_credential_id=account.app_credential_id,
        application_credential_secret="not-" + account.app_credential_secret,
    )
    with pytest.raises(exceptions.Unauthorized):
        session.Session(auth=wrong, timeout=TIMEOUT).get_token()


def test_a_keystone_per_region_lists_its_own_region_only(local_cloud: LocalCloud) -> None:
    keystone = password_session(local_cloud, local_cloud.main, region="IAD")
    url = keystone.get_endpoint(service_type="image", region_name="IAD")
    assert url == local_cloud.images_url("IAD").removesuffix("/v2")
    identity = keystone.get_endpoint(service_type="identity", region_name="IAD")
    assert identity == local_cloud.keystone_url("IAD")
    with pytest.raises(exceptions.EndpointNotFound):
        keystone.get_endpoint(service_type="image", region_name="DFW")


def test_the_generic_plugin_discovers_v3_from_the_identity_root(local_cloud: LocalCloud) -> None:
    account = local_cloud.main
    root = local_cloud.keystone_url("DFW").removesuffix("/v3") + "/"
    auth = generic.Password(
        auth_url=root,
        username=account.username,
        password=account.password,
        user_domain_name=DOMAIN_NAME,
        project_id=account.tenant_id,
    )
    keystone = session.Session(auth=auth, timeout=TIMEOUT)
    assert auth.get_access(keystone).version == "v3"
    assert keystone.get_endpoint(service_type="image", region_name="DFW")


def test_wrong_password_wrong_domain_and_foreign_project_are_refused(
    local_cloud: LocalCloud,
) -> None:
    main = local_cloud.main
    refused = [
        password_session(local_cloud, main, password="not-" + main.password),
        password_session(local_cloud, main, user_domain_name="Default"),
        password_session(local_cloud, main, project_name=local_cloud.other.project_name),
        password_session(local_cloud, main, username="nobody"),
    ]
    for keystone in refused:
        with pytest.raises(exceptions.Unauthorized):
            keystone.get_token()


# -- the wire --------------------------------------------------------------------------------


def test_the_token_is_in_x_subject_token_with_a_v3_catalog(local_cloud: LocalCloud) -> None:
    response = token_request(local_cloud, password_body(local_cloud.main))
    assert response.status_code == 201
    token = response.headers["X-Subject-Token"]
    document = response.json()["token"]
    assert "id" not in document and token not in response.text
    assert document["methods"] == ["password"]
    assert document["expires_at"].endswith("Z") and document["issued_at"]
    assert document["user"]["domain"] == {"id": DOMAIN_ID, "name": DOMAIN_NAME}
    assert document["project"]["id"] == local_cloud.main.tenant_id
    images = next(s for s in document["catalog"] if s["type"] == "image")
    assert {(e["interface"], e["region_id"]) for e in images["endpoints"]} == {
        (interface, region) for interface in ("public", "internal") for region in ("DFW", "IAD")
    }
    assert all(e["region"] == e["region_id"] and e["url"] for e in images["endpoints"])
    listed = requests.get(
        local_cloud.images_url("DFW") + "/images", headers={"X-Auth-Token": token}, timeout=30
    )
    assert listed.status_code == 200


def test_the_v3_catalog_can_leave_a_service_out_of_one_region(local_cloud: LocalCloud) -> None:
    """``catalog_missing_services`` shapes the v3 catalogs as it does the v2.0 one: DFW loses
    object storage, in the Keystone of both regions and in DFW's own; the next login has it."""

    def regions(region: str | None) -> dict[str, list[str]]:
        document = token_request(local_cloud, password_body(local_cloud.main), region).json()
        return {
            service["type"]: sorted({e["region_id"] for e in service["endpoints"]})
            for service in document["token"]["catalog"]
        }

    with local_cloud.admin.temporary_options(catalog_missing_services={"DFW": ["object-store"]}):
        both, own = regions(None), regions("DFW")
    assert both["object-store"] == ["IAD"]
    assert both["image"] == both["compute"] == ["DFW", "IAD"]
    assert own["object-store"] == [] and own["image"] == own["compute"] == ["DFW"]
    assert regions("DFW")["object-store"] == ["DFW"]


def test_a_refused_login_is_a_v3_401_naming_nothing(local_cloud: LocalCloud) -> None:
    response = token_request(local_cloud, password_body(local_cloud.main, "wrong"), "DFW")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": 401, "message": UNAUTHORIZED, "title": "Unauthorized"}
    }
    assert "X-Subject-Token" not in response.headers
    assert response.headers["WWW-Authenticate"].startswith('Keystone uri="http://127.0.0.1:')


def test_malformed_bodies_and_a_scoped_application_credential_are_refused(
    local_cloud: LocalCloud,
) -> None:
    missing = token_request(local_cloud, {"auth": {"identity": {"methods": ["password"]}}})
    assert missing.status_code == 400
    assert missing.json()["error"]["title"] == "Bad Request"
    assert "password" in missing.json()["error"]["message"]
    account = local_cloud.main
    credential = {"id": account.app_credential_id, "secret": account.app_credential_secret}
    scoped = token_request(
        local_cloud,
        {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": credential,
                },
                "scope": {"project": {"id": account.tenant_id}},
            }
        },
    )
    assert scoped.status_code == 401
    assert "cannot request a scope" in scoped.json()["error"]["message"]


def test_version_discovery_at_the_root_and_at_v3(local_cloud: LocalCloud) -> None:
    for region in (None, "IAD"):
        v3_url = local_cloud.keystone_url(region)
        root = requests.get(v3_url.removesuffix("/v3"), timeout=TIMEOUT)
        assert root.status_code == 300
        (only,) = root.json()["versions"]["values"]
        assert (only["id"], only["status"]) == ("v3.14", "stable")
        assert only["links"] == [{"rel": "self", "href": v3_url + "/"}]
        version = requests.get(v3_url, timeout=TIMEOUT)
        assert version.status_code == 200
        assert version.json()["version"] == only
    unknown = requests.get(local_cloud.keystone_url("ORD"), timeout=TIMEOUT)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == 404
