"""The receipts the gateway has given, read back from the receipt topic; and their signer.

Every gateway process keeps a book of all receipts (where each is on the topic, in an index
on disk; the latest ones' bytes, in memory), so that whichever process an HTTP client reaches
can answer for a submission another process decided, and so that the process owning an
ingress partition recognises a document it already accepted, also after a restart
(de-duplication).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gateway.errors import BrokerUnavailable, ReceiptIndexError
from gateway.kafka.names import (
    H_DIGEST,
    H_DUPLICATE_OF,
    H_DXP_TRANS_INFO,
    H_IDENTITY,
    H_SENDER,
    H_STATUS,
    StoredMessage,
    Topics,
)
from gateway.kafka.wire import (
    Broker,
    PlaceReader,
    new_reader,
    own_reader,
    pages_until_end,
    partitions_of,
    read_until_end,
    stop_consumer,
    stored_message,
)
from gateway.receipts.index import IndexEntry, Position, ReceiptIndex
from gateway.receipts.receipt import ACCEPTED, SignedReceipt
from message_formats import AvroSchemas
from message_formats.dxp import DxpTransInfo

log = structlog.get_logger(__name__)

# How long the follower's fetches wait at the broker. It learns the receipts other processes
# give, which nothing waits for but an HTTP door asking after another process's document
# (a process taking over a partition reads its receipts first, `catch_up`): 5 ms, like the
# ingress, cost the gateway and the local broker about 0.05 of a core each, idle or not,
# in 200 fetches a second.
FOLLOW_WAIT_MS = 100

# Between attempts to rebuild a failed index: doubled after each failed one, up to the last.
_FIRST_PAUSE_S = 1.0
_LAST_PAUSE_S = 30.0


@dataclass(frozen=True, slots=True)
class Answer:
    """A submission's receipt, and the first submission's id when it was a duplicate; for a
    DXP envelope read by the gateway, its TransInfo (what the door's DxpRep echoes)."""

    receipt: SignedReceipt
    duplicate_of: str | None
    trans_info: DxpTransInfo | None = None


def trans_info_header(info: DxpTransInfo) -> bytes:
    """An envelope's TransInfo as the px-dxp-trans-info header of its receipt: JSON."""
    return json.dumps([info.cop_msg_id, info.sender_id, list(info.receiver_ids),
                       info.created_text, info.msg_type], ensure_ascii=False).encode()


def trans_info_of(header: bytes | None) -> DxpTransInfo | None:
    if header is None:
        return None
    cop_msg_id, sender_id, receiver_ids, created_text, msg_type = json.loads(header)
    return DxpTransInfo(cop_msg_id, sender_id, tuple(receiver_ids), created_text, msg_type)


class ReceiptBook:
    """`index_dir` holds the index this process keeps of the topic (gateway.receipts.index);
    None keeps it in memory, and then every start reads the whole receipt topic."""

    def __init__(self, bootstrap_servers: Broker, schemas: AvroSchemas, *,
                 topics: Topics, index_dir: Path | None = None,
                 fetch_wait_ms: int = 5, follow_wait_ms: int = FOLLOW_WAIT_MS,
                 cache_size: int = 20_000) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topics.receipt
        self._schemas = schemas
        self._index_dir = index_dir
        self._fetch_wait_ms = fetch_wait_ms
        self._follow_wait_ms = follow_wait_ms
        self._cache_size = cache_size
        self._index: ReceiptIndex | None = None
        # A receipt's value and its px-dxp-trans-info header, by submission id.
        self._values: OrderedDict[str, tuple[bytes, bytes | None]] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._tail: asyncio.Task[None] | None = None
        self._following: AIOKafkaConsumer | None = None
        self._reader = PlaceReader(bootstrap_servers)

    @property
    def index(self) -> ReceiptIndex:
        if self._index is None:
            raise RuntimeError("the receipt book is not started")
        return self._index

    @property
    def sound(self) -> bool:
        """Whether the book follows the receipt topic and its index answers. If not,
        de-duplication and answers for other processes' submissions are no longer sure, and
        the process reports itself not ready."""
        return (self._tail is not None and not self._tail.done()
                and self._index is not None and not self._index.failed)

    async def start(self) -> None:
        """Reads the receipts given since the index was last written (all of them, when it
        is new or was made from another topic), then follows the topic in the background."""
        self._index = ReceiptIndex.open(self._index_dir)
        consumer = new_reader(self._bootstrap_servers, fetch_max_wait_ms=self._follow_wait_ms)
        try:
            await consumer.start()
            partitions = await partitions_of(self._bootstrap_servers, [self._topic])
            read = await self._read_since_index(consumer, partitions)
        except KafkaError as exc:
            await self._abandon(consumer)
            raise BrokerUnavailable(f"cannot read the receipts: {exc}") from exc
        except BaseException:
            await self._abandon(consumer)
            raise
        self._following = consumer
        self._tail = asyncio.create_task(self._follow(consumer, partitions), name="receipt-book")
        log.info("receipts.loaded", read=read, index=self._index.where)

    async def _read_since_index(self, consumer: AIOKafkaConsumer,
                                partitions: list[TopicPartition]) -> int:
        """Reads each partition from the last record the index has read (to check that it is
        still there, with the same key), and files what follows; starts the index afresh
        from offset 0 when the check fails. The number of receipts read."""
        index = self.index
        positions = index.positions()
        starts = {tp: max(positions[tp.partition].next_offset - 1, 0)
                  if tp.partition in positions else 0 for tp in partitions}
        read = await self._file_until_end(consumer, starts, positions)
        if read is None:
            log.warning("receipts.index_not_of_this_topic", index=index.where,
                        action="reading every receipt again")
            index.clear()
            read = await self._file_until_end(consumer, dict.fromkeys(partitions, 0), {})
            assert read is not None
        index.commit()
        return read

    async def _file_until_end(self, consumer: AIOKafkaConsumer,
                              starts: dict[TopicPartition, int],
                              positions: dict[int, Position]) -> int | None:
        """Files every receipt from `starts` to the end, a fetched page at a time (a whole
        topic read afresh is never held at once), committing as it goes; the number read.
        None as soon as a partition's first message is not the last one the index read
        there (`positions`): the index is then not of this topic."""
        read, checked = 0, set[int]()
        async with contextlib.aclosing(pages_until_end(consumer, starts)) as pages:
            async for page in pages:
                for message in page:
                    if message.partition not in checked:
                        if not _continues(positions.get(message.partition), message):
                            return None
                        checked.add(message.partition)
                    self.add(message)
                read += len(page)
                self.index.commit_if_due()
        unchecked = [p for p, position in positions.items()
                     if p not in checked and position.next_offset > 0]
        return None if unchecked else read

    async def _abandon(self, consumer: AIOKafkaConsumer) -> None:
        await stop_consumer(consumer)
        self._close_index()

    async def stop(self) -> None:
        """Stops following, then the follower's consumer: here, not in the follower, which a
        stop coming at once after the start cancels before it ever runs."""
        if self._tail is not None:
            self._tail.cancel()
            await asyncio.gather(self._tail, return_exceptions=True)
            self._tail = None
        if self._following is not None:
            await stop_consumer(self._following)
            self._following = None
        await self._reader.close()
        self._close_index()

    def _close_index(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    async def _follow(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
                      ) -> None:
        """Files each receipt given from now on. An index that fails is rebuilt here, as
        often as it takes, with a growing pause between attempts."""
        pause_s = _FIRST_PAUSE_S
        try:
            while True:
                try:
                    if self.index.failed:
                        await self._rebuild_index(consumer, partitions)
                        pause_s = _FIRST_PAUSE_S
                    batches = await consumer.getmany(timeout_ms=200)
                    for records in batches.values():
                        for record in records:
                            self.add(stored_message(record))
                    self.index.commit_if_due()
                except (KafkaError, BrokerUnavailable) as exc:
                    log.warning("receipts.follow_failed", error=str(exc))
                    await asyncio.sleep(1.0)
                except ReceiptIndexError:  # logged by the index
                    await asyncio.sleep(pause_s)
                    pause_s = min(2 * pause_s, _LAST_PAUSE_S)
        except Exception:
            log.exception("receipts.follow_stopped")
            raise

    async def _rebuild_index(self, consumer: AIOKafkaConsumer,
                             partitions: list[TopicPartition]) -> None:
        """What the index had not committed may be lost: a new connection, and the topic
        read again from the positions its file holds, as at a start."""
        index = self.index
        index.reopen()
        read = await self._read_since_index(consumer, partitions)
        index.recovered()
        log.info("receipts.index_recovered", read=read, index=index.where)

    async def catch_up(self, partitions: Iterable[int]) -> None:
        """Reads the given receipt partitions up to their current end, from where the book
        has got to: called before a process starts deciding on an ingress partition, so
        that it knows every receipt the partition's previous owner gave."""
        read = self.index.positions()
        starts = {TopicPartition(self._topic, p): read[p].next_offset if p in read else 0
                  for p in partitions}
        async with own_reader(self._bootstrap_servers, "the receipts",
                              fetch_max_wait_ms=self._fetch_wait_ms) as consumer:
            for message in await read_until_end(consumer, starts):
                self.add(message)

    def add(self, message: StoredMessage) -> None:
        """Files one receipt message (from the topic, or just published by this process).
        Once the book is stopped, a receipt published by a document still finishing is left
        to the topic, where the next start reads it."""
        self._add(message, fresh=False)

    def add_published(self, message: StoredMessage) -> None:
        """`add` of a receipt this process has just published: at a place no receipt was
        filed at before, so not looked up first (one query less per document)."""
        self._add(message, fresh=True)

    def _add(self, message: StoredMessage, *, fresh: bool) -> None:
        index = self._index
        if index is None:
            return
        index.advance(message.partition, message.offset, message.key)
        if message.key is None:
            return
        submission_id = message.key.decode()
        known = None if fresh else index.entry(submission_id)
        if known is not None and (known.partition, known.offset) == (message.partition,
                                                                     message.offset):
            return  # filed already: published by this process, now read back
        self._file(submission_id, message)

    def _file(self, submission_id: str, message: StoredMessage) -> None:
        duplicate_of = message.header(H_DUPLICATE_OF)
        accepted = None
        if duplicate_of is None and message.header(H_STATUS) == ACCEPTED.encode():
            sender = message.header(H_SENDER)
            digest = message.header(H_IDENTITY) or message.header(H_DIGEST)
            if sender is not None and digest is not None:
                accepted = (sender.decode(), digest.decode())
        self.index.file(submission_id, IndexEntry(
            message.partition, message.offset,
            duplicate_of.decode() if duplicate_of is not None else None), accepted)
        self._remember(submission_id, message)
        for waiter in self._waiters.pop(submission_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    def _sure_index(self) -> ReceiptIndex:
        """The index, to answer from; ReceiptIndexError while it is failed and not yet
        rebuilt, since it may then lack receipts it had filed."""
        index = self.index
        if index.failed:
            raise ReceiptIndexError(f"receipt index {index.where} failed; being rebuilt")
        return index

    def _remember(self, submission_id: str, message: StoredMessage
                  ) -> tuple[bytes, bytes | None]:
        kept = self._values[submission_id] = (message.value, message.header(H_DXP_TRANS_INFO))
        self._values.move_to_end(submission_id)
        while len(self._values) > self._cache_size:
            self._values.popitem(last=False)
        return kept

    def first_accepted(self, sender: str, identity: str) -> str | None:
        """The submission that first brought this document (same sender, same identity: its
        bytes' digest, or a DXP envelope's CopMsgId) and was accepted; None when there was
        none."""
        return self._sure_index().first_accepted(sender, identity)

    def __contains__(self, submission_id: object) -> bool:
        return (isinstance(submission_id, str)
                and self._sure_index().entry(submission_id) is not None)

    async def get(self, submission_id: str) -> Answer | None:
        """The submission's receipt; None when the book has none, or when the broker no
        longer holds the receipt the index points at (a memory-only broker restarted under a
        running process: the next start indexes the topic afresh)."""
        entry = self._sure_index().entry(submission_id)
        if entry is None:
            return None
        kept = self._values.get(submission_id)
        if kept is None:
            message = await self._reader.read((self._topic, entry.partition, entry.offset))
            if message is None or message.key != submission_id.encode():
                log.warning("receipts.not_on_topic", submission_id=submission_id,
                            partition=entry.partition, offset=entry.offset)
                return None
            kept = self._remember(submission_id, message)
        value, trans_info = kept
        return Answer(SignedReceipt.decode(self._schemas, value), entry.duplicate_of,
                      trans_info_of(trans_info))

    async def wait(self, submission_id: str, timeout_s: float) -> Answer | None:
        """The submission's receipt as soon as it is given; None after `timeout_s`."""
        if submission_id not in self:
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


def _continues(position: Position | None, first: StoredMessage) -> bool:
    """Whether the first message read from a partition is the last one the index read there:
    the same offset, the same key. Not so when the broker has lost the topic (a memory-only
    broker restarted) or the index was made against another broker."""
    if position is None or position.next_offset == 0:
        return True
    return first.offset == position.next_offset - 1 and first.key == position.last_key
