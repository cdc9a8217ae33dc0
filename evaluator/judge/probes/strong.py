"""LRU cache with a time-to-live, written during the interview in lru_ttl_cache.md.

What always holds after every public call:
  * len(self._map) <= capacity
  * the dict and the linked list hold exactly the same nodes
  * an entry whose TTL has passed is never returned by get()

get and put are O(1). Expiry is lazy: an expired entry is dropped when it is read or when it
reaches the LRU end; nothing sweeps in the background. Not thread-safe (wrap calls in a lock if
shared between threads). Run `python lru_ttl_cache.py` to execute the tests at the bottom.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Hashable

_MISSING = object()


class _Node:
    __slots__ = ("key", "value", "expires_at", "prev", "next")

    def __init__(self, key: Hashable, value: Any, expires_at: float):
        self.key = key
        self.value = value
        self.expires_at = expires_at
        self.prev: _Node | None = None
        self.next: _Node | None = None


class LRUTTLCache:
    def __init__(self, capacity: int, ttl: float, clock: Callable[[], float] = time.monotonic):
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        if ttl < 0:
            raise ValueError("ttl must be >= 0")
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._map: dict[Hashable, _Node] = {}
        # Sentinels: head.next is the most recently used entry, tail.prev the least.
        self._head = _Node(None, None, 0.0)
        self._tail = _Node(None, None, 0.0)
        self._head.next = self._tail
        self._tail.prev = self._head

    def __len__(self) -> int:
        return len(self._map)

    # ------------------------------------------------------------------ public API

    def get(self, key: Hashable, default: Any = None) -> Any:
        node = self._map.get(key)
        if node is None:
            return default
        if self._clock() >= node.expires_at:
            self._drop(node)
            return default
        self._unlink(node)
        self._push_front(node)
        return node.value

    def put(self, key: Hashable, value: Any) -> None:
        if self.capacity == 0 or self.ttl == 0:
            return  # nothing could ever be returned, so store nothing
        expires_at = self._clock() + self.ttl
        node = self._map.get(key)
        if node is not None:
            node.value = value
            node.expires_at = expires_at
            self._unlink(node)
            self._push_front(node)
            return
        if len(self._map) >= self.capacity:
            self._drop(self._tail.prev)  # evict least recently used
        node = _Node(key, value, expires_at)
        self._map[key] = node
        self._push_front(node)

    # ------------------------------------------------------------------ internals

    def _drop(self, node: _Node) -> None:
        """Remove a node from both structures. The only place entries leave the cache."""
        self._unlink(node)
        del self._map[node.key]

    def _unlink(self, node: _Node) -> None:
        node.prev.next = node.next
        node.next.prev = node.prev
        node.prev = node.next = None

    def _push_front(self, node: _Node) -> None:
        node.prev = self._head
        node.next = self._head.next
        self._head.next.prev = node
        self._head.next = node

    def _check(self) -> None:
        """Assert the structural rules. O(n): for tests only."""
        assert len(self._map) <= self.capacity
        seen = []
        node = self._head.next
        while node is not self._tail:
            assert node.next.prev is node
            seen.append(node)
            node = node.next
        assert len(seen) == len(self._map)
        assert all(self._map.get(n.key) is n for n in seen)


# ---------------------------------------------------------------------- tests


class FakeClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_basic_get_put():
    c = LRUTTLCache(2, ttl=10, clock=FakeClock())
    c.put("a", 1)
    assert c.get("a") == 1 and c.get("missing") is None and c.get("missing", 0) == 0
    c._check()


def test_eviction_keeps_size_at_capacity():
    c = LRUTTLCache(2, ttl=10, clock=FakeClock())
    c.put("a", 1)
    c.put("b", 2)
    c.put("c", 3)  # evicts "a"
    c._check()
    assert len(c) == 2
    assert c.get("a") is None and c.get("b") == 2 and c.get("c") == 3


def test_get_refreshes_recency():
    c = LRUTTLCache(2, ttl=10, clock=FakeClock())
    c.put("a", 1)
    c.put("b", 2)
    c.get("a")
    c.put("c", 3)  # "b" is now least recent
    assert c.get("b") is None and c.get("a") == 1
    c._check()


def test_reput_updates_value_recency_and_expiry():
    clock = FakeClock()
    c = LRUTTLCache(2, ttl=10, clock=clock)
    c.put("a", 1)
    c.put("b", 2)
    clock.advance(8)
    c.put("a", 100)  # new value, most recent, expiry restarts
    c.put("c", 3)  # evicts "b", not "a"
    assert len(c) == 2 and c.get("b") is None
    clock.advance(8)  # 16s after first put, 8s after re-put
    assert c.get("a") == 100
    c._check()


def test_expired_entries_are_never_returned():
    clock = FakeClock()
    c = LRUTTLCache(3, ttl=5, clock=clock)
    c.put("a", 1)
    clock.advance(4.999)
    assert c.get("a") == 1
    clock.advance(0.001)  # exactly at expiry counts as expired
    assert c.get("a") is None and len(c) == 0
    c._check()


def test_capacity_zero_stores_nothing():
    c = LRUTTLCache(0, ttl=10, clock=FakeClock())
    c.put("a", 1)
    assert c.get("a") is None and len(c) == 0
    c._check()


def test_ttl_zero_stores_nothing():
    c = LRUTTLCache(2, ttl=0, clock=FakeClock())
    c.put("a", 1)
    assert c.get("a") is None and len(c) == 0


def test_bad_arguments():
    for cap, ttl in [(-1, 1), (1, -1)]:
        try:
            LRUTTLCache(cap, ttl)
        except ValueError:
            continue
        raise AssertionError(f"expected ValueError for capacity={cap}, ttl={ttl}")


if __name__ == "__main__":
    tests = [f for name, f in sorted(globals().items()) if name.startswith("test_")]
    for t in tests:
        t()
        print(f"ok  {t.__name__}")
    print(f"{len(tests)} passed")
