"""What a source object is made of (pure data, from :func:`.source.discover_source`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

#: ``glance``: a Glance image's data (``GET /v2/images/{id}/file``), from
#: :func:`.glance_source.discover_glance_source`; the others are Swift objects.
SourceKind = Literal["dlo", "slo", "plain", "glance"]
#: The ``container`` of a Glance image's layout and pieces (no Swift container is empty).
GLANCE_CONTAINER = ""


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
    segments' MD5s for a DLO or an SLO (what Swift reports as their ETag), the image's
    ``checksum`` (MD5 of its data) for a Glance image, whose ``name`` is the image id.
    """

    model_config = ConfigDict(frozen=True)

    kind: SourceKind
    container: str
    name: str
    size: int
    etag: str
    content_type: str = "application/octet-stream"
    segments: tuple[SourceSegment, ...]
