"""The recipients' de-duplication store: ids and positions kept together, across reopening."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from gateway.deliveries.dedup import DedupStoreError, Position, SeenStore, event_identity
from gateway.kafka.names import H_EVENT_ID, StoredMessage
from gateway.kafka.wire import FETCH_WAIT_LIMIT_MS, longer_fetch_wait

TOPIC = "px.deliver.cn.customs.sh.v1"
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def test_ids_and_positions_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite"
    with SeenStore(path) as store:
        assert not store.seen(TOPIC, "e1")
        assert store.positions() == {}
        store.record([(TOPIC, "e1"), (TOPIC, "e2")], [Position(TOPIC, 0, 3), Position(TOPIC, 1, 1)],
                     at=T0)
        assert store.seen(TOPIC, "e1")
    with SeenStore(path) as store:
        assert store.seen(TOPIC, "e1") and store.seen(TOPIC, "e2")
        assert not store.seen("px.status.cn.customs.sh.v1", "e1")  # each topic its own stream
        assert store.positions() == {TopicPartition(TOPIC, 0): 3, TopicPartition(TOPIC, 1): 1}
        assert len(store) == 2
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_recording_again_keeps_the_first_sighting_and_moves_positions(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.sqlite") as store:
        store.record([(TOPIC, "e1")], [Position(TOPIC, 0, 1)], at=T0)
        store.record([(TOPIC, "e1"), (TOPIC, "e2")], [Position(TOPIC, 0, 5)],
                     at=T0 + timedelta(days=2))
        assert store.positions() == {TopicPartition(TOPIC, 0): 5}
        assert store.prune(T0 + timedelta(days=1)) == 1  # e1, first seen at T0
        assert not store.seen(TOPIC, "e1") and store.seen(TOPIC, "e2")


def test_prune_forgets_only_old_ids_and_never_positions(tmp_path: Path) -> None:
    with SeenStore(tmp_path / "seen.sqlite") as store:
        for day in range(5):
            store.record([(TOPIC, f"e{day}")], [Position(TOPIC, 0, day + 1)],
                         at=T0 + timedelta(days=day))
        assert store.prune(T0 + timedelta(days=3)) == 3
        assert [store.seen(TOPIC, f"e{day}") for day in range(5)] == [False] * 3 + [True] * 2
        assert store.positions() == {TopicPartition(TOPIC, 0): 5}
        assert store.prune(T0) == 0


def test_a_failed_record_keeps_neither_ids_nor_positions(tmp_path: Path) -> None:
    def positions() -> Iterator[Position]:
        yield Position(TOPIC, 0, 9)
        raise RuntimeError("crash half-way")

    with SeenStore(tmp_path / "seen.sqlite") as store:
        store.record([(TOPIC, "e1")], [Position(TOPIC, 0, 1)])
        with pytest.raises(RuntimeError):
            store.record([(TOPIC, "e2")], positions())
        assert not store.seen(TOPIC, "e2")
        assert store.positions() == {TopicPartition(TOPIC, 0): 1}
        store.record([(TOPIC, "e3")], [])  # the store is usable afterwards
        assert store.seen(TOPIC, "e3")


def test_a_file_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "seen.sqlite"
    SeenStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=7")
    with pytest.raises(DedupStoreError, match="schema version 7"):
        SeenStore(path)


def test_a_store_that_cannot_be_opened_says_where(tmp_path: Path) -> None:
    with pytest.raises(DedupStoreError, match="cannot open"):
        SeenStore(tmp_path / "no such directory" / "seen.sqlite")


def test_the_default_identity_is_the_event_id_header() -> None:
    def message(headers: tuple[tuple[str, bytes], ...]) -> StoredMessage:
        return StoredMessage(TOPIC, 0, 0, None, b"", headers, 0)

    assert event_identity(message(((H_EVENT_ID, b"0193a1b2-7000"),))) == "0193a1b2-7000"
    assert event_identity(message((("px-sender", b"cn.port.sh"),))) is None
    assert event_identity(message(((H_EVENT_ID, b""),))) is None


def test_a_starved_reader_waits_longer_step_by_step_up_to_the_limit() -> None:
    waits = [1]
    while (longer := longer_fetch_wait(waits[-1])) is not None:
        waits.append(longer)
    assert waits == [1, 4, 16, 64, 256, 1024, FETCH_WAIT_LIMIT_MS]
    assert longer_fetch_wait(0) == 1  # a zero wait grows too
