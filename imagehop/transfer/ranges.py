"""Where a segment's source pieces are read from: the one seam between the engine and its
sources, so that :func:`~imagehop.transfer.engine.copy_plan` stays the one copy loop.

A :class:`RangeSource` opens one :class:`~imagehop.transfer.plan.Piece` as a
:class:`~imagehop.object_store.RangeReader`: one attempt, checked to be exactly the requested
range and, when asked (``check_identity``), of the same source the plan was made from. Two
kinds exist:

* :class:`SwiftRanges`: a source region's object store (DLO, SLO or plain object); the
  identity is the object's ETag as listed;
* :class:`GlanceRanges`: a Glance image read by ranged ``GET /v2/images/{id}/file``; the
  identity is the image's ``checksum``, which Glance sends as ``Content-MD5``. Each worker
  thread gets its own client (:meth:`~imagehop.glance.GlanceImages.clone`).

:func:`range_source` adapts what a caller passes (a store, a Glance client, or a ready
source) and refuses, before any side effect, a source of the wrong kind for the plan.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from imagehop.errors import ConfigurationError
from imagehop.glance import GlanceImages
from imagehop.object_store import ObjectStore, RangeReader
from imagehop.transfer.plan import Piece
from imagehop.transfer.source_layout import SourceKind


@runtime_checkable
class RangeSource(Protocol):
    """Opens the source bytes of one piece (see the module docstring)."""

    #: Which layouts it reads: ``"glance"`` or ``"swift"`` (DLO, SLO, plain objects).
    reads: str

    def open_piece(self, piece: Piece, chunk_size: int, check_identity: bool) -> RangeReader:
        """Start reading ``piece``; one attempt, checked as the module docstring says."""
        ...


class SwiftRanges:
    """Pieces of objects in a source region's Swift."""

    reads = "swift"

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def open_piece(self, piece: Piece, chunk_size: int, check_identity: bool) -> RangeReader:
        return self.store.open_range(
            piece.container,
            piece.name,
            piece.offset,
            piece.length,
            chunk_size,
            expect_etag=piece.source_etag if check_identity else None,
        )


class GlanceRanges:
    """Ranges of a Glance image's data; one client per worker thread."""

    reads = "glance"

    def __init__(self, images: GlanceImages) -> None:
        self._images = images
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[GlanceImages] = []

    def _client(self) -> GlanceImages:
        client: GlanceImages | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._images.clone()
            with self._lock:
                self._clients.append(client)
        return client

    def open_piece(self, piece: Piece, chunk_size: int, check_identity: bool) -> RangeReader:
        return self._client().open_range(
            piece.name,
            piece.offset,
            piece.length,
            expect_checksum=piece.source_etag if check_identity else None,
        )

    def close(self) -> None:
        """Close the workers' clients (their pooled connections)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


Source = ObjectStore | GlanceImages | RangeSource


def range_source(source: Source, kind: SourceKind | None = None) -> RangeSource:
    """The :class:`RangeSource` for ``source``; with ``kind`` (the plan's source kind), check
    that it can read that layout.

    Raises:
        ConfigurationError: a Glance image's plan with an object store, or the reverse.
    """
    if isinstance(source, ObjectStore):
        adapted: RangeSource = SwiftRanges(source)
    elif isinstance(source, GlanceImages):
        adapted = GlanceRanges(source)
    else:
        adapted = source
    wanted = None if kind is None else ("glance" if kind == "glance" else "swift")
    if wanted is not None and adapted.reads != wanted:
        needs = "the source region's GlanceImages" if wanted == "glance" else "its ObjectStore"
        raise ConfigurationError(
            f"the plan copies a {kind} source but was given a source that reads "
            f"{adapted.reads}: pass {needs}"
        )
    return adapted


@contextmanager
def opened(source: Source, kind: SourceKind | None = None) -> Iterator[RangeSource]:
    """:func:`range_source` for the duration of a copy; the worker clients it made for a
    Glance client are closed at the end (a ready :class:`RangeSource` is left open)."""
    adapted = range_source(source, kind)
    try:
        yield adapted
    finally:
        if adapted is not source and isinstance(adapted, GlanceRanges):
            adapted.close()


__all__ = [
    "GlanceRanges",
    "RangeSource",
    "Source",
    "SwiftRanges",
    "opened",
    "range_source",
]
