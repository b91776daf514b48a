"""Glance's check that image bytes match their ``disk_format`` (``require_image_format_match``,
on by default), as ``glance/location.py`` applies oslo.utils' format inspectors to an upload or
an import into an image whose ``container_format`` is ``bare``.

The format is recognised from the first bytes (the inspectors' magic numbers): ``qcow2``
(``QFI\\xfb``), ``vhd`` (``conectix`` at offset 0: a *dynamic* VHD; a fixed VHD has its footer
only at the end, so it reads as ``raw``), ``vhdx``, ``vmdk``, ``vdi``, ``qed``, ``luks``,
``iso``, ``gpt`` (an MBR signature), else ``raw``. The rule: the same format as
``disk_format`` passes (``virtual_size`` from its header where the sandbox reads it); bytes
read as ``raw`` pass for a format no inspector knows (``ami``, ``ari``, ``aki``, ``ploop``);
``disk_format: raw`` takes anything (``virtual_size`` = the byte count); anything else is
refused: ``Image disk_format <declared> does not match stream data <found>``. Other container
formats (``ovf``, ``ova``, ...) are not inspected.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

HEAD_BYTES = 64 * 1024
INSPECTABLE = frozenset({"raw", "qcow2", "vhd", "vhdx", "vmdk", "vdi", "qed", "iso", "gpt", "luks"})


class FormatMismatch(ValueError):
    """The bytes are not what the image's ``disk_format`` says (Glance's InvalidImageData)."""


class Head:
    """Keeps the first :data:`HEAD_BYTES` of a stream that passes through :meth:`watch`."""

    def __init__(self) -> None:
        self.data = b""

    def watch(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if len(self.data) < HEAD_BYTES:
                self.data += chunk[: HEAD_BYTES - len(self.data)]
            yield chunk


def detect(head: bytes) -> str:
    """The format an inspector recognises in the first bytes, ``raw`` when none does."""
    if head.startswith(b"QFI\xfb"):
        return "qcow2"
    if head.startswith(b"QED\x00"):
        return "qed"
    if head.startswith(b"conectix"):
        return "vhd"
    if head.startswith(b"vhdxfile"):
        return "vhdx"
    if head.startswith(b"KDMV") or head.startswith(b"# Disk DescriptorFile"):
        return "vmdk"
    if head[:6] == b"LUKS\xba\xbe":
        return "luks"
    if len(head) >= 0x44 and struct.unpack("<I", head[0x40:0x44])[0] == 0xBEDA107F:
        return "vdi"
    if head[32 * 1024 + 1 : 32 * 1024 + 6] in (b"CD001", b"NSR02", b"NSR03"):
        return "iso"
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        return "gpt"
    return "raw"


def virtual_size(found: str, head: bytes, size: int) -> int | None:
    """The disk's size its header states (raw: the byte count); None where not read here."""
    if found == "raw":
        return size
    if found == "qcow2" and len(head) >= 32:
        return int(struct.unpack(">Q", head[24:32])[0])
    if found == "vhd" and len(head) >= 48:
        return int(struct.unpack(">Q", head[40:48])[0])
    return None


def check_format(
    disk_format: str | None, container_format: str | None, head: bytes, size: int
) -> int | None:
    """Glance's rule for bytes arriving in an image; the ``virtual_size``, or
    :class:`FormatMismatch`."""
    if container_format != "bare":
        return None
    found = detect(head)
    if found == disk_format:
        return virtual_size(found, head, size)
    if found == "raw" and disk_format not in INSPECTABLE:
        return None
    if disk_format == "raw":
        return size
    raise FormatMismatch(f"Image disk_format {disk_format} does not match stream data {found}")
