"""Faults of the wire and of Swift during a copy, against the local cloud's real Swift clusters.

A :class:`~tests.support.fault_proxy.FaultProxy` sits between the engine and one region's
Swift proxy (the store's storage URL points at it); the Swift processes themselves are killed
for the crash rows. Each test checks the outcome and that the target object, read whole
through Swift, has the source's MD5. Sources are export-style DLOs of 1 MiB segments, copied
1:1 (each segment PUT with its MD5 as ETag, which Swift checks).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from email.utils import formatdate

import pytest

from imagehop.errors import InsufficientStorageError, IntegrityError, NotFoundError
from imagehop.object_store import ObjectStore
from imagehop.retries import NO_RETRY
from imagehop.transfer import TransferReport, transfer_object
from imagehop_sandbox import control
from imagehop_sandbox.handle import CloudSession, LocalCloud
from imagehop_sandbox.options import MiB
from tests.integration.test_transfer_local_cloud import MintedTokens
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.scripted_clock import FastForwardClock

pytestmark = pytest.mark.cloud

SIZES = [MiB] * 4 + [333_333]  # five segments, the last one short
#: Test scale: no real backoff between segment tries (the delays asked for are recorded).
FAST = {"segment_size": MiB, "chunk_size": 256 * 1024, "concurrency": 1, "listing_delay": 0.0}
RESTART_SECONDS = 90.0


class Source:
    """An export-style DLO in DFW of the main account, and what its bytes are."""

    def __init__(self, session: CloudSession) -> None:
        self.container = session.new_container("DFW", "faults-src")
        self.name = f"{uuid.uuid4()}.vhd"
        parts = [os.urandom(size) for size in SIZES]
        for number, part in enumerate(parts, 1):
            put = session.storage(
                "DFW", "PUT", f"/{self.container}/{self.name}-{number:05d}", data=part
            )
            put.raise_for_status()
        manifest = {"X-Object-Manifest": f"{self.container}/{self.name}-"}
        session.storage(
            "DFW", "PUT", f"/{self.container}/{self.name}", headers=manifest
        ).raise_for_status()
        self.md5 = hashlib.md5(b"".join(parts)).hexdigest()


@pytest.fixture
def session(local_cloud: LocalCloud) -> CloudSession:
    return local_cloud.session()


@pytest.fixture
def source(session: CloudSession) -> Source:
    return Source(session)


@pytest.fixture
def target_container(session: CloudSession) -> str:
    return session.new_container("IAD", "faults-dst")


def store(
    cloud: LocalCloud, region: str, proxy: FaultProxy | None = None, read: float = 30.0
) -> ObjectStore:
    """An object store as the tasks build it (no request-layer retries: the engine's segment
    layer retries), through ``proxy`` when given."""
    url = cloud.storage_url(region, cloud.main.tenant_id)
    return ObjectStore(
        proxy.storage_url(url) if proxy else url,
        MintedTokens(cloud),
        timeout=(5.0, read),
        region=region,
        retry=NO_RETRY,
        clock=FastForwardClock(real_sleep=0.0),
    )


def copy(
    cloud: LocalCloud,
    source: Source,
    target_container: str,
    src: ObjectStore | None = None,
    dst: ObjectStore | None = None,
    sleeps: list[float] | None = None,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> TransferReport:
    recorded = sleeps if sleeps is not None else []
    return transfer_object(
        src or store(cloud, "DFW"),
        dst or store(cloud, "IAD"),
        source.container,
        source.name,
        target_container,
        source.name,
        sleep=recorded.append,
        progress=progress,
        **FAST,  # type: ignore[arg-type]
    )


def target_md5(session: CloudSession, container: str, name: str) -> str:
    """MD5 of the whole target object, read through Swift (the SLO's bytes)."""
    response = session.storage("IAD", "GET", f"/{container}/{name}")
    response.raise_for_status()
    return hashlib.md5(response.content).hexdigest()


@pytest.fixture
def dfw_proxy(local_cloud: LocalCloud) -> Iterator[FaultProxy]:
    with FaultProxy(local_cloud.info.region("DFW").storage_host) as proxy:
        yield proxy


@pytest.fixture
def iad_proxy(local_cloud: LocalCloud) -> Iterator[FaultProxy]:
    with FaultProxy(local_cloud.info.region("IAD").storage_host) as proxy:
        yield proxy


# the wire ------------------------------------------------------------------------------------


def test_a_connection_reset_mid_segment_is_retried_from_the_source(
    local_cloud: LocalCloud,
    session: CloudSession,
    source: Source,
    target_container: str,
    dfw_proxy: FaultProxy,
) -> None:
    third = rf"/{source.name}-00003$"
    dfw_proxy.add(Fault("GET", third, reset_after=300_000))

    report = copy(local_cloud, source, target_container, src=store(local_cloud, "DFW", dfw_proxy))

    assert dfw_proxy.count("GET", third) == 2  # cut once, then read again from the start
    assert [r.attempts for r in report.results] == [1, 1, 2, 1, 1]
    assert target_md5(session, target_container, source.name) == source.md5


def test_a_connection_reset_mid_upload_is_retried(
    local_cloud: LocalCloud,
    session: CloudSession,
    source: Source,
    target_container: str,
    iad_proxy: FaultProxy,
) -> None:
    iad_proxy.add(Fault("PUT", r"_segments/.*00000001$", reset_request_after=400_000))

    report = copy(local_cloud, source, target_container, dst=store(local_cloud, "IAD", iad_proxy))

    assert iad_proxy.count("PUT", faulted=True) == 1
    assert sum(r.attempts for r in report.results) == len(SIZES) + 1
    assert target_md5(session, target_container, source.name) == source.md5


def test_a_stalled_source_times_out_and_is_read_again_not_replayed(
    local_cloud: LocalCloud,
    session: CloudSession,
    source: Source,
    target_container: str,
    dfw_proxy: FaultProxy,
) -> None:
    """The source sends 200 KB of segment 2 then nothing: the read timeout (1 s) ends the try,
    and the retry opens the range again (a new GET) instead of replaying a half-sent stream."""
    second = rf"/{source.name}-00002$"
    dfw_proxy.add(Fault("GET", second, stall_after=200_000, stall_seconds=20.0))

    src = store(local_cloud, "DFW", dfw_proxy, read=1.0)
    report = copy(local_cloud, source, target_container, src=src)

    assert dfw_proxy.count("GET", second) == 2
    assert report.results[1].attempts == 2 and report.bytes_copied == sum(SIZES)
    assert target_md5(session, target_container, source.name) == source.md5


def test_one_byte_flipped_in_flight_is_caught_and_never_stored(
    local_cloud: LocalCloud,
    session: CloudSession,
    source: Source,
    target_container: str,
    dfw_proxy: FaultProxy,
) -> None:
    """Swift checks each 1:1 segment against the listed MD5 (422): not retried (the bytes are
    wrong, not late), no manifest written; the next run copies what is missing, correctly."""
    dfw_proxy.add(Fault("GET", rf"/{source.name}-00004$", flip_byte_at=123_456))

    with pytest.raises(IntegrityError):
        copy(local_cloud, source, target_container, src=store(local_cloud, "DFW", dfw_proxy))
    head = session.storage("IAD", "HEAD", f"/{target_container}/{source.name}")
    assert head.status_code == 404  # nothing an import could pick up

    report = copy(local_cloud, source, target_container)
    assert report.segments_skipped == 3 and report.results[3].copied
    assert target_md5(session, target_container, source.name) == source.md5


# Swift's answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "at_least"),
    [(413, "7", 7.0), (429, "http-date", 100.0)],
    ids=["413-seconds", "429-http-date"],
)
def test_rate_limits_are_waited_out_for_at_least_retry_after(
    status: int,
    retry_after: str,
    at_least: float,
    local_cloud: LocalCloud,
    session: CloudSession,
    source: Source,
    target_container: str,
    iad_proxy: FaultProxy,
) -> None:
    hint = formatdate(time.time() + 120, usegmt=True) if retry_after == "http-date" else retry_after
    iad_proxy.add(
        Fault("PUT", r"_segments/", status=status, headers={"Retry-After": hint}, times=2)
    )
    sleeps: list[float] = []

    copy(
        local_cloud,
        source,
        target_container,
        dst=store(local_cloud, "IAD", iad_proxy),
        sleeps=sleeps,
    )

    assert iad_proxy.count("PUT", faulted=True) == 2
    assert len(sleeps) == 2 and min(sleeps) >= at_least, sleeps
    assert target_md5(session, target_container, source.name) == source.md5


def test_swift_out_of_space_fails_with_the_507_named_and_resumes(
    local_cloud: LocalCloud,
    session: CloudSession,
    source: Source,
    target_container: str,
    iad_proxy: FaultProxy,
) -> None:
    iad_proxy.add(Fault("PUT", r"_segments/", status=507, body=b"Insufficient Storage", times=100))

    with pytest.raises(InsufficientStorageError, match="507"):
        copy(local_cloud, source, target_container, dst=store(local_cloud, "IAD", iad_proxy))
    assert iad_proxy.count("PUT", faulted=True) == 1  # not retried: a full disk stays full

    iad_proxy.clear()
    report = copy(local_cloud, source, target_container)
    assert report.bytes_copied == sum(SIZES)
    assert target_md5(session, target_container, source.name) == source.md5


def test_a_dlo_listing_that_misses_a_segment_for_a_while_is_listed_again(
    local_cloud: LocalCloud,
    session: CloudSession,
    source: Source,
    target_container: str,
    dfw_proxy: FaultProxy,
) -> None:
    listing = rf"^/v1/[^/]+/{source.container}\?(?!.*marker=)"  # a first page
    dfw_proxy.add(Fault("GET", listing, hide_listed=r"-00003$", times=2))
    sleeps: list[float] = []

    report = copy(
        local_cloud,
        source,
        target_container,
        src=store(local_cloud, "DFW", dfw_proxy),
        sleeps=sleeps,
    )

    assert dfw_proxy.count("GET", listing) == 3 and len(sleeps) == 2
    assert len(report.results) == len(SIZES)
    assert target_md5(session, target_container, source.name) == source.md5


# processes and containers going away -----------------------------------------------------------


def wait_until_swift_answers(cloud: LocalCloud, region: str) -> None:
    """Bounded: until the (restarted) cluster serves the account again."""
    deadline = time.monotonic() + RESTART_SECONDS
    while time.monotonic() < deadline:
        try:
            if cloud.session().storage(region, "GET", "", params={"limit": "1"}).status_code < 300:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"Swift {region} did not come back within {RESTART_SECONDS:.0f} s")


def restarted_pid(cloud: LocalCloud, key: str, old: int) -> int:
    """The pid the local cloud records for ``key`` once it differs from ``old`` (bounded): the
    supervisor records a restarted cluster after its own readiness check, which can come a
    moment after the new proxy first answers."""
    deadline = time.monotonic() + RESTART_SECONDS
    while (pid := control.load_info(cloud.state_dir).pids[key]) == old:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return pid


@pytest.mark.parametrize("region", ["DFW", "IAD"], ids=["source", "target"])
def test_a_swift_proxy_killed_mid_copy_is_survived_after_its_restart(
    region: str,
    local_cloud: LocalCloud,
    session: CloudSession,
    source: Source,
    target_container: str,
) -> None:
    """After the second segment the region's Swift proxy is SIGKILLed; the local cloud restarts
    the cluster. The segment layer's waits (here: until the restarted cluster has passed the
    local cloud's readiness check, an object PUT, and answers) bridge it. An account listing
    alone can answer while the object servers still start (CI at 4d35066: the retried PUT got
    503)."""
    key = f"swift-{region}-proxy"
    old = control.load_info(local_cloud.state_dir).pids[key]
    killed: list[int] = []

    def kill_after_two(done: int, total: int, segments: int, of: int) -> None:
        if segments == 2 and not killed:
            os.kill(old, signal.SIGKILL)
            killed.append(old)

    def bridge(_: float) -> None:
        if killed:  # the supervisor records the new cluster once an object PUT got through
            restarted_pid(local_cloud, key, old)
        wait_until_swift_answers(local_cloud, region)

    report = transfer_object(
        store(local_cloud, "DFW"), store(local_cloud, "IAD"), source.container, source.name,
        target_container, source.name, sleep=bridge, progress=kill_after_two, **FAST,  # type: ignore[arg-type]
    )  # fmt: skip

    assert killed and restarted_pid(local_cloud, key, old) != old
    assert max(r.attempts for r in report.results) >= 2
    assert report.bytes_copied == sum(SIZES)
    assert target_md5(session, target_container, source.name) == source.md5


def test_the_target_container_deleted_mid_copy_fails_clearly_and_a_rerun_copies_it_all(
    local_cloud: LocalCloud, session: CloudSession, source: Source, target_container: str
) -> None:
    segments_container = f"{target_container}_segments"
    deleted: list[bool] = []

    def delete_after_two(done: int, total: int, segments: int, of: int) -> None:
        if segments == 2 and not deleted:
            listed = session.storage(
                "IAD", "GET", f"/{segments_container}", params={"format": "json"}
            )
            for item in listed.json():
                session.storage("IAD", "DELETE", f"/{segments_container}/{item['name']}")
            assert session.storage("IAD", "DELETE", f"/{segments_container}").status_code == 204
            deleted.append(True)

    with pytest.raises(NotFoundError, match=segments_container):
        copy(local_cloud, source, target_container, progress=delete_after_two)

    report = copy(local_cloud, source, target_container)
    assert report.segments_skipped == 0 and report.bytes_copied == sum(SIZES)
    assert target_md5(session, target_container, source.name) == source.md5
