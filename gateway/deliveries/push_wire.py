"""A delivery as the gateway POSTs it to a recipient's endpoint, and read back by the
recipient as the message a `DeliveryVerifier` checks (docs/service.md, "Push").

One proof, three bodies. Every request carries `Px-Seal` (the delivery's `px-seal` header,
base64), `Px-Event-Id`, `Px-Delivery-Id` and `Px-Form`; the body is

- `avro`: the sealed value exactly as on the delivery topic (a px.gateway.Delivery);
- `json`: `{"delivery": its metadata (`Delivery.metadata`), "payload": base64, "value": base64
  of the sealed value}`, for a recipient without Avro that still verifies the seal;
- `native`: the payload alone, as its contract made it (the adapter's rendering of an XML
  form, JSON, Avro), typed by its media type; `Px-Delivery-Head` carries the sealed value up
  to the payload, base64. The payload is the Delivery record's last field, so the value
  sealed is that head followed by the body, and the recipient verifies it without a copy of
  the payload in a header.

What the recipient acknowledges is the payload: its SM3 (gateway.deliveries.acknowledgements,
`Taken.of`).

A recipient configured with `batch` above 1 gets up to that many deliveries of one partition
a request, in their order, as `multipart/mixed` (RFC 2046): each part has the headers and
body the delivery's own request would have (`push_batch`), and the request says how many
in `Px-Deliveries`. Its acknowledgement names each of them, in that order. The recipient
reads a request of either kind with `pushed_messages`.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from multidict import CIMultiDict

from gateway.deliveries.proof import (
    DELIVERY_PROOF_MALFORMED,
    DELIVERY_PROOF_MISSING,
    H_SEAL,
    Delivery,
    DeliveryRefused,
)
from gateway.kafka.names import H_EVENT_ID, StoredMessage

HTTP_SEAL: Final = "Px-Seal"
HTTP_EVENT_ID: Final = "Px-Event-Id"
HTTP_DELIVERY_ID: Final = "Px-Delivery-Id"
HTTP_FORM: Final = "Px-Form"
HTTP_DELIVERY_HEAD: Final = "Px-Delivery-Head"
HTTP_DELIVERIES: Final = "Px-Deliveries"
BATCH_MEDIA_TYPE: Final = "multipart/mixed"
AVRO_FORM, JSON_FORM, NATIVE_FORM = "avro", "json", "native"
DELIVERY_MEDIA_TYPE: Final = "application/vnd.px.delivery+avro"
JSON_MEDIA_TYPE: Final = "application/json"


@dataclass(frozen=True, slots=True)
class PushRequest:
    """The headers and body of one delivery's POST."""

    headers: Mapping[str, str]
    body: bytes


def push_request(message: StoredMessage, delivery: Delivery, form: str, media_type: str
                 ) -> PushRequest:
    """The POST of the delivery `message` holds (`delivery`: as its verifier read it);
    `media_type` is the payload's, used by the `native` form."""
    seal = message.header(H_SEAL) or b""
    payload = delivery.payload
    headers = {HTTP_SEAL: _b64(seal), HTTP_EVENT_ID: delivery.event_id,
               HTTP_DELIVERY_ID: delivery.delivery_id, HTTP_FORM: form}
    if form == AVRO_FORM:
        return PushRequest({**headers, "Content-Type": DELIVERY_MEDIA_TYPE}, message.value)
    if form == JSON_FORM:
        body = {"delivery": delivery.metadata(), "payload": _b64(payload),
                "value": _b64(message.value)}
        return PushRequest({**headers, "Content-Type": JSON_MEDIA_TYPE},
                           json.dumps(body, separators=(",", ":")).encode())
    head = message.value[:len(message.value) - len(payload)]
    if not message.value.endswith(payload):  # the Delivery schema's last field is its payload
        raise ValueError("the sealed value does not end with the delivery's payload")
    return PushRequest({**headers, HTTP_DELIVERY_HEAD: _b64(head), "Content-Type": media_type},
                       payload)


def pushed_message(headers: Mapping[str, str], body: bytes, *, topic: str = "") -> StoredMessage:
    """The recipient's side: the delivery a POST carries, as the message `DeliveryVerifier`
    checks (the sealed value, its `px-seal` and `px-event-id` headers). DeliveryRefused
    (DELIVERY_PROOF_MISSING, DELIVERY_PROOF_MALFORMED) when the request does not carry them."""
    seal, event_id = headers.get(HTTP_SEAL), headers.get(HTTP_EVENT_ID)
    if not seal or event_id is None:
        raise DeliveryRefused(f"a pushed delivery carries {HTTP_SEAL} and {HTTP_EVENT_ID}",
                              code=DELIVERY_PROOF_MISSING)
    form = headers.get(HTTP_FORM, AVRO_FORM)
    try:
        if form == JSON_FORM:
            value = base64.b64decode(json.loads(body)["value"], validate=True)
        elif form == NATIVE_FORM:
            value = base64.b64decode(headers.get(HTTP_DELIVERY_HEAD, ""), validate=True) + body
        else:
            value = body
        sealed = base64.b64decode(seal, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise DeliveryRefused(f"a pushed delivery's {form} body or {HTTP_SEAL} does not decode "
                              f"({type(exc).__name__})", code=DELIVERY_PROOF_MALFORMED) from None
    return StoredMessage(topic, 0, 0, None, value,
                         ((H_EVENT_ID, event_id.encode()), (H_SEAL, sealed)), 0)


def push_batch(requests: Sequence[PushRequest]) -> PushRequest:
    """The POST of several deliveries: their own requests as the parts of one
    multipart/mixed body, in order, under a boundary that none of them holds."""
    while True:
        boundary = f"px-{secrets.token_hex(16)}".encode("ascii")
        if not any(boundary in r.body for r in requests):
            break
    parts = [b"--" + boundary + b"\r\n"
             + b"".join(f"{name}: {value}\r\n".encode("latin-1")
                        for name, value in r.headers.items())
             + b"\r\n" + r.body + b"\r\n" for r in requests]
    body = b"".join(parts) + b"--" + boundary + b"--\r\n"
    return PushRequest({"Content-Type": f"{BATCH_MEDIA_TYPE}; boundary={boundary.decode()}",
                        HTTP_DELIVERIES: str(len(requests))}, body)


def pushed_messages(headers: Mapping[str, str], body: bytes, *, topic: str = ""
                    ) -> list[StoredMessage]:
    """The recipient's side of any push request: its one delivery (`pushed_message`), or
    each delivery of a batch (multipart/mixed), in order. DeliveryRefused as
    `pushed_message`, and DELIVERY_PROOF_MALFORMED for a batch that does not parse."""
    media_type, _, parameters = headers.get("Content-Type", "").partition(";")
    if media_type.strip().lower() != BATCH_MEDIA_TYPE:
        return [pushed_message(headers, body, topic=topic)]
    boundary = _boundary(parameters)
    return [pushed_message(part_headers, part_body, topic=topic)
            for part_headers, part_body in _parts(body, boundary)]


def _boundary(parameters: str) -> bytes:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary" and value.strip('"'):
            return value.strip('"').encode("ascii", "replace")
    raise _batch_malformed("its Content-Type names no boundary")


def _parts(body: bytes, boundary: bytes) -> list[tuple[CIMultiDict[str], bytes]]:
    """The parts of a multipart body: headers (case-insensitive) and body each."""
    start, end = b"--" + boundary + b"\r\n", b"\r\n--" + boundary + b"--"
    if not body.startswith(start) or end not in body:
        raise _batch_malformed("the body does not start and end with its boundary")
    inner = body[len(start):body.rindex(end)]
    parts = []
    for part in inner.split(b"\r\n--" + boundary + b"\r\n"):
        head, separator, part_body = part.partition(b"\r\n\r\n")
        if not separator:
            raise _batch_malformed("a part has no blank line after its headers")
        fields: CIMultiDict[str] = CIMultiDict()
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if not colon:
                raise _batch_malformed("a part's header line is not Name: value")
            fields.add(name.strip(), value.strip())
        parts.append((fields, part_body))
    return parts


def _batch_malformed(rule: str) -> DeliveryRefused:
    return DeliveryRefused(f"a batch of pushed deliveries is multipart/mixed: {rule}",
                           code=DELIVERY_PROOF_MALFORMED)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
