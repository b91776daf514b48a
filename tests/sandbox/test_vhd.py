"""The local cloud's image bytes: deterministic disks and a valid fixed-VHD footer."""

from __future__ import annotations

import uuid

import pytest

from imagehop_sandbox.vhd import (
    DISK_DIFFERENCING,
    DISK_DYNAMIC,
    FOOTER_SIZE,
    build_footer,
    disk_chunks,
    image_chunks,
    parse_footer,
)


def test_footer_round_trips_size_type_and_id() -> None:
    unique = uuid.uuid4().bytes
    footer = build_footer(3 * 1024 * 1024 + 7, unique, disk_type=DISK_DYNAMIC)
    parsed = parse_footer(b"disk bytes" + footer)
    assert len(footer) == FOOTER_SIZE
    assert footer.startswith(b"conectix")
    assert parsed is not None
    assert (parsed.current_size, parsed.original_size) == (3 * 1024 * 1024 + 7,) * 2
    assert parsed.disk_type == DISK_DYNAMIC
    assert parsed.unique_id == unique
    assert parsed.creator_application == b"tap\0"


@pytest.mark.parametrize("offset", [0, 9, 48, 70, 511])
def test_any_flipped_byte_invalidates_the_footer(offset: int) -> None:
    footer = bytearray(build_footer(4096, uuid.uuid4().bytes))
    footer[offset] ^= 0x01
    assert parse_footer(bytes(footer)) is None


def test_data_without_a_footer_is_not_a_vhd() -> None:
    assert parse_footer(b"x" * 4096) is None
    assert parse_footer(b"conectix") is None


def test_zero_id_and_differencing_disks_are_reported() -> None:
    parsed = parse_footer(build_footer(4096, bytes(16), disk_type=DISK_DIFFERENCING))
    assert parsed is not None
    assert parsed.has_zero_id
    assert parsed.disk_type == DISK_DIFFERENCING


def test_disk_bytes_are_deterministic_per_seed_and_exactly_sized() -> None:
    size = 2 * 1024 * 1024 + 5
    first = b"".join(disk_chunks("server:a", size))
    assert len(first) == size
    assert first == b"".join(disk_chunks("server:a", size))
    assert first != b"".join(disk_chunks("server:b", size))


def test_an_image_is_the_disk_followed_by_its_footer() -> None:
    image_id = str(uuid.uuid4())
    content = b"".join(image_chunks("server:a", 70_000, image_id, 1_700_000_000))
    assert content[:-FOOTER_SIZE] == b"".join(disk_chunks("server:a", 70_000))
    footer = parse_footer(content)
    assert footer is not None
    assert footer.current_size == 70_000
    assert footer.unique_id == uuid.UUID(image_id).bytes
