"""Cloud Servers v2 of the local cloud: flavors, servers, createImage, boot."""

from __future__ import annotations

import time
from typing import Any

import pytest

from imagehop_sandbox.handle import CloudSession, LocalCloud
from imagehop_sandbox.vhd import image_size
from tests.sandbox.vhd_reader import read_dynamic

pytestmark = pytest.mark.cloud


@pytest.fixture
def session(local_cloud: LocalCloud) -> CloudSession:
    return local_cloud.session()


@pytest.fixture
def demo_server(local_cloud: LocalCloud) -> str:
    return local_cloud.admin.seed()["DFW"]["demo_server"]


def boot(session: CloudSession, image_id: str, flavor: str, region: str = "DFW") -> Any:
    body = {"server": {"name": "booted", "imageRef": image_id, "flavorRef": flavor}}
    return session.compute(region, "POST", "/servers", json=body)


def test_flavors_have_the_usual_disk_sizes(session: CloudSession) -> None:
    names = session.compute("DFW", "GET", "/flavors").json()["flavors"]
    detail = session.compute("IAD", "GET", "/flavors/detail").json()["flavors"]
    assert [f["id"] for f in names] == [f["id"] for f in detail]
    assert sorted(f["disk"] for f in detail) == [20, 40, 80, 160]
    assert all(f["links"][0]["rel"] == "self" for f in names)


def test_the_demo_server_is_active_in_dfw_only(session: CloudSession, demo_server: str) -> None:
    listed = session.compute("DFW", "GET", "/servers").json()["servers"]
    assert demo_server in [s["id"] for s in listed]
    server = session.compute("DFW", "GET", f"/servers/{demo_server}").json()["server"]
    assert (server["status"], server["name"], server["flavor"]["id"]) == (
        "ACTIVE",
        "demo-web-1",
        "general1-2",
    )
    assert server["OS-EXT-STS:task_state"] is None
    detail = session.compute("DFW", "GET", "/servers/detail").json()["servers"]
    assert demo_server in [s["id"] for s in detail]
    assert session.compute("IAD", "GET", f"/servers/{demo_server}").status_code == 404


def test_create_image_goes_queued_saving_active_and_blocks_a_second_one(
    local_cloud: LocalCloud, session: CloudSession, demo_server: str
) -> None:
    body = {"createImage": {"name": "snap", "metadata": {"com.mycompany.image-of": "web-1"}}}
    with local_cloud.admin.temporary_options(snapshot_seconds=2.0):
        response = session.compute("DFW", "POST", f"/servers/{demo_server}/action", json=body)
        assert (response.status_code, response.content) == (202, b"")
        image_id = response.headers["Location"].rsplit("/", 1)[-1]
        again = session.compute("DFW", "POST", f"/servers/{demo_server}/action", json=body)
        assert again.status_code == 409
        assert (
            "while it is in task_state image_snapshot"
            in again.json()["conflictingRequest"]["message"]
        )
        seen_image, seen_task = set(), set()
        while "active" not in seen_image:
            seen_image.add(session.images("DFW", "GET", f"/images/{image_id}").json()["status"])
            server = session.compute("DFW", "GET", f"/servers/{demo_server}").json()["server"]
            seen_task.add(server["OS-EXT-STS:task_state"])
            time.sleep(0.05)
    assert seen_image == {"queued", "saving", "active"}
    assert {"image_snapshot", "image_uploading"} <= seen_task
    server = session.compute("DFW", "GET", f"/servers/{demo_server}").json()["server"]
    assert server["OS-EXT-STS:task_state"] is None


def test_snapshots_inherit_the_server_image_properties(
    local_cloud: LocalCloud, session: CloudSession, demo_server: str
) -> None:
    image_id = session.snapshot("DFW", demo_server, "inherit", {"com.mycompany.role": "web"})
    image = session.images("DFW", "GET", f"/images/{image_id}").json()
    base = session.images(
        "DFW", "GET", f"/images/{local_cloud.admin.seed()['DFW']['base_image']}"
    ).json()
    for name in (
        "os_distro",
        "os_version",
        "vm_mode",
        "org.openstack__1__os_distro",
        "com.rackspace__1__options",
    ):
        assert image[name] == base[name], name
    assert (image["image_type"], image["instance_uuid"]) == ("snapshot", demo_server)
    assert image["com.mycompany.role"] == "web"
    assert (image["min_disk"], image["visibility"], image["owner"]) == (
        40,
        "private",
        session.tenant,
    )
    disk = local_cloud.admin.options()["server_disk_bytes"]
    assert image["size"] == image_size(disk)  # the dynamic VHD of the server's disk


def test_two_snapshots_of_one_server_hold_the_same_disk(
    local_cloud: LocalCloud, session: CloudSession, demo_server: str
) -> None:
    first = session.snapshot("DFW", demo_server, "one")
    second = session.snapshot("DFW", demo_server, "two")
    size = local_cloud.admin.options()["server_disk_bytes"]
    base = local_cloud.storage_url("DFW", local_cloud.info.service_tenant)
    headers = {"X-Auth-Token": local_cloud.mint_token(local_cloud.info.service_tenant)}
    vhds = [
        read_dynamic(
            session.http.get(f"{base}/images/{image_id}", headers=headers, timeout=30).content
        )
        for image_id in (first, second)
    ]
    assert len(vhds[0].disk) == vhds[0].virtual_size == -(-size // 512) * 512
    assert vhds[0].disk == vhds[1].disk
    assert vhds[0].unique_id != vhds[1].unique_id  # each image is its own VHD
    assert local_cloud.admin.image_content_md5(first) != local_cloud.admin.image_content_md5(second)


def test_boot_from_an_image_goes_build_then_active(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    base_id = local_cloud.admin.seed()["IAD"]["base_image"]
    response = boot(session, base_id, "general1-1", region="IAD")
    assert response.status_code == 202
    server_id = response.json()["server"]["id"]
    assert response.headers["Location"].endswith(f"/servers/{server_id}")
    assert (
        session.compute("IAD", "GET", f"/servers/{server_id}").json()["server"]["status"] == "BUILD"
    )
    server = session.wait_server("IAD", server_id)
    assert server["status"] == "ACTIVE"
    assert server["image"]["id"] == base_id


def test_boot_refuses_a_flavor_smaller_than_min_disk(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    image = local_cloud.admin.create_image("DFW", session.tenant, min_disk=40)
    response = boot(session, image["id"], "general1-1")
    assert response.status_code == 400
    assert (
        response.json()["badRequest"]["message"]
        == "Flavor's disk is too small for requested image."
    )
    assert boot(session, image["id"], "general1-2").status_code == 202


@pytest.mark.parametrize(
    ("image", "flavor", "message"),
    [
        ("00000000-0000-0000-0000-000000000000", "general1-1", "Can not find requested image"),
        ("base", "general9-9", "Invalid flavorRef provided."),
    ],
)
def test_boot_with_unknown_image_or_flavor_is_400(
    local_cloud: LocalCloud, session: CloudSession, image: str, flavor: str, message: str
) -> None:
    image_id = local_cloud.admin.seed()["DFW"]["base_image"] if image == "base" else image
    response = boot(session, image_id, flavor)
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == message


def test_servers_of_another_tenant_are_invisible(local_cloud: LocalCloud, demo_server: str) -> None:
    other = local_cloud.session(local_cloud.other)
    missing = other.compute("DFW", "GET", f"/servers/{demo_server}")
    assert missing.status_code == 404
    assert "itemNotFound" in missing.json()
    body = {"createImage": {"name": "steal"}}
    assert (
        other.compute("DFW", "POST", f"/servers/{demo_server}/action", json=body).status_code == 404
    )
    assert demo_server not in [
        s["id"] for s in other.compute("DFW", "GET", "/servers").json()["servers"]
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"reboot": {"type": "SOFT"}}, "There is no such action: reboot"),
        ({"createImage": {}}, "createImage entity requires name attribute"),
        ({"createImage": {"name": "x", "metadata": {"a": 1}}}, "Invalid metadata"),
    ],
)
def test_bad_actions_are_400(
    session: CloudSession, demo_server: str, body: Any, message: str
) -> None:
    response = session.compute("DFW", "POST", f"/servers/{demo_server}/action", json=body)
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == message


def test_compute_shows_images_too(session: CloudSession, demo_server: str) -> None:
    image_id = session.snapshot("DFW", demo_server, "via-compute")
    image = session.compute("DFW", "GET", f"/images/{image_id}").json()["image"]
    assert (image["status"], image["minDisk"], image["server"]["id"]) == ("ACTIVE", 40, demo_server)
