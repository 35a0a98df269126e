"""The pipeline: small stages, each taking and returning one context (structlog's shape).

Stages are pure CPU work (signature check, XML, Avro, routing); publishing is done by the
service after the last stage. A stage refuses a document by raising a CodedError (its code
says why); any other exception is a bug.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from adapters import Adapter, AdapterRegistry, ParseResult
from contracts import Decision, Grant, RouteDenied
from crypto import KeyEntry, Keyring, sm3_hex
from gateway.decide.router import PayloadBuilder, Router
from gateway.deliveries.proof import DELIVERY_SCHEMA
from gateway.errors import GatewayError
from gateway.home.config import AgencyLimits
from gateway.home.live_keyring import LiveKeyring
from gateway.ids import derived_uuid7, uuid7_time_ms
from gateway.kafka.wire import (
    H_DOCUMENT_TYPE,
    H_EVENT_ID,
    H_FINGERPRINT,
    H_SENDER,
    Headers,
    Outbound,
    Topics,
)
from message_formats import AvroSchemas


@dataclass(frozen=True, slots=True)
class Submission:
    """A document as it arrived: the bytes, who claims to send them, and their signature."""

    submission_id: str
    sender: str
    format_id: str
    document: bytes
    signature: bytes
    received_at: datetime
    partition: int = 0
    # Where the submission was read from the ingress topic (partition is `partition`), so
    # that its RECEIVED trail record can name the original bytes; None when it was handed
    # to the gateway directly.
    ingress_offset: int | None = None
    # The ingress record's timestamp: with its place, what the event id is derived from.
    ingress_timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a document's parse refused it (as found by the parse worker, gateway.decide.ahead): a
    code, and a message naming the rule."""

    code: str
    message: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Context:
    submission: Submission
    event_id: str
    digest: str
    # The keyring the document is judged under, read once (a reload never splits one
    # document's authentication); None: the authenticate stage reads the one in force.
    keyring: Keyring | None = None
    signer: KeyEntry | None = None
    adapter: Adapter | None = None
    parsed: ParseResult | None = None
    refused: Refusal | None = None  # the parse's refusal, when it was parsed elsewhere
    record: dict[str, Any] | None = None  # the canonical record with its header
    event: Outbound | None = None
    decision: Decision | None = None
    deliveries: tuple[tuple[Grant, Outbound], ...] = ()

    @property
    def document_type(self) -> str | None:
        return self.adapter.document_type if self.adapter else None


Stage = Callable[[Context], Context]


@dataclass(frozen=True, slots=True)
class Reached:
    """Where the stages got: the context after the last stage that completed and, when a
    stage raised, what it raised and its name. What the earlier stages learnt (the document
    type, the business key and version) is kept for a document a later stage refuses."""

    context: Context
    failed: Exception | None = None
    stage: str | None = None


class Pipeline:
    """Named stages run in order; `observe(name, seconds)` is told how long each took."""

    __slots__ = ("_observe", "stages")

    def __init__(self, stages: Sequence[tuple[str, Stage]],
                 observe: Callable[[str, float], None] | None = None) -> None:
        self.stages = tuple(stages)
        self._observe = observe or _unobserved

    def run(self, context: Context) -> Reached:
        observe, clock = self._observe, time.perf_counter
        for name, stage in self.stages:
            started = clock()
            try:
                context = stage(context)
            except Exception as exc:  # the service makes it the document's refusal
                return Reached(context, exc, name)
            observe(name, clock() - started)
        return Reached(context)


def _unobserved(stage: str, seconds: float) -> None:
    return None


def check_size(limits_for: Callable[[str], AgencyLimits]) -> Stage:
    """The sender's own size limit (the HTTP door checks it too; the ingress topic does not)."""

    def stage(ctx: Context) -> Context:
        size = len(ctx.submission.document)
        max_bytes = limits_for(ctx.submission.sender).max_document_bytes
        if size > max_bytes:
            raise GatewayError(f"document is {size} bytes; the limit is {max_bytes}",
                               code="DOCUMENT_TOO_LARGE")
        if size == 0:
            raise GatewayError("document is empty", code="DOCUMENT_EMPTY")
        return ctx

    return stage


def authenticate(keyrings: LiveKeyring) -> Stage:
    """The sender's detached SM2 signature over the exact bytes received, under the
    context's keyring (else the one in force now). A signature verified ahead, in the worker
    (gateway/decide/ahead.py), with a key chosen from an earlier keyring counts only if that key is
    still usable under this one; if it is not (revoked since), the signature is verified
    here and refused with the usual AUTH code."""

    def stage(ctx: Context) -> Context:
        keyring = ctx.keyring if ctx.keyring is not None else keyrings.current
        s = ctx.submission
        if ctx.signer is not None:
            confirmed = keyring.usable_entry(ctx.signer.key_id, s.sender, s.received_at)
            if confirmed is not None:
                return replace(ctx, keyring=keyring, signer=confirmed)
        signer = keyring.verify(s.sender, s.signature, s.document, at=s.received_at)
        return replace(ctx, keyring=keyring, signer=signer)

    return stage


def choose_adapter(adapters: AdapterRegistry) -> Stage:
    """The adapter of the document's format: from here on its document type is known, and
    kept if a later stage refuses the document."""

    def stage(ctx: Context) -> Context:
        return replace(ctx, adapter=adapters.get(ctx.submission.format_id))

    return stage


def adapt(ctx: Context) -> Context:
    """Parse and validate (well-formed, XSD, business rules) into the canonical record. The
    service has every document parsed in its supervised worker (gateway/decide/ahead.py) and hands
    this stage the result; it parses only where there is no worker (the stages alone)."""
    assert ctx.adapter is not None
    if ctx.refused is not None:
        raise GatewayError(ctx.refused.message, code=ctx.refused.code, line=ctx.refused.line)
    if ctx.parsed is not None:
        return ctx
    return replace(ctx, parsed=ctx.adapter.parse(ctx.submission.document))


def build_event(schemas: AvroSchemas, topics: Topics) -> Stage:
    def stage(ctx: Context) -> Context:
        assert ctx.adapter is not None and ctx.parsed is not None
        record = {"header": event_header(ctx), **ctx.parsed.record}
        schema_name = ctx.adapter.schema_name
        event = Outbound(
            topic=topics.canonical(ctx.adapter.document_type),
            key=ctx.parsed.business_key.encode(),
            value=schemas.encode(schema_name, record),
            headers=(
                (H_EVENT_ID, ctx.event_id.encode()),
                (H_DOCUMENT_TYPE, ctx.adapter.document_type.encode()),
                (H_SENDER, ctx.submission.sender.encode()),
                (H_FINGERPRINT, schemas.fingerprint(schema_name).hex().encode()),
            ),
        )
        return replace(ctx, record=record, event=event)

    return stage


def event_header(ctx: Context) -> dict[str, Any]:
    assert ctx.adapter is not None and ctx.parsed is not None
    return {
        "event_id": ctx.event_id,
        "document_type": ctx.adapter.document_type,
        "format_id": ctx.adapter.format_id,
        "schema_version": 1,
        "sender": ctx.submission.sender,
        "business_key": ctx.parsed.business_key,
        "document_version": ctx.parsed.document_version,
        "received_at": ctx.submission.received_at,
        "digest_sm3": ctx.digest,
        "signature_key_id": ctx.signer.key_id if ctx.signer else None,
    }


def route(router: Router, internal: Callable[[Context], str | None] | None = None) -> Stage:
    """Default deny: a document no contract shares with anyone is refused, unless `internal`
    says why it is kept to its sender (a warning's review steps): then it is accepted for
    the trail alone. The index is read once per document, so a reload never splits one
    document's decision."""

    def stage(ctx: Context) -> Context:
        assert ctx.adapter is not None and ctx.parsed is not None
        decision = router.index.decide(ctx.submission.sender, ctx.adapter.document_type,
                                       ctx.parsed.record, ctx.submission.received_at)
        if not decision.grants:
            kept = internal(ctx) if internal is not None else None
            if kept is None:
                raise RouteDenied(decision.explanation, code=decision.code)
            decision = replace(decision, no_route=kept, denials=())
        return replace(ctx, decision=decision)

    return stage


def build_deliveries(payloads: PayloadBuilder, schemas: AvroSchemas) -> Stage:
    def stage(ctx: Context) -> Context:
        assert ctx.event is not None and ctx.decision is not None and ctx.record is not None
        deliveries = tuple(
            (grant, delivery_message(grant, ctx.record, ctx.event.value, payloads, schemas,
                                     delivery_id(ctx.event_id, grant.recipient),
                                     ctx.submission.received_at))
            for grant in ctx.decision.grants
        )
        return replace(ctx, deliveries=deliveries)

    return stage


def delivery_message(
    grant: Grant,
    event_record: Mapping[str, Any],
    event_value: bytes,
    payloads: PayloadBuilder,
    schemas: AvroSchemas,
    delivery_id: str,
    at: datetime,
    *,
    extra_headers: Headers = (),
) -> Outbound:
    """The Delivery envelope for one grant of a canonical event (its record, header included,
    and its encoded bytes). `at` chooses the recipient key an SM4 envelope is sealed to."""
    header = event_record["header"]
    payload = payloads.build(grant, event_record, event_value, at)
    document_type = header["document_type"]
    value = schemas.encode(
        DELIVERY_SCHEMA,
        {
            "delivery_id": delivery_id,
            "event_id": header["event_id"],
            "recipient": grant.recipient,
            "sender": header["sender"],
            "contract_id": grant.contract.id,
            "contract_version": grant.contract.version,
            "document_type": document_type,
            "business_key": header["business_key"],
            "document_version": header["document_version"],
            "payload_schema": payload.schema,
            "payload_encoding": payload.encoding,
            "payload": payload.data,
        },
    )
    return Outbound(
        topic=payloads.topic_of(grant.recipient),
        key=header["business_key"].encode(),
        value=value,
        headers=(
            (H_EVENT_ID, header["event_id"].encode()),
            (H_DOCUMENT_TYPE, document_type.encode()),
            (H_SENDER, header["sender"].encode()),
            (H_FINGERPRINT, schemas.fingerprint(DELIVERY_SCHEMA).hex().encode()),
            *extra_headers,
        ),
    )


def delivery_id(event_id: str, recipient: str) -> str:
    """Fixed by the event and the recipient, as the event id is fixed by the ingress record:
    a delivery made again after a crash carries the id it had."""
    return derived_uuid7(uuid7_time_ms(event_id), f"{event_id}/{recipient}".encode())


def new_context(submission: Submission, event_id: str, keyring: Keyring | None = None
                ) -> Context:
    return Context(submission=submission, event_id=event_id, digest=sm3_hex(submission.document),
                   keyring=keyring)
