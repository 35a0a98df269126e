"""What the gateway publishes for one decided document, as data: a `Plan`.

A plan lists the messages to hand to the producer, in order (the canonical event, the
deliveries, the status events; or the dead letter and its status events), the trail entries
that record them, and the answer (a receipt to sign, or one given before). It is built by the
pure functions below from a decided context, without I/O: `gateway.publish.publisher`
carries it out. An entry that names a message gets the message's place on the broker and
its SM3 once the broker has it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from adapters import DocumentPart
from contracts import TRANSPORT_EVENT, Contract, ContractIndex
from gateway.decide.pipeline import (
    Context,
    Rejection,
    Submission,
    derived_from,
    message_contexts,
    shared,
)
from gateway.kafka.names import (
    H_DIGEST,
    H_DXP_COP_MSG_ID,
    H_DXP_TRANS_INFO,
    H_EVENT_ID,
    H_IDENTITY,
    H_SENDER,
    Headers,
    Outbound,
    Topics,
)
from gateway.kafka.wire import Published
from gateway.receipts.book import trans_info_header
from gateway.receipts.receipt import (
    ACCEPTED,
    DENIED,
    REJECTED,
    Receipt,
    ReceiptPart,
    SignedReceipt,
)
from gateway.trail.writer import reference
from message_formats import AvroSchemas

DEAD_LETTER_SCHEMA = "px.gateway.DeadLetter"
# A document that was never authenticated (unknown sender, bad signature, too large) is kept
# in its dead letter as its first KEPT_PREFIX_BYTES only, marked by H_ORIGINAL_SIZE (its
# whole size) and H_DIGEST (the SM3 of the whole): nobody can make the gateway store
# megabytes of their choosing under another agency's name. Authenticated documents are kept
# whole.
KEPT_PREFIX_BYTES = 4096
H_ORIGINAL_SIZE = "px-original-size"
STATUS_SCHEMA = "px.gateway.StatusEvent"
# The canonical record whose transport events go to "transport" subscribers, one status event
# each (an IFTSTA's, adapters/iftsta.py; docs/contracts.md, "Subscriptions").
TRANSPORT_STATUS_SCHEMA = "px.canonical.TransportStatusReport"
KEYRING_MARK = "; keyring "


@dataclass(frozen=True, slots=True)
class Message:
    """A message to hand to the producer; `sealed`: a delivery, sent with its proof of
    origin (gateway.publish.sealing) and after the deliveries handed over before it."""

    out: Outbound
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """A trail record of the document: its fields and, when it records a message of the
    plan, that message's place in `Plan.messages`."""

    fields: Mapping[str, Any]
    names: int | None = None


@dataclass(frozen=True, slots=True)
class Again:
    """An answer given before: a duplicate publishes it again naming the first submission;
    a submission read twice from the ingress topic is answered with it as it stands."""

    signed: SignedReceipt
    duplicate_of: str | None
    publish: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What one decided document gives, in the order it is given: `messages` handed to the
    producer, then once the broker has them all, `entries` on the trail, then once the trail
    holds them, the answer on the receipt topic: `receipt` (signed with the time it is
    signed at), or `again`. `receipt_headers`: what the receipt message carries besides the
    headers every receipt has (an envelope's identity and TransInfo)."""

    submission: Submission
    messages: tuple[Message, ...] = ()
    entries: tuple[Entry, ...] = ()
    receipt: Receipt | None = None
    again: Again | None = None
    receipt_headers: Headers = ()


def accepted_plan(ctx: Context, subscriptions: ContractIndex, schemas: AvroSchemas,
                  topics: Topics, now: datetime) -> Plan:
    """The event, one sealed delivery per grant, the status events "accepted" and one
    "delivered" per delivery; ACCEPTED, DELIVERED, DENIED and NOTIFIED entries; then the
    same of each document derived from it or, of an interchange, each other message
    (`Context.derived`) that a contract shares, the DENIED entry of one that none does, the
    dead letter and REJECTED entry of a message refused; the receipt, naming the recipients
    of all and, of an interchange of several, each message's outcome."""
    assert ctx.decision is not None
    messages: list[Message] = []
    entries: list[Entry] = []
    statuses = _accepted(ctx, messages, entries, subscriptions, schemas, topics, now)
    answer = receipt(ctx, ACCEPTED, now, recipients=ctx.decision.recipients)
    if ctx.derived:
        for child in ctx.derived:
            statuses += _accepted(child, messages, entries, subscriptions, schemas, topics, now)
        answer = replace(answer, recipients=all_recipients(ctx), parts=receipt_parts(ctx))
    return _with_statuses(ctx, messages, entries, statuses, answer)


def _accepted(ctx: Context, messages: list[Message], entries: list[Entry],
              subscriptions: ContractIndex, schemas: AvroSchemas, topics: Topics,
              now: datetime) -> list[_Status]:
    """One accepted document's messages and entries added to the plan's; its status events.
    A derived document or a message of an interchange of several that no contract shares
    has its DENIED entry alone; a message that its adapter refused, its refusal's."""
    if ctx.refused is not None:
        return _refused_part(ctx, messages, entries, subscriptions, schemas, topics, now)
    assert ctx.decision is not None
    decision, base = ctx.decision, trail_fields(ctx)
    if ctx.event is None:  # derived, or one message of several: shared with nobody
        assert not decision.grants
        entries.append(Entry({**base, "kind": "DENIED", "error_code": decision.code,
                              "reason": decision.explanation}))
        return []
    recipients = decision.recipients
    statuses = _status_events(ctx, "accepted", recipients, subscriptions, schemas, topics, now)
    for grant, _ in ctx.deliveries:
        statuses += _status_events(ctx, "delivered", recipients, subscriptions, schemas, topics,
                                   now, recipient=grant.recipient)
    statuses += _transport_events(ctx, recipients, subscriptions, schemas, topics, now)
    first = len(messages)
    messages += (Message(ctx.event), *(Message(out, sealed=True) for _, out in ctx.deliveries))
    entries.append(Entry({**base, "kind": "ACCEPTED", "reason": decision.explanation},
                         names=first))
    for index, (grant, out) in enumerate(ctx.deliveries, start=first + 1):
        contract = grant.contract
        entries.append(Entry({
            **base, "kind": "DELIVERED", "recipient": grant.recipient,
            "contract_id": contract.id, "contract_version": contract.version,
            "reason": f"{contract.scope} sharing under {contract.label}: {contract.purpose}"
                      + as_envelope(out),
        }, names=index))
    entries += (Entry({
        **base, "kind": "DENIED", "recipient": denial.recipient, "error_code": denial.code,
        "contract_id": denial.contract.id, "contract_version": denial.contract.version,
        "reason": denial.reason}) for denial in decision.denials)
    return statuses


def _refused_part(ctx: Context, messages: list[Message], entries: list[Entry],
                  subscriptions: ContractIndex, schemas: AvroSchemas, topics: Topics,
                  now: datetime) -> list[_Status]:
    """A message of an interchange of several that its adapter refused: its dead letter
    (the interchange's first bytes: the whole is on the ingress topic, which the RECEIVED
    record names), its REJECTED entry and its "rejected" status events."""
    refused, derivation = ctx.refused, ctx.derivation
    assert refused is not None and derivation is not None
    why = Rejection(refused.code, refused.message, refused.line, "REJECTED")
    entries.append(Entry({**trail_fields(ctx), "kind": "REJECTED", "error_code": why.code,
                          "reason": f"{derivation.note}: {why.message}"}, names=len(messages)))
    messages.append(Message(dead_letter(ctx, why, schemas, topics, whole=False)))
    return _status_events(ctx, "rejected", (), subscriptions, schemas, topics, now,
                          error_code=why.code)


def all_recipients(ctx: Context) -> tuple[str, ...]:
    """The recipients of a document and of the documents derived from it, each once, in the
    order they are delivered to."""
    return tuple(dict.fromkeys(
        grant.recipient for decided in (ctx, *ctx.derived) for grant, _ in decided.deliveries))


def receipt_parts(ctx: Context) -> tuple[ReceiptPart, ...] | None:
    """Of an accepted interchange of several messages, each message's outcome as its trail
    records and the CONTRL tell it; None for a submission of one document."""
    decided = message_contexts(ctx)
    return tuple(receipt_part(part, message) for part, message in decided) or None


def receipt_part(part: DocumentPart, ctx: Context) -> ReceiptPart:
    """One message's outcome: refused by its rules (rejected, with where), shared by no
    contract (denied, with the decision's code), or accepted with its recipients."""
    facts = ReceiptPart(part.number, part.reference,
                        part.identifier[0] if part.identifier else "", ACCEPTED,
                        ctx.event_id, ctx.business_key)
    refused = ctx.refused
    if refused is not None:
        segment = refused.edifact.segment_number if refused.edifact is not None else 0
        return replace(facts, status=REJECTED, error_code=refused.code,
                       error_message=refused.message, error_line=refused.line,
                       error_segment=segment or None)
    decision = ctx.decision
    assert decision is not None
    if not shared(decision):
        return replace(facts, status=DENIED, error_code=decision.code,
                       error_message=decision.explanation)
    return replace(facts, recipients=tuple(dict.fromkeys(
        grant.recipient for grant, _ in ctx.deliveries)))


def rejected_plan(ctx: Context, why: Rejection, subscriptions: ContractIndex,
                  schemas: AvroSchemas, topics: Topics, now: datetime) -> Plan:
    """The dead letter (with the original bytes) and the status events "rejected"; the
    REJECTED (or DENIED) and NOTIFIED entries; the error receipt."""
    statuses = _status_events(ctx, "rejected", (), subscriptions, schemas, topics, now,
                              error_code=why.code)
    entries = [Entry({**trail_fields(ctx), "kind": why.kind, "error_code": why.code,
                      "reason": why.message}, names=0)]
    return _with_statuses(ctx, [Message(dead_letter(ctx, why, schemas, topics))], entries, statuses,
                          receipt(ctx, REJECTED, now, error=why))


def duplicate_plan(ctx: Context, first: SignedReceipt, first_id: str) -> Plan:
    """The same document as an accepted submission: the DUPLICATE entry and the first
    receipt again; nothing delivered again."""
    answered = first.receipt
    s = ctx.submission
    entry = Entry({
        **trail_fields(ctx), "event_id": answered.event_id,
        "document_type": answered.document_type, "business_key": answered.business_key,
        "kind": "DUPLICATE", "reason": f"the same document as submission {first_id}: "
        "answered with its receipt, not delivered again"})
    return Plan(s, entries=(entry,), again=Again(first, first_id, publish=True),
                receipt_headers=receipt_headers(ctx))


def repeat_plan(ctx: Context, answer: SignedReceipt, duplicate_of: str | None) -> Plan:
    """The same submission read again from the ingress topic: its answer stands, nothing is
    published again."""
    s = ctx.submission
    return Plan(s, again=Again(answer, duplicate_of, publish=False))


@dataclass(frozen=True, slots=True)
class _Status:
    message: Message
    entry_fields: dict[str, Any]


def _with_statuses(ctx: Context, messages: list[Message], entries: list[Entry],
                   statuses: list[_Status], answer: Receipt) -> Plan:
    first = len(messages)
    messages += (status.message for status in statuses)
    entries += (Entry(status.entry_fields, names=first + n) for n, status in enumerate(statuses))
    return Plan(ctx.submission, tuple(messages), tuple(entries), answer,
                receipt_headers=receipt_headers(ctx))


def _status_events(ctx: Context, status: str, recipients: Iterable[str],
                   subscriptions: ContractIndex, schemas: AvroSchemas, topics: Topics,
                   now: datetime, *,
                   recipient: str | None = None, error_code: str | None = None
                   ) -> list[_Status]:
    """Status events for the parties to the document (its sender and recipients) that
    subscribed to them, each with its NOTIFIED entry."""
    found = _subscribers(ctx, status, recipients, subscriptions)
    if not found:  # mostly so: no record to build
        return []
    return _notices(ctx, status, found, schemas, topics, now,
                    {"recipient": recipient, "error_code": error_code})


def _transport_events(ctx: Context, recipients: Iterable[str], subscriptions: ContractIndex,
                      schemas: AvroSchemas, topics: Topics, now: datetime) -> list[_Status]:
    """Of a transport status report: one "transport" status event per transport event it
    reports (loaded, departed, gate-in ...), to each party to the report subscribed to
    them, each with its NOTIFIED entry. None for any other document."""
    if ctx.parsed is None or ctx.schema_name != TRANSPORT_STATUS_SCHEMA:
        return []
    found = _subscribers(ctx, TRANSPORT_EVENT, recipients, subscriptions)
    statuses = []
    for event in ctx.parsed.record["events"] if found else ():
        statuses += _notices(
            ctx, TRANSPORT_EVENT, found, schemas, topics, now, {"transport_event": event},
            f" (STS {event['status_code']} of consignment {event['consignment_number']})")
    return statuses


def _subscribers(ctx: Context, status: str, recipients: Iterable[str],
                 subscriptions: ContractIndex) -> tuple[tuple[str, Contract], ...]:
    if ctx.document_type is None:
        return ()
    s = ctx.submission
    return subscriptions.subscribers(ctx.document_type, status, (s.sender, *recipients),
                                     s.received_at)


def _notices(ctx: Context, status: str, found: Iterable[tuple[str, Contract]],
             schemas: AvroSchemas, topics: Topics, now: datetime, facts: Mapping[str, Any],
             what: str = "") -> list[_Status]:
    """One status event to each subscriber `found`, with `facts` (recipient, error code or
    transport event), and its NOTIFIED entry; `what` adds to the entry's reason."""
    s = ctx.submission
    base = trail_fields(ctx)
    statuses = []
    for subscriber, contract in found:
        event = {
            "event_id": ctx.event_id, "submission_id": s.submission_id, "status": status,
            "time": now, "subscriber": subscriber, "sender": s.sender,
            "document_type": ctx.document_type, "business_key": ctx.business_key,
            "recipient": None, "error_code": None, "transport_event": None, **facts,
            "contract_id": contract.id, "contract_version": contract.version,
        }
        out = Outbound(topic=topics.status(subscriber), key=s.submission_id.encode(),
                       value=schemas.encode(STATUS_SCHEMA, event),
                       headers=((H_EVENT_ID, ctx.event_id.encode()),))
        statuses.append(_Status(Message(out), {
            **base, "kind": "NOTIFIED", "recipient": subscriber,
            "contract_id": contract.id, "contract_version": contract.version,
            "reason": f"status {status}{what} under subscription {contract.label}"}))
    return statuses


def as_envelope(out: Outbound) -> str:
    """What a DELIVERED reason adds for a delivery sent as a DxpMsg: its CopMsgId."""
    cop_msg_id = out.header(H_DXP_COP_MSG_ID)
    return "" if cop_msg_id is None else f"; as DxpMsg CopMsgId {cop_msg_id.decode()}"


def receipt_headers(ctx: Context) -> Headers:
    """An envelope's receipt names its identity (what later submissions are duplicates of it
    by, `Context.identity`) and its TransInfo (what the door's DxpRep echoes)."""
    if ctx.opened is None:
        return ()
    return ((H_IDENTITY, ctx.identity.encode()),
            (H_DXP_TRANS_INFO, trans_info_header(ctx.opened.trans_info)))


def received_entry(ctx: Context, topics: Topics) -> Entry:
    """RECEIVED, before anything is decided: who sent what, and where the original bytes
    and the sender's signature are kept (the ingress message)."""
    s = ctx.submission
    fields = {**trail_fields(ctx), "kind": "RECEIVED", "reason": received_reason(ctx)}
    if s.ingress_offset is not None:
        at = Published(topics.ingress, s.partition, s.ingress_offset)
        fields.update(reference(at, s.document, digest=ctx.digest))
    return Entry(fields)


def dead_letter(ctx: Context, why: Rejection, schemas: AvroSchemas, topics: Topics, *,
                whole: bool = True) -> Outbound:
    """`whole`: the bytes are kept whole when the document was authenticated; else (and
    for a message of an interchange of several) its first KEPT_PREFIX_BYTES."""
    s = ctx.submission
    headers: tuple[tuple[str, bytes], ...] = ((H_EVENT_ID, ctx.event_id.encode()),
                                              (H_SENDER, s.sender.encode()),
                                              *derived_from(ctx))
    original = s.document
    if (ctx.signer is None or not whole) and len(original) > KEPT_PREFIX_BYTES:
        original = original[:KEPT_PREFIX_BYTES]
        headers += ((H_ORIGINAL_SIZE, str(len(s.document)).encode()),
                    (H_DIGEST, ctx.digest.encode()))
    return Outbound(
        topic=topics.dlq,
        key=s.sender.encode(),
        value=schemas.encode(
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


def receipt(ctx: Context, status: str, now: datetime, *, recipients: Iterable[str] = (),
            error: Rejection | None = None) -> Receipt:
    s = ctx.submission
    return Receipt(
        submission_id=s.submission_id,
        event_id=ctx.event_id,
        sender=s.sender,
        format_id=s.format_id,
        digest_sm3=ctx.digest,
        status=status,
        time=now,
        recipients=tuple(recipients),
        document_type=ctx.document_type,
        business_key=ctx.business_key,
        error_code=error.code if error else None,
        error_message=error.message if error else None,
        error_line=error.line if error else None,
    )


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


def received_reason(ctx: Context) -> str:
    """A RECEIVED record's reason: the size and format, then the version of the keyring the
    document was judged under (the SM3 of its file's bytes), when it has one."""
    s = ctx.submission
    reason = f"{len(s.document)} bytes as {s.format_id or '?'}"
    version = ctx.keyring.version if ctx.keyring is not None else None
    return reason if version is None else f"{reason}{KEYRING_MARK}{version}"
