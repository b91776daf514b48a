"""Faults during a whole transfer-image run against the local cloud: the Images API failing or
restarting while tasks are polled, short tokens, another image's staged segments in the shared
segments container, and the CLI process killed with SIGKILL mid-copy then run again.

Each test checks the outcome, what the cloud created (no second export or import task) and
that the new image's bytes are the source's (MD5 of the stored content).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_TASKS_REFRESH_CACHE, temporary_settings

from imagehop import errors
from imagehop.flows.transfer_image import transfer_image
from imagehop.procedure import TransferResult
from imagehop.procedure.request import DEFAULT_IMPORT_CONTAINER, segments_container
from imagehop.tasks import cloud
from imagehop_sandbox.handle import LocalCloud
from tests.deployments.processes import PROJECT_ROOT, prefect_env, processes_with_home, wait_for
from tests.flows.helpers import RecordingClock, created, new_image, request_for
from tests.support.fault_proxy import Fault, FaultProxy

pytestmark = [pytest.mark.cloud, pytest.mark.flow]

STAGED = segments_container(DEFAULT_IMPORT_CONTAINER)


def same_bytes(local_cloud: LocalCloud, result: TransferResult) -> bool:
    admin = local_cloud.admin
    return admin.image_content_md5(result.target_image_id) == admin.image_content_md5(
        result.source_image_id
    )


def more(before: dict[str, int], after: dict[str, int], counter: str) -> int:
    return after.get(counter, 0) - before.get(counter, 0)


def test_a_burst_of_503s_on_task_polls_is_ridden_out(on_cloud: LocalCloud) -> None:
    """Seven polls in a row answered 503 (the poll layer allows ten): one export task, one
    import task, the right bytes."""
    image_id = new_image(on_cloud)
    on_cloud.admin.fail_next_request("images", r"/tasks/[^/]+$", 503, method="GET", count=7)
    before = created(on_cloud)

    result = transfer_image(request_for(image_id))

    assert isinstance(result, TransferResult) and same_bytes(on_cloud, result)
    assert not on_cloud.admin.faults()["http"], "every 503 was served"
    after = created(on_cloud)
    assert more(before, after, "DFW export_tasks_created") == 1
    assert more(before, after, "IAD import_tasks_created") == 1


def test_tokens_expiring_during_the_polls_are_renewed(on_cloud: LocalCloud) -> None:
    """Two-second tokens; each task takes longer than a token lives. (Not shorter: a token
    that expires during one request, e.g. a bulk delete whose sub-requests Swift checks one
    by one, is refused mid-request; real tokens live a day and are renewed well before.)"""
    image_id = new_image(on_cloud)
    with on_cloud.admin.temporary_options(token_lifetime_seconds=2.0, task_processing_seconds=2.5):
        result = transfer_image(request_for(image_id))
    assert isinstance(result, TransferResult) and same_bytes(on_cloud, result)


@contextlib.contextmanager
def restart_api_once_the_export_exists(
    cloud_: LocalCloud, exports_before: int
) -> Iterator[list[int]]:
    """A thread SIGKILLs the API service (the local cloud starts it again) as soon as the
    export task exists, i.e. while the flow polls it. Bounded: 60 s of watching."""
    restarted: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cloud_.admin.counts()["DFW"].get("export_tasks_created", 0) > exports_before:
                old = cloud_.info.pids["api"]
                cloud_.restart_api(hard=True)
                restarted.append(old)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield restarted
    finally:
        thread.join(timeout=90)


def test_the_api_service_killed_mid_poll_is_waited_out(on_cloud: LocalCloud) -> None:
    """Polls fail while the service is down (each failed poll is a poll: 30 s of clock time
    later the next one, here half a real second, up to ten in a row); the task, resumed by the
    restarted service, is found finished, and nothing is created twice."""
    image_id = new_image(on_cloud)
    on_cloud.admin.delay_next_task("DFW", "export", 1.5)
    before = created(on_cloud)
    with (
        cloud.use_clock(RecordingClock(real_sleep=0.5)),
        restart_api_once_the_export_exists(
            on_cloud, before.get("DFW export_tasks_created", 0)
        ) as restarted,
    ):
        result = transfer_image(request_for(image_id))

    assert restarted and on_cloud.info.pids["api"] != restarted[0]
    assert isinstance(result, TransferResult) and same_bytes(on_cloud, result)
    after = created(on_cloud)
    assert more(before, after, "DFW export_tasks_created") == 1
    assert more(before, after, "IAD import_tasks_created") == 1


def test_another_images_staged_segments_are_left_alone_in_the_shared_container(
    on_cloud: LocalCloud,
) -> None:
    """Image A's import fails, so its segments stay in the shared segments container; image B
    is transferred (and cleaned up) next to them; A's segments are untouched and A's re-run
    copies nothing."""
    first, second = new_image(on_cloud), new_image(on_cloud, disk_bytes=3 * 1024 * 1024 + 7)
    on_cloud.admin.fail_next_task("IAD", "import", "Image cannot be imported. Error code: '111'.")
    with pytest.raises(errors.TaskFailedError):
        transfer_image(request_for(first))
    staged = _listing(on_cloud, first)
    assert staged

    other = transfer_image(request_for(second))

    assert isinstance(other, TransferResult) and same_bytes(on_cloud, other)
    assert _listing(on_cloud, first) == staged
    assert _listing(on_cloud, second) == {}  # B cleaned up only its own
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):
        again = transfer_image(request_for(first))
    assert isinstance(again, TransferResult) and same_bytes(on_cloud, again)
    assert again.bytes_copied == 0 and again.segments_skipped == again.segments_total


def _listing(local_cloud: LocalCloud, image_id: str) -> dict[str, str]:
    """Staged segments of ``image_id``: name -> (hash, last modified)."""
    response = local_cloud.session().storage(
        "IAD", "GET", f"/{STAGED}", params={"format": "json", "prefix": image_id}
    )
    response.raise_for_status()
    return {o["name"]: f"{o['hash']} {o['last_modified']}" for o in response.json()}


# the CLI killed mid-copy ---------------------------------------------------------------------

#: The real CLI, on the flow tests' fast-forward clock (polls 30 s apart in clock time).
CLI_ON_A_FAST_CLOCK = (
    "from imagehop.tasks import cloud; from tests.support.scripted_clock import FastForwardClock;"
    " fast = cloud.use_clock(FastForwardClock(real_sleep=0.02)); fast.__enter__();"
    " from imagehop.flows.cli import main; main()"
)  # (the context manager is kept in a name: collected, it would put the real clock back)


def test_the_cli_killed_mid_copy_then_run_again_copies_only_what_is_missing(
    on_cloud: LocalCloud, tmp_path: Path
) -> None:
    """The CLI (talking to a Prefect server) copies through a slow link (a proxy in front of
    DFW's Swift, published in the catalog) and gets SIGKILL after its first segment. No
    process is left; the re-run (without the Prefect cache: another Prefect database) reuses
    the export, skips the verified segments and imports once."""
    image_id = new_image(on_cloud)
    before = created(on_cloud)
    home = tmp_path / "prefect-home"
    env = prefect_env(home, str(PREFECT_API_URL.value()), **on_cloud.settings_env())
    log = tmp_path / "cli.log"
    source = on_cloud.info.region("DFW").storage_host
    with (
        FaultProxy(source) as proxy,
        on_cloud.admin.temporary_options(catalog_storage_hosts={"DFW": proxy.url}),
    ):
        proxy.add(Fault("GET", rf"/{image_id}\.vhd-\d+$", delay_seconds=0.5, times=100))
        command = [sys.executable, "-c", CLI_ON_A_FAST_CLOCK, "transfer", "--json",
                   "--source-region", "DFW", "--target-region", "IAD", "--image-id", image_id,
                   "--concurrency", "1"]  # fmt: skip
        with log.open("wb") as out:
            cli = subprocess.Popen(
                command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=out,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        began = time.perf_counter()
        try:
            wait_for(
                "the CLI to be in the middle of its copy",
                lambda: proxy.count("GET", r"\.vhd-\d+$") >= 4 or cli.poll() is not None,
                timeout=120,
                interval=0.05,
            )
            assert cli.poll() is None, log.read_text(errors="replace")[-3000:]
            print(f"CLI mid-copy after {time.perf_counter() - began:.1f} s")
            cli.send_signal(signal.SIGKILL)
            cli.wait(timeout=10)
        finally:
            _kill_what_is_left(cli, str(home))
    assert not processes_with_home(str(home)), "a process of the killed CLI is left"

    began = time.perf_counter()
    result = transfer_image(request_for(image_id, concurrency=1))
    print(f"re-run in {time.perf_counter() - began:.1f} s")

    assert isinstance(result, TransferResult) and same_bytes(on_cloud, result)
    assert 0 < result.segments_skipped < result.segments_total
    assert result.segments_copied == result.segments_total - result.segments_skipped
    assert 0 < result.bytes_copied < result.bytes_total
    after = created(on_cloud)
    assert more(before, after, "DFW export_tasks_created") == 1
    assert more(before, after, "IAD import_tasks_created") == 1
    assert "exported VHD" in result.reused or "export task" in result.reused


def _kill_what_is_left(cli: subprocess.Popen[bytes], home: str) -> None:
    if cli.poll() is None:
        cli.kill()
        cli.wait(timeout=10)
    for pid in processes_with_home(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
