"""Receipts: the gateway's answer to each submission, accepted or rejected with a code, signed.

Receipts are signed in batches (one SM2 signature over the Merkle root of the receipts
decided together, `crypto.BatchSigner`), each receipt carrying its inclusion proof: signing
every receipt alone would cost one SM2 signature per document, as much CPU as checking the
sender's signature. A receipt decided while no other is waiting gets a batch of its own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crypto import (
    BatchSeal,
    BatchVerifier,
    InclusionProof,
    KeyEntry,
    Keyring,
    SignedBatch,
    SM2PublicKey,
)
from message_formats import AvroMalformedError, AvroSchemas

RECEIPT_SCHEMA = "px.gateway.Receipt"
SIGNED_RECEIPT_SCHEMA = "px.gateway.SignedReceipt"
ACCEPTED = "accepted"
REJECTED = "rejected"
DENIED = "denied"  # a part of a submission of several that no contract shares


@dataclass(frozen=True, slots=True)
class ReceiptPart:
    """The outcome of one document of a submission that holds several (one message of an
    EDIFACT interchange of several): px.gateway.ReceiptPart."""

    number: int
    reference: str
    message_type: str
    status: str
    event_id: str
    business_key: str | None = None
    recipients: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    error_line: int | None = None
    error_segment: int | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "reference": self.reference,
            "message_type": self.message_type,
            "status": self.status,
            "event_id": self.event_id,
            "business_key": self.business_key,
            "recipients": list(self.recipients),
            "error_code": self.error_code,
            "error_message": self.error_message,
            "error_line": self.error_line,
            "error_segment": self.error_segment,
        }

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> ReceiptPart:
        return cls(**{**record, "recipients": tuple(record["recipients"])})

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_avro().items() if v is not None}


@dataclass(frozen=True, slots=True)
class Receipt:
    submission_id: str
    event_id: str
    sender: str
    format_id: str
    digest_sm3: str
    status: str
    time: datetime
    recipients: tuple[str, ...] = ()
    document_type: str | None = None
    business_key: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_line: int | None = None
    # Of a submission of several documents, each one's outcome; None for one of one.
    parts: tuple[ReceiptPart, ...] | None = None

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    @property
    def parts_not_accepted(self) -> tuple[ReceiptPart, ...]:
        """The parts of an accepted submission of several that were rejected or denied: a
        receipt "accepted" with any is accepted in part."""
        return tuple(part for part in self.parts or () if part.status != ACCEPTED)

    def to_avro(self) -> dict[str, Any]:
        """The record for px.gateway.Receipt (field by field: `dataclasses.asdict` deep-copies
        every value, a tenth of a millisecond per receipt)."""
        return {
            "submission_id": self.submission_id,
            "event_id": self.event_id,
            "sender": self.sender,
            "format_id": self.format_id,
            "digest_sm3": self.digest_sm3,
            "status": self.status,
            "time": self.time,
            "recipients": list(self.recipients),
            "document_type": self.document_type,
            "business_key": self.business_key,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "error_line": self.error_line,
            "parts": None if self.parts is None else [part.to_avro() for part in self.parts],
        }

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> Receipt:
        parts = record.get("parts")
        return cls(**{**record, "recipients": tuple(record["recipients"]),
                      "parts": None if parts is None else tuple(
                          ReceiptPart.from_avro(part) for part in parts)})

    def to_json(self) -> dict[str, Any]:
        record = self.to_avro()
        record["time"] = self.time.isoformat()
        if self.parts is not None:
            record["parts"] = [part.to_json() for part in self.parts]
        return {k: v for k, v in record.items() if v is not None}


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    """A receipt, the exact bytes signed for it (its Avro body), the batch seal and its
    inclusion proof."""

    receipt: Receipt
    body: bytes
    seal: BatchSeal
    proof: InclusionProof

    @classmethod
    def of_batch(cls, receipts: list[Receipt], bodies: list[bytes],
                 batch: SignedBatch) -> list[SignedReceipt]:
        return [cls(receipt, body, batch.seal, batch.proof(index))
                for index, (receipt, body) in enumerate(zip(receipts, bodies, strict=True))]

    def to_avro(self) -> dict[str, Any]:
        return {
            "receipt": self.body,
            "key_id": self.seal.key_id,
            "root": self.seal.root,
            "count": self.seal.count,
            "signature": self.seal.signature,
            "index": self.proof.index,
            "path": list(self.proof.path),
        }

    def encode(self, schemas: AvroSchemas) -> bytes:
        return schemas.encode(SIGNED_RECEIPT_SCHEMA, self.to_avro())

    @classmethod
    def decode(cls, schemas: AvroSchemas, value: bytes) -> SignedReceipt:
        """Raises message_formats' FormatError when `value` is not a signed receipt."""
        name, record = schemas.decode(value)
        if name != SIGNED_RECEIPT_SCHEMA:
            raise AvroMalformedError(f"a {name}, not a signed receipt")
        body = record["receipt"]
        return cls(
            receipt=Receipt.from_avro(schemas.decode_body(RECEIPT_SCHEMA, body)),
            body=body,
            seal=BatchSeal(record["root"], record["count"], record["signature"],
                           record["key_id"]),
            proof=InclusionProof(record["index"], record["count"], tuple(record["path"])),
        )

    def verify(self, public_key: SM2PublicKey, verifier: BatchVerifier | None = None) -> None:
        """crypto.SignatureInvalid unless `public_key` signed exactly this receipt. Which key
        that may be is `check`'s question."""
        (verifier or BatchVerifier(cache_size=0)).verify(self.body, self.proof, self.seal,
                                                         public_key)

    def check(self, keyring: Keyring, verifier: BatchVerifier | None = None) -> KeyEntry:
        """The sealing key that signed exactly this receipt. crypto.SealKeyRefused (its code
        naming the rule) unless the key the seal names is one of the gateway's sealing keys
        valid at the receipt's time; crypto.SignatureInvalid (SEAL_SIGNATURE_INVALID) unless
        its signature covers this receipt."""
        return keyring.verify_batch_seal(self.body, self.proof, self.seal,
                                         at=self.receipt.time, verifier=verifier)

    def to_json(self) -> dict[str, Any]:
        """The receipt for people and HTTP clients, with what a client needs to check the
        signature: the signed bytes, the seal and the proof."""
        return {
            "receipt": self.receipt.to_json(),
            "signature": {
                "algorithm": "SM2-SM3 Merkle batch seal (crypto.BatchSigner)",
                "sm2_id": "1234567812345678",
                "key_id": self.seal.key_id,
                "signed_receipt": base64.b64encode(self.body).decode(),
                "root": self.seal.root.hex(),
                "count": self.seal.count,
                "index": self.proof.index,
                "path": [node.hex() for node in self.proof.path],
                "signature": base64.b64encode(self.seal.signature).decode(),
            },
        }
