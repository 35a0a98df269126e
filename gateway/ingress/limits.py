"""Per-agency rate limits: a token bucket for each agency, refilled at its `rate_per_s` up to
`burst` tokens. The HTTP door answers 429 with `try_take`'s wait; the Kafka ingress waits with
`take` (backpressure).

Limits are read on every call, so a changed configuration applies to the next take.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from gateway.home.config import AgencyLimits

# Float slack, so that waiting exactly the returned time always yields a token.
_EPSILON = 1e-9
DEFAULT_MAX_BUCKETS = 10_000


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp

    def refill(self, now: float, rate: float, burst: int) -> None:
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(float(burst), self.tokens + elapsed * rate)
        self.stamp = now


class RateLimiter:
    """Token buckets, one per agency with a rate, created on first use.

    A full bucket is the same as a new one, so once more than `max_buckets` agencies have
    buckets the full ones are dropped: senders nobody registered (the Kafka ingress may take
    before authenticating) cannot grow the limiter without bound while within their rate.
    """

    __slots__ = ("_buckets", "_clock", "_limits_for", "_max_buckets", "_sleep")

    def __init__(
        self,
        limits_for: Callable[[str], AgencyLimits],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        self._limits_for = limits_for
        self._clock = clock
        self._sleep = sleep
        self._max_buckets = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def try_take(self, agency: str) -> float:
        """0.0 when `agency` may send one document now (its token is taken), else the seconds
        until it may."""
        limits = self._limits_for(agency)
        if limits.rate_per_s <= 0:
            return 0.0
        now = self._clock()
        bucket = self._bucket(agency, limits, now)
        bucket.refill(now, limits.rate_per_s, limits.burst)
        if bucket.tokens + _EPSILON >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / limits.rate_per_s

    async def take(self, agency: str) -> None:
        """Returns once `agency` may send one document (its token taken)."""
        while (wait := self.try_take(agency)) > 0.0:
            await self._sleep(wait)

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)

    def _bucket(self, agency: str, limits: AgencyLimits, now: float) -> _Bucket:
        bucket = self._buckets.get(agency)
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                self._drop_full_buckets(now)
            bucket = self._buckets[agency] = _Bucket(float(limits.burst), now)
        return bucket

    def _drop_full_buckets(self, now: float) -> None:
        for agency, bucket in list(self._buckets.items()):
            limits = self._limits_for(agency)
            bucket.refill(now, limits.rate_per_s, limits.burst)
            if limits.rate_per_s <= 0 or bucket.tokens >= limits.burst:
                del self._buckets[agency]
