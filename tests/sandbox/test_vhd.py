"""The local cloud's image bytes: deterministic disks, a valid fixed-VHD footer, and the
dynamic VHDs exports are, read back by an independent reader written here from the VHD
specification (and by ``qemu-img`` when it is installed)."""

from __future__ import annotations

import itertools
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagehop_sandbox.vhd import (
    DISK_DIFFERENCING,
    DISK_DYNAMIC,
    FOOTER_SIZE,
    TABLE_OFFSET,
    build_footer,
    check_dynamic_head,
    disk_chunks,
    dynamic_chunks,
    dynamic_size,
    export_chunks,
    image_chunks,
    image_size,
    parse_footer,
)
from tests.sandbox.vhd_reader import read_dynamic

MiB = 1024 * 1024


# -- dynamic VHDs, read back by tests/sandbox/vhd_reader.py -----------------------------------


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


def test_an_image_is_the_dynamic_vhd_of_its_disk() -> None:
    image_id = str(uuid.uuid4())
    content = b"".join(image_chunks("server:a", 70_000, image_id, 1_700_000_000))
    assert len(content) == image_size(70_000)
    parsed = read_dynamic(content)
    assert parsed.disk[:70_000] == b"".join(disk_chunks("server:a", 70_000))
    assert parsed.unique_id == uuid.UUID(image_id).bytes
    footer = parse_footer(content)
    assert footer is not None
    assert (footer.current_size, footer.disk_type, footer.timestamp) == (
        70_144,
        DISK_DYNAMIC,
        1_700_000_000,
    )


def dynamic_of(seed: str, size: int, unique: bytes) -> bytes:
    return b"".join(dynamic_chunks(disk_chunks(seed, size), size, unique, 1_700_000_000))


@pytest.mark.parametrize("size", [512, 70_000, 2 * MiB, 2 * MiB + 1, 5 * MiB + 4321])
def test_a_dynamic_vhd_reads_back_as_its_disk(size: int) -> None:
    unique = uuid.uuid4().bytes
    data = dynamic_of("server:a", size, unique)
    parsed = read_dynamic(data)
    virtual = -(-size // 512) * 512
    assert (parsed.virtual_size, parsed.original_size) == (virtual, virtual)
    assert parsed.creator == b"tap\0"
    assert parsed.unique_id == unique
    assert parsed.block_size == 2 * MiB
    assert parsed.entries == -(-virtual // (2 * MiB))
    disk = b"".join(disk_chunks("server:a", size))
    assert parsed.disk == disk + bytes(virtual - size)
    assert len(data) == dynamic_size(size) > virtual  # physical size over virtual size


def test_a_dynamic_vhd_is_deterministic_and_streamed_block_by_block() -> None:
    unique = uuid.uuid4().bytes
    size = 9 * MiB + 3
    assert dynamic_of("s", size, unique) == dynamic_of("s", size, unique)
    consumed = 0

    def counted() -> Iterator[bytes]:
        nonlocal consumed
        for chunk in disk_chunks("s", size, chunk=64 * 1024):
            consumed += len(chunk)
            yield chunk

    stream = dynamic_chunks(counted(), size, unique, 0)
    first = list(itertools.islice(stream, 5))  # footer copy, header, BAT, bitmap, block 1
    assert len(first[4]) == 2 * MiB
    assert consumed <= 2 * MiB  # only one block of the disk was read
    assert max(len(chunk) for chunk in stream) <= 2 * MiB


def test_a_disk_of_another_length_than_announced_is_an_error() -> None:
    with pytest.raises(ValueError, match="not the 5000 announced"):
        b"".join(dynamic_chunks(disk_chunks("s", 4000), 5000, bytes(16), 0))
    with pytest.raises(ValueError, match="more than the 3000"):
        b"".join(dynamic_chunks(disk_chunks("s", 4000), 3000, bytes(16), 0))


def test_glances_vhd_inspector_recognises_a_dynamic_vhd_not_a_fixed_one() -> None:
    """oslo.utils ``VHDInspector``: ``conectix`` at offset 0, virtual size at offset 40."""
    image_id = str(uuid.uuid4())
    dynamic = dynamic_of("s", 70_000, uuid.UUID(image_id).bytes)
    assert dynamic.startswith(b"conectix")
    assert struct.unpack(">Q", dynamic[40:48])[0] == 70_144
    assert b"".join(image_chunks("s", 70_000, image_id, 0)).startswith(b"conectix")
    fixed = b"".join(disk_chunks("s", 70_000)) + build_footer(70_000, uuid.UUID(image_id).bytes)
    assert not fixed.startswith(b"conectix")


def test_an_export_of_a_fixed_vhd_is_the_dynamic_vhd_of_its_disk() -> None:
    image_id = str(uuid.uuid4())
    disk = b"".join(disk_chunks("s", 3 * MiB + 7))
    fixed = disk + build_footer(len(disk), uuid.UUID(image_id).bytes, 1_700_000_000)
    exported = b"".join(
        export_chunks(iter([fixed]), len(fixed), fixed[:512], fixed[-512:], image_id, 5)
    )
    parsed = read_dynamic(exported)
    assert parsed.disk[: 3 * MiB + 7] == fixed[:-512]
    assert parsed.unique_id == uuid.UUID(image_id).bytes
    footer = parse_footer(exported)
    assert footer is not None
    assert footer.timestamp == 1_700_000_000  # the image's own, not the export's


def test_an_export_passes_a_dynamic_vhd_unchanged_and_wraps_raw_bytes() -> None:
    image_id = str(uuid.uuid4())
    dynamic = dynamic_of("s", 100_000, uuid.uuid4().bytes)
    again = export_chunks(iter([dynamic]), len(dynamic), dynamic[:512], dynamic[-512:], image_id, 0)
    assert b"".join(again) == dynamic
    raw = b"no footer here" * 1000
    wrapped = b"".join(export_chunks(iter([raw]), len(raw), raw[:512], raw[-512:], image_id, 0))
    parsed = read_dynamic(wrapped)
    assert parsed.disk[: len(raw)] == raw
    assert parsed.unique_id == uuid.UUID(image_id).bytes


def test_the_import_check_of_a_dynamic_head() -> None:
    data = dynamic_of("s", 100_000, uuid.uuid4().bytes)
    footer = parse_footer(data)
    assert footer is not None
    assert check_dynamic_head(data[:TABLE_OFFSET], footer) is None
    broken_copy = bytearray(data[:TABLE_OFFSET])
    broken_copy[20] ^= 1
    assert "footer copy" in str(check_dynamic_head(bytes(broken_copy), footer))
    broken_header = bytearray(data[:TABLE_OFFSET])
    broken_header[FOOTER_SIZE + 40] ^= 1
    assert "checksum" in str(check_dynamic_head(bytes(broken_header), footer))
    assert "too short" in str(check_dynamic_head(data[:600], footer))
    no_header = data[:FOOTER_SIZE] + bytes(1024)
    assert "cxsparse" in str(check_dynamic_head(no_header, footer))


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
def test_qemu_img_reads_a_dynamic_vhd(tmp_path: Path) -> None:
    size = 5 * MiB + 4321
    path = tmp_path / "disk.vhd"
    path.write_bytes(dynamic_of("s", size, uuid.uuid4().bytes))
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)], capture_output=True, check=True, text=True
    ).stdout
    assert '"format": "vpc"' in info
    assert f'"virtual-size": {-(-size // 512) * 512}' in info
    raw = tmp_path / "disk.raw"
    subprocess.run(
        ["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(path), str(raw)], check=True
    )
    assert raw.read_bytes()[:size] == b"".join(disk_chunks("s", size))
