"""What a source object is made of (pure data, from :func:`.source.discover_source`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SourceKind = Literal["dlo", "slo", "plain"]


class SourceSegment(BaseModel):
    """A byte range of one source object, in the order the large object serves it.

    ``etag`` is the MD5 of the *whole* object as listed (None when unknown, e.g. a nested SLO);
    ``whole`` says the range covers the entire object, so ``etag`` is also the range's MD5.
    """

    model_config = ConfigDict(frozen=True)

    container: str
    name: str
    offset: int = 0
    length: int
    etag: str | None
    whole: bool = True


class SourceLayout(BaseModel):
    """A source object and its segments (a plain object is its own single segment).

    ``etag`` identifies the content: the object's MD5 for a plain object, the MD5 of the
    segments' MD5s for a DLO or an SLO (what Swift reports as their ETag).
    """

    model_config = ConfigDict(frozen=True)

    kind: SourceKind
    container: str
    name: str
    size: int
    etag: str
    content_type: str = "application/octet-stream"
    segments: tuple[SourceSegment, ...]
