"""Upstream Glance's image create, upload, staging and interoperable import in the regions the
``glance_regions`` option switches to Glance, through python-glanceclient unchanged:
``images.create``, ``upload``, ``stage``, ``image_import`` (glance-direct, web-download of a
Swift temporary URL of an SLO, glance-download between two Glance regions sharing a Keystone),
``get_import_info``, ``data``; checksum and os_hash_value equal hashlib's; Glance's refusals
and failures (disabled method, 409s, size mismatch, a failed web-download leaving
``os_glance_failed_import``); and every image answer valid against the region's own schema."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import glanceclient
import pytest
import requests
from glanceclient import exc as glance_exc
from jsonschema import Draft4Validator
from keystoneauth1 import session
from keystoneauth1.identity import v3
from swiftclient.utils import generate_temp_url

from imagehop_sandbox.handle import CloudSession, LocalCloud
from imagehop_sandbox.info import DOMAIN_NAME
from imagehop_sandbox.options import MiB

pytestmark = pytest.mark.cloud

REGION = "IAD"
OTHER = "DFW"
TIMEOUT = 30.0
KEY = "glance-import-test-key"
BIG = 3 * MiB + 777  # above the test clusters' 2 MiB object cap: stored as an SLO


@pytest.fixture(scope="module")
def glance_regions(local_cloud: LocalCloud) -> Iterator[None]:
    with local_cloud.admin.temporary_options(glance_regions=f"{OTHER},{REGION}"):
        yield


def client(cloud: LocalCloud, region: str, keystone_region: str | None = None) -> Any:
    account = cloud.main
    auth = v3.Password(
        auth_url=cloud.keystone_url(keystone_region),
        username=account.username,
        password=account.password,
        user_domain_name=DOMAIN_NAME,
        project_id=account.tenant_id,
    )
    return glanceclient.Client(
        "2", session=session.Session(auth=auth, timeout=TIMEOUT), region_name=region
    )


@pytest.fixture(scope="module")
def glance(local_cloud: LocalCloud, glance_regions: None) -> Any:
    return client(local_cloud, REGION)


@pytest.fixture(scope="module")
def validators(local_cloud: LocalCloud, glance_regions: None) -> dict[str, Draft4Validator]:
    found = {}
    for name in ("image", "images"):
        schema = local_cloud.session().images(REGION, "GET", f"/schemas/{name}").json()
        Draft4Validator.check_schema(schema)
        found[name] = Draft4Validator(schema)
    return found


def check(validators: dict[str, Draft4Validator], doc: dict[str, Any], name: str = "image") -> None:
    errors = [error.message for error in validators[name].iter_errors(doc)]
    assert not errors, f"answer does not match /v2/schemas/{name}: {errors}"


def raw_image(cloud: LocalCloud, image_id: str, region: str = REGION) -> dict[str, Any]:
    doc: dict[str, Any] = cloud.session().images(region, "GET", f"/images/{image_id}").json()
    return doc


def wait_status(
    cloud: LocalCloud,
    image_id: str,
    wanted: tuple[str, ...],
    region: str = REGION,
    validators: dict[str, Draft4Validator] | None = None,
) -> list[dict[str, Any]]:
    """Every answer of quick polls until the image's status is one of ``wanted``."""
    deadline = time.monotonic() + TIMEOUT
    answers = [raw_image(cloud, image_id, region)]
    while answers[-1]["status"] not in wanted:
        assert time.monotonic() < deadline, f"image {image_id} stayed {answers[-1]['status']}"
        time.sleep(0.02)
        answers.append(raw_image(cloud, image_id, region))
    if validators is not None:
        for answer in answers:
            check(validators, answer)
    return answers


def ended_task(glance: Any, image_id: str) -> dict[str, Any]:
    """The image's latest import task once it has ended: as in Glance, the image is back to
    ``queued`` a moment before its task says ``failure``."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        task: dict[str, Any] = glance.images.get_associated_image_tasks(image_id)["tasks"][-1]
        if task["status"] in ("success", "failure"):
            return task
        assert time.monotonic() < deadline, f"task {task['id']} did not end"
        time.sleep(0.05)


def hashes(data: bytes) -> tuple[str, str]:
    return hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()


def assert_holds(glance: Any, image_id: str, data: bytes) -> None:
    image = glance.images.get(image_id)
    md5, sha512 = hashes(data)
    assert image.status == "active"
    assert image.size == len(data)
    assert (image.checksum, image.os_hash_algo, image.os_hash_value) == (md5, "sha512", sha512)
    assert image.stores == "swift"
    assert b"".join(glance.images.data(image_id)) == data


def new_image(glance: Any, **extra: Any) -> Any:
    fields = {"name": "glance-test", "disk_format": "raw", "container_format": "bare", **extra}
    return glance.images.create(**fields)


def tempurl_of(session: CloudSession, region: str, container: str, name: str) -> str:
    base = urlsplit(session.cloud.storage_url(region, session.tenant))
    signed = generate_temp_url(f"{base.path}/{container}/{name}", 300, KEY, "GET")
    return f"{base.scheme}://{base.netloc}{signed}"


def keyed_container(session: CloudSession, region: str) -> str:
    container = session.new_container(region, "glance-import")
    headers = {"X-Container-Meta-Temp-URL-Key": KEY}
    assert session.storage(region, "POST", f"/{container}", headers=headers).status_code == 204
    return container


def put_slo(session: CloudSession, region: str, container: str, name: str, data: bytes) -> None:
    manifest = []
    for number, start in enumerate(range(0, len(data), MiB), start=1):
        part = data[start : start + MiB]
        segment = f"{name}-seg/{number:08d}"
        put = session.storage(region, "PUT", f"/{container}/{segment}", data=part)
        assert put.status_code == 201
        manifest.append({"path": f"/{container}/{segment}", "etag": put.headers["Etag"]})
    made = session.storage(
        region, "PUT", f"/{container}/{name}?multipart-manifest=put", data=json.dumps(manifest)
    )
    assert made.status_code == 201, made.text


# -- discovery -------------------------------------------------------------------------------


def test_import_info_lists_the_region_methods_and_follows_the_option(
    local_cloud: LocalCloud, glance: Any
) -> None:
    info = glance.images.get_import_info()
    assert info["import-methods"] == {
        "description": "Import methods available.",
        "type": "array",
        "value": ["glance-direct", "web-download"],
    }
    everything = ["glance-direct", "web-download", "glance-download"]
    with local_cloud.admin.temporary_options(import_methods={REGION: everything}):
        assert glance.images.get_import_info()["import-methods"]["value"] == everything
    stores = glance.images.get_stores_info()
    assert [store["id"] for store in stores["stores"]] == ["swift"]


def test_a_cloud_images_region_has_none_of_the_new_paths(
    local_cloud: LocalCloud, glance_regions: None
) -> None:
    plain = local_cloud.session()
    with local_cloud.admin.temporary_options(glance_regions=REGION):
        assert plain.images(OTHER, "GET", "/info/import").status_code == 404
        created = plain.images(OTHER, "POST", "/images", json={"name": "x"})
        assert (created.status_code, created.headers["Allow"]) == (405, "GET")
        seed = local_cloud.admin.seed()[OTHER]["base_image"]
        assert plain.images(OTHER, "PUT", f"/images/{seed}/stage", data=b"x").status_code == 404
        assert plain.images(OTHER, "GET", f"/images/{seed}/tasks").status_code == 404
        assert "os_hash_value" not in raw_image(local_cloud, seed, OTHER)


# -- create and upload -----------------------------------------------------------------------


def test_create_then_upload_gives_glance_hashes(
    local_cloud: LocalCloud, glance: Any, validators: dict[str, Draft4Validator]
) -> None:
    created = local_cloud.session().images(
        REGION,
        "POST",
        "/images",
        json={
            "name": "made by test",
            "disk_format": "raw",
            "container_format": "bare",
            "min_disk": 2,
            "tags": ["a", "b"],
            "visibility": "private",
            "com.example.role": "db",
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["OpenStack-image-import-methods"] == "glance-direct,web-download"
    doc = created.json()
    check(validators, doc)
    assert doc["status"] == "queued"
    assert (doc["size"], doc["checksum"], doc["os_hash_value"]) == (None, None, None)
    assert doc["com.example.role"] == "db"
    assert created.headers["Location"].endswith(f"/v2/images/{doc['id']}")
    data = os.urandom(BIG)
    glance.images.upload(doc["id"], io.BytesIO(data))
    uploaded = raw_image(local_cloud, doc["id"])
    check(validators, uploaded)
    assert uploaded["virtual_size"] == len(data)  # raw: Glance's inspector counts the bytes
    assert_holds(glance, doc["id"], data)
    listed = local_cloud.session().images(REGION, "GET", "/images").json()
    check(validators, listed, "images")


def test_a_chunked_upload_with_the_size_header(local_cloud: LocalCloud, glance: Any) -> None:
    image = new_image(glance)
    data = os.urandom(MiB + 5)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 100_000):
            yield data[start : start + 100_000]

    headers = {"Content-Type": "application/octet-stream", "x-openstack-image-size": str(len(data))}
    put = local_cloud.session().images(
        REGION, "PUT", f"/images/{image.id}/file", data=chunks(), headers=headers
    )
    assert put.status_code == 204, put.text
    assert_holds(glance, image.id, data)


def test_upload_refusals_are_glances(local_cloud: LocalCloud, glance: Any) -> None:
    plain = local_cloud.session()
    octet = {"Content-Type": "application/octet-stream"}
    bare = glance.images.create(name="no formats")
    big = b"x" * BIG  # refused before it is read: still a clean answer while the client sends
    refused = plain.images(REGION, "PUT", f"/images/{bare.id}/file", data=big, headers=octet)
    assert refused.status_code == 400
    assert "disk_format, container_format must be set prior to saving data" in refused.text
    assert raw_image(local_cloud, bare.id)["status"] == "queued"

    image = new_image(glance)
    short = {**octet, "x-openstack-image-size": "1000"}
    refused = plain.images(
        REGION, "PUT", f"/images/{image.id}/file", data=b"y" * 999, headers=short
    )
    assert refused.status_code == 400
    assert "Size mismatch: expected 1000 bytes, got 999 bytes" in refused.text
    assert raw_image(local_cloud, image.id)["status"] == "queued"
    assert raw_image(local_cloud, image.id)["size"] is None

    glance.images.upload(image.id, io.BytesIO(b"z" * 10))
    with pytest.raises(glance_exc.HTTPConflict, match="from active to saving is not allowed"):
        glance.images.upload(image.id, io.BytesIO(b"z"))
    wrong = plain.images(REGION, "PUT", f"/images/{image.id}/file", data=b"x")
    assert wrong.status_code == 415

    unknown = plain.images(REGION, "POST", "/images", json={"name": "x", "disk_format": "floppy"})
    assert unknown.status_code == 400
    assert "Provided object does not match schema 'image': 'floppy' is not one of" in unknown.text
    forbidden = plain.images(REGION, "POST", "/images", json={"name": "x", "status": "active"})
    assert forbidden.status_code == 403
    assert "Attribute 'status' is read-only." in forbidden.text


def test_bytes_of_a_bare_image_must_match_its_disk_format(
    local_cloud: LocalCloud, glance: Any
) -> None:
    data = os.urandom(100_000)  # reads as raw
    claimed = new_image(glance, disk_format="qcow2")
    octet = {"Content-Type": "application/octet-stream"}
    put = local_cloud.session().images(
        REGION, "PUT", f"/images/{claimed.id}/file", data=data, headers=octet
    )
    assert put.status_code == 415
    assert "Image disk_format qcow2 does not match stream data raw" in put.text
    with pytest.raises(glance_exc.HTTPException):  # glanceclient has no class for a 415
        glance.images.upload(claimed.id, io.BytesIO(data))
    refused = raw_image(local_cloud, claimed.id)
    assert (refused["status"], refused["checksum"]) == ("queued", None)
    qcow2 = b"QFI\xfb" + b"\x00\x00\x00\x03" + bytes(16) + (10 * MiB).to_bytes(8, "big")
    glance.images.upload(claimed.id, io.BytesIO(qcow2 + bytes(1000)))
    assert glance.images.get(claimed.id).virtual_size == 10 * MiB
    packaged = new_image(glance, disk_format="vhd", container_format="ovf")
    glance.images.upload(packaged.id, io.BytesIO(data))  # not bare: not inspected
    assert_holds(glance, packaged.id, data)
    assert glance.images.get(packaged.id).virtual_size is None


# -- staging and glance-direct ---------------------------------------------------------------


def test_stage_then_glance_direct_import(
    local_cloud: LocalCloud, glance: Any, validators: dict[str, Draft4Validator]
) -> None:
    image = new_image(glance)
    data = os.urandom(BIG)
    glance.images.stage(image.id, io.BytesIO(data))
    staged = raw_image(local_cloud, image.id)
    check(validators, staged)
    assert (staged["status"], staged["size"], staged["checksum"]) == ("uploading", len(data), None)
    local_cloud.admin.delay_next_task(REGION, "api_image_import", 0.4)
    glance.images.image_import(image.id, method="glance-direct")
    answers = wait_status(local_cloud, image.id, ("active", "queued"), validators=validators)
    assert answers[0]["status"] == "importing"
    assert answers[0]["os_glance_import_task"]
    assert answers[0]["os_glance_importing_to_stores"] == "swift"
    assert answers[-1]["status"] == "active"
    assert "os_glance_import_task" not in answers[-1]
    assert answers[-1]["os_glance_failed_import"] == ""
    assert_holds(glance, image.id, data)
    task = ended_task(glance, image.id)  # the image is active a moment before
    tasks = glance.images.get_associated_image_tasks(image.id)["tasks"]
    assert [(t["type"], t["status"]) for t in tasks] == [("api_image_import", "success")]
    assert task["result"] == {"image_id": image.id}
    assert task["input"]["import_req"] == {"method": {"name": "glance-direct"}}


def test_import_refusals_are_glances(local_cloud: LocalCloud, glance: Any) -> None:
    image = new_image(glance)
    with pytest.raises(glance_exc.HTTPBadRequest, match="Unknown import method name"):
        glance.images.image_import(
            image.id, method="glance-download", remote_region=OTHER, remote_image_id=image.id
        )
    with pytest.raises(glance_exc.HTTPConflict, match="needs to be staged"):
        glance.images.image_import(image.id, method="glance-direct")
    with pytest.raises(glance_exc.HTTPBadRequest, match="does not pass filtering"):
        glance.images.image_import(image.id, method="web-download", uri="http://example.com:81/x")
    only_web = {REGION: ["web-download"]}
    with (
        local_cloud.admin.temporary_options(import_methods=only_web),
        pytest.raises(glance_exc.HTTPNotFound),
    ):
        glance.images.stage(image.id, io.BytesIO(b"x"))


def test_an_injected_failure_reaches_the_task_message(local_cloud: LocalCloud, glance: Any) -> None:
    image = new_image(glance)
    glance.images.stage(image.id, io.BytesIO(b"staged"))
    reason = "Image upload problem: the store is full"
    local_cloud.admin.fail_next_task(REGION, "api_image_import", reason)
    glance.images.image_import(image.id, method="glance-direct")
    failed = wait_status(local_cloud, image.id, ("queued",))[-1]
    assert failed["os_glance_failed_import"] == "swift"
    assert (ended_task(glance, image.id)["status"], ended_task(glance, image.id)["message"]) == (
        "failure",
        reason,
    )


def test_a_second_import_while_one_runs_is_a_409(local_cloud: LocalCloud, glance: Any) -> None:
    image = new_image(glance)
    glance.images.stage(image.id, io.BytesIO(b"staged bytes"))
    local_cloud.admin.delay_next_task(REGION, "api_image_import", 1.0)
    glance.images.image_import(image.id, method="glance-direct")
    again = local_cloud.session().images(
        REGION, "POST", f"/images/{image.id}/import", json={"method": {"name": "glance-direct"}}
    )
    assert again.status_code == 409
    wait_status(local_cloud, image.id, ("active",))


# -- web-download ----------------------------------------------------------------------------


def test_web_download_of_a_tempurl_of_an_slo_in_the_same_region(
    local_cloud: LocalCloud, glance: Any, validators: dict[str, Draft4Validator]
) -> None:
    plain = local_cloud.session()
    container = keyed_container(plain, REGION)
    data = os.urandom(BIG)
    put_slo(plain, REGION, container, "disk.raw", data)
    url = tempurl_of(plain, REGION, container, "disk.raw")
    assert requests.get(url, timeout=TIMEOUT).content == data  # no token needed
    image = new_image(glance)
    glance.images.image_import(image.id, method="web-download", uri=url)
    wait_status(local_cloud, image.id, ("active", "queued"), validators=validators)
    assert_holds(glance, image.id, data)


def test_a_failed_web_download_leaves_the_image_queued_with_the_failed_store(
    local_cloud: LocalCloud, glance: Any, validators: dict[str, Draft4Validator]
) -> None:
    plain = local_cloud.session()
    container = keyed_container(plain, REGION)
    missing = tempurl_of(plain, REGION, container, "no-such-object")
    image = new_image(glance)
    glance.images.image_import(image.id, method="web-download", uri=missing)
    time.sleep(0.05)
    answers = wait_status(local_cloud, image.id, ("queued",), validators=validators)
    failed = answers[-1]
    assert failed["os_glance_failed_import"] == "swift"
    assert failed["os_glance_importing_to_stores"] == ""
    assert "os_glance_import_task" not in failed
    task = ended_task(glance, image.id)
    assert (task["status"], task["message"]) == ("failure", "Task failed due to Internal Error")
    assert task["expires_at"] is not None
    # queued again: a new import may follow, and works
    data = os.urandom(1000)
    assert plain.storage(REGION, "PUT", f"/{container}/now", data=data).status_code == 201
    glance.images.image_import(
        image.id, method="web-download", uri=tempurl_of(plain, REGION, container, "now")
    )
    wait_status(local_cloud, image.id, ("active",))
    assert_holds(glance, image.id, data)


def test_an_import_whose_bytes_do_not_match_the_disk_format_fails(
    local_cloud: LocalCloud, glance: Any
) -> None:
    plain = local_cloud.session()
    container = keyed_container(plain, REGION)
    assert plain.storage(REGION, "PUT", f"/{container}/raw", data=os.urandom(5000)).ok
    image = new_image(glance, disk_format="qcow2")
    glance.images.image_import(
        image.id, method="web-download", uri=tempurl_of(plain, REGION, container, "raw")
    )
    failed = wait_status(local_cloud, image.id, ("queued",))[-1]
    assert (failed["os_glance_failed_import"], failed["checksum"]) == ("swift", None)
    nothing = plain.images(REGION, "GET", f"/images/{image.id}/file")
    assert nothing.status_code == 204  # no data kept


# -- glance-download -------------------------------------------------------------------------


def test_glance_download_between_two_glance_regions_sharing_a_keystone(
    local_cloud: LocalCloud, glance: Any, validators: dict[str, Draft4Validator]
) -> None:
    source_glance = client(local_cloud, OTHER)
    source = new_image(source_glance, hw_disk_bus="scsi", os_distro="ubuntu", note="not copied")
    data = os.urandom(BIG)
    source_glance.images.upload(source.id, io.BytesIO(data))
    methods = {REGION: ["glance-direct", "web-download", "glance-download"]}
    with local_cloud.admin.temporary_options(import_methods=methods):
        target = glance.images.create(name="copy", disk_format="qcow2", container_format="ovf")
        glance.images.image_import(
            target.id, method="glance-download", remote_region=OTHER, remote_image_id=source.id
        )
        wait_status(local_cloud, target.id, ("active", "queued"), validators=validators)
        assert_holds(glance, target.id, data)
        copied = glance.images.get(target.id)
        assert (copied.disk_format, copied.container_format) == ("raw", "bare")
        assert (copied.hw_disk_bus, copied.os_distro) == ("scsi", "ubuntu")
        assert "note" not in copied
        assert copied.os_hash_value == source_glance.images.get(source.id).os_hash_value

        # a token of the target region's own Keystone has no catalog entry for the source
        flex = client(local_cloud, REGION, keystone_region=REGION)
        alone = flex.images.create(name="flex", disk_format="raw", container_format="bare")
        flex.images.image_import(
            alone.id, method="glance-download", remote_region=OTHER, remote_image_id=source.id
        )
        time.sleep(0.05)
        failed = wait_status(local_cloud, alone.id, ("queued",))[-1]
        assert failed["os_glance_failed_import"] == "swift"


def test_glance_keeps_hashes_read_only_and_its_namespace_reserved(
    local_cloud: LocalCloud, glance: Any
) -> None:
    image = new_image(glance)
    plain = local_cloud.session()
    for name in ("os_hash_value", "os_glance_failed_import"):
        refused = plain.patch_image(
            REGION, image.id, [{"op": "add", "path": f"/{name}", "value": "x"}]
        )
        assert refused.status_code == 403, name
    updated = glance.images.update(image.id, name="renamed", hw_disk_bus="virtio")
    assert (updated.name, updated.hw_disk_bus, updated.checksum) == ("renamed", "virtio", None)


def test_an_import_cut_by_a_restart_of_the_service_finishes_after_it(
    local_cloud: LocalCloud, glance: Any
) -> None:
    image = new_image(glance)
    data = os.urandom(BIG)
    glance.images.stage(image.id, io.BytesIO(data))
    local_cloud.admin.delay_next_task(REGION, "api_image_import", 1.5)
    glance.images.image_import(image.id, method="glance-direct")
    assert raw_image(local_cloud, image.id)["status"] == "importing"
    local_cloud.restart_api(hard=True)
    wait_status(local_cloud, image.id, ("active", "queued"))
    fresh = client(local_cloud, REGION)
    assert_holds(fresh, image.id, data)
    assert ended_task(fresh, image.id)["status"] == "success"
    tasks = local_cloud.session().images(REGION, "GET", f"/images/{image.id}/tasks").json()
    assert [task["status"] for task in tasks["tasks"]] == ["success"]


def test_an_upload_cut_short_by_the_client_leaves_the_image_queued(
    local_cloud: LocalCloud, glance: Any
) -> None:
    image = new_image(glance)
    endpoint = urlsplit(local_cloud.images_url(REGION))
    token = local_cloud.session().token
    request = (
        f"PUT /v2/images/{image.id}/file HTTP/1.1\r\nHost: {endpoint.netloc}\r\n"
        f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 3000000\r\n\r\n"
    ).encode()
    with socket.create_connection((endpoint.hostname, endpoint.port), timeout=TIMEOUT) as sock:
        sock.sendall(request + os.urandom(1_000_000))
    deadline = time.monotonic() + TIMEOUT
    while raw_image(local_cloud, image.id)["status"] != "queued":
        assert time.monotonic() < deadline, "the image stayed saving after the client left"
        time.sleep(0.05)
    assert raw_image(local_cloud, image.id)["checksum"] is None
    data = os.urandom(2000)
    glance.images.upload(image.id, io.BytesIO(data))  # queued again: the upload can be retried
    assert_holds(glance, image.id, data)
