"""The Publisher carries out plans over an in-memory broker (gateway.kafka.memory): the
messages in order, the trail entries only once the broker has the messages they name, the
receipt only once the trail holds every entry; the seal and the trail's writes shared across
documents. The same flows against the real broker are in tests/integration (test_service,
test_delivery_proof, test_router)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from gateway.decide.pipeline import Context, Rejection
from gateway.deliveries.proof import H_SEAL, DeliveryProof, DeliveryVerifier
from gateway.errors import BrokerUnavailable
from gateway.home.config import TrailSettings
from gateway.home.create import Home
from gateway.kafka.memory import MemoryBroker
from gateway.kafka.names import H_DUPLICATE_OF, Outbound, StoredMessage, Topics
from gateway.observe.health import BrokerHealth
from gateway.parts import GatewayParts
from gateway.publish.plan import (
    Plan,
    accepted_plan,
    duplicate_plan,
    received_entry,
    rejected_plan,
    repeat_plan,
)
from gateway.publish.publisher import Publisher
from gateway.publish.sealing import BatchSealer
from gateway.receipts.receipt import ACCEPTED, REJECTED, SignedReceipt
from gateway.trail.writer import RECORD_SCHEMA, TrailCodec, TrailWriter
from tests.unit.publish_support import SENDER, decided, publishing_home

WIRE = Topics()  # the production names: the homes here have no topic prefix

NOW = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
CUSTOMS = "cn.customs.sh"
# What the plans here publish to, as made before the gateway starts (or known since).
TOPICS = (WIRE.canonical("fal1"), WIRE.delivery(CUSTOMS), WIRE.delivery("cn.msa.sh"),
          WIRE.status(SENDER), WIRE.dlq, WIRE.receipt)


@pytest.fixture(scope="module")
def home_and_parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, GatewayParts]:
    return publishing_home(tmp_path_factory.mktemp("publisher") / "home")


class Bench:
    """A publisher over one in-memory broker, its trail written to another (as the service
    has two producers), and what it kept of its receipts."""

    def __init__(self, parts: GatewayParts, *, made: tuple[str, ...] = TOPICS) -> None:
        self.parts = parts
        self.broker = MemoryBroker(partitions=4)
        self.trail_broker = MemoryBroker(partitions=4)
        self.kept: list[StoredMessage] = []
        self.publisher = Publisher(BatchSealer(parts.key), parts.schemas, keep=self.kept.append,
                                   health=BrokerHealth(), observe=lambda stage, seconds: None,
                                   receipt_topic=WIRE.receipt, made=made)
        self.publisher.producer = self.broker
        self.writer = TrailWriter(producer=self.trail_broker, codec=TrailCodec(parts.schemas),
                                  key=parts.key, partition=0,
                                  settings=TrailSettings(), topics=WIRE)

    def plan(self, ctx: Context, why: Rejection | None) -> Plan:
        index, schemas = self.parts.router.index, self.parts.schemas
        return (accepted_plan(ctx, index, schemas, WIRE, NOW) if why is None
                else rejected_plan(ctx, why, index, schemas, WIRE, NOW))

    async def hand_over(self, plan: Plan, ctx: Context) -> Awaitable[SignedReceipt]:
        received = self.publisher.record(self.writer, received_entry(ctx, WIRE))
        return self.publisher.hand_over(plan, self.writer, received)

    def answer(self, ctx: Context, why: Rejection | None) -> SignedReceipt:
        """The decision's plan carried out to its answer."""

        async def run() -> SignedReceipt:
            return await (await self.hand_over(self.plan(ctx, why), ctx))

        return asyncio.run(run())

    def trail(self) -> list[dict[str, Any]]:
        entries = []
        for message in self.trail_broker.messages(WIRE.trail, 0):
            name, record = self.parts.schemas.decode(message.value)
            if name == RECORD_SCHEMA:
                entries.append(record["entry"])
        return entries

    def at(self, entry: dict[str, Any]) -> StoredMessage:
        """The message a trail entry names."""
        [message] = [m for m in self.broker.messages(entry["ref_topic"], entry["ref_partition"])
                     if m.offset == entry["ref_offset"]]
        return message


async def until(condition: Callable[[], bool], *, deadline_s: float = 30.0) -> None:
    """Waits for `condition`, generously (a busy machine signs in a worker thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not condition():
        assert loop.time() < deadline, "the condition was not met in time"
        await asyncio.sleep(0.005)


async def comes(condition: Callable[[], bool], *, within_s: float = 0.5) -> bool:
    """Whether `condition` is met within `within_s` (for what must not happen)."""
    try:
        await until(condition, deadline_s=within_s)
    except AssertionError:
        return False
    return True


def test_an_accepted_plan_is_published_recorded_then_answered(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    ctx, why = decided(home, parts, "valid_arrival.xml")
    bench = Bench(parts)
    signed = bench.answer(ctx, why)
    signed.check(parts.keyring)
    assert signed.receipt.status == ACCEPTED

    entries = bench.trail()
    assert [e["kind"] for e in entries] == ["RECEIVED", "ACCEPTED", "DELIVERED", "DELIVERED",
                                            "NOTIFIED", "NOTIFIED", "NOTIFIED"]
    assert bench.at(entries[1]).topic == WIRE.canonical("fal1")
    delivered = bench.at(entries[2])
    assert delivered.topic == WIRE.delivery(CUSTOMS)
    verified = DeliveryVerifier(parts.keyring, CUSTOMS, schemas=parts.schemas).check(delivered)
    assert verified.event_id == ctx.event_id
    assert [bench.at(e).topic for e in entries[4:]] == [WIRE.status(SENDER)] * 3

    [receipt] = bench.broker.messages(WIRE.receipt)
    assert receipt.partition == ctx.submission.partition
    assert SignedReceipt.decode(parts.schemas, receipt.value).receipt == signed.receipt
    assert [m.offset for m in bench.kept] == [receipt.offset]


def test_nothing_is_recorded_before_the_broker_has_its_message_nor_answered_before_the_trail(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    ctx, why = decided(home, parts, "valid_arrival.xml")
    bench = Bench(parts)

    async def run() -> None:
        bench.broker.holding = bench.trail_broker.holding = True
        answer = asyncio.ensure_future(await bench.hand_over(bench.plan(ctx, why), ctx))
        await until(lambda: bool(bench.broker.messages(WIRE.delivery(CUSTOMS))))  # sealed
        bench.trail_broker.release()
        await asyncio.sleep(0)
        assert [e["kind"] for e in bench.trail()] == ["RECEIVED"]  # the rest waits for acks
        bench.broker.release()
        await until(lambda: len(bench.trail()) == 7)
        # Time enough to sign and send a receipt: none comes while the trail is not written.
        assert not await comes(lambda: bool(bench.broker.messages(WIRE.receipt)))
        assert not answer.done()
        bench.trail_broker.holding = False
        bench.trail_broker.release()
        await until(lambda: bool(bench.broker.messages(WIRE.receipt)))
        assert not answer.done()  # the receipt itself is not acknowledged yet
        bench.broker.holding = False
        bench.broker.release()
        await answer

    asyncio.run(run())
    assert len(bench.kept) == 1


def test_documents_decided_together_share_one_seal_and_few_trail_writes(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    decisions = [decided(home, parts, "valid_arrival.xml", number=n) for n in range(1, 9)]
    bench = Bench(parts)

    async def run() -> list[SignedReceipt]:
        answers = [await bench.hand_over(bench.plan(ctx, why), ctx) for ctx, why in decisions]
        return list(await asyncio.gather(*answers))

    signed = asyncio.run(run())
    assert len(signed) == 8
    deliveries = bench.broker.messages(WIRE.delivery(CUSTOMS))
    assert [m.header("px-event-id") for m in deliveries] == [
        ctx.event_id.encode() for ctx, _ in decisions]  # in the order decided
    seals = {DeliveryProof.decode(parts.schemas, m.header(H_SEAL) or b"").seal.signature
             for m in deliveries}
    assert len(seals) == 1
    assert len(bench.trail()) == 8 * 7
    assert bench.trail_broker.requests < 8 * 7 / 4


def refused(home_and_parts: tuple[Home, GatewayParts]) -> tuple[Bench, Context, Rejection]:
    home, parts = home_and_parts
    ctx, why = decided(home, parts, "bad_imo_check_digit.xml")
    assert why is not None
    return Bench(parts), ctx, why


def test_a_dead_letter_the_broker_refuses_leaves_no_record_and_no_receipt(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    bench, ctx, why = refused(home_and_parts)
    bench.broker.refuse(WIRE.dlq, KafkaTimeoutError())
    with pytest.raises(BrokerUnavailable):
        bench.answer(ctx, why)
    assert [e["kind"] for e in bench.trail()] == ["RECEIVED"]
    assert not bench.broker.messages(WIRE.receipt) and not bench.kept


def test_a_refused_document_is_dead_lettered_recorded_and_answered(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    bench, ctx, why = refused(home_and_parts)
    signed = bench.answer(ctx, why)
    assert (signed.receipt.status, signed.receipt.error_code) == (REJECTED, why.code)
    entries = bench.trail()
    assert [e["kind"] for e in entries] == ["RECEIVED", "REJECTED", "NOTIFIED"]
    assert bench.at(entries[1]).topic == WIRE.dlq


def test_a_duplicate_republishes_the_first_receipt_and_a_repeat_publishes_nothing(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    home, parts = home_and_parts
    first_ctx, why = decided(home, parts, "valid_arrival.xml", number=1)
    again_ctx, _ = decided(home, parts, "valid_arrival.xml", number=2)
    bench = Bench(parts)

    async def run() -> tuple[SignedReceipt, SignedReceipt, SignedReceipt]:
        first = await (await bench.hand_over(bench.plan(first_ctx, why), first_ctx))
        duplicate = await (await bench.hand_over(duplicate_plan(again_ctx, first, "sub-1"),
                                                 again_ctx))
        repeat = await (await bench.hand_over(repeat_plan(again_ctx, first, "sub-1"),
                                              again_ctx))
        return first, duplicate, repeat

    first, duplicate, repeat = asyncio.run(run())
    assert duplicate == repeat == first
    receipts = bench.broker.messages(WIRE.receipt)
    assert [m.header(H_DUPLICATE_OF) for m in receipts] == [None, b"sub-1"]
    assert receipts[1].key == b"sub-2"
    kinds = [e["kind"] for e in bench.trail()]
    assert kinds[-3:] == ["RECEIVED", "DUPLICATE", "RECEIVED"]
    assert bench.trail()[-2]["event_id"] == first.receipt.event_id


def test_the_first_message_to_a_new_topic_goes_alone_after_those_before_it(
        home_and_parts: tuple[Home, GatewayParts]) -> None:
    _, parts = home_and_parts
    bench = Bench(parts, made=(WIRE.dlq,))
    new, old = WIRE.canonical("fal1"), WIRE.dlq

    async def run() -> None:
        bench.broker.holding = True
        before = await bench.publisher.send(Outbound(old, b"k", b"before", ()))
        first = asyncio.ensure_future(bench.publisher.send(Outbound(new, b"k", b"first", ())))
        assert not await comes(lambda: bool(bench.broker.messages(new)))  # waits for `before`
        bench.broker.release()
        await until(lambda: bool(bench.broker.messages(new)))
        after = asyncio.ensure_future(bench.publisher.send(Outbound(old, b"k", b"after", ())))
        assert not await comes(after.done)  # nothing shares the new topic's first request
        assert [m.value for m in bench.broker.messages(old)] == [b"before"]
        bench.broker.holding = False
        bench.broker.release()
        await asyncio.gather(before, await first, await after)
        again = await bench.publisher.send(Outbound(new, b"k", b"again", ()))
        assert again.done()  # the topic is known now: handed over at once

    asyncio.run(run())
    assert [m.value for m in bench.broker.messages(WIRE.dlq)] == [b"before", b"after"]
