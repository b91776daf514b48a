"""Every pre-flight refusal comes with its own clear error, before anything is created."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from imagehop import errors
from imagehop.flows.transfer_image import transfer_image
from imagehop.procedure import TransferRequest
from imagehop.procedure.request import RUN_KEY_PROPERTY
from imagehop.tasks import cloud
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import created, image, new_image

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


@dataclass
class Case:
    """A request that must be refused, and how."""

    error: type[Exception]
    says: str
    request: Callable[[LocalCloud, str], dict[str, str]]
    env: dict[str, str] | None = None
    properties: dict[str, str] | None = None  # of the source image


CASES = {
    "unknown region": Case(
        errors.UnknownRegionError,
        "regions that do: DFW, IAD",
        lambda c, i: {"target_region": "ORD"},
    ),
    "same region and account": Case(
        errors.PreflightError, "pick another target region", lambda c, i: {"target_region": "DFW"}
    ),
    "missing image": Case(
        errors.ImageNotTransferableError,
        "does not exist in DFW",
        lambda c, i: {"image_id": str(uuid.uuid4())},
    ),
    "not exportable": Case(
        errors.ImageNotTransferableError,
        "com.rackspace__1__options is '1'",
        lambda c, i: {"image_id": c.admin.seed()["DFW"]["licensed_image"]},
    ),
    "not owned": Case(
        errors.ImageNotTransferableError,
        "only the owner can export it",
        lambda c, i: {"image_id": c.admin.seed()["DFW"]["base_image"]},
    ),
    "bad container name": Case(
        errors.InvalidContainerNameError,
        "contains '.'",
        lambda c, i: {"export_container": "my.exports"},
    ),
    "over the size limit": Case(
        errors.ImageNotTransferableError,
        "over the import limit",
        lambda c, i: {},
        env={"IMAGEHOP_IMPORT_SIZE_LIMIT_BYTES": "1000000"},
    ),
    "coordinating key the user owns": Case(
        errors.ForeignPropertyError,
        "com.mycompany.image-of='billing-db', which imagehop did not write",
        lambda c, i: {"coordinating_property_key": "com.mycompany.image-of"},
        properties={"com.mycompany.image-of": "billing-db"},
    ),
    "bad credentials": Case(
        errors.AuthenticationError,
        "check IMAGEHOP_USERNAME and IMAGEHOP_API_KEY",
        lambda c, i: {},
        env={"IMAGEHOP_API_KEY": "not-the-key"},
    ),
    "no admin role": Case(
        errors.PreflightError,
        "only admins may create export and import tasks",
        lambda c, i: {},
        env={"IMAGEHOP_TARGET_USERNAME": "demo-viewer", "IMAGEHOP_TARGET_API_KEY": "viewer"},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_refused_before_any_side_effect(
    case: Case, on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = new_image(on_cloud, **(case.properties or {}))
    for name, value in (case.env or {}).items():
        if name == "IMAGEHOP_TARGET_API_KEY":
            value = on_cloud.viewer.api_key
        monkeypatch.setenv(name, value)
    cloud.reset()
    containers = {"export_container": f"pf-{uuid.uuid4().hex[:8]}", "import_container": "pf-in"}
    fields = {"image_id": image_id, **containers, **case.request(on_cloud, image_id)}
    request = TransferRequest(**{"source_region": "DFW", "target_region": "IAD", **fields})
    before = created(on_cloud)

    with pytest.raises(case.error) as refused:
        transfer_image(request)

    assert case.says in str(refused.value)
    assert created(on_cloud) == before
    session = on_cloud.session()
    assert session.storage("DFW", "HEAD", f"/{containers['export_container']}").status_code == 404
    after = image(on_cloud, "DFW", image_id)
    assert RUN_KEY_PROPERTY not in after
    assert {key: after[key] for key in case.properties or {}} == (case.properties or {})
