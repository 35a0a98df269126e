"""The steps each early warning has taken, and the pipeline stages that hold new steps to them.

The book is read from the warning topic (every accepted step is a canonical event there) when
the gateway starts, and again up to its end before each warning is decided, so that a step
another gateway process accepted a moment ago counts (steps of one warning are submitted one
after another, each after the previous one's receipt). Within this process a step counts from
the moment it is decided: later documents of the same ingress partition are decided after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gateway.decide.pipeline import Context
from gateway.errors import BrokerUnavailable
from gateway.kafka.names import StoredMessage, Topics
from gateway.kafka.wire import Broker, ensure_topics, new_reader, read_until_end, stop_consumer
from gateway.warnings.lifecycle import (
    DOCUMENT_TYPE,
    Authorities,
    RecordedStep,
    check,
    describe_step,
    history_for,
    is_internal,
)
from message_formats import AvroSchemas

log = structlog.get_logger(__name__)

class WarningBook:
    def __init__(self, bootstrap_servers: Broker, schemas: AvroSchemas, authorities: Authorities,
                 *, partitions: int, topics: Topics, fetch_wait_ms: int = 5) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topics.canonical(DOCUMENT_TYPE)
        self._schemas = schemas
        self._authorities = authorities
        self._partitions = partitions
        self._fetch_wait_ms = fetch_wait_ms
        self._steps: dict[str, list[RecordedStep]] = {}  # warning id -> steps, oldest first
        self._events: set[str] = set()  # event ids of the steps in the book
        self._read_to: dict[int, int] = {}
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        await ensure_topics(self._bootstrap_servers, {self._topic: self._partitions})
        self._consumer = new_reader(self._bootstrap_servers,
                                    fetch_max_wait_ms=self._fetch_wait_ms)
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self.stop()
            raise BrokerUnavailable(f"cannot read the warnings: {exc}") from exc
        await self.catch_up()
        log.info("warnings.loaded", warnings=len(self._steps))

    async def stop(self) -> None:
        if self._consumer is not None:
            await stop_consumer(self._consumer)
            self._consumer = None

    async def catch_up(self) -> None:
        """Reads the warning topic from where the book has got to up to its end."""
        if self._consumer is None:
            raise BrokerUnavailable("the warning book is not started")
        starts = {TopicPartition(self._topic, p): self._read_to.get(p, 0)
                  for p in range(self._partitions)}
        try:
            messages = await read_until_end(self._consumer, starts)
        except KafkaError as exc:
            raise BrokerUnavailable(f"cannot read the warnings: {exc}") from exc
        finally:
            # Kept assigned and unpaused until the next catch-up, the consumer would keep a
            # fetch at the broker all the time for records nobody reads.
            self._consumer.pause(*starts)
        for message in messages:
            self._file(message)

    @property
    def steps(self) -> Mapping[str, Sequence[RecordedStep]]:
        """Every warning's accepted steps, oldest first, as this process holds them (read at
        start and before each warning it decides, and those it decided): the console's."""
        return MappingProxyType(self._steps)

    def _file(self, message: StoredMessage) -> None:
        self._read_to[message.partition] = max(self._read_to.get(message.partition, 0),
                                               message.offset + 1)
        _, record = self._schemas.decode(message.value)
        header = record["header"]
        self._add(RecordedStep(header["event_id"], header["sender"], record))

    def _add(self, recorded: RecordedStep) -> None:
        if recorded.event_id in self._events:  # decided here, or read before
            return
        self._events.add(recorded.event_id)
        self._steps.setdefault(str(recorded.record["warning_id"]), []).append(recorded)

    def _before(self, warning_id: str, event_id: str) -> list[RecordedStep]:
        """The warning's steps before this event: all of them, or those before it when it
        is decided again (after a broker failure or a restart, with the same event id)."""
        steps = self._steps.get(warning_id, [])
        for index, recorded in enumerate(steps):
            if recorded.event_id == event_id:
                return steps[:index]
        return steps

    # ----------------------------------------------------------------- pipeline stages

    def check_stage(self, ctx: Context) -> Context:
        """After the adapter: the step must follow the warning's steps; a filing gets the
        recorded history."""
        if ctx.document_type != DOCUMENT_TYPE or ctx.parsed is None:
            return ctx
        record = ctx.parsed.record
        steps = self._before(str(record["warning_id"]), ctx.event_id)
        check(steps, ctx.submission.sender, record, self._authorities)
        record = {**record, "history": history_for(steps, record)}
        return replace(ctx, parsed=replace(ctx.parsed, record=record))

    def kept_internal(self, ctx: Context) -> str | None:
        """Why a step shared with no one is still accepted: it stays inside the authority."""
        if ctx.document_type != DOCUMENT_TYPE or ctx.parsed is None:
            return None
        if not is_internal(ctx.parsed.record["step"]):
            return None
        return "an internal step of the issuing authority: recorded, shared with no one"

    def record_stage(self, ctx: Context) -> Context:
        """Last: the step counts for the documents decided after it; the trail's line for
        the decision names the step, the person and the time."""
        if ctx.document_type != DOCUMENT_TYPE or ctx.record is None or ctx.decision is None:
            return ctx
        record: Mapping[str, Any] = ctx.record
        self._add(RecordedStep(ctx.event_id, ctx.submission.sender, record))
        return replace(ctx, decision=replace(ctx.decision, note=describe_step(record)))
