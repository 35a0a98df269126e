"""Digital envelope: a payload sealed for one recipient's SM2 key.

A fresh SM4 key encrypts the payload in GCM; that key travels SM2-encrypted to the recipient.
Byte layout, version 1 (offsets and sizes in bytes):

    offset  size    field
    0       1       version = 0x01
    1       32      recipient key id: SM3 of the recipient's SubjectPublicKeyInfo DER
    33      113     the 16-byte SM4 key, SM2-encrypted to the recipient (GB/T 32918.4),
                    C1 ‖ C3 ‖ C2 order: C1 = 04 ‖ x ‖ y (65), C3 (32), C2 (16)
    146     12      SM4-GCM nonce
    158     n + 16  SM4-GCM ciphertext of the n-byte payload, then the 16-byte tag

GCM's associated data is bytes 0-157 (the header) followed by the caller's ``aad``, so the
header cannot be altered or grafted onto another payload unnoticed, and the caller can bind
the envelope to its context (a document id, a routing key) without sending it twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final, Self

from ._sm2codec import CiphertextOrder
from .errors import DecryptionFailed
from .sm2 import SM2PrivateKey, SM2PublicKey
from .sm3 import SM3_DIGEST_SIZE
from .sm4 import GCM_NONCE_SIZE, GCM_TAG_SIZE, SM4_KEY_SIZE

ENVELOPE_VERSION: Final = 1
_KEY_BLOCK_SIZE: Final = 65 + SM3_DIGEST_SIZE + SM4_KEY_SIZE
_HEADER_SIZE: Final = 1 + SM3_DIGEST_SIZE + _KEY_BLOCK_SIZE + GCM_NONCE_SIZE


@dataclass(frozen=True, slots=True)
class Envelope:
    """The parsed fields of an envelope; ``ciphertext`` includes the GCM tag."""

    recipient_key_id: bytes
    encrypted_key: bytes
    nonce: bytes
    ciphertext: bytes
    version: int = ENVELOPE_VERSION

    @classmethod
    def parse(cls, data: bytes) -> Self:
        if len(data) < _HEADER_SIZE + GCM_TAG_SIZE:
            raise DecryptionFailed("envelope is too short")
        if data[0] != ENVELOPE_VERSION:
            raise DecryptionFailed(f"unsupported envelope version {data[0]}")
        key_id_end = 1 + SM3_DIGEST_SIZE
        key_end = key_id_end + _KEY_BLOCK_SIZE
        return cls(
            recipient_key_id=bytes(data[1:key_id_end]),
            encrypted_key=bytes(data[key_id_end:key_end]),
            nonce=bytes(data[key_end:_HEADER_SIZE]),
            ciphertext=bytes(data[_HEADER_SIZE:]),
            version=data[0],
        )

    @property
    def header(self) -> bytes:
        return bytes([self.version]) + self.recipient_key_id + self.encrypted_key + self.nonce

    def to_bytes(self) -> bytes:
        return self.header + self.ciphertext


def seal_envelope(recipient: SM2PublicKey, payload: bytes, *, aad: bytes = b"") -> bytes:
    content_key = secrets.token_bytes(SM4_KEY_SIZE)
    envelope = Envelope(
        recipient_key_id=bytes.fromhex(recipient.key_id),
        encrypted_key=recipient.encrypt(content_key, order=CiphertextOrder.C1C3C2),
        nonce=secrets.token_bytes(GCM_NONCE_SIZE),
        ciphertext=b"",
    )
    backend = recipient.backend
    sealed = backend.sm4_gcm_encrypt(content_key, envelope.nonce, payload, envelope.header + aad)
    return envelope.header + sealed


def open_envelope(recipient: SM2PrivateKey, data: bytes, *, aad: bytes = b"") -> bytes:
    """The payload; DecryptionFailed if the envelope is not for this key or was altered."""
    envelope = Envelope.parse(data)
    key_id = recipient.public_key().key_id
    if envelope.recipient_key_id.hex() != key_id:
        raise DecryptionFailed(
            f"envelope is for key {envelope.recipient_key_id.hex()}, not {key_id}"
        )
    content_key = recipient.decrypt(envelope.encrypted_key, order=CiphertextOrder.C1C3C2)
    if len(content_key) != SM4_KEY_SIZE:
        raise DecryptionFailed("envelope's content key has the wrong size")
    backend = recipient.backend
    return backend.sm4_gcm_decrypt(
        content_key, envelope.nonce, envelope.ciphertext, envelope.header + aad
    )


def envelope_recipient(data: bytes) -> str:
    """The key id an envelope is addressed to, to pick the right private key."""
    return Envelope.parse(data).recipient_key_id.hex()
