"""Bad input through the real CLI (in-process, on the flow tests' Prefect server): each is
refused with one line naming the problem and the fix, with the README's exit code, and nothing
is created in the local cloud (its counts, the source image's properties).

The bad-input table of ``docs/reliability.md`` names these cases, and the ones other files
already prove (``test_preflight.py``, ``test_cli_errors.py``, ``test_cli_runs.py``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from typer.testing import CliRunner

from imagehop.flows.cli import app
from imagehop.procedure.request import RUN_KEY_PROPERTY
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import created, image, new_image
from tests.flows.test_cli_runs import runner

pytestmark = [pytest.mark.cloud, pytest.mark.flow]
__all__ = ["runner"]  # the fixture, imported


@dataclass
class Bad:
    """Options (``{image}`` stands for a fresh image's id) and what the refusal must say."""

    options: list[str]
    exit_code: int
    says: list[str]
    env: dict[str, str] = field(default_factory=dict)
    source: Callable[[LocalCloud, str], str] | None = None  # replaces --image-id's value


def _identity(cloud: LocalCloud, suffix: str) -> str:
    return cloud.identity_url.removesuffix("/v2.0") + suffix


CASES = {
    "unknown source region": Bad(
        ["--source-region", "ORD"], 3, ["ORD", "regions that do: DFW, IAD"]
    ),
    "region name with spaces inside": Bad(
        ["--target-region", "I AD"], 3, ["'I AD'", "regions that do: DFW, IAD"]
    ),
    "nonexistent server": Bad(
        ["--server-id", str(uuid.uuid4())],
        3,
        ["does not exist in DFW"],
        source=lambda c, i: "",
    ),
    "export container with '/'": Bad(
        ["--export-container", "a/b"], 3, ["contains '/'", "pick another export container"]
    ),
    "export container with '?'": Bad(
        ["--export-container", "what?"], 3, ["contains '?'", "without '/', '?' or '.'"]
    ),
    "export container over 256 bytes": Bad(
        ["--export-container", "x" * 257], 3, ["too long", "1-256 bytes"]
    ),
    "import container with '.'": Bad(
        ["--import-container", "in.bound"], 3, ["import container", "pick another import"]
    ),
    "concurrency 0": Bad(["--concurrency", "0"], 2, ["--concurrency: 0", "from 1 to 64"]),
    "concurrency 65": Bad(["--concurrency", "65"], 2, ["--concurrency: 65", "from 1 to 64"]),
    "coordinating key not reverse-DNS": Bad(
        ["--coordinating-property-key", "Image-Of"],
        2,
        ["'Image-Of'", "reverse-DNS", "e.g. com.mycompany.image-of"],
    ),
    "coordinating key imagehop's bookkeeping": Bad(
        ["--coordinating-property-key", RUN_KEY_PROPERTY],
        2,
        ["bookkeeping", "e.g. com.mycompany.image-of"],
    ),
    "blank coordinating value": Bad(
        ["--coordinating-property-value", "  "], 2, ["must not be blank", "omit it"]
    ),
    "flavor without --boot": Bad(
        ["--boot-flavor", "general1-1"], 2, ["--boot-flavor needs --boot", "add --boot"]
    ),
    "unknown boot flavor": Bad(
        ["--boot", "--boot-flavor", "huge-99"], 3, ["no flavor 'huge-99'", "flavors:"]
    ),
    "identity URL of another version": Bad(
        [], 4, ["IMAGEHOP_IDENTITY_URL"], env={"IMAGEHOP_IDENTITY_URL": "{identity}/v3"}
    ),
    "no API key or password": Bad([], 4, ["IMAGEHOP_API_KEY"], env={"IMAGEHOP_API_KEY": ""}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_naming_the_fix_and_creates_nothing(
    case: Bad, on_cloud: LocalCloud, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = new_image(on_cloud)
    for name, value in case.env.items():
        if value:
            monkeypatch.setenv(name, value.format(identity=_identity(on_cloud, "")))
        else:
            monkeypatch.delenv(name, raising=False)
    source = ["--image-id", image_id] if case.source is None else []
    command = ["transfer", "--source-region", "DFW", "--target-region", "IAD", *source]
    before, properties = created(on_cloud), image(on_cloud, "DFW", image_id)

    outcome = runner.invoke(app, [*command, *case.options])

    line = outcome.stderr.strip().splitlines()[-1]
    assert outcome.exit_code == case.exit_code, outcome.output
    assert line.startswith("imagehop: error: ")
    for words in case.says:
        assert words in line, line
    assert created(on_cloud) == before
    assert image(on_cloud, "DFW", image_id) == properties


def test_an_image_that_is_not_active_yet_is_refused(
    on_cloud: LocalCloud, runner: CliRunner
) -> None:
    server = _server_of_its_own(on_cloud)  # the demo server stays free for other tests
    with on_cloud.admin.temporary_options(snapshot_seconds=20.0):
        body = {"createImage": {"name": f"saving-{uuid.uuid4().hex[:6]}", "metadata": {}}}
        answer = on_cloud.session().compute("DFW", "POST", f"/servers/{server}/action", json=body)
        answer.raise_for_status()
    saving = answer.headers["Location"].rsplit("/", 1)[-1]
    before = created(on_cloud)

    outcome = runner.invoke(
        app, ["transfer", "--source-region", "DFW", "--target-region", "IAD", "--image-id", saving]
    )

    line = outcome.stderr.strip().splitlines()[-1]
    assert outcome.exit_code == 3, outcome.output
    assert "not 'active'" in line and "wait until it is active" in line
    assert created(on_cloud) == before


def _server_of_its_own(cloud: LocalCloud) -> str:
    """A new ACTIVE server in DFW, booted from the demo server's image: a test that leaves a
    server busy (a 20 s snapshot) must not leave the demo server busy for the next test of
    this worker (it refused a later run's snapshot with "server ... is busy")."""
    session = cloud.session()
    demo = session.compute("DFW", "GET", f"/servers/{cloud.admin.seed()['DFW']['demo_server']}")
    image_id = demo.json()["server"]["image"]["id"]
    flavors = session.compute("DFW", "GET", "/flavors/detail").json()["flavors"]
    flavor = max(flavors, key=lambda f: f["disk"])["id"]
    body = {
        "server": {
            "name": f"busy-{uuid.uuid4().hex[:6]}",
            "imageRef": image_id,
            "flavorRef": flavor,
        }
    }
    answer = session.compute("DFW", "POST", "/servers", json=body)
    answer.raise_for_status()
    server_id = str(answer.json()["server"]["id"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = session.compute("DFW", "GET", f"/servers/{server_id}").json()["server"]["status"]
        if status == "ACTIVE":
            return server_id
        time.sleep(0.2)
    raise AssertionError(f"server {server_id} not ACTIVE within 30 s (still {status})")


@pytest.mark.parametrize(
    ("side", "region", "service", "offered"),
    [("target", "IAD", "image", "object-store"), ("source", "DFW", "object-store", "image")],
)
def test_a_region_missing_one_service_in_the_catalog_is_named_with_that_service(
    side: str,
    region: str,
    service: str,
    offered: str,
    on_cloud: LocalCloud,
    runner: CliRunner,
) -> None:
    """The catalog lists the region for one service but not for the other (the account lacks
    that product there): exit 3, naming the region, the missing service and what to do."""
    image_id = new_image(on_cloud)
    before, properties = created(on_cloud), image(on_cloud, "DFW", image_id)
    command = ["transfer", "--source-region", "DFW", "--target-region", "IAD", "--image-id"]

    with on_cloud.admin.temporary_options(catalog_missing_services={region: [service]}):
        outcome = runner.invoke(app, [*command, image_id])

    line = outcome.stderr.strip().splitlines()[-1]
    assert outcome.exit_code == 3, outcome.output
    assert line.startswith("imagehop: error: ")
    assert f"region {region} offers {offered} but no {service} to the {side} account" in line
    assert f"pick a {side} region that offers" in line
    assert f"or have {service} enabled for this account in {region}" in line
    assert created(on_cloud) == before
    assert image(on_cloud, "DFW", image_id) == properties
