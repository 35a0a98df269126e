"""The history of one document across its versions, senders and trail chains, read from a
trail written by the real TrailWriter to an in-memory topic."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crypto import SM2PrivateKey
from gateway.home.config import TrailSettings
from gateway.kafka.names import StoredMessage, Topics
from gateway.trail.writer import TrailCodec, TrailWriter
from message_formats import AvroSchemas
from replay import history as history_module
from replay.bundle_cli import run_trace
from replay.history import (
    DocumentHistory,
    describe_history,
    document_history,
    trace_kafka,
)
from tests.unit.trail_support import MemoryTopic

TOPICS = Topics()  # the production names, no prefix
SCHEMAS = AvroSchemas()
GATEWAY_KEY = SM2PrivateKey.generate()
SENDER_KEY_ID = "ab" * 32
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
KEY = "BL-2026-0001"


class Trail:
    """Two chains (ingress partitions 0 and 1), records written at the times given."""

    def __init__(self) -> None:
        self.topic = MemoryTopic()
        self.writers = [
            TrailWriter(producer=self.topic, codec=TrailCodec(SCHEMAS), key=GATEWAY_KEY,
                        topics=TOPICS, partition=p, settings=TrailSettings(seal_every=3))
            for p in (0, 1)
        ]

    async def submission(self, event_id: str, minute: int, *, partition: int = 0,
                         business_key: str | None = KEY, version: int = 1,
                         sender: str = "cn.port.sh", outcomes: tuple[dict[str, Any], ...] = ()
                         ) -> None:
        writer = self.writers[partition]
        at = T0 + timedelta(minutes=minute)
        base = {"submission_id": f"sub-{event_id}", "event_id": event_id, "sender": sender,
                "format_id": "manifest-xml", "digest_sm3": event_id.encode().hex().ljust(64, "0")}
        await writer.append(**base, kind="RECEIVED", time=at, reason="received")
        parsed = {**base, "business_key": business_key, "document_version": version,
                  "document_type": "CustomsCargoManifest", "signature_key_id": SENDER_KEY_ID}
        for n, outcome in enumerate(outcomes, 1):
            await writer.append(**parsed, time=at + timedelta(seconds=n), **outcome)


ACCEPTED = {"kind": "ACCEPTED", "reason": "routed to 2 recipient(s)"}


def delivered(recipient: str, contract: str, version: int) -> dict[str, Any]:
    return {"kind": "DELIVERED", "recipient": recipient, "contract_id": contract,
            "contract_version": version, "reason": f"full sharing under {contract}"}


DENIED_MSA = {"kind": "DENIED", "recipient": "cn.msa", "error_code": "ROUTE_NO_CONTRACT",
              "contract_id": "C-MSA", "contract_version": 1, "reason": "no contract covers it"}


def write_trail() -> list[StoredMessage]:
    trail = Trail()

    async def run() -> None:
        # Written out of time order on purpose: the history orders by time, then chain/seq.
        await trail.submission("ev-2", 10, partition=1, version=2,
                               outcomes=(ACCEPTED, delivered("cn.customs", "C-CUSTOMS", 3)))
        await trail.submission("ev-1", 0, version=1,
                               outcomes=(ACCEPTED, delivered("cn.customs", "C-CUSTOMS", 2),
                                         DENIED_MSA))
        await trail.submission("ev-other", 5, business_key="BL-OTHER", outcomes=(ACCEPTED,))
        await trail.submission("ev-nb", 7, sender="cn.port.nb", outcomes=(ACCEPTED,))
        await trail.submission("ev-bad", 8, business_key=None,
                               outcomes=({"kind": "REJECTED", "error_code": "XML_MALFORMED",
                                          "reason": "not well-formed"},))
        for writer in trail.writers:
            await writer.seal()

    asyncio.run(run())
    return trail.topic.messages


TRAIL = write_trail()


def history(**kwargs: Any) -> DocumentHistory:
    return document_history(TRAIL, SCHEMAS, KEY, **kwargs)


def test_every_record_of_every_version_is_found_including_those_before_parsing() -> None:
    found = history(sender="cn.port.sh")
    assert [(r.event_id, r.kind) for r in found.records] == [
        ("ev-1", "RECEIVED"), ("ev-1", "ACCEPTED"), ("ev-1", "DELIVERED"), ("ev-1", "DENIED"),
        ("ev-2", "RECEIVED"), ("ev-2", "ACCEPTED"), ("ev-2", "DELIVERED"),
    ]
    assert found.records[0].entry["business_key"] is None
    assert [v.event_id for v in found.versions] == ["ev-1", "ev-2"]
    assert [v.document_version for v in found.versions] == [1, 2]
    assert found.versions[1].records[0].chain == "p1"


def test_records_are_ordered_by_time_then_chain_and_seq() -> None:
    found = history()
    keys = [(r.time, r.chain, r.seq) for r in found.records]
    assert keys == sorted(keys)


def test_records_of_the_same_time_are_ordered_by_chain_then_seq() -> None:
    trail = Trail()

    async def run() -> None:
        for n in range(3):
            await trail.submission(f"ev-{n}", 0, partition=n % 2, outcomes=(ACCEPTED,))

    asyncio.run(run())
    found = document_history(trail.topic.messages, SCHEMAS, KEY)
    # Each RECEIVED at minute 0, each ACCEPTED a second later.
    assert [(r.chain, r.seq, r.kind) for r in found.records] == [
        ("p0", 0, "RECEIVED"), ("p0", 2, "RECEIVED"), ("p1", 0, "RECEIVED"),
        ("p0", 1, "ACCEPTED"), ("p0", 3, "ACCEPTED"), ("p1", 1, "ACCEPTED"),
    ]


def test_the_sender_narrows_a_business_key_two_agencies_use() -> None:
    assert {v.sender for v in history().versions} == {"cn.port.sh", "cn.port.nb"}
    assert [v.event_id for v in history(sender="cn.port.nb").versions] == ["ev-nb"]
    assert not history(sender="cn.nobody").found


def test_a_version_knows_what_was_parsed_from_it() -> None:
    first = history(sender="cn.port.sh").versions[0]
    assert (first.sender, first.format_id, first.document_type, first.submission_id) == (
        "cn.port.sh", "manifest-xml", "CustomsCargoManifest", "sub-ev-1")
    assert first.signature_key_id == SENDER_KEY_ID
    assert first.first_of("DENIED") is not None and first.first_of("REJECTED") is None


def test_the_description_lists_each_version_its_decisions_and_who_received_what() -> None:
    text = describe_history(history(sender="cn.port.sh"))
    assert text.splitlines()[0] == (
        f"document {KEY} from cn.port.sh: 2 submission(s), 7 trail record(s)")
    assert "version 1 · event ev-1 · sender cn.port.sh · format manifest-xml · " \
           "CustomsCargoManifest · sm3 " in text
    assert ("  2026-03-01T08:00:03.000Z · DENIED · cn.msa · C-MSA v1 · ROUTE_NO_CONTRACT · "
            "no contract covers it  [p0-3]") in text
    assert "  2026-03-01T08:00:02.000Z · DELIVERED · cn.customs · C-CUSTOMS v2 · " in text
    summary = text.split("shared with:\n")[1].splitlines()
    assert summary == [
        "  cn.customs  received version 1 under C-CUSTOMS v2 at 2026-03-01T08:00:02.000Z",
        "              received version 2 under C-CUSTOMS v3 at 2026-03-01T08:10:02.000Z",
        "  cn.msa      denied version 1 (ROUTE_NO_CONTRACT) under C-MSA v1 at "
        "2026-03-01T08:00:03.000Z",
    ]


def test_with_several_senders_the_summary_says_whose_version_was_received() -> None:
    summary = describe_history(history()).split("shared with:\n")[1]
    assert "received version 1 from cn.port.sh under C-CUSTOMS v2" in summary


def test_an_unknown_document_is_described_as_such() -> None:
    found = document_history(TRAIL, SCHEMAS, "BL-NOPE")
    assert not found.found and found.versions == ()
    assert describe_history(found) == "document BL-NOPE: no trail record names it"


def test_undecodable_messages_are_counted_not_fatal() -> None:
    garbage = StoredMessage(TOPICS.trail, 0, 99, None, b"not avro", (), 0)
    found = document_history([*TRAIL, garbage], SCHEMAS, KEY, sender="cn.port.sh")
    assert found.unreadable == 1 and len(found.records) == 7
    assert "1 message(s) on the trail could not be decoded" in describe_history(found)


def test_trace_kafka_reads_the_trail_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[tuple[str, list[str]]] = []

    async def read_topics(servers: str, topics: list[str], **_: Any) -> list[StoredMessage]:
        read.append((servers, topics))
        return TRAIL

    monkeypatch.setattr(history_module, "read_topics", read_topics)
    found = asyncio.run(trace_kafka("broker:9092", SCHEMAS, KEY, sender="cn.port.sh",
                                    trail_topic="px.trail.test"))
    assert read == [("broker:9092", ["px.trail.test"])]
    assert [v.event_id for v in found.versions] == ["ev-1", "ev-2"]


def test_run_trace_prints_the_history(monkeypatch: pytest.MonkeyPatch) -> None:
    async def read_topics(servers: str, topics: list[str], **_: Any) -> list[StoredMessage]:
        return TRAIL

    monkeypatch.setattr(history_module, "read_topics", read_topics)
    out = io.StringIO()
    assert run_trace("broker:9092", KEY, trail_topic=TOPICS.trail, sender="cn.port.sh",
                     out=out) == 0
    assert out.getvalue().startswith(f"document {KEY} from cn.port.sh: 2 submission(s)")
    assert run_trace("broker:9092", "BL-NOPE", trail_topic=TOPICS.trail, out=io.StringIO()) == 1
