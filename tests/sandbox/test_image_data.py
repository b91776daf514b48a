"""Glance's image download (``GET /v2/images/{id}/file``) in a region switched to Glance with
the ``glance_regions`` option: python-glanceclient's ``images.data()`` unchanged (checking
``Content-MD5``), single byte ranges (206, 416) answered from the real Swift, and the
Rackspace-style regions unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import glanceclient
import pytest
import requests
from keystoneauth1 import session
from keystoneauth1.identity import v3

from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.info import DOMAIN_NAME
from imagehop_sandbox.options import MiB

pytestmark = pytest.mark.cloud

GLANCE_REGION = "IAD"
DISK_BYTES = 3 * MiB + 4321  # above the test clusters' 2 MiB object cap: stored as an SLO
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def glance_region(local_cloud: LocalCloud) -> Iterator[str]:
    with local_cloud.admin.temporary_options(glance_regions=GLANCE_REGION):
        yield GLANCE_REGION


@pytest.fixture(scope="module")
def image(local_cloud: LocalCloud, glance_region: str) -> dict[str, Any]:
    made = local_cloud.admin.create_image(
        glance_region, local_cloud.main.tenant_id, disk_bytes=DISK_BYTES
    )
    view: dict[str, Any] = (
        local_cloud.session().images(glance_region, "GET", f"/images/{made['id']}").json()
    )
    view["bytes"] = download(local_cloud, glance_region, made["id"]).content
    return view


def download(
    cloud: LocalCloud, region: str, image_id: str, byte_range: str | None = None
) -> requests.Response:
    headers = {"Range": byte_range} if byte_range else {}
    return cloud.session().images(region, "GET", f"/images/{image_id}/file", headers=headers)


def test_glanceclient_downloads_the_image_and_checks_its_md5(
    local_cloud: LocalCloud, image: dict[str, Any]
) -> None:
    account = local_cloud.main
    auth = v3.Password(
        auth_url=local_cloud.keystone_url(GLANCE_REGION),
        username=account.username,
        password=account.password,
        user_domain_name=DOMAIN_NAME,
        project_id=account.tenant_id,
    )
    glance = glanceclient.Client(
        "2", session=session.Session(auth=auth, timeout=TIMEOUT), region_name=GLANCE_REGION
    )
    data = b"".join(glance.images.data(image["id"], allow_md5_fallback=True))
    expected = local_cloud.admin.image_content_md5(image["id"])
    assert len(data) == image["size"] > DISK_BYTES
    assert hashlib.md5(data, usedforsecurity=False).hexdigest() == expected
    assert glance.images.get(image["id"]).checksum == expected


def test_the_whole_download_carries_content_md5(
    local_cloud: LocalCloud, image: dict[str, Any]
) -> None:
    whole = download(local_cloud, GLANCE_REGION, image["id"])
    assert whole.status_code == 200
    assert whole.headers["Content-Type"] == "application/octet-stream"
    assert int(whole.headers["Content-Length"]) == len(whole.content) == image["size"]
    assert whole.headers["Content-MD5"] == hashlib.md5(whole.content).hexdigest()


@pytest.mark.parametrize(
    ("byte_range", "start", "end"),
    [
        ("bytes=10-19", 10, 20),
        ("bytes=-5", None, None),
        (f"bytes={2 * MiB - 3}-{2 * MiB + 2}", 2 * MiB - 3, 2 * MiB + 3),  # across segments
        (f"bytes={3 * MiB}-", 3 * MiB, None),
    ],
)
def test_one_range_is_a_206_with_content_range(
    local_cloud: LocalCloud,
    image: dict[str, Any],
    byte_range: str,
    start: int | None,
    end: int | None,
) -> None:
    full: bytes = image["bytes"]
    expected = full[-5:] if start is None else full[start:end]
    first = len(full) - 5 if start is None else start
    partial = download(local_cloud, GLANCE_REGION, image["id"], byte_range)
    assert partial.status_code == 206
    assert partial.content == expected
    last = first + len(expected) - 1
    assert partial.headers["Content-Range"] == f"bytes {first}-{last}/{len(full)}"


@pytest.mark.parametrize("byte_range", ["bytes={size}-", "bytes=0-1,5-6"])
def test_an_unsatisfiable_or_multiple_range_is_a_416(
    local_cloud: LocalCloud, image: dict[str, Any], byte_range: str
) -> None:
    size = image["size"]
    refused = download(local_cloud, GLANCE_REGION, image["id"], byte_range.format(size=size))
    assert refused.status_code == 416
    assert refused.headers["Content-Range"] == f"bytes */{size}"


def test_a_cloud_images_region_has_no_file_api_and_its_packaging_checksum(
    local_cloud: LocalCloud, glance_region: str
) -> None:
    other = "DFW"
    made = local_cloud.admin.create_image(other, local_cloud.main.tenant_id)
    assert download(local_cloud, other, made["id"]).status_code == 404
    view = local_cloud.session().images(other, "GET", f"/images/{made['id']}").json()
    assert view["checksum"] != local_cloud.admin.image_content_md5(made["id"])
