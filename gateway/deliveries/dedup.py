"""Consumer-side de-duplication for recipients of the gateway's topics.

The gateway delivers at least once: after a crash it may publish a document's event,
deliveries and status events again, under the same event id (header `px-event-id`). A
recipient reads with a `DedupReader`, which hands over each event id of a topic once, also
across the recipient's restarts: the ids it has handled and how far it has read are kept
together in one SQLite file and always change in the same transaction, so a crash never
leaves a message marked handled without the position past it, or the reverse.

A message is handed over again after a restart only if it was handed over and not marked
done: at least once on the recipient's side too, never silently skipped.

A recipient reading its delivery topic gives the reader a `DeliveryVerifier`
(gateway.deliveries.proof): a delivery the gateway did not seal for it (injected, altered,
sealed by another key or for another recipient) is then never handed over, and never
counts as seen, so it cannot stand in for the real one; it is refused with its code, and the
reader reads on past it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gateway.clock import utc_now
from gateway.deliveries.proof import DeliveryRefused, DeliveryVerifier
from gateway.errors import BrokerUnavailable, GatewayError
from gateway.kafka.names import H_EVENT_ID, StoredMessage, is_delivery_topic
from gateway.kafka.wire import (
    Broker,
    OffsetProgress,
    answered_since,
    below_end,
    longer_fetch_wait,
    new_reader,
    partitions_of,
    stop_consumer,
    stored_message,
    unavailable,
    wall_clock_ms,
)

log = structlog.get_logger(__name__)

Identity = Callable[[StoredMessage], str | None]
OnRefused = Callable[[StoredMessage, DeliveryRefused], None]

DEDUP_VERIFIER_REQUIRED = "DEDUP_VERIFIER_REQUIRED"
_SCHEMA_VERSION = 1
# Polls in a row that brought nothing although the broker had answered from below an end:
# two, so that a fetch answered just as a poll timed out (its records kept for the next
# poll) does not lengthen the wait.
_STARVED_POLLS = 2
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS seen (
        stream TEXT NOT NULL,
        id TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        PRIMARY KEY (stream, id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS seen_by_age ON seen (first_seen_ms)",
    """CREATE TABLE IF NOT EXISTS positions (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    ) WITHOUT ROWID""",
    # Where a recipient pulling over HTTP goes on: the cursor its last page gave, per door.
    """CREATE TABLE IF NOT EXISTS cursors (
        source TEXT PRIMARY KEY,
        cursor TEXT NOT NULL
    ) WITHOUT ROWID""",
)


class DedupStoreError(GatewayError):
    code = "DEDUP_STORE_ERROR"


def event_identity(message: StoredMessage) -> str | None:
    """The gateway's event id; None (never de-duplicated) when the message has none."""
    value = message.header(H_EVENT_ID)
    return value.decode("utf-8", "replace") if value else None


@dataclass(frozen=True, slots=True)
class Position:
    """The next offset to read of one partition."""

    topic: str
    partition: int
    next_offset: int


class SeenStore:
    """Handled ids per stream and read positions per partition, in one SQLite file (WAL).

    For one reader at a time; not thread-safe.
    """

    __slots__ = ("_db", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # Autocommit: every change below is an explicit BEGIN IMMEDIATE ... COMMIT.
            self._db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise DedupStoreError(f"cannot open {path}: {exc}") from exc
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        self._query("PRAGMA journal_mode=WAL")
        # FULL: a commit survives a power cut too, not only a crash of the process.
        self._query("PRAGMA synchronous=FULL")
        version = self._query("PRAGMA user_version")[0][0]
        if version not in (0, _SCHEMA_VERSION):
            raise DedupStoreError(f"{self.path} has schema version {version}, "
                                  f"expected {_SCHEMA_VERSION}")
        with self._transaction():
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SeenStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def seen(self, stream: str, id: str) -> bool:
        return bool(self._query("SELECT 1 FROM seen WHERE stream = ? AND id = ?", (stream, id)))

    def positions(self) -> dict[TopicPartition, int]:
        rows = self._query("SELECT topic, partition, next_offset FROM positions")
        return {TopicPartition(topic, partition): offset for topic, partition, offset in rows}

    def cursor(self, source: str) -> str | None:
        """The cursor kept for `source` (an HTTP pull's URL), None when none is."""
        rows = self._query("SELECT cursor FROM cursors WHERE source = ?", (source,))
        return str(rows[0][0]) if rows else None

    def record(
        self,
        ids: Iterable[tuple[str, str]],
        positions: Iterable[Position],
        *,
        at: datetime | None = None,
        cursor: tuple[str, str] | None = None,
    ) -> None:
        """Stores the (stream, id) pairs not stored yet, sets the positions and the
        (source, cursor) when given, all in one transaction: either all of it is kept or
        none."""
        first_seen_ms = _millis(at or utc_now())
        with self._transaction():
            if cursor is not None:
                self._db.execute(
                    "INSERT INTO cursors (source, cursor) VALUES (?, ?) "
                    "ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor", cursor)
            self._db.executemany(
                "INSERT OR IGNORE INTO seen (stream, id, first_seen_ms) VALUES (?, ?, ?)",
                ((stream, id_, first_seen_ms) for stream, id_ in ids))
            self._db.executemany(
                "INSERT INTO positions (topic, partition, next_offset) VALUES (?, ?, ?) "
                "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                ((p.topic, p.partition, p.next_offset) for p in positions))

    def prune(self, older_than: datetime) -> int:
        """Forgets ids first seen before `older_than`; returns how many. A duplicate that
        arrives after its id was forgotten is handed over again, so keep ids longer than
        the gateway could take to publish something again."""
        with self._transaction():
            cursor = self._db.execute("DELETE FROM seen WHERE first_seen_ms < ?",
                                      (_millis(older_than),))
        return cursor.rowcount

    def __len__(self) -> int:
        return int(self._query("SELECT count(*) FROM seen")[0][0])

    def _query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise DedupStoreError(f"cannot read {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise DedupStoreError(f"cannot write {self.path}: {exc}") from exc


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


# -- the reader --------------------------------------------------------------------------------


class DedupReader:
    """Reads `topics` from the positions in `store_path`, handing over each id once.

    ```
    verifier = DeliveryVerifier(keyring, "cn.customs.sh")
    async with DedupReader(servers, [topics.delivery("cn.customs.sh")], path,
                           verifier=verifier) as reader:
        async for batch in reader.batches():
            handle(batch)
            reader.mark_done(batch)
    ```

    Every partition of the topics is assigned (no consumer group) and sought to its stored
    position, 0 when none. A message whose id was handled before on the same topic, or was
    handed over in this session already, is skipped and its position still advanced.
    Messages without an id are handed over as they come, never de-duplicated. Partitions
    that appear later (a topic created or grown) are picked up every `discover_every_s`.

    With a `verifier`, each message is checked before anything else; one refused is reported
    to `on_refused` (and logged with its place and code, never its content), and passed. A
    delivery topic is never read without one (`DEDUP_VERIFIER_REQUIRED`): anyone who can
    write to it could otherwise hand the recipient a forged delivery.

    Fetches wait `fetch_max_wait_ms` at first; when the broker answers them from below a
    partition's end with nothing, poll after poll (tansu on S3 storage does so when the wait
    is shorter than its storage takes, see `longer_fetch_wait`), the reader waits longer
    from then on, else it would never read on.
    """

    def __init__(
        self,
        bootstrap_servers: Broker,
        topics: Sequence[str],
        store_path: Path,
        *,
        identity: Identity = event_identity,
        fetch_max_wait_ms: int = 5,
        max_records: int = 500,
        discover_every_s: float = 5.0,
        verifier: DeliveryVerifier | None = None,
        on_refused: OnRefused | None = None,
    ) -> None:
        if verifier is None and any(is_delivery_topic(topic) for topic in topics):
            raise GatewayError("a delivery topic is read with a DeliveryVerifier: an unverified "
                               "reader would hand over a forged delivery",
                               code=DEDUP_VERIFIER_REQUIRED)
        self.bootstrap_servers = bootstrap_servers
        self.topics = tuple(topics)
        self.store_path = store_path
        self._identity = identity
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._max_records = max_records
        self._discover_every_s = discover_every_s
        self._verifier = verifier
        self._on_refused = on_refused
        self._store: SeenStore | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._progress: dict[TopicPartition, OffsetProgress] = {}
        self._stored: dict[TopicPartition, int] = {}
        self._open_ids: set[tuple[str, str]] = set()
        self._next_discovery = 0.0
        self._starved_polls = 0

    async def __aenter__(self) -> DedupReader:
        self._store = SeenStore(self.store_path)
        self._stored = self._store.positions()
        # No consumer group: the positions live in the store, next to the ids.
        self._consumer = new_reader(self.bootstrap_servers,
                                    fetch_max_wait_ms=self._fetch_max_wait_ms)
        try:
            await self._consumer.start()
            await self._discover()
        except BaseException as exc:
            await self._close()
            if isinstance(exc, KafkaError):
                raise await unavailable(self.bootstrap_servers, f"cannot read "
                                        f"{list(self.topics)} from {self.bootstrap_servers}",
                                        exc) from exc
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._store is not None:
                self._save_positions(())
        finally:
            await self._close()

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        store, self._store = self._store, None
        try:
            if consumer is not None:
                await stop_consumer(consumer)
        finally:
            if store is not None:
                store.close()

    @property
    def fetch_wait_ms(self) -> int:
        """How long the reader's fetches wait now: `fetch_max_wait_ms`, or longer once the
        broker's storage needed longer."""
        return self._fetch_max_wait_ms

    @property
    def positions(self) -> Mapping[TopicPartition, int]:
        """Per partition, the offset before which every message was marked done or skipped."""
        return {tp: progress.safe for tp, progress in self._progress.items()}

    async def batches(self) -> AsyncIterator[list[StoredMessage]]:
        """New messages as they arrive, in batches of at least one; runs until the caller
        stops iterating."""
        while True:
            batch = await self.poll()
            if batch:
                yield batch

    async def poll(self, timeout_ms: int = 100) -> list[StoredMessage]:
        """One fetch: the new messages among what arrived (possibly none)."""
        consumer = self._require_consumer()
        if time.monotonic() >= self._next_discovery:
            await self._rediscover()
        since_ms = wall_clock_ms()
        try:
            fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=self._max_records)
        except KafkaError as exc:
            raise BrokerUnavailable(f"reading {list(self.topics)} failed: {exc}") from exc
        fresh: list[StoredMessage] = []
        for tp, records in sorted(fetched.items(), key=lambda item: item[0]):
            fresh += self._take(tp, [stored_message(record) for record in records])
        if not fresh and self._skipped_past_stored():
            self._save_positions(())  # only duplicates: keep from reading them again
        if self._starved(consumer, bool(fetched), since_ms):
            await self._wait_longer()
        return fresh

    def mark_done(self, messages: Iterable[StoredMessage]) -> None:
        """Records the messages' ids and moves the positions past them, in one transaction."""
        messages = list(messages)
        for message in messages:
            progress = self._progress.get(TopicPartition(message.topic, message.partition))
            if progress is not None:
                progress.finished(message.offset)
        ids = [key for key in map(self._key, messages) if key is not None]
        self._save_positions(ids)
        self._open_ids.difference_update(ids)

    def _take(self, tp: TopicPartition, messages: list[StoredMessage]) -> list[StoredMessage]:
        """The messages of one partition's fetch not handled before; notes where it ends."""
        progress = self._progress[tp]
        store = self._require_store()
        fresh = []
        for message in messages:
            if not self._verified(message):
                continue
            key = self._key(message)
            if key is not None and (key in self._open_ids or store.seen(*key)):
                log.debug("dedup.skipped", topic=tp.topic, partition=tp.partition,
                          offset=message.offset)
                continue
            if key is not None:
                self._open_ids.add(key)
            progress.started(message.offset)
            fresh.append(message)
        if messages:
            progress.passed(messages[-1].offset)
        return fresh

    def _verified(self, message: StoredMessage) -> bool:
        """Whether the message may be handed over: always, without a verifier."""
        if self._verifier is None:
            return True
        try:
            self._verifier.check(message)
        except DeliveryRefused as exc:
            log.warning("dedup.refused", topic=message.topic, partition=message.partition,
                        offset=message.offset, code=exc.code)
            if self._on_refused is not None:
                self._on_refused(message, exc)
            return False
        return True

    def _starved(self, consumer: AIOKafkaConsumer, brought: bool, since_ms: int) -> bool:
        """Whether this poll was the last of `_STARVED_POLLS` in a row that brought nothing
        though the broker had answered, during the poll, for a partition below its end. A poll
        without an answer (the broker down, or a long fetch still under way) does not count."""
        behind = below_end(consumer, {tp: p.next_offset for tp, p in self._progress.items()})
        if brought or not behind:
            self._starved_polls = 0
        elif answered_since(consumer, behind, since_ms):
            self._starved_polls += 1
        if self._starved_polls < _STARVED_POLLS:
            return False
        self._starved_polls = 0
        return True

    async def _wait_longer(self) -> None:
        """Goes on with a consumer whose fetches wait longer (aiokafka fixes the wait when it
        makes a consumer), from where this session has read. When that consumer cannot be
        started, the old one goes on and the next starved polls try again."""
        wait_ms = longer_fetch_wait(self._fetch_max_wait_ms)
        if wait_ms is None:
            return
        consumer = new_reader(self.bootstrap_servers, fetch_max_wait_ms=wait_ms)
        try:
            await consumer.start()
        except BaseException as exc:
            await stop_consumer(consumer)
            if not isinstance(exc, KafkaError):
                raise
            log.warning("dedup.fetch_wait_unchanged", topics=list(self.topics), error=str(exc))
            return
        old, self._consumer = self._consumer, consumer
        self._fetch_max_wait_ms = wait_ms
        self._assign(consumer)
        if old is not None:
            await stop_consumer(old)
        log.warning("dedup.fetch_wait_lengthened", topics=list(self.topics),
                    fetch_wait_ms=wait_ms)

    def _key(self, message: StoredMessage) -> tuple[str, str] | None:
        identity = self._identity(message)
        return (message.topic, identity) if identity is not None else None

    def _skipped_past_stored(self) -> bool:
        return any(progress.safe != self._stored.get(tp, 0)
                   for tp, progress in self._progress.items())

    def _save_positions(self, ids: Sequence[tuple[str, str]]) -> None:
        moved = {tp: progress.safe for tp, progress in self._progress.items()
                 if progress.safe != self._stored.get(tp, 0)}
        if not ids and not moved:
            return
        self._require_store().record(
            ids, [Position(tp.topic, tp.partition, offset) for tp, offset in moved.items()])
        self._stored.update(moved)

    async def _rediscover(self) -> None:
        """Looks for new partitions; the ones already assigned go on being read meanwhile,
        so a broker that does not answer now is asked again later."""
        try:
            await self._discover()
        except BrokerUnavailable as exc:
            log.warning("dedup.discovery_failed", topics=list(self.topics), error=exc.message)

    async def _discover(self) -> None:
        """Assigns the topics' partitions, the new ones from their stored positions; the
        others carry on where they are."""
        consumer = self._require_consumer()
        self._next_discovery = time.monotonic() + self._discover_every_s
        found = await partitions_of(self.bootstrap_servers, self.topics)
        new = [tp for tp in found if tp not in self._progress]
        if not new:
            return
        for tp in new:
            self._progress[tp] = OffsetProgress(self._stored.get(tp, 0))
        self._assign(consumer)
        log.info("dedup.assigned", topics=list(self.topics), partitions=len(self._progress))

    def _assign(self, consumer: AIOKafkaConsumer) -> None:
        """Assigns every known partition, each from the next offset this session would read."""
        consumer.assign(list(self._progress))
        for tp, progress in self._progress.items():
            consumer.seek(tp, progress.next_offset)

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise GatewayError("the reader is not open", code="DEDUP_READER_CLOSED")
        return self._consumer

    def _require_store(self) -> SeenStore:
        if self._store is None:
            raise GatewayError("the reader is not open", code="DEDUP_READER_CLOSED")
        return self._store
