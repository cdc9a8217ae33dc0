"""Time-based key-value store (mock round, Hana Sato).

set(key, value, timestamp) records a value; get(key, timestamp) returns the value with the latest
timestamp at or before `timestamp`, or None.

Invariant: for every key, self._times[key] is strictly increasing, and self._vals[key][i] is the
value written at self._times[key][i]. set() is the only method that touches the lists, and it keeps
the invariant; get() relies on it for binary search.

Costs: set is O(1) amortised when timestamps arrive in order (an append) and O(n) for an
out-of-order insert (list shift); get is O(log n) in the number of versions of that key;
memory is O(total number of distinct (key, timestamp) pairs).

Run the tests with `python time_kv_store.py` (or pytest).
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right


class OutOfOrderError(ValueError):
    """A set() with a timestamp older than the key's latest, when out-of-order writes are not allowed."""


class TimeMap:
    def __init__(self, allow_out_of_order: bool = False) -> None:
        self._times: dict[str, list[int]] = {}
        self._vals: dict[str, list[str]] = {}
        self.allow_out_of_order = allow_out_of_order

    def set(self, key: str, value: str, timestamp: int) -> None:
        times = self._times.setdefault(key, [])
        vals = self._vals.setdefault(key, [])
        if not times or timestamp > times[-1]:
            times.append(timestamp)          # common case: O(1) amortised, order preserved
            vals.append(value)
        elif timestamp == times[-1]:
            vals[-1] = value                 # same timestamp: last write wins, times unchanged
        elif not self.allow_out_of_order:
            raise OutOfOrderError(
                f"set({key!r}, t={timestamp}) is older than the latest t={times[-1]} for this key"
            )
        else:
            i = bisect_left(times, timestamp)
            if times[i] == timestamp:
                vals[i] = value              # overwrite an existing version in the middle
            else:
                times.insert(i, timestamp)   # O(n) shift, but the order is preserved
                vals.insert(i, value)

    def get(self, key: str, timestamp: int) -> str | None:
        times = self._times.get(key)         # .get, not setdefault: reads never allocate
        if not times:
            return None                      # unknown key
        i = bisect_right(times, timestamp)   # number of versions with time <= timestamp
        if i == 0:
            return None                      # asked for a time before the first set
        return self._vals[key][i - 1]

    def check_invariant(self) -> None:
        assert self._times.keys() == self._vals.keys()
        for key, times in self._times.items():
            assert len(times) == len(self._vals[key]), key
            assert all(a < b for a, b in zip(times, times[1:])), f"{key}: timestamps not strictly increasing"


# ---------------------------------------------------------------- tests


def test_unknown_key():
    tm = TimeMap()
    assert tm.get("missing", 10) is None


def test_before_first_set():
    tm = TimeMap()
    tm.set("k", "a", 5)
    assert tm.get("k", 4) is None


def test_exact_between_and_after():
    tm = TimeMap()
    tm.set("k", "a", 5)
    tm.set("k", "b", 10)
    assert tm.get("k", 5) == "a"     # exactly at a timestamp
    assert tm.get("k", 7) == "a"     # between two timestamps
    assert tm.get("k", 10) == "b"    # exactly at the latest: the bisect_left bug returned "a" here
    assert tm.get("k", 99) == "b"    # after the last
    tm.check_invariant()


def test_equal_timestamp_overwrites():
    tm = TimeMap()
    tm.set("k", "a", 5)
    tm.set("k", "b", 5)
    assert tm.get("k", 5) == "b"
    assert tm._times["k"] == [5]
    tm.check_invariant()


def test_empty_string_is_a_value_not_a_miss():
    tm = TimeMap()
    tm.set("k", "", 1)
    assert tm.get("k", 1) == ""
    assert tm.get("k", 0) is None


def test_out_of_order_rejected_by_default():
    tm = TimeMap()
    tm.set("k", "a", 10)
    try:
        tm.set("k", "b", 5)
    except OutOfOrderError:
        pass
    else:
        raise AssertionError("expected OutOfOrderError")
    assert tm.get("k", 5) is None    # the rejected write left no trace
    tm.check_invariant()


def test_keys_are_independent():
    tm = TimeMap()
    tm.set("a", "x", 10)
    tm.set("b", "y", 1)              # older than a's timestamp, but a different key
    assert tm.get("a", 5) is None
    assert tm.get("b", 5) == "y"


def _reference_get(writes, key, timestamp):
    """Brute force: the last write (in write order) at the greatest timestamp <= timestamp."""
    best = None
    for k, v, t in writes:
        if k == key and t <= timestamp and (best is None or t >= best[0]):
            best = (t, v)
    return None if best is None else best[1]


def test_random_out_of_order_matches_reference():
    rng = random.Random(981)
    for _ in range(200):
        tm = TimeMap(allow_out_of_order=True)
        writes = []
        for _ in range(rng.randint(0, 30)):
            w = (rng.choice("abc"), str(rng.randint(0, 9)), rng.randint(0, 20))
            tm.set(*w)
            writes.append(w)
        tm.check_invariant()
        for key in "abcd":
            for t in range(-1, 22):
                assert tm.get(key, t) == _reference_get(writes, key, t), (writes, key, t)


if __name__ == "__main__":
    tests = [f for name, f in sorted(globals().items()) if name.startswith("test_") and callable(f)]
    for f in tests:
        f()
    print(f"{len(tests)} tests passed")
