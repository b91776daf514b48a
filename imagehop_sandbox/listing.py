"""Image list filtering and paging, as ``GET /v2/images`` does it.

Any query parameter that is not a paging/sorting control is an equality filter on an image
attribute or property (``?com.mycompany.image-of=db-replica-3``). Pages hold ``limit`` images
(default 25, at most 100); like Glance, a full page carries a ``next`` marker even if nothing
follows it, so clients must cope with a last, empty page.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from imagehop_sandbox.models import ImageRecord
from imagehop_sandbox.web import HttpError

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
SORT_KEYS = (
    "created_at",
    "updated_at",
    "name",
    "status",
    "size",
    "id",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
)
CONTROLS = ("limit", "marker", "sort_key", "sort_dir", "member_status", "tag")
ATTRIBUTES = (
    "id",
    "name",
    "status",
    "visibility",
    "owner",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "protected",
    "size",
    "checksum",
)


@dataclass(frozen=True)
class Page:
    images: list[ImageRecord]
    first: str
    next: str | None


def page_of_images(images: list[ImageRecord], tenant: str, query: list[tuple[str, str]]) -> Page:
    """Filter, sort and cut one page of ``images`` as ``tenant`` sees them."""
    params = dict(query)
    limit = _limit(params.get("limit"))
    sort_key = params.get("sort_key", "created_at")
    if sort_key not in SORT_KEYS:
        raise HttpError(400, f"Unsupported sort_key. Acceptable values: {', '.join(SORT_KEYS)}")
    sort_dir = params.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise HttpError(400, f"Invalid sort direction: {sort_dir}")
    if params.get("member_status", "accepted") not in ("pending", "accepted", "rejected", "all"):
        raise HttpError(400, f"Invalid status: {params['member_status']}")
    tags = [value for key, value in query if key == "tag"]
    filters = [(k, v) for k, v in query if k not in CONTROLS]
    visible = [i for i in images if _visible(i, tenant, params.get("visibility"))]
    chosen = [i for i in visible if _matches(i, filters) and set(tags) <= set(i.tags)]

    def order(image: ImageRecord) -> tuple[tuple[int, str | float], float, str]:
        return (_sort_value(image, sort_key), image.created_at, image.id)

    chosen.sort(key=order, reverse=sort_dir == "desc")
    marker = _marker(params.get("marker"), visible)
    if marker is not None:
        after = order(marker)
        chosen = [
            i for i in chosen if (order(i) < after if sort_dir == "desc" else order(i) > after)
        ]
    page = chosen[:limit]
    base = [(k, v) for k, v in query if k != "marker"]
    first = "/v2/images" + (f"?{urlencode(base)}" if base else "")
    next_link = None
    if page and len(page) == limit:
        next_link = "/v2/images?" + urlencode([*base, ("marker", page[-1].id)])
    return Page(page, first, next_link)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise HttpError(400, "limit param must be an integer") from None
    if limit < 0:
        raise HttpError(400, "limit param must be positive")
    return min(limit, MAX_LIMIT)


def _visible(image: ImageRecord, tenant: str, visibility: str | None) -> bool:
    if visibility is None:
        return image.visible_to(tenant)
    if visibility not in ("public", "private", "shared"):
        raise HttpError(400, f"Invalid visibility value: {visibility}")
    if visibility == "public":
        return image.visibility == "public"
    if visibility == "private":
        return image.visibility == "private" and image.owner == tenant
    return False  # nothing is shared in the sandbox


def _matches(image: ImageRecord, filters: list[tuple[str, str]]) -> bool:
    for key, wanted in filters:
        if key in ("size_min", "size_max"):
            if not _in_size_range(image, key, wanted):
                return False
        elif key == "visibility":
            continue
        elif key in ATTRIBUTES:
            if _attribute_text(image, key) != wanted:
                return False
        elif image.properties.get(key) != wanted:
            return False
    return True


def _in_size_range(image: ImageRecord, key: str, wanted: str) -> bool:
    try:
        bound = int(wanted)
    except ValueError:
        raise HttpError(400, "Unable to filter on a range with a non-numeric value.") from None
    size = _size(image)
    if size is None:
        return False
    return size >= bound if key == "size_min" else size <= bound


def _size(image: ImageRecord) -> int | None:
    stored = image.stored
    return None if stored is None else stored.size


def _attribute_text(image: ImageRecord, key: str) -> str:
    if key == "size":
        return str(_size(image))
    if key == "checksum":
        stored = image.stored
        return "" if stored is None else stored.checksum
    value = getattr(image, key)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sort_value(image: ImageRecord, key: str) -> tuple[int, str | float]:
    """Sortable form; images without a value sort first."""
    if key in ("created_at", "updated_at"):
        return (1, float(getattr(image, key)))
    if key in ("size", "min_disk", "min_ram"):
        number = _size(image) if key == "size" else getattr(image, key)
        return (0, 0.0) if number is None else (1, float(number))
    value = getattr(image, key)
    return (0, "") if value is None else (1, str(value))


def _marker(marker: str | None, visible: list[ImageRecord]) -> ImageRecord | None:
    if marker is None:
        return None
    for image in visible:
        if image.id == marker:
            return image
    raise HttpError(400, f"No image found with ID {marker}")
