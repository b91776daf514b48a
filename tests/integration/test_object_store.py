"""ObjectStore against real Swift: listings, limits, bulk delete, ranges, tokens, error mapping."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import time

import pytest

from imagehop.errors import (
    ApiError,
    AuthenticationError,
    ForbiddenError,
    IntegrityError,
    NotFoundError,
)
from imagehop.object_store import ObjectStore
from tests.integration.conftest import TARGET_CAP, SwiftPair

pytestmark = pytest.mark.cloud
MiB = 1024 * 1024


def test_listing_returns_only_the_prefix_with_sizes_and_md5s(swift_pair: SwiftPair) -> None:
    """A prefix listing returns every matching object, with its size and MD5, and no other."""
    container = swift_pair.new_container("DFW")
    raw = swift_pair.raw("DFW")
    bodies = {f"img.vhd-{n:05d}": os.urandom(1000 + n) for n in range(1, 4)}
    for name, body in bodies.items():
        raw.put_object(container, name, body)
    raw.put_object(container, "other", b"x")
    store = swift_pair.store("DFW")

    listed = store.list_objects(container, "img.vhd-")

    assert [(o.name, o.size, o.etag) for o in listed] == [
        (name, len(body), hashlib.md5(body).hexdigest()) for name, body in bodies.items()
    ]


def test_ensure_container_twice_is_harmless(swift_pair: SwiftPair) -> None:
    store = swift_pair.store("IAD")
    name = f"fresh-{time.time_ns()}"
    store.ensure_container(name)
    store.ensure_container(name)
    assert store.list_objects(name) == []


def test_limits_come_from_info_with_the_cloud_files_minimum(swift_pair: SwiftPair) -> None:
    """IAD's /info says 8 MiB per object and 1 byte minimum; the plan floor is 1 MiB."""
    limits = swift_pair.store("IAD").limits()
    assert limits.max_file_size == TARGET_CAP
    assert limits.max_manifest_segments == 1000
    assert limits.min_segment_size == MiB
    assert limits.max_deletes_per_request == 10000
    assert swift_pair.store("DFW").limits().max_file_size > 5 * 1024 * MiB


def test_head_recognises_dlo_and_slo_manifests(swift_pair: SwiftPair) -> None:
    container = swift_pair.new_container("DFW")
    raw = swift_pair.raw("DFW")
    raw.put_object(container, "seg-00001", b"a" * 10)
    raw.put_object(container, "dlo", b"", headers={"X-Object-Manifest": f"{container}/seg-"})
    manifest = f'[{{"path": "/{container}/seg-00001"}}]'
    raw.put_object(container, "slo", manifest, query_string="multipart-manifest=put")
    store = swift_pair.store("DFW")

    dlo = store.head_object(container, "dlo")
    slo = store.head_object(container, "slo")

    assert (dlo.dlo_manifest, dlo.is_slo, dlo.size) == (f"{container}/seg-", False, 10)
    assert (slo.dlo_manifest, slo.is_slo, slo.size) == (None, True, 10)


def test_bulk_delete_counts_deleted_and_missing(swift_pair: SwiftPair) -> None:
    container = swift_pair.new_container("IAD")
    raw = swift_pair.raw("IAD")
    for n in range(3):
        raw.put_object(container, f"o/{n}", b"x")
    store = swift_pair.store("IAD")

    result = store.bulk_delete([(container, f"o/{n}") for n in range(4)])

    assert (result.deleted, result.not_found) == (3, 1)
    assert store.list_objects(container) == []


def test_a_bulk_delete_split_into_requests_at_once_deletes_every_object(
    swift_pair: SwiftPair,
) -> None:
    container = swift_pair.new_container("IAD")
    store = swift_pair.store("IAD")
    for n in range(250):
        store.put_bytes(container, f"seg/{n:05d}", b"x")

    result = store.bulk_delete([(container, f"seg/{n:05d}") for n in range(251)], streams=3)

    assert (result.deleted, result.not_found) == (250, 1)
    assert store.list_objects(container) == []


def test_a_container_deleted_through_the_proxy_is_gone_for_the_next_request(
    swift_pair: SwiftPair,
) -> None:
    """The local proxies cache account and container info as production proxies do in
    memcache; their own changes invalidate it, so a deleted container refuses the next PUT
    and a re-created one takes it."""
    container = swift_pair.new_container("IAD")
    store = swift_pair.store("IAD")
    store.put_bytes(container, "o", b"x")  # the container's info is cached now
    store.bulk_delete([(container, "o"), (container, "")])

    with pytest.raises(NotFoundError):
        store.put_bytes(container, "o", b"x")
    store.ensure_container(container)
    store.put_bytes(container, "o", b"y")
    assert [item.name for item in store.list_objects(container)] == ["o"]


def test_bulk_delete_raises_on_an_error_inside_a_200(swift_pair: SwiftPair) -> None:
    """Deleting a non-empty container fails inside Swift's 200 answer; that must raise."""
    container = swift_pair.new_container("IAD")
    swift_pair.raw("IAD").put_object(container, "keep", b"x")

    with pytest.raises(ApiError, match="409"):
        swift_pair.store("IAD").bulk_delete([(container, "")])


def test_missing_object_is_not_found_with_the_swift_request_id(swift_pair: SwiftPair) -> None:
    container = swift_pair.new_container("DFW")
    with pytest.raises(NotFoundError) as caught:
        swift_pair.store("DFW").head_object(container, "nope")
    assert caught.value.status == 404
    assert caught.value.request_id and caught.value.request_id.startswith("tx")
    assert pickle.loads(pickle.dumps(caught.value)).request_id == caught.value.request_id


def test_another_tenants_account_is_forbidden(swift_pair: SwiftPair) -> None:
    url = swift_pair.storage_urls["DFW"].rsplit("_", 1)[0] + "_999999"
    store = ObjectStore(url, swift_pair.tokens(), region="DFW")
    with pytest.raises(ForbiddenError):
        store.list_objects("anything")


@pytest.mark.parametrize("request_kind", ["GET", "HEAD"])
def test_an_expired_token_is_replaced_after_a_401(swift_pair: SwiftPair, request_kind: str) -> None:
    """The provider believes its token lives an hour; it dies after 1 s. The next request gets
    a 401, hands the stale token back and succeeds with a new one."""
    tokens = swift_pair.tokens(lifetime=1.0, believed_lifetime=3600.0)
    store = swift_pair.store("DFW", tokens)
    container = swift_pair.new_container("DFW")
    swift_pair.raw("DFW").put_object(container, "o", b"x")
    store.list_objects(container)
    time.sleep(1.2)

    if request_kind == "HEAD":
        assert store.head_object(container, "o").size == 1
    else:
        assert len(store.list_objects(container)) == 1

    assert (tokens.issued, tokens.invalidated) == (2, 1)


def test_a_token_refused_twice_is_an_authentication_error_without_the_token(
    swift_pair: SwiftPair,
) -> None:
    class Refused:
        calls = 0

        def token(self) -> str:
            return "ihtk1.not-a.valid-token"

        def invalidate(self, stale: str) -> None:
            self.calls += 1

    tokens = Refused()
    store = ObjectStore(swift_pair.storage_urls["DFW"], tokens, region="DFW")
    with pytest.raises(AuthenticationError) as caught:
        store.list_objects("x")
    assert not caught.value.retryable
    assert caught.value.request_id
    assert tokens.calls == 2
    assert "valid-token" not in str(caught.value) + repr(store)


def test_open_range_returns_exactly_the_range(swift_pair: SwiftPair) -> None:
    container = swift_pair.new_container("DFW")
    body = os.urandom(3 * MiB + 5)
    swift_pair.raw("DFW").put_object(container, "o", body)
    store = swift_pair.store("DFW")
    md5 = hashlib.md5(body).hexdigest()

    reader = store.open_range(
        container, "o", MiB - 3, MiB + 7, chunk_size=64 * 1024, expect_etag=md5
    )
    chunks = iter(lambda: reader.read(100_000), b"")
    data = b"".join(chunks)

    assert data == body[MiB - 3 : 2 * MiB + 4]
    assert reader.remaining == 0


def test_open_range_refuses_an_object_that_changed(swift_pair: SwiftPair) -> None:
    container = swift_pair.new_container("DFW")
    swift_pair.raw("DFW").put_object(container, "o", b"new bytes")
    with pytest.raises(IntegrityError, match="changed since it was listed"):
        swift_pair.store("DFW").open_range(container, "o", 0, 3, expect_etag="0" * 32)


def test_open_range_past_the_end_is_an_api_error(swift_pair: SwiftPair) -> None:
    container = swift_pair.new_container("DFW")
    swift_pair.raw("DFW").put_object(container, "o", b"0123456789")
    with pytest.raises(ApiError) as caught:
        swift_pair.store("DFW").open_range(container, "o", 20, 5)
    assert caught.value.status == 416


def test_put_stream_with_a_wrong_etag_is_an_integrity_error(swift_pair: SwiftPair) -> None:
    """Swift answers 422 and stores nothing."""
    container = swift_pair.new_container("IAD")
    store = swift_pair.store("IAD")
    body = os.urandom(100_000)
    with pytest.raises(IntegrityError, match="422"):
        store.put_stream(container, "o", io.BytesIO(body), len(body), etag="0" * 32)
    assert store.list_objects(container) == []


def test_put_stream_over_the_cap_is_refused(swift_pair: SwiftPair) -> None:
    container = swift_pair.new_container("IAD")
    body = io.BytesIO(b"\0" * (TARGET_CAP + 1))
    with pytest.raises(ApiError) as caught:
        swift_pair.store("IAD").put_stream(container, "big", body, TARGET_CAP + 1)
    assert caught.value.status == 413
    assert not caught.value.retryable


def test_put_stream_returns_the_md5(swift_pair: SwiftPair) -> None:
    container = swift_pair.new_container("IAD")
    body = os.urandom(2 * MiB + 1)
    etag = swift_pair.store("IAD").put_stream(container, "o", io.BytesIO(body), len(body))
    assert etag == hashlib.md5(body).hexdigest()
