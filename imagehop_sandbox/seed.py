"""What a new local cloud contains: public base images, a licence-restricted private image and
an ACTIVE demo server in ``DFW`` (the thing to copy to ``IAD``).

Seeding runs once per state folder (the ids are kept in the database under ``seed``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import Any

from imagehop_sandbox.cloud import Cloud, user_id
from imagehop_sandbox.content import store_content
from imagehop_sandbox.info import REGIONS
from imagehop_sandbox.models import ImageRecord, ServerRecord
from imagehop_sandbox.vhd import image_chunks, image_size

SEED_KEY = "seed"
CLOUD_OWNER = "rackspace"
SEED_DISK_BYTES = 1024 * 1024
DEMO_SERVER_NAME = "demo-web-1"
DEMO_FLAVOR = "general1-2"
BASE_IMAGE_NAME = "Ubuntu 22.04 LTS (Jammy Jellyfish) (PVHVM)"
LICENSED_IMAGE_NAME = "win2019-app-snapshot"

BASE_PROPERTIES = {
    "image_type": "base",
    "vm_mode": "hvm",
    "os_type": "linux",
    "os_distro": "ubuntu",
    "os_version": "22.04",
    "auto_disk_config": "True",
    "cache_in_nova": "True",
    "flavor_classes": "*,!onmetal",
    "com.rackspace__1__options": "0",
    "com.rackspace__1__release_id": "1000",
    "com.rackspace__1__build_managed": "1",
    "com.rackspace__1__visible_core": "1",
    "org.openstack__1__os_distro": "com.ubuntu",
    "org.openstack__1__os_version": "22.04",
    "org.openstack__1__architecture": "x64",
}
LICENSED_PROPERTIES = {
    "image_type": "snapshot",
    "vm_mode": "hvm",
    "os_type": "windows",
    "os_distro": "windows",
    "os_version": "2019",
    "com.rackspace__1__options": "1",
    "org.openstack__1__os_distro": "com.microsoft.server",
    "org.openstack__1__os_version": "2019",
    "org.openstack__1__architecture": "x64",
}


def seed(cloud: Cloud) -> dict[str, dict[str, str]]:
    """Create the seed data unless it exists; returns the ids per region."""
    existing: dict[str, dict[str, str]] | None = cloud.store.get_meta(SEED_KEY)
    if existing is not None:
        return existing
    main = cloud.info.accounts[0]
    ids: dict[str, dict[str, str]] = {}
    for region in REGIONS:
        base = _image(cloud, region, BASE_IMAGE_NAME, CLOUD_OWNER, "public", BASE_PROPERTIES)
        ids[region] = {"base_image": base.id}
    licensed = _image(
        cloud, "DFW", LICENSED_IMAGE_NAME, main.tenant_id, "private", LICENSED_PROPERTIES
    )
    base_dfw = ImageRecord.load(cloud.store, ids["DFW"]["base_image"])
    assert base_dfw is not None
    server = _demo_server(cloud, base_dfw, main.tenant_id, user_id(main.username))
    ids["DFW"].update(licensed_image=licensed.id, demo_server=server.id)
    cloud.store.set_meta(SEED_KEY, ids)
    return ids


def _image(
    cloud: Cloud,
    region: str,
    name: str,
    owner: str,
    visibility: str,
    properties: dict[str, str],
) -> ImageRecord:
    image_id = str(uuid.uuid4())
    now = time.time()
    content = store_content(
        cloud.service_account(region),
        image_id,
        image_chunks(f"seed:{image_id}", SEED_DISK_BYTES, image_id, now),
        image_size(SEED_DISK_BYTES),
        cloud.options,
    )
    image = ImageRecord(
        image_id,
        region,
        name=name,
        owner=owner,
        status="active",
        visibility=visibility,
        min_disk=20,
        min_ram=512,
        properties=dict(properties),
        created_at=now,
        updated_at=now,
        content=asdict(content),
        origin={"kind": "seed"},
    )
    image.save(cloud.store)
    return image


def _demo_server(cloud: Cloud, base: ImageRecord, tenant: str, user: str) -> ServerRecord:
    server_id = str(uuid.uuid4())
    now = time.time()
    properties: dict[str, Any] = {k: v for k, v in base.properties.items() if k != "image_type"}
    server = ServerRecord(
        server_id,
        base.region,
        tenant_id=tenant,
        user_id=user,
        name=DEMO_SERVER_NAME,
        image_id=base.id,
        flavor_id=DEMO_FLAVOR,
        created_at=now,
        updated_at=now,
        ready_at=now,
        disk_seed=f"server:{server_id}",
        disk_bytes=cloud.options.server_disk_bytes,
        image_properties=properties,
        min_ram=base.min_ram,
        address="10.1.0.10",
    )
    server.save(cloud.store)
    return server
