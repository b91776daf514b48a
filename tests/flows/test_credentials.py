"""Credentials from a Prefect Secret block named in the settings (never a parameter)."""

from __future__ import annotations

import pytest
from prefect.blocks.system import Secret

from imagehop.flows.transfer_image import transfer_image
from imagehop.procedure import DryRunPlan
from imagehop.tasks import cloud
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import new_image, request_for

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


def test_api_key_from_a_secret_block(on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    Secret(value=on_cloud.main.api_key).save("imagehop-test-api-key", overwrite=True)
    monkeypatch.delenv("IMAGEHOP_API_KEY")
    monkeypatch.setenv("IMAGEHOP_API_KEY_SECRET_BLOCK", "imagehop-test-api-key")
    cloud.reset()

    plan = transfer_image(request_for(new_image(on_cloud), dry_run=True))

    assert isinstance(plan, DryRunPlan)
    assert cloud.load_settings().api_key is not None
