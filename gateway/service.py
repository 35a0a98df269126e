"""The gateway service: runs the pipeline on each submission and publishes what it decided.

For an accepted document: the canonical event, one delivery per permitted recipient, their
trail records, then the receipt. For a refused one: the dead letter (with the original bytes),
its trail record, then the error receipt. A step is taken only after the broker acknowledged
the one before (acks=all).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts import RouteDenied
from gateway.clock import utc_now
from gateway.decide.ahead import NOTHING_AHEAD, Ahead, CheckAhead
from gateway.decide.pipeline import (
    DXP_FORMAT,
    Adapt,
    Authenticate,
    BuildDeliveries,
    BuildEvent,
    CheckSize,
    ChooseAdapter,
    Context,
    EnvelopeRefused,
    OpenEnvelope,
    Pipeline,
    Refusal,
    Route,
    Submission,
    new_context,
)
from gateway.errors import BrokerUnavailable, GatewayError, crash_site
from gateway.home.config import GatewayConfig
from gateway.ids import Uuid7Generator, derived_uuid7
from gateway.ingress.desk import SubmitOutcome
from gateway.ingress.http_api import build_app, build_operator_app
from gateway.ingress.limits import RateLimiter
from gateway.ingress.serving import GatewayDesk, IngressLoop
from gateway.kafka.wire import (
    CHECKPOINT_TOPIC,
    DLQ_TOPIC,
    H_DIGEST,
    H_DUPLICATE_OF,
    H_DXP_TRANS_INFO,
    H_EVENT_ID,
    H_IDENTITY,
    H_SENDER,
    H_STATUS,
    H_SUBMISSION_ID,
    INGRESS_TOPIC,
    RECEIPT_TOPIC,
    TRAIL_TOPIC,
    Broker,
    Outbound,
    Published,
    StoredMessage,
    acked,
    ensure_topics,
    new_producer,
    status_topic,
)
from gateway.observe.health import BrokerHealth
from gateway.observe.metrics import GatewayMetrics
from gateway.parts import GatewayParts
from gateway.publish.sealing import BatchSealer, DeliverySealer
from gateway.receipts.book import ReceiptBook, ReceiptSigner, trans_info_header
from gateway.receipts.receipt import ACCEPTED, REJECTED, Receipt, SignedReceipt
from gateway.trail.archive import ArchiveWriter
from gateway.trail.writer import TrailCodec, TrailWriter, chain_id, reference, written
from gateway.warnings.book import WarningBook
from gateway.warnings.lifecycle import DOCUMENT_TYPE as WARNING_DOCUMENT_TYPE
from gateway.warnings.lifecycle import Authorities
from message_formats import CodedError

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEAD_LETTER_SCHEMA = "px.gateway.DeadLetter"
# A document that was never authenticated (unknown sender, bad signature, too large) is kept
# in its dead letter as its first KEPT_PREFIX_BYTES only, marked by H_ORIGINAL_SIZE (its
# whole size) and H_DIGEST (the SM3 of the whole): nobody can make the gateway store
# megabytes of their choosing under another agency's name. Authenticated documents are kept
# whole.
KEPT_PREFIX_BYTES = 4096
H_ORIGINAL_SIZE = "px-original-size"
STATUS_SCHEMA = "px.gateway.StatusEvent"


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str
    line: int | None
    kind: str  # REJECTED, or DENIED when no contract shares the document


def run_stages(pipeline: Pipeline, ctx: Context) -> tuple[Context, Rejection | None]:
    """The context after the stages; or as far as they got, with why a stage refused the
    document (its refusal then keeps what the earlier stages found: the document type, the
    business key and version, and what a rule's refusal read before it: `Context.refused`)."""
    reached = pipeline.run(ctx)
    failed = reached.failed
    if failed is None:
        return reached.context, None
    if isinstance(failed, CodedError):  # a refusal of the document, with its code
        refused = reached.context
        if refused.refused is None:  # else the Adapt stage raised the worker's refusal
            refused = replace(refused, refused=Refusal.of(failed))
        if isinstance(failed, EnvelopeRefused):  # read, not authenticated: keep its facts
            refused = replace(refused, opened=failed.opened)
        return refused, rejection_of(failed)
    where = crash_site(failed)  # a bug must not lose the document: dead-letter it
    log.error("pipeline.crashed", event_id=ctx.event_id, stage=reached.stage, error=where)
    return reached.context, Rejection("INTERNAL_ERROR", f"the gateway failed ({where})", None,
                                      "REJECTED")


def rejection_of(exc: CodedError) -> Rejection:
    kind = "DENIED" if isinstance(exc, RouteDenied) else "REJECTED"
    return Rejection(code=exc.code, message=exc.message, line=exc.line, kind=kind)


class Gateway:
    """Decides on submissions and publishes what it decided.

    A submission is taken in two steps. `_begin` does, in ingress order, what must keep that
    order: the RECEIVED trail record, the pipeline, and handing the event and deliveries to
    the producer (so versions of one document reach recipients in the order they came). It
    returns the rest, which only waits for the broker and may overlap with later documents:
    the trail records naming what was published, the signed receipt.
    """

    def __init__(self, config: GatewayConfig, parts: GatewayParts, bootstrap_servers: Broker,
                 *, metrics: GatewayMetrics | None = None) -> None:
        self.config = config
        self.parts = parts
        self.bootstrap_servers = bootstrap_servers
        self.metrics = metrics or GatewayMetrics()
        self.limiter = RateLimiter(config.limits_for)
        self._ids = Uuid7Generator()
        self._codec = TrailCodec(parts.schemas)
        observe = self.metrics.observe_stage
        self._checks = Pipeline(
            [("size", CheckSize(config.limits_for)),
             ("envelope", OpenEnvelope(parts.live_keyring)),
             ("authenticate", Authenticate(parts.live_keyring))],
            observe=observe,
        )
        self.warnings = WarningBook(
            bootstrap_servers, parts.schemas,
            Authorities(config.warnings.level_owners, parts.agency_names),
            partitions=config.ingress_partitions, fetch_wait_ms=config.fetch_wait_ms)
        self._pipeline = Pipeline(
            [
                ("adapter", ChooseAdapter(parts.adapters)),
                ("adapt", Adapt()),
                ("lifecycle", self.warnings.check_stage),
                ("event", BuildEvent(parts.schemas)),
                ("route", Route(parts.router, internal=self.warnings.kept_internal)),
                ("deliveries", BuildDeliveries(parts.payloads, parts.schemas)),
                ("lifecycle_recorded", self.warnings.record_stage),
            ],
            observe=observe,
        )
        self._producer: AIOKafkaProducer | None = None
        # The trail has a connection of its own: its record batches never share a produce
        # request with the documents' messages (the local broker refuses such a request's
        # trail batch while it creates a topic for another of its batches).
        self._trail_producer: AIOKafkaProducer | None = None
        self._writers: dict[int, TrailWriter] = {}
        self._in_flight: dict[tuple[str, str], asyncio.Future[SubmitOutcome]] = {}
        self.book = ReceiptBook(bootstrap_servers, parts.schemas,
                                index_dir=config.receipt_index_path,
                                fetch_wait_ms=config.fetch_wait_ms)
        # Receipts and deliveries decided together share one seal (gateway.publish.sealing).
        sealer = BatchSealer(parts.key)
        self._signer = ReceiptSigner(sealer, parts.schemas)
        self._deliveries = DeliverySealer(sealer, parts.schemas, self.send)
        self.health = BrokerHealth()
        self._ahead = CheckAhead(parts.live_keyring, config.limits_for, config.parsing,
                                 on_worker_lost=self.metrics.parse_worker_lost)
        self.desk = GatewayDesk(self)

    async def start(self) -> None:
        partitions = self.config.ingress_partitions
        await ensure_topics(
            self.bootstrap_servers,
            {INGRESS_TOPIC: partitions, TRAIL_TOPIC: partitions, RECEIPT_TOPIC: partitions,
             DLQ_TOPIC: partitions, CHECKPOINT_TOPIC: 1},
        )
        self._producer = new_producer(self.bootstrap_servers)
        self._trail_producer = new_producer(self.bootstrap_servers)
        try:
            await self._producer.start()
            await self._trail_producer.start()
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot reach {self.bootstrap_servers}: {exc}") from exc
        await self.book.start()
        await self.warnings.start()
        await self._ahead.start()
        self.health.watch(self._producer)
        log.info("gateway.started", bootstrap_servers=str(self.bootstrap_servers))

    async def stop(self) -> None:
        try:
            await self.seal_all()
        finally:
            for partition in list(self._writers):
                self._drop_writer(partition)
            await self.health.stop()
            await self._ahead.close()
            await self.book.stop()
            await self.warnings.stop()
            for producer in (self._producer, self._trail_producer):
                if producer is not None:
                    await producer.stop()
            self._producer = self._trail_producer = None

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def seal_all(self, partitions: Iterable[int] | None = None) -> None:
        for partition in list(self._writers if partitions is None else partitions):
            writer = self._writers.get(partition)
            if writer is not None and not writer.failed:
                await writer.seal()
                await writer.checkpoint()  # the head as handed over or left at a stop

    async def prepare(self, partitions: Iterable[int]) -> None:
        """Recovers the trail chains of partitions this process now owns, together, so that
        their first documents do not wait for it one chain after another. A chain that cannot
        be recovered now is tried again by its partition's first document."""
        partitions = list(partitions)
        results = await asyncio.gather(*(self._writer(p) for p in partitions),
                                       return_exceptions=True)
        for partition, result in zip(partitions, results, strict=True):
            if isinstance(result, Exception):
                log.warning("trail.recovery_deferred", partition=partition, error=str(result))

    def http_app(self) -> web.Application:
        """The HTTP door over this gateway. It is ready while the receipt book is sound
        (the broker's health it reports on its own)."""
        return build_app(self.desk, self.config, self.parts.agencies, self.metrics,
                         ready=lambda: self.book.sound, parser_ready=lambda: self._ahead.ready,
                         limiter=self.limiter, keyring=self.parts.live_keyring)

    def operator_app(self) -> web.Application:
        """The operators' door ([http] operator_listen): /metrics and the probes."""
        return build_operator_app(self.desk, self.metrics, ready=lambda: self.book.sound,
                                  parser_ready=lambda: self._ahead.ready)

    def release(self, partitions: Iterable[int]) -> None:
        """Gives up the chains of partitions this process no longer owns (sealed first)."""
        for partition in partitions:
            self._drop_writer(partition)

    async def process(self, submission: Submission) -> SubmitOutcome:
        """Decides on one submission and waits until everything it produced is on the
        broker."""
        finish = await self.begin(submission)
        return await finish

    def check_ahead(self, submissions: Sequence[Submission]
                    ) -> list[asyncio.Future[list[Ahead]]]:
        """Starts the checks of the next documents in the worker process (signature, parsing;
        see gateway/decide/ahead.py). `begin` takes what it found as `ahead`."""
        return self._ahead.check(submissions)

    async def begin(self, s: Submission, ahead: Ahead = NOTHING_AHEAD
                    ) -> Awaitable[SubmitOutcome]:
        """Decides on a submission and hands what it decided to the producer; returns the
        waiting that is left. `ahead`: what the worker process found already.

        The checks run on the event loop or in the worker process, not in a worker thread:
        the two threads then passed the GIL to and fro at every OpenSSL, lxml and hashlib
        call, which cost 0.5 ms of CPU per document and doubled the latency at 300
        documents/s (bench/e2e.py)."""
        started = time.perf_counter()
        self.metrics.received(s.sender, s.format_id)
        # The keyring in force now decides this document, whatever a reload does meanwhile.
        ctx = new_context(s, self._event_id(s), keyring=self.parts.live_keyring.current)
        if s.format_id == DXP_FORMAT and ahead is NOTHING_AHEAD:
            ahead = await self._ahead.open(s)  # an envelope is opened in the worker only
        if ahead is not NOTHING_AHEAD:
            ctx = replace(ctx, signer=ahead.signer, parsed=ahead.parsed, refused=ahead.refused,
                          opened=ahead.opened)
        ctx, why = run_stages(self._checks, ctx)
        writer = await self._writer(s.partition)
        received = self._record_received(writer, ctx)
        if why is not None:  # not authentic: never taken for a copy of anything
            return await self._decide(writer, ctx, received, started, why)
        key = (s.sender, ctx.identity)
        first = self.book.first_accepted(*key)
        if first == s.submission_id:  # the same submission put on the ingress topic twice
            return self._finish_repeat(ctx, received)
        if first is not None:
            return self._finish_duplicate(writer, ctx, [received], first)
        earlier = self._in_flight.get(key)
        if earlier is not None:
            return self._after(earlier, writer, ctx, received, started)
        ctx = await self._parsed(ctx)
        if self._is_warning(ctx.format_id):
            await self.warnings.catch_up()  # steps other gateway processes took count too
        ctx, why = run_stages(self._pipeline, ctx)
        return await self._decide(writer, ctx, received, started, why)

    async def _parsed(self, ctx: Context) -> Context:
        """The context with the document parsed by the worker process (or refused by it),
        unless it was already: the event loop never parses a document itself, since nothing
        could stop a parse that spins or swells there (gateway/decide/ahead.py)."""
        if ctx.parsed is not None or ctx.refused is not None:
            return ctx
        if ctx.submission.format_id not in self.parts.adapters:
            return ctx  # the adapt stage names the unknown format
        found = await self._ahead.parse(ctx.submission)
        return replace(ctx, parsed=found.parsed, refused=found.refused)

    def _is_warning(self, format_id: str) -> bool:
        adapters = self.parts.adapters
        return (format_id in adapters
                and adapters.get(format_id).document_type == WARNING_DOCUMENT_TYPE)

    async def _after(self, earlier: asyncio.Future[SubmitOutcome], writer: TrailWriter,
                     ctx: Context, received: asyncio.Future[int], started: float
                     ) -> SubmitOutcome:
        """The same document came again while its first submission was being decided."""
        with contextlib.suppress(Exception):
            first = await asyncio.shield(earlier)
            if first.receipt is not None and first.receipt.receipt.accepted:
                return await self._finish_duplicate(writer, ctx, [received],
                                                    first.submission_id)
        ctx, why = run_stages(self._pipeline, await self._parsed(ctx))
        finish = await self._decide(writer, ctx, received, started, why)
        return await finish

    async def _decide(self, writer: TrailWriter, ctx: Context, received: asyncio.Future[int],
                      started: float, why: Rejection | None) -> Awaitable[SubmitOutcome]:
        """Hands what was decided to the producer; returns the waiting that is left."""
        key = (ctx.submission.sender, ctx.identity)
        decided: asyncio.Future[SubmitOutcome] = asyncio.get_running_loop().create_future()
        if why is None:
            self._in_flight[key] = decided
            finish = self._finish_accepted(writer, ctx, received, await self._send_accepted(ctx))
        else:
            out = self._dead_letter(ctx, why)
            dead_letter = _Sent(out, await self.send(out))
            statuses = await self._send_statuses(ctx, "rejected", (), error_code=why.code)
            finish = self._finish_rejected(writer, ctx, why, received, dead_letter, statuses)
        return self._settle(key, decided, finish, started)

    async def _settle(self, key: tuple[str, str], decided: asyncio.Future[SubmitOutcome],
                      finish: Awaitable[SubmitOutcome], started: float) -> SubmitOutcome:
        try:
            outcome = await finish
        except BaseException as exc:
            decided.set_exception(exc)
            decided.exception()  # nobody else may be waiting: do not warn about it
            raise
        else:
            decided.set_result(outcome)
            self.metrics.observe_stage("total", time.perf_counter() - started)
            return outcome
        finally:
            if self._in_flight.get(key) is decided:
                del self._in_flight[key]

    def _record_received(self, writer: TrailWriter, ctx: Context) -> asyncio.Future[int]:
        """RECEIVED, before anything is decided: who sent what, and where the original bytes
        and the sender's signature are kept (the ingress message)."""
        s = ctx.submission
        ingress = {}
        if s.ingress_offset is not None:
            at = Published(INGRESS_TOPIC, s.partition, s.ingress_offset)
            ingress = reference(at, s.document, digest=ctx.digest)
        return writer.add(**trail_fields(ctx), kind="RECEIVED", reason=received_reason(ctx),
                          **ingress)

    async def _send_accepted(self, ctx: Context) -> _AcceptedSends:
        assert ctx.event is not None and ctx.decision is not None
        event = await self.send(ctx.event)
        deliveries = [self._deliveries.put(out) for _, out in ctx.deliveries]
        recipients = ctx.decision.recipients
        statuses = await self._send_statuses(ctx, "accepted", recipients)
        for grant, _ in ctx.deliveries:
            statuses += await self._send_statuses(ctx, "delivered", recipients,
                                                  recipient=grant.recipient)
        return _AcceptedSends(event, deliveries, statuses)

    async def _finish_accepted(self, writer: TrailWriter, ctx: Context,
                               received: asyncio.Future[int], sent: _AcceptedSends
                               ) -> SubmitOutcome:
        assert ctx.event is not None and ctx.decision is not None
        published = time.perf_counter()
        event_at = await acked(sent.event)
        delivered_at = [await acked(d) for d in sent.deliveries]
        self.metrics.observe_stage("publish", time.perf_counter() - published)
        base = trail_fields(ctx)
        records = [received, writer.add(**base, kind="ACCEPTED",
                                        reason=ctx.decision.explanation,
                                        **reference(event_at, ctx.event.value))]
        for (grant, out), at in zip(ctx.deliveries, delivered_at, strict=True):
            contract = grant.contract
            records.append(writer.add(
                **base, kind="DELIVERED", recipient=grant.recipient,
                contract_id=contract.id, contract_version=contract.version,
                reason=f"{contract.scope} sharing under {contract.label}: {contract.purpose}",
                **reference(at, out.value),
            ))
        for denial in ctx.decision.denials:
            records.append(writer.add(
                **base, kind="DENIED", recipient=denial.recipient, error_code=denial.code,
                contract_id=denial.contract.id, contract_version=denial.contract.version,
                reason=denial.reason,
            ))
        records += await self._record_statuses(writer, ctx, sent.statuses)
        receipt = self._receipt(ctx, ACCEPTED, recipients=ctx.decision.recipients)
        outcome = await self._answer(ctx, records, receipt)
        document_type = ctx.document_type or "unknown"
        self.metrics.accepted(document_type, ctx.submission.sender)
        for grant, _ in ctx.deliveries:
            self.metrics.delivered(document_type, grant.recipient)
        log.info("document.accepted", event_id=ctx.event_id, sender=ctx.submission.sender,
                 document_type=ctx.document_type, recipients=len(ctx.deliveries))
        return outcome

    async def _finish_rejected(self, writer: TrailWriter, ctx: Context, why: Rejection,
                               received: asyncio.Future[int],
                               dead_letter: _Sent, statuses: list[_StatusSend]
                               ) -> SubmitOutcome:
        at = await acked(dead_letter.sent)
        value = dead_letter.out.value
        records = [received, writer.add(**trail_fields(ctx), kind=why.kind,
                                        error_code=why.code, reason=why.message,
                                        **reference(at, value))]
        records += await self._record_statuses(writer, ctx, statuses)
        outcome = await self._answer(ctx, records, self._receipt(ctx, REJECTED, error=why))
        self.metrics.rejected(ctx.document_type, ctx.submission.sender, why.code)
        log.info("document.rejected", event_id=ctx.event_id, sender=ctx.submission.sender,
                 code=why.code)
        return outcome

    async def _finish_duplicate(self, writer: TrailWriter, ctx: Context,
                                records: list[asyncio.Future[int]], first_id: str
                                ) -> SubmitOutcome:
        """The first receipt again, and nothing delivered again."""
        s = ctx.submission
        answer = await self.book.get(first_id)
        if answer is None:
            raise GatewayError(f"the receipt of {first_id} is missing", code="RECEIPT_MISSING")
        first = answer.receipt.receipt
        records.append(writer.add(
            **{**trail_fields(ctx), "event_id": first.event_id,
               "document_type": first.document_type, "business_key": first.business_key},
            kind="DUPLICATE", reason=f"the same document as submission {first_id}: "
            "answered with its receipt, not delivered again"))
        await written(records)
        await self._publish_receipt(ctx, answer.receipt, duplicate_of=first_id)
        self.metrics.duplicate(s.sender)
        log.info("document.duplicate", event_id=first.event_id, sender=s.sender,
                 first_submission=first_id)
        return SubmitOutcome(s.submission_id, answer.receipt, duplicate_of=first_id)

    async def _finish_repeat(self, ctx: Context, received: asyncio.Future[int]
                             ) -> SubmitOutcome:
        """Its answer stands; nothing is published again."""
        await received
        answer = await self.book.get(ctx.submission.submission_id)
        assert answer is not None
        return SubmitOutcome(ctx.submission.submission_id, answer.receipt, answer.duplicate_of)

    async def _answer(self, ctx: Context, records: list[asyncio.Future[int]], receipt: Receipt
                      ) -> SubmitOutcome:
        """Once the trail holds every record of the decision: the signed receipt."""
        waited = time.perf_counter()
        await written(records)
        self.metrics.observe_stage("trail", time.perf_counter() - waited)
        waited = time.perf_counter()
        signed = await self._signer.sign(receipt)
        await self._publish_receipt(ctx, signed)
        self.metrics.observe_stage("receipt", time.perf_counter() - waited)
        return SubmitOutcome(ctx.submission.submission_id, signed)

    async def _publish_receipt(self, ctx: Context, signed: SignedReceipt, *,
                               duplicate_of: str | None = None) -> None:
        """An envelope's receipt names its identity (what later submissions are duplicates of
        it by, `Context.identity`) and its TransInfo (what the door's DxpRep echoes)."""
        s = ctx.submission
        headers = [(H_SUBMISSION_ID, s.submission_id.encode()), (H_SENDER, s.sender.encode()),
                   (H_DIGEST, signed.receipt.digest_sm3.encode()),
                   (H_STATUS, signed.receipt.status.encode())]
        if duplicate_of is not None:
            headers.append((H_DUPLICATE_OF, duplicate_of.encode()))
        if ctx.opened is not None:
            headers += [(H_IDENTITY, ctx.identity.encode()),
                        (H_DXP_TRANS_INFO, trans_info_header(ctx.opened.trans_info))]
        out = Outbound(RECEIPT_TOPIC, s.submission_id.encode(),
                       signed.encode(self.parts.schemas), tuple(headers))
        at = await acked(await self.send(out, partition=s.partition))
        self.book.add(StoredMessage(at.topic, at.partition, at.offset, out.key, out.value,
                                    out.headers, 0))

    def _dead_letter(self, ctx: Context, why: Rejection) -> Outbound:
        s = ctx.submission
        headers: tuple[tuple[str, bytes], ...] = ((H_EVENT_ID, ctx.event_id.encode()),
                                                  (H_SENDER, s.sender.encode()))
        original = s.document
        if ctx.signer is None and len(original) > KEPT_PREFIX_BYTES:  # never authenticated
            original = original[:KEPT_PREFIX_BYTES]
            headers += ((H_ORIGINAL_SIZE, str(len(s.document)).encode()),
                        (H_DIGEST, ctx.digest.encode()))
        return Outbound(
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
                    "original": original,
                    "signature": s.signature,
                    **document_facts(ctx),
                },
            ),
            headers=headers,
        )

    def _receipt(self, ctx: Context, status: str, *, recipients: Iterable[str] = (),
                 error: Rejection | None = None) -> Receipt:
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
            business_key=ctx.business_key,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            error_line=error.line if error else None,
        )

    async def _send_statuses(self, ctx: Context, status: str, recipients: Iterable[str], *,
                             recipient: str | None = None, error_code: str | None = None
                             ) -> list[_StatusSend]:
        """Status events for the parties to the document (its sender and recipients) that
        subscribed to them."""
        if ctx.document_type is None:
            return []
        s = ctx.submission
        found = self.parts.router.index.subscribers(ctx.document_type, status,
                                                   (s.sender, *recipients), s.received_at)
        sends = []
        for subscriber, contract in found:
            event = {
                "event_id": ctx.event_id, "submission_id": s.submission_id, "status": status,
                "time": utc_now(), "subscriber": subscriber, "sender": s.sender,
                "document_type": ctx.document_type,
                "business_key": ctx.business_key,
                "recipient": recipient, "error_code": error_code,
                "contract_id": contract.id, "contract_version": contract.version,
            }
            out = Outbound(
                topic=status_topic(subscriber),
                key=s.submission_id.encode(),
                value=self.parts.schemas.encode(STATUS_SCHEMA, event),
                headers=((H_EVENT_ID, ctx.event_id.encode()),),
            )
            sends.append(_StatusSend(subscriber, contract, status, out, await self.send(out)))
        return sends

    async def _record_statuses(self, writer: TrailWriter, ctx: Context,
                               sends: list[_StatusSend]) -> list[asyncio.Future[int]]:
        records = []
        for send in sends:
            at = await acked(send.sent)
            records.append(writer.add(
                **trail_fields(ctx), kind="NOTIFIED", recipient=send.subscriber,
                contract_id=send.contract.id, contract_version=send.contract.version,
                reason=f"status {send.status} under subscription {send.contract.label}",
                **reference(at, send.out.value),
            ))
        return records

    async def send(self, out: Outbound, *, partition: int | None = None) -> asyncio.Future[Any]:
        """Hands a message to the producer; the future is done when the broker has it."""
        if self._producer is None:
            raise BrokerUnavailable("the gateway is not started")
        try:
            delivered: asyncio.Future[Any] = await self._producer.send(
                out.topic, out.value, key=out.key, headers=list(out.headers), partition=partition)
            return delivered
        except KafkaError as exc:
            self.health.failed(exc)
            raise BrokerUnavailable(f"publishing to {out.topic} failed: {exc}") from exc

    def _event_id(self, s: Submission) -> str:
        """Named after the ingress record when there is one, so that a document processed
        again after a crash keeps its event id (recipients drop the repeat)."""
        if s.ingress_offset is None or s.ingress_timestamp_ms is None:
            return self._ids.new()
        seed = f"{INGRESS_TOPIC}/{s.partition}/{s.ingress_offset}".encode()
        return derived_uuid7(s.ingress_timestamp_ms, seed)

    async def _writer(self, partition: int) -> TrailWriter:
        writer = self._writers.get(partition)
        if writer is not None and writer.failed:
            self._drop_writer(partition)
            writer = None
        if writer is None:
            assert self._trail_producer is not None
            chain = chain_id(partition)
            writer = TrailWriter(
                producer=self._trail_producer,
                codec=self._codec,
                key=self.parts.key,
                partition=partition,
                settings=self.config.trail,
                chain=chain,
                archive=await asyncio.to_thread(self._open_archive, chain),
            )
            try:
                await writer.recover(self.bootstrap_servers,
                                     fetch_wait_ms=self.config.fetch_wait_ms)
            except BaseException:
                writer.close()
                raise
            self._writers[partition] = writer
        return writer

    def _drop_writer(self, partition: int) -> None:
        writer = self._writers.pop(partition, None)
        if writer is not None:
            writer.close()

    def _open_archive(self, chain: str) -> ArchiveWriter | None:
        directory = self.config.archive_dir
        if directory is None:
            return None
        return ArchiveWriter(directory, chain, schemas=self.parts.schemas,
                             max_segment_bytes=self.config.trail.archive_segment_bytes)

    def seal_due(self) -> None:
        for writer in self._writers.values():
            if not writer.failed:
                writer.seal_if_due()

    async def serve(self, stop: asyncio.Event) -> None:
        """Consumes the ingress topic as a member of the gateways' consumer group until
        `stop` is set (see gateway/ingress/serving.py). Stopping also stops the parse worker at
        once, so that no document waits for it: what it had not answered is taken again later."""
        await self._ahead.start()
        closing = asyncio.create_task(self._stop_checking_on(stop))
        watching = self._watch_keyring(stop)
        try:
            await IngressLoop(self).run(stop)
        finally:
            closing.cancel()
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)

    def _watch_keyring(self, stop: asyncio.Event) -> asyncio.Task[None] | None:
        """Reloads the keyring when its file changes, looking as often as for the contracts
        (`contracts_watch_s`; 0: only on SIGHUP)."""
        interval_s = self.config.contracts_watch_s
        if interval_s <= 0:
            return None
        return asyncio.create_task(self.parts.live_keyring.watch(stop, interval_s))

    async def _stop_checking_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self._ahead.close()

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
class _StatusSend:
    subscriber: str
    contract: Any
    status: str
    out: Outbound
    sent: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class _Sent:
    out: Outbound
    sent: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class _AcceptedSends:
    event: asyncio.Future[Any]
    deliveries: list[asyncio.Future[Any]]
    statuses: list[_StatusSend]


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


def trail_fields(ctx: Context) -> dict[str, Any]:
    s = ctx.submission
    return {
        "submission_id": s.submission_id,
        "event_id": ctx.event_id,
        "sender": s.sender,
        "format_id": s.format_id,
        **document_facts(ctx),
        "digest_sm3": ctx.digest,
        "signature_key_id": ctx.signer.key_id if ctx.signer else None,
    }


def document_facts(ctx: Context) -> dict[str, Any]:
    """What the stages found out about the document, as far as they got: its type once its
    format's adapter is known, its business key and version once it is read (`Context`)."""
    return {
        "document_type": ctx.document_type,
        "business_key": ctx.business_key,
        "document_version": ctx.document_version,
    }


KEYRING_MARK = "; keyring "


def received_reason(ctx: Context) -> str:
    """A RECEIVED record's reason: the size and format, then the version of the keyring the
    document was judged under (the SM3 of its file's bytes), when it has one."""
    s = ctx.submission
    reason = f"{len(s.document)} bytes as {s.format_id or '?'}"
    version = ctx.keyring.version if ctx.keyring is not None else None
    return reason if version is None else f"{reason}{KEYRING_MARK}{version}"
