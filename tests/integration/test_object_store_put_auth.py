"""A streaming PUT with a dead token must surface as a 401 (so the token gets replaced), not as
a broken connection, even when the body is far larger than the socket buffers."""

from __future__ import annotations

import io
import os
import time

import pytest

from imagehop.errors import UnauthorizedError
from tests.integration.conftest import SwiftPair

pytestmark = pytest.mark.cloud
MiB = 1024 * 1024


def test_put_stream_with_an_expired_token_raises_unauthorized_and_invalidates(
    swift_pair: SwiftPair,
) -> None:
    tokens = swift_pair.tokens(lifetime=1.0, believed_lifetime=3600.0)
    store = swift_pair.store("IAD", tokens)
    container = swift_pair.new_container("IAD")
    store.list_objects(container)
    time.sleep(1.2)
    body = os.urandom(6 * MiB)

    with pytest.raises(UnauthorizedError) as caught:
        store.put_stream(container, "o", io.BytesIO(body), len(body))
    assert caught.value.retryable  # the engine retries the segment with a new token

    assert tokens.invalidated == 1
    assert store.put_stream(container, "o", io.BytesIO(body), len(body))  # new token works
