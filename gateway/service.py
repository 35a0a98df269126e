"""The gateway service: runs the pipeline on each submission and publishes what it decided.

For an accepted document: the canonical event, one delivery per permitted recipient, their
trail records, then the receipt. For a refused one: the dead letter (with the original bytes),
its trail record, then the error receipt. A step is taken only after the broker acknowledged
the one before (acks=all).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from adapters import AdapterRegistry
from contracts import AgencyRegistry, RouteDenied
from crypto import Keyring, SM2PrivateKey, sm3_hex
from gateway.clock import utc_now
from gateway.config import GatewayConfig
from gateway.errors import BrokerUnavailable, ConfigError, GatewayError
from gateway.ids import Uuid7Generator
from gateway.kafka import (
    DLQ_TOPIC,
    H_EVENT_ID,
    H_FORMAT,
    H_SENDER,
    H_SIGNATURE,
    H_SUBMISSION_ID,
    INGRESS_TOPIC,
    RECEIPT_TOPIC,
    TRAIL_TOPIC,
    Published,
    ensure_topics,
    new_producer,
    new_reader,
    partitions_of,
    status_topic,
)
from gateway.pipeline import (
    REJECTION_ERRORS,
    Context,
    Outbound,
    Pipeline,
    Submission,
    adapt,
    authenticate,
    build_deliveries,
    build_event,
    check_size,
    new_context,
    route,
)
from gateway.receipts import ACCEPTED, RECEIPT_SCHEMA, REJECTED, Receipt
from gateway.router import PayloadBuilder, Router, RouterSources
from gateway.trail import TrailCodec, TrailWriter, chain_id
from gateway.trail_archive import ArchiveWriter
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEAD_LETTER_SCHEMA = "px.gateway.DeadLetter"
STATUS_SCHEMA = "px.gateway.StatusEvent"
CONSUMER_GROUP = "px-gateway"


@dataclass(frozen=True, slots=True)
class GatewayParts:
    """Everything the pipeline needs, loaded once from the gateway's home directory."""

    key: SM2PrivateKey
    keyring: Keyring
    agencies: AgencyRegistry
    router: Router
    adapters: AdapterRegistry
    schemas: AvroSchemas

    @classmethod
    def load(cls, config: GatewayConfig) -> GatewayParts:
        """Raises ConfigError naming the file at fault, with the underlying error's code."""
        try:
            agencies = AgencyRegistry.from_toml(config.agencies_file)
            keyring = Keyring.from_toml(config.keyring_file)
            schemas = AvroSchemas()
            adapters = AdapterRegistry.default(schemas)
            sources = RouterSources(
                contracts_dir=config.contracts_dir,
                agencies=agencies,
                adapters=adapters,
                schemas=schemas,
                keyring=keyring,
                mask_key=config.mask_key_file.read_bytes(),
            )
            return cls(
                key=SM2PrivateKey.from_pem(config.key_file.read_bytes()),
                keyring=keyring,
                agencies=agencies,
                router=Router(sources),
                adapters=adapters,
                schemas=schemas,
            )
        except OSError as exc:
            raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        except (*REJECTION_ERRORS,) as exc:
            code = getattr(exc, "code", "CONFIG_INVALID")
            raise ConfigError(f"{code}: {exc}") from exc

    @property
    def payloads(self) -> PayloadBuilder:
        return PayloadBuilder(self.schemas, self.adapters, self.keyring, self.agencies)


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str
    line: int | None
    kind: str  # REJECTED, or DENIED when no contract shares the document


def rejection_of(exc: Exception) -> Rejection:
    kind = "DENIED" if isinstance(exc, RouteDenied) else "REJECTED"
    return Rejection(
        code=getattr(exc, "code", "INTERNAL_ERROR"),
        message=getattr(exc, "message", str(exc)),
        line=getattr(exc, "line", None),
        kind=kind,
    )


class Gateway:
    def __init__(self, config: GatewayConfig, parts: GatewayParts, bootstrap_servers: str) -> None:
        self.config = config
        self.parts = parts
        self.bootstrap_servers = bootstrap_servers
        self._ids = Uuid7Generator()
        self._codec = TrailCodec(parts.schemas)
        self._pipeline = Pipeline(
            [
                check_size(config.max_document_bytes),
                authenticate(parts.keyring),
                adapt(parts.adapters),
                build_event(parts.schemas),
                route(parts.router),
                build_deliveries(parts.payloads, parts.schemas, self._ids),
            ]
        )
        self._producer: AIOKafkaProducer | None = None
        self._writers: dict[int, TrailWriter] = {}

    async def start(self) -> None:
        partitions = self.config.ingress_partitions
        await ensure_topics(
            self.bootstrap_servers,
            {INGRESS_TOPIC: partitions, TRAIL_TOPIC: partitions, RECEIPT_TOPIC: partitions,
             DLQ_TOPIC: partitions},
        )
        self._producer = new_producer(self.bootstrap_servers)
        try:
            await self._producer.start()
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot reach {self.bootstrap_servers}: {exc}") from exc
        log.info("gateway.started", bootstrap_servers=self.bootstrap_servers)

    async def stop(self) -> None:
        try:
            await self.seal_all()
        finally:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def seal_all(self) -> None:
        for writer in self._writers.values():
            await writer.seal()

    async def process(self, submission: Submission) -> Receipt:
        ctx = new_context(submission, self._ids.new())
        await self._record_received(ctx)
        try:
            ctx = self._pipeline.run(ctx)
        except REJECTION_ERRORS as exc:
            return await self._reject(ctx, rejection_of(exc))
        except Exception as exc:  # a bug must not lose the document: dead-letter it
            log.exception("pipeline.crashed", event_id=ctx.event_id)
            return await self._reject(ctx, Rejection("INTERNAL_ERROR", repr(exc), None, "REJECTED"))
        return await self._accept(ctx)

    async def _record_received(self, ctx: Context) -> None:
        """RECEIVED, before anything is decided: who sent what, and where the original bytes
        and the sender's signature are kept (the ingress message)."""
        s = ctx.submission
        ingress = {}
        if s.ingress_offset is not None:
            at = Published(INGRESS_TOPIC, s.partition, s.ingress_offset)
            ingress = reference(at, s.document)
        writer = await self._writer(s.partition)
        await writer.append(**trail_fields(ctx), kind="RECEIVED",
                            reason=f"{len(s.document)} bytes as {s.format_id or '?'}", **ingress)

    async def _accept(self, ctx: Context) -> Receipt:
        assert ctx.event is not None and ctx.decision is not None
        event_at = await self._publish(ctx.event)
        delivered_at = await asyncio.gather(*(self._publish(out) for _, out in ctx.deliveries))
        writer = await self._writer(ctx.submission.partition)
        base = trail_fields(ctx)
        await writer.append(
            **base, kind="ACCEPTED", reason=ctx.decision.explanation,
            **reference(event_at, ctx.event.value),
        )
        for (grant, out), at in zip(ctx.deliveries, delivered_at, strict=True):
            contract = grant.contract
            await writer.append(
                **base, kind="DELIVERED", recipient=grant.recipient,
                contract_id=contract.id, contract_version=contract.version,
                reason=f"{contract.scope} sharing under {contract.label}: {contract.purpose}",
                **reference(at, out.value),
            )
        for denial in ctx.decision.denials:
            await writer.append(
                **base, kind="DENIED", recipient=denial.recipient, error_code=denial.code,
                contract_id=denial.contract.id, contract_version=denial.contract.version,
                reason=denial.reason,
            )
        await self._notify(ctx, "accepted", ctx.decision.recipients)
        for grant, _ in ctx.deliveries:
            await self._notify(ctx, "delivered", ctx.decision.recipients, recipient=grant.recipient)
        receipt = self._receipt(ctx, ACCEPTED, recipients=ctx.decision.recipients)
        await self._send_receipt(receipt)
        log.info("document.accepted", event_id=ctx.event_id, sender=ctx.submission.sender,
                 document_type=ctx.document_type, recipients=len(ctx.deliveries))
        return receipt

    async def _reject(self, ctx: Context, why: Rejection) -> Receipt:
        s = ctx.submission
        dead_letter = Outbound(
            topic=DLQ_TOPIC,
            key=s.sender.encode(),
            value=self.parts.schemas.encode(
                DEAD_LETTER_SCHEMA,
                {
                    "submission_id": s.submission_id,
                    "event_id": ctx.event_id,
                    "sender": s.sender,
                    "format_id": s.format_id,
                    "received_at": s.received_at,
                    "error_code": why.code,
                    "error_message": why.message,
                    "error_line": why.line,
                    "original": s.document,
                    "signature": s.signature,
                },
            ),
            headers=((H_EVENT_ID, ctx.event_id.encode()), (H_SENDER, s.sender.encode())),
        )
        at = await self._publish(dead_letter)
        writer = await self._writer(s.partition)
        await writer.append(
            **trail_fields(ctx), kind=why.kind, error_code=why.code, reason=why.message,
            **reference(at, dead_letter.value),
        )
        await self._notify(ctx, "rejected", (), error_code=why.code)
        receipt = self._receipt(ctx, REJECTED, error=why)
        await self._send_receipt(receipt)
        log.info("document.rejected", event_id=ctx.event_id, sender=s.sender, code=why.code)
        return receipt

    def _receipt(
        self,
        ctx: Context,
        status: str,
        *,
        recipients: Iterable[str] = (),
        error: Rejection | None = None,
    ) -> Receipt:
        s = ctx.submission
        return Receipt(
            submission_id=s.submission_id,
            event_id=ctx.event_id,
            sender=s.sender,
            format_id=s.format_id,
            digest_sm3=ctx.digest,
            status=status,
            time=utc_now(),
            recipients=tuple(recipients),
            document_type=ctx.document_type,
            business_key=ctx.parsed.business_key if ctx.parsed else None,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            error_line=error.line if error else None,
        )

    async def _notify(
        self,
        ctx: Context,
        status: str,
        recipients: Iterable[str],
        *,
        recipient: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """Status events for the parties to the document (its sender and recipients) that
        subscribed to them, each recorded in the trail."""
        if ctx.document_type is None:
            return
        s = ctx.submission
        parties = (s.sender, *recipients)
        found = self.parts.router.index.subscribers(ctx.document_type, status, parties,
                                                   s.received_at)
        for subscriber, contract in found:
            event = {
                "event_id": ctx.event_id, "submission_id": s.submission_id, "status": status,
                "time": utc_now(), "subscriber": subscriber, "sender": s.sender,
                "document_type": ctx.document_type,
                "business_key": ctx.parsed.business_key if ctx.parsed else None,
                "recipient": recipient, "error_code": error_code,
                "contract_id": contract.id, "contract_version": contract.version,
            }
            out = Outbound(
                topic=status_topic(subscriber),
                key=s.submission_id.encode(),
                value=self.parts.schemas.encode(STATUS_SCHEMA, event),
                headers=((H_EVENT_ID, ctx.event_id.encode()),),
            )
            at = await self._publish(out)
            writer = await self._writer(s.partition)
            await writer.append(
                **trail_fields(ctx), kind="NOTIFIED", recipient=subscriber,
                contract_id=contract.id, contract_version=contract.version,
                reason=f"status {status} under subscription {contract.label}",
                **reference(at, out.value),
            )

    async def _send_receipt(self, receipt: Receipt) -> None:
        await self._publish(
            Outbound(
                topic=RECEIPT_TOPIC,
                key=receipt.submission_id.encode(),
                value=self.parts.schemas.encode(RECEIPT_SCHEMA, receipt.to_avro()),
                headers=((H_SUBMISSION_ID, receipt.submission_id.encode()),),
            )
        )

    async def _publish(self, out: Outbound) -> Published:
        if self._producer is None:
            raise BrokerUnavailable("the gateway is not started")
        return await publish(self._producer, out)

    async def _writer(self, partition: int) -> TrailWriter:
        writer = self._writers.get(partition)
        if writer is None:
            assert self._producer is not None
            chain = chain_id(partition)
            writer = TrailWriter(
                producer=self._producer,
                codec=self._codec,
                key=self.parts.key,
                partition=partition,
                settings=self.config.trail,
                chain=chain,
                archive=await asyncio.to_thread(self._open_archive, chain),
            )
            await writer.recover(self.bootstrap_servers)
            self._writers[partition] = writer
        return writer

    def _open_archive(self, chain: str) -> ArchiveWriter | None:
        directory = self.config.archive_dir
        if directory is None:
            return None
        return ArchiveWriter(directory, chain, schemas=self.parts.schemas,
                             max_segment_bytes=self.config.trail.archive_segment_bytes)

    async def serve(self, stop: asyncio.Event) -> None:
        """Consumes the ingress topic until `stop` is set, committing after each batch."""
        consumer = new_reader(self.bootstrap_servers, group_id=CONSUMER_GROUP)
        await consumer.start()
        watching = None
        if self.config.contracts_watch_s > 0:
            watching = asyncio.create_task(
                self.parts.router.watch(stop, self.config.contracts_watch_s))
        try:
            partitions = await partitions_of(self.bootstrap_servers, [INGRESS_TOPIC])
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, await consumer.committed(tp) or 0)
            log.info("gateway.serving", partitions=len(partitions))
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=500)
                for tp, records in batches.items():
                    for record in records:
                        await self.process(submission_from_ingress(record, tp.partition))
                    await consumer.commit({tp: records[-1].offset + 1})
                for writer in self._writers.values():
                    writer.seal_if_due()
        finally:
            if watching is not None:
                watching.cancel()
            await consumer.stop()


    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Serving]:
        """Serves the ingress topic in the background for the duration of the block."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.serve(stop))
        try:
            yield Serving(task)
        finally:
            stop.set()
            await task


@dataclass(frozen=True, slots=True)
class Serving:
    task: asyncio.Task[None]

    async def alongside(self, work: Awaitable[T]) -> T:
        """Awaits `work`; if the gateway stops first, raises why instead of waiting on."""
        job = asyncio.ensure_future(work)
        await asyncio.wait({job, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not job.done():
            job.cancel()
            self.task.result()
            raise GatewayError("the gateway stopped serving", code="GATEWAY_STOPPED")
        return job.result()


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
    )


async def publish(producer: AIOKafkaProducer, out: Outbound) -> Published:
    """Sends one message and waits for the broker's acknowledgement."""
    try:
        md = await producer.send_and_wait(out.topic, out.value, key=out.key,
                                          headers=list(out.headers))
    except KafkaError as exc:
        raise BrokerUnavailable(f"publishing to {out.topic} failed: {exc}") from exc
    return Published(md.topic, md.partition, md.offset)


def trail_fields(ctx: Context) -> dict[str, Any]:
    s = ctx.submission
    return {
        "submission_id": s.submission_id,
        "event_id": ctx.event_id,
        "sender": s.sender,
        "format_id": s.format_id,
        "document_type": ctx.document_type,
        "business_key": ctx.parsed.business_key if ctx.parsed else None,
        "document_version": ctx.parsed.document_version if ctx.parsed else None,
        "digest_sm3": ctx.digest,
        "signature_key_id": ctx.signer.key_id if ctx.signer else None,
    }


def reference(at: Published, value: bytes) -> dict[str, Any]:
    """Trail fields naming the published message a decision produced, with its digest."""
    return {
        "ref_topic": at.topic,
        "ref_partition": at.partition,
        "ref_offset": at.offset,
        "ref_digest": sm3_hex(value),
    }

