"""Export and import tasks of the local cloud: the task document, the DLO written to Swift, the
bytes imported from plain/DLO/SLO objects, and every documented failure."""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from imagehop_sandbox.handle import CloudSession, LocalCloud
from imagehop_sandbox.options import INSTANT_JOBS
from imagehop_sandbox.vhd import (
    DISK_DIFFERENCING,
    DISK_DYNAMIC,
    build_dynamic_header,
    build_footer,
    disk_chunks,
    dynamic_chunks,
    dynamic_size,
)
from tests.sandbox.vhd_reader import read_dynamic

pytestmark = pytest.mark.cloud

MiB = 1024 * 1024
EXPORTABLE = {"com.rackspace__1__options": "0"}


def exportable_image(cloud: LocalCloud, disk_bytes: int = 64 * 1024) -> str:
    image = cloud.admin.create_image(
        "DFW", cloud.main.tenant_id, disk_bytes=disk_bytes, properties=EXPORTABLE
    )
    return str(image["id"])


def start_task(session: CloudSession, region: str, kind: str, task_input: Any) -> dict[str, Any]:
    response = session.images(region, "POST", "/tasks", json={"type": kind, "input": task_input})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    assert response.headers["Location"] == f"/v2/tasks/{task['id']}"
    return task


def vhd(disk_bytes: int, **footer: Any) -> bytes:
    disk = random.Random(disk_bytes).randbytes(disk_bytes)
    return disk + build_footer(
        footer.pop("size", disk_bytes), footer.pop("uid", uuid.uuid4().bytes), **footer
    )


def dynamic_vhd(disk_bytes: int) -> bytes:
    disk = random.Random(disk_bytes).randbytes(disk_bytes)
    return b"".join(dynamic_chunks([disk], disk_bytes, uuid.uuid4().bytes, 0))


def sparse_vhd(virtual: int, uid: bytes | None = None) -> bytes:
    """A dynamic VHD with no block allocated: physically small, virtually ``virtual`` bytes."""
    entries = -(-virtual // (2 * MiB))
    unique = uuid.uuid4().bytes if uid is None else uid
    footer = build_footer(virtual, unique, disk_type=DISK_DYNAMIC)
    table = (b"\xff" * 4 * entries).ljust(-(-(4 * entries) // 512) * 512, b"\xff")
    return footer + build_dynamic_header(entries) + table + footer


def corrupt_header(data: bytes) -> bytes:
    broken = bytearray(data)
    broken[512 + 30] ^= 0x01  # inside the dynamic header: its checksum no longer matches
    return bytes(broken)


@pytest.fixture
def session(local_cloud: LocalCloud) -> CloudSession:
    return local_cloud.session()


@pytest.fixture
def limit_options(local_cloud: LocalCloud) -> Iterator[None]:
    with local_cloud.admin.temporary_options(import_size_limit_bytes=256 * 1024):
        yield


def test_export_writes_the_image_bytes_as_a_dlo(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    image_id = exportable_image(local_cloud, disk_bytes=3 * MiB + 4567)
    container = session.new_container("DFW", "exports")
    task = session.export("DFW", image_id, container)
    assert task["status"] == "success", task["message"]
    assert task["result"] == {"export_location": f"{container}/{image_id}.vhd"}
    manifest = f"/{container}/{image_id}.vhd"
    head = session.storage("DFW", "HEAD", manifest)
    assert head.headers["X-Object-Manifest"] == f"{container}/{image_id}.vhd-"
    physical = dynamic_size(3 * MiB + 4567)  # a dynamic VHD: two 2 MiB blocks and metadata
    assert int(head.headers["Content-Length"]) == physical > 4 * MiB
    raw = session.storage("DFW", "GET", manifest + "?multipart-manifest=get")
    assert raw.content == b""
    listing = session.storage(
        "DFW", "GET", f"/{container}?prefix={image_id}.vhd-&format=json"
    ).json()
    count = -(-physical // MiB)
    assert [o["name"] for o in listing] == [f"{image_id}.vhd-{n:05d}" for n in range(1, count + 1)]
    assert [o["bytes"] for o in listing] == [MiB] * (count - 1) + [physical - (count - 1) * MiB]
    body = session.storage("DFW", "GET", manifest).content
    exported = read_dynamic(body)
    assert exported.creator == b"tap\0"
    assert exported.unique_id == uuid.UUID(image_id).bytes
    assert exported.virtual_size == 3 * MiB + 4608  # whole sectors
    disk = b"".join(disk_chunks(f"admin:{image_id}", 3 * MiB + 4567))
    assert exported.disk == disk + bytes(4608 - 4567)
    assert hashlib.md5(body).hexdigest() == local_cloud.admin.image_content_md5(image_id)


def test_an_export_imports_back_and_exports_again_unchanged(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    image_id = exportable_image(local_cloud, disk_bytes=2 * MiB + 99)
    container = session.new_container("DFW", "round-trip")
    first = session.export("DFW", image_id, container)
    assert first["status"] == "success", first["message"]
    body = session.storage("DFW", "GET", f"/{first['result']['export_location']}").content
    imported = session.import_("DFW", first["result"]["export_location"], "round-trip")
    assert imported["status"] == "success", imported["message"]
    new_id = imported["result"]["image_id"]
    image = session.images("DFW", "GET", f"/images/{new_id}").json()
    assert image["size"] == len(body) == dynamic_size(2 * MiB + 99)
    assert image["min_disk"] == 1
    assert local_cloud.admin.image_content_md5(new_id) == hashlib.md5(body).hexdigest()
    again_container = session.new_container("DFW", "round-trip-again")
    again = session.export("DFW", new_id, again_container)
    assert again["status"] == "success", again["message"]
    assert session.storage("DFW", "GET", f"/{again['result']['export_location']}").content == body


def test_an_image_imported_from_a_fixed_vhd_exports_as_a_dynamic_one(
    session: CloudSession,
) -> None:
    data = vhd(150_000)
    container = session.new_container("IAD", "fixed")
    upload(session, container, "fixed.vhd", data, "plain")
    imported = session.import_("IAD", f"{container}/fixed.vhd", "from-fixed")
    assert imported["status"] == "success", imported["message"]
    exports = session.new_container("IAD", "fixed-export")
    task = session.export("IAD", imported["result"]["image_id"], exports)
    assert task["status"] == "success", task["message"]
    body = session.storage("IAD", "GET", f"/{task['result']['export_location']}").content
    exported = read_dynamic(body)
    assert exported.disk[:150_000] == data[:-512]
    assert exported.unique_id == data[-512:][68:84]  # the VHD's own unique id is kept
    assert len(body) == dynamic_size(150_000)


def test_a_glance_region_accepts_an_export_as_a_bare_vhd(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    image_id = exportable_image(local_cloud, disk_bytes=MiB + 1000)
    container = session.new_container("DFW", "to-glance")
    task = session.export("DFW", image_id, container)
    assert task["status"] == "success", task["message"]
    body = session.storage("DFW", "GET", f"/{task['result']['export_location']}").content
    octet = {"Content-Type": "application/octet-stream"}
    fields = {"name": "exported", "disk_format": "vhd", "container_format": "bare"}
    with local_cloud.admin.temporary_options(glance_regions="IAD"):
        created = session.images("IAD", "POST", "/images", json=fields)
        assert created.status_code == 201, created.text
        new_id = created.json()["id"]
        put = session.images("IAD", "PUT", f"/images/{new_id}/file", data=body, headers=octet)
        assert put.status_code == 204, put.text
        image = session.images("IAD", "GET", f"/images/{new_id}").json()
        assert (image["status"], image["disk_format"]) == ("active", "vhd")
        assert image["virtual_size"] == MiB + 1024
        assert image["size"] == len(body)
        fixed = session.images("IAD", "POST", "/images", json=fields).json()["id"]
        refused = session.images(
            "IAD", "PUT", f"/images/{fixed}/file", data=vhd(MiB), headers=octet
        )
        assert refused.status_code == 415  # a fixed VHD has no header at offset 0: raw
        assert "does not match stream data raw" in refused.text


def test_task_document_through_its_life(local_cloud: LocalCloud, session: CloudSession) -> None:
    image_id = exportable_image(local_cloud)
    container = session.new_container("DFW")
    local_cloud.admin.delay_next_task("DFW", "export", 0.5)
    created = start_task(
        session, "DFW", "export", {"image_uuid": image_id, "receiving_swift_container": container}
    )
    assert created["status"] == "pending"
    assert created["message"] == "None"
    assert "result" not in created
    assert "expires_at" not in created
    assert created["owner"] == session.tenant
    assert created["input"] == {"image_uuid": image_id, "receiving_swift_container": container}
    assert (created["self"], created["schema"]) == (
        f"/v2/tasks/{created['id']}",
        "/v2/schemas/task",
    )
    statuses = []
    while not statuses or statuses[-1]["status"] not in ("success", "failure"):
        statuses.append(session.images("DFW", "GET", f"/tasks/{created['id']}").json())
        time.sleep(0.05)
    processing = [s for s in statuses if s["status"] == "processing"]
    assert processing
    assert all("expires_at" not in s for s in processing)
    done = statuses[-1]
    assert done["status"] == "success"
    updated = datetime.fromisoformat(done["updated_at"])
    expires = datetime.fromisoformat(done["expires_at"])
    assert abs((expires - updated).total_seconds() - 48 * 3600) <= 1


def test_with_jobs_before_answer_the_answer_is_pending_and_the_first_poll_finds_it_done(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    image_id = exportable_image(local_cloud, disk_bytes=2 * MiB)
    container = session.new_container("DFW")
    with local_cloud.admin.temporary_options(**INSTANT_JOBS):
        exporting = {"image_uuid": image_id, "receiving_swift_container": container}
        created = start_task(session, "DFW", "export", exporting)
        exported = session.images("DFW", "GET", f"/tasks/{created['id']}").json()
        location = exported["result"]["export_location"]
        importing = {
            "import_from": location,
            "import_from_format": "vhd",
            "image_properties": {"name": "back"},
        }
        import_created = start_task(session, "DFW", "import", importing)
        imported = session.images("DFW", "GET", f"/tasks/{import_created['id']}").json()
    assert (created["status"], import_created["status"]) == ("pending", "pending")
    assert "result" not in created and "result" not in import_created  # as the seed's answer
    assert (exported["status"], imported["status"]) == ("success", "success")
    new_image = imported["result"]["image_id"]
    assert local_cloud.admin.image_content_md5(new_image) == (
        local_cloud.admin.image_content_md5(image_id)
    )
    assert local_cloud.admin.options()["jobs_before_answer"] is False  # put back
    with pytest.raises(RuntimeError, match="jobs_before_answer must be true or false"):
        local_cloud.admin.set_options(jobs_before_answer="yes")


def export_failure(session: CloudSession, image_id: str, container: str) -> str:
    task = session.export("DFW", image_id, container)
    assert task["status"] == "failure"
    assert "expires_at" in task
    return str(task["message"])


def test_export_of_a_missing_or_foreign_image_fails(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    container = session.new_container("DFW")
    missing = str(uuid.uuid4())
    assert (
        export_failure(session, missing, container)
        == f"Requested image for export was not found: {missing}"
    )
    theirs = local_cloud.admin.create_image(
        "DFW", local_cloud.other.tenant_id, properties=EXPORTABLE
    )["id"]
    assert (
        export_failure(session, theirs, container)
        == f"Requested image for export was not found: {theirs}"
    )


def test_only_the_owner_can_export(local_cloud: LocalCloud, session: CloudSession) -> None:
    base_id = local_cloud.admin.seed()["DFW"]["base_image"]
    message = export_failure(session, base_id, session.new_container("DFW"))
    assert "only the owner" in message


def test_licence_restricted_images_cannot_be_exported(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    licensed = local_cloud.admin.seed()["DFW"]["licensed_image"]
    message = export_failure(session, licensed, session.new_container("DFW"))
    assert f"Image {licensed} cannot be exported" in message
    assert "licensing" in message


@pytest.mark.parametrize("name", ["with.dot", "what?", "a/b"])
def test_container_names_with_slash_question_mark_or_period_fail(
    local_cloud: LocalCloud, session: CloudSession, name: str
) -> None:
    message = export_failure(session, exportable_image(local_cloud), name)
    assert message.startswith(f"Invalid container name '{name}'")


def test_missing_container_fails(local_cloud: LocalCloud, session: CloudSession) -> None:
    message = export_failure(session, exportable_image(local_cloud), f"absent-{uuid.uuid4().hex}")
    assert "does not exist" in message


def test_exporting_twice_into_one_container_fails(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    image_id = exportable_image(local_cloud)
    container = session.new_container("DFW")
    assert session.export("DFW", image_id, container)["status"] == "success"
    assert export_failure(session, image_id, container) == (
        f"Swift already has an object with id '{image_id}.vhd' in container '{container}'"
    )


def test_injected_failure_hits_the_next_task_only(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    container = session.new_container("DFW")
    local_cloud.admin.fail_next_task("DFW", "export", "Export failed: simulated outage")
    assert (
        export_failure(session, exportable_image(local_cloud), container)
        == "Export failed: simulated outage"
    )
    assert session.export("DFW", exportable_image(local_cloud), container)["status"] == "success"


def upload(session: CloudSession, container: str, name: str, data: bytes, layout: str) -> None:
    if layout == "plain":
        assert session.storage("IAD", "PUT", f"/{container}/{name}", data=data).status_code == 201
        return
    parts = [data[i : i + 40_000] for i in range(0, len(data), 40_000)]
    segments = []
    for number, part in enumerate(parts, start=1):
        segment = f"{name}-{number:05d}"
        assert (
            session.storage("IAD", "PUT", f"/{container}/{segment}", data=part).status_code == 201
        )
        segments.append(
            {
                "path": f"/{container}/{segment}",
                "etag": hashlib.md5(part).hexdigest(),
                "size_bytes": len(part),
            }
        )
    if layout == "dlo":
        headers = {"X-Object-Manifest": f"{container}/{name}-"}
        response = session.storage("IAD", "PUT", f"/{container}/{name}", data=b"", headers=headers)
    else:
        body = json.dumps(segments)
        response = session.storage(
            "IAD", "PUT", f"/{container}/{name}?multipart-manifest=put", data=body
        )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("layout", ["plain", "dlo", "slo"])
def test_import_creates_a_new_image_from_the_objects_bytes(
    local_cloud: LocalCloud, session: CloudSession, layout: str
) -> None:
    data = vhd(150_000)
    container = session.new_container("IAD", "imports")
    upload(session, container, "disk.vhd", data, layout)
    task = session.import_("IAD", f"{container}/disk.vhd", f"imported-{layout}")
    assert task["status"] == "success", task["message"]
    image_id = task["result"]["image_id"]
    image = session.images("IAD", "GET", f"/images/{image_id}").json()
    assert (image["name"], image["status"], image["owner"]) == (
        f"imported-{layout}",
        "active",
        session.tenant,
    )
    assert image["size"] == len(data)
    assert image["checksum"] != hashlib.md5(data).hexdigest()
    assert local_cloud.admin.image_content_md5(image_id) == hashlib.md5(data).hexdigest()
    core = {
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "tags",
        "min_disk",
        "min_ram",
        "disk_format",
        "container_format",
        "owner",
        "size",
        "checksum",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
    }
    assert set(image) - core == {"image_type", "com.rackspace__1__options"}


def import_failure(session: CloudSession, location: str, **extra: Any) -> str:
    task = session.import_("IAD", location, "refused", **extra)
    assert task["status"] == "failure"
    assert "result" not in task
    return str(task["message"])


def test_import_accepts_only_a_name(session: CloudSession) -> None:
    container = session.new_container("IAD")
    upload(session, container, "d.vhd", vhd(2000), "plain")
    message = import_failure(session, f"{container}/d.vhd", os_distro="ubuntu")
    assert "Name is the only property" in message


def test_import_from_a_missing_location_fails(session: CloudSession) -> None:
    container = session.new_container("IAD")
    expected = "Error: Image not found for import. Possible invalid location"
    assert import_failure(session, f"{container}/nothing.vhd") == expected
    assert import_failure(session, "no-slash") == expected


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not a vhd at all" * 100, "396"),
        (vhd(4096, uid=bytes(16)), "614"),
        (vhd(4096, disk_type=DISK_DIFFERENCING), "721"),
        (vhd(4096, disk_type=5), "523"),
        (vhd(4096, size=10 * MiB), "413"),
        (vhd(300 * 1024), "609"),
        (dynamic_vhd(100_000), "609"),  # a dynamic VHD is physically larger than its disk
        (sparse_vhd(10 * MiB), "413"),
        (sparse_vhd(200 * 1024, uid=bytes(16)), "614"),
        (corrupt_header(sparse_vhd(200 * 1024)), "111"),
        (bytes(512) + sparse_vhd(200 * 1024)[512:], "111"),
    ],
    ids=[
        "not-vhd",
        "zero-id",
        "parent",
        "disk-type",
        "virtual-size",
        "physical-size",
        "dynamic-physical-size",
        "dynamic-virtual-size",
        "dynamic-zero-id",
        "dynamic-header-checksum",
        "dynamic-no-footer-copy",
    ],
)
@pytest.mark.usefixtures("limit_options")
def test_import_validates_the_vhd(session: CloudSession, data: bytes, code: str) -> None:
    container = session.new_container("IAD")
    upload(session, container, "d.vhd", data, "plain" if len(data) <= MiB else "dlo")
    message = import_failure(session, f"{container}/d.vhd")
    assert message.startswith(f"Image cannot be imported. Error code: '{code}'")


@pytest.mark.usefixtures("limit_options")
def test_import_accepts_a_small_sparse_dynamic_vhd(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    data = sparse_vhd(200 * 1024)
    container = session.new_container("IAD")
    upload(session, container, "d.vhd", data, "plain")
    task = session.import_("IAD", f"{container}/d.vhd", "sparse")
    assert task["status"] == "success", task["message"]
    image = session.images("IAD", "GET", f"/images/{task['result']['image_id']}").json()
    assert image["size"] == len(data)
    record = local_cloud.admin.image_record(task["result"]["image_id"])
    assert record["content"]["layout"] == "plain"  # under the object cap: one object


def test_users_without_the_admin_role_cannot_create_tasks(local_cloud: LocalCloud) -> None:
    viewer = local_cloud.session(local_cloud.viewer)
    body = {
        "type": "export",
        "input": {"image_uuid": str(uuid.uuid4()), "receiving_swift_container": "c"},
    }
    assert viewer.images("DFW", "POST", "/tasks", json=body).status_code == 403
    assert viewer.images("DFW", "GET", "/tasks").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": {}}, 400, "Task 'type' is required"),
        ({"type": "export"}, 400, "Task 'input' is required"),
        ({"type": "copy", "input": {}}, 400, "is not one of"),
        ({"type": "import", "input": "x"}, 400, "is not of type 'object'"),
    ],
)
def test_malformed_task_requests_are_400(
    session: CloudSession, body: Any, status: int, message: str
) -> None:
    response = session.images("DFW", "POST", "/tasks", json=body)
    assert response.status_code == status
    assert message in response.text


def test_task_requests_must_be_json(session: CloudSession) -> None:
    response = session.images(
        "DFW", "POST", "/tasks", data="{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_tasks_are_private_listed_as_summaries_and_not_deletable(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    task = session.export("DFW", exportable_image(local_cloud), session.new_container("DFW"))
    other = local_cloud.session(local_cloud.other)
    assert other.images("DFW", "GET", f"/tasks/{task['id']}").status_code == 404
    assert session.images("IAD", "GET", f"/tasks/{task['id']}").status_code == 404
    assert task["id"] not in [t["id"] for t in other.images("DFW", "GET", "/tasks").json()["tasks"]]
    listing = session.images("DFW", "GET", "/tasks?type=export").json()
    summary = next(t for t in listing["tasks"] if t["id"] == task["id"])
    assert {"input", "result", "message"}.isdisjoint(summary)
    assert summary["status"] == "success"
    deleted = session.images("DFW", "DELETE", f"/tasks/{task['id']}")
    assert (deleted.status_code, deleted.headers["Allow"]) == (405, "GET")


def test_finished_tasks_expire_but_their_results_stay(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    container = session.new_container("IAD")
    upload(session, container, "d.vhd", vhd(5000), "plain")
    with local_cloud.admin.temporary_options(task_ttl_seconds=1.0):
        task = session.import_("IAD", f"{container}/d.vhd", "outlives-its-task")
    assert task["status"] == "success"
    time.sleep(1.1)
    gone = session.images("IAD", "GET", f"/tasks/{task['id']}")
    assert gone.status_code == 404
    assert f"Could not find task {task['id']}" in gone.text
    assert session.images("IAD", "GET", f"/images/{task['result']['image_id']}").status_code == 200


def test_every_poll_is_recorded_with_its_time(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    image_id = exportable_image(local_cloud)
    task = start_task(
        session, "DFW", "export", {"image_uuid": image_id, "receiving_swift_container": "x"}
    )
    before = time.time()
    for _ in range(3):
        session.images("DFW", "GET", f"/tasks/{task['id']}")
        time.sleep(0.05)
    polls = local_cloud.admin.task_polls(task["id"])
    assert len(polls) == 3
    assert polls == sorted(polls)
    assert before - 0.01 <= polls[0] and polls[-1] - polls[0] >= 0.1


def test_counts_grow_per_region_and_kind(local_cloud: LocalCloud, session: CloudSession) -> None:
    before = local_cloud.admin.counts()
    start_task(
        session,
        "DFW",
        "export",
        {"image_uuid": str(uuid.uuid4()), "receiving_swift_container": "x"},
    )
    after = local_cloud.admin.counts()
    assert after["DFW"]["export_tasks_created"] == before["DFW"].get("export_tasks_created", 0) + 1
    assert after["IAD"] == before["IAD"]


def test_peaks_record_the_most_tasks_unfinished_at_once(
    local_cloud: LocalCloud, session: CloudSession
) -> None:
    exporting = {"image_uuid": str(uuid.uuid4()), "receiving_swift_container": "x"}
    with local_cloud.admin.temporary_options(task_pending_seconds=0.5, task_processing_seconds=1):
        peaks_before = local_cloud.admin.peaks()
        before = peaks_before["DFW"].get("export_tasks_running", 0)
        together = [start_task(session, "DFW", "export", exporting) for _ in range(before + 2)]
        for task in together:
            session.wait_task("DFW", task["id"])
        peak = local_cloud.admin.peaks()["DFW"]["export_tasks_running"]
        assert peak >= before + 2  # every one was unfinished when the last one started
        for _ in range(2):  # one after the other: never more than one unfinished
            session.wait_task("DFW", start_task(session, "DFW", "export", exporting)["id"])
        after = local_cloud.admin.peaks()
    assert after["DFW"]["export_tasks_running"] == peak
    assert after["IAD"] == peaks_before["IAD"]  # per region
