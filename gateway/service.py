"""The gateway service: decide, plan, publish.

Each submission is decided by the stages (gateway.decide), what was decided becomes a plan of
what to publish (gateway.publish.plan), and the publisher carries it out
(gateway.publish.publisher): for an accepted document the canonical event, one delivery per
permitted recipient, their trail records, then the receipt; for a refused one the dead letter
(with the original bytes), its trail record, then the error receipt. A step is taken only
after the broker acknowledged the one before (acks=all).
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

from adapters import document_derivers
from contracts import RouteDenied
from gateway.clock import utc_now
from gateway.console.app import ConsoleSources, add_console
from gateway.console.contracts import ContractSources
from gateway.decide.ahead import NOTHING_AHEAD, Ahead, CheckAhead, ParseUnavailable
from gateway.decide.pipeline import (
    DXP_FORMAT,
    Adapt,
    Authenticate,
    BuildEvent,
    CheckSize,
    ChooseAdapter,
    Context,
    Derive,
    DetectFormat,
    EnvelopeRefused,
    OpenEnvelope,
    Pipeline,
    Refusal,
    Rejection,
    Route,
    Submission,
    new_context,
)
from gateway.deliveries.pull import DeliveryPages
from gateway.errors import BrokerUnavailable, GatewayError, crash_site
from gateway.home.certificates import CERT_EXPIRED, own_certificates
from gateway.home.config import GatewayConfig
from gateway.ids import Uuid7Generator, derived_uuid7
from gateway.ingress.deliveries_api import DeliveriesDoor, RecipientRoutes
from gateway.ingress.desk import SubmitOutcome
from gateway.ingress.http_api import build_app, build_operator_app
from gateway.ingress.limits import RateLimiter
from gateway.ingress.serving import GatewayDesk, IngressLoop
from gateway.kafka.names import Outbound
from gateway.kafka.wire import Broker, ensure_topics, new_producer
from gateway.observe.health import BrokerHealth
from gateway.observe.metrics import GatewayMetrics
from gateway.parts import GatewayParts
from gateway.publish.business_receipts import BusinessReceipts, accepted, duplicate, refused
from gateway.publish.contrl_answers import ContrlAnswers
from gateway.publish.deliveries import BuildDeliveries
from gateway.publish.plan import (
    accepted_plan,
    duplicate_plan,
    received_entry,
    rejected_plan,
    repeat_plan,
)
from gateway.publish.publisher import Publisher
from gateway.publish.push import RESTART_AFTER_S, Pushes, PushNeeds, payload_media_types
from gateway.publish.sealing import BatchSealer
from gateway.receipts.book import ReceiptBook
from gateway.receipts.receipt import SignedReceipt
from gateway.trail.archive import ArchiveWriter
from gateway.trail.taken import TakenRecorder
from gateway.trail.writer import TrailCodec, TrailWriter, chain_id
from gateway.warnings.book import WarningBook
from gateway.warnings.lifecycle import DOCUMENT_TYPE as WARNING_DOCUMENT_TYPE
from gateway.warnings.lifecycle import Authorities
from message_formats import CodedError

log = structlog.get_logger(__name__)

T = TypeVar("T")
# The process that owns this partition of the ingress topic pushes (gateway.publish.push).
PUSH_LEADER_PARTITION = 0
# The trail producer gathers records this long into one produce request (the documents'
# producer: 1 ms). Only a receipt waits for its document's records; at a few hundred
# documents a second, each writing its records at two moments, 1 ms made two requests per
# document, and each request costs the gateway and the local broker a round trip.
TRAIL_LINGER_MS = 5


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
        if isinstance(failed, EnvelopeRefused):  # read: its facts, its signer if confirmed
            refused = replace(refused, refused=failed.refusal, opened=failed.opened,
                              signer=failed.signer)
        elif refused.refused is None:  # else the Adapt stage raised the worker's refusal
            refused = replace(refused, refused=Refusal.of(failed))
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

    A submission is taken in two steps. `begin` does, in ingress order, what must keep that
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
        self.topics = parts.topics
        self.metrics = metrics or GatewayMetrics()
        self.limiter = RateLimiter(config.limits_for)
        self._ids = Uuid7Generator()
        self._codec = TrailCodec(parts.schemas)
        observe = self.metrics.observe_stage
        self._checks = Pipeline(
            [("size", CheckSize(config.limits_for)),
             ("format", DetectFormat()),
             ("envelope", OpenEnvelope(parts.live_keyring)),
             ("authenticate", Authenticate(parts.live_keyring))],
            observe=observe,
        )
        self.warnings = WarningBook(
            bootstrap_servers, parts.schemas,
            Authorities(config.warnings.level_owners, parts.agency_names),
            partitions=config.ingress_partitions, topics=self.topics,
            fetch_wait_ms=config.fetch_wait_ms)
        event = BuildEvent(parts.schemas, self.topics)
        deliveries = BuildDeliveries(parts.payloads, parts.schemas, parts.dxp)
        self._pipeline = Pipeline(
            [
                ("adapter", ChooseAdapter(parts.adapters)),
                ("adapt", Adapt()),
                ("lifecycle", self.warnings.check_stage),
                ("event", event),
                ("route", Route(parts.router, internal=self.warnings.kept_internal)),
                ("deliveries", deliveries),
                ("derive", Derive(document_derivers(parts.adapters), parts.router, event,
                                  deliveries)),
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
        self.book = ReceiptBook(bootstrap_servers, parts.schemas, topics=self.topics,
                                index_dir=config.receipt_index_path,
                                fetch_wait_ms=config.fetch_wait_ms)
        self.health = BrokerHealth()
        # Receipts and deliveries decided together share one seal (gateway.publish.sealing).
        self._publisher = Publisher(BatchSealer(parts.key), parts.schemas,
                                    keep=self.book.add_published,
                                    health=self.health, observe=observe,
                                    receipt_topic=self.topics.receipt,
                                    made=self._made_topics())
        self._business_receipts = BusinessReceipts(parts.dxp, parts.payloads, parts.schemas)
        self._contrl_answers = ContrlAnswers(parts.payloads, parts.schemas)
        self._ahead = CheckAhead(parts.live_keyring, config.limits_for, config.parsing,
                                 on_worker_lost=self.metrics.parse_worker_lost)
        self.desk = GatewayDesk(self)
        self._recipients: RecipientRoutes | None = None  # made at start
        # Records recipients' acknowledgements (pulled or pushed) as TAKEN, on the chain of an
        # ingress partition this process owns (gateway.trail.taken). Made at start.
        self.taken: TakenRecorder | None = None
        self._pushes = Pushes(config.push, bootstrap_servers, PushNeeds(
            parts.schemas, self.topics, parts.live_keyring, self.metrics,
            parts.payloads.topic_of, payload_media_types(parts.adapters),
            config.fetch_wait_ms))
        self._pushing: tuple[asyncio.Event, asyncio.Task[None]] | None = None

    async def start(self) -> None:
        await ensure_topics(self.bootstrap_servers, self._made_topics())
        self._producer = new_producer(self.bootstrap_servers)
        self._trail_producer = new_producer(self.bootstrap_servers, linger_ms=TRAIL_LINGER_MS)
        try:
            await self._producer.start()
            await self._trail_producer.start()
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot reach {self.bootstrap_servers}: {exc}") from exc
        self.taken = TakenRecorder(
            self._trail_producer, self._codec, self.config.trail, self.topics,
            self.bootstrap_servers, key=self.parts.key, archive=self._open_archive,
            fetch_wait_ms=self.config.fetch_wait_ms)
        self._recipients = self._recipients_door(self.taken)
        await self.book.start()
        await self.warnings.start()
        await self._ahead.start()
        self.health.watch(self._producer)
        self._publisher.producer = self._producer
        self._watch_certificates()
        log.info("gateway.started", bootstrap_servers=str(self.bootstrap_servers))

    def _watch_certificates(self) -> None:
        """Each own certificate's notAfter to /metrics, and a warning in the log for one that
        expires within a month (an error for one that has)."""
        now = utc_now()
        for certificate in own_certificates(self.config):
            self.metrics.set_certificate_not_after(certificate.setting, certificate.not_after)
            finding = certificate.finding(now)
            if finding is not None:
                code, message = finding
                report = log.error if code == CERT_EXPIRED else log.warning
                report("gateway.certificate_expiry", code=code, detail=message)

    def _made_topics(self) -> dict[str, int]:
        partitions = self.config.ingress_partitions
        topics = self.topics
        return {topics.ingress: partitions, topics.trail: partitions,
                topics.receipt: partitions, topics.dlq: partitions, topics.checkpoint: 1,
                topics.taken: 1}

    def _recipients_door(self, recorder: TakenRecorder) -> RecipientRoutes:
        """The recipients' routes of the HTTP door, and what they read and record with."""
        parts = self.parts
        return RecipientRoutes(DeliveriesDoor(
            DeliveryPages(self.bootstrap_servers, parts.schemas), recorder, parts.live_keyring,
            parts.agencies, parts.payloads.topic_of, parts.schemas, self.metrics, parts.key,
            body_timeout_s=self.config.http.body_timeout_s))

    async def stop(self) -> None:
        try:
            await self._stop_push()
            await self.seal_all()
        finally:
            for partition in list(self._writers):
                self._drop_writer(partition)
            recipients, self._recipients, self.taken = self._recipients, None, None
            if recipients is not None:
                await recipients.close()  # the TAKEN records left sealed too
            await self.health.stop()
            await self._ahead.close()
            await self.book.stop()
            await self.warnings.stop()
            for producer in (self._producer, self._trail_producer):
                if producer is not None:
                    await producer.stop()
            self._producer = self._trail_producer = self._publisher.producer = None

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
        if self.taken is not None:
            self.taken.own(partitions)
        if PUSH_LEADER_PARTITION in partitions:
            self._start_push()

    def http_app(self) -> web.Application:
        """The HTTP door over this gateway. It is ready while the receipt book is sound
        (the broker's health it reports on its own)."""
        return build_app(self.desk, self.config, self.parts.agencies, self.metrics,
                         ready=lambda: self.book.sound, parser_ready=lambda: self._ahead.ready,
                         limiter=self.limiter, keyring=self.parts.live_keyring,
                         recipients=self._recipients)

    def operator_app(self) -> web.Application:
        """The operators' door ([http] operator_listen): /metrics, the probes and the
        console (gateway/console)."""
        app = build_operator_app(self.desk, self.metrics, ready=lambda: self.book.sound,
                                 parser_ready=lambda: self._ahead.ready)
        parts = self.parts
        add_console(app, ConsoleSources(self.desk, self.metrics, parts.agencies,
                                        parts.live_keyring, self.bootstrap_servers,
                                        self.topics, parts.schemas,
                                        # -- contracts and early warnings
                                        ContractSources(parts.router, self.config.contracts_dir,
                                                        parts.adapters, parts.schemas,
                                                        parts.agencies, self._ahead.parse,
                                                        self.config.limits_for),
                                        self.warnings,
                                        # -- for the document history and trail pages
                                        self.config))
        return app

    async def release(self, partitions: Iterable[int]) -> None:
        """Gives up the chains of partitions this process no longer owns (sealed first), and
        push with the partition that leads it: push stops first, then the chains of TAKEN
        records of those partitions are sealed and let go."""
        partitions = list(partitions)
        try:
            if PUSH_LEADER_PARTITION in partitions:
                await self._stop_push()
            if self.taken is not None:
                await self.taken.give_up(partitions)
        finally:
            for partition in partitions:
                self._drop_writer(partition)

    async def process(self, submission: Submission) -> SubmitOutcome:
        """Decides on one submission and waits until everything it produced is on the
        broker."""
        (found,) = await self.check_ahead([submission])[0]
        finish = await self.begin(submission, found)
        return await finish

    def check_ahead(self, submissions: Sequence[Submission]
                    ) -> list[asyncio.Future[list[Ahead]]]:
        """Starts the checks of the next documents in the worker process (signature, parsing;
        see gateway/decide/ahead.py). `begin` takes what it found as `ahead`."""
        return self._ahead.check(submissions)

    async def begin(self, s: Submission, ahead: Ahead) -> Awaitable[SubmitOutcome]:
        """Decides on a submission and hands what it decided to the producer; returns the
        waiting that is left. `ahead`: what the worker process found (`check_ahead`): for
        a submission that names no format, the format its content shows; an envelope is
        opened there only, so one not answered waits for the next worker (ParseUnavailable).

        The checks run on the event loop or in the worker process, not in a worker thread:
        the two threads then passed the GIL to and fro at every OpenSSL, lxml and hashlib
        call, which cost 0.5 ms of CPU per document and doubled the latency at 300
        documents/s (bench/e2e.py)."""
        started = time.perf_counter()
        if ahead.format_id is not None:
            s = replace(s, format_id=ahead.format_id)
        elif ahead is NOTHING_AHEAD and self._ahead.closed and s.format_id in ("", DXP_FORMAT):
            raise ParseUnavailable("the gateway stopped before the document was read")
        self.metrics.received(s.sender, s.format_id)
        # The keyring in force now decides this document, whatever a reload does meanwhile.
        ctx = new_context(s, self._event_id(s), keyring=self.parts.live_keyring.current)
        if ahead is not NOTHING_AHEAD:
            ctx = replace(ctx, signer=ahead.signer, parsed=ahead.parsed, refused=ahead.refused,
                          opened=ahead.opened)
        ctx, why = run_stages(self._checks, ctx)
        writer = await self._writer(s.partition)
        received = self._publisher.record(writer, received_entry(ctx, self.topics))
        if why is not None:  # not authentic: never taken for a copy of anything
            return self._decide(writer, ctx, received, started, why)
        key = (s.sender, ctx.identity)
        first = self.book.first_accepted(*key)
        if first == s.submission_id:  # the same submission put on the ingress topic twice
            return self._repeat(writer, ctx, received)
        if first is not None:
            return self._duplicate(writer, ctx, received, first)
        earlier = self._in_flight.get(key)
        if earlier is not None:
            return self._after(earlier, writer, ctx, received, started)
        ctx = await self._parsed(ctx)
        if self._is_warning(ctx.format_id):
            await self.warnings.catch_up()  # steps other gateway processes took count too
        ctx, why = run_stages(self._pipeline, ctx)
        return self._decide(writer, ctx, received, started, why)

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
                return await self._duplicate(writer, ctx, received, first.submission_id)
        ctx, why = run_stages(self._pipeline, await self._parsed(ctx))
        finish = self._decide(writer, ctx, received, started, why)
        return await finish

    def _decide(self, writer: TrailWriter, ctx: Context, received: asyncio.Future[int],
                started: float, why: Rejection | None) -> Awaitable[SubmitOutcome]:
        """Hands what was decided to the producer; returns the waiting that is left."""
        key = (ctx.submission.sender, ctx.identity)
        decided: asyncio.Future[SubmitOutcome] = asyncio.get_running_loop().create_future()
        index, schemas, now = self.parts.router.index, self.parts.schemas, utc_now()
        if why is None:
            self._in_flight[key] = decided
        try:
            plan = (accepted_plan(ctx, index, schemas, self.topics, now) if why is None
                    else rejected_plan(ctx, why, index, schemas, self.topics, now))
            plan = self._business_receipts.added(plan, ctx, refused(why) if why else accepted(),
                                                 now)
            plan = self._contrl_answers.added(plan, ctx, why, now)
            answered = self._publisher.hand_over(plan, writer, received)
        except BaseException as exc:
            # Later versions of the document wait for this one (`_after`): tell them, or
            # they, and the stop that waits for them, would wait for ever.
            self._gave_up(key, decided, exc)
            raise
        return self._settle(key, decided, self._told(ctx, why, answered), started)

    async def _settle(self, key: tuple[str, str], decided: asyncio.Future[SubmitOutcome],
                      finish: Awaitable[SubmitOutcome], started: float) -> SubmitOutcome:
        try:
            outcome = await finish
        except BaseException as exc:
            self._gave_up(key, decided, exc)
            raise
        decided.set_result(outcome)
        self._forget(key, decided)
        self.metrics.observe_stage("total", time.perf_counter() - started)
        return outcome

    def _gave_up(self, key: tuple[str, str], decided: asyncio.Future[SubmitOutcome],
                 exc: BaseException) -> None:
        decided.set_exception(exc)
        decided.exception()  # nobody else may be waiting: do not warn about it
        self._forget(key, decided)

    def _forget(self, key: tuple[str, str], decided: asyncio.Future[SubmitOutcome]) -> None:
        if self._in_flight.get(key) is decided:
            del self._in_flight[key]

    async def _told(self, ctx: Context, why: Rejection | None,
                    answered: Awaitable[SignedReceipt]) -> SubmitOutcome:
        """The outcome once answered, counted and logged."""
        signed = await answered
        s = ctx.submission
        if why is None:
            self.metrics.accepted(ctx.document_type or "unknown", s.sender)
            for decided in (ctx, *ctx.derived):
                for grant, _ in decided.deliveries:
                    self.metrics.delivered(decided.document_type or "unknown", grant.recipient,
                                           sender=s.sender)
            log.info("document.accepted", event_id=ctx.event_id, sender=s.sender,
                     document_type=ctx.document_type, recipients=len(ctx.deliveries),
                     derived=len(ctx.derived))
        else:
            self.metrics.rejected(ctx.document_type, s.sender, why.code)
            log.info("document.rejected", event_id=ctx.event_id, sender=s.sender,
                     code=why.code)
        return SubmitOutcome(s.submission_id, signed)

    async def _duplicate(self, writer: TrailWriter, ctx: Context,
                         received: asyncio.Future[int], first_id: str) -> SubmitOutcome:
        """The first receipt again, and nothing delivered again."""
        s = ctx.submission
        answer = await self.book.get(first_id)
        if answer is None:
            raise GatewayError(f"the receipt of {first_id} is missing", code="RECEIPT_MISSING")
        plan = self._business_receipts.added(duplicate_plan(ctx, answer.receipt, first_id), ctx,
                                             duplicate(first_id), utc_now())
        await self._publisher.hand_over(plan, writer, received)
        self.metrics.duplicate(s.sender)
        log.info("document.duplicate", event_id=answer.receipt.receipt.event_id,
                 sender=s.sender, first_submission=first_id)
        return SubmitOutcome(s.submission_id, answer.receipt, duplicate_of=first_id)

    async def _repeat(self, writer: TrailWriter, ctx: Context, received: asyncio.Future[int]
                      ) -> SubmitOutcome:
        """Its answer stands; nothing is published again."""
        s = ctx.submission
        answer = await self.book.get(s.submission_id)
        assert answer is not None
        plan = repeat_plan(ctx, answer.receipt, answer.duplicate_of)
        await self._publisher.hand_over(plan, writer, received)
        return SubmitOutcome(s.submission_id, answer.receipt, answer.duplicate_of)

    async def send(self, out: Outbound, *, partition: int | None = None) -> asyncio.Future[Any]:
        """Hands a message to the producer; the future is done when the broker has it."""
        return await self._publisher.send(out, partition=partition)

    def _event_id(self, s: Submission) -> str:
        """Named after the ingress record when there is one, so that a document processed
        again after a crash keeps its event id (recipients drop the repeat)."""
        if s.ingress_offset is None or s.ingress_timestamp_ms is None:
            return self._ids.new()
        seed = f"{self.topics.ingress}/{s.partition}/{s.ingress_offset}".encode()
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
                topics=self.topics,
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
            await self._stop_push()
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

    def _start_push(self) -> None:
        """Push runs in the one process that owns the ingress partition PUSH_LEADER_PARTITION
        (the consumer group gives it to exactly one): two would send each delivery twice and
        write one trail chain from two places. Another takes over when the partition moves,
        from the positions kept."""
        if self.config.push.recipients and self._pushing is None:
            stop = asyncio.Event()
            self._pushing = (stop, asyncio.create_task(self._push(stop), name="push"))

    async def _stop_push(self) -> None:
        if self._pushing is not None:
            (stop, task), self._pushing = self._pushing, None
            stop.set()
            await asyncio.gather(task, return_exceptions=True)

    async def _push(self, stop: asyncio.Event) -> None:
        """Pushes deliveries to the recipients of `[push.recipients]` until `stop`
        (gateway.publish.push); a failure of push (the broker away at its start) never
        stops the ingress, and push starts again a little later."""
        while self.config.push.recipients and not stop.is_set():
            try:
                assert self.taken is not None, "push runs in a started gateway"
                await self._pushes.run(stop, self.taken)
            except Exception as exc:
                log.error("push.restarting", error=type(exc).__name__, detail=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESTART_AFTER_S)

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
