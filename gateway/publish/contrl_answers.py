"""The CONTRL a UN/EDIFACT sender gets back for its interchange (docs/edifact.md, "CONTRL",
and docs/service.md, "CONTRL answers").

When a submission is an EDIFACT interchange whose sender the gateway authenticated, the
decision on it is rendered as a CONTRL and added to the document's plan as one more sealed
delivery, to the sender's delivery topic, with its NOTIFIED trail entry, as a DXP sender
gets its MT9999 (gateway.publish.business_receipts):

- refused: a negative CONTRL (action 4), pointing at the defect when the refusal says where
  (an EDI_* refusal of the layer, or an adapter's rule refusal naming its message);
- accepted: a positive CONTRL (action 7) when UNB 0031 asked for one;
- of an interchange of several messages, accepted message by message: a CONTRL naming each
  message (UCM, acknowledged or rejected with where; of functional groups, under its
  group's UCF) when UNB asked for one or when any message was refused;
- never in answer to an interchange of CONTRL messages, nor to one whose UNB cannot be read
  (there is no one to address), nor for a sender that did not prove to be itself.

Only the interchange's first bytes (UNA and UNB, a few KiB at most) are read here; the
interchange itself is read in the parse worker."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from gateway.decide.pipeline import Context, Rejection, message_contexts, shared
from gateway.decide.router import PayloadBuilder
from gateway.publish.business_receipts import RECEIPT_CONTRACT, RECEIPT_CONTRACT_VERSION
from gateway.publish.deliveries import delivery_id, delivery_outbound
from gateway.publish.plan import Entry, Message, Plan, trail_fields
from message_formats import AvroSchemas
from message_formats.edifact import (
    CONTRL,
    EdifactError,
    InterchangeHeader,
    Level,
    MessageReport,
    Where,
    acknowledged_contrl,
    interchange_header,
    message_types,
    per_message_contrl,
    rejection_contrl,
    starts_as_edifact,
)

CONTRL_FORMAT = "edifact-contrl"
_REFERENCE_LENGTH = 14  # UNB 0020 is an..14


@dataclass(frozen=True, slots=True)
class ContrlAnswers:
    """Adds the CONTRL of an EDIFACT sender's interchange to the plan of its document."""

    payloads: PayloadBuilder
    schemas: AvroSchemas

    def added(self, plan: Plan, ctx: Context, why: Rejection | None, now: datetime) -> Plan:
        """`plan` with the CONTRL and its NOTIFIED entry; `plan` itself when none is due."""
        subject = contrl_subject(ctx)
        reports = message_reports(ctx) if why is None else ()
        if subject is None or (why is None and not subject.acknowledgement_requested
                               and all(r.refused is None for r in reports)):
            return plan
        if only_contrl(ctx.submission.document):
            return plan
        sent = delivery_id(ctx.event_id, CONTRL)
        reference = sent.replace("-", "")[-_REFERENCE_LENGTH:].upper()
        if reports:
            contrl = per_message_contrl(subject, reports, reference=reference, prepared=now)
        elif why is None:
            contrl = acknowledged_contrl(subject, reference=reference, prepared=now)
        else:
            contrl = rejection_contrl(subject, where_refused(ctx), reference=reference,
                                      prepared=now)
        fields = {
            "delivery_id": sent, "event_id": ctx.event_id, "recipient": ctx.submission.sender,
            "sender": ctx.submission.sender, "contract_id": RECEIPT_CONTRACT,
            "contract_version": RECEIPT_CONTRACT_VERSION, "document_type": CONTRL_FORMAT,
            "business_key": ctx.business_key or subject.control_reference,
            "document_version": ctx.document_version or 1, "payload_schema": CONTRL_FORMAT,
            "payload_encoding": CONTRL_FORMAT, "payload": contrl,
        }
        out = delivery_outbound(fields, self.payloads.topic_of(ctx.submission.sender),
                                self.schemas, event_id=ctx.event_id)
        action = "rejecting" if why is not None else "acknowledging"
        refused = sum(r.refused is not None for r in reports)
        of_messages = f", rejecting {refused} of its {len(reports)} messages" if refused else ""
        entry = Entry({**trail_fields(ctx), "kind": "NOTIFIED",
                       "recipient": ctx.submission.sender,
                       "reason": f"{CONTRL} {action} interchange{of_messages}, UNB reference "
                                 f"{reference}"},
                      names=len(plan.messages))
        return replace(plan, messages=(*plan.messages, Message(out, sealed=True)),
                       entries=(*plan.entries, entry))


def message_reports(ctx: Context) -> tuple[MessageReport, ...]:
    """Of an accepted interchange of several messages, each message as its CONTRL reports
    it: acknowledged when a contract shares it, else rejected where its refusal says, or
    with no syntax error when no contract shares it. None for one of a single message."""
    return tuple(MessageReport(part.reference, part.identifier, refused_at(decided),
                               part.group)
                 for part, decided in message_contexts(ctx))


def refused_at(part: Context) -> Where | None:
    """Where a message of several was refused; None when it was accepted and shared."""
    if part.refused is not None:
        return part.refused.edifact or Where(Level.MESSAGE, 0)
    return None if shared(part.decision) else Where(Level.MESSAGE, 0)


def contrl_subject(ctx: Context) -> InterchangeHeader | None:
    """The UNB facts of an authenticated EDIFACT submission that may get a CONTRL."""
    document = ctx.submission.document
    if ctx.signer is None or not starts_as_edifact(document):
        return None
    return interchange_header(document)


def only_contrl(document: bytes) -> bool:
    """An interchange of CONTRL messages, which no CONTRL answers. Run on the event loop:
    bytes that do not hold the word CONTRL are told at memchr speed, without the scan for
    UNH segments (which costs tens of milliseconds on a few MiB)."""
    if CONTRL.encode("ascii") not in document:
        return False
    try:
        return message_types(document) == {CONTRL}
    except EdifactError:  # no message types to tell: a refusal, which is answered
        return False


def where_refused(ctx: Context) -> Where:
    """Where the refusal is reported: as the refusal says, else the interchange as a whole
    (a refusal that is no syntax error, such as a format no adapter reads)."""
    refused = ctx.refused
    if refused is not None and refused.edifact is not None:
        return refused.edifact
    return Where(Level.INTERCHANGE, 0)

