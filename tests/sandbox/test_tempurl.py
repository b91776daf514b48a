"""Swift's real ``tempurl`` middleware in the local cloud's clusters: a container key set by the
account owner makes a ``swiftclient.utils.generate_temp_url`` URL readable without a token
(an SLO manifest as its whole concatenated bytes); a wrong signature, an expired URL, another
method, and a container without a key are refused, and tokens still work as before."""

from __future__ import annotations

import hashlib
import json
import os
import time
from urllib.parse import urlsplit

import pytest
import requests
from swiftclient.utils import generate_temp_url

from imagehop_sandbox.handle import CloudSession, LocalCloud
from imagehop_sandbox.options import MiB

pytestmark = pytest.mark.cloud

REGION = "DFW"
KEY = "sandbox-tempurl-key-1"


def temp_url(session: CloudSession, container: str, name: str, seconds: int = 60) -> str:
    base = session.cloud.storage_url(REGION, session.tenant)
    split = urlsplit(base)
    path = f"{split.path}/{container}/{name}"
    signed = generate_temp_url(path, seconds, KEY, "GET")
    return f"{split.scheme}://{split.netloc}{signed}"


def keyed_container(session: CloudSession) -> str:
    container = session.new_container(REGION, "tempurl")
    headers = {"X-Container-Meta-Temp-URL-Key": KEY}
    assert session.storage(REGION, "POST", f"/{container}", headers=headers).status_code == 204
    return container


def test_a_temp_url_reads_an_object_without_a_token(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    container = keyed_container(session)
    body = os.urandom(4096)
    assert session.storage(REGION, "PUT", f"/{container}/plain", data=body).status_code == 201
    url = temp_url(session, container, "plain")
    got = requests.get(url, timeout=30)
    assert got.status_code == 200
    assert got.content == body
    assert requests.head(url, timeout=30).status_code == 200  # a GET URL also allows HEAD
    ranged = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=30)
    assert (ranged.status_code, ranged.content) == (206, body[10:20])


def test_a_temp_url_of_an_slo_gives_the_whole_concatenated_bytes(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    container = keyed_container(session)
    parts = [os.urandom(MiB), os.urandom(MiB), os.urandom(12345)]
    manifest = []
    for number, part in enumerate(parts, start=1):
        name = f"big/seg/{number:08d}"
        put = session.storage(REGION, "PUT", f"/{container}/{name}", data=part)
        assert put.status_code == 201
        manifest.append({"path": f"/{container}/{name}", "etag": put.headers["Etag"].strip('"')})
    made = session.storage(
        REGION, "PUT", f"/{container}/big?multipart-manifest=put", data=json.dumps(manifest)
    )
    assert made.status_code == 201, made.text
    got = requests.get(temp_url(session, container, "big"), timeout=60)
    assert got.status_code == 200
    whole = b"".join(parts)
    assert len(got.content) == len(whole)
    assert hashlib.md5(got.content).hexdigest() == hashlib.md5(whole).hexdigest()


def test_bad_or_expired_or_unkeyed_temp_urls_are_refused(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    container = keyed_container(session)
    assert session.storage(REGION, "PUT", f"/{container}/obj", data=b"x").status_code == 201
    url = temp_url(session, container, "obj")
    forged = url.replace("temp_url_sig=", "temp_url_sig=0")
    assert requests.get(forged, timeout=30).status_code == 401
    assert requests.delete(url, timeout=30).status_code == 401  # signed for GET only
    expired = temp_url(session, container, "obj", seconds=1)
    time.sleep(2.1)
    assert requests.get(expired, timeout=30).status_code == 401
    unkeyed = session.new_container(REGION, "tempurl")
    assert session.storage(REGION, "PUT", f"/{unkeyed}/obj", data=b"x").status_code == 201
    assert requests.get(temp_url(session, unkeyed, "obj"), timeout=30).status_code == 401
    plain = requests.get(
        local_cloud.storage_url(REGION, session.tenant) + f"/{container}/obj", timeout=30
    )
    assert plain.status_code == 401  # no token, no signature: still refused
    assert session.storage(REGION, "GET", f"/{container}/obj").content == b"x"


def test_another_tenant_cannot_read_the_key(local_cloud: LocalCloud) -> None:
    session = local_cloud.session()
    container = keyed_container(session)
    own = session.storage(REGION, "HEAD", f"/{container}")
    assert own.headers.get("X-Container-Meta-Temp-Url-Key") == KEY
    other = local_cloud.session(local_cloud.other)
    refused = other.http.head(
        local_cloud.storage_url(REGION, session.tenant) + f"/{container}",
        headers={"X-Auth-Token": other.token},
        timeout=30,
    )
    assert refused.status_code == 403
