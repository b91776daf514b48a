"""Find out what a source object is made of (DLO, SLO or plain) before any byte moves.

A DLO (what an image export writes: a zero-byte ``<uuid>.vhd`` with ``X-Object-Manifest:
<container>/<uuid>.vhd-`` and segments ``<uuid>.vhd-00001``, ...) is only as complete as the
container listing it is served from, and listings are eventually consistent. So its segments
are listed here, checked (numbered contiguously from 1 (or 0) when numbered; bytes adding up
to the manifest's ``Content-Length``), and listed again after a delay while that fails; the
transfer then reads the segment objects themselves, never the DLO.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from imagehop.errors import PreflightError, SourceIncompleteError
from imagehop.object_store import ListedObject, ObjectInfo, ObjectStore
from imagehop.retries import LISTING, give_up
from imagehop.transfer.source_layout import SourceKind, SourceLayout, SourceSegment

#: The listing layer of the retry table (:mod:`imagehop.retries`): listings 10 s apart for
#: about two minutes (a listing can lag an export's last segments by that much). After the
#: last one the error is marked, so the plan task does not list it all over again.
LISTING_ATTEMPTS = 12
LISTING_DELAY_SECONDS = 10.0
_NUMBER = re.compile(r"(\d+)$")


def discover_source(
    store: ObjectStore,
    container: str,
    name: str,
    listing_attempts: int = LISTING_ATTEMPTS,
    listing_delay: float = LISTING_DELAY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> SourceLayout:
    """Describe ``container/name`` in ``store`` as a :class:`SourceLayout`.

    Args:
        store: the source region's object store.
        container: container of the object (for a DLO: of its manifest).
        name: object name.
        listing_attempts: how many times a DLO's segments are listed before giving up.
        listing_delay: seconds between those listings.
        sleep: injectable sleep (tests pass a recorder).

    Returns:
        The layout: kind, total size, content fingerprint and segments in order.

    Raises:
        NotFoundError: the object does not exist.
        SourceIncompleteError: a DLO's listing still had gaps or did not add up after
            ``listing_attempts`` listings (retryable: listings catch up).
        PreflightError: an SLO uses a feature the engine cannot copy (inline data segments).
    """
    info = store.head_object(container, name)
    if info.dlo_manifest is not None:
        return _discover_dlo(store, info, listing_attempts, listing_delay, sleep)
    if info.is_slo:
        return _discover_slo(store, info)
    segment = SourceSegment(container=container, name=name, length=info.size, etag=info.etag)
    return _layout("plain", info, info.etag, [segment] if info.size else [])


def _layout(
    kind: SourceKind, info: ObjectInfo, etag: str, segments: Sequence[SourceSegment]
) -> SourceLayout:
    return SourceLayout(
        kind=kind,
        container=info.container,
        name=info.name,
        size=info.size,
        etag=etag,
        content_type=info.content_type or "application/octet-stream",
        segments=tuple(segments),
    )


def _discover_dlo(
    store: ObjectStore,
    info: ObjectInfo,
    attempts: int,
    delay: float,
    sleep: Callable[[float], None],
) -> SourceLayout:
    segment_container, _, prefix = (info.dlo_manifest or "").partition("/")
    seen: dict[str, ListedObject] = {}
    problem: str | None = "not listed yet"
    for attempt in range(1, max(attempts, 1) + 1):
        # A union of listings: each may miss different recent objects.
        for item in store.list_objects(segment_container, prefix):
            if not (segment_container == info.container and item.name == info.name):
                seen[item.name] = item
        expected = store.head_object(info.container, info.name).size
        listed = [seen[key] for key in sorted(seen)]
        problem = dlo_listing_problem(listed, prefix, expected)
        if problem is None:
            segments = [
                SourceSegment(container=segment_container, name=i.name, length=i.size, etag=i.etag)
                for i in listed
            ]
            fingerprint = _md5_of_md5s(item.etag for item in listed)
            return _layout("dlo", replace(info, size=expected), fingerprint, segments)
        if attempt < attempts:
            sleep(delay)
    error = SourceIncompleteError(
        f"DLO {info.container}/{info.name}: {problem} after {attempts} listings of "
        f"{segment_container}/{prefix}*"
    )
    raise give_up(error, LISTING) if attempts > 1 else error


def dlo_listing_problem(listed: Sequence[ListedObject], prefix: str, expected: int) -> str | None:
    """Why a DLO's segment listing cannot be trusted yet, or None if it can.

    Numbered segments (``<prefix>00001`` ...) must be contiguous from 1 (or 0), and the listed
    bytes must add up to the manifest's ``Content-Length``.
    """
    if not listed:
        return "no segments listed"
    numbers = [_NUMBER.search(item.name[len(prefix) :]) for item in listed]
    if all(numbers):
        values = sorted(int(match.group(1)) for match in numbers if match)
        first = values[0]
        if first not in (0, 1):
            return f"the first segment is number {first}"
        missing = sorted(set(range(first, values[-1] + 1)) - set(values))
        if missing:
            shown = ", ".join(str(n) for n in missing[:5])
            return f"segment(s) {shown} missing"
    total = sum(item.size for item in listed)
    if total != expected:
        return f"listed segments hold {total} bytes, the manifest says {expected}"
    return None


def _discover_slo(store: ObjectStore, info: ObjectInfo) -> SourceLayout:
    entries = store.get_slo_manifest(info.container, info.name)
    segments = [_slo_segment(info, entry) for entry in entries]
    total = sum(segment.length for segment in segments)
    if total != info.size:
        raise SourceIncompleteError(
            f"SLO {info.container}/{info.name}: its manifest holds {total} bytes, "
            f"its Content-Length says {info.size}"
        )
    return _layout("slo", info, info.etag, segments)


def _slo_segment(info: ObjectInfo, entry: dict[str, Any]) -> SourceSegment:
    if "data" in entry or "name" not in entry:
        raise PreflightError(
            f"SLO {info.container}/{info.name} has inline data segments, which imagehop cannot copy"
        )
    container, _, name = str(entry["name"]).lstrip("/").partition("/")
    size = int(entry["bytes"])
    etag = None if entry.get("sub_slo") else str(entry["hash"]).strip('"')
    if entry.get("range"):
        first, last = (int(part) for part in str(entry["range"]).split("-"))
        whole = first == 0 and last == size - 1
        return SourceSegment(
            container=container,
            name=name,
            offset=first,
            length=last - first + 1,
            etag=etag,
            whole=whole,
        )
    return SourceSegment(container=container, name=name, length=size, etag=etag)


def _md5_of_md5s(etags: Any) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for etag in etags:
        digest.update(etag.encode())
    return digest.hexdigest()
