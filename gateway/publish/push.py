"""Push: the gateway POSTs each delivery to its recipient's HTTPS endpoint and keeps the
recipient's signed acknowledgement (docs/service.md, "Push").

For each recipient of `[push.recipients]` one task reads its delivery topic (partitions
assigned, no consumer group) from the positions kept on `px.push-positions.v1`, and each
partition is a lane that sends its deliveries one request after the other: the business key
chooses the partition, so the versions of one document arrive in the order they came. A
request carries the lane's next delivery, or with `batch` above 1 as many of the next ones
already read as the batch holds (multipart/mixed, gateway.deliveries.push_wire). It is sent
until the endpoint answers with an acknowledgement that verifies (the recipient's SM2
signature, naming the deliveries sent, in order, with their payloads' SM3), with
exponential backoff and full jitter between attempts; past the recipient's retry horizon
its deliveries go to the dead-letter topic (PUSH_HORIZON_PASSED, the last failure's code in
each message) and the lane goes on. Acknowledged deliveries are recorded as taken in the
trail, then the lane's position moves past them on the positions topic (acks=all) before
the next request is sent: after a restart nothing acknowledged is sent again. A crash
between the recipient's answer and that write sends those deliveries once more (at least
once; the recipient drops a delivery id it has).

Recipients never wait for one another: each has its task, its own HTTP connections (at most
`max_in_flight` requests under way) and every request its `timeout_s`. One gateway process
pushes at a time: the service runs push where it owns the leading ingress partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import aiohttp
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from adapters import AdapterRegistry
from gateway.clock import utc_now
from gateway.decide.router import AVRO_ENCODING, JSON_ENCODING
from gateway.deliveries.acknowledgements import (
    MAX_ACK_BYTES,
    Acknowledgement,
    AcknowledgementVerifier,
    RecordsTaken,
    check_fresh,
    check_taken,
)
from gateway.deliveries.envelopes import ENVELOPE_ENCODING_PREFIX, is_sealed
from gateway.deliveries.proof import H_SEAL, Delivery, DeliveryRefused, DeliveryVerifier
from gateway.deliveries.push_wire import (
    AVRO_FORM,
    JSON_FORM,
    JSON_MEDIA_TYPE,
    PushRequest,
    push_batch,
    push_request,
)
from gateway.errors import BrokerUnavailable, ConfigError, GatewayError
from gateway.home.config import PUSH_CONFIG_INVALID, PushRecipient, PushSettings
from gateway.home.live_keyring import LiveKeyring
from gateway.kafka.names import H_EVENT_ID, H_SENDER, Outbound, StoredMessage, Topics
from gateway.kafka.wire import (
    Broker,
    acked,
    ensure_topics,
    new_producer,
    new_reader,
    partitions_of,
    read_topics,
    stop_consumer,
    stored_message,
    wall_clock_ms,
)
from gateway.observe.metrics import GatewayMetrics
from gateway.publish.plan import DEAD_LETTER_SCHEMA
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)

# Why an attempt failed (the failure metric's `code`; the last one is in a dead letter).
PUSH_TLS_PIN_MISMATCH: Final = "PUSH_TLS_PIN_MISMATCH"
PUSH_TLS_FAILED: Final = "PUSH_TLS_FAILED"
PUSH_UNREACHABLE: Final = "PUSH_UNREACHABLE"
PUSH_TIMEOUT: Final = "PUSH_TIMEOUT"
PUSH_HTTP_STATUS: Final = "PUSH_HTTP_STATUS"
PUSH_HORIZON_PASSED: Final = "PUSH_HORIZON_PASSED"
# The dead letter of a delivery names its form so that `portgw dlq` shows what it holds.
DEAD_DELIVERY_FORMAT: Final = "px-delivery"
H_PUSH_RECIPIENT: Final = "px-push-recipient"
LANE_BACKLOG: Final = 256  # deliveries read ahead per partition; the partition pauses beyond
# How often a recipient's topic is looked for (each time, an admin client asks the broker):
# often until it exists, seldom once its partitions are known.
LOOK_FOR_TOPIC_S: Final = 1.0
LOOK_FOR_PARTITIONS_S: Final = 30.0
POSITIONS_COMPACTED: Final = {"cleanup.policy": "compact"}
RESTART_AFTER_S: Final = 5.0  # a recipient's push, or push as a whole, after it failed

MediaTypeOf = Callable[[str], str]
Kept = Callable[[], Awaitable[None]]  # what a delivery's outcome writes to the broker


def payload_media_types(adapters: AdapterRegistry) -> MediaTypeOf:
    """The `native` form's hook: a payload's media type by its encoding, an adapter's own
    for a document it rendered (the XML forms)."""
    fixed = {AVRO_ENCODING: "application/vnd.apache.avro+binary",
             JSON_ENCODING: JSON_MEDIA_TYPE}

    def media_type(encoding: str) -> str:
        if is_sealed(encoding):  # an SM4 envelope, the gateway's own or CMS
            return "application/octet-stream"
        if encoding.startswith(ENVELOPE_ENCODING_PREFIX):
            return "application/xml"
        if encoding in adapters:
            return adapters.get(encoding).media_type
        return fixed.get(encoding, "application/octet-stream")
    return media_type


class PushFailed(GatewayError):
    """One attempt to hand a delivery over did not end with its acknowledgement."""

    code = "PUSH_FAILED"


def backoff_delay(attempt: int, initial_s: float, max_s: float,
                  draw: Callable[[float, float], float] = random.uniform) -> float:
    """The wait before attempt `attempt + 1` (0: after the first failure): full jitter
    (uniform between 0 and the exponential bound), the bound never above `max_s`."""
    bound = max_s if attempt >= 64 else min(max_s, initial_s * 2 ** attempt)
    return draw(0.0, bound)


def client_context(settings: PushSettings, recipient: PushRecipient) -> ssl.SSLContext:
    """TLS towards one endpoint, with the gateway's client certificate: its server validated
    against `ca_file` when given; a pin alone (`server_sha256`) is checked by the connection
    (`aiohttp.Fingerprint`) in place of a CA."""
    try:
        if recipient.ca_file:
            context = ssl.create_default_context(cafile=recipient.ca_file)
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the pin, checked on every connection
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(settings.client_cert_file, settings.client_key_file)
    except (OSError, ssl.SSLError) as exc:
        why = exc.reason if isinstance(exc, ssl.SSLError) else exc.strerror
        raise ConfigError(f"[push]: the client certificate or a recipient's ca_file cannot be "
                          f"loaded: {why or type(exc).__name__}", code=PUSH_CONFIG_INVALID
                          ) from None
    return context


class Endpoint:
    """One recipient's HTTPS endpoint: its connections (at most `max_in_flight`), TLS as
    configured, each request bounded by `timeout_s`."""

    def __init__(self, settings: PushSettings, recipient: PushRecipient) -> None:
        self.recipient = recipient
        self._context = client_context(settings, recipient)
        self._pin = (aiohttp.Fingerprint(bytes.fromhex(recipient.server_sha256))
                     if recipient.server_sha256 else True)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Endpoint:
        # The pin on the connector, the context on each request: aiohttp then checks both
        # (a Fingerprint given with the request would replace the context and its client
        # certificate).
        connector = aiohttp.TCPConnector(ssl=self._pin, limit=self.recipient.max_in_flight)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.recipient.timeout_s))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, request: PushRequest) -> bytes:
        """The endpoint's answer to the POST; PushFailed, coded, when it gives none or not
        a 2xx."""
        assert self._session is not None
        try:
            async with self._session.post(self.recipient.url, data=request.body,
                                          headers=dict(request.headers),
                                          ssl=self._context) as response:
                if not 200 <= response.status < 300:
                    raise PushFailed(f"the endpoint answered HTTP {response.status}",
                                     code=PUSH_HTTP_STATUS)
                return await read_bounded(response.content, MAX_ACK_BYTES + 1)
        except aiohttp.ServerFingerprintMismatch:
            raise PushFailed("the endpoint's certificate is not the one pinned "
                             "(server_sha256)", code=PUSH_TLS_PIN_MISMATCH) from None
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise PushFailed(f"TLS with the endpoint failed ({type(exc).__name__})",
                             code=PUSH_TLS_FAILED) from None
        except TimeoutError:
            raise PushFailed(f"no answer within timeout_s ({self.recipient.timeout_s} s)",
                             code=PUSH_TIMEOUT) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PushFailed(f"the endpoint cannot be reached ({type(exc).__name__})",
                             code=PUSH_UNREACHABLE) from None


async def read_bounded(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The body, or its first `limit` bytes and some when it is longer (an acknowledgement
    that long is then refused ACK_TOO_LARGE, unread beyond)."""
    body = bytearray()
    async for chunk in content.iter_any():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body)


class PositionBook:
    """Per recipient and delivery partition, the offset before which every delivery was
    acknowledged or dead-lettered: on the compacted positions topic, keyed by recipient,
    topic and partition, so the last value of each key is the position."""

    def __init__(self, broker: Broker, topics: Topics) -> None:
        self._broker = broker
        self._topic = topics.push_positions
        self._producer: AIOKafkaProducer | None = None

    async def start(self, producer: AIOKafkaProducer) -> dict[tuple[str, str, int], int]:
        """Uses `producer` from now on; the positions kept, by (recipient, topic,
        partition)."""
        self._producer = producer
        positions: dict[tuple[str, str, int], int] = {}
        for message in await read_topics(self._broker, [self._topic]):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                kept = json.loads(message.value)
                positions[(kept["recipient"], kept["topic"], int(kept["partition"]))] = \
                    int(kept["next_offset"])
        return positions

    async def save(self, recipient: str, tp: TopicPartition, next_offset: int) -> None:
        """Keeps the position; returns once the broker has it."""
        assert self._producer is not None
        value = {"recipient": recipient, "topic": tp.topic, "partition": tp.partition,
                 "next_offset": next_offset, "at": utc_now().isoformat()}
        key = f"{recipient}\n{tp.topic}\n{tp.partition}".encode()
        await acked(await self._producer.send(self._topic, json.dumps(value).encode(), key=key,
                                              partition=0))


@dataclass(frozen=True, slots=True)
class PushNeeds:
    """What push takes of the gateway: its schemas, topics, keyring (the recipients' ack
    keys, the gateway's sealing keys), metrics, each recipient's delivery topic, and the
    `native` form's media types."""

    schemas: AvroSchemas
    topics: Topics
    keyring: LiveKeyring
    metrics: GatewayMetrics
    topic_of: Callable[[str], str]
    media_type_of: MediaTypeOf
    fetch_wait_ms: int = 5


@dataclass(frozen=True, slots=True)
class PushParts:
    """What every recipient's push shares while it runs."""

    needs: PushNeeds
    acknowledgements: AcknowledgementVerifier
    recorder: RecordsTaken
    positions: PositionBook
    producer: AIOKafkaProducer


@dataclass(slots=True)
class Lane:
    """One partition of a recipient's topic: the deliveries read and not yet handed over,
    in order, and the offset before which all were."""

    tp: TopicPartition
    done: int
    fetched: int
    backlog: deque[StoredMessage] = field(default_factory=deque)
    more: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class RecipientPush:
    """Pushes one recipient's deliveries until stopped."""

    def __init__(self, agency: str, recipient: PushRecipient, broker: Broker,
                 endpoint: Endpoint, parts: PushParts, kept: Mapping[tuple[str, str, int], int]
                 ) -> None:
        self.agency = agency
        self.recipient = recipient
        self.topic = parts.needs.topic_of(agency)
        self._broker = broker
        self._endpoint = endpoint
        self._parts = parts
        self._metrics = parts.needs.metrics
        self._deliveries = DeliveryVerifier(parts.needs.keyring, agency,
                                            schemas=parts.needs.schemas)
        self._kept = kept
        self._slots = asyncio.Semaphore(recipient.max_in_flight)
        self._lanes: dict[TopicPartition, Lane] = {}
        self._stopping = asyncio.Event()
        self._next_discovery = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        consumer = new_reader(self._broker, fetch_max_wait_ms=self._parts.needs.fetch_wait_ms)
        try:
            await consumer.start()
            async with self._endpoint:  # its connections stay open until the lanes end
                try:
                    await self._read(consumer, stop)
                finally:
                    self._stopping.set()
                    await self._end_lanes()
        finally:
            await stop_consumer(consumer)

    def positions(self) -> dict[tuple[str, str, int], int]:
        """Where each lane got to: every delivery before it acknowledged or dead-lettered."""
        return {(self.agency, tp.topic, tp.partition): lane.done
                for tp, lane in self._lanes.items()}

    async def _read(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if time.monotonic() >= self._next_discovery:
                await self._discover(consumer)
            if not self._lanes:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), LOOK_FOR_TOPIC_S)
                continue
            try:
                fetched = await consumer.getmany(timeout_ms=200, max_records=LANE_BACKLOG)
            except KafkaError as exc:
                log.warning("push.read_failed", recipient=self.agency, error=str(exc))
                await asyncio.sleep(1.0)
                continue
            for tp, records in fetched.items():
                self._queue(consumer, self._lanes[tp], records)
            self._resume_drained(consumer)
            self._metrics.set_push_pending(self.agency, self._pending(consumer),
                                           self._oldest_pending_s())

    async def _discover(self, consumer: AIOKafkaConsumer) -> None:
        self._next_discovery = time.monotonic() + LOOK_FOR_TOPIC_S
        try:
            found = await partitions_of(self._broker, [self.topic])
        except BrokerUnavailable as exc:
            log.warning("push.discovery_failed", recipient=self.agency, error=exc.message)
            return
        new = [tp for tp in found if tp not in self._lanes]
        if found:
            self._next_discovery = time.monotonic() + LOOK_FOR_PARTITIONS_S
        if not new:
            return
        for tp in new:
            start = self._kept.get((self.agency, tp.topic, tp.partition), 0)
            lane = self._lanes[tp] = Lane(tp, start, start)
            lane.task = asyncio.create_task(self._drive(lane), name=f"push-{self.agency}")
        consumer.assign(list(self._lanes))
        for tp, lane in self._lanes.items():
            consumer.seek(tp, lane.fetched)
        log.info("push.assigned", recipient=self.agency, partitions=len(self._lanes))

    def _queue(self, consumer: AIOKafkaConsumer, lane: Lane, records: list[Any]) -> None:
        for record in records:
            if record.offset >= lane.fetched:
                lane.backlog.append(stored_message(record))
                lane.fetched = record.offset + 1
        lane.more.set()
        if len(lane.backlog) >= LANE_BACKLOG:
            consumer.pause(lane.tp)

    def _resume_drained(self, consumer: AIOKafkaConsumer) -> None:
        paused = consumer.paused()
        for tp, lane in self._lanes.items():
            if tp in paused and len(lane.backlog) < LANE_BACKLOG // 2:
                consumer.resume(tp)

    def _pending(self, consumer: AIOKafkaConsumer) -> int:
        return sum(max((consumer.highwater(tp) or lane.fetched) - lane.done, 0)
                   for tp, lane in self._lanes.items())

    def _oldest_pending_s(self) -> float:
        """How long ago the oldest delivery read and not yet handed over was put on the
        topic: each lane's first is its oldest."""
        heads = [lane.backlog[0].timestamp_ms for lane in self._lanes.values() if lane.backlog]
        return max(wall_clock_ms() - min(heads), 0) / 1000 if heads else 0.0

    async def _end_lanes(self) -> None:
        """Lets each lane finish the attempt under way (bounded by `timeout_s`), so that an
        answer the endpoint gives is kept, then ends them."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for lane in self._lanes.values():
            lane.more.set()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.recipient.timeout_s + 5.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _drive(self, lane: Lane) -> None:
        while await self._next(lane):
            handed = await self._hand_over(list(itertools.islice(lane.backlog,
                                                                  self.recipient.batch)))
            if handed is None:
                return
            kept, count = handed
            last = lane.backlog[count - 1]
            # What the outcome writes is written once, and the position moves past the
            # deliveries only then: a failure to write is tried again, never the POST.
            if not (await self._until_done(kept, last, "push.keep_failed")
                    and await self._until_done(partial(self._parts.positions.save, self.agency,
                                                       lane.tp, last.offset + 1),
                                               last, "push.position_failed")):
                return
            for _ in range(count):
                lane.backlog.popleft()
            lane.done = last.offset + 1

    async def _next(self, lane: Lane) -> bool:
        """Waits for a delivery in the lane; False when the push stops."""
        while not lane.backlog and not self._stopping.is_set():
            lane.more.clear()
            await lane.more.wait()
        return not self._stopping.is_set()

    async def _until_done(self, step: Kept, message: StoredMessage,
                          failed: str) -> bool:
        """Runs `step` until it succeeds (a pause between tries); False when the push stops
        first."""
        while True:
            try:
                await step()
                return True
            except Exception as exc:  # the broker, mostly: tried again
                log.error(failed, recipient=self.agency, partition=message.partition,
                          offset=message.offset, error=type(exc).__name__)
            if not await self._pause(1.0):
                return False

    async def _hand_over(self, messages: list[StoredMessage]) -> tuple[Kept, int] | None:
        """Sends the first of `messages` (the lane's next, in order), as many as the batch
        holds, until acknowledged, or gives them up past the horizon; what is then to be
        written (their TAKEN records, or their dead letters) and how many it covers; None
        when stopped first. A delivery the gateway did not seal for this recipient ends the
        batch before it, and goes to the dead letters alone."""
        deliveries: list[Delivery] = []
        for message in messages:
            try:
                deliveries.append(self._deliveries.check(message))
            except DeliveryRefused as exc:  # not what the gateway sealed for this recipient
                if not deliveries:
                    return partial(self._dead_letter, message, None, exc), 1
                break
        sent = messages[:len(deliveries)]
        request = self._request(sent, deliveries)
        first = time.monotonic()
        attempt = 0
        while True:
            try:
                async with self._slots:
                    answer = await self._endpoint.post(request)
                ack, key_id = self._acknowledgement(answer, deliveries)
            except PushFailed as exc:
                self._metrics.push_failed(self.agency, exc.code)
                left = first + self.recipient.retry_horizon_s - time.monotonic()
                if left <= 0:
                    return self._dead_letters(sent, deliveries, exc), len(sent)
                log.info("push.retry", recipient=self.agency,
                         delivery_id=deliveries[0].delivery_id, deliveries=len(deliveries),
                         code=exc.code, attempt=attempt + 1)
                delay = backoff_delay(attempt, self.recipient.backoff_initial_s,
                                      self.recipient.backoff_max_s)
                attempt += 1
                if not await self._pause(min(delay, left)):
                    return None
                continue
            return partial(self._taken, ack, key_id, deliveries), len(sent)

    def _request(self, messages: list[StoredMessage], deliveries: list[Delivery]
                 ) -> PushRequest:
        """The POST: of one delivery as its own request, or (`batch` above 1) of the
        deliveries as one multipart/mixed request."""
        requests = [push_request(message, delivery, self.recipient.format,
                                 self._media_type(delivery))
                    for message, delivery in zip(messages, deliveries, strict=True)]
        return requests[0] if self.recipient.batch == 1 else push_batch(requests)

    async def _taken(self, ack: Acknowledgement, key_id: str,
                     deliveries: list[Delivery]) -> None:
        recorded = await self._parts.recorder.record(ack, key_id, deliveries)
        if recorded.repeated:  # counted as the door counts them
            self._metrics.acknowledged(self.agency, "repeated")
        else:
            self._metrics.acknowledged(self.agency, "taken", taken=len(deliveries))

    def _dead_letters(self, messages: list[StoredMessage], deliveries: list[Delivery],
                      why: GatewayError) -> Kept:
        """Writes the dead letter of each delivery; tried again, it goes on from the first
        not yet written."""
        left = list(zip(messages, deliveries, strict=True))

        async def write() -> None:
            while left:
                await self._dead_letter(*left[0], why)
                left.pop(0)

        return write

    async def _pause(self, seconds: float) -> bool:
        """Waits `seconds`; False when the push stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    def _media_type(self, delivery: Delivery) -> str:
        if self.recipient.format == JSON_FORM:
            return JSON_MEDIA_TYPE
        if self.recipient.format == AVRO_FORM:
            return ""
        return self._parts.needs.media_type_of(delivery.payload_encoding)

    def _acknowledgement(self, answer: bytes, deliveries: list[Delivery]
                         ) -> tuple[Acknowledgement, str]:
        """The recipient's acknowledgement in `answer`, verified, naming the deliveries
        sent, in their order, each with its payload's SM3, and the id of the key that signed
        it; PushFailed with the acknowledgement's refusal code otherwise."""
        try:
            ack = Acknowledgement.from_json(answer)
            entry = self._parts.acknowledgements.verify(ack, expected_agency=self.agency)
            check_taken(ack, deliveries)
            check_fresh(ack, utc_now())  # else the recorder refuses it: sent again
        except GatewayError as exc:
            raise PushFailed(f"the acknowledgement: {exc.message}", code=exc.code) from None
        return ack, entry.key_id

    async def _dead_letter(self, message: StoredMessage, delivery: Delivery | None,
                           why: GatewayError) -> None:
        """The delivery on the dead-letter topic, once the broker has it: PUSH_HORIZON_PASSED
        naming the last attempt's failure, or why it was not pushed at all (not sealed by
        the gateway for this recipient: its DeliveryRefused code)."""
        if delivery is not None:
            code = PUSH_HORIZON_PASSED
            text = (f"not acknowledged within retry_horizon_s "
                    f"({self.recipient.retry_horizon_s} s); last attempt: {why.code}: "
                    f"{why.message}")
        else:
            code, text = why.code, f"not pushed: {why.message}"
        fields: dict[str, Any] = delivery.metadata() if delivery is not None else {}
        letter = {
            "submission_id": str(fields.get("delivery_id", "")),
            "event_id": str(fields.get("event_id", "")),
            "sender": str(fields.get("sender", "")),
            "format_id": DEAD_DELIVERY_FORMAT,
            "received_at": utc_now(),
            "error_code": code,
            "error_message": text,
            "error_line": None,
            "original": message.value,
            "signature": message.header(H_SEAL) or b"",
            "document_type": fields.get("document_type"),
            "business_key": fields.get("business_key"),
            "document_version": fields.get("document_version"),
        }
        out = Outbound(self._parts.needs.topics.dlq, message.key or b"",
                       self._parts.needs.schemas.encode(DEAD_LETTER_SCHEMA, letter),
                       ((H_EVENT_ID, str(fields.get("event_id", "")).encode()),
                        (H_SENDER, str(fields.get("sender", "")).encode()),
                        (H_PUSH_RECIPIENT, self.agency.encode())))
        await acked(await self._parts.producer.send(out.topic, out.value, key=out.key,
                                                    headers=list(out.headers)))
        self._metrics.push_dead_lettered(self.agency)
        log.warning("push.dead_lettered", recipient=self.agency, code=code,
                    last=why.code, topic=message.topic, partition=message.partition,
                    offset=message.offset)


class Pushes:
    """Every push recipient's task, run until stopped. Made when the gateway is: the TLS
    files load then, or the gateway does not start (ConfigError)."""

    def __init__(self, settings: PushSettings, broker: Broker, needs: PushNeeds) -> None:
        self._settings = settings
        self._broker = broker
        self._needs = needs
        self._endpoints = {agency: Endpoint(settings, recipient)
                           for agency, recipient in settings.recipients.items()}

    async def run(self, stop: asyncio.Event, recorder: RecordsTaken) -> None:
        """Pushes until `stop`, recording each acknowledgement with `recorder` (the gateway's
        one recorder of TAKEN records)."""
        if not self._endpoints:
            return
        needs = self._needs
        await ensure_topics(self._broker, {needs.topics.push_positions: 1},
                            configs={needs.topics.push_positions: POSITIONS_COMPACTED})
        producer = new_producer(self._broker)
        try:
            await producer.start()
            positions = PositionBook(self._broker, needs.topics)
            kept = await positions.start(producer)
            parts = PushParts(needs, AcknowledgementVerifier(needs.keyring), recorder,
                              positions, producer)
            await asyncio.gather(*(self._keep_pushing(agency, parts, kept, stop)
                                   for agency in self._endpoints))
        finally:
            await producer.stop()

    async def _keep_pushing(self, agency: str, parts: PushParts,
                            kept: Mapping[tuple[str, str, int], int],
                            stop: asyncio.Event) -> None:
        """One recipient's push; started again from where it got when it fails, so that its
        failure touches no other recipient."""
        recipient = self._settings.recipients[agency]
        while not stop.is_set():
            push = RecipientPush(agency, recipient, self._broker, self._endpoints[agency],
                                 parts, kept)
            try:
                await push.run(stop)
            except Exception as exc:
                log.error("push.failed", recipient=agency, error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESTART_AFTER_S)
                kept = {**kept, **push.positions()}
