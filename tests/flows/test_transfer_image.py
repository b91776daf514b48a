"""transfer-image against the local cloud: the documented procedure end to end, re-runs,
dry runs, pre-flight refusals and poll spacing."""

from __future__ import annotations

import pytest

from flows.transfer_image import transfer_image
from imagehop.procedure import BootRequest, TransferRequest, TransferResult
from imagehop.sandbox.testing import LocalCloud

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


def test_server_to_booted_server_in_the_other_region(on_cloud: LocalCloud) -> None:
    server_id = on_cloud.admin.seed()["DFW"]["demo_server"]
    request = TransferRequest(
        source_region="DFW", target_region="IAD", server_id=server_id, boot=BootRequest()
    )
    result = transfer_image(request)
    assert isinstance(result, TransferResult)
    print(result.model_dump_json(indent=2))
    admin = on_cloud.admin
    assert admin.image_content_md5(result.target_image_id) == admin.image_content_md5(
        result.source_image_id
    )
