"""Cloud Images v2 of the local cloud: list, filter, page, get, patch, delete; error formats."""

from __future__ import annotations

import hashlib
import random
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from imagehop_sandbox.content import delete_content, open_content, store_content
from imagehop_sandbox.handle import CloudSession, LocalCloud
from imagehop_sandbox.options import MiB, SandboxOptions
from imagehop_sandbox.swift_io import SwiftAccount
from imagehop_sandbox.vhd import image_size

pytestmark = pytest.mark.cloud

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"


def own_image(cloud: LocalCloud, session: CloudSession, **fields: Any) -> str:
    image = cloud.admin.create_image("DFW", session.tenant, **fields)
    return str(image["id"])


def test_get_shows_the_image_schema_fields(local_cloud: LocalCloud) -> None:
    base_id = local_cloud.admin.seed()["DFW"]["base_image"]
    image = local_cloud.session().images("DFW", "GET", f"/images/{base_id}").json()
    assert image["status"] == "active"
    assert image["visibility"] == "public"
    assert image["com.rackspace__1__options"] == "0"
    assert image["min_disk"] == 20
    assert image["size"] > 512
    assert len(image["checksum"]) == 32
    assert image["self"] == f"/v2/images/{base_id}"
    assert image["file"] == f"/v2/images/{base_id}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["created_at"].endswith("Z")


def every_image_id(session: CloudSession, region: str, pages: int = 50) -> list[str]:
    """The ids of every image the session's tenant sees in ``region``, page by page."""
    ids: list[str] = []
    path: str | None = "/images?limit=100"
    for _ in range(pages):
        if path is None:
            return ids
        page = session.images(region, "GET", path).json()
        ids += [image["id"] for image in page["images"]]
        path = page.get("next", "").removeprefix("/v2") or None
    raise AssertionError(f"more than {pages} pages of images")


def test_tenants_see_their_own_and_public_images_only(local_cloud: LocalCloud) -> None:
    main, other = local_cloud.session(), local_cloud.session(local_cloud.other)
    theirs = own_image(local_cloud, other, name="theirs")
    listed = every_image_id(main, "DFW")  # all pages: earlier tests of the session made many
    assert theirs not in listed
    assert local_cloud.admin.seed()["DFW"]["base_image"] in listed
    missing = main.images("DFW", "GET", f"/images/{theirs}")
    assert missing.status_code == 404
    assert f"No image found with ID {theirs}" in missing.text
    assert other.images("DFW", "GET", f"/images/{theirs}").status_code == 200
    assert main.images("IAD", "GET", f"/images/{theirs}").status_code == 404


def test_property_filter_with_paging_finds_every_tagged_image_once(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    batch = uuid.uuid4().hex
    tagged = {
        own_image(local_cloud, session, properties={"com.test.batch": batch}) for _ in range(3)
    }
    own_image(local_cloud, session, properties={"com.test.batch": "someone-else"})
    seen: list[str] = []
    path: str | None = f"/images?com.test.batch={batch}&limit=1"
    for _ in range(10):
        assert path is not None
        page = session.images("DFW", "GET", path).json()
        assert len(page["images"]) <= 1
        seen += [image["id"] for image in page["images"]]
        if "next" not in page:
            break
        assert page["next"].startswith("/v2/images?")
        path = page["next"].removeprefix("/v2")
    assert sorted(seen) == sorted(tagged)


def test_list_filters_on_attributes(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    name = f"named-{uuid.uuid4().hex[:8]}"
    image_id = own_image(local_cloud, session, name=name)
    for query in (f"name={name}", f"name={name}&status=active&visibility=private"):
        found = session.images("DFW", "GET", f"/images?{query}").json()["images"]
        assert [i["id"] for i in found] == [image_id]
    assert session.images("DFW", "GET", f"/images?name={name}&status=queued").json()["images"] == []


def test_tenant_scoped_images_url_is_accepted(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    base_id = local_cloud.admin.seed()["DFW"]["base_image"]
    response = session.images("DFW", "GET", f"/{session.tenant}/images/{base_id}")
    assert response.status_code == 200
    assert response.json()["id"] == base_id


def test_patch_adds_replaces_and_removes_properties(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image_id = own_image(local_cloud, session)
    add = session.patch_image(
        "DFW", image_id, [{"op": "add", "path": "/com.mycompany.image-of", "value": "db-3"}]
    )
    assert add.status_code == 200
    assert add.json()["com.mycompany.image-of"] == "db-3"
    replace = session.patch_image(
        "DFW", image_id, [{"op": "replace", "path": "/com.mycompany.image-of", "value": "db-4"}]
    )
    assert replace.json()["com.mycompany.image-of"] == "db-4"
    remove = session.patch_image(
        "DFW", image_id, [{"op": "remove", "path": "/com.mycompany.image-of"}]
    )
    assert "com.mycompany.image-of" not in remove.json()
    assert (
        "com.mycompany.image-of" not in session.images("DFW", "GET", f"/images/{image_id}").json()
    )


def test_patch_conflicts_are_409_with_glance_messages(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image_id = own_image(local_cloud, session, properties={"com.mycompany.x": "1"})
    again = session.patch_image(
        "DFW", image_id, [{"op": "add", "path": "/com.mycompany.x", "value": "2"}]
    )
    assert again.status_code == 409
    assert "Property com.mycompany.x already present." in again.text
    assert again.headers["Content-Type"].startswith("text/html")
    for op in ("replace", "remove"):
        missing = session.patch_image(
            "DFW", image_id, [{"op": op, "path": "/com.mycompany.y", "value": "v"}]
        )
        assert missing.status_code == 409
        assert "Property com.mycompany.y does not exist." in missing.text


def test_errors_are_json_when_the_client_asks_for_json(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image_id = own_image(local_cloud, session, properties={"com.mycompany.x": "1"})
    response = session.images(
        "DFW",
        "PATCH",
        f"/images/{image_id}",
        json=[{"op": "add", "path": "/com.mycompany.x", "value": "2"}],
        headers={"Content-Type": PATCH_V21, "Accept": "application/json"},
    )
    body = response.json()
    assert body["code"] == "409 Conflict"
    assert "Property com.mycompany.x already present." in body["message"]


def test_patch_needs_a_json_patch_media_type(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image_id = own_image(local_cloud, session)
    operations = [{"op": "add", "path": "/os_version", "value": "1"}]
    wrong = session.images("DFW", "PATCH", f"/images/{image_id}", json=operations)
    assert wrong.status_code == 415
    assert PATCH_V21 in wrong.headers["Accept-Patch"]
    old_style = session.images(
        "DFW",
        "PATCH",
        f"/images/{image_id}",
        json=[{"add": "/os_version", "value": "1"}],
        headers={"Content-Type": PATCH_V20},
    )
    assert old_style.status_code == 200
    assert old_style.json()["os_version"] == "1"


def test_patch_of_protected_or_read_only_attributes_is_403(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image_id = own_image(local_cloud, session, properties={"com.rackspace__1__options": "0"})
    for path, value in (
        ("/com.rackspace__1__options", "1"),
        ("/com.rackspace__1__new", "x"),
        ("/checksum", "0"),
    ):
        response = session.patch_image(
            "DFW", image_id, [{"op": "replace", "path": path, "value": value}]
        )
        assert response.status_code == 403, path
    image = session.images("DFW", "GET", f"/images/{image_id}").json()
    assert image["com.rackspace__1__options"] == "0"
    assert "com.rackspace__1__new" not in image


def test_escaped_pointers_and_nested_paths(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image_id = own_image(local_cloud, session)
    escaped = session.patch_image(
        "DFW", image_id, [{"op": "add", "path": "/com.example~1a~0b", "value": "v"}]
    )
    assert escaped.json()["com.example/a~b"] == "v"
    nested = session.patch_image("DFW", image_id, [{"op": "add", "path": "/a/b", "value": "v"}])
    assert nested.status_code == 400
    assert "Invalid JSON pointer" in nested.text


def test_only_admins_of_the_owner_may_patch(local_cloud: LocalCloud) -> None:
    main = local_cloud.session()
    image_id = own_image(local_cloud, main)
    operation = [{"op": "add", "path": "/com.mycompany.z", "value": "1"}]
    viewer = local_cloud.session(local_cloud.viewer)
    other = local_cloud.session(local_cloud.other)
    assert viewer.patch_image("DFW", image_id, operation).status_code == 403
    assert other.patch_image("DFW", image_id, operation).status_code == 404
    base_id = local_cloud.admin.seed()["DFW"]["base_image"]
    assert main.patch_image("DFW", base_id, operation).status_code == 403


def test_delete_removes_the_image_and_its_bytes(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image_id = own_image(local_cloud, session)
    content = local_cloud.admin.image_record(image_id)["content"]
    service = local_cloud.info.service_tenant
    bytes_url = (
        f"{local_cloud.storage_url('DFW', service)}/{content['container']}/{content['name']}"
    )
    headers = {"X-Auth-Token": local_cloud.mint_token(service)}
    assert requests.head(bytes_url, headers=headers, timeout=10).status_code == 200
    assert (
        local_cloud.session(local_cloud.other)
        .images("DFW", "DELETE", f"/images/{image_id}")
        .status_code
        == 404
    )
    assert session.images("DFW", "DELETE", f"/images/{image_id}").status_code == 204
    assert session.images("DFW", "GET", f"/images/{image_id}").status_code == 404
    assert requests.head(bytes_url, headers=headers, timeout=10).status_code == 404
    base_id = local_cloud.admin.seed()["DFW"]["base_image"]
    assert session.images("DFW", "DELETE", f"/images/{base_id}").status_code == 403


def test_images_larger_than_the_object_cap_are_stored_as_slo(local_cloud: LocalCloud) -> None:
    cap = local_cloud.admin.options()["max_file_size"]
    image = local_cloud.admin.create_image("DFW", local_cloud.main.tenant_id, disk_bytes=cap + 1000)
    assert image["content"]["layout"] == "slo"
    assert image["content"]["size"] == image_size(cap + 1000)
    # Even a tiny disk is a dynamic VHD of one whole 2 MiB block, over the 2 MiB cap here; the
    # plain layout of a small image is checked with a small import (test_tasks.py).
    small = local_cloud.admin.create_image("DFW", local_cloud.main.tenant_id, disk_bytes=1000)
    assert small["content"]["size"] == image_size(1000) > 2 * 1024 * 1024


def test_injected_http_errors_answer_once(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    local_cloud.admin.fail_next_request(
        "images", r"^/v2/images$", 503, region="DFW", headers={"Retry-After": "1"}, body="busy"
    )
    first = session.images("DFW", "GET", "/images")
    assert (first.status_code, first.headers["Retry-After"], first.text) == (503, "1", "busy")
    assert session.images("DFW", "GET", "/images").status_code == 200
    assert local_cloud.admin.faults()["http"] == []


def test_next_links_are_relative_to_the_images_host(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    page = session.images("DFW", "GET", "/images?limit=1").json()
    host = urlsplit(local_cloud.images_url("DFW"))
    url = f"{host.scheme}://{host.netloc}{page['next']}"
    response = requests.get(url, headers={"X-Auth-Token": session.token}, timeout=10)
    assert response.status_code == 200
    assert response.json()["images"][0]["id"] != page["images"][0]["id"]


def test_image_bytes_beyond_the_slo_segment_limit_are_stored_as_a_dlo(
    local_cloud: LocalCloud,
) -> None:
    info = local_cloud.info
    account = SwiftAccount(
        info.region("DFW").storage_host, info.service_tenant, info.token_secret()
    )
    options = SandboxOptions(max_file_size=MiB, max_manifest_segments=2)
    data = random.Random(7).randbytes(3 * MiB + 10)
    image_id = str(uuid.uuid4())
    content = store_content(account, image_id, [data], len(data), options)
    assert (content.layout, content.parts, content.size) == ("dlo", 4, len(data))
    assert b"".join(open_content(account, content)) == data
    assert content.md5 == hashlib.md5(data).hexdigest()
    delete_content(account, content)
    assert account.head(content.container, content.name) is None
    assert account.list_names("images_segments", f"{image_id}/") == []
