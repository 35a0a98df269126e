"""A recipient takes only what the gateway sealed for it, on a real broker: deliveries the
gateway published pass and are handed over once; a delivery injected without proof, one
altered after sealing, one sealed with an agency's key and one sealed for another recipient
copied onto this recipient's topic are each refused with their code and never handed over,
while the real ones around them still are; `portgw receive` does the same from the command
line, and a re-delivery is sealed too."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from gateway.deliveries.dedup import DedupReader
from gateway.deliveries.proof import (
    DELIVERY_SCHEMA,
    H_SEAL,
    DeliveryRefused,
    DeliveryVerifier,
)
from gateway.home.create import Home
from gateway.ingress.client import submit
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_EVENT_ID, Outbound, StoredMessage
from gateway.kafka.wire import new_producer, read_topics
from gateway.publish.sealing import sealed_now
from gateway.service import Gateway
from replay.redeliver import redeliver
from tests.integration.service_support import PROVIDER, numbered_arrival, signed
from tests.integration.support import gateway_parts, portgw

RECIPIENT = "cn.customs.sh"
OTHER = "cn.msa.sh"
FORGERY_CODES = ["DELIVERY_PROOF_MISSING", "DELIVERY_PROOF_INVALID", "SEAL_KEY_NOT_SEALING",
                 "DELIVERY_NOT_FOR_RECIPIENT"]


async def _produce(bootstrap: str, topic: str, outs: Sequence[Outbound]) -> None:
    """What any client of the broker may do: put records on a topic."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for out in outs:
            await producer.send_and_wait(topic, out.value, key=out.key, headers=list(out.headers))
    finally:
        await producer.stop()


def _outbound(message: StoredMessage) -> Outbound:
    return Outbound(message.topic, message.key or b"", message.value, message.headers)


def _renamed(home: Home, message: StoredMessage, **changes: Any) -> Outbound:
    """The delivery with fields of its value changed and a fresh event id, unsealed."""
    parts = gateway_parts(home)[1]
    schemas = parts.schemas
    _, value = schemas.decode(message.value)
    event_id = str(uuid.uuid4())
    value = {**value, "event_id": event_id, "delivery_id": str(uuid.uuid4()), **changes}
    headers = tuple((name, event_id.encode() if name == H_EVENT_ID else data)
                    for name, data in message.headers if name != H_SEAL)
    return Outbound(parts.topics.delivery(RECIPIENT), message.key or b"",
                    schemas.encode(DELIVERY_SCHEMA, value), headers)


def _forgeries(home: Home, mine: StoredMessage, theirs: StoredMessage) -> list[Outbound]:
    """In the order of FORGERY_CODES."""
    schemas = gateway_parts(home)[1].schemas
    _, value = schemas.decode(mine.value)
    altered = dataclasses.replace(_outbound(mine), value=schemas.encode(
        DELIVERY_SCHEMA, {**value, "payload": value["payload"] + b" "}))
    [agency_sealed] = sealed_now(home.agency_keys[PROVIDER], [_renamed(home, mine)], schemas)
    return [_renamed(home, mine), altered, agency_sealed, _outbound(theirs)]


async def _deliveries(bootstrap: str, topic: str, count: int) -> list[StoredMessage]:
    deadline = time.monotonic() + 60
    while len(found := await read_topics(bootstrap, [topic])) < count:
        assert time.monotonic() < deadline, f"{len(found)} deliveries on {topic}, not {count}"
        await asyncio.sleep(0.2)
    return found


async def _publish_with_forgeries_between(home: Home, bootstrap: str) -> list[str]:
    """Two documents delivered, the forgeries injected, two more delivered; the event ids of
    the real deliveries to RECIPIENT."""
    config, parts = gateway_parts(home)
    docs = [signed(home, numbered_arrival(n), f"proof-{n}") for n in range(4)]
    topic = parts.topics.delivery(RECIPIENT)
    real = []
    async with Gateway(config, parts, bootstrap) as gateway, gateway.serving() as serving:
        for number, doc in enumerate(docs):
            if number == 2:
                mine = await _deliveries(bootstrap, topic, 2)
                theirs = await _deliveries(bootstrap, parts.topics.delivery(OTHER), 2)
                await _produce(bootstrap, topic, _forgeries(home, mine[0], theirs[0]))
            receipt = await serving.alongside(submit(
                bootstrap, sender=doc.sender, format_id=doc.format_id, document=doc.document,
                signature=doc.signature, schemas=parts.schemas, topics=parts.topics,
                timeout_s=30))
            assert receipt.receipt.accepted, receipt.receipt
            real.append(receipt.receipt.event_id)
    await _deliveries(bootstrap, topic, 8)
    return real


async def _read_verified(home: Home, bootstrap: str, store: Path
                         ) -> tuple[list[str], list[tuple[int, str]]]:
    """What a recipient reading with a verifier is handed (event ids), and what it is told
    was refused (offset, code), reading to the topic's end."""
    _, parts = gateway_parts(home)
    topic = parts.topics.delivery(RECIPIENT)
    messages = await read_topics(bootstrap, [topic])
    end = {TopicPartition(topic, m.partition): m.offset + 1 for m in messages}
    handed: list[str] = []
    refused: list[tuple[int, str]] = []

    def on_refused(message: StoredMessage, exc: DeliveryRefused) -> None:
        refused.append((message.offset, exc.code))

    deadline = time.monotonic() + 60
    async with DedupReader(bootstrap, [topic], store, on_refused=on_refused,
                           verifier=DeliveryVerifier(parts.live_keyring, RECIPIENT)) as reader:
        while any(reader.positions.get(tp, 0) < offset for tp, offset in end.items()):
            assert time.monotonic() < deadline, (dict(reader.positions), end)
            batch = await reader.poll()
            handed += [m.header(H_EVENT_ID).decode() for m in batch]  # type: ignore[union-attr]  # deliveries carry the header
            reader.mark_done(batch)
    return handed, refused


def test_a_recipient_is_handed_the_real_deliveries_and_refused_every_forgery(
        broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    real = asyncio.run(_publish_with_forgeries_between(home, bootstrap))
    assert len(real) == 4

    handed, refused = asyncio.run(_read_verified(home, bootstrap, tmp_path / "seen.sqlite"))

    assert sorted(handed) == sorted(real)  # the real ones, each once, around the forgeries
    assert sorted(code for _, code in refused) == sorted(FORGERY_CODES)
    again, refused_again = asyncio.run(_read_verified(home, bootstrap, tmp_path / "seen.sqlite"))
    assert (again, refused_again) == ([], [])  # the reader moved past them: nothing wedges


def test_portgw_receive_writes_verified_deliveries_and_names_each_refusal(
        broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    real = asyncio.run(_publish_with_forgeries_between(home, bootstrap))
    common: list[str | Path] = ["--agency", RECIPIENT, "--keyring", home.path / "keyring.toml",
                                "--bootstrap-servers", bootstrap]
    out = tmp_path / "out"

    first = portgw("receive", *common, "--store", tmp_path / "store", "--out", out)

    assert first.returncode == 1, first.stderr
    codes = [line.split(": ")[1] for line in first.stderr.splitlines()
             if line.startswith("portgw receive: ")]
    assert sorted(codes) == sorted(FORGERY_CODES)
    assert "4 deliveries received, 4 refused" in first.stderr
    metadata = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    assert sorted(m["event_id"] for m in metadata) == sorted(real)
    for meta in metadata:
        assert meta["recipient"] == RECIPIENT
        assert meta["seal_key_id"] == home.gateway_key.public_key().key_id
        payload = out / f"{meta['delivery_id']}.payload"
        assert len(payload.read_bytes()) == meta["payload_bytes"] > 0
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in out.iterdir()} == {0o600}

    again = portgw("receive", *common, "--store", tmp_path / "store", "--out", out)
    assert again.returncode == 0, again.stderr
    assert "0 deliveries received, 0 refused" in again.stderr

    lines = portgw("receive", *common, "--store", tmp_path / "other-store")
    assert lines.returncode == 1
    assert sorted(json.loads(line)["event_id"] for line in lines.stdout.splitlines()) == \
        sorted(real)


def test_a_redelivery_is_sealed_and_verifies_for_its_recipient(
        broker: LocalBroker, home: Home, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    config, parts = gateway_parts(home)
    doc = signed(home, numbered_arrival(1), "redelivered-1")

    async def deliver_then_redeliver() -> list[StoredMessage]:
        async with Gateway(config, parts, bootstrap) as gateway, gateway.serving() as serving:
            await serving.alongside(submit(
                bootstrap, sender=doc.sender, format_id=doc.format_id, document=doc.document,
                signature=doc.signature, schemas=parts.schemas, topics=parts.topics,
                timeout_s=30))
        outcomes = await redeliver(config, parts, bootstrap, recipient=RECIPIENT,
                                   since=datetime.now(UTC) - timedelta(hours=1))
        assert [o.refused for o in outcomes] == [None]
        return await _deliveries(bootstrap, parts.topics.delivery(RECIPIENT), 2)

    first, again = asyncio.run(deliver_then_redeliver())
    verifier = DeliveryVerifier(parts.keyring, RECIPIENT)
    assert verifier.check(first).event_id == verifier.check(again).event_id
    assert verifier.check(first).delivery_id != verifier.check(again).delivery_id
