"""The Images client: URL normalisation, records, property patching (the 409 rule, pointer
escaping, protected properties), pagination, tasks and their failure advice."""

from __future__ import annotations

import pickle

import pytest

from imagehop import errors
from imagehop.image import (
    IMPORT_CODE_ADVICE,
    JSON_PATCH_TYPE,
    Image,
    ImageClient,
    PropertyChanges,
    Task,
    check_container_name,
    check_export_container,
    failure_advice,
    json_pointer,
    normalize_images_url,
    patch_operation,
    task_failed_error,
)
from tests.support import scripted_bodies as bodies
from tests.support.scripted_clock import ScriptedClock
from tests.support.scripted_server import FixedTokens, ScriptedServer


@pytest.fixture
def images(server: ScriptedServer, clock: ScriptedClock) -> ImageClient:
    return ImageClient(f"{server.url}/v2", FixedTokens(), bodies.make_settings(), clock=clock)


# URLs, pointers, records -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://iad.images.api.rackspacecloud.com/v2", "https://iad.images.api.rackspacecloud.com/v2"),
        ("https://iad.images.api.rackspacecloud.com/v2/", "https://iad.images.api.rackspacecloud.com/v2"),
        ("https://iad.images.api.rackspacecloud.com", "https://iad.images.api.rackspacecloud.com/v2"),
        ("https://lon.images.api.rackspacecloud.com/v2/123456", "https://lon.images.api.rackspacecloud.com/v2/123456"),
        ("http://127.0.0.1:8080/dfw/images/", "http://127.0.0.1:8080/dfw/images/v2"),
    ],
)  # fmt: skip
def test_images_url_with_or_without_v2(given: str, base: str) -> None:
    assert normalize_images_url(given) == base


def test_the_catalog_url_does_not_become_v2_v2(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1"))
    client = ImageClient(f"{server.url}/v2/", FixedTokens(), bodies.make_settings(), clock=clock)
    assert client.get_image("i1").id == "i1"


@pytest.mark.parametrize(
    ("key", "pointer"),
    [
        ("com.mycompany.image-of", "/com.mycompany.image-of"),
        ("a/b", "/a~1b"),
        ("a~b", "/a~0b"),
        ("~/", "/~0~1"),
    ],
)
def test_json_pointer_escapes_tilde_then_slash(key: str, pointer: str) -> None:
    assert json_pointer(key) == pointer


def test_image_record_separates_properties_from_attributes() -> None:
    image = Image.from_api(bodies.image("i1", **{"com.x.tag": "v", "os_distro": "centos"}))
    assert image.properties == {"com.x.tag": "v", "os_distro": "centos"}
    assert image.min_disk == 20 and image.value_of("min_disk") == 20
    assert image.value_of("com.x.tag") == "v" and image.value_of("absent") is None
    assert pickle.loads(pickle.dumps(image)) == image


def test_add_for_a_new_key_replace_for_an_existing_one() -> None:
    image = Image.from_api(bodies.image("i1", **{"com.x.tag": "old"}))
    assert patch_operation(image, "com.x.tag", "new")["op"] == "replace"
    assert patch_operation(image, "com.x.other", "v")["op"] == "add"
    assert patch_operation(image, "name", "renamed")["op"] == "replace"
    assert patch_operation(image, "a/b", "v") == {"op": "add", "path": "/a~1b", "value": "v"}


@pytest.mark.parametrize("message", ["None", "", None, "  "])
def test_a_none_or_empty_task_message_means_no_message(message: str | None) -> None:
    task = Task.from_api({**bodies.task("t1", "pending"), "message": message})
    assert task.message is None


def test_task_record_exposes_results_and_pickles() -> None:
    export = Task.from_api(
        bodies.task("t1", "success", result={"export_location": "exports/i1.vhd"})
    )
    assert export.export_location == "exports/i1.vhd" and export.finished
    imported = Task.from_api(
        bodies.task("t2", "success", task_type="import", result={"image_id": "new"})
    )
    assert imported.image_id == "new"
    assert pickle.loads(pickle.dumps(imported)) == imported


@pytest.mark.parametrize("name", ["exported.images", "a/b", "what?", ""])
def test_export_container_names_the_task_would_reject(name: str) -> None:
    with pytest.raises(errors.InvalidContainerNameError):
        check_export_container(name)


def test_a_good_export_container_name_passes() -> None:
    check_export_container("img-copy-2014-12-19_18-25-23")


# properties ------------------------------------------------------------------------------


def patch_of(server: ScriptedServer, image_id: str = "i1") -> list[object]:
    return [r.json() for r in server.requests_to("PATCH", f"/v2/images/{image_id}")]


def test_set_properties_adds_new_and_replaces_existing_keys_in_one_patch(
    server: ScriptedServer, images: ImageClient
) -> None:
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", **{"k.old": "1"}))
    server.expect("PATCH", "/v2/images/i1", headers={"Content-Type": JSON_PATCH_TYPE}).reply(
        200, json=bodies.image("i1")
    )
    changes = images.set_properties("i1", {"k.old": "2", "k/new": "x"})
    assert patch_of(server) == [
        [
            {"op": "replace", "path": "/k.old", "value": "2"},
            {"op": "add", "path": "/k~1new", "value": "x"},
        ]
    ]
    assert changes == PropertyChanges(changed=("k.old", "k/new"))


def test_set_properties_leaves_matching_values_alone(
    server: ScriptedServer, images: ImageClient
) -> None:
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", **{"k": "v"}))
    changes = images.set_properties("i1", {"k": "v"})
    assert changes == PropertyChanges(unchanged=("k",))


def test_protected_properties_are_reported_not_fatal(
    server: ScriptedServer, images: ImageClient
) -> None:
    refusal = "Property com.rackspace__1__options is protected"
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1"))
    server.expect("PATCH", "/v2/images/i1").reply(403, body=refusal)
    server.expect("PATCH", "/v2/images/i1").reply(200, json=bodies.image("i1"))
    server.expect("PATCH", "/v2/images/i1").reply(403, body=refusal)
    changes = images.set_properties(
        "i1", {"com.mycompany.image-of": "db-3", "com.rackspace__1__options": "0"}
    )
    assert changes.changed == ("com.mycompany.image-of",)
    assert list(changes.refused) == ["com.rackspace__1__options"]
    assert refusal in changes.refused["com.rackspace__1__options"]
    assert [len(ops) for ops in patch_of(server)] == [2, 1, 1]  # type: ignore[arg-type]


def test_a_key_added_meanwhile_is_replaced_after_the_409(
    server: ScriptedServer, images: ImageClient
) -> None:
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1"))
    server.expect("PATCH", "/v2/images/i1").reply(409, body="Property k already present")
    server.expect("PATCH", "/v2/images/i1").reply(409, body="Property k already present")
    server.expect("PATCH", "/v2/images/i1").reply(200, json=bodies.image("i1"))
    changes = images.set_properties("i1", {"k": "v"})
    assert changes.changed == ("k",)
    ops = patch_of(server)
    assert [op[0]["op"] for op in ops] == ["add", "add", "replace"]  # type: ignore[index]


def test_remove_properties_skips_absent_keys(server: ScriptedServer, images: ImageClient) -> None:
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", **{"a~b": "1"}))
    server.expect("PATCH", "/v2/images/i1").reply(200, json=bodies.image("i1"))
    changes = images.remove_properties("i1", ["a~b", "gone"])
    assert patch_of(server) == [[{"op": "remove", "path": "/a~0b"}]]
    assert changes == PropertyChanges(changed=("a~b",), unchanged=("gone",))


def test_an_add_patch_is_not_replayed_after_a_5xx(
    server: ScriptedServer, images: ImageClient
) -> None:
    """The first PATCH may have landed; the step above re-reads and chooses again."""
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1"))
    server.expect("PATCH", "/v2/images/i1").reply(503)
    with pytest.raises(errors.ServerError):
        images.set_properties("i1", {"k": "v"})


# listing ---------------------------------------------------------------------------------


def test_list_images_follows_next_links_and_keeps_filters(
    server: ScriptedServer, images: ImageClient
) -> None:
    wanted = {"com.x.of": "db-3"}
    page1 = {"images": [bodies.image("a"), bodies.image("b")], "next": "/v2/images?marker=b"}
    page2 = {"images": [bodies.image("c")], "next": "/v2/images?marker=c&limit=100"}
    server.expect("GET", "/v2/images", query={"limit": "100", **wanted}).reply(200, json=page1)
    server.expect("GET", "/v2/images", query={"marker": "b", **wanted}).reply(200, json=page2)
    server.expect("GET", "/v2/images", query={"marker": "c", **wanted}).reply(
        200, json={"images": []}
    )
    assert [i.id for i in images.list_images(wanted)] == ["a", "b", "c"]


def test_a_next_link_without_marker_continues_after_the_last_item(
    server: ScriptedServer, images: ImageClient
) -> None:
    page1 = {"images": [bodies.image("a")], "next": "/v2/images"}
    server.expect("GET", "/v2/images").reply(200, json=page1)
    server.expect("GET", "/v2/images", query={"marker": "a"}).reply(200, json={"images": []})
    assert [i.id for i in images.list_images()] == ["a"]


def test_a_repeated_marker_is_an_error_not_an_endless_loop(
    server: ScriptedServer, images: ImageClient
) -> None:
    page = {"images": [bodies.image("a")], "next": "/v2/images?marker=a"}
    server.expect("GET", "/v2/images").reply(200, json=page)
    server.expect("GET", "/v2/images").reply(200, json=page)
    with pytest.raises(errors.ApiError, match="repeated"):
        images.list_images()


def test_find_by_property_drops_images_a_lax_filter_let_through(
    server: ScriptedServer, images: ImageClient
) -> None:
    page = {
        "images": [
            bodies.image("match", **{"com.x.of": "db-3"}),
            bodies.image("other", **{"com.x.of": "db-4"}),
            bodies.image("untagged"),
        ]
    }
    server.expect("GET", "/v2/images", query={"com.x.of": "db-3"}).reply(200, json=page)
    assert [i.id for i in images.find_images_by_property("com.x.of", "db-3")] == ["match"]


# tasks -----------------------------------------------------------------------------------


def test_create_export_task_sends_the_documented_body(
    server: ScriptedServer, images: ImageClient
) -> None:
    body = {
        "type": "export",
        "input": {"image_uuid": "i1", "receiving_swift_container": "exported-images"},
    }
    server.expect("POST", "/v2/tasks", json=body).reply(201, json=bodies.task("t1", "pending"))
    task = images.create_export_task("i1", "exported-images")
    assert (task.id, task.status, task.message) == ("t1", "pending", None)


def test_create_import_task_sends_vhd_format_and_only_the_name(
    server: ScriptedServer, images: ImageClient
) -> None:
    body = {
        "type": "import",
        "input": {
            "import_from": "imports/i1.vhd",
            "import_from_format": "vhd",
            "image_properties": {"name": "db-3 copy"},
        },
    }
    server.expect("POST", "/v2/tasks", json=body).reply(
        201, json=bodies.task("t2", "pending", task_type="import")
    )
    assert images.create_import_task("imports/i1.vhd", "db-3 copy").type == "import"


def test_a_task_post_is_not_replayed_after_a_dropped_connection(
    server: ScriptedServer, images: ImageClient
) -> None:
    server.expect("POST", "/v2/tasks").drop()
    with pytest.raises(errors.TransportError):
        images.create_export_task("i1", "exports")


def test_list_tasks_follows_pagination(server: ScriptedServer, images: ImageClient) -> None:
    page = {"tasks": [bodies.task("t1", "success")], "next": "/v2/tasks?marker=t1"}
    server.expect("GET", "/v2/tasks").reply(200, json=page)
    server.expect("GET", "/v2/tasks", query={"marker": "t1"}).reply(200, json={"tasks": []})
    assert [t.id for t in images.list_tasks()] == ["t1"]


def poll_gaps(server: ScriptedServer, task_id: str = "t1") -> list[float]:
    return server.gaps("GET", f"/v2/tasks/{task_id}")


def test_wait_for_task_never_polls_faster_than_30_s(
    server: ScriptedServer, images: ImageClient
) -> None:
    """Including after a Retry-After: 1 answer, a 503 and a dropped connection."""
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "pending"))
    server.expect("GET", "/v2/tasks/t1").reply(429, headers={"Retry-After": "1"})
    server.expect("GET", "/v2/tasks/t1").reply(503)
    server.expect("GET", "/v2/tasks/t1").drop()
    server.expect("GET", "/v2/tasks/t1").reply(413, headers={"Retry-After": "1"})
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "processing"))
    done = bodies.task("t1", "success", result={"export_location": "exports/i1.vhd"})
    server.expect("GET", "/v2/tasks/t1").reply(200, json=done)
    task = images.wait_for_task("t1", deadline_seconds=3600)
    assert task.export_location == "exports/i1.vhd"
    gaps = poll_gaps(server)
    assert len(gaps) == 6 and min(gaps) >= 30.0


def test_polls_from_an_earlier_call_count_towards_the_spacing(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    """A retried step that waits again does not poll the task again at once."""
    first = ImageClient(f"{server.url}/v2", FixedTokens(), bodies.make_settings(), clock=clock)
    again = ImageClient(f"{server.url}/v2", FixedTokens(), bodies.make_settings(), clock=clock)
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "processing"))
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "processing"))
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "success"))
    first.get_task("t1")
    clock.advance(5)
    with pytest.raises(errors.WaitTimeoutError):
        first.wait_for_task("t1", deadline_seconds=10)
    again.wait_for_task("t1", deadline_seconds=3600)
    assert poll_gaps(server) == [30.0, 30.0]


def test_a_lower_interval_argument_cannot_beat_the_floor(
    server: ScriptedServer, images: ImageClient
) -> None:
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "processing"))
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "success"))
    images.wait_for_task("t1", deadline_seconds=3600, interval=1)
    assert poll_gaps(server) == [30.0]


def test_the_floor_holds_even_if_settings_were_built_without_validation(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    settings = bodies.make_settings().model_copy(update={"poll_interval_seconds": 2.0})
    client = ImageClient(f"{server.url}/v2", FixedTokens(), settings, clock=clock)
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "processing"))
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "success"))
    client.wait_for_task("t1", deadline_seconds=3600)
    assert poll_gaps(server) == [30.0]


def test_a_longer_configured_interval_and_retry_after_are_honoured(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    settings = bodies.make_settings(poll_interval_seconds=60)
    client = ImageClient(f"{server.url}/v2", FixedTokens(), settings, clock=clock)
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "processing"))
    server.expect("GET", "/v2/tasks/t1").reply(429, headers={"Retry-After": "200"})
    server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "success"))
    seen: list[str] = []
    client.wait_for_task("t1", deadline_seconds=3600, on_poll=lambda t: seen.append(t.status))
    assert poll_gaps(server) == [60.0, 200.0]
    assert seen == ["processing", "success"]


def test_a_failed_import_raises_with_the_clouds_message_and_advice(
    server: ScriptedServer, images: ImageClient
) -> None:
    message = "Image cannot be imported. Error code: '396'"
    failed = bodies.task("t2", "failure", task_type="import", message=message)
    server.expect("GET", "/v2/tasks/t2").reply(200, json=bodies.task("t2", "processing"))
    server.expect("GET", "/v2/tasks/t2").reply(200, json=failed)
    with pytest.raises(errors.TaskFailedError) as caught:
        images.wait_for_task("t2", deadline_seconds=3600)
    error = caught.value
    assert error.cloud_message == message and error.task_id == "t2"
    assert error.advice == IMPORT_CODE_ADVICE["396"]
    assert message in str(error) and "not a valid VHD" in str(error)


def test_the_task_deadline_names_the_last_status(
    server: ScriptedServer, images: ImageClient
) -> None:
    for _ in range(3):
        server.expect("GET", "/v2/tasks/t1").reply(200, json=bodies.task("t1", "processing"))
    with pytest.raises(errors.WaitTimeoutError) as caught:
        images.wait_for_task("t1", deadline_seconds=75)
    assert caught.value.last_status == "processing" and caught.value.wanted == "success"


def test_an_expired_task_is_not_found(server: ScriptedServer, images: ImageClient) -> None:
    server.expect("GET", "/v2/tasks/t1").reply(404, body="Task t1 not found")
    with pytest.raises(errors.NotFoundError):
        images.wait_for_task("t1", deadline_seconds=3600)


def test_wait_for_image_active_uses_the_status_interval(
    server: ScriptedServer, images: ImageClient
) -> None:
    for status in ("queued", "saving", "active"):
        server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", status))
    assert images.wait_for_image_active("i1").status == "active"
    assert server.gaps("GET", "/v2/images/i1") == [10.0, 10.0]


@pytest.mark.parametrize("status", ["killed", "deleted", "deactivated"])
def test_an_image_that_dies_stops_the_wait(
    server: ScriptedServer, images: ImageClient, status: str
) -> None:
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", "saving"))
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", status))
    with pytest.raises(errors.ResourceFailedError) as caught:
        images.wait_for_image_active("i1")
    assert caught.value.status == status


# advice ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(IMPORT_CODE_ADVICE))
def test_every_documented_import_code_has_its_own_advice(code: str) -> None:
    message = f"Image cannot be imported. Error code: '{code}'"
    assert failure_advice("import", message) == IMPORT_CODE_ADVICE[code]
    assert failure_advice("import", f"error code {code}") == IMPORT_CODE_ADVICE[code]


@pytest.mark.parametrize(
    ("task_type", "message", "phrase"),
    [
        ("import", "Error: Image not found for import. Possible invalid location", "import_from"),
        ("export", "Requested image for export was not found: 9af8acc8", "image id"),
        ("export", "Only the image owner can export the image", "owner"),
        ("export", "This image cannot be exported due to licensing restrictions", "Licence"),
        ("export", "Container 'exports' not found", "create it"),
        ("export", "Invalid container name 'a.b'", "create it"),
        (
            "export",
            "Swift already has an object with id '9af8.vhd' in container 'exports'",
            "reuse that object",
        ),
        ("export", None, "exportable"),
        ("import", "something nobody documented", "160 GB"),
    ],
)
def test_advice_for_documented_failures(task_type: str, message: str | None, phrase: str) -> None:
    assert phrase in failure_advice(task_type, message)


def test_a_failed_task_without_message_says_so() -> None:
    error = task_failed_error(Task.from_api(bodies.task("t1", "failure", message="None")))
    assert "no message from the cloud" in str(error)
    assert pickle.loads(pickle.dumps(error)).advice == error.advice


def test_an_import_container_is_named_as_such() -> None:
    with pytest.raises(errors.InvalidContainerNameError) as caught:
        check_container_name("staged.images", "import")
    message = str(caught.value)
    assert message.startswith("import container name 'staged.images' contains '.'")
    assert "the import task needs" in message and "export" not in message


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        ("Image cannot be imported. Error code: '609'. The physical size of the VHD (2000000 "
         "bytes) exceeds the import limit (1048576 bytes).", "1.049 MB"),
        ("Error code: '413'. The virtual size exceeds the import limit of 40 GB.", "40 GB"),
        ("Error code: '609'. Too large.", "160 GB"),
    ],
)  # fmt: skip
def test_size_advice_quotes_the_limit_the_cloud_gave(message: str, limit: str) -> None:
    advice = failure_advice("import", message)
    assert f"over the import limit ({limit})" in advice
    assert limit == "160 GB" or "160 GB" not in advice
