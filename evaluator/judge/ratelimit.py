"""Client-side rate limits shared by every concurrent judgment: requests and tokens per minute,
plus a shared pause when the provider says Retry-After (one 429 slows every worker, not just one).
"""

from __future__ import annotations

import asyncio
import time


class _Bucket:
    """A token bucket refilled at `per_minute / 60` per second that holds one second's worth.

    Holding only one second's worth keeps any 60-second window within `per_minute` plus one second's
    worth (a bucket that starts with a full minute would allow twice the limit in the first minute).
    A request larger than the bucket is let through when the bucket is full and leaves a debt, so
    the long-run rate is exact even for requests of many thousand tokens.
    """

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(self.rate, 1.0)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` may be taken; 0 means it was taken now."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(amount, self.capacity)
        if self.level >= need:
            self.level -= amount
            return 0.0
        return (need - self.level) / self.rate

    def refund(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """`await limiter.acquire(tokens)` before each HTTP request to the model."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        if (rpm is not None and rpm <= 0) or (tpm is not None and tpm <= 0):
            raise ValueError("rpm and tpm must be positive")
        self.requests = _Bucket(rpm) if rpm else None
        self.tokens = _Bucket(tpm) if tpm else None
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """The provider asked us to back off: no worker starts a request before then."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the provider reports the real usage of a request."""
        if self.tokens:
            self.tokens.level = min(self.tokens.capacity, self.tokens.level + estimated - actual)

    async def acquire(self, tokens: int = 0) -> None:
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                wait = self.paused_until - time.monotonic()
                if wait <= 0 and self.requests:
                    wait = self.requests.wait_for(1)
                if wait <= 0 and self.tokens:
                    wait = self.tokens.wait_for(tokens)
                    if wait > 0 and self.requests:
                        self.requests.refund(1)  # the request slot is not used while we wait for tokens
                if wait <= 0:
                    return
                await asyncio.sleep(wait)
