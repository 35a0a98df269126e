"""Pages of an agency's deliveries, read from its delivery topic for HTTP pull
(`GET /v1/deliveries`, gateway.ingress.deliveries_api).

A page is read from a cursor: the next offset of each partition of the agency's topic, as
the previous page left it. The cursor is opaque to the recipient (base64url of a small JSON
object) and names the topic it reads: one naming another topic is refused
(DELIVERIES_CURSOR_INVALID), so a cursor never reads another agency's deliveries, whatever
its holder writes into it.

Each page is read by a consumer outside any group, taken from a small pool kept open for the
gateway's life (a consumer costs a connection and a metadata round trip to make), assigned
the topic's partitions and sought to the cursor's offsets: no consumer group per request, no
committed offsets, explicit seeks only (tansu gives no reliable end offsets; each partition's
end comes from the fetch answers, `highwater`). A long poll waits up to `wait_s` for a first
record; the page is at most `limit` deliveries and about `max_bytes`.

A record on the topic that is not a delivery to this agency (an agency's own topic shared by
mistake, a message put there by someone else) is never handed over: the page passes it, and
the cursor moves past it. The recipient checks each delivery's proof of origin itself
(gateway.deliveries.proof); the gateway hands over the record exactly as on the topic (value,
headers with the `px-seal`, key), so the seal covers what the recipient gets.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gateway.deliveries.proof import DELIVERY_SCHEMA
from gateway.errors import BrokerUnavailable, GatewayError
from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import (
    Broker,
    Place,
    answered_since,
    below_end,
    new_reader,
    partitions_of,
    read_places,
    stop_consumer,
    stored_message,
    wall_clock_ms,
)
from message_formats import AvroSchemas, FormatError

log = structlog.get_logger(__name__)

CURSOR_INVALID: Final = "DELIVERIES_CURSOR_INVALID"
PULL_BUSY: Final = "DELIVERIES_PULL_BUSY"
READERS_BUSY: Final = "DELIVERIES_READERS_BUSY"

MAX_CURSOR_CHARS: Final = 8192
MAX_PARTITIONS: Final = 1024
CURSOR_VERSION: Final = 1
# A partition is written in ASCII digits ("²".isdigit() is true, int("²") fails) and fits
# Kafka's int32; an offset fits its int64 (a larger one could not be sought).
_PARTITION: Final = re.compile(r"[0-9]{1,10}")
MAX_OFFSET: Final = 2**63 - 1
MAX_PARTITION: Final = 2**31 - 1
# How long a page waits for the broker's first answer about every partition, beyond the
# caller's wait: a page without it could not say whether anything is pending.
_ANSWER_GRACE_S: Final = 10.0
_POLL_MS: Final = 200
_PARTITIONS_TTL_S: Final = 5.0
# What one fetch of a pool reader brings of a partition (four times that in all, and always
# at least one record batch): a page's worth, so that the pool's memory stays bounded.
_FETCH_BYTES: Final = 2 * 1024 * 1024


class PullRefused(GatewayError):
    """A pull the gateway does not serve; `code` says why (the message names the rule)."""

    code = CURSOR_INVALID


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page of `topic` starts: per partition, the next offset (0 when not
    named)."""

    topic: str
    offsets: Mapping[int, int]

    def encode(self) -> str:
        data = json.dumps({"v": CURSOR_VERSION, "t": self.topic,
                           "o": {str(p): o for p, o in sorted(self.offsets.items())}},
                          separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str, *, topic: str) -> Cursor:
        """The cursor `text` holds, for `topic`; PullRefused (DELIVERIES_CURSOR_INVALID)
        unless it is one this gateway made for that topic."""
        if len(text) > MAX_CURSOR_CHARS:
            raise PullRefused(f"cursor is at most {MAX_CURSOR_CHARS} characters")
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (binascii.Error, ValueError, RecursionError):
            raise PullRefused("cursor is one a page of deliveries gave") from None
        if (not isinstance(data, dict) or data.get("v") != CURSOR_VERSION
                or not isinstance(data.get("o"), dict) or len(data["o"]) > MAX_PARTITIONS):
            raise PullRefused("cursor is one a page of deliveries gave")
        if data.get("t") != topic:
            raise PullRefused("cursor is for another delivery topic: a recipient reads its "
                              "own deliveries only")
        offsets: dict[int, int] = {}
        for partition, offset in data["o"].items():
            if (not _PARTITION.fullmatch(partition) or int(partition) > MAX_PARTITION
                    or not isinstance(offset, int)
                    or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET):
                raise PullRefused("cursor is one a page of deliveries gave")
            offsets[int(partition)] = offset
        return cls(topic, offsets)

    def offset(self, partition: int) -> int:
        return self.offsets.get(partition, 0)


@dataclass(frozen=True, slots=True)
class Page:
    """Deliveries to hand over, the cursor past them, and what is left on the topic after
    them (`pending`: records past the cursor, by the partitions' ends as last answered;
    `oldest_pending_ms`: the broker's timestamp of the oldest record the read saw and did
    not hand over, None when it saw none)."""

    topic: str
    deliveries: tuple[StoredMessage, ...]
    cursor: Cursor
    pending: int
    oldest_pending_ms: int | None

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "cursor": self.cursor.encode(), "pending": self.pending,
                "deliveries": [delivery_json(m) for m in self.deliveries]}


def delivery_json(message: StoredMessage) -> dict[str, Any]:
    """A delivery as the recipient gets it: the record exactly as on the topic."""
    return {
        "partition": message.partition,
        "offset": message.offset,
        "timestamp_ms": message.timestamp_ms,
        "key": None if message.key is None else _b64(message.key),
        "value": _b64(message.value),
        "headers": [{"name": name, "value": _b64(value)} for name, value in message.headers],
    }


def delivery_from_json(topic: str, item: Mapping[str, Any]) -> StoredMessage:
    """The record a page's delivery item holds (the recipient's side); ValueError, KeyError
    or TypeError when the item is not one."""
    key = item["key"]
    return StoredMessage(
        topic=topic,
        partition=int(item["partition"]),
        offset=int(item["offset"]),
        key=None if key is None else base64.b64decode(key, validate=True),
        value=base64.b64decode(item["value"], validate=True),
        headers=tuple((str(h["name"]), base64.b64decode(h["value"], validate=True))
                      for h in item["headers"]),
        timestamp_ms=int(item["timestamp_ms"]),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class PageLimits:
    """Bounds on one page: deliveries, bytes of values (a page holds at least one), wait."""

    max_deliveries: int = 500
    max_bytes: int = 8 * 1024 * 1024
    max_wait_s: float = 30.0


class DeliveryPages:
    """Reads pages of delivery topics with a pool of at most `readers` consumers; one pull at
    a time per agency (a second meanwhile is refused: DELIVERIES_PULL_BUSY), and a pull that
    finds every consumer taken for `queue_s` is refused (DELIVERIES_READERS_BUSY)."""

    def __init__(self, broker: Broker, schemas: AvroSchemas, *, readers: int = 8,
                 queue_s: float = 5.0, limits: PageLimits | None = None,
                 fetch_wait_ms: int = 500) -> None:
        self._broker = broker
        self._schemas = schemas
        self.limits = limits or PageLimits()
        self._queue_s = queue_s
        self._fetch_wait_ms = fetch_wait_ms
        self._free: asyncio.Queue[AIOKafkaConsumer | None] = asyncio.Queue()
        for _ in range(readers):
            self._free.put_nowait(None)  # a consumer made when first needed
        self._made: list[AIOKafkaConsumer] = []
        self._pulling: set[str] = set()
        self._partitions: dict[str, tuple[float, list[TopicPartition]]] = {}

    async def close(self) -> None:
        made, self._made = self._made, []
        for consumer in made:
            await stop_consumer(consumer)

    async def page(self, agency: str, topic: str, cursor: Cursor, *, limit: int,
                   wait_s: float) -> Page:
        """The next deliveries to `agency` on `topic` from `cursor`: at once when some are
        there, else the first that arrive within `wait_s`, else none."""
        if agency in self._pulling:
            raise PullRefused("one pull at a time per agency: wait for the one under way",
                              code=PULL_BUSY)
        self._pulling.add(agency)
        try:
            partitions = await self.partitions(topic)
            if not partitions:
                await asyncio.sleep(min(wait_s, self.limits.max_wait_s))
                return Page(topic, (), cursor, 0, None)
            async with self._consumer() as consumer:
                return await self._read(consumer, agency, topic, partitions, cursor,
                                        limit=limit, wait_s=wait_s)
        finally:
            self._pulling.discard(agency)

    async def read_at(self, places: Iterable[Place], *, timeout_s: float = 30.0
                      ) -> dict[Place, StoredMessage]:
        """The records at `places` (the deliveries an acknowledgement names: mostly runs of
        offsets), read with a consumer of the pool in the fetches of a page, not one by one;
        a place the broker does not hold is absent."""
        async with self._consumer() as consumer:
            try:
                return await read_places(consumer, places, timeout_s=timeout_s)
            except KafkaError as exc:
                raise BrokerUnavailable(f"reading deliveries failed: {exc}") from exc

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions, asked of the broker at most every few seconds."""
        known = self._partitions.get(topic)
        if known is not None and time.monotonic() < known[0]:
            return known[1]
        found = await partitions_of(self._broker, [topic])
        if len(self._partitions) > 4096:  # bounded: forget all, ask again
            self._partitions.clear()
        self._partitions[topic] = (time.monotonic() + _PARTITIONS_TTL_S, found)
        return found

    @asynccontextmanager
    async def _consumer(self) -> AsyncIterator[AIOKafkaConsumer]:
        try:
            async with asyncio.timeout(self._queue_s):
                taken = await self._free.get()
        except TimeoutError:
            raise PullRefused("every reader of delivery topics is busy; try again shortly",
                              code=READERS_BUSY) from None
        consumer = taken
        try:
            if consumer is None:
                consumer = await self._new_consumer()
            yield consumer
            consumer.pause(*consumer.assignment())  # no fetching in the background meanwhile
        except BaseException:
            if consumer is not None:  # its state is unknown: the next pull makes another
                self._made.remove(consumer)
                await stop_consumer(consumer)
                consumer = None
            raise
        finally:
            self._free.put_nowait(consumer)

    async def _new_consumer(self) -> AIOKafkaConsumer:
        consumer = new_reader(self._broker, fetch_max_wait_ms=self._fetch_wait_ms,
                              partition_fetch_bytes=_FETCH_BYTES)
        try:
            await consumer.start()
        except BaseException as exc:
            await stop_consumer(consumer)
            if isinstance(exc, KafkaError):
                raise BrokerUnavailable(f"cannot read deliveries: {exc}") from exc
            raise
        self._made.append(consumer)
        return consumer

    async def _read(self, consumer: AIOKafkaConsumer, agency: str, topic: str,
                    partitions: Sequence[TopicPartition], cursor: Cursor, *, limit: int,
                    wait_s: float) -> Page:
        starts = {tp: cursor.offset(tp.partition) for tp in partitions}
        consumer.assign(list(partitions))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        consumer.resume(*partitions)
        since_ms = wall_clock_ms()
        started = time.monotonic()
        wait_s = min(max(wait_s, 0.0), self.limits.max_wait_s)
        fetched: list[StoredMessage] = []
        while True:
            try:
                batches = await consumer.getmany(*partitions, timeout_ms=_POLL_MS,
                                                 max_records=limit + 1)
            except KafkaError as exc:
                raise BrokerUnavailable(f"reading {topic} failed: {exc}") from exc
            fetched = [stored_message(r) for tp in sorted(batches) for r in batches[tp]]
            if fetched:
                break
            waited = time.monotonic() - started
            answered = _all_answered(consumer, partitions, since_ms)
            # Records below a partition's end that no fetch brought yet (tansu on S3 storage
            # answers short fetches so) are waited for too, up to the grace.
            if answered and waited >= wait_s and not below_end(consumer, starts):
                break
            if waited >= wait_s + _ANSWER_GRACE_S:
                if answered:
                    break
                raise BrokerUnavailable(f"the broker did not answer for {topic} in time")
        return self._page(consumer, agency, topic, partitions, cursor, fetched, limit)

    def _page(self, consumer: AIOKafkaConsumer, agency: str, topic: str,
              partitions: Sequence[TopicPartition], cursor: Cursor,
              fetched: Sequence[StoredMessage], limit: int) -> Page:
        offsets = {tp.partition: cursor.offset(tp.partition) for tp in partitions}
        handed: list[StoredMessage] = []
        size = 0
        left: list[StoredMessage] = []
        for message in fetched:  # in offset order within each partition
            if left or len(handed) >= limit or (handed and size + len(message.value)
                                                > self.limits.max_bytes):
                left.append(message)
                continue
            offsets[message.partition] = message.offset + 1
            if self._is_for(message, agency):
                handed.append(message)
                size += len(message.value)
        pending = sum(max(0, (consumer.highwater(tp) or 0) - offsets[tp.partition])
                      for tp in partitions)
        oldest = min((m.timestamp_ms for m in left), default=None)
        return Page(topic, tuple(handed), Cursor(topic, offsets), pending, oldest)

    def _is_for(self, message: StoredMessage, agency: str) -> bool:
        """Whether the record is a delivery naming `agency` as its recipient."""
        try:
            name, record = self._schemas.decode(message.value)
        except FormatError:
            name, record = "", {}
        if name == DELIVERY_SCHEMA and record.get("recipient") == agency:
            return True
        log.warning("deliveries.passed", topic=message.topic, partition=message.partition,
                    offset=message.offset, why="not a delivery to the agency")
        return False


def _all_answered(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition],
                  since_ms: int) -> bool:
    return all(answered_since(consumer, [tp], since_ms) for tp in partitions)
