"""The upstream-Glance client: import methods (or none, as on Cloud Images), image create,
import and the wait for its outcome (the cloud's reason on failure), ranged reads checked
against the planned range and checksum, uploads as one stream, and the image hash check."""

from __future__ import annotations

import hashlib
import io
import time

import pytest

from imagehop import errors
from imagehop.glance import GlanceImages, check_same_image
from imagehop.image import Image
from tests.support import scripted_bodies as bodies
from tests.support.scripted_clock import ScriptedClock
from tests.support.scripted_server import FixedTokens, ScriptedServer
from tests.unit.test_http import RecordingTokens

DATA = bytes(range(256)) * 16
MD5 = hashlib.md5(DATA).hexdigest()


@pytest.fixture
def glance(server: ScriptedServer, clock: ScriptedClock) -> GlanceImages:
    return GlanceImages(f"{server.url}/v2", FixedTokens(), bodies.make_settings(), clock=clock)


def import_info(*methods: str) -> dict[str, object]:
    return {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": list(methods),
        }
    }


# discovery --------------------------------------------------------------------------------


def test_import_methods_are_what_the_region_advertises(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("GET", "/v2/info/import").reply(
        200, json=import_info("glance-direct", "web-download")
    )
    assert glance.import_methods() == frozenset({"glance-direct", "web-download"})


def test_a_region_without_info_import_has_no_import_methods(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("GET", "/v2/info/import").reply(404, json={"message": "Not Found"})
    assert glance.import_methods() is None


def test_an_odd_info_import_answer_is_an_error_not_an_empty_set(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("GET", "/v2/info/import").reply(200, json={"import-methods": {"value": "x"}})
    with pytest.raises(errors.ApiError, match="import-methods"):
        glance.import_methods()


# create and import ------------------------------------------------------------------------


def test_create_image_posts_the_record_once(server: ScriptedServer, glance: GlanceImages) -> None:
    want = {
        "name": "copy",
        "disk_format": "qcow2",
        "container_format": "bare",
        "min_disk": 20,
        "os_distro": "debian",
    }
    server.expect("POST", "/v2/images", json=want).reply(
        201, json=bodies.image("new", status="queued", disk_format="qcow2")
    )
    image = glance.create_image(
        "copy", disk_format="qcow2", min_disk=20, properties={"os_distro": "debian"}
    )
    assert (image.id, image.status, image.disk_format) == ("new", "queued", "qcow2")


def test_create_image_is_not_replayed_after_a_5xx(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("POST", "/v2/images").reply(503, json={"message": "busy"})
    with pytest.raises(errors.ServerError):
        glance.create_image("copy", disk_format="raw")
    assert len(server.requests_to("POST", "/v2/images")) == 1


def test_create_image_refuses_properties_that_repeat_attributes(glance: GlanceImages) -> None:
    with pytest.raises(ValueError, match="disk_format"):
        glance.create_image("copy", disk_format="raw", properties={"disk_format": "qcow2"})


def test_import_image_keeps_a_temp_url_out_of_error_messages(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    secret = "https://swift/v1/AUTH_a/c/o?temp_url_sig=abcdef&temp_url_expires=9"
    method = {"name": "web-download", "uri": secret}
    server.expect("POST", "/v2/images/i1/import", json={"method": method}).reply(
        400, json={"message": f"URI {secret} is not allowed"}
    )
    with pytest.raises(errors.BadRequestError) as caught:
        glance.import_image("i1", method)
    assert "temp_url_sig" not in str(caught.value)
    assert "<redacted>" in str(caught.value)


def test_wait_for_import_returns_the_active_image(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    importing = {"os_glance_importing_to_stores": "swift"}
    server.expect("GET", "/v2/images/i1").reply(
        200, json=bodies.image("i1", status="importing", **importing)
    )
    server.expect("GET", "/v2/images/i1").reply(
        200, json=bodies.image("i1", status="active", os_hash_value="ab", os_hash_algo="sha512")
    )
    image = glance.wait_for_import("i1", deadline=600)
    assert image.status == "active"


def test_a_failed_import_raises_with_the_clouds_reason(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("GET", "/v2/images/i1").reply(
        200,
        json=bodies.image(
            "i1", status="queued", os_glance_failed_import="swift", os_glance_importing_to_stores=""
        ),
    )
    task = {
        "id": "t9",
        "type": "api_image_import",
        "status": "failure",
        "message": "URI is not reachable: 404",
        "created_at": "2026-12-01T10:00:00Z",
    }
    older = {**task, "id": "t1", "status": "success", "created_at": "2026-11-01T10:00:00Z"}
    server.expect("GET", "/v2/images/i1/tasks").reply(200, json={"tasks": [task, older]})
    with pytest.raises(errors.TaskFailedError, match="URI is not reachable") as caught:
        glance.wait_for_import("i1", deadline=600)
    assert caught.value.task_id == "t9" and "swift" in str(caught.value)


def test_an_image_back_in_queued_with_a_failed_task_failed_even_without_store_names(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    # single-store Glance lists no store in os_glance_failed_import
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", status="queued"))
    failed = {
        "id": "t2",
        "type": "api_image_import",
        "status": "failure",
        "message": "Image size mismatch",
        "created_at": "2026-12-01T10:00:00Z",
    }
    server.expect("GET", "/v2/images/i1/tasks").reply(200, json={"tasks": [failed]})
    with pytest.raises(errors.TaskFailedError, match="Image size mismatch"):
        glance.wait_for_import("i1", deadline=600)


def test_a_new_import_after_a_failed_one_is_waited_for_not_reported_as_failed(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    # the new import holds the lock; the earlier failure's store list is not cleared yet
    stale = {"os_glance_failed_import": "swift", "os_glance_import_task": "t2"}
    server.expect("GET", "/v2/images/i1").reply(
        200, json=bodies.image("i1", status="queued", **stale)
    )
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", status="active"))
    assert glance.wait_for_import("i1", deadline=600).status == "active"


def test_without_the_tasks_call_failed_stores_are_the_failure(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    failed = {"os_glance_failed_import": "swift", "os_glance_importing_to_stores": ""}
    server.expect("GET", "/v2/images/i1").reply(
        200, json=bodies.image("i1", status="queued", **failed)
    )
    server.expect("GET", "/v2/images/i1/tasks").reply(404, json={"message": "Not Found"})
    with pytest.raises(errors.TaskFailedError, match="no message from the cloud"):
        glance.wait_for_import("i1", deadline=600)


def test_a_queued_image_whose_task_has_not_started_is_waited_for(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", status="queued"))
    pending = {"id": "t3", "type": "api_image_import", "status": "pending"}
    server.expect("GET", "/v2/images/i1/tasks").reply(200, json={"tasks": [pending]})
    server.expect("GET", "/v2/images/i1").reply(200, json=bodies.image("i1", status="active"))
    assert glance.wait_for_import("i1", deadline=600).status == "active"


# image data -------------------------------------------------------------------------------


def test_open_range_reads_exactly_the_range(server: ScriptedServer, glance: GlanceImages) -> None:
    server.expect("GET", "/v2/images/i1/file", headers={"Range": "bytes=100-199"}).reply(
        206,
        body=DATA[100:200],
        headers={"Content-Range": f"bytes 100-199/{len(DATA)}", "Content-MD5": MD5},
    )
    reader = glance.open_range("i1", 100, 100, expect_checksum=MD5)
    got = b""
    while chunk := reader.read(37):
        got += chunk
    reader.close()
    assert got == DATA[100:200]


def test_open_range_refuses_another_range(server: ScriptedServer, glance: GlanceImages) -> None:
    server.expect("GET", "/v2/images/i1/file").reply(
        206, body=DATA[0:100], headers={"Content-Range": f"bytes 0-99/{len(DATA)}"}
    )
    with pytest.raises(errors.IntegrityError, match="answered the range"):
        glance.open_range("i1", 100, 100)


def test_open_range_refuses_an_ignored_range(server: ScriptedServer, glance: GlanceImages) -> None:
    server.expect("GET", "/v2/images/i1/file").reply(200, body=DATA[:100])
    with pytest.raises(errors.IntegrityError, match="ignored the range"):
        glance.open_range("i1", 100, 100)


def test_open_range_notices_a_changed_image(server: ScriptedServer, glance: GlanceImages) -> None:
    server.expect("GET", "/v2/images/i1/file").reply(
        206,
        body=DATA[100:200],
        headers={"Content-Range": f"bytes 100-199/{len(DATA)}", "Content-MD5": "0" * 32},
    )
    with pytest.raises(errors.IntegrityError, match="changed since it was planned"):
        glance.open_range("i1", 100, 100, expect_checksum=MD5)


def test_open_range_maps_errors_through_the_error_map(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("GET", "/v2/images/i1/file").reply(503, json={"message": "down"})
    with pytest.raises(errors.ServerError, match="/v2/images/i1/file -> 503"):
        glance.open_range("i1", 0, 10)
    assert len(server.requests_to("GET", "/v2/images/i1/file")) == 1  # the segment layer retries


def test_a_refused_token_is_renewed_once_before_the_range_is_read(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    tokens = RecordingTokens()
    glance = GlanceImages(f"{server.url}/v2", tokens, bodies.make_settings(), clock=clock)
    server.expect("GET", "/v2/images/i1/file", headers={"X-Auth-Token": "token-1"}).reply(
        401, json={"message": "expired"}
    )
    server.expect("GET", "/v2/images/i1/file", headers={"X-Auth-Token": "token-2"}).reply(
        206, body=DATA[:10], headers={"Content-Range": f"bytes 0-9/{len(DATA)}"}
    )
    assert glance.open_range("i1", 0, 10).read() == DATA[:10]
    assert tokens.invalidated == ["token-1"]


def test_an_image_without_data_is_not_read_as_empty(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("GET", "/v2/images/i1/file").reply(204)
    with pytest.raises(errors.IntegrityError, match="no data"):
        glance.open_range("i1", 0, 10)


def test_a_clone_is_another_session_on_the_same_region(glance: GlanceImages) -> None:
    twin = glance.clone()
    assert twin is not glance and twin.base_url == glance.base_url
    assert twin._http is not glance._http and twin._http.retry == glance._http.retry


def test_upload_sends_one_stream_with_its_size(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect(
        "PUT",
        "/v2/images/i1/file",
        headers={
            "Content-Type": "application/octet-stream",
            "x-openstack-image-size": str(len(DATA)),
        },
    ).reply(204)
    server.expect("PUT", "/v2/images/i1/stage").reply(204)
    glance.upload("i1", iter([DATA[:1000], DATA[1000:]]), len(DATA))
    glance.stage("i1", io.BytesIO(DATA), len(DATA))
    for what in ("file", "stage"):
        (put,) = server.requests_to("PUT", f"/v2/images/i1/{what}")
        assert put.body == DATA
        assert put.headers["content-length"] == str(len(DATA))
        assert "transfer-encoding" not in put.headers  # never chunked


def test_a_short_upload_stream_fails_naming_what_is_missing(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("PUT", "/v2/images/i1/file").drop()  # the client gives up mid-body
    with pytest.raises(errors.IntegrityError, match="ended after 100 of 4096 bytes"):
        glance.upload("i1", io.BytesIO(DATA[:100]), len(DATA))
    deadline = time.monotonic() + 5
    while not server.requests_to("PUT", "/v2/images/i1/file") and time.monotonic() < deadline:
        time.sleep(0.01)  # the server sees the cut-off request after the client gave up
    (cut,) = server.requests_to("PUT", "/v2/images/i1/file")
    assert len(cut.body) < len(DATA)


# hashes ------------------------------------------------------------------------------------


def _image(image_id: str, **values: object) -> Image:
    return Image.from_api(bodies.image(image_id, **values))


def test_same_hashes_pass() -> None:
    values = {"checksum": MD5, "os_hash_algo": "sha512", "os_hash_value": "f" * 128}
    check_same_image(_image("src", **values), _image("dst", **values))


def test_a_different_os_hash_value_is_an_integrity_error() -> None:
    src = _image("src", checksum=MD5, os_hash_algo="sha512", os_hash_value="a" * 128)
    dst = _image("dst", checksum=MD5, os_hash_algo="sha512", os_hash_value="b" * 128)
    with pytest.raises(errors.IntegrityError, match="os_hash_value"):
        check_same_image(src, dst)


def test_a_different_checksum_is_an_integrity_error() -> None:
    with pytest.raises(errors.IntegrityError, match="checksum"):
        check_same_image(_image("src", checksum=MD5), _image("dst", checksum="0" * 32))


def test_images_without_comparable_hashes_are_not_called_equal() -> None:
    with pytest.raises(errors.IntegrityError, match="no hash to compare"):
        check_same_image(_image("src"), _image("dst"))


def test_discard_deactivates_what_it_may_not_delete(
    server: ScriptedServer, glance: GlanceImages
) -> None:
    server.expect("DELETE", "/v2/images/i1").reply(403, json={"message": "protected"})
    server.expect("POST", "/v2/images/i1/actions/deactivate").reply(204)
    assert glance.discard_image("i1") is False
