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
import enum
import hmac
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    CorruptRecordException,
    InvalidRequiredAcksError,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)

from crypto import hmac_sm3, sm3_hex
from gateway.clock import utc_now
from gateway.decide.ahead import CHUNK, Ahead, ParseUnavailable
from gateway.decide.pipeline import Submission
from gateway.errors import BrokerUnavailable
from gateway.home.config import GatewayConfig
from gateway.ingress.desk import IdempotencyKeyReused, IngressRequest, SubmitOutcome
from gateway.ingress.limits import RateLimiter
from gateway.kafka.names import (
    H_FORMAT,
    H_SENDER,
    H_SIGNATURE,
    H_SUBMISSION_ID,
    H_VIA,
    Outbound,
    submission_headers,
)
from gateway.kafka.wire import Broker, OffsetProgress, new_reader, stop_consumer
from gateway.observe.health import BrokerHealth
from gateway.observe.metrics import GatewayMetrics
from gateway.parts import GatewayParts
from gateway.receipts.book import Answer, ReceiptBook

log = structlog.get_logger(__name__)

VIA_HTTP = b"http:"
_PENDING_REMEMBERED = 100_000
# Records fetched and not yet begun: the fetcher is polled while fewer are queued, for at
# most so many. Under a backlog the queue is topped up in large takes, not after each chunk.
_REFILL_BELOW = 128
_TAKE_AT_MOST = 512
# Offsets are committed (and due trail seals made) this often. Not each time the queue runs
# empty: at a steady few hundred documents a second it does so after almost every chunk, and
# each commit is a round trip the loop waits for before it fetches again.
_COMMIT_EVERY_S = 0.2


class Served(Protocol):
    """What the ingress loop and the desk need of the gateway (`gateway.service.Gateway`,
    which makes them): this module does not import the service."""

    config: GatewayConfig
    parts: GatewayParts
    bootstrap_servers: Broker
    metrics: GatewayMetrics
    limiter: RateLimiter
    health: BrokerHealth
    book: ReceiptBook

    def check_ahead(self, submissions: Sequence[Submission]
                    ) -> list[asyncio.Future[list[Ahead]]]: ...

    async def begin(self, s: Submission, ahead: Ahead) -> Awaitable[SubmitOutcome]: ...

    async def send(self, out: Outbound, *, partition: int | None = None
                   ) -> asyncio.Future[Any]: ...

    async def prepare(self, partitions: Iterable[int]) -> None: ...

    async def seal_all(self, partitions: Iterable[int] | None = None) -> None: ...

    def seal_due(self) -> None: ...

    async def release(self, partitions: Iterable[int]) -> None: ...


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

    def __init__(self, gateway: Served) -> None:
        self._gateway = gateway
        self._config = gateway.config
        self._topics = gateway.parts.topics
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
        consumer = new_reader(self._gateway.bootstrap_servers,
                              group_id=self._topics.consumer_group,
                              fetch_max_wait_ms=self._config.fetch_wait_ms,
                              session_timeout_ms=self._config.session_timeout_ms)
        await consumer.start()
        consumer.subscribe([self._topics.ingress], listener=_Rebalance(self, consumer))
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
        task.add_done_callback(self._finished)
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

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._gateway.metrics.set_in_flight(len(self._tasks))

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, BrokerUnavailable):
            self._gateway.health.failed(exc)
            log.warning("ingress.broker_unavailable", error=exc.message)
        elif isinstance(exc, ParseUnavailable):  # stopping: taken again at the next start
            log.info("ingress.document_left_undecided", why=exc.message)
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
                offsets[TopicPartition(self._topics.ingress, partition)] = progress.safe
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
            consumer.seek(TopicPartition(self._topics.ingress, partition), progress.safe)
            self._progress[partition] = OffsetProgress(progress.safe)
        self._rewind = False
        log.info("ingress.rewound", partitions=sorted(self._progress))

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        for partition, progress in self._progress.items():
            end = consumer.highwater(TopicPartition(self._topics.ingress, partition))
            if end is not None:
                self._gateway.metrics.set_lag(partition, max(end - progress.safe, 0))

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: list[int]) -> None:
        await self._gateway.book.catch_up(partitions)
        await self._gateway.prepare(partitions)
        for partition in partitions:
            tp = TopicPartition(self._topics.ingress, partition)
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
            await self._gateway.release(partitions)
            for partition in partitions:
                self._progress.pop(partition, None)
                self._committed.pop(partition, None)
        log.info("ingress.revoked", partitions=sorted(partitions))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka: no types
    def __init__(self, loop: IngressLoop, consumer: AIOKafkaConsumer) -> None:
        self._loop = loop
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._loop.revoked(self._consumer, [tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._loop.assigned(self._consumer, [tp.partition for tp in assigned])


class _Taken(enum.Enum):
    """What one hand-over to the producer came to."""

    CONFIRMED = "the broker acknowledged it: on the ingress topic"
    REFUSED = "the broker refused it: not on the ingress topic"
    UNKNOWN = "no acknowledgement: the broker may have written it or not"


# Answers after which the broker certainly holds nothing of a message: it refused these bytes
# for what they are, as it would have on any earlier attempt. A lost connection, a timeout or
# a leader change may each come after the broker wrote the message.
_REFUSALS = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError,
             InvalidTopicError, TopicAuthorizationFailedError,
             ClusterAuthorizationFailedError, InvalidRequiredAcksError,
             CorruptRecordException, InvalidTimestampError,
             UnsupportedForMessageFormatError, PolicyViolationError)


@dataclass(slots=True)
class _Pending:
    """A submission the door took and has no receipt for yet, with what identifies its
    document (a second POST under its id must bring the same one) and where its hand-overs
    to the broker stand."""

    sender: str
    format_id: str
    digest: str
    # A hand-over is under way (one at a time: a concurrent POST waits for its receipt).
    sending: bool = False
    # The broker acknowledged a copy: it is on the ingress topic and a receipt follows.
    confirmed: bool = False
    # A copy was handed over without an answer either way: it may be on the ingress topic.
    maybe_taken: bool = False

    def same_document(self, request: IngressRequest, digest: str) -> bool:
        return (self.sender, self.format_id, self.digest) == (request.sender,
                                                               request.format_id, digest)

    def settle(self, sent: asyncio.Future[Any]) -> _Taken:
        """Records what the broker answered to a hand-over (also as the future's callback,
        once the door answered without waiting for it)."""
        self.sending = False
        failure = None if sent.cancelled() else sent.exception()
        if sent.cancelled() or (failure is not None and not isinstance(failure, _REFUSALS)):
            self.maybe_taken = True
            return _Taken.UNKNOWN
        if failure is not None:
            return _Taken.REFUSED
        self.confirmed = True
        return _Taken.CONFIRMED


class GatewayDesk:
    """What the HTTP door talks to (gateway.ingress.desk.Desk): submissions go on the ingress
    topic first; their receipts come from whichever process decides them.

    A submission id names one document: a POST bringing other bytes, another format or
    another sender under a known id is IdempotencyKeyReused, never answered with the
    receipt of the document the id names. BrokerUnavailable is raised only when nothing of
    the submission can be on the ingress topic; when the broker's answer is not known the
    outcome is `unconfirmed`, and a POST under the same id puts it on again (the gateway
    answers a submission id once, however many copies the topic holds)."""

    def __init__(self, gateway: Served) -> None:
        self._gateway = gateway
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    def broker_up(self) -> bool:
        return self._gateway.health.up

    async def submit(self, request: IngressRequest, *, wait_s: float) -> SubmitOutcome:
        digest = sm3_hex(request.document)
        decided = await self._decided(request, digest)
        if decided is not None:
            return decided  # sent again with the same id: the answer it already has
        # Nothing is awaited from here until the hand-over is claimed: one POST at a time
        # finds the id unclaimed.
        pending = self._pending.get(request.submission_id)
        if pending is None:
            pending = self._remember_pending(request, digest)
        elif not pending.same_document(request, digest):
            raise _reused()
        elif pending.sending or pending.confirmed:  # on its way: wait for its one answer
            return await self._wait(request.submission_id, pending, wait_s)
        pending.sending = True
        if await self._hand_over(request, pending):
            return await self._wait(request.submission_id, pending, wait_s)
        return SubmitOutcome(request.submission_id, unconfirmed=True)

    async def status(self, submission_id: str) -> SubmitOutcome | None:
        answer = await self._gateway.book.get(submission_id)
        if answer is not None:
            self._pending.pop(submission_id, None)
            return _outcome(submission_id, answer)
        pending = self._pending.get(submission_id)
        if pending is None:
            return None
        return SubmitOutcome(submission_id, unconfirmed=not pending.confirmed)

    async def _decided(self, request: IngressRequest, digest: str) -> SubmitOutcome | None:
        """The receipt already given under the request's id; IdempotencyKeyReused when it
        is another document's."""
        answer = await self._gateway.book.get(request.submission_id)
        if answer is None:
            return None
        receipt = answer.receipt.receipt
        # A duplicate's receipt is the first submission's (same sender, same bytes), which
        # may have named another format; a submission naming none has the detected one.
        if (receipt.sender, receipt.digest_sm3) != (request.sender, digest) or (
                answer.duplicate_of is None and request.format_id
                and receipt.format_id != request.format_id):
            raise _reused()
        self._pending.pop(request.submission_id, None)
        return _outcome(request.submission_id, answer)

    async def _wait(self, submission_id: str, pending: _Pending, wait_s: float
                    ) -> SubmitOutcome:
        answer = await self._gateway.book.wait(submission_id, wait_s)
        if answer is None:
            return SubmitOutcome(submission_id, unconfirmed=not pending.confirmed)
        self._pending.pop(submission_id, None)
        return _outcome(submission_id, answer)

    async def _hand_over(self, request: IngressRequest, pending: _Pending) -> bool:
        """Puts the submission on the ingress topic: True once the broker acknowledged it,
        False when its answer is not known. BrokerUnavailable when nothing of the submission
        can be on the topic (neither this copy nor an earlier one)."""
        try:
            sent = await self._handed(request)
        except BrokerUnavailable:
            pending.sending = False
            if self._forget_unless_taken(request.submission_id, pending):
                raise
            return False  # an earlier copy may be on the topic
        except BaseException:
            pending.sending = False
            self._forget_unless_taken(request.submission_id, pending)
            raise
        timeout_s = self._gateway.config.http.ingress_timeout_s
        done, _ = await asyncio.wait({sent}, timeout=timeout_s)
        if not done:
            self._gateway.health.failed("the broker did not acknowledge in time")
            pending.maybe_taken = True
            sent.add_done_callback(pending.settle)
            return False
        taken = pending.settle(sent)
        if taken is _Taken.REFUSED:
            log.warning("http.ingress_refused", submission_id=request.submission_id,
                        error=repr(sent.exception()))
            if self._forget_unless_taken(request.submission_id, pending):
                raise BrokerUnavailable("the broker refused the document")
        return taken is _Taken.CONFIRMED

    async def _handed(self, request: IngressRequest) -> asyncio.Future[Any]:
        """The submission handed to the producer: the future of the broker's answer.
        BrokerUnavailable when it could not be (then the producer holds nothing of it: a
        send cancelled before it returned its future never sends)."""
        if not self.broker_up():
            raise BrokerUnavailable("the broker is not answering")
        stamp = door_stamp(self._gateway.parts.door_key, request.submission_id,
                           request.sender, request.signature)
        ingress = self._gateway.parts.topics.ingress
        out = Outbound(ingress, request.sender.encode(), request.document, (
            *submission_headers(request.submission_id, request.sender, request.format_id,
                                request.signature),
            (H_VIA, stamp),
        ))
        try:
            return await asyncio.wait_for(self._gateway.send(out),
                                          self._gateway.config.http.ingress_timeout_s)
        except TimeoutError as exc:
            self._gateway.health.failed("the producer did not take a document in time")
            raise BrokerUnavailable("the producer did not take the document in time") from exc

    def _forget_unless_taken(self, submission_id: str, pending: _Pending) -> bool:
        """Forgets a submission of which no copy can be on the ingress topic; whether it
        was such a one."""
        if pending.maybe_taken or pending.confirmed or pending.sending:
            return False
        if self._pending.get(submission_id) is pending:
            del self._pending[submission_id]
        return True

    def _remember_pending(self, request: IngressRequest, digest: str) -> _Pending:
        pending = self._pending[request.submission_id] = _Pending(
            request.sender, request.format_id, digest)
        while len(self._pending) > _PENDING_REMEMBERED:
            self._pending.popitem(last=False)
        return pending


def _outcome(submission_id: str, answer: Answer) -> SubmitOutcome:
    return SubmitOutcome(submission_id, answer.receipt, answer.duplicate_of,
                         trans_info=answer.trans_info)


def _reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused("this submission id names another document")


def door_stamp(key: bytes, submission_id: str, sender: str, signature: bytes) -> bytes:
    """What the HTTP door writes in `px-via`: an HMAC-SM3 over the submission id, the sender
    and the sender's signature (which binds it to the document), under the door key."""
    mac = hmac_sm3(key, b"\0".join((submission_id.encode(), sender.encode(), signature)))
    return VIA_HTTP + mac.hex().encode()


def submission_from_ingress(record: Any, partition: int) -> Submission:
    headers: dict[str, bytes] = dict(record.headers)

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
