"""The Servers client: imaging a server, flavors, booting and waiting for ACTIVE."""

from __future__ import annotations

import pickle

import pytest

from imagehop import errors
from imagehop.compute import ComputeClient, Flavor, Server, id_from_location, pick_flavor
from tests.support import scripted_bodies as bodies
from tests.support.scripted_clock import ScriptedClock
from tests.support.scripted_server import FixedTokens, ScriptedServer

T = bodies.TENANT


@pytest.fixture
def compute(server: ScriptedServer, clock: ScriptedClock) -> ComputeClient:
    url = f"{server.url}/v2/{T}/"
    return ComputeClient(url, FixedTokens(), bodies.make_settings(), clock=clock)


def test_create_server_image_returns_the_id_from_location(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    body = {"createImage": {"name": "db-3 snap", "metadata": {"com.x.of": "db-3"}}}
    server.expect("POST", f"/v2/{T}/servers/s1/action", json=body).reply(
        202, headers={"Location": f"https://iad.servers.example/v2/{T}/images/new-image-id"}
    )
    assert compute.create_server_image("s1", "db-3 snap", {"com.x.of": "db-3"}) == "new-image-id"


def test_a_server_already_being_imaged_gets_advice(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    server.expect("POST", f"/v2/{T}/servers/s1/action").reply(
        409,
        json={"conflictingRequest": {"message": "Cannot 'createImage' while instance is in "
                                     "task_state image_snapshot", "code": 409}},
        headers={"X-Compute-Request-Id": "req-c1"},
    )  # fmt: skip
    with pytest.raises(errors.ConflictError) as caught:
        compute.create_server_image("s1", "snap")
    text = str(caught.value)
    assert "already being imaged" in text and "image_snapshot" in text
    assert caught.value.request_id == "req-c1" and caught.value.status == 409


def test_create_image_is_not_replayed_after_a_5xx(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    server.expect("POST", f"/v2/{T}/servers/s1/action").reply(500)
    with pytest.raises(errors.ServerError):
        compute.create_server_image("s1", "snap")


def test_a_202_without_location_is_an_api_error(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    server.expect("POST", f"/v2/{T}/servers/s1/action").reply(202)
    with pytest.raises(errors.ApiError, match="Location"):
        compute.create_server_image("s1", "snap")


@pytest.mark.parametrize(
    ("location", "image_id"),
    [
        ("https://x/v2/1/images/abc", "abc"),
        ("https://x/v2/1/images/abc/", "abc"),
        ("/v2/images/abc", "abc"),
    ],
)
def test_id_from_location(location: str, image_id: str) -> None:
    assert id_from_location(location) == image_id


def test_get_server_reads_status_task_state_and_fault(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    body = bodies.server("s1", "ACTIVE", **{"OS-EXT-STS:task_state": "image_snapshot"})
    server.expect("GET", f"/v2/{T}/servers/s1").reply(200, json=body)
    record = compute.get_server("s1")
    assert (record.status, record.task_state, record.image_id) == (
        "ACTIVE",
        "image_snapshot",
        "img-1",
    )
    assert pickle.loads(pickle.dumps(record)) == record


def test_list_flavors_and_pick_the_smallest_that_fits(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    flavors = [
        {"id": "general1-8", "name": "8 GB", "ram": 8192, "disk": 160, "vcpus": 8},
        {"id": "general1-1", "name": "1 GB", "ram": 1024, "disk": 20, "vcpus": 1},
        {"id": "general1-2", "name": "2 GB", "ram": 2048, "disk": 40, "vcpus": 2},
    ]
    server.expect("GET", f"/v2/{T}/flavors/detail").reply(200, json={"flavors": flavors})
    listed = compute.list_flavors()
    assert pick_flavor(listed, min_disk=30).id == "general1-2"
    assert pick_flavor(listed, min_disk=20, min_ram=4096).id == "general1-8"


def test_no_flavor_big_enough_is_a_preflight_error() -> None:
    with pytest.raises(errors.PreflightError, match="160 GB"):
        pick_flavor([Flavor("f", "f", 1024, 160, 1)], min_disk=320)


def test_boot_server_sends_image_and_flavor_and_drops_the_admin_password(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    body = {"server": {"name": "db-3", "imageRef": "img-9", "flavorRef": "general1-2"}}
    server.expect("POST", f"/v2/{T}/servers", json=body).reply(
        202,
        json={"server": {"id": "s-new", "adminPass": "hunter2-secret", "links": []}},
        headers={"Location": f"https://x/v2/{T}/servers/s-new"},
    )
    assert compute.boot_server("db-3", "img-9", "general1-2") == "s-new"


def test_a_bad_flavor_is_a_bad_request(server: ScriptedServer, compute: ComputeClient) -> None:
    server.expect("POST", f"/v2/{T}/servers").reply(
        400, json={"badRequest": {"message": "Flavor's disk is too small for requested image."}}
    )
    with pytest.raises(errors.BadRequestError, match="disk is too small"):
        compute.boot_server("db-3", "img-9", "general1-1")


def test_wait_for_server_active_polls_at_the_status_interval(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    server.expect("GET", f"/v2/{T}/servers/s1").reply(200, json=bodies.server("s1", "BUILD"))
    server.expect("GET", f"/v2/{T}/servers/s1").reply(503)
    server.expect("GET", f"/v2/{T}/servers/s1").reply(200, json=bodies.server("s1", "ACTIVE"))
    assert compute.wait_for_server_active("s1").status == "ACTIVE"
    assert server.gaps("GET", f"/v2/{T}/servers/s1") == [10.0, 10.0]


def test_a_server_in_error_stops_the_wait_with_its_fault(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    failed = bodies.server("s1", "ERROR", fault={"message": "No valid host was found."})
    server.expect("GET", f"/v2/{T}/servers/s1").reply(200, json=bodies.server("s1", "BUILD"))
    server.expect("GET", f"/v2/{T}/servers/s1").reply(200, json=failed)
    with pytest.raises(errors.ResourceFailedError, match="No valid host") as caught:
        compute.wait_for_server_active("s1")
    assert caught.value.status == "ERROR"


def test_the_boot_deadline_comes_from_settings(
    server: ScriptedServer, clock: ScriptedClock
) -> None:
    settings = bodies.make_settings(boot_deadline_seconds=25, status_poll_interval_seconds=10)
    client = ComputeClient(f"{server.url}/v2/{T}", FixedTokens(), settings, clock=clock)
    for _ in range(3):
        server.expect("GET", f"/v2/{T}/servers/s1").reply(200, json=bodies.server("s1", "BUILD"))
    with pytest.raises(errors.WaitTimeoutError) as caught:
        client.wait_for_server_active("s1")
    assert caught.value.last_status == "BUILD" and caught.value.resource == "server s1"


def test_server_record_ignores_a_missing_image_reference() -> None:
    record = Server.from_api({"id": "s1", "status": "ACTIVE", "image": ""})
    assert record.image_id is None


def test_an_answer_that_is_not_json_is_an_api_error(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    server.expect("GET", f"/v2/{T}/servers/s1").reply(
        200, body="<html>captive portal</html>", headers={"X-Compute-Request-Id": "req-h"}
    )
    with pytest.raises(errors.ApiError, match="is not JSON") as caught:
        compute.get_server("s1")
    assert caught.value.request_id == "req-h"


def test_an_answer_without_the_expected_key_is_an_api_error(
    server: ScriptedServer, compute: ComputeClient
) -> None:
    server.expect("GET", f"/v2/{T}/flavors/detail").reply(200, json={"items": []})
    with pytest.raises(errors.ApiError, match="has no 'flavors'"):
        compute.list_flavors()
