"""replicate-server against the local cloud: the newest copies of a server stay, older copies
go with the snapshots and intermediates imagehop made for them; nothing else is ever deleted."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from imagehop.errors import TaskFailedError
from imagehop.flows.replicate_server import replicate_server
from imagehop.procedure.request import (
    COORDINATING_KEY_PROPERTY,
    DEFAULT_EXPORT_CONTAINER,
    DEFAULT_IMPORT_CONTAINER,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    SNAPSHOT_PROPERTY,
    ReplicateRequest,
    segments_container,
)
from imagehop.procedure.result import ReplicationResult, TransferResult
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import created, objects

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


def dr_key() -> str:
    """A coordinating key of this test alone: other tests' copies of the demo server are not
    this test's copies."""
    return f"com.test.dr-{uuid.uuid4().hex[:8]}"


def replicate(cloud: LocalCloud, key: str, keep: int, **fields: Any) -> ReplicationResult:
    server_id = cloud.admin.seed()["DFW"]["demo_server"]
    request = ReplicateRequest(
        source_region="DFW",
        target_region="IAD",
        server_id=server_id,
        coordinating_property_key=key,
        keep=keep,
        **fields,
    )
    result = replicate_server(request)
    assert isinstance(result, ReplicationResult)
    return result


def transferred(result: ReplicationResult) -> TransferResult:
    assert isinstance(result.transfer, TransferResult)
    return result.transfer


def exists(cloud: LocalCloud, region: str, image_id: str) -> bool:
    status = cloud.session().images(region, "GET", f"/images/{image_id}").status_code
    assert status in (200, 404)
    return status == 200


def copies_in_iad(cloud: LocalCloud, key: str) -> set[str]:
    server_id = cloud.admin.seed()["DFW"]["demo_server"]
    response = cloud.session().images("IAD", "GET", "/images", params={key: server_id})
    response.raise_for_status()
    return {image["id"] for image in response.json()["images"]}


def intermediates(cloud: LocalCloud, source_image_id: str) -> list[str]:
    """Exported (DFW) and staged (IAD) objects of that source image."""
    staged = segments_container(DEFAULT_IMPORT_CONTAINER)
    return [
        *objects(cloud, "DFW", DEFAULT_EXPORT_CONTAINER, source_image_id),
        *objects(cloud, "IAD", DEFAULT_IMPORT_CONTAINER, source_image_id),
        *objects(cloud, "IAD", staged, source_image_id),
    ]


def test_three_runs_keeping_two_leave_the_newest_two_copies(on_cloud: LocalCloud) -> None:
    """The oldest copy goes with its snapshot and intermediates (kept by cleanup=keep until
    retention); a dry run afterwards lists what keep=1 would delete and deletes nothing."""
    key = dr_key()
    runs = [replicate(on_cloud, key, keep=2, cleanup="keep") for _ in range(3)]
    first, second, third = (transferred(run) for run in runs)

    assert len({run.run_key for run in (first, second, third)}) == 3
    assert all(run.snapshot_created for run in (first, second, third))
    assert runs[0].deleted == runs[1].deleted == ()
    assert copies_in_iad(on_cloud, key) == {second.target_image_id, third.target_image_id}
    assert runs[2].deleted_images == (first.target_image_id,)
    assert {(d.kind, d.what) for d in runs[2].deleted} == {
        ("target image", first.target_image_id),
        ("source snapshot", first.source_image_id),
        ("intermediates", first.source_image_id),
    }
    assert [c.image_id for c in runs[2].kept] == [third.target_image_id, second.target_image_id]
    assert not exists(on_cloud, "IAD", first.target_image_id)
    assert not exists(on_cloud, "DFW", first.source_image_id)
    assert intermediates(on_cloud, first.source_image_id) == []
    assert exists(on_cloud, "DFW", second.source_image_id)
    assert intermediates(on_cloud, second.source_image_id)  # kept with its copy
    snapshot = on_cloud.session().images("DFW", "GET", f"/images/{third.source_image_id}").json()
    assert snapshot[SNAPSHOT_PROPERTY] == snapshot[SERVER_PROPERTY] == snapshot["instance_uuid"]

    before = created(on_cloud)
    plan = replicate(on_cloud, key, keep=1, dry_run=True)

    assert plan.dry_run and not isinstance(plan.transfer, TransferResult)
    assert plan.deleted_images == (third.target_image_id, second.target_image_id)
    assert copies_in_iad(on_cloud, key) == {second.target_image_id, third.target_image_id}
    assert exists(on_cloud, "DFW", second.source_image_id)
    assert intermediates(on_cloud, second.source_image_id)
    assert created(on_cloud) == before


def test_images_imagehop_did_not_make_survive(on_cloud: LocalCloud) -> None:
    """Made after the first run: look-alikes with the copies' name, the coordinating property
    set by hand, markers of another server, another account's fully marked image, and an image
    with the first run's run key and server but without imagehop's snapshot mark. The second
    run (keep=1) deletes the first copy and its snapshot, and none of them."""
    key, main, other = dr_key(), on_cloud.main.tenant_id, on_cloud.other.tenant_id
    server_id = on_cloud.admin.seed()["DFW"]["demo_server"]
    first = transferred(replicate(on_cloud, key, keep=1))
    markers = {key: server_id, COORDINATING_KEY_PROPERTY: key, RUN_KEY_PROPERTY: first.run_key}
    look_alikes = {
        "IAD": [
            (main, {key: server_id}),
            (main, {**markers, SERVER_PROPERTY: "another-server"}),
            (other, {**markers, SERVER_PROPERTY: server_id}),
        ],
        "DFW": [(main, {**markers, SERVER_PROPERTY: server_id})],
    }
    made = {
        region: [
            on_cloud.admin.create_image(
                region, owner, name="demo-web-1", properties=properties, visibility="public"
            )["id"]
            for owner, properties in specs
        ]
        for region, specs in look_alikes.items()
    }

    second = replicate(on_cloud, key, keep=1)

    assert second.deleted_images == (first.target_image_id,)
    snapshots = {d.what for d in second.deleted if d.kind == "source snapshot"}
    assert snapshots == {first.source_image_id}
    assert not exists(on_cloud, "DFW", first.source_image_id)
    for region, ids in made.items():
        for image_id in ids:
            assert exists(on_cloud, region, image_id), (region, image_id)
    assert copies_in_iad(on_cloud, key) == {transferred(second).target_image_id, *made["IAD"]}


def test_a_failed_transfer_deletes_nothing(on_cloud: LocalCloud) -> None:
    key = dr_key()
    first = transferred(replicate(on_cloud, key, keep=1))
    on_cloud.admin.fail_next_task("IAD", "import", "Image cannot be imported. Error code: '721'.")

    with pytest.raises(TaskFailedError, match="721"):
        replicate(on_cloud, key, keep=1)

    assert copies_in_iad(on_cloud, key) == {first.target_image_id}
    assert exists(on_cloud, "DFW", first.source_image_id)
