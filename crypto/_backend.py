"""The seam between the SM2 key classes and the library that does the arithmetic.

A backend deals in opaque key handles and DER; PEM armour of public keys, key ids and
equality live above it, so a second backend (the planned ``gmssl`` reference) only has to
implement these few operations.
"""

from __future__ import annotations

from typing import Protocol

from ._libcrypto import OpenSSLBackend


class KeyHandle(Protocol):
    """Opaque key object owned by one backend; only that backend looks inside."""


class SM2Backend(Protocol):
    name: str

    def generate_private_key(self) -> KeyHandle: ...

    def load_private_key_pem(self, pem: bytes, password: bytes | None) -> KeyHandle: ...

    def private_key_to_pem(self, key: KeyHandle, password: bytes | None) -> bytes: ...

    def public_key_der(self, key: KeyHandle) -> bytes:
        """SPKI DER of the public half of ``key`` (a private or a public handle)."""
        ...

    def load_public_key_der(self, der: bytes) -> KeyHandle: ...

    def sign(self, key: KeyHandle, data: bytes, user_id: bytes) -> bytes:
        """DER-encoded SM2 signature over SM3(Z(user_id) || data)."""
        ...

    def verify(self, key: KeyHandle, signature: bytes, data: bytes, user_id: bytes) -> bool:
        """True only for a valid signature; any malformed input is simply False."""
        ...


def default_backend() -> SM2Backend:
    """The fast backend; cheap to call, since libcrypto is loaded once per process."""
    return OpenSSLBackend()
