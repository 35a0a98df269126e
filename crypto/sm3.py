"""SM3 digest (GB/T 32905) and HMAC-SM3.

SM3 comes from the system's OpenSSL 3 libcrypto through ``hashlib`` when that build has it
(normally the very libcrypto the fast SM2 backend uses), else from the ``cryptography`` wheel.
Both are OpenSSL's SM3; hashlib's objects cost about half as much per call, and Merkle
proofs are made of such calls (eleven small hashes per message), so hashlib is preferred.
HMAC-SM3 is the ``cryptography`` wheel's.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final, Protocol, Self

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

SM3_DIGEST_SIZE = 32
HASHLIB_HAS_SM3: Final = "sm3" in hashlib.algorithms_available


class SM3Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def copy(self) -> Self: ...

    def digest(self) -> bytes: ...


class _CryptographySM3:
    """hashlib's interface over ``cryptography``'s SM3, for builds whose hashlib lacks it."""

    __slots__ = ("_hash",)

    def __init__(self, state: hashes.Hash | None = None) -> None:
        self._hash = state if state is not None else hashes.Hash(hashes.SM3())

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._hash.update(data)

    def copy(self) -> Self:
        return type(self)(self._hash.copy())

    def digest(self) -> bytes:
        return self._hash.copy().finalize()


@functools.cache
def _hashlib_sm3() -> SM3Hasher:
    """hashlib's SM3, never fed, only copied: `hashlib.new("sm3")` looks the digest up in
    OpenSSL at each call (an EVP fetch, dearer than hashing a small message), a copy does
    not. The gateway takes a dozen SM3s per document (trail records, ids, Merkle leaves)."""
    return hashlib.new("sm3")


def new_sm3(data: bytes = b"") -> SM3Hasher:
    """A fresh incremental SM3, already fed ``data``."""
    hasher = _hashlib_sm3().copy() if HASHLIB_HAS_SM3 else _CryptographySM3()
    if data:
        hasher.update(data)
    return hasher


def sm3(data: bytes) -> bytes:
    if HASHLIB_HAS_SM3:
        hasher = _hashlib_sm3().copy()
        hasher.update(data)
        return hasher.digest()
    return cryptography_sm3(data)


def cryptography_sm3(data: bytes) -> bytes:
    """SM3 by the ``cryptography`` wheel, whatever hashlib offers."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm3_hex(data: bytes) -> str:
    return sm3(data).hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    mac = _hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()
