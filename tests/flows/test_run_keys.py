"""A run key given for one image, then for another: refused at pre-flight, naming the image the
run key belongs to and what to do, before anything is created; the other image's transfer
(its copy, or what it left for a re-run) is untouched and still resumes.

Before this was caught, image B's request with image A's run key reported A's copy as B's
(nothing exported, copied or imported) and a server's request took image A for its snapshot;
with A's transfer half-way, B's copy was later reported as A's.
"""

from __future__ import annotations

import uuid

import pytest
from typer.testing import CliRunner

from imagehop.errors import RunKeyInUseError, TaskFailedError
from imagehop.flows.cli import app
from imagehop.flows.transfer_image import transfer_image
from imagehop.procedure import TransferRequest, TransferResult
from imagehop.procedure.request import (
    COPY_OF_PROPERTY,
    DEFAULT_EXPORT_CONTAINER,
    DEFAULT_IMPORT_CONTAINER,
    RUN_KEY_PROPERTY,
    segments_container,
)
from imagehop_sandbox.handle import LocalCloud
from tests.flows.helpers import created, image, new_image, objects, request_for
from tests.flows.test_cli_runs import runner

pytestmark = [pytest.mark.cloud, pytest.mark.flow]
__all__ = ["runner"]  # the fixture, imported

OTHER_SIZE = 3 * 1024 * 1024 + 7  # image B: another size, so a mix-up would show in bytes


def _run_key() -> str:
    return f"nightly-{uuid.uuid4().hex[:8]}"


def _left_behind(cloud: LocalCloud, image_id: str) -> dict[str, list[str]]:
    """What a transfer of ``image_id`` left in Cloud Files (export, staged copy, segments)."""
    return {
        "export": objects(cloud, "DFW", DEFAULT_EXPORT_CONTAINER, image_id),
        "staged": objects(cloud, "IAD", DEFAULT_IMPORT_CONTAINER, image_id),
        "segments": objects(cloud, "IAD", segments_container(DEFAULT_IMPORT_CONTAINER), image_id),
    }


def test_a_run_key_of_a_finished_transfer_is_refused_for_another_image(
    on_cloud: LocalCloud, runner: CliRunner
) -> None:
    """Through the CLI: exit 3, one line naming image A and the fix; nothing created, B not
    tagged, A's copy unchanged."""
    first, second = new_image(on_cloud), new_image(on_cloud, disk_bytes=OTHER_SIZE)
    key = _run_key()
    done = transfer_image(request_for(first, run_key=key))
    assert isinstance(done, TransferResult)
    copy_before = image(on_cloud, "IAD", done.target_image_id)
    assert copy_before[COPY_OF_PROPERTY] == first
    before, b_before = created(on_cloud), image(on_cloud, "DFW", second)

    outcome = runner.invoke(
        app,
        ["transfer", "--source-region", "DFW", "--target-region", "IAD",
         "--image-id", second, "--run-key", key],
    )  # fmt: skip

    line = outcome.stderr.strip().splitlines()[-1]
    assert outcome.exit_code == 3, outcome.output
    assert line.startswith("imagehop: error: ")
    assert f"run key {key!r} already belongs to the transfer of image {first}" in line
    assert "give another run key" in line and f"or transfer image {first}" in line
    assert done.target_image_id not in outcome.stdout
    assert created(on_cloud) == before
    assert image(on_cloud, "DFW", second) == b_before  # no run key put on B
    assert image(on_cloud, "IAD", done.target_image_id) == copy_before
    assert _left_behind(on_cloud, second) == {"export": [], "staged": [], "segments": []}

    # The same run key with its own image still resumes that transfer.
    again = transfer_image(request_for(first, run_key=key))
    assert isinstance(again, TransferResult)
    assert again.target_image_id == done.target_image_id and created(on_cloud) == before


def test_a_run_key_of_a_half_way_transfer_is_refused_for_another_image(
    on_cloud: LocalCloud,
) -> None:
    """A's import fails: its export and staged copy stay. B with A's run key is refused;
    A's leftovers are untouched and A's re-run completes from them."""
    first, second = new_image(on_cloud), new_image(on_cloud, disk_bytes=OTHER_SIZE)
    key = _run_key()
    on_cloud.admin.fail_next_task("IAD", "import", "Image cannot be imported. Error code: '111'.")
    with pytest.raises(TaskFailedError):
        transfer_image(request_for(first, run_key=key))
    left = _left_behind(on_cloud, first)
    assert all(left.values())
    before, b_before = created(on_cloud), image(on_cloud, "DFW", second)

    with pytest.raises(RunKeyInUseError) as refused:
        transfer_image(request_for(second, run_key=key))

    message = str(refused.value)
    assert f"already belongs to the transfer of image {first}, not to this one of image" in message
    assert f"image {first} in DFW carries {RUN_KEY_PROPERTY}={key}" in message
    assert created(on_cloud) == before
    assert image(on_cloud, "DFW", second) == b_before
    assert _left_behind(on_cloud, first) == left
    assert _left_behind(on_cloud, second) == {"export": [], "staged": [], "segments": []}

    resumed = transfer_image(request_for(first, run_key=key))
    assert isinstance(resumed, TransferResult)
    assert resumed.bytes_copied == 0 and resumed.segments_skipped == resumed.segments_total
    admin = on_cloud.admin
    assert admin.image_content_md5(resumed.target_image_id) == admin.image_content_md5(first)


def test_a_run_key_of_an_image_is_refused_for_a_server(on_cloud: LocalCloud) -> None:
    """A server's request with an image's run key would have taken that image for the
    server's snapshot: refused, no snapshot taken."""
    first = new_image(on_cloud)
    key = _run_key()
    done = transfer_image(request_for(first, run_key=key, cleanup="keep"))
    assert isinstance(done, TransferResult)
    server_id = on_cloud.admin.seed()["DFW"]["demo_server"]
    before = created(on_cloud)
    request = TransferRequest(
        source_region="DFW", target_region="IAD", server_id=server_id, run_key=key
    )

    with pytest.raises(RunKeyInUseError, match=f"the transfer of image {first}, not to this one"):
        transfer_image(request)

    assert created(on_cloud) == before
