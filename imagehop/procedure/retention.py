"""Which images are copies imagehop made of a server, and which of them to delete.

A *copy of server S* in the target region is an image that imagehop's own steps marked, all
markers present and consistent (:func:`is_copy_of`):

* it belongs to the target account and is ``active``, with a readable ``created_at``;
* :data:`~imagehop.procedure.request.SERVER_PROPERTY` names S (written at tag time of every
  server transfer);
* :data:`~imagehop.procedure.request.COORDINATING_KEY_PROPERTY` names the coordinating key,
  and that key holds the coordinating value (replicate-server's default: S);
* it carries a run key.

An image that lacks any of them (a look-alike of the same name, a property a user set by
hand, another account's image) is never a copy, so it is never deleted. A *snapshot imagehop
made* for a copy (:func:`is_snapshot_for`) carries the same run key and S in both
:data:`~imagehop.procedure.request.SNAPSHOT_PROPERTY` (set only by imagehop's createImage call)
and ``SERVER_PROPERTY``, and belongs to the source account.

Copies are ordered newest first by ``created_at`` (the Images API's, to the second), then by
run key (replicate-server's carry the run's start time), then by id: a stable order.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagehop.clock import parse_timestamp
from imagehop.image import Image
from imagehop.procedure.request import (
    COORDINATING_KEY_PROPERTY,
    RUN_KEY_PROPERTY,
    SERVER_PROPERTY,
    SNAPSHOT_PROPERTY,
)


def created_epoch(image: Image) -> float | None:
    """``created_at`` in epoch seconds; None if the image has none or it is unreadable."""
    if not image.created_at:
        return None
    try:
        return parse_timestamp(image.created_at)
    except ValueError:
        return None


def is_copy_of(
    image: Image, server_id: str, coordinating_key: str, coordinating_value: str, owner: str
) -> bool:
    """Whether ``image`` is a copy imagehop made of ``server_id`` (every marker consistent)."""
    return (
        image.owner == owner
        and image.status == "active"
        and created_epoch(image) is not None
        and image.value_of(SERVER_PROPERTY) == server_id
        and image.value_of(COORDINATING_KEY_PROPERTY) == coordinating_key
        and image.value_of(coordinating_key) == coordinating_value
        and isinstance(image.value_of(RUN_KEY_PROPERTY), str)
        and bool(image.value_of(RUN_KEY_PROPERTY))
    )


def is_snapshot_for(image: Image, server_id: str, run_key: str, owner: str) -> bool:
    """Whether ``image`` is a snapshot of ``server_id`` that imagehop made for ``run_key``."""
    return (
        image.owner == owner
        and image.value_of(SNAPSHOT_PROPERTY) == server_id
        and image.value_of(SERVER_PROPERTY) == server_id
        and image.value_of(RUN_KEY_PROPERTY) == run_key
        and image.value_of("instance_uuid") in (None, server_id)
    )


def newest_first(copies: Iterable[Image]) -> list[Image]:
    """Copies by creation time, newest first; ties by run key, then id (both descending)."""

    def order(image: Image) -> tuple[float, str, str]:
        return (created_epoch(image) or 0.0, str(image.value_of(RUN_KEY_PROPERTY)), image.id)

    return sorted(copies, key=order, reverse=True)


def split_by_age(
    copies: Iterable[Image], keep: int, current_id: str | None
) -> tuple[list[Image], list[Image]]:
    """(kept, to delete), each newest first: the newest ``keep`` copies are kept, and the copy
    ``current_id`` (this run's) always is, counted among them. Without ``current_id`` (a dry
    run: the new copy does not exist yet) the newest ``keep - 1`` are kept, leaving room.

    Raises:
        ValueError: ``keep`` is below 1.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    ordered = newest_first(copies)
    current = [image for image in ordered if image.id == current_id]
    others = [image for image in ordered if image.id != current_id]
    room = keep - 1 if current_id is None else keep - len(current)
    return current + others[:room], others[room:]
