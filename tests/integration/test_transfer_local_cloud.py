"""The engine on a real export: the local cloud exports an image in DFW (a DLO of 1 MiB
segments with an uneven last one), the engine copies it to IAD (2 MiB object cap) as an SLO,
and IAD's import task turns it into an image with the same bytes."""

from __future__ import annotations

import pytest

from imagehop.object_store import ObjectStore
from imagehop.transfer import transfer_object
from imagehop_sandbox.handle import LocalCloud
from tests.support.minted_tokens import MintedTokens

pytestmark = pytest.mark.cloud


def test_an_exported_image_copied_by_the_engine_imports_with_the_same_bytes(
    local_cloud: LocalCloud,
) -> None:
    session = local_cloud.session()
    tenant = local_cloud.main.tenant_id
    server = local_cloud.admin.seed()["DFW"]["demo_server"]
    image = session.snapshot("DFW", server, "engine test")
    exports = session.new_container("DFW", "exports")
    task = session.export("DFW", image, exports)
    assert task["status"] == "success", task["message"]
    tokens = MintedTokens(local_cloud)
    source = ObjectStore(local_cloud.storage_url("DFW", tenant), tokens, region="DFW")
    target = ObjectStore(local_cloud.storage_url("IAD", tenant), tokens, region="IAD")
    imports = session.new_container("IAD", "imports")

    report = transfer_object(
        source, target, exports, f"{image}.vhd", imports, f"{image}.vhd", segment_size=2**20
    )

    assert report.plan.source.kind == "dlo"
    assert len(report.plan.segments) == len(report.plan.source.segments) >= 3
    assert all(spec.expected_md5 for spec in report.plan.segments)  # verified end to end
    imported = session.import_("IAD", f"{imports}/{image}.vhd", "copied by the engine")
    assert imported["status"] == "success", imported["message"]
    new_image = imported["result"]["image_id"]
    admin = local_cloud.admin
    assert admin.image_content_md5(new_image) == admin.image_content_md5(image)
