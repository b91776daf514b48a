"""Image bytes of the local cloud: deterministic server disks, as dynamic VHDs.

A *fixed* VHD is the raw disk followed by a 512-byte footer (:func:`build_footer`).

A *dynamic* VHD, what a Rackspace export is (creator application ``tap``, as XenServer writes
it), is laid out as the VHD specification says::

    footer copy (512, data offset 512) | dynamic header "cxsparse" (1024) | BAT (padded to 512)
    | per block: sector bitmap (512) + BLOCK_SIZE data | footer (512)

:func:`dynamic_chunks` streams one from a stream of disk bytes with bounded memory (one block
at a time) and deterministically; every block is allocated (a 2 MiB block of zeros included),
so the physical size (:func:`dynamic_size`) always exceeds the virtual size. The virtual size is
the disk size rounded up to whole 512-byte sectors (the tail of the last sector is zeros), as a
disk is made of sectors.

Every image the local cloud makes (seeded, snapshots, admin-made: :func:`image_chunks`) is such
a dynamic VHD, so an export (a copy of the stored bytes into Cloud Files) is one, as Rackspace's
exports are, and a transfer's target holds the very bytes of the source. Real Rackspace keeps a
snapshot as a VHD chain and coalesces it into one dynamic VHD on export; a chain of one is what
is stored here. An image imported from a fixed VHD keeps those bytes, and its export is
converted to a dynamic VHD (:func:`export_chunks`), as Rackspace rewrites headers on export.

Glance's format inspector (oslo.utils ``VHDInspector``) recognises a
dynamic VHD by ``conectix`` at offset 0 and reads the virtual size at offset 40 of that copy.

The import task reads the footer at the end to validate what it is given (cookie ``conectix``,
checksum, disk type, UUID, virtual size), which works for fixed and dynamic VHDs alike, and for
a dynamic one also checks the footer copy and the dynamic header (:func:`check_dynamic_head`).
"""

from __future__ import annotations

import random
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

FOOTER_SIZE = 512
COOKIE = b"conectix"
DISK_FIXED = 2
DISK_DYNAMIC = 3
DISK_DIFFERENCING = 4
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z, the VHD timestamp origin
CHUNK = 1024 * 1024
SECTOR = 512
BLOCK_SIZE = 2 * 1024 * 1024
HEADER_SIZE = 1024
HEADER_COOKIE = b"cxsparse"
TABLE_OFFSET = FOOTER_SIZE + HEADER_SIZE
BITMAP_SIZE = SECTOR  # BLOCK_SIZE / SECTOR sectors, one bit each, padded to a whole sector
UNUSED_ENTRY = 0xFFFFFFFF

# cookie, features, version, data offset, timestamp, creator app, creator version,
# creator host OS, original size, current size, geometry (C, H, S), disk type, checksum,
# unique id, saved state; then 427 reserved bytes.
_LAYOUT = struct.Struct(">8sIIQI4sI4sQQHBBII16sB")
# cookie, data offset, table offset, header version, max table entries, block size, checksum,
# parent unique id, parent timestamp, reserved; then the parent's name, 8 locators, reserved.
_HEADER = struct.Struct(">8sQQIIII16sII")


@dataclass(frozen=True)
class Footer:
    current_size: int
    original_size: int
    disk_type: int
    unique_id: bytes
    creator_application: bytes
    data_offset: int = 0xFFFFFFFFFFFFFFFF
    timestamp: int = 0

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
    return read_footer(data[-FOOTER_SIZE:])


def read_footer(raw: bytes) -> Footer | None:
    """The footer (or footer copy) in exactly these 512 bytes; None if not a valid one."""
    if len(raw) != FOOTER_SIZE:
        return None
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
        data_offset=values[3],
        timestamp=values[4] + VHD_EPOCH,
    )


def disk_chunks(seed: str, size: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """Deterministic pseudo-random disk bytes; chunk ``i`` depends on ``seed`` and ``i`` only."""
    for index, offset in enumerate(range(0, size, chunk)):
        yield random.Random(f"{seed}:{index}").randbytes(min(chunk, size - offset))


def image_chunks(seed: str, disk_size: int, image_id: str, timestamp: float) -> Iterator[bytes]:
    """The content of an image of a disk: the dynamic VHD of the disk's bytes (its length is
    :func:`image_size`), the image id as the VHD's unique id."""
    return dynamic_chunks(
        disk_chunks(seed, disk_size), disk_size, uuid.UUID(image_id).bytes, timestamp
    )


def image_size(disk_size: int) -> int:
    """The length of :func:`image_chunks` for a disk of ``disk_size`` bytes."""
    return dynamic_size(disk_size)


def sector_size(disk_size: int) -> int:
    """The virtual size of a dynamic VHD of a disk of ``disk_size`` bytes (whole sectors)."""
    return -(-disk_size // SECTOR) * SECTOR


def _table_entries(virtual: int) -> int:
    return -(-virtual // BLOCK_SIZE)


def _table_bytes(entries: int) -> int:
    return -(-(entries * 4) // SECTOR) * SECTOR


def dynamic_size(disk_size: int) -> int:
    """The physical size (bytes) of the dynamic VHD :func:`dynamic_chunks` makes of a disk."""
    entries = _table_entries(sector_size(disk_size))
    return TABLE_OFFSET + _table_bytes(entries) + entries * (BITMAP_SIZE + BLOCK_SIZE) + FOOTER_SIZE


def build_dynamic_header(entries: int) -> bytes:
    """The 1024-byte dynamic disk header (``cxsparse``) for a BAT of ``entries`` entries."""
    fields: list[object] = [
        HEADER_COOKIE,
        0xFFFFFFFFFFFFFFFF,
        TABLE_OFFSET,
        0x00010000,
        entries,
        BLOCK_SIZE,
        0,
        bytes(16),
        0,
        0,
    ]
    body = _HEADER.pack(*fields).ljust(HEADER_SIZE, b"\0")
    fields[6] = _checksum(body)
    return _HEADER.pack(*fields).ljust(HEADER_SIZE, b"\0")


def check_dynamic_head(head: bytes, footer: Footer) -> str | None:
    """What is wrong with the first ``TABLE_OFFSET`` bytes of a dynamic VHD whose footer is
    ``footer``; None when the footer copy and the dynamic header are sound."""
    if len(head) < TABLE_OFFSET:
        return "the file is too short for a dynamic VHD header"
    copy = read_footer(head[:FOOTER_SIZE])
    if copy is None or copy != footer:
        return "the footer copy at the start of the file does not match the footer"
    if footer.data_offset != FOOTER_SIZE:
        return f"the footer's data offset is {footer.data_offset}, not {FOOTER_SIZE}"
    raw = head[FOOTER_SIZE:TABLE_OFFSET]
    values = _HEADER.unpack(raw[: _HEADER.size])
    if values[0] != HEADER_COOKIE:
        return "the dynamic disk header has no 'cxsparse' cookie"
    if _checksum(raw[:36] + b"\0\0\0\0" + raw[40:]) != values[6]:
        return "the dynamic disk header's checksum is wrong"
    entries, block = values[4], values[5]
    if block == 0 or block % SECTOR or entries * block < footer.current_size:
        return "the dynamic disk header's block table does not cover the disk"
    return None


def dynamic_chunks(
    disk: Iterable[bytes], disk_size: int, unique_id: bytes, timestamp: float
) -> Iterator[bytes]:
    """A dynamic VHD (creator ``tap``) of the ``disk_size`` bytes that ``disk`` yields.

    Streams: holds at most one block of the disk at a time. Every block is allocated, in
    order, so the BAT is known before the data. Raises ValueError when ``disk`` yields more or
    fewer bytes than ``disk_size``.
    """
    virtual = sector_size(disk_size)
    entries = _table_entries(virtual)
    footer = build_footer(virtual, unique_id, timestamp, DISK_DYNAMIC)
    yield footer
    yield build_dynamic_header(entries)
    first = (TABLE_OFFSET + _table_bytes(entries)) // SECTOR
    per_block = (BITMAP_SIZE + BLOCK_SIZE) // SECTOR
    table = struct.pack(f">{entries}I", *(first + n * per_block for n in range(entries)))
    yield table.ljust(_table_bytes(entries), b"\xff")
    bitmap = b"\xff" * BITMAP_SIZE
    pending = bytearray()
    seen = 0
    emitted = 0
    for chunk in disk:
        seen += len(chunk)
        if seen > disk_size:
            raise ValueError(f"the disk yields more than the {disk_size} bytes announced")
        pending += chunk
        while len(pending) >= BLOCK_SIZE:
            yield bitmap
            yield bytes(pending[:BLOCK_SIZE])
            del pending[:BLOCK_SIZE]
            emitted += 1
    if seen != disk_size:
        raise ValueError(f"the disk yields {seen} bytes, not the {disk_size} announced")
    if emitted < entries:
        yield bitmap
        yield bytes(pending).ljust(BLOCK_SIZE, b"\0")
    yield footer


def _first(chunks: Iterable[bytes], count: int) -> Iterator[bytes]:
    """The first ``count`` bytes of a stream (the rest is read and dropped)."""
    left = count
    for chunk in chunks:
        if left > 0:
            yield chunk[:left]
        left -= min(left, len(chunk))


def export_chunks(
    content: Iterable[bytes],
    size: int,
    head: bytes,
    tail: bytes,
    image_id: str,
    timestamp: float,
) -> Iterator[bytes]:
    """What an export writes for image bytes ``content`` (``size`` bytes, first bytes ``head``,
    last 512 bytes ``tail``): always a dynamic VHD, as Rackspace's exports are.

    A fixed VHD becomes the dynamic VHD of its disk, keeping its unique id and timestamp; bytes
    that are already a dynamic (or differencing) VHD pass unchanged; bytes with no VHD footer
    are taken as a raw disk, with the image's id as the unique id.
    """
    if head.startswith(COOKIE):
        return iter(content)
    footer = parse_footer(tail) if size >= FOOTER_SIZE else None
    if footer is not None and footer.disk_type == DISK_FIXED:
        disk_size = size - FOOTER_SIZE
        return dynamic_chunks(
            _first(content, disk_size), disk_size, footer.unique_id, footer.timestamp
        )
    return dynamic_chunks(content, size, uuid.UUID(image_id).bytes, timestamp)
