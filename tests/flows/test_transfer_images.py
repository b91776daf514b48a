"""transfer-images: several images at once; one failing does not stop the others."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from imagehop.flows.transfer_images import transfer_images
from imagehop.procedure.request import BatchRequest
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import new_image

pytestmark = [pytest.mark.cloud, pytest.mark.flow]


def test_batch_with_one_failing_image(on_cloud: LocalCloud) -> None:
    good = [new_image(on_cloud, disk_bytes=2 * 1024 * 1024 + 7) for _ in range(2)]
    licensed = on_cloud.admin.seed()["DFW"]["licensed_image"]
    batch = BatchRequest(
        source_region="DFW",
        target_region="IAD",
        image_ids=(good[0], licensed, good[1]),
        max_parallel_transfers=3,
        max_exports_per_region=1,
        max_imports_per_region=1,
    )

    result = transfer_images(batch)

    assert [o.source for o in result.outcomes] == [good[0], licensed, good[1]]
    assert [o.status for o in result.outcomes] == ["succeeded", "failed", "succeeded"]
    failed = result.outcomes[1]
    assert "cannot be exported" in failed.message and failed.target_image_id is None
    for outcome, source in ((result.outcomes[0], good[0]), (result.outcomes[2], good[1])):
        assert outcome.target_image_id
        assert on_cloud.admin.image_content_md5(outcome.target_image_id) == (
            on_cloud.admin.image_content_md5(source)
        )
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["batch-dfw-to-iad"]))
        )
    table = str(artifacts[-1].data)
    assert licensed in table and "failed" in table and "cannot be exported" in table


def test_batch_by_property_filter(on_cloud: LocalCloud) -> None:
    marker = {"com.example.wave": "w-7"}
    chosen = new_image(on_cloud, disk_bytes=1024 * 1024 + 3, **marker)
    new_image(on_cloud, disk_bytes=1024 * 1024 + 3, **{"com.example.wave": "w-8"})

    result = transfer_images(
        BatchRequest(source_region="DFW", target_region="IAD", image_filter=marker)
    )

    assert [(o.source, o.status) for o in result.outcomes] == [(chosen, "succeeded")]
