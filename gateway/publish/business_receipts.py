"""The MT9999 business receipt a China E-Port sender gets back for its envelope
(docs/eport.md, "MT9999 business receipts").

When a document came in a `DxpMsg` that authenticated its sender, and that sender is itself
a DXP party (`[dxp.recipients]`), the decision on it (accepted, refused, or a duplicate of
one accepted) is rendered as an MT9999 (adapters.cn_receipt), signed in the sender's
convention, put in a DxpMsg and added to the document's plan as one more sealed delivery,
to the sender's delivery topic, with its NOTIFIED trail entry. The sender reads it as it
reads any delivery: verified by its seal, once each. No other plan changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from adapters.cn_receipt import (
    ACCEPTED_CODE,
    DUPLICATE_CODE,
    MESSAGE_TYPE,
    REFUSED_CODE,
    Answered,
    ManifestReceipt,
    render_receipt,
)
from gateway.decide.pipeline import Context, Rejection
from gateway.decide.router import PayloadBuilder
from gateway.deliveries.envelopes import ENVELOPE_ENCODING_PREFIX
from gateway.kafka.names import H_DXP_COP_MSG_ID, Outbound
from gateway.publish.deliveries import delivery_id, delivery_outbound
from gateway.publish.dxp_egress import DxpEgress, DxpParty
from gateway.publish.plan import Entry, Message, Plan, trail_fields
from message_formats import AvroSchemas

RECEIPT_FORMAT = "cn-manifest-receipt"
# What the Delivery record of a receipt names in place of a sharing contract: a receipt to
# the sender is its due, not a sharing.
RECEIPT_CONTRACT = "px.business-receipt"
RECEIPT_CONTRACT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision as a receipt states it: MT9999 response code, and a text that begins
    with the gateway's stable code (as real receipts begin with a detail code), then the
    field and rule, never a value."""

    code: str
    text: str


def accepted() -> Verdict:
    return Verdict(ACCEPTED_CODE, "ACCEPTED the message was accepted and routed")


def duplicate(first_submission: str) -> Verdict:
    return Verdict(DUPLICATE_CODE, f"DUPLICATE the same CopMsgId was accepted before "
                                   f"(submission {first_submission}); not routed again")


def refused(why: Rejection) -> Verdict:
    return Verdict(REFUSED_CODE, f"{why.code} {why.message}")


@dataclass(frozen=True, slots=True)
class BusinessReceipts:
    """Adds the MT9999 of a DXP sender's envelope to the plan of its document."""

    dxp: DxpEgress
    payloads: PayloadBuilder
    schemas: AvroSchemas

    def added(self, plan: Plan, ctx: Context, verdict: Verdict, now: datetime) -> Plan:
        """`plan` with the receipt and its NOTIFIED entry; `plan` itself when the document
        came in no envelope, its sender takes no envelopes, or the envelope was not
        authenticated (its signature or certificate refused: the DxpRep, a transport
        receipt, says so; nothing is put on an agency's topic in the name of a sender
        that did not prove to be it)."""
        party = self.dxp.parties.get(ctx.submission.sender)
        if ctx.opened is None or party is None or not authenticated(ctx):
            return plan
        cop_msg_id = delivery_id(ctx.event_id, MESSAGE_TYPE)
        out = self._message(ctx, party, verdict, cop_msg_id, now)
        entry = Entry({**trail_fields(ctx), "kind": "NOTIFIED",
                       "recipient": ctx.submission.sender,
                       "reason": f"{MESSAGE_TYPE} business receipt {verdict.code} as DxpMsg "
                                 f"CopMsgId {cop_msg_id}"}, names=len(plan.messages))
        return replace(plan, messages=(*plan.messages, Message(out, sealed=True)),
                       entries=(*plan.entries, entry))

    def _message(self, ctx: Context, party: DxpParty, verdict: Verdict, cop_msg_id: str,
                 now: datetime) -> Outbound:
        assert ctx.opened is not None
        s = ctx.submission
        receipt = ManifestReceipt(sender_id=party.sender_id, receiver_id=party.receiver_id,
                                  sent=now, answered=answered(ctx), code=verdict.code,
                                  text=verdict.text)
        envelope = party.envelope(render_receipt(receipt), MESSAGE_TYPE, cop_msg_id, now)
        fields = {
            "delivery_id": cop_msg_id, "event_id": ctx.event_id, "recipient": s.sender,
            "sender": s.sender, "contract_id": RECEIPT_CONTRACT,
            "contract_version": RECEIPT_CONTRACT_VERSION, "document_type": RECEIPT_FORMAT,
            "business_key": ctx.business_key or ctx.opened.trans_info.cop_msg_id,
            "document_version": ctx.document_version or 1,
            "payload_schema": RECEIPT_FORMAT,
            "payload_encoding": ENVELOPE_ENCODING_PREFIX + RECEIPT_FORMAT, "payload": envelope,
        }
        return delivery_outbound(fields, self.payloads.topic_of(s.sender), self.schemas,
                                 event_id=ctx.event_id,
                                 extra_headers=((H_DXP_COP_MSG_ID, cop_msg_id.encode()),))


def authenticated(ctx: Context) -> bool:
    """Whether the envelope proved its sender: the gateway confirmed the signer, or the parse
    worker verified the signature with the sender's certificate (`Opened.serial`) before the
    business message inside was refused."""
    return ctx.signer is not None or (ctx.opened is not None and ctx.opened.serial is not None)


def answered(ctx: Context) -> Answered:
    """The message answered: a manifest's head and transport means when the gateway read
    them, else the envelope's CopMsgId and MsgType."""
    assert ctx.opened is not None
    info = ctx.opened.trans_info
    record: Mapping[str, Any] = ctx.record or {}
    head = record.get("head")
    if not isinstance(head, Mapping):
        return Answered(info.cop_msg_id, message_type=info.msg_type or None)
    means = (record.get("declaration") or {}).get("transport_means") or {}
    return Answered(head["message_id"], message_type=head["message_type"],
                    function_code=head["function_code"], journey_id=means.get("journey_id"),
                    transport_means_id=means.get("id"))
