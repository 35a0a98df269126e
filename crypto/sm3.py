"""SM3 digest (GB/T 32905) and HMAC-SM3, computed by the ``cryptography`` wheel."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

SM3_DIGEST_SIZE = 32


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm3_hex(data: bytes) -> str:
    return sm3(data).hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    mac = _hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()
