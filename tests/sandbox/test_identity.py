"""Identity v2.0 of the local cloud: logins, the service catalog, token scope and lifetime."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import swiftclient.client

from imagehop_sandbox.handle import LocalCloud

pytestmark = pytest.mark.cloud

APIKEY = "RAX-KSKEY:apiKeyCredentials"


def login(cloud: LocalCloud, body: Any) -> requests.Response:
    return requests.post(f"{cloud.identity_url}/tokens", json=body, timeout=10)


def key_login(cloud: LocalCloud, username: str, key: str) -> requests.Response:
    return login(cloud, {"auth": {APIKEY: {"username": username, "apiKey": key}}})


def catalog(access: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {service["name"]: service for service in access["serviceCatalog"]}


def test_api_key_login_returns_token_user_and_catalog(local_cloud: LocalCloud) -> None:
    account = local_cloud.main
    response = key_login(local_cloud, account.username, account.api_key)
    assert response.status_code == 200
    access = response.json()["access"]
    token = access["token"]
    expires = datetime.strptime(token["expires"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert 3500 < expires.timestamp() - time.time() <= 3600
    assert token["tenant"] == {"id": account.tenant_id, "name": account.tenant_id}
    assert token["RAX-AUTH:authenticatedBy"] == ["APIKEY"]
    assert access["user"]["name"] == account.username
    assert access["user"]["RAX-AUTH:defaultRegion"] == "DFW"
    assert "identity:user-admin" in {role["name"] for role in access["user"]["roles"]}


def test_catalog_offers_images_files_and_servers_in_both_regions(local_cloud: LocalCloud) -> None:
    tenant = local_cloud.main.tenant_id
    access = key_login(local_cloud, local_cloud.main.username, local_cloud.main.api_key).json()
    services = catalog(access["access"])
    assert {name: s["type"] for name, s in services.items()} == {
        "cloudImages": "image",
        "cloudFiles": "object-store",
        "cloudServersOpenStack": "compute",
    }
    for name in services:
        assert sorted(e["region"] for e in services[name]["endpoints"]) == ["DFW", "IAD"]
    for endpoint in services["cloudImages"]["endpoints"]:
        assert endpoint["publicURL"].endswith("/v2")
        assert tenant not in endpoint["publicURL"]
        assert "internalURL" not in endpoint
    for endpoint in services["cloudFiles"]["endpoints"]:
        assert endpoint["tenantId"] == f"MossoCloudFS_{tenant}"
        assert endpoint["publicURL"].endswith(f"/v1/MossoCloudFS_{tenant}")
        assert endpoint["internalURL"].endswith(f"/v1/MossoCloudFS_{tenant}")
    for endpoint in services["cloudServersOpenStack"]["endpoints"]:
        assert endpoint["publicURL"].endswith(f"/v2/{tenant}")


def test_the_catalog_can_publish_another_swift_host_for_one_region(local_cloud: LocalCloud) -> None:
    """For a test's fault proxy in front of one cluster: only that region's URL changes."""
    account = local_cloud.main
    with local_cloud.admin.temporary_options(catalog_storage_hosts={"IAD": "http://127.0.0.1:9"}):
        access = key_login(local_cloud, account.username, account.api_key).json()["access"]
    files = {e["region"]: e for e in catalog(access)["cloudFiles"]["endpoints"]}
    assert files["IAD"]["publicURL"] == f"http://127.0.0.1:9/v1/{account.swift_account}"
    assert files["DFW"]["publicURL"] == local_cloud.storage_url("DFW", account.tenant_id)
    after = key_login(local_cloud, account.username, account.api_key).json()["access"]
    assert "127.0.0.1:9/" not in str(catalog(after)["cloudFiles"])


def test_the_catalog_can_leave_a_service_out_of_one_region(local_cloud: LocalCloud) -> None:
    """As a real catalog does for a product the account lacks there: IAD keeps Cloud Files
    and servers but loses images; DFW keeps everything; the next login has it all again."""
    account = local_cloud.main
    with local_cloud.admin.temporary_options(catalog_missing_services={"IAD": ["image"]}):
        access = key_login(local_cloud, account.username, account.api_key).json()["access"]
    regions = {
        name: sorted(e["region"] for e in service["endpoints"])
        for name, service in catalog(access).items()
    }
    both = ["DFW", "IAD"]
    assert regions == {"cloudFiles": both, "cloudImages": ["DFW"], "cloudServersOpenStack": both}
    after = key_login(local_cloud, account.username, account.api_key).json()["access"]
    assert sorted(e["region"] for e in catalog(after)["cloudImages"]["endpoints"]) == ["DFW", "IAD"]


def test_password_login_works_and_says_so(local_cloud: LocalCloud) -> None:
    account = local_cloud.other
    body = {
        "auth": {
            "passwordCredentials": {"username": account.username, "password": account.password}
        }
    }
    response = login(local_cloud, body)
    assert response.status_code == 200
    token = response.json()["access"]["token"]
    assert token["RAX-AUTH:authenticatedBy"] == ["PASSWORD"]
    assert token["tenant"]["id"] == account.tenant_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"auth": {APIKEY: {"apiKey": "k"}}}, "Expecting username"),
        ({"auth": {APIKEY: {"username": "demo"}}}, "Expecting apiKey"),
        ({"auth": {"passwordCredentials": {"username": "demo"}}}, "Expecting password"),
        ({"auth": {}}, "Invalid json request body"),
        ({"credentials": {}}, "Invalid json request body"),
        (
            {
                "auth": {
                    APIKEY: {"username": "demo", "apiKey": "k"},
                    "tenantId": "1",
                    "tenantName": "1",
                }
            },
            "Specify tenantId OR tenantName",
        ),
    ],
)
def test_missing_parameters_are_400(local_cloud: LocalCloud, body: Any, message: str) -> None:
    response = login(local_cloud, body)
    assert response.status_code == 400
    assert message in response.json()["badRequest"]["message"]


def test_bad_credentials_are_401(local_cloud: LocalCloud) -> None:
    account = local_cloud.main
    wrong_key = key_login(local_cloud, account.username, "not-the-key")
    unknown = key_login(local_cloud, "nobody", account.api_key)
    body = {"auth": {"passwordCredentials": {"username": account.username, "password": "nope"}}}
    wrong_password = login(local_cloud, body)
    assert wrong_key.status_code == unknown.status_code == wrong_password.status_code == 401
    assert wrong_key.json()["unauthorized"]["message"] == "Username or api key is invalid."
    assert "Unable to authenticate" in wrong_password.json()["unauthorized"]["message"]


def test_one_token_works_for_every_service_of_its_tenant(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    for region in ("DFW", "IAD"):
        assert session.images(region, "GET", "/images").status_code == 200
        assert session.compute(region, "GET", "/flavors").status_code == 200
        assert session.storage(region, "GET", "").status_code in (200, 204)


def test_tokens_are_scoped_to_their_tenant(local_cloud: LocalCloud) -> None:
    other = local_cloud.session(local_cloud.other)
    mine = local_cloud.main.tenant_id
    headers = {"X-Auth-Token": other.token}
    swift = requests.get(local_cloud.storage_url("DFW", mine), headers=headers, timeout=10)
    compute = requests.get(
        local_cloud.compute_url("DFW", mine) + "/servers", headers=headers, timeout=10
    )
    assert swift.status_code == 403
    assert compute.status_code == 400
    assert "doesn't match" in compute.json()["badRequest"]["message"]


@pytest.mark.parametrize("token", ["", "garbage", "ihtk1.e30.bad-signature"])
def test_invalid_tokens_are_401_everywhere(local_cloud: LocalCloud, token: str) -> None:
    headers = {"X-Auth-Token": token} if token else {}
    tenant = local_cloud.main.tenant_id
    urls = [
        local_cloud.images_url("DFW") + "/images",
        local_cloud.compute_url("IAD", tenant) + "/servers",
        local_cloud.storage_url("IAD", tenant),
    ]
    for url in urls:
        assert requests.get(url, headers=headers, timeout=10).status_code == 401, url


def test_expired_tokens_are_refused_and_a_new_login_gets_a_new_one(local_cloud: LocalCloud) -> None:
    account = local_cloud.main
    with local_cloud.admin.temporary_options(token_lifetime_seconds=1.0):
        first = key_login(local_cloud, account.username, account.api_key).json()["access"]["token"]
        headers = {"X-Auth-Token": first["id"]}
        images = local_cloud.images_url("DFW") + "/images"
        storage = local_cloud.storage_url("DFW", account.tenant_id)
        assert requests.get(images, headers=headers, timeout=10).status_code == 200
        time.sleep(1.2)
        assert requests.get(images, headers=headers, timeout=10).status_code == 401
        assert requests.get(storage, headers=headers, timeout=10).status_code == 401
        second = key_login(local_cloud, account.username, account.api_key).json()["access"]["token"]
    assert second["id"] != first["id"]
    assert (
        requests.get(images, headers={"X-Auth-Token": second["id"]}, timeout=10).status_code == 200
    )


def test_same_token_until_its_last_hour_then_a_new_one(local_cloud: LocalCloud) -> None:
    account = local_cloud.other

    def token() -> str:
        response = key_login(local_cloud, account.username, account.api_key)
        return str(response.json()["access"]["token"]["id"])

    with local_cloud.admin.temporary_options(token_lifetime_seconds=7200.0):
        assert token() == token()
    with local_cloud.admin.temporary_options(token_lifetime_seconds=3000.0):
        assert token() != token()


def test_swift_clients_can_log_in_with_auth_v1(local_cloud: LocalCloud) -> None:
    account = local_cloud.main
    base = local_cloud.identity_url.removesuffix("/v2.0")
    url, token = swiftclient.client.get_auth(
        f"{base}/auth/v1.0/IAD", account.username, account.api_key, auth_version="1"
    )
    assert url == local_cloud.storage_url("IAD", account.tenant_id)
    headers, _ = swiftclient.client.get_account(url, token)
    assert headers["x-account-container-count"].isdigit()
    default_url, _ = swiftclient.client.get_auth(
        f"{base}/auth/v1.0", account.username, account.api_key, auth_version="1"
    )
    assert default_url == local_cloud.storage_url("DFW", account.tenant_id)
    with pytest.raises(swiftclient.client.ClientException) as refused:
        swiftclient.client.get_auth(
            f"{base}/auth/v1.0", account.username, "wrong", auth_version="1"
        )
    assert refused.value.http_status == 401
