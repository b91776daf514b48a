"""Every JSON answer of the local Images API validates against the schema the API itself
serves (``/v2/schemas/image``, ``images``, ``task``, ``tasks``), as a client that checks its
answers does: the documented procedure's image and task calls, tasks at every status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft4Validator

from imagehop_sandbox.handle import CloudSession, LocalCloud

pytestmark = pytest.mark.cloud

SCHEMA_NAMES = ("image", "images", "task", "tasks")
EXPORTABLE = {"com.rackspace__1__options": "0"}
TOO_LONG = "x" * 256


class CheckedImages:
    """Images API calls of one session; each JSON answer must match its served schema."""

    def __init__(self, session: CloudSession, validators: dict[str, Draft4Validator]) -> None:
        self.session = session
        self.validators = validators

    def call(
        self, schema: str, method: str, path: str, status: int = 200, **kwargs: Any
    ) -> dict[str, Any]:
        response = self.session.images("DFW", method, path, **kwargs)
        assert response.status_code == status, response.text
        doc: dict[str, Any] = response.json()
        errors = [
            f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in self.validators[schema].iter_errors(doc)
        ]
        assert not errors, f"{method} {path} does not match /v2/schemas/{schema}: {errors}"
        return doc

    def patch(self, image_id: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        headers = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        return self.call("image", "PATCH", f"/images/{image_id}", json=operations, headers=headers)

    def start_task(self, kind: str, task_input: dict[str, Any]) -> dict[str, Any]:
        body = {"type": kind, "input": task_input}
        return self.call("task", "POST", "/tasks", status=201, json=body)

    def task_answers(self, task_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every answer of quick polls from now until the task ends."""
        deadline = time.monotonic() + timeout
        answers = [self.call("task", "GET", f"/tasks/{task_id}")]
        while answers[-1]["status"] not in ("success", "failure"):
            assert time.monotonic() < deadline, f"task {task_id} did not end"
            time.sleep(0.02)
            answers.append(self.call("task", "GET", f"/tasks/{task_id}"))
        return answers


@pytest.fixture(scope="module")
def validators(local_cloud: LocalCloud) -> dict[str, Draft4Validator]:
    """The four served schemas, each checked to be a valid JSON schema itself."""
    session = local_cloud.session()
    found = {}
    for name in SCHEMA_NAMES:
        response = session.images("DFW", "GET", f"/schemas/{name}")
        assert response.status_code == 200
        schema = response.json()
        Draft4Validator.check_schema(schema)
        found[name] = Draft4Validator(schema)
    return found


@pytest.fixture
def images(local_cloud: LocalCloud, validators: dict[str, Draft4Validator]) -> CheckedImages:
    return CheckedImages(local_cloud.session(), validators)


@pytest.fixture
def slow_tasks(local_cloud: LocalCloud) -> Iterator[None]:
    """Tasks stay pending long enough to be read in that state."""
    with local_cloud.admin.temporary_options(task_pending_seconds=0.3):
        yield


def test_image_answers_match_the_image_schemas(
    local_cloud: LocalCloud, images: CheckedImages
) -> None:
    seed = local_cloud.admin.seed()["DFW"]
    own = local_cloud.admin.create_image("DFW", local_cloud.main.tenant_id, properties=EXPORTABLE)
    page = images.call("images", "GET", "/images?limit=1")
    images.call("images", "GET", page["next"].removeprefix("/v2"))
    images.call("images", "GET", "/images?visibility=public&sort_dir=asc")
    images.call("image", "GET", f"/images/{seed['base_image']}")
    mark = [{"op": "add", "path": "/com.mycompany.image-of", "value": "db-replica-3"}]
    assert images.patch(own["id"], mark)["com.mycompany.image-of"] == "db-replica-3"
    found = images.call("images", "GET", "/images?com.mycompany.image-of=db-replica-3")
    assert own["id"] in [image["id"] for image in found["images"]]
    retag = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "replace", "path": "/tags", "value": ["a", "b"]},
    ]
    assert images.patch(own["id"], retag)["tags"] == ["a", "b"]


def test_a_snapshot_matches_the_image_schema_before_it_has_bytes(
    local_cloud: LocalCloud, images: CheckedImages
) -> None:
    server = local_cloud.admin.seed()["DFW"]["demo_server"]
    body = {"createImage": {"name": "schema check", "metadata": {}}}
    with local_cloud.admin.temporary_options(snapshot_seconds=0.4):
        created = images.session.compute("DFW", "POST", f"/servers/{server}/action", json=body)
        assert created.status_code == 202, created.text
        image_id = created.headers["Location"].rsplit("/", 1)[-1]
        answers = [images.call("image", "GET", f"/images/{image_id}")]
        while answers[-1]["status"] in ("queued", "saving"):
            time.sleep(0.02)
            answers.append(images.call("image", "GET", f"/images/{image_id}"))
    assert answers[0]["status"] in ("queued", "saving")
    assert "size" not in answers[0]
    assert answers[-1]["status"] == "active"
    assert answers[-1]["size"] > 0


def test_task_answers_match_the_task_schemas_at_every_status(
    local_cloud: LocalCloud, images: CheckedImages, slow_tasks: None
) -> None:
    own = local_cloud.admin.create_image("DFW", local_cloud.main.tenant_id, properties=EXPORTABLE)
    container = images.session.new_container("DFW", "schemas")
    local_cloud.admin.delay_next_task("DFW", "export", 0.3)
    export_input = {"image_uuid": own["id"], "receiving_swift_container": container}
    created = images.start_task("export", export_input)
    assert (created["status"], "result" in created) == ("pending", False)
    answers = images.task_answers(created["id"])
    assert {a["status"] for a in answers} == {"pending", "processing", "success"}
    location = answers[-1]["result"]["export_location"]
    imported = images.start_task(
        "import",
        {"import_from": location, "import_from_format": "vhd", "image_properties": {"name": "i"}},
    )
    done = images.task_answers(imported["id"])[-1]
    assert done["status"] == "success", done["message"]
    images.call("image", "GET", f"/images/{done['result']['image_id']}")
    images.call("tasks", "GET", "/tasks")
    images.call("tasks", "GET", "/tasks?type=export&status=success")


def test_a_failed_task_matches_the_task_schemas(
    local_cloud: LocalCloud, images: CheckedImages, slow_tasks: None
) -> None:
    message = "Image cannot be imported. Error code: '396'. The file is not a valid VHD."
    local_cloud.admin.fail_next_task("DFW", "import", message)
    task_input = {"import_from": "nowhere/x.vhd", "image_properties": {"name": "i"}}
    created = images.start_task("import", task_input)
    failed = images.task_answers(created["id"])[-1]
    assert (failed["status"], failed["message"]) == ("failure", message)
    assert "result" not in failed
    listed = images.call("tasks", "GET", "/tasks?status=failure")
    assert created["id"] in [task["id"] for task in listed["tasks"]]


def test_values_the_image_schema_forbids_are_refused(
    local_cloud: LocalCloud, images: CheckedImages
) -> None:
    own = local_cloud.admin.create_image("DFW", local_cloud.main.tenant_id)
    for operation in (
        {"op": "replace", "path": "/name", "value": TOO_LONG},
        {"op": "replace", "path": "/tags", "value": ["ok", TOO_LONG]},
        {"op": "add", "path": "/com.mycompany.x", "value": TOO_LONG},
    ):
        refused = images.session.patch_image("DFW", own["id"], [operation])
        assert refused.status_code == 400, operation
    images.call("image", "GET", f"/images/{own['id']}")
    server = local_cloud.admin.seed()["DFW"]["demo_server"]
    body = {"createImage": {"name": TOO_LONG, "metadata": {}}}
    action = images.session.compute("DFW", "POST", f"/servers/{server}/action", json=body)
    assert action.status_code == 400
    task_input = {"import_from": "nowhere/x.vhd", "image_properties": {"name": TOO_LONG}}
    created = images.start_task("import", task_input)
    failed = images.task_answers(created["id"])[-1]
    assert failed["status"] == "failure"
    assert "too long" in failed["message"]
