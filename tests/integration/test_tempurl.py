"""Temporary URLs of what imagehop staged (real Swift with the real tempurl middleware): an SLO
the engine wrote is readable whole through the URL without a token; the key sits on imagehop's
own container (never the account), is set once and reused; a container imagehop did not
create, or a missing one, is refused and left untouched; the URL never reaches the logs."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid

import pytest
import requests

from imagehop.errors import ForeignContainerError, PreflightError
from imagehop.object_store import ObjectStore
from imagehop.transfer import TransferPlan, copy_plan, discover_source, plan_transfer
from imagehop.transfer.tempurl import (
    TEMP_URL_KEY_META,
    container_key,
    staged_object_url,
    temporary_url,
)
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.options import MiB
from tests.support.minted_tokens import MintedTokens

pytestmark = pytest.mark.cloud
REGION = "DFW"


def store(cloud: LocalCloud) -> ObjectStore:
    url = cloud.storage_url(REGION, cloud.main.tenant_id)
    return ObjectStore(url, MintedTokens(cloud), region=REGION)


def staged_slo(cloud: LocalCloud, size: int = 3 * MiB + 777) -> tuple[TransferPlan, bytes]:
    """An SLO written by the engine (from a DLO of 1 MiB parts) into a container it created:
    (plan, bytes). Its segments are in the same container: a container key covers only that."""
    session = cloud.session()
    source_container = session.new_container(REGION, "tu-src")
    parts = [os.urandom(min(MiB, size - offset)) for offset in range(0, size, MiB)]
    for number, part in enumerate(parts, start=1):
        put = session.storage(REGION, "PUT", f"/{source_container}/disk-{number:05d}", data=part)
        assert put.status_code == 201
    manifest = {"X-Object-Manifest": f"{source_container}/disk-"}
    put = session.storage(REGION, "PUT", f"/{source_container}/disk", data=b"", headers=manifest)
    assert put.status_code == 201
    body = b"".join(parts)
    container = f"tu-{uuid.uuid4().hex[:12]}"
    swift = store(cloud)
    layout = discover_source(swift, source_container, "disk", listing_delay=0.0)
    plan = plan_transfer(layout, swift.limits(), container, "disk.raw", MiB, container)
    copy_plan(swift, swift, plan)
    return plan, body


def test_an_engine_written_slo_is_read_whole_through_its_temporary_url(
    local_cloud: LocalCloud, caplog: pytest.LogCaptureFixture
) -> None:
    plan, body = staged_slo(local_cloud)
    container, name = plan.target_container, plan.target_object
    swift = store(local_cloud)
    with caplog.at_level(logging.DEBUG):
        url = staged_object_url(swift, plan, 300)
        again = temporary_url(swift, container, name, 300)

    got = requests.get(url, timeout=60)  # no token
    assert got.status_code == 200, got.text
    assert hashlib.md5(got.content).hexdigest() == hashlib.md5(body).hexdigest()
    assert requests.get(again, timeout=60).status_code == 200  # the key was kept, not replaced
    assert "temp_url_sig" not in caplog.text and url not in caplog.text
    key = swift.container_metadata(container)[TEMP_URL_KEY_META]
    assert len(key) == 64 and container_key(swift, container) == key
    account = local_cloud.session().storage(REGION, "HEAD", "")
    assert not any("temp-url-key" in header.lower() for header in account.headers)
    tampered = url.replace(name, "other")
    assert requests.get(tampered, timeout=30).status_code == 401


def test_segments_in_another_container_are_refused_before_signing(
    local_cloud: LocalCloud,
) -> None:
    plan, _ = staged_slo(local_cloud, size=2 * MiB + 5)
    apart = plan.model_copy(update={"segments_container": f"{plan.target_container}_segments"})
    with pytest.raises(PreflightError, match="segments_container equal to the target"):
        staged_object_url(store(local_cloud), apart, 60)


def test_a_container_imagehop_did_not_create_gets_no_key(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    theirs = session.new_container(REGION, "someone-elses")
    assert session.storage(REGION, "PUT", f"/{theirs}/obj", data=b"x").status_code == 201
    swift = store(local_cloud)
    with pytest.raises(ForeignContainerError, match="not created by imagehop"):
        temporary_url(swift, theirs, "obj", 60)
    assert TEMP_URL_KEY_META not in swift.container_metadata(theirs)  # untouched
    with pytest.raises(ForeignContainerError, match="does not exist"):
        temporary_url(swift, f"missing-{uuid.uuid4().hex[:8]}", "obj", 60)


@pytest.mark.parametrize("seconds", [0, -5, 86_401])
def test_a_lifetime_out_of_bounds_is_refused_before_any_request(
    local_cloud: LocalCloud, seconds: int
) -> None:
    unreachable = ObjectStore("http://127.0.0.1:9/v1/AUTH_x", MintedTokens(local_cloud))
    with pytest.raises(ValueError, match="1 to 86400 seconds"):
        temporary_url(unreachable, "c", "o", seconds)
