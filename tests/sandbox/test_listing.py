"""Image list filters and pages as ``GET /v2/images`` answers them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from imagehop_sandbox.listing import page_of_images
from imagehop_sandbox.models import ImageRecord
from imagehop_sandbox.web import HttpError

MINE, THEIRS = "900001", "900002"


def images() -> list[ImageRecord]:
    records = [
        ImageRecord(f"mine-{n:03d}", "DFW", name=f"m{n}", owner=MINE, created_at=1000.0 + n)
        for n in range(120)
    ]
    records[7].properties["com.mycompany.image-of"] = "db-replica-3"
    records.append(ImageRecord("theirs", "DFW", name="t", owner=THEIRS, created_at=5.0))
    records.append(
        ImageRecord("base", "DFW", name="b", owner="rackspace", visibility="public", created_at=1.0)
    )
    return records


def ids(query: list[tuple[str, str]], tenant: str = MINE) -> list[str]:
    return [image.id for image in page_of_images(images(), tenant, query).images]


def test_property_filter_finds_the_tagged_image() -> None:
    assert ids([("com.mycompany.image-of", "db-replica-3")]) == ["mine-007"]


def test_default_listing_shows_own_and_public_images_newest_first() -> None:
    listed = ids([("limit", "100")])
    assert listed[:2] == ["mine-119", "mine-118"]
    assert "theirs" not in ids([("limit", "1000"), ("name", "t")])
    assert ids([("visibility", "public")]) == ["base"]


def test_pages_hold_at_most_100_and_next_links_walk_everything_once() -> None:
    seen: list[str] = []
    query: list[tuple[str, str]] = [("limit", "1000")]
    for _ in range(10):
        page = page_of_images(images(), MINE, query)
        assert len(page.images) <= 100
        seen += [image.id for image in page.images]
        if page.next is None:
            break
        query = parse_qsl(urlsplit(page.next).query)
    assert sorted(seen) == sorted(i.id for i in images() if i.owner != THEIRS)


def test_default_page_size_is_25_with_a_next_link() -> None:
    page = page_of_images(images(), MINE, [])
    assert len(page.images) == 25
    assert page.next is not None
    assert ("marker", "mine-095") in parse_qsl(urlsplit(page.next).query)


def test_sorting_by_name_ascending() -> None:
    assert ids([("sort_key", "name"), ("sort_dir", "asc"), ("limit", "2")]) == ["base", "mine-000"]


@pytest.mark.parametrize(
    "query",
    [
        [("limit", "x")],
        [("limit", "-1")],
        [("marker", "nope")],
        [("marker", "theirs")],
        [("sort_dir", "sideways")],
        [("sort_key", "flavor")],
        [("visibility", "everyone")],
        [("size_min", "big")],
    ],
)
def test_bad_list_parameters_are_400(query: list[tuple[str, str]]) -> None:
    with pytest.raises(HttpError) as caught:
        page_of_images(images(), MINE, query)
    assert caught.value.status == 400
