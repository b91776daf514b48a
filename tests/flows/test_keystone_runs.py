"""transfer-image with Keystone v3 logins (the local cloud's generic-OpenStack identity): the
same runbook, the same result, whichever Identity protocol each side logs in with."""

from __future__ import annotations

import pytest

from imagehop.flows.transfer_image import transfer_image
from imagehop.procedure.result import TransferResult
from imagehop.tasks import cloud
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import image, new_image, request_for

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


def _log_in_with(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("IMAGEHOP_API_KEY", "IMAGEHOP_PASSWORD", "IMAGEHOP_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cloud.reset()


@pytest.mark.parametrize(
    "login",
    ["one Keystone, password", "a Keystone per region, application credential"],
)
def test_a_transfer_with_keystone_v3_logins(
    login: str, on_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = new_image(on_cloud)
    if login.startswith("one"):
        _log_in_with(monkeypatch, on_cloud.keystone_settings_env())
    else:  # as on Flex: each region's own Keystone, its catalog listing only that region
        source = on_cloud.keystone_settings_env(region="DFW", application_credential=True)
        target = on_cloud.keystone_settings_env(region="IAD", application_credential=True)
        env = {**source, "IMAGEHOP_TARGET_IDENTITY_URL": target["IMAGEHOP_IDENTITY_URL"]}
        _log_in_with(monkeypatch, env)

    result = transfer_image(request_for(image_id))

    assert isinstance(result, TransferResult)
    assert result.source_image_id == image_id
    new = image(on_cloud, "IAD", result.target_image_id)
    assert new["status"] == "active"
    assert new["com.imagehop.copy-of"] == image_id
    assert result.bytes_copied == result.bytes_total > 0
