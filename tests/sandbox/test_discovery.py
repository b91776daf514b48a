"""Version discovery of the local cloud, as Glance (Images) and Keystone (Identity) answer it:
status codes, document shapes, and ``self`` links that lead back to a working API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from imagehop_sandbox.handle import LocalCloud

pytestmark = pytest.mark.cloud

TIMEOUT = 10


def root_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def images_root(cloud: LocalCloud, region: str = "DFW") -> str:
    return root_of(cloud.images_url(region))


def assert_glance_versions(doc: dict[str, Any], href: str) -> None:
    versions = doc["versions"]
    assert {v["id"] for v in versions} == {"v2.0", "v2.1", "v2.2"}
    assert [v["status"] for v in versions].count("CURRENT") == 1
    assert {v["status"] for v in versions} <= {"CURRENT", "SUPPORTED"}
    for version in versions:
        assert version["links"] == [{"rel": "self", "href": href}]


@pytest.mark.parametrize("region", ["DFW", "IAD"])
def test_images_root_is_300_with_versions_whose_link_reaches_the_api(
    local_cloud: LocalCloud, region: str
) -> None:
    response = requests.get(images_root(local_cloud, region) + "/", timeout=TIMEOUT)
    assert response.status_code == 300
    assert response.headers["Content-Type"] == "application/json"
    href = local_cloud.images_url(region) + "/"
    assert_glance_versions(response.json(), href)
    token = local_cloud.session().token
    images = requests.get(href + "images", headers={"X-Auth-Token": token}, timeout=TIMEOUT)
    assert images.status_code == 200
    assert "images" in images.json()


def test_images_versions_path_is_200_with_the_same_document(local_cloud: LocalCloud) -> None:
    root = images_root(local_cloud)
    response = requests.get(root + "/versions", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == requests.get(root + "/", timeout=TIMEOUT).json()


@pytest.mark.parametrize("path", ["/v1/images", "/v3", "/images"])
def test_unknown_image_api_versions_get_the_choices(local_cloud: LocalCloud, path: str) -> None:
    response = requests.get(images_root(local_cloud) + path, timeout=TIMEOUT)
    assert response.status_code == 300
    assert_glance_versions(response.json(), local_cloud.images_url("DFW") + "/")


def test_minor_version_prefixes_reach_the_v2_api(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    base_id = local_cloud.admin.seed()["DFW"]["base_image"]
    url = f"{images_root(local_cloud)}/v2.1/images/{base_id}"
    response = requests.get(url, headers={"X-Auth-Token": session.token}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["id"] == base_id


def test_version_links_name_the_host_the_client_called(local_cloud: LocalCloud) -> None:
    headers = {"Host": "images.example.test:8080"}
    images = requests.get(images_root(local_cloud) + "/", headers=headers, timeout=TIMEOUT)
    assert_glance_versions(images.json(), "http://images.example.test:8080/v2/")
    identity_root = root_of(local_cloud.identity_url)
    identity = requests.get(identity_root + "/", headers=headers, timeout=TIMEOUT).json()
    (version,) = identity["versions"]["values"]
    assert version["links"][0]["href"] == "http://images.example.test:8080/v2.0/"


def assert_keystone_v2(version: dict[str, Any], href: str) -> None:
    assert version["id"] == "v2.0"
    assert version["status"] == "stable"
    assert version["links"] == [{"rel": "self", "href": href}]
    media_type = "application/vnd.openstack.identity-v2.0+json"
    assert version["media-types"] == [{"base": "application/json", "type": media_type}]


def test_identity_root_is_300_with_v2_whose_link_issues_tokens(local_cloud: LocalCloud) -> None:
    response = requests.get(root_of(local_cloud.identity_url) + "/", timeout=TIMEOUT)
    assert response.status_code == 300
    (version,) = response.json()["versions"]["values"]
    href = local_cloud.identity_url + "/"
    assert_keystone_v2(version, href)
    account = local_cloud.main
    credentials = {"username": account.username, "password": account.password}
    body = {"auth": {"passwordCredentials": credentials}}
    login = requests.post(href + "tokens", json=body, timeout=TIMEOUT)
    assert login.status_code == 200
    assert login.json()["access"]["token"]["tenant"]["id"] == account.tenant_id


@pytest.mark.parametrize("suffix", ["", "/"])
def test_identity_v2_is_200_with_the_version_document(local_cloud: LocalCloud, suffix: str) -> None:
    response = requests.get(local_cloud.identity_url + suffix, timeout=TIMEOUT)
    assert response.status_code == 200
    assert_keystone_v2(response.json()["version"], local_cloud.identity_url + "/")
