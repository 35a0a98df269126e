"""The messages the gateway makes of a decision for its recipients: one Delivery envelope
per grant (its payload as the contract says: projected, masked, in Avro or JSON, sealed to
the recipient's key when asked), with an id fixed by the event and the recipient.

The stage that makes them runs last but one in the pipeline (a delivery that cannot be made,
say for want of a recipient's key, refuses the document before anything is published);
a re-delivery (replay/redeliver.py) makes its deliveries with the same `delivery_message`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from contracts import Grant
from gateway.decide.pipeline import Context, derived_from
from gateway.decide.router import PayloadBuilder
from gateway.deliveries.proof import DELIVERY_SCHEMA
from gateway.ids import derived_uuid7, uuid7_time_ms
from gateway.kafka.names import (
    H_DOCUMENT_TYPE,
    H_DXP_COP_MSG_ID,
    H_EVENT_ID,
    H_FINGERPRINT,
    H_SENDER,
    Headers,
    Outbound,
)
from gateway.publish.dxp_egress import NO_DXP, DxpEgress
from message_formats import AvroSchemas


@dataclass(frozen=True, slots=True)
class BuildDeliveries:
    """One delivery per grant: the event projected, masked, encrypted as its contract says;
    in a signed DxpMsg for a recipient that takes envelopes (`dxp`)."""

    payloads: PayloadBuilder
    schemas: AvroSchemas
    dxp: DxpEgress = NO_DXP

    def __call__(self, ctx: Context) -> Context:
        assert ctx.event is not None and ctx.decision is not None and ctx.record is not None
        deliveries = tuple(
            (grant, delivery_message(grant, ctx.record, ctx.event.value, self.payloads,
                                     self.schemas, delivery_id(ctx.event_id, grant.recipient),
                                     ctx.submission.received_at,
                                     extra_headers=derived_from(ctx), dxp=self.dxp))
            for grant in ctx.decision.grants
        )
        return replace(ctx, deliveries=deliveries)


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
    dxp: DxpEgress = NO_DXP,
) -> Outbound:
    """The Delivery envelope for one grant of a canonical event (its record, header included,
    and its encoded bytes). `at` chooses the recipient key an SM4 envelope is sealed to. A
    recipient of `dxp` gets the payload in a DxpMsg whose CopMsgId is the delivery id (also
    in header px-dxp-cop-msg-id)."""
    header = event_record["header"]
    party = dxp.parties.get(grant.recipient)
    if party is None:
        payload = payloads.build(grant, event_record, event_value, at)
    else:
        envelope = partial(party.enveloped, record=event_record, cop_msg_id=delivery_id, at=at)
        payload = payloads.build(grant, event_record, event_value, at, envelope=envelope)
        extra_headers = (*extra_headers, (H_DXP_COP_MSG_ID, delivery_id.encode()))
    document_type = header["document_type"]
    fields = {
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
    }
    return delivery_outbound(fields, payloads.topic_of(grant.recipient), schemas,
                             event_id=header["event_id"], extra_headers=extra_headers)


def delivery_outbound(fields: Mapping[str, Any], topic: str, schemas: AvroSchemas, *,
                      event_id: str, extra_headers: Headers = ()) -> Outbound:
    """A px.gateway.Delivery record as the message that carries it, keyed by the business
    key."""
    return Outbound(
        topic=topic,
        key=str(fields["business_key"]).encode(),
        value=schemas.encode(DELIVERY_SCHEMA, fields),
        headers=(
            (H_EVENT_ID, event_id.encode()),
            (H_DOCUMENT_TYPE, str(fields["document_type"]).encode()),
            (H_SENDER, str(fields["sender"]).encode()),
            (H_FINGERPRINT, schemas.fingerprint(DELIVERY_SCHEMA).hex().encode()),
            *extra_headers,
        ),
    )


def delivery_id(event_id: str, recipient: str) -> str:
    """Fixed by the event and the recipient, as the event id is fixed by the ingress record:
    a delivery made again after a crash carries the id it had."""
    return derived_uuid7(uuid7_time_ms(event_id), f"{event_id}/{recipient}".encode())
