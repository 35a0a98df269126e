"""The receipts the gateway has given, read back from the receipt topic; and their signer.

Every gateway process keeps a book of all receipts (where each is on the topic, the latest
ones' bytes), so that whichever process an HTTP client reaches can answer for a submission
another process decided, and so that the process owning an ingress partition recognises a
document it already accepted, also after a restart (de-duplication).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from crypto import BatchSigner, SM2PrivateKey
from gateway.errors import BrokerUnavailable
from gateway.kafka import (
    H_DIGEST,
    H_DUPLICATE_OF,
    H_SENDER,
    H_STATUS,
    RECEIPT_TOPIC,
    StoredMessage,
    new_reader,
    partitions_of,
    read_at,
    read_until_end,
    stored_message,
)
from gateway.receipts import ACCEPTED, RECEIPT_SCHEMA, Receipt, SignedReceipt
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """A submission's receipt, and the first submission's id when it was a duplicate."""

    receipt: SignedReceipt
    duplicate_of: str | None


@dataclass(frozen=True, slots=True)
class _Entry:
    partition: int
    offset: int
    duplicate_of: str | None


class ReceiptBook:
    def __init__(self, bootstrap_servers: str, schemas: AvroSchemas, *,
                 fetch_wait_ms: int = 5, cache_size: int = 20_000) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._schemas = schemas
        self._fetch_wait_ms = fetch_wait_ms
        self._cache_size = cache_size
        self._entries: dict[str, _Entry] = {}
        self._accepted: dict[tuple[str, str], str] = {}  # (sender, SM3) -> submission id
        self._values: OrderedDict[str, bytes] = OrderedDict()
        self._read_to: dict[int, int] = {}  # receipt partition -> offset after the last read
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._tail: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Reads every receipt given so far, then follows the topic in the background."""
        consumer = new_reader(self._bootstrap_servers, fetch_max_wait_ms=self._fetch_wait_ms)
        try:
            await consumer.start()
            partitions = await partitions_of(self._bootstrap_servers, [RECEIPT_TOPIC])
            for message in await read_until_end(consumer, dict.fromkeys(partitions, 0)):
                self.add(message)
        except KafkaError as exc:
            await consumer.stop()
            raise BrokerUnavailable(f"cannot read the receipts: {exc}") from exc
        except BaseException:
            await consumer.stop()
            raise
        self._tail = asyncio.create_task(self._follow(consumer), name="receipt-book")
        log.info("receipts.loaded", receipts=len(self._entries))

    async def stop(self) -> None:
        if self._tail is not None:
            self._tail.cancel()
            await asyncio.gather(self._tail, return_exceptions=True)
            self._tail = None

    async def _follow(self, consumer: object) -> None:
        try:
            while True:
                try:
                    batches = await consumer.getmany(timeout_ms=200)  # type: ignore[attr-defined]
                except KafkaError as exc:
                    log.warning("receipts.follow_failed", error=str(exc))
                    await asyncio.sleep(1.0)
                    continue
                for records in batches.values():
                    for record in records:
                        self.add(stored_message(record))
        finally:
            await consumer.stop()  # type: ignore[attr-defined]

    async def catch_up(self, partitions: Iterable[int]) -> None:
        """Reads the given receipt partitions up to their current end, from where the book
        has got to: called before a process starts deciding on an ingress partition, so
        that it knows every receipt the partition's previous owner gave."""
        starts = {TopicPartition(RECEIPT_TOPIC, p): self._read_to.get(p, 0) for p in partitions}
        consumer = new_reader(self._bootstrap_servers, fetch_max_wait_ms=self._fetch_wait_ms)
        try:
            await consumer.start()
            for message in await read_until_end(consumer, starts):
                self.add(message)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot read the receipts: {exc}") from exc
        finally:
            await consumer.stop()

    def add(self, message: StoredMessage) -> None:
        """Files one receipt message (from the topic, or just published by this process)."""
        self._read_to[message.partition] = max(self._read_to.get(message.partition, 0),
                                               message.offset + 1)
        if message.key is None:
            return
        submission_id = message.key.decode()
        known = self._entries.get(submission_id)
        if known is not None and (known.partition, known.offset) == (message.partition,
                                                                     message.offset):
            return  # filed already: published by this process, now read back
        self._file(submission_id, message)

    def _file(self, submission_id: str, message: StoredMessage) -> None:
        duplicate_of = message.header(H_DUPLICATE_OF)
        self._entries[submission_id] = _Entry(
            message.partition, message.offset,
            duplicate_of.decode() if duplicate_of is not None else None)
        if duplicate_of is None and message.header(H_STATUS) == ACCEPTED.encode():
            sender, digest = message.header(H_SENDER), message.header(H_DIGEST)
            if sender is not None and digest is not None:
                self._accepted.setdefault((sender.decode(), digest.decode()), submission_id)
        self._values[submission_id] = message.value
        self._values.move_to_end(submission_id)
        while len(self._values) > self._cache_size:
            self._values.popitem(last=False)
        for waiter in self._waiters.pop(submission_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def first_accepted(self, sender: str, digest: str) -> str | None:
        """The submission that first brought this document (same sender, same bytes) and
        was accepted; None when there was none."""
        return self._accepted.get((sender, digest))

    def __contains__(self, submission_id: object) -> bool:
        return submission_id in self._entries

    async def get(self, submission_id: str) -> Answer | None:
        entry = self._entries.get(submission_id)
        if entry is None:
            return None
        value = self._values.get(submission_id)
        if value is None:
            found = await read_at(self._bootstrap_servers,
                                  [(RECEIPT_TOPIC, entry.partition, entry.offset)])
            value = found[(RECEIPT_TOPIC, entry.partition, entry.offset)].value
        return Answer(SignedReceipt.decode(self._schemas, value), entry.duplicate_of)

    async def wait(self, submission_id: str, timeout_s: float) -> Answer | None:
        """The submission's receipt as soon as it is given; None after `timeout_s`."""
        if submission_id not in self._entries:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(submission_id, []).append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout_s)
            except TimeoutError:
                return None
            finally:
                waiters = self._waiters.get(submission_id, [])
                if waiter in waiters:
                    waiters.remove(waiter)
                if not waiters:
                    self._waiters.pop(submission_id, None)
        return await self.get(submission_id)


class ReceiptSigner:
    """Signs receipts in batches: one SM2 signature over the Merkle root of the receipts
    decided within `linger_ms` of each other (or while the previous batch was signed)."""

    def __init__(self, key: SM2PrivateKey, schemas: AvroSchemas, *, linger_ms: float = 2.0
                 ) -> None:
        self._signer = BatchSigner(key)
        self._schemas = schemas
        self._linger_s = linger_ms / 1000
        self._waiting: list[tuple[Receipt, bytes, asyncio.Future[SignedReceipt]]] = []
        self._signing: asyncio.Task[None] | None = None

    async def sign(self, receipt: Receipt) -> SignedReceipt:
        body = self._schemas.encode_body(RECEIPT_SCHEMA, receipt.to_avro())
        signed: asyncio.Future[SignedReceipt] = asyncio.get_running_loop().create_future()
        self._waiting.append((receipt, body, signed))
        if self._signing is None or self._signing.done():
            self._signing = asyncio.create_task(self._sign_waiting(), name="receipt-signer")
        return await signed

    async def _sign_waiting(self) -> None:
        while self._waiting:
            await asyncio.sleep(self._linger_s)
            batch, self._waiting = self._waiting, []
            bodies = [body for _, body, _ in batch]
            try:
                signed = await asyncio.to_thread(self._signer.sign, bodies)
            except Exception as exc:  # a key that cannot sign fails each receipt, loudly
                for *_, future in batch:
                    future.set_exception(exc)
                continue
            receipts = SignedReceipt.of_batch([r for r, _, _ in batch], bodies, signed)
            for (*_, future), receipt in zip(batch, receipts, strict=True):
                if not future.done():
                    future.set_result(receipt)
