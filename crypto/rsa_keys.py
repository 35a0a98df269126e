"""RSA public keys as legacy E-Port certificates carry them (docs/eport-research.md §2.2, §3:
RSA-1024 with sha1WithRSA in the field, RSA-2048 allowed since 2018).

An RSA key does one thing here: verify RSA PKCS#1 v1.5 signatures, i.e. the XML signatures
of the conventions that name RSA (``rsa-sha1``) and the signatures of RSA CAs over
certificates and CRLs. It is not an SM2PublicKey and has none of its uses (seals, envelopes,
receipts, the trail); the keyring keeps RSA entries apart for that reason (crypto/keyring.py).
The arithmetic is the `cryptography` wheel's, which xmldsig.py already signs and verifies
RSA with; libcrypto through ctypes would add code for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._pem import pem_encode
from .errors import KeyInvalid
from .sm3 import sm3_hex

# Keys shorter than this are refused unless a keyring lowers its `rsa_min_bits`, at most to
# LEGACY_RSA_MIN_BITS (the E-Port's RSA-1024 certificates).
RSA_MIN_BITS = 2048
LEGACY_RSA_MIN_BITS = 1024
RSA_KEY_TOO_SHORT = "RSA_KEY_TOO_SHORT"

_PUBLIC_KEY_LABEL = "PUBLIC KEY"


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    """An RSA public key; equal by its SubjectPublicKeyInfo DER. `key_id` is the lowercase
    hex SM3 of that DER, as an SM2 key's is."""

    der: bytes = field(repr=False)
    key_id: str
    bits: int
    key: rsa.RSAPublicKey = field(repr=False, compare=False)

    @classmethod
    def from_der(cls, der: bytes) -> Self:
        """KeyInvalid for bytes that are not one SubjectPublicKeyInfo of an RSA key."""
        der = bytes(der)
        try:
            key = serialization.load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyInvalid("public key is not a readable SubjectPublicKeyInfo") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyInvalid("public key is not an RSA key")
        return cls(der=der, key_id=sm3_hex(der), bits=key.key_size, key=key)

    def to_der(self) -> bytes:
        return self.der

    def to_pem(self) -> bytes:
        return pem_encode(self.der, _PUBLIC_KEY_LABEL)

    def verifies(self, signature: bytes, data: bytes, digest: hashes.HashAlgorithm) -> bool:
        """Whether `signature` is this key's RSA PKCS#1 v1.5 signature over `data`."""
        try:
            self.key.verify(signature, data, padding.PKCS1v15(), digest)
        except InvalidSignature:
            return False
        return True
