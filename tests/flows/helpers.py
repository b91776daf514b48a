"""What the flow tests read from the local cloud: counts, Swift listings, images, polls."""

from __future__ import annotations

import bisect
import time
from typing import Any

from imagehop.procedure import TransferRequest
from imagehop_sandbox.handle import LocalCloud
from imagehop_sandbox.options import MiB
from tests.support.scripted_clock import FastForwardClock

EXPORTABLE = {
    "os_distro": "ubuntu",
    "os_version": "22.04",
    "vm_mode": "hvm",
    "com.rackspace__1__options": "0",
    "org.openstack__1__os_distro": "com.ubuntu",
}


def new_image(cloud: LocalCloud, disk_bytes: int = 5 * MiB + 4321, **properties: str) -> str:
    """A fresh active, exportable image of the main account in DFW (1 MiB export segments:
    ``disk_bytes`` of about 5 MiB export as seven segments, the last one short: the image
    is a dynamic VHD of the disk, 6 MiB + 4096 bytes)."""
    image = cloud.admin.create_image(
        "DFW",
        cloud.main.tenant_id,
        disk_bytes=disk_bytes,
        min_disk=1,
        properties={**EXPORTABLE, **properties},
    )
    return str(image["id"])


def request_for(image_id: str, **fields: Any) -> TransferRequest:
    return TransferRequest(source_region="DFW", target_region="IAD", image_id=image_id, **fields)


def created(cloud: LocalCloud) -> dict[str, int]:
    """What the cloud created so far: ``{"DFW export_tasks_created": 3, ...}``."""
    return {
        f"{region} {name}": value
        for region, counters in cloud.admin.counts().items()
        for name, value in counters.items()
    }


def objects(cloud: LocalCloud, region: str, container: str, prefix: str = "") -> list[str]:
    """Object names in a container of the main account ([] if it does not exist)."""
    response = cloud.session().storage(
        region, "GET", f"/{container}", params={"format": "json", "prefix": prefix}
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return [item["name"] for item in response.json()]


def image(cloud: LocalCloud, region: str, image_id: str) -> dict[str, Any]:
    response = cloud.session().images(region, "GET", f"/images/{image_id}")
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


class RecordingClock(FastForwardClock):
    """A fast-forward clock that remembers when (real time) it jumped and by how much, so a
    real timestamp (e.g. a poll the local cloud recorded) can be read in clock time."""

    def __init__(self, real_sleep: float = 0.02) -> None:
        super().__init__(real_sleep)
        self._jumps: list[tuple[float, float]] = []  # (real time, offset from then on)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._offset += max(0.0, seconds)
            self._jumps.append((time.time(), self._offset))
        time.sleep(min(max(0.0, seconds), self._real_sleep))

    def clock_time(self, real: float) -> float:
        """The clock's reading at real epoch time ``real``."""
        with self._lock:
            jumps = list(self._jumps)
        index = bisect.bisect_right([moment for moment, _ in jumps], real) - 1
        return real + (jumps[index][1] if index >= 0 else 0.0)
