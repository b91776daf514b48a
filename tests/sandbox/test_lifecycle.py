"""Life cycle of the local cloud: idempotent ``up``, state across restarts of the API service,
work in flight surviving a crash, and ``down`` leaving no process behind."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from imagehop_sandbox import control
from imagehop_sandbox.control import processes_of
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.vhd import image_size
from tests.conftest import TEST_OPTIONS

pytestmark = pytest.mark.cloud


def test_up_again_returns_the_running_cloud(local_cloud: LocalCloud) -> None:
    # As it runs now: fault tests kill Swift servers, which the supervisor starts again.
    running = control.load_info(local_cloud.state_dir)
    processes = sorted(processes_of(local_cloud.state_dir))
    info = control.up(local_cloud.state_dir)
    assert info.identity_url == local_cloud.identity_url
    assert info.pids == running.pids
    assert sorted(processes_of(local_cloud.state_dir)) == processes
    assert control.status(local_cloud.state_dir)["state"] == "up"


def test_a_restarted_api_service_keeps_its_state(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image = local_cloud.admin.create_image("DFW", session.tenant)
    operation = [{"op": "add", "path": "/com.mycompany.kept", "value": "yes"}]
    assert session.patch_image("DFW", image["id"], operation).status_code == 200
    counts = local_cloud.admin.counts()
    old_pid = local_cloud.info.pids["api"]
    local_cloud.restart_api()
    assert local_cloud.info.pids["api"] != old_pid
    assert local_cloud.info.identity_url == control.load_info(local_cloud.state_dir).identity_url
    # The token issued before the restart still works: tokens are signed, not stored.
    kept = session.images("DFW", "GET", f"/images/{image['id']}").json()
    assert kept["com.mycompany.kept"] == "yes"
    assert local_cloud.admin.counts() == counts


def test_an_export_in_flight_survives_a_crash_of_the_api_service(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    image = local_cloud.admin.create_image(
        "DFW", session.tenant, disk_bytes=2_500_000, properties={"com.rackspace__1__options": "0"}
    )
    container = session.new_container("DFW")
    local_cloud.admin.delay_next_task("DFW", "export", 2.0)
    body = {
        "type": "export",
        "input": {"image_uuid": image["id"], "receiving_swift_container": container},
    }
    task_id = session.images("DFW", "POST", "/tasks", json=body).json()["id"]
    while session.images("DFW", "GET", f"/tasks/{task_id}").json()["status"] == "pending":
        time.sleep(0.02)
    local_cloud.restart_api(hard=True)
    # Still unfinished after the crash: the restarted service must take the work up again.
    assert session.images("DFW", "GET", f"/tasks/{task_id}").json()["status"] == "processing"
    task = session.wait_task("DFW", task_id)
    assert task["status"] == "success", task["message"]
    head = session.storage("DFW", "HEAD", f"/{container}/{image['id']}.vhd")
    assert int(head.headers["Content-Length"]) == image["content"]["size"]


def test_down_leaves_no_process_and_up_brings_the_same_cloud_back(local_cloud: LocalCloud) -> None:
    state_dir = local_cloud.state_dir
    session = local_cloud.session()
    image = local_cloud.admin.create_image("IAD", session.tenant, disk_bytes=3_000_000)
    before = local_cloud.info
    assert len(processes_of(state_dir)) == len(before.pids) == 10
    control.down(state_dir)
    assert processes_of(state_dir) == []
    assert control.status(state_dir)["state"] == "down"
    local_cloud.info = control.up(state_dir, stop_with_pid=os.getpid())
    assert (local_cloud.info.identity_url, local_cloud.info.regions) == (
        before.identity_url,
        before.regions,
    )
    # Same database, same Swift data: the image and its bytes are still there.
    assert session.images("IAD", "GET", f"/images/{image['id']}").json()["size"] == image_size(
        3_000_000
    )
    content = local_cloud.admin.image_record(image["id"])["content"]
    assert _md5_of_stored_bytes(local_cloud, "IAD", image["id"]) == content["md5"]


def _md5_of_stored_bytes(cloud: LocalCloud, region: str, image_id: str) -> str:
    """MD5 of the image's bytes as read back from the region's Swift."""
    service = cloud.info.service_tenant
    url = f"{cloud.storage_url(region, service)}/images/{image_id}"
    body = cloud.session().http.get(
        url, headers={"X-Auth-Token": cloud.mint_token(service)}, timeout=30
    )
    body.raise_for_status()
    return hashlib.md5(body.content).hexdigest()


def test_a_moved_state_folder_starts_with_its_images_and_bytes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The state folder can be moved or renamed while the cloud is down (the Swift
    configurations, written with absolute paths, follow it)."""
    first = tmp_path_factory.mktemp("cloud-before-move") / "state"
    cloud = LocalCloud(control.up(first, stop_with_pid=os.getpid(), **TEST_OPTIONS))
    try:
        session = cloud.session()
        image = cloud.admin.create_image("DFW", session.tenant, disk_bytes=1_500_000)
    finally:
        control.down(first)
    moved = first.with_name("moved")
    first.rename(moved)

    cloud = LocalCloud(control.up(moved, timeout=120, stop_with_pid=os.getpid()))
    try:
        session = cloud.session()
        assert session.images("DFW", "GET", f"/images/{image['id']}").json()["size"] == image_size(
            1_500_000
        )
        assert _md5_of_stored_bytes(cloud, "DFW", image["id"]) == image["content"]["md5"]
    finally:
        control.down(moved)
    assert processes_of(moved) == []
