"""Serving: the ingress topic consumed as one member of the gateways' consumer group, and the
desk the HTTP door hands submissions to.

Each ingress partition is owned by one gateway process at a time, with its trail chain. Its
documents are begun in offset order and finished concurrently; the offset committed is the
first one not yet finished, so a process killed at any moment leaves nothing accepted
behind: what it had not finished is taken again by the next owner. A document taken again
keeps its event id, and one already answered is recognised by its receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from crypto import hmac_sm3
from gateway.ahead import CHUNK, Ahead
from gateway.clock import utc_now
from gateway.errors import BrokerUnavailable
from gateway.ingress import IngressRequest, SubmitOutcome
from gateway.kafka import (
    H_FORMAT,
    H_SENDER,
    H_SIGNATURE,
    H_SUBMISSION_ID,
    H_VIA,
    INGRESS_TOPIC,
    OffsetProgress,
    acked,
    new_reader,
    stop_consumer,
    submission_headers,
)
from gateway.pipeline import Outbound, Submission

if TYPE_CHECKING:
    from gateway.service import Gateway

log = structlog.get_logger(__name__)

CONSUMER_GROUP = "px-gateway"
INGRESS_ACK_TIMEOUT_S = 5.0
VIA_HTTP = b"http:"
# The door key is derived from the home's mask key under this label, so that one secret
# is not put to two uses.
DOOR_KEY_LABEL = b"px door stamp v1"
_PENDING_REMEMBERED = 100_000
# Records fetched and not yet begun: the fetcher is polled while fewer are queued, for at
# most so many. Under a backlog the queue is topped up in large takes, not after each chunk.
_REFILL_BELOW = 128
_TAKE_AT_MOST = 512
# Offsets are committed (and due trail seals made) this often. Not each time the queue runs
# empty: at a steady few hundred documents a second it does so after almost every chunk, and
# each commit is a round trip the loop waits for before it fetches again.
_COMMIT_EVERY_S = 0.2


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Up to CHUNK records of one partition, sent to the worker process together; `answer`
    is what it found for each. `progress` is the partition's when they were fetched: a new
    assignment or a rewind replaces it, and a chunk fetched before is dropped."""

    partition: int
    progress: OffsetProgress
    records: list[Any]
    submissions: list[Submission]
    answer: asyncio.Future[list[Ahead]]


class IngressLoop:
    """Fetching, checking ahead and beginning overlap: while this loop begins the documents
    of one chunk, the worker process checks the chunks after it, and the fetcher brings the
    next records (taken without waiting after each chunk, while few are queued). A document
    therefore waits for the chunks ahead of it, not for a whole fetched batch to be begun."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._config = gateway.config
        self._progress: dict[int, OffsetProgress] = {}
        self._committed: dict[int, int] = {}
        self._queue: deque[_Chunk] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(gateway.config.max_in_flight)
        # Held while a document is begun: a rebalance waits for it, so that it never takes
        # a partition's trail chain away from a document half begun on it.
        self._beginning = asyncio.Lock()
        self._rewind = False
        self._backoff_s = 0.5
        self._next_commit = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = new_reader(self._gateway.bootstrap_servers, group_id=CONSUMER_GROUP,
                              fetch_max_wait_ms=self._config.fetch_wait_ms,
                              session_timeout_ms=self._config.session_timeout_ms)
        await consumer.start()
        consumer.subscribe([INGRESS_TOPIC], listener=_Rebalance(self, consumer))
        watching = None
        if self._config.contracts_watch_s > 0:
            watching = asyncio.create_task(
                self._gateway.parts.router.watch(stop, self._config.contracts_watch_s))
        try:
            while not stop.is_set():
                if self._queued() < _REFILL_BELOW:
                    await self._fetch(consumer, wait_ms=0 if self._queue else 100)
                if self._queue:
                    await self._begin_chunk(self._queue.popleft())
                if time.monotonic() >= self._next_commit:
                    await self._housekeeping(consumer)
                if self._rewind:
                    await self._rewind_to_watermarks(consumer)
        finally:
            self._queue.clear()
            await self._drain()
            with contextlib.suppress(KafkaError):
                await self._commit(consumer)
            if watching is not None:
                watching.cancel()
            await stop_consumer(consumer)
            log.info("gateway.stopped_serving")

    async def _fetch(self, consumer: AIOKafkaConsumer, *, wait_ms: int) -> None:
        """Takes what the fetcher holds (waiting up to `wait_ms` for some) and sends it to the
        worker process, every partition's records before any is begun."""
        try:
            batches = await consumer.getmany(timeout_ms=wait_ms, max_records=_TAKE_AT_MOST)
        except KafkaError as exc:
            self._gateway.health.failed(exc)
            await asyncio.sleep(0.5)
            return
        for tp, records in batches.items():
            progress = self._progress.get(tp.partition)
            if progress is None:
                continue
            submissions = [submission_from_ingress(r, tp.partition) for r in records]
            answers = self._gateway.check_ahead(submissions)
            for n, answer in enumerate(answers):
                part = slice(n * CHUNK, (n + 1) * CHUNK)
                self._queue.append(_Chunk(tp.partition, progress, records[part],
                                          submissions[part], answer))

    def _queued(self) -> int:
        """Records fetched and not yet begun."""
        return sum(len(chunk.records) for chunk in self._queue)

    async def _begin_chunk(self, chunk: _Chunk) -> None:
        found = await chunk.answer
        for record, submission, ahead in zip(chunk.records, chunk.submissions, found,
                                             strict=True):
            async with self._beginning:
                if self._rewind or self._progress.get(chunk.partition) is not chunk.progress:
                    return
                await self._begin(chunk.progress, record, submission, ahead)

    async def _housekeeping(self, consumer: AIOKafkaConsumer) -> None:
        self._next_commit = time.monotonic() + _COMMIT_EVERY_S
        await self._commit(consumer)
        self._gateway.seal_due()
        self._report_lag(consumer)

    async def _begin(self, progress: OffsetProgress, record: Any, submission: Submission,
                     ahead: Ahead) -> None:
        await self._slots.acquire()
        progress.started(record.offset)
        if not self._through_door(record, submission):  # the door limited those already
            await self._gateway.limiter.take(submission.sender)
        try:
            finish = await self._gateway.begin(submission, ahead)
        except Exception as exc:  # the broker went away while beginning: take it again
            self._slots.release()
            self._failed(exc)
            return
        task = asyncio.create_task(self._finish(progress, record.offset, finish))
        self._tasks.add(task)
        self._gateway.metrics.set_in_flight(len(self._tasks))

    def _through_door(self, record: Any, submission: Submission) -> bool:
        """Whether the HTTP door put this record on the ingress topic. A `px-via` header
        without the door's stamp is an agency's own: its rate limit applies."""
        via = dict(record.headers).get(H_VIA)
        if via is None:
            return False
        stamp = door_stamp(self._gateway.parts.door_key, submission.submission_id,
                           submission.sender, submission.signature)
        if hmac.compare_digest(via, stamp):
            return True
        log.warning("ingress.door_stamp_invalid", sender=submission.sender,
                    submission_id=submission.submission_id)
        return False

    async def _finish(self, progress: OffsetProgress, offset: int,
                      finish: Awaitable[SubmitOutcome]) -> None:
        try:
            await finish
        except Exception as exc:
            self._failed(exc)
        else:
            progress.finished(offset)
            self._backoff_s = 0.5
        finally:
            self._slots.release()
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, BrokerUnavailable):
            self._gateway.health.failed(exc)
            log.warning("ingress.broker_unavailable", error=exc.message)
        else:
            log.error("ingress.document_failed", error=repr(exc))
        self._rewind = True

    async def _drain(self) -> None:
        """Waits until every document begun is finished (or failed)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _commit(self, consumer: AIOKafkaConsumer,
                      partitions: Iterable[int] | None = None) -> None:
        wanted = self._progress if partitions is None else partitions
        offsets = {}
        for partition in wanted:
            progress = self._progress.get(partition)
            if progress is not None and progress.safe > self._committed[partition]:
                offsets[TopicPartition(INGRESS_TOPIC, partition)] = progress.safe
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("ingress.commit_failed", error=str(exc))
            return
        for tp, offset in offsets.items():
            self._committed[tp.partition] = offset

    async def _rewind_to_watermarks(self, consumer: AIOKafkaConsumer) -> None:
        """After a failure: let everything begun finish or fail, then take each partition
        again from its first unfinished document."""
        self._queue.clear()
        await self._drain()
        await asyncio.sleep(self._backoff_s)
        self._backoff_s = min(self._backoff_s * 2, 5.0)
        for partition, progress in list(self._progress.items()):
            consumer.seek(TopicPartition(INGRESS_TOPIC, partition), progress.safe)
            self._progress[partition] = OffsetProgress(progress.safe)
        self._rewind = False
        log.info("ingress.rewound", partitions=sorted(self._progress))

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        for partition, progress in self._progress.items():
            end = consumer.highwater(TopicPartition(INGRESS_TOPIC, partition))
            if end is not None:
                self._gateway.metrics.set_lag(partition, max(end - progress.safe, 0))

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: list[int]) -> None:
        await self._gateway.book.catch_up(partitions)
        await self._gateway.prepare(partitions)
        for partition in partitions:
            tp = TopicPartition(INGRESS_TOPIC, partition)
            start = await consumer.committed(tp) or 0
            consumer.seek(tp, start)
            self._progress[partition] = OffsetProgress(start)
            self._committed[partition] = start
        log.info("ingress.assigned", partitions=sorted(partitions))

    async def revoked(self, consumer: AIOKafkaConsumer, partitions: list[int]) -> None:
        async with self._beginning:
            await self._drain()
            await self._commit(consumer, partitions)
            await self._gateway.seal_all(partitions)
            self._gateway.release(partitions)
            for partition in partitions:
                self._progress.pop(partition, None)
                self._committed.pop(partition, None)
        log.info("ingress.revoked", partitions=sorted(partitions))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: IngressLoop, consumer: AIOKafkaConsumer) -> None:
        self._loop = loop
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._loop.revoked(self._consumer, [tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._loop.assigned(self._consumer, [tp.partition for tp in assigned])


class GatewayDesk:
    """What the HTTP door talks to (gateway.ingress.Desk): submissions go on the ingress
    topic first; their receipts come from whichever process decides them."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._pending: OrderedDict[str, None] = OrderedDict()

    def broker_up(self) -> bool:
        return self._gateway.health.up

    async def submit(self, request: IngressRequest, *, wait_s: float) -> SubmitOutcome:
        known = await self.status(request.submission_id)
        if known is not None and not known.pending:
            return known  # sent again with the same id: the answer it already has
        if known is not None:  # the same id still on its way: wait for its one answer
            answer = await self._gateway.book.wait(request.submission_id, wait_s)
            if answer is None:
                return known
            return SubmitOutcome(request.submission_id, answer.receipt, answer.duplicate_of)
        if not self.broker_up():
            raise BrokerUnavailable("the broker is not answering")
        self._remember_pending(request.submission_id)
        try:
            await self._put_on_ingress(request)
        except BrokerUnavailable:
            self._pending.pop(request.submission_id, None)  # nothing was accepted
            raise
        answer = await self._gateway.book.wait(request.submission_id, wait_s)
        if answer is None:
            return SubmitOutcome(request.submission_id)
        self._pending.pop(request.submission_id, None)
        return SubmitOutcome(request.submission_id, answer.receipt, answer.duplicate_of)

    async def status(self, submission_id: str) -> SubmitOutcome | None:
        answer = await self._gateway.book.get(submission_id)
        if answer is not None:
            self._pending.pop(submission_id, None)
            return SubmitOutcome(submission_id, answer.receipt, answer.duplicate_of)
        if submission_id in self._pending:
            return SubmitOutcome(submission_id)
        return None

    async def _put_on_ingress(self, request: IngressRequest) -> None:
        stamp = door_stamp(self._gateway.parts.door_key, request.submission_id,
                           request.sender, request.signature)
        out = Outbound(INGRESS_TOPIC, request.sender.encode(), request.document, (
            *submission_headers(request.submission_id, request.sender, request.format_id,
                                request.signature),
            (H_VIA, stamp),
        ))
        try:
            sent = await asyncio.wait_for(self._gateway.send(out), INGRESS_ACK_TIMEOUT_S)
            await asyncio.wait_for(acked(sent), INGRESS_ACK_TIMEOUT_S)
        except TimeoutError as exc:
            self._gateway.health.failed("ingress write timed out")
            raise BrokerUnavailable("the broker did not take the document in time") from exc

    def _remember_pending(self, submission_id: str) -> None:
        self._pending[submission_id] = None
        while len(self._pending) > _PENDING_REMEMBERED:
            self._pending.popitem(last=False)


def door_stamp(key: bytes, submission_id: str, sender: str, signature: bytes) -> bytes:
    """What the HTTP door writes in `px-via`: an HMAC-SM3 over the submission id, the sender
    and the sender's signature (which binds it to the document), under the door key."""
    mac = hmac_sm3(key, b"\0".join((submission_id.encode(), sender.encode(), signature)))
    return VIA_HTTP + mac.hex().encode()


def submission_from_ingress(record: Any, partition: int) -> Submission:
    headers = dict(record.headers)

    def text(name: str) -> str:
        return headers.get(name, b"").decode("utf-8", "replace")

    return Submission(
        submission_id=text(H_SUBMISSION_ID) or f"ingress-{partition}-{record.offset}",
        sender=text(H_SENDER),
        format_id=text(H_FORMAT),
        document=record.value or b"",
        signature=headers.get(H_SIGNATURE, b""),
        received_at=utc_now(),
        partition=partition,
        ingress_offset=record.offset,
        ingress_timestamp_ms=record.timestamp,
    )
