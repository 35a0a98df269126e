"""Proof of origin on deliveries, and its check by the recipient (DESIGN.md §6, §12).

The gateway seals every delivery before publishing it, in batches with its receipts
(gateway.publish.sealing): one SM2 signature by a gateway sealing key over the Merkle root of a
batch. A delivery's leaf is

    b"px-delivery/1\\x00" ‖ sealed_at (ms since the epoch, 8 bytes big-endian) ‖ value

where `value` is the Kafka record's value exactly as on the topic (the px.gateway.Delivery,
which names the recipient, delivery id, event id, contract and payload). The seal, the leaf's
inclusion proof and `sealed_at` travel in the record's `px-seal` header, a
px.gateway.DeliverySeal in single-object encoding.

The domain keeps one kind of seal from passing for another: a receipt's leaf is its Avro body,
whose first field, a string, would have to hold the bytes C3 01 (not UTF-8) to begin like a
delivery's leaf; a trail seal signs another message altogether.

A recipient checks each delivery with a `DeliveryVerifier` before it acts on it: the proof is
there, its key is one of the gateway's sealing keys valid at `sealed_at`, the signature and the
inclusion proof hold, the value names this recipient and the `px-event-id` header (what
de-duplication goes by) is the value's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from crypto import (
    BatchSeal,
    BatchVerifier,
    InclusionProof,
    Keyring,
    SealKeyRefused,
    SignatureInvalid,
)
from gateway.errors import GatewayError
from gateway.home.live_keyring import LiveKeyring
from gateway.kafka.names import H_EVENT_ID, StoredMessage
from message_formats import AvroSchemas, FormatError

DELIVERY_SCHEMA: Final = "px.gateway.Delivery"
DELIVERY_SEAL_SCHEMA: Final = "px.gateway.DeliverySeal"
H_SEAL: Final = "px-seal"
DELIVERY_DOMAIN: Final = b"px-delivery/1\x00"

# Why a recipient refuses a delivery; a seal by a key that may not seal is refused with the
# keyring's codes (crypto.SEAL_KEY_*).
DELIVERY_PROOF_MISSING: Final = "DELIVERY_PROOF_MISSING"
DELIVERY_PROOF_MALFORMED: Final = "DELIVERY_PROOF_MALFORMED"
DELIVERY_PROOF_INVALID: Final = "DELIVERY_PROOF_INVALID"
DELIVERY_MALFORMED: Final = "DELIVERY_MALFORMED"
DELIVERY_NOT_FOR_RECIPIENT: Final = "DELIVERY_NOT_FOR_RECIPIENT"
DELIVERY_HEADER_MISMATCH: Final = "DELIVERY_HEADER_MISMATCH"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


class DeliveryRefused(GatewayError):
    """A delivery its recipient must not take; `code` says why. The message names the rule,
    never a value of the delivery."""

    code = "DELIVERY_REFUSED"


def delivery_leaf(value: bytes, sealed_at: datetime) -> bytes:
    """What the seal covers for one delivery: the domain, the time, the value."""
    return DELIVERY_DOMAIN + epoch_ms(sealed_at).to_bytes(8, "big") + value


def epoch_ms(at: datetime) -> int:
    """Milliseconds since the epoch, as the leaf and Avro's timestamp-millis have them."""
    return (at - _EPOCH) // _MILLISECOND


@dataclass(frozen=True, slots=True)
class DeliveryProof:
    """What the `px-seal` header carries."""

    sealed_at: datetime
    seal: BatchSeal
    proof: InclusionProof

    def encode(self, schemas: AvroSchemas) -> bytes:
        return schemas.encode(DELIVERY_SEAL_SCHEMA, {
            "key_id": self.seal.key_id,
            "sealed_at": self.sealed_at,
            "root": self.seal.root,
            "count": self.seal.count,
            "signature": self.seal.signature,
            "index": self.proof.index,
            "path": list(self.proof.path),
        })

    @classmethod
    def decode(cls, schemas: AvroSchemas, data: bytes) -> DeliveryProof:
        """DeliveryRefused (DELIVERY_PROOF_MALFORMED) unless `data` is a DeliverySeal."""
        try:
            name, record = schemas.decode(data)
        except FormatError as exc:
            raise DeliveryRefused(f"the {H_SEAL} header is not Avro single-object encoded "
                                  f"({exc.code})", code=DELIVERY_PROOF_MALFORMED) from exc
        if name != DELIVERY_SEAL_SCHEMA:
            raise DeliveryRefused(f"the {H_SEAL} header holds a {name}, not a "
                                  f"{DELIVERY_SEAL_SCHEMA}", code=DELIVERY_PROOF_MALFORMED)
        return cls(
            sealed_at=record["sealed_at"].astimezone(UTC),
            seal=BatchSeal(record["root"], record["count"], record["signature"],
                           record["key_id"]),
            proof=InclusionProof(record["index"], record["count"], tuple(record["path"])),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery its recipient verified: the px.gateway.Delivery record, and its seal's key
    and time."""

    delivery_id: str
    event_id: str
    recipient: str
    sender: str
    contract_id: str
    contract_version: int
    document_type: str
    business_key: str
    document_version: int
    payload_schema: str
    payload_encoding: str
    payload: bytes
    seal_key_id: str
    sealed_at: datetime

    def metadata(self) -> dict[str, Any]:
        """Everything but the payload, for JSON (the payload's size and SM3 aside)."""
        return {
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "recipient": self.recipient,
            "sender": self.sender,
            "contract_id": self.contract_id,
            "contract_version": self.contract_version,
            "document_type": self.document_type,
            "business_key": self.business_key,
            "document_version": self.document_version,
            "payload_schema": self.payload_schema,
            "payload_encoding": self.payload_encoding,
            "payload_bytes": len(self.payload),
            "seal_key_id": self.seal_key_id,
            "sealed_at": self.sealed_at.isoformat(timespec="milliseconds"),
        }


class DeliveryVerifier:
    """Checks the deliveries read for `recipient` against the gateway's sealing keys in
    `keyring` (a LiveKeyring: the one in force at each check). Good seals are remembered
    (crypto.BatchVerifier), so a batch's SM2 signature is verified once, and each further
    delivery of it costs its leaf hash, the hashes up its path and decoding its value."""

    def __init__(self, keyring: Keyring | LiveKeyring, recipient: str, *,
                 schemas: AvroSchemas | None = None, cache_size: int = 4096) -> None:
        self.recipient = recipient
        self._keyring = keyring
        self._schemas = schemas or AvroSchemas()
        self._batches = BatchVerifier(cache_size=cache_size)

    def check(self, message: StoredMessage) -> Delivery:
        """The delivery `message` holds; DeliveryRefused, its code naming the rule, unless
        the gateway sealed exactly this value for this recipient."""
        proof = DeliveryProof.decode(self._schemas, self._seal_header(message))
        key_id = self._verify(message.value, proof)
        delivery = self._decode(message.value, proof, key_id)
        if delivery.recipient != self.recipient:
            raise DeliveryRefused(
                f"the delivery is sealed for recipient {delivery.recipient!r}, not for "
                f"{self.recipient!r}: a delivery counts only for the recipient it names",
                code=DELIVERY_NOT_FOR_RECIPIENT)
        if message.header(H_EVENT_ID) != delivery.event_id.encode():
            raise DeliveryRefused(
                f"the {H_EVENT_ID} header is not the sealed delivery's event id: "
                "de-duplication goes by it, so it must be the delivery's own",
                code=DELIVERY_HEADER_MISMATCH)
        return delivery

    def _seal_header(self, message: StoredMessage) -> bytes:
        found = [value for name, value in message.headers if name == H_SEAL]
        if not found:
            raise DeliveryRefused(f"no {H_SEAL} header: every delivery the gateway publishes "
                                  "carries its seal", code=DELIVERY_PROOF_MISSING)
        if len(found) > 1:
            raise DeliveryRefused(f"{len(found)} {H_SEAL} headers: a delivery carries one",
                                  code=DELIVERY_PROOF_MALFORMED)
        return found[0]

    def _verify(self, value: bytes, proof: DeliveryProof) -> str:
        """The sealing key that sealed exactly `value`, by its id."""
        keyring = self._keyring.current if isinstance(self._keyring, LiveKeyring) \
            else self._keyring
        try:
            entry = keyring.verify_batch_seal(delivery_leaf(value, proof.sealed_at),
                                              proof.proof, proof.seal, at=proof.sealed_at,
                                              verifier=self._batches)
        except SealKeyRefused as exc:
            raise DeliveryRefused(f"the delivery's seal: {exc.message}", code=exc.code) from exc
        except SignatureInvalid as exc:
            raise DeliveryRefused(
                f"the delivery's seal: {exc.message}: the value was altered, or the proof is "
                "another's", code=DELIVERY_PROOF_INVALID) from exc
        return entry.key_id

    def _decode(self, value: bytes, proof: DeliveryProof, key_id: str) -> Delivery:
        try:
            name, record = self._schemas.decode(value)
        except FormatError as exc:
            raise DeliveryRefused(f"the sealed value is not Avro single-object encoded "
                                  f"({exc.code})", code=DELIVERY_MALFORMED) from exc
        if name != DELIVERY_SCHEMA:
            raise DeliveryRefused(f"the sealed value is a {name}, not a {DELIVERY_SCHEMA}",
                                  code=DELIVERY_MALFORMED)
        return Delivery(**record, seal_key_id=key_id, sealed_at=proof.sealed_at)
