"""The local proxies' stand-in for memcache (account and container info, as in production)."""

from __future__ import annotations

from imagehop_sandbox.swift_cache import LocalMemcache


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_expires_after_its_time_and_is_a_copy_each_read() -> None:
    clock = Clock()
    cache = LocalMemcache(clock)
    cache.set("container/a/c", {"status": 204, "meta": {}}, time=60)
    first = cache.get("container/a/c")
    first["status"] = 404  # a caller changing its copy changes nobody else's
    assert cache.get("container/a/c") == {"status": 204, "meta": {}}
    clock.now += 60
    assert cache.get("container/a/c") is None


def test_a_deleted_entry_is_gone_and_counters_count() -> None:
    cache = LocalMemcache(Clock())
    cache.set("account/a", {"status": 204})
    cache.delete("account/a")
    assert cache.get("account/a") is None
    assert (cache.incr("n"), cache.incr("n", 2), cache.decr("n", 5)) == (1, 3, 0)
