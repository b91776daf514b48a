"""The documented procedure, step by step, with plain HTTP calls (what its curl commands do).

Source: "Transfer images between regions of the Rackspace open cloud". Snapshot a server in
DFW, tag the image, export it to Cloud Files, copy the DLO to IAD (object by object over
HTTP, or with python-swiftclient's `swift` command), import it there, re-tag the new image,
find it by its property, boot a server from it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from imagehop_sandbox.handle import LocalCloud

pytestmark = pytest.mark.cloud

PATCH = "application/openstack-images-v2.1-json-patch"
CopyStep = Callable[[str, list[str], str, str, str, Path], None]


def endpoint(access: dict[str, Any], service: str, region: str) -> str:
    for entry in access["serviceCatalog"]:
        if entry["name"] == service:
            for item in entry["endpoints"]:
                if item["region"] == region:
                    return str(item["publicURL"])
    raise AssertionError(f"{service} {region} not in the catalog")


def poll(url: str, headers: dict[str, str], done: tuple[str, ...], key: str | None = None) -> Any:
    for _ in range(600):
        doc = requests.get(url, headers=headers, timeout=10).json()
        doc = doc[key] if key else doc
        if doc["status"] in done:
            return doc
        time.sleep(0.05)
    raise AssertionError(f"{url} never reached {done}")


def copy_with_http(
    image: str, segments: list[str], source: str, target: str, token: str, _: Path
) -> None:
    """Download each segment, upload it to IAD with its MD5, recreate the DLO manifest."""
    headers = {"X-Auth-Token": token}
    assert requests.put(f"{target}/imported-files", headers=headers, timeout=10).status_code in (
        201,
        202,
    )
    for name in segments:
        data = requests.get(f"{source}/exported-images/{name}", headers=headers, timeout=30).content
        put = requests.put(
            f"{target}/imported-files/{name}",
            data=data,
            headers={**headers, "ETag": hashlib.md5(data).hexdigest()},
            timeout=30,
        )
        assert put.status_code == 201
    manifest = {**headers, "X-Object-Manifest": f"imported-files/{image}.vhd-"}
    assert requests.put(
        f"{target}/imported-files/{image}.vhd", data=b"", headers=manifest, timeout=10
    ).ok


def swift_cli(storage_url: str, token: str, *args: str, cwd: Path) -> str:
    """python-swiftclient's ``swift`` command, with the local Identity's token."""
    command = [sys.executable, "-m", "swiftclient.shell", "--os-auth-token", token]
    command += ["--os-storage-url", storage_url, *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def copy_with_swift_cli(
    image: str, segments: list[str], source: str, target: str, token: str, workdir: Path
) -> None:
    """What a user of the documentation does: ``swift download``, then ``swift upload``."""
    listed = swift_cli(source, token, "list", "--prefix", image, "exported-images", cwd=workdir)
    assert listed.split() == [f"{image}.vhd", *segments]
    stat = swift_cli(source, token, "stat", "exported-images", f"{image}.vhd", cwd=workdir)
    assert f"Manifest: exported-images/{image}.vhd-" in stat
    swift_cli(source, token, "download", "exported-images", f"{image}.vhd", cwd=workdir)
    size = (workdir / f"{image}.vhd").stat().st_size
    swift_cli(
        target,
        token,
        "upload",
        "--use-slo",
        "--segment-size",
        str(1024 * 1024),  # under the clusters' 2 MiB object cap
        "imported-files",
        f"{image}.vhd",
        cwd=workdir,
    )
    stat = swift_cli(target, token, "stat", "imported-files", f"{image}.vhd", cwd=workdir)
    assert f"Content Length: {size}" in stat
    assert "X-Static-Large-Object: True" in stat


@pytest.mark.parametrize("copy_between_regions", [copy_with_http, copy_with_swift_cli])
def test_the_documented_procedure_end_to_end(
    local_cloud: LocalCloud, copy_between_regions: CopyStep, tmp_path: Path
) -> None:
    # Authenticate and read the catalog.
    account = local_cloud.main
    auth = {
        "auth": {
            "RAX-KSKEY:apiKeyCredentials": {"username": account.username, "apiKey": account.api_key}
        }
    }
    access = requests.post(f"{local_cloud.identity_url}/tokens", json=auth, timeout=10).json()[
        "access"
    ]
    headers = {"X-Auth-Token": access["token"]["id"]}
    servers_dfw = endpoint(access, "cloudServersOpenStack", "DFW")
    images_dfw, images_iad = (
        endpoint(access, "cloudImages", "DFW"),
        endpoint(access, "cloudImages", "IAD"),
    )
    files_dfw, files_iad = (
        endpoint(access, "cloudFiles", "DFW"),
        endpoint(access, "cloudFiles", "IAD"),
    )
    servers_iad = endpoint(access, "cloudServersOpenStack", "IAD")

    # 1. Create an image of the source server.
    server = requests.get(f"{servers_dfw}/servers/detail", headers=headers, timeout=10).json()[
        "servers"
    ][0]
    action = {"createImage": {"name": "Replica Database 3", "metadata": {}}}
    created = requests.post(
        f"{servers_dfw}/servers/{server['id']}/action", json=action, headers=headers, timeout=10
    )
    assert created.status_code == 202
    my_img = created.headers["Location"].rsplit("/", 1)[-1]
    poll(f"{images_dfw}/images/{my_img}", headers, ("active",))

    # 2. Coordinating metadata (a value of this test's own: the cloud outlives the test).
    replica = f"db-replica-{my_img[:8]}"
    tag = [{"op": "add", "path": "/com.mycompany.image-of", "value": replica}]
    tagged = requests.patch(
        f"{images_dfw}/images/{my_img}",
        data=json.dumps(tag),
        headers={**headers, "Content-Type": PATCH},
        timeout=10,
    )
    assert tagged.status_code == 200

    # 3. A container in the source region.
    assert requests.put(
        f"{files_dfw}/exported-images", headers=headers, timeout=10
    ).status_code in (201, 202)

    # 4-5. Export task, polled until it ends.
    export = {
        "type": "export",
        "input": {"receiving_swift_container": "exported-images", "image_uuid": my_img},
    }
    started = requests.post(f"{images_dfw}/tasks", json=export, headers=headers, timeout=10)
    assert started.status_code == 201
    task = poll(f"{images_dfw}/tasks/{started.json()['id']}", headers, ("success", "failure"))
    assert task["status"] == "success", task["message"]
    assert task["result"]["export_location"] == f"exported-images/{my_img}.vhd"

    # The DLO in Swift: a zero-byte manifest and numbered segments.
    listing = requests.get(
        f"{files_dfw}/exported-images?prefix={my_img}.vhd&format=json", headers=headers, timeout=10
    ).json()
    names = [o["name"] for o in listing]
    assert names[0] == f"{my_img}.vhd"
    assert listing[0]["bytes"] == 0
    segments = names[1:]
    assert segments == [f"{my_img}.vhd-{n:05d}" for n in range(1, len(segments) + 1)]
    assert len(segments) >= 3

    # Working between regions (the documentation leaves the tool to the user).
    copy_between_regions(my_img, segments, files_dfw, files_iad, headers["X-Auth-Token"], tmp_path)

    # Working in the target region: import, poll.
    import_body = {
        "type": "import",
        "input": {
            "import_from": f"imported-files/{my_img}.vhd",
            "import_from_format": "vhd",
            "image_properties": {"name": "Replica Database 3"},
        },
    }
    started = requests.post(f"{images_iad}/tasks", json=import_body, headers=headers, timeout=10)
    assert started.status_code == 201
    task = poll(f"{images_iad}/tasks/{started.json()['id']}", headers, ("success", "failure"))
    assert task["status"] == "success", task["message"]
    new_img = task["result"]["image_id"]
    assert new_img != my_img

    # The bytes arrived intact, although the image checksums differ (as documented).
    assert local_cloud.admin.image_content_md5(new_img) == local_cloud.admin.image_content_md5(
        my_img
    )
    source = requests.get(f"{images_dfw}/images/{my_img}", headers=headers, timeout=10).json()
    target = requests.get(f"{images_iad}/images/{new_img}", headers=headers, timeout=10).json()
    assert target["checksum"] != source["checksum"]
    assert target["size"] == source["size"]

    # Re-tag the new image and find it by its property.
    requests.patch(
        f"{images_iad}/images/{new_img}",
        data=json.dumps(tag),
        headers={**headers, "Content-Type": PATCH},
        timeout=10,
    ).raise_for_status()
    found = requests.get(
        f"{images_iad}/images?com.mycompany.image-of={replica}", headers=headers, timeout=10
    ).json()["images"]
    assert [image["id"] for image in found] == [new_img]

    # Boot a server in the target region from the imported image.
    boot = {"server": {"name": "replica-3", "imageRef": new_img, "flavorRef": "general1-2"}}
    booted = requests.post(f"{servers_iad}/servers", json=boot, headers=headers, timeout=10)
    assert booted.status_code == 202
    server = poll(
        f"{servers_iad}/servers/{booted.json()['server']['id']}",
        headers,
        ("ACTIVE", "ERROR"),
        "server",
    )
    assert server["status"] == "ACTIVE"
