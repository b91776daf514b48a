"""Image bytes of the local cloud: deterministic server disks plus a 512-byte VHD footer.

A *fixed* VHD is the raw disk followed by a footer, so every image here is a valid fixed VHD:
``disk bytes + footer(current_size=len(disk))``. The import task reads the footer back to
validate what it is given (cookie ``conectix``, checksum, disk type, UUID, virtual size).
"""

from __future__ import annotations

import random
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

FOOTER_SIZE = 512
COOKIE = b"conectix"
DISK_FIXED = 2
DISK_DYNAMIC = 3
DISK_DIFFERENCING = 4
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z, the VHD timestamp origin
CHUNK = 1024 * 1024

# cookie, features, version, data offset, timestamp, creator app, creator version,
# creator host OS, original size, current size, geometry (C, H, S), disk type, checksum,
# unique id, saved state; then 427 reserved bytes.
_LAYOUT = struct.Struct(">8sIIQI4sI4sQQHBBII16sB")


@dataclass(frozen=True)
class Footer:
    current_size: int
    original_size: int
    disk_type: int
    unique_id: bytes
    creator_application: bytes

    @property
    def has_zero_id(self) -> bool:
        return self.unique_id == bytes(16)


def _checksum(data: bytes) -> int:
    return ~sum(data) & 0xFFFFFFFF


def _geometry(size: int) -> tuple[int, int, int]:
    """CHS geometry of the VHD spec's algorithm (capped at its maximum)."""
    sectors = min(size // 512, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        per_track, heads = 255, 16
        return min(sectors // (per_track * heads), 65535), heads, per_track
    per_track = 17
    cyl_heads = sectors // per_track
    heads = max((cyl_heads + 1023) // 1024, 4)
    if cyl_heads >= heads * 1024 or heads > 16:
        per_track, heads = 31, 16
        cyl_heads = sectors // per_track
    if cyl_heads >= heads * 1024:
        per_track, heads = 63, 16
        cyl_heads = sectors // per_track
    return cyl_heads // heads, heads, per_track


def build_footer(
    size: int,
    unique_id: bytes,
    timestamp: float = VHD_EPOCH,
    disk_type: int = DISK_FIXED,
) -> bytes:
    """A footer for a disk of ``size`` bytes (512 bytes, valid checksum)."""
    cylinders, heads, sectors = _geometry(size)
    fields = [
        COOKIE,
        2,
        0x00010000,
        0xFFFFFFFFFFFFFFFF if disk_type == DISK_FIXED else 512,
        max(int(timestamp) - VHD_EPOCH, 0) & 0xFFFFFFFF,
        b"tap\0",
        0x00010003,
        b"Lnux",
        size,
        size,
        cylinders,
        heads,
        sectors,
        disk_type,
        0,
        unique_id,
        0,
    ]
    body = _LAYOUT.pack(*fields).ljust(FOOTER_SIZE, b"\0")
    fields[14] = _checksum(body)
    return _LAYOUT.pack(*fields).ljust(FOOTER_SIZE, b"\0")


def parse_footer(data: bytes) -> Footer | None:
    """The footer in the last 512 bytes of ``data``; None if missing or corrupt."""
    if len(data) < FOOTER_SIZE:
        return None
    raw = data[-FOOTER_SIZE:]
    values = _LAYOUT.unpack(raw[: _LAYOUT.size])
    if values[0] != COOKIE:
        return None
    zeroed = raw[:64] + b"\0\0\0\0" + raw[68:]
    if _checksum(zeroed) != values[14]:
        return None
    return Footer(
        current_size=values[9],
        original_size=values[8],
        disk_type=values[13],
        unique_id=values[15],
        creator_application=values[5],
    )


def disk_chunks(seed: str, size: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """Deterministic pseudo-random disk bytes; chunk ``i`` depends on ``seed`` and ``i`` only."""
    for index, offset in enumerate(range(0, size, chunk)):
        yield random.Random(f"{seed}:{index}").randbytes(min(chunk, size - offset))


def image_chunks(seed: str, disk_size: int, image_id: str, timestamp: float) -> Iterator[bytes]:
    """The content of an image of a disk: the disk's bytes, then a fixed-VHD footer."""
    yield from disk_chunks(seed, disk_size)
    yield build_footer(disk_size, uuid.UUID(image_id).bytes, timestamp)
