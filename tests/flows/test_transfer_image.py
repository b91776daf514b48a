"""transfer-image against the local cloud: the documented procedure end to end, re-runs after a
failure and after success, a lost Prefect cache, dry runs and poll spacing."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import Artifact
from prefect.settings import (
    PREFECT_RESULTS_LOCAL_STORAGE_PATH,
    PREFECT_TASKS_REFRESH_CACHE,
    temporary_settings,
)

import imagehop.procedure.steps
import imagehop.transfer.engine
from imagehop.errors import (
    ConflictError,
    IntegrityError,
    ServerError,
    TaskFailedError,
    TransportError,
)
from imagehop.flows.transfer_image import transfer_image
from imagehop.object_store import ObjectStore
from imagehop.procedure import BootRequest, DryRunPlan, TransferRequest, TransferResult
from imagehop.procedure.request import (
    DEFAULT_EXPORT_CONTAINER,
    DEFAULT_IMPORT_CONTAINER,
    RUN_KEY_PROPERTY,
    segments_container,
    slug,
)
from imagehop.retries import SEGMENT_RETRY
from imagehop.tasks import cloud
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.tokens import PREFIX as TOKEN_PREFIX
from tests.flows.helpers import RecordingClock, created, image, new_image, objects, request_for
from tests.flows.run_record import run_record

pytestmark = [pytest.mark.cloud, pytest.mark.flow]

SEGMENTS = 7  # new_image(): a dynamic VHD of 5 MiB + a bit (6 MiB + 4096), 1 MiB segments
JITTER = 0.5  # seconds of request latency variation tolerated in server-side poll times


def test_server_to_booted_server_in_the_other_region(on_cloud: LocalCloud) -> None:
    """The whole runbook: snapshot, tag, export, copy, import, re-tag, find, boot, clean up."""
    server_id = on_cloud.admin.seed()["DFW"]["demo_server"]
    before = created(on_cloud)
    request = TransferRequest(
        source_region="DFW",
        target_region="IAD",
        server_id=server_id,
        coordinating_property_key="com.mycompany.image-of",
        coordinating_property_value="demo-web-1",
        boot=BootRequest(name="demo-web-1-iad"),
    )

    result = transfer_image(request)

    assert isinstance(result, TransferResult)
    admin = on_cloud.admin
    assert admin.image_content_md5(result.target_image_id) == admin.image_content_md5(
        result.source_image_id
    )
    source = image(on_cloud, "DFW", result.source_image_id)
    target = image(on_cloud, "IAD", result.target_image_id)
    assert source["instance_uuid"] == server_id and result.snapshot_created
    for key in ("os_distro", "os_version", "vm_mode", "org.openstack__1__architecture"):
        assert target[key] == source[key]
    assert target["min_disk"] == source["min_disk"]
    assert target["com.mycompany.image-of"] == source["com.mycompany.image-of"] == "demo-web-1"
    assert target[RUN_KEY_PROPERTY] == result.run_key == f"{server_id}@{result.run_key[-10:]}"
    assert result.segments_copied == result.segments_total > 1
    assert result.bytes_copied == result.bytes_total == source["size"]
    assert result.export_task_id and result.import_task_id
    server = on_cloud.session().compute("IAD", "GET", f"/servers/{result.server_id}").json()
    assert server["server"]["status"] == "ACTIVE"
    assert server["server"]["image"]["id"] == result.target_image_id
    after = created(on_cloud)
    assert after == {
        **before,
        "DFW images_created": before.get("DFW images_created", 0) + 1,
        "DFW export_tasks_created": before.get("DFW export_tasks_created", 0) + 1,
        "IAD import_tasks_created": before.get("IAD import_tasks_created", 0) + 1,
        "IAD images_created": before.get("IAD images_created", 0) + 1,
        "IAD servers_created": before.get("IAD servers_created", 0) + 1,
    }
    # Cleanup: no intermediate copy of this image is left in either region.
    assert not objects(on_cloud, "DFW", DEFAULT_EXPORT_CONTAINER, result.source_image_id)
    assert not objects(on_cloud, "IAD", DEFAULT_IMPORT_CONTAINER, result.source_image_id)
    staged = objects(on_cloud, "IAD", segments_container(DEFAULT_IMPORT_CONTAINER))
    assert not [name for name in staged if name.startswith(result.source_image_id)]
    assert [phase.name for phase in result.phases] == [
        "preflight", "snapshot", "export", "copy", "import", "properties", "boot", "cleanup",
    ]  # fmt: skip

    progress, summary = (
        _artifacts(f"{kind}-{slug(result.run_key)}") for kind in ("copy", "transfer")
    )
    assert progress[-1].type == "progress" and float(progress[-1].data) == 100.0
    segments = f"{result.segments_total}/{result.segments_total} segments"
    assert progress[-1].description is not None and segments in progress[-1].description
    # On the transfer-image run itself (its run page), like the summary, not on a subflow.
    assert progress[-1].flow_run_id == summary[-1].flow_run_id is not None
    assert result.target_image_id in str(summary[-1].data)

    # The same request the same day is the same transfer: nothing new, the same server.
    again = transfer_image(request)
    assert isinstance(again, TransferResult)
    assert (again.target_image_id, again.server_id) == (result.target_image_id, result.server_id)
    assert again.source_image_id == result.source_image_id and not again.snapshot_created
    assert created(on_cloud) == after


def test_rerun_after_a_failed_import_reuses_the_snapshot_export_and_copy(
    on_cloud: LocalCloud,
) -> None:
    """Everything before the import is kept and reused; only the import runs again."""
    server_id = on_cloud.admin.seed()["DFW"]["demo_server"]
    request = TransferRequest(
        source_region="DFW", target_region="IAD", server_id=server_id, run_key="import-fails"
    )
    on_cloud.admin.fail_next_task("IAD", "import", "Image cannot be imported. Error code: '721'.")
    before = created(on_cloud)
    with pytest.raises(TaskFailedError, match="coalesce it into one stand-alone VHD"):
        transfer_image(request)

    result = transfer_image(request)

    assert isinstance(result, TransferResult)
    assert {"snapshot", "export task"} <= set(result.reused)  # from the Prefect cache
    assert result.bytes_copied == 0 and result.segments_skipped == result.segments_total > 1
    after = created(on_cloud)
    for counter, more in [
        ("DFW images_created", 1),
        ("DFW export_tasks_created", 1),
        ("IAD import_tasks_created", 2),
        ("IAD images_created", 1),
    ]:
        assert after[counter] == before.get(counter, 0) + more, counter


def test_rerun_after_a_failure_mid_copy_copies_only_the_missing_segments(
    on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The third segment fails to verify; the re-run creates no second export or import
    task and copies only what is missing, even without the Prefect cache."""
    image_id = new_image(on_cloud)
    request = request_for(image_id, concurrency=1)
    real_copy = imagehop.transfer.engine.copy_segment

    def third_segment_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        if args[3].index == 2:
            raise IntegrityError("segment 2: the target stored another ETag (injected)")
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(imagehop.transfer.engine, "copy_segment", third_segment_fails)
    before = created(on_cloud)
    with pytest.raises(IntegrityError, match="injected"):
        transfer_image(request)
    staged = objects(on_cloud, "IAD", segments_container(DEFAULT_IMPORT_CONTAINER), image_id)
    assert len(staged) == 2  # segments 0 and 1; the others never started
    exported = objects(on_cloud, "DFW", DEFAULT_EXPORT_CONTAINER, image_id)
    assert len(exported) == SEGMENTS + 1  # kept for the re-run (manifest + segments)
    assert "kept for a re-run" in caplog.text
    assert f"swift delete {DEFAULT_EXPORT_CONTAINER} --prefix {image_id}.vhd" in caplog.text

    monkeypatch.setattr(imagehop.transfer.engine, "copy_segment", real_copy)
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):  # as if the cache were lost
        result = transfer_image(request)

    assert isinstance(result, TransferResult)
    assert result.segments_skipped == 2 and result.segments_copied == SEGMENTS - 2
    assert result.bytes_copied == result.bytes_total - 2 * 1024 * 1024
    assert "exported VHD" in result.reused
    after = created(on_cloud)
    assert after["DFW export_tasks_created"] == before.get("DFW export_tasks_created", 0) + 1
    assert after["IAD import_tasks_created"] == before.get("IAD import_tasks_created", 0) + 1
    admin = on_cloud.admin
    assert admin.image_content_md5(result.target_image_id) == admin.image_content_md5(image_id)


def test_rerunning_a_finished_transfer_creates_nothing(on_cloud: LocalCloud) -> None:
    """Same request again (from the cache, then as if the cache were lost): same image,
    no new task, image or object."""
    image_id = new_image(on_cloud)
    first = transfer_image(request_for(image_id, cleanup="keep"))
    assert isinstance(first, TransferResult)
    before = created(on_cloud)
    staged_before = objects(on_cloud, "IAD", DEFAULT_IMPORT_CONTAINER, image_id)

    again = transfer_image(request_for(image_id, cleanup="keep"))
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):
        once_more = transfer_image(request_for(image_id, cleanup="keep"))

    for result in (again, once_more):
        assert isinstance(result, TransferResult)
        assert result.target_image_id == first.target_image_id
        assert result.reused == ("transferred image",) and result.bytes_copied == 0
        assert result.properties.copied == first.properties.copied
    assert created(on_cloud) == before
    assert objects(on_cloud, "IAD", DEFAULT_IMPORT_CONTAINER, image_id) == staged_before
    assert first.remaining and "swift delete" in first.remaining[0]


def test_deleted_copy_is_transferred_again(on_cloud: LocalCloud) -> None:
    """If the new image was deleted, the same request transfers it again; cached steps that
    name deleted things (the export, the import) are not trusted, and finding them gone
    fails no task: the run page of a good re-run shows no failure, its log says why."""
    image_id = new_image(on_cloud)
    first = transfer_image(request_for(image_id))
    assert isinstance(first, TransferResult)
    assert [phase.name for phase in first.phases] == [
        "preflight", "tag source", "export", "copy", "import", "properties", "cleanup",
    ]  # fmt: skip
    response = on_cloud.session().images("IAD", "DELETE", f"/images/{first.target_image_id}")
    assert response.status_code == 204

    state = transfer_image(request_for(image_id), return_state=True)

    second = state.result()
    record = run_record(state.state_details.flow_run_id)
    states, messages = record.task_states(), record.messages()
    assert not [name for name, state_name in states if state_name in ("Failed", "Crashed")], states
    assert any("exporting again" in message for message in messages), messages
    assert any("importing again" in message for message in messages), messages
    assert not any("asking the cloud again" in message for message in messages)
    assert isinstance(second, TransferResult)
    assert second.target_image_id != first.target_image_id
    assert second.bytes_copied == second.bytes_total
    assert on_cloud.admin.image_content_md5(second.target_image_id) == (
        on_cloud.admin.image_content_md5(image_id)
    )


def test_a_failed_export_says_what_the_cloud_said_and_what_to_do(on_cloud: LocalCloud) -> None:
    image_id = new_image(on_cloud)
    on_cloud.admin.fail_next_task(
        "DFW", "export", "Image cannot be exported due to licence restrictions"
    )
    with pytest.raises(TaskFailedError) as failure:
        transfer_image(request_for(image_id))
    assert "licence restrictions" in str(failure.value)
    assert failure.value.advice and "Licence restrictions" in failure.value.advice


def test_dry_run_touches_nothing(on_cloud: LocalCloud) -> None:
    image_id = new_image(on_cloud)
    before = created(on_cloud)
    listed = {
        ("DFW", DEFAULT_EXPORT_CONTAINER): objects(on_cloud, "DFW", DEFAULT_EXPORT_CONTAINER),
        ("IAD", DEFAULT_IMPORT_CONTAINER): objects(on_cloud, "IAD", DEFAULT_IMPORT_CONTAINER),
    }
    properties = image(on_cloud, "DFW", image_id)

    plan = transfer_image(request_for(image_id, dry_run=True, boot=BootRequest()))

    assert isinstance(plan, DryRunPlan)
    assert plan.bytes == properties["size"] and plan.bytes_exact
    assert plan.segments == 4  # 2 MiB segments (the target's object cap) for 6 MiB + 4 KiB
    assert plan.estimated_seconds > 0 and plan.assumptions
    assert any("export" in step for step in plan.steps) and plan.boot_flavor
    assert created(on_cloud) == before
    for (region, container), names in listed.items():
        assert objects(on_cloud, region, container) == names
    assert image(on_cloud, "DFW", image_id) == properties  # not even tagged


def test_task_polls_are_at_least_30_s_apart(on_cloud: LocalCloud, clock: RecordingClock) -> None:
    """In clock time (the fast-forward clock the clients use); the local cloud recorded the
    polls it answered, in real time, which the clock converts. The client spaces the *sends*
    exactly 30 s apart; the server's receipt times add loopback latency, whose jitter on a
    busy machine is allowed for (JITTER)."""
    with on_cloud.admin.temporary_options(task_processing_seconds=0.6):
        result = transfer_image(request_for(new_image(on_cloud)))
    assert isinstance(result, TransferResult)
    for task_id in (result.export_task_id, result.import_task_id):
        assert task_id is not None
        polls = [clock.clock_time(t) for t in on_cloud.admin.task_polls(task_id)]
        assert len(polls) >= 3, polls
        gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
        assert min(gaps) >= 30.0 - JITTER, gaps


def test_persisted_results_hold_no_secret(on_cloud: LocalCloud) -> None:
    """Everything Prefect persisted (cached step results, flow results) is free of the API
    key and of tokens."""
    transfer_image(request_for(new_image(on_cloud)))
    secret = on_cloud.main.api_key
    storage = Path(str(PREFECT_RESULTS_LOCAL_STORAGE_PATH.value()))
    files = [path for path in storage.rglob("*") if path.is_file()]
    assert files
    for path in files:
        text = path.read_text(errors="replace")
        decoded = _decoded_result(text)
        for value in (secret, f"{TOKEN_PREFIX}."):  # the key; any token of the local cloud
            assert value not in text and value.encode() not in decoded, path


def _decoded_result(text: str) -> bytes:
    try:
        return base64.b64decode(json.loads(text)["result"])
    except (ValueError, KeyError, TypeError):
        return b""


def test_same_region_into_another_account(
    on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Source and target may share a region when the target is another account."""
    other = on_cloud.other
    monkeypatch.setenv("IMAGEHOP_TARGET_USERNAME", other.username)
    monkeypatch.setenv("IMAGEHOP_TARGET_API_KEY", other.api_key)
    cloud.reset()
    image_id = new_image(on_cloud, disk_bytes=1024 * 1024 + 9)

    result = transfer_image(
        TransferRequest(source_region="DFW", target_region="DFW", image_id=image_id)
    )

    assert isinstance(result, TransferResult)
    target = on_cloud.session(other).images("DFW", "GET", f"/images/{result.target_image_id}")
    assert target.json()["owner"] == other.tenant_id
    assert on_cloud.admin.image_content_md5(result.target_image_id) == (
        on_cloud.admin.image_content_md5(image_id)
    )


def _artifacts(key: str) -> list[Artifact]:
    """Every version of the artifact ``key``, oldest first."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return sorted(found, key=lambda artifact: str(artifact.created))


def test_rerun_after_a_stop_between_import_and_tagging_imports_nothing_new(
    on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import finished but its image was never tagged; without the Prefect cache the
    re-run still finds that import (and its untagged image) instead of importing again."""
    image_id = new_image(on_cloud, disk_bytes=2 * 1024 * 1024 + 1)
    real = imagehop.procedure.steps.copy_properties

    def stop(*args: object, **kwargs: object) -> None:
        raise ConflictError("injected stop before tagging")

    monkeypatch.setattr(imagehop.procedure.steps, "copy_properties", stop)
    before = created(on_cloud)
    with pytest.raises(ConflictError, match="injected"):
        transfer_image(request_for(image_id))
    monkeypatch.setattr(imagehop.procedure.steps, "copy_properties", real)

    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):
        result = transfer_image(request_for(image_id))

    assert isinstance(result, TransferResult)
    assert "imported image" in result.reused and result.bytes_copied == 0
    after = created(on_cloud)
    assert after["IAD import_tasks_created"] == before.get("IAD import_tasks_created", 0) + 1
    assert after["IAD images_created"] == before.get("IAD images_created", 0) + 1


def test_a_segment_failure_is_retried_by_the_engine_alone(
    on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target answers 503 to every PUT of the third segment: the engine tries it
    SEGMENT_RETRY.attempts times and the copy task does not start the copy over on top (one
    layer per failure kind); the segments before it stay for a re-run."""
    real_put = ObjectStore.put_stream
    puts: list[str] = []

    def third_segment_unavailable(self, container, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        puts.append(name)
        if len(set(puts)) == 3 and name == puts[-1]:
            raise ServerError(f"PUT {name} -> 503 Service Unavailable (injected)")
        return real_put(self, container, name, *args, **kwargs)

    monkeypatch.setattr(ObjectStore, "put_stream", third_segment_unavailable)
    with pytest.raises(ServerError, match="injected") as failed:
        transfer_image(request_for(new_image(on_cloud), concurrency=1))
    third = sorted(set(puts), key=puts.index)[2]
    assert puts.count(third) == SEGMENT_RETRY.attempts
    assert len(puts) == 2 + SEGMENT_RETRY.attempts  # no second pass over the segments
    assert failed.value.exhausted_by == "segment"


def test_a_transient_failure_is_retried_by_the_task_without_recopying(
    on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One stream: a failure of the fourth segment that no lower layer retried fails the
    copy task's try; its retry copies only the fourth and later segments (the first three
    are found verified in the target)."""
    real_copy = imagehop.transfer.engine.copy_segment
    copied: list[int] = []

    def drop_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        index = args[3].index
        copied.append(index)
        if index == 3 and copied.count(3) == 1:
            raise TransportError("PUT segment 3: connection reset (injected)")
        return real_copy(*args, **kwargs)

    monkeypatch.setattr(imagehop.transfer.engine, "copy_segment", drop_once)
    result = transfer_image(request_for(new_image(on_cloud), concurrency=1))

    assert isinstance(result, TransferResult)
    assert copied == [0, 1, 2, 3, 3, 4, 5, 6]
    assert result.segments_copied == SEGMENTS and result.bytes_copied == result.bytes_total
