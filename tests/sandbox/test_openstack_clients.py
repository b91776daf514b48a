"""Real OpenStack clients, unchanged, against the local cloud: keystoneauth1 logs in to
Identity v2.0 and discovers the Images API; python-glanceclient lists, gets and changes images
and runs export tasks. Neither client is imagehop's: when the local cloud drifts from what they
expect (version documents, answers that break the schemas glanceclient validates with), these
tests fail where a user of those clients would."""

from __future__ import annotations

import time
import uuid
from typing import Any

import glanceclient
import pytest
from glanceclient import exc as glance_exc
from keystoneauth1 import discover, exceptions, session
from keystoneauth1.identity import generic, v2

from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.info import AccountInfo
from imagehop_sandbox.vhd import dynamic_size

pytestmark = pytest.mark.cloud

REGION = "DFW"
TIMEOUT = 60.0
EXPORTABLE = {"com.rackspace__1__options": "0"}
POLL_SECONDS = 0.05
POLL_LIMIT = 400  # 20 s of polls; test-scale tasks end in well under a second
POLL_DEADLINE = 30.0


def identity_root(cloud: LocalCloud) -> str:
    """``http://127.0.0.1:<port>/``: Identity without a version, as clouds.yaml often has it."""
    return cloud.identity_url.rsplit("/v2.0", 1)[0] + "/"


def keystone_session(cloud: LocalCloud, account: AccountInfo) -> session.Session:
    """A keystoneauth1 session logging in with ``passwordCredentials`` to ``/v2.0``."""
    auth = v2.Password(
        auth_url=cloud.identity_url,
        username=account.username,
        password=account.password,
        tenant_id=account.tenant_id,
    )
    return session.Session(auth=auth, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def keystone(local_cloud: LocalCloud) -> session.Session:
    return keystone_session(local_cloud, local_cloud.main)


@pytest.fixture(scope="module")
def glance(keystone: session.Session) -> Any:
    """glanceclient's v2 client; its endpoint comes from the catalog, as documented.

    glanceclient puts ``/v2/...`` after the catalog URL, which already ends in ``/v2``, so
    it asks for ``/v2/v2/images``; the local cloud answers that through its tenant-scoped
    form ``/v2/<anything>/images``, not through anything glanceclient-specific."""
    return glanceclient.Client("2", session=keystone, region_name=REGION)


def wait_task(glance: Any, task_id: str) -> list[Any]:
    """Every task answer glanceclient gives from now until the task ends (bounded)."""
    deadline = time.monotonic() + POLL_DEADLINE
    answers = [glance.tasks.get(task_id)]
    while answers[-1].status not in ("success", "failure"):
        assert len(answers) < POLL_LIMIT, f"task {task_id} still {answers[-1].status}"
        assert time.monotonic() < deadline, f"task {task_id} still {answers[-1].status}"
        time.sleep(POLL_SECONDS)
        answers.append(glance.tasks.get(task_id))
    return answers


# -- keystoneauth1 ---------------------------------------------------------------------------


def test_keystoneauth_password_login_gives_the_catalog_image_endpoints(
    local_cloud: LocalCloud, keystone: session.Session
) -> None:
    account = local_cloud.main
    assert keystone.get_project_id() == account.tenant_id
    assert isinstance(keystone.auth, v2.Password)
    access = keystone.auth.get_access(keystone)
    assert access.username == account.username
    assert "identity:user-admin" in access.role_names
    for region in ("DFW", "IAD"):
        url = keystone.get_endpoint(service_type="image", region_name=region, interface="public")
        assert url == local_cloud.images_url(region)
    with pytest.raises(exceptions.EndpointNotFound):
        keystone.get_endpoint(service_type="image", region_name="ORD")


def test_keystoneauth_refuses_a_wrong_password(local_cloud: LocalCloud) -> None:
    wrong = AccountInfo(
        username=local_cloud.main.username,
        api_key="",
        password="not-" + local_cloud.main.password,
        tenant_id=local_cloud.main.tenant_id,
    )
    with pytest.raises(exceptions.Unauthorized):
        keystone_session(local_cloud, wrong).get_token()


def test_keystoneauth_discovers_identity_v2_from_the_unversioned_root(
    local_cloud: LocalCloud,
) -> None:
    account = local_cloud.main
    auth = generic.Password(
        auth_url=identity_root(local_cloud),
        username=account.username,
        password=account.password,
        project_id=account.tenant_id,
    )
    discovered = session.Session(auth=auth, timeout=TIMEOUT)
    access = auth.get_access(discovered)
    assert access.version == "v2.0"
    assert access.project_id == account.tenant_id
    url = discovered.get_endpoint(service_type="image", region_name=REGION)
    assert url == local_cloud.images_url(REGION)


def test_keystoneauth_discovers_images_v2(
    local_cloud: LocalCloud, keystone: session.Session
) -> None:
    data = keystone.get_endpoint_data(
        service_type="image", region_name=REGION, min_version="2", max_version="2.latest"
    )
    assert data is not None
    assert data.api_version == (2, 2)
    assert data.url.rstrip("/") == local_cloud.images_url(REGION)
    url = keystone.get_endpoint(service_type="image", region_name="IAD", min_version="2")
    assert url is not None
    assert url.rstrip("/") == local_cloud.images_url("IAD")
    assert keystone.get_endpoint(service_type="image", region_name=REGION, min_version="3") is None
    root = local_cloud.images_url(REGION).rsplit("/v2", 1)[0] + "/"
    versions = discover.Discover(keystone, root).version_data()
    assert [(v["version"], v["status"]) for v in versions] == [
        ((2, 0), "SUPPORTED"),
        ((2, 1), "SUPPORTED"),
        ((2, 2), "CURRENT"),
    ]
    assert {v["url"] for v in versions} == {local_cloud.images_url(REGION) + "/"}


# -- python-glanceclient ---------------------------------------------------------------------


def test_glanceclient_lists_and_gets_images_as_the_api_shows_them(
    local_cloud: LocalCloud, glance: Any
) -> None:
    seed = local_cloud.admin.seed()[REGION]
    own = local_cloud.admin.create_image(REGION, local_cloud.main.tenant_id, name="listed")
    listed = {image.id: image for image in glance.images.list()}
    assert {seed["base_image"], own["id"]} <= listed.keys()
    assert listed[own["id"]].name == "listed"
    plain = local_cloud.session()
    for image_id in (seed["base_image"], own["id"]):
        got = glance.images.get(image_id)
        expected = plain.images(REGION, "GET", f"/images/{image_id}").json()
        for key in ("id", "name", "status", "visibility", "owner", "size", "checksum"):
            assert got[key] == expected[key], key
    with pytest.raises(glance_exc.HTTPNotFound):
        glance.images.get(str(uuid.uuid4()))


def test_glanceclient_updates_properties_and_they_stay(
    local_cloud: LocalCloud, glance: Any
) -> None:
    own = local_cloud.admin.create_image(REGION, local_cloud.main.tenant_id, name="before")
    key = "com.example.image-of"
    updated = glance.images.update(own["id"], name="after", **{key: "db-replica-3"})
    assert (updated.name, updated[key]) == ("after", "db-replica-3")
    again = glance.images.get(own["id"])
    assert (again.name, again[key]) == ("after", "db-replica-3")
    plain = local_cloud.session().images(REGION, "GET", f"/images/{own['id']}").json()
    assert (plain["name"], plain[key]) == ("after", "db-replica-3")
    replaced = glance.images.update(own["id"], **{key: "db-replica-4"})
    assert replaced[key] == "db-replica-4"
    removed = glance.images.update(own["id"], remove_props=[key])
    assert key not in removed
    assert key not in glance.images.get(own["id"])


def test_glanceclient_runs_an_export_task_to_success(local_cloud: LocalCloud, glance: Any) -> None:
    image = local_cloud.admin.create_image(
        REGION, local_cloud.main.tenant_id, disk_bytes=64 * 1024, properties=EXPORTABLE
    )
    plain = local_cloud.session()
    container = plain.new_container(REGION, "glanceclient")
    task_input = {"image_uuid": image["id"], "receiving_swift_container": container}
    local_cloud.admin.delay_next_task(REGION, "export", 0.3)
    with local_cloud.admin.temporary_options(task_pending_seconds=0.3):
        created = glance.tasks.create(type="export", input=task_input)
        answers = wait_task(glance, created.id)
    assert (created.type, created.status, created.input) == ("export", "pending", task_input)
    assert created.owner == local_cloud.main.tenant_id
    assert {answer.status for answer in answers[:-1]} & {"pending", "processing"}
    done = answers[-1]
    assert done.status == "success", done.message
    location = f"{container}/{image['id']}.vhd"
    assert done.result == {"export_location": location}
    assert done.expires_at
    exported = plain.storage(REGION, "HEAD", f"/{location}")
    assert exported.status_code == 200
    assert int(exported.headers["Content-Length"]) == dynamic_size(64 * 1024)  # a dynamic VHD
    listed = {task.id: task for task in glance.tasks.list()}
    assert listed[created.id].status == "success"
    successes = glance.tasks.list(filters={"type": "export", "status": "success"})
    assert created.id in {task.id for task in successes}


def test_glanceclient_reports_a_failed_task_with_its_message(
    local_cloud: LocalCloud, glance: Any
) -> None:
    message = "Image cannot be exported. Error code: '617'."
    image = local_cloud.admin.create_image(
        REGION, local_cloud.main.tenant_id, properties=EXPORTABLE
    )
    container = local_cloud.session().new_container(REGION, "glanceclient")
    local_cloud.admin.fail_next_task(REGION, "export", message)
    created = glance.tasks.create(
        type="export", input={"image_uuid": image["id"], "receiving_swift_container": container}
    )
    failed = wait_task(glance, created.id)[-1]
    assert (failed.status, failed.message) == ("failure", message)
    assert "result" not in failed
    failures = glance.tasks.list(filters={"status": "failure"})
    assert created.id in {task.id for task in failures}


def test_glanceclient_gets_403_creating_a_task_without_the_admin_role(
    local_cloud: LocalCloud,
) -> None:
    viewer = glanceclient.Client(
        "2", session=keystone_session(local_cloud, local_cloud.viewer), region_name=REGION
    )
    assert viewer.images.get(local_cloud.admin.seed()[REGION]["base_image"]).status == "active"
    with pytest.raises(glance_exc.HTTPForbidden):
        viewer.tasks.create(
            type="export", input={"image_uuid": str(uuid.uuid4()), "receiving_swift_container": "c"}
        )
