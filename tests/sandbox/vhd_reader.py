"""An independent reader of dynamic VHDs for the tests, written from the VHD specification
(not from ``imagehop_sandbox.vhd``): it asserts the structure and returns the virtual disk."""

from __future__ import annotations

import struct
from dataclasses import dataclass


def ones_complement_sum(data: bytes, checksum_at: int) -> int:
    zeroed = data[:checksum_at] + bytes(4) + data[checksum_at + 4 :]
    return (~sum(zeroed)) & 0xFFFFFFFF


@dataclass
class Dynamic:
    virtual_size: int
    original_size: int
    creator: bytes
    unique_id: bytes
    block_size: int
    entries: int
    disk: bytes  # the virtual disk's bytes, unallocated blocks read as zeros


def read_dynamic(data: bytes) -> Dynamic:
    head, foot = data[:512], data[-512:]
    assert head == foot, "the footer copy at offset 0 differs from the footer"
    assert foot[:8] == b"conectix"
    assert struct.unpack(">I", foot[64:68])[0] == ones_complement_sum(foot, 64)
    assert struct.unpack(">I", foot[60:64])[0] == 3, "disk type is not dynamic"
    assert struct.unpack(">Q", foot[16:24])[0] == 512, "data offset is not 512"
    original, current = struct.unpack(">QQ", foot[40:56])
    header = data[512:1536]
    assert header[:8] == b"cxsparse"
    assert struct.unpack(">Q", header[8:16])[0] == 0xFFFFFFFFFFFFFFFF
    table_offset = struct.unpack(">Q", header[16:24])[0]
    entries, block_size, checksum = struct.unpack(">III", header[28:40])
    assert checksum == ones_complement_sum(header, 36)
    assert entries * block_size >= current
    bitmap_bytes = -(-(block_size // 512 // 8) // 512) * 512
    table = struct.unpack(f">{entries}I", data[table_offset : table_offset + 4 * entries])
    disk = bytearray()
    for entry in table:
        if entry == 0xFFFFFFFF:
            disk += bytes(block_size)
            continue
        start = entry * 512
        bitmap = data[start : start + bitmap_bytes]
        block = data[start + bitmap_bytes : start + bitmap_bytes + block_size]
        assert len(block) == block_size, "a block runs past the end of the file"
        assert start + bitmap_bytes + block_size <= len(data) - 512, "a block overlaps the footer"
        for sector in range(block_size // 512):  # a clear bit reads as zeros
            if not bitmap[sector // 8] & (0x80 >> (sector % 8)):
                block = block[: sector * 512] + bytes(512) + block[(sector + 1) * 512 :]
        disk += block
    return Dynamic(
        current, original, foot[28:32], foot[68:84], block_size, entries, bytes(disk[:current])
    )
