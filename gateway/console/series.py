"""The overview's figures over time: per-minute buckets of the last hours, kept in a ring (a
minute's slot is the minute modulo the window, taken over by a later minute as time moves
on), so that the memory is fixed and filing is O(1) whatever the traffic.

Each bucket counts the documents decided that minute, accepted and refused (from the receipts
the documents' index files), the deliveries made (DELIVERED trail records) and, for each
document delivered, its submit→delivery latency: from its RECEIVED record (the gateway took
it from the ingress) to its first DELIVERED record (its deliveries on the broker), both from
the trail the trail index files; and the most ingress lag sampled in the minute. A latency
goes into a histogram of the bucket with bins a quarter of a doubling wide (2^(1/4): each
percentile read back within ±9 % of the true one), so that p50 and p99 per minute cost one
increment per document, not a list of samples."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

WINDOW_MINUTES = 180
# A document received and not yet delivered is remembered until its delivery, its refusal, or
# this many later documents (one accepted for no recipient is never delivered).
PENDING_MOST = 20_000
# Latency bins: the first starts at 0.1 ms, each 2^(1/4) wider than the one before; the last
# (from ~56 min) takes everything longer.
FIRST_BIN_S = 0.0001
BINS_PER_DOUBLING = 4
BINS = 100
_SETTLING_KINDS = frozenset({"REJECTED", "DENIED", "DUPLICATE"})


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute of the window as the overview draws it; None: nothing was measured."""

    start: datetime
    accepted: int
    refused: int
    delivered: int
    latencies: int  # documents delivered whose RECEIVED record was seen
    p50_s: float | None
    p99_s: float | None
    lag: int | None

    @property
    def empty(self) -> bool:
        return not (self.accepted or self.refused or self.delivered or self.lag)


class _Bucket:
    __slots__ = ("accepted", "bins", "delivered", "lag", "minute", "refused")

    def __init__(self) -> None:
        self.minute = -1
        self.reset(-1)

    def reset(self, minute: int) -> None:
        self.minute = minute
        self.accepted = self.refused = self.delivered = 0
        self.bins: list[int] | None = None
        self.lag: int | None = None


class Series:
    """The last `minutes` minutes of the exchange, one bucket each."""

    __slots__ = ("_buckets", "_pending", "_pending_most")

    def __init__(self, minutes: int = WINDOW_MINUTES, *, pending_most: int = PENDING_MOST
                 ) -> None:
        self._buckets = tuple(_Bucket() for _ in range(minutes))
        self._pending: dict[str, float] = {}  # event id: when received (Unix seconds)
        self._pending_most = pending_most

    def decided(self, at: datetime, *, accepted: bool) -> None:
        """A receipt given at `at`."""
        bucket = self._bucket(at.timestamp())
        if bucket is None:
            return
        if accepted:
            bucket.accepted += 1
        else:
            bucket.refused += 1

    def record(self, entry: Mapping[str, Any]) -> None:
        """A trail record (its entry, as decoded), filed once: RECEIVED starts a document's
        wait, its first DELIVERED ends it; a refusal or a duplicate ends it undelivered."""
        kind = entry["kind"]
        if kind == "RECEIVED":
            self._received(entry["event_id"], entry["time"].timestamp())
        elif kind == "DELIVERED":
            self._delivered(entry["event_id"], entry["time"].timestamp())
        elif kind in _SETTLING_KINDS and entry["recipient"] is None:
            self._pending.pop(entry["event_id"], None)

    def lag(self, at: datetime, messages: int) -> None:
        """The ingress lag sampled at `at`; a minute keeps the most it was sampled at."""
        bucket = self._bucket(at.timestamp())
        if bucket is not None and (bucket.lag is None or messages > bucket.lag):
            bucket.lag = messages

    def window(self, now: datetime) -> list[Minute]:
        """Each minute of the window that ends with `now`'s, oldest first."""
        last = int(now.timestamp()) // 60
        size = len(self._buckets)
        return [self._minute(minute, self._buckets[minute % size])
                for minute in range(last - size + 1, last + 1)]

    def _received(self, event_id: str, at_s: float) -> None:
        pending = self._pending
        pending[event_id] = at_s
        if len(pending) > self._pending_most:
            del pending[next(iter(pending))]  # the oldest: dicts keep their insertion order

    def _delivered(self, event_id: str, at_s: float) -> None:
        received = self._pending.pop(event_id, None)
        bucket = self._bucket(at_s)
        if bucket is None:
            return
        bucket.delivered += 1
        if received is None:  # a later recipient of the same document, or not seen received
            return
        if bucket.bins is None:
            bucket.bins = [0] * BINS
        bucket.bins[latency_bin(at_s - received)] += 1

    def _bucket(self, at_s: float) -> _Bucket | None:
        """The bucket of the minute `at_s` is in; None when its slot holds a later minute
        (`at_s` is older than the window)."""
        minute = int(at_s) // 60
        bucket = self._buckets[minute % len(self._buckets)]
        if bucket.minute != minute:
            if bucket.minute > minute:
                return None
            bucket.reset(minute)
        return bucket

    @staticmethod
    def _minute(minute: int, bucket: _Bucket) -> Minute:
        start = datetime.fromtimestamp(minute * 60, UTC)
        if bucket.minute != minute:
            return Minute(start, 0, 0, 0, 0, None, None, None)
        bins = bucket.bins or []
        latencies = sum(bins)
        return Minute(start, bucket.accepted, bucket.refused, bucket.delivered, latencies,
                      quantile(bins, 0.5), quantile(bins, 0.99), bucket.lag)


def latency_bin(seconds: float) -> int:
    if seconds <= FIRST_BIN_S:
        return 0
    return min(BINS - 1, int(BINS_PER_DOUBLING * math.log2(seconds / FIRST_BIN_S)))


def bin_middle(index: int) -> float:
    """The geometric middle of bin `index`: what a percentile falling in it is read as."""
    return FIRST_BIN_S * 2 ** ((index + 0.5) / BINS_PER_DOUBLING)


def quantile(bins: list[int], q: float) -> float | None:
    """The `q` quantile (0 < q <= 1) of what the histogram counted; None when empty."""
    total = sum(bins)
    if not total:
        return None
    rank, seen = max(1, math.ceil(q * total)), 0
    for index, n in enumerate(bins):
        seen += n
        if seen >= rank:
            return bin_middle(index)
    return bin_middle(len(bins) - 1)  # not reached: seen ends at total
