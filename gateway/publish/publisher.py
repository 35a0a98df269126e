"""The one `Publisher`: carries out the plans the service makes of its decisions
(gateway.publish.plan).

A plan is carried out in two steps, as a submission is taken (gateway.service): `hand_over`
queues its messages, in the order of the plan and of the documents (so versions of one
document reach recipients in the order they came), and asks for the seal of its deliveries
and of its receipt; what it returns only waits, and overlaps with later documents: once the
seal is made the messages go to the producer back to back; once the broker has every one
(acks=all), the plan's entries go on the trail naming where each message is; once the trail
holds them all, the signed receipt is published, and only then given as the answer.

Work is shared across documents, not done per message: the deliveries and receipts of the
documents decided together share one SM2 seal (gateway.publish.sealing), a chain's trail
entries go out as one record batch per write (gateway.trail.writer), and the producer groups
each partition's messages into one produce request (`linger_ms`). A document decided alone
(a few a second) still costs one seal and one request for its event and deliveries, not two
of each: its receipt is sealed with its deliveries, and its event waits for their seal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka.errors import KafkaError

from gateway.errors import BrokerUnavailable
from gateway.kafka.names import (
    H_DIGEST,
    H_DUPLICATE_OF,
    H_SENDER,
    H_STATUS,
    H_SUBMISSION_ID,
    Outbound,
    StoredMessage,
)
from gateway.kafka.wire import Producer, Published, acked
from gateway.observe.health import BrokerHealth
from gateway.publish.plan import Entry, Plan
from gateway.publish.sealing import BatchSealer, DeliverySealer, Handed, ReceiptSigner
from gateway.receipts.receipt import SignedReceipt
from gateway.trail.writer import TrailWriter, reference, written
from message_formats import AvroSchemas

Observe = Callable[[str, float], None]
Keep = Callable[[StoredMessage], None]


class Publisher:
    """Carries out plans over one producer (`producer`, set once it is started). `keep` is
    told of each receipt once the broker has it (the receipt book); `observe(stage,
    seconds)` of the waits: "publish" (for the broker to have the messages), "trail" and
    "receipt". `made`: the topics made before it started (gateway.kafka.wire.ensure_topics);
    receipts go to `receipt_topic`."""

    def __init__(self, sealer: BatchSealer, schemas: AvroSchemas, *, keep: Keep,
                 health: BrokerHealth, observe: Observe, receipt_topic: str,
                 made: Iterable[str] = ()) -> None:
        self.producer: Producer | None = None
        self._known = set(made)  # topics known to be there (`made`: before it started)
        self._opening: asyncio.Future[None] | None = None
        self._schemas = schemas
        self._receipt_topic = receipt_topic
        self._keep = keep
        self._health = health
        self._observe = observe
        self._signer = ReceiptSigner(sealer, schemas)
        self._deliveries = DeliverySealer(sealer, schemas, self.send)

    async def send(self, out: Outbound, *, partition: int | None = None) -> asyncio.Future[Any]:
        """Hands a message to the producer; the future is done when the broker has it.

        The first message to a topic this publisher has not yet published to goes in a
        produce request of its own, after the messages handed over before it: a broker that
        makes a topic on its first message (the local broker) may refuse the other batches
        of a request it makes one for, and the producer retries those until they expire. A
        plan's messages are handed over back to back, so they would share that request."""
        if self.producer is None:
            raise BrokerUnavailable("the gateway is not started")
        while self._opening is not None:
            await self._opening
        if out.topic in self._known:
            return await self._handed(out, partition)
        self._opening = asyncio.get_running_loop().create_future()
        try:
            await self.producer.flush()  # its futures tell each message how it went
            sent = await self._handed(out, partition)
            await asyncio.wait([sent])
            if not sent.cancelled() and sent.exception() is None:
                self._known.add(out.topic)
            return sent
        finally:
            self._opening.set_result(None)
            self._opening = None

    async def _handed(self, out: Outbound, partition: int | None) -> asyncio.Future[Any]:
        assert self.producer is not None
        try:
            return await self.producer.send(out.topic, out.value, key=out.key,
                                            headers=list(out.headers), partition=partition)
        except KafkaError as exc:
            self._health.failed(exc)
            raise BrokerUnavailable(f"publishing to {out.topic} failed: {exc}") from exc

    @staticmethod
    def record(writer: TrailWriter, entry: Entry) -> asyncio.Future[int]:
        """An entry that names no message of a plan (RECEIVED), on the trail now."""
        return writer.add(**entry.fields)

    def hand_over(self, plan: Plan, writer: TrailWriter, received: asyncio.Future[int]
                  ) -> Awaitable[SignedReceipt]:
        """Gives the plan's messages to the producer, in order, once the deliveries among
        them are sealed; the receipt of a document decided now is sealed in the same batch.
        Returns the waiting that is left, which ends with the answer. `received`: the
        document's RECEIVED entry."""
        handed = self._deliveries.put_all([message.out for message in plan.messages],
                                          sealed=[message.sealed for message in plan.messages])
        signing = (self._signer.request(plan.receipt)
                   if plan.again is None and plan.receipt is not None else None)
        return self._finish(plan, handed, writer, received, signing)

    async def _finish(self, plan: Plan, handed: Handed, writer: TrailWriter,
                      received: asyncio.Future[int],
                      signing: asyncio.Future[SignedReceipt] | None) -> SignedReceipt:
        waited = time.perf_counter()
        places = [await acked(sent) for sent in await handed]
        if places:
            self._observe("publish", time.perf_counter() - waited)
        entries = writer.add_all([placed(plan, entry, places) for entry in plan.entries])
        records: list[asyncio.Future[Any]] = [received, entries]
        if plan.again is not None:
            await written(records)
            if plan.again.publish:
                await self._publish_receipt(plan, plan.again.signed,
                                            duplicate_of=plan.again.duplicate_of)
            return plan.again.signed
        assert signing is not None
        waited = time.perf_counter()
        await written(records)
        self._observe("trail", time.perf_counter() - waited)
        waited = time.perf_counter()
        signed = await signing
        await self._publish_receipt(plan, signed)
        self._observe("receipt", time.perf_counter() - waited)
        return signed

    async def _publish_receipt(self, plan: Plan, signed: SignedReceipt, *,
                               duplicate_of: str | None = None) -> None:
        s = plan.submission
        headers = [(H_SUBMISSION_ID, s.submission_id.encode()), (H_SENDER, s.sender.encode()),
                   (H_DIGEST, signed.receipt.digest_sm3.encode()),
                   (H_STATUS, signed.receipt.status.encode())]
        if duplicate_of is not None:
            headers.append((H_DUPLICATE_OF, duplicate_of.encode()))
        out = Outbound(self._receipt_topic, s.submission_id.encode(), signed.encode(self._schemas),
                       (*headers, *plan.receipt_headers))
        at = await acked(await self.send(out, partition=s.partition))
        self._keep(StoredMessage(at.topic, at.partition, at.offset, out.key, out.value,
                                 out.headers, 0))


def placed(plan: Plan, entry: Entry, places: Sequence[Published]) -> dict[str, Any]:
    """The entry's fields, naming where the broker put the message it records."""
    if entry.names is None:
        return dict(entry.fields)
    return {**entry.fields, **reference(places[entry.names], plan.messages[entry.names].out.value)}
