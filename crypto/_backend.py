"""One interface, two implementations, and the choice between them.

``fast`` is OpenSSL 3 libcrypto (SM2, through ctypes) plus the ``cryptography`` wheel (SM3,
SM4); ``reference`` is gmssl, wrapped so it is correct. Each cross-checks the other in the
tests. A backend deals in opaque key handles, DER signatures and parsed ciphertexts; PEM of
public keys, key ids, Z values and ciphertext byte orders live above it.

The choice: an explicit ``backend=`` argument (a backend or its name), else the
``PORTGW_CRYPTO_BACKEND`` environment variable, else ``fast``. ``fast`` falls back to
``reference`` where libcrypto 3 cannot be loaded, and says so in the log. Each backend object
is created, and logged, once per process.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Final, Protocol

import structlog

from ._libcrypto import OpenSSLBackend
from ._reference import ReferenceBackend
from ._sm2codec import SM2Ciphertext
from .errors import BackendUnavailable

BACKEND_ENV_VAR: Final = "PORTGW_CRYPTO_BACKEND"
FAST: Final = "fast"
REFERENCE: Final = "reference"
BACKEND_NAMES: Final = (FAST, REFERENCE)

_log = structlog.get_logger(__name__)


class KeyHandle(Protocol):
    """Opaque key object owned by one backend; only that backend looks inside."""


class CryptoBackend(Protocol):
    name: str

    # SM3 / SM4
    def sm3(self, data: bytes) -> bytes: ...

    def hmac_sm3(self, key: bytes, data: bytes) -> bytes: ...

    def sm4_block_encryptor(self, key: bytes) -> Callable[[bytes], bytes]: ...

    def sm4_cbc_encrypt(self, key: bytes, iv: bytes, plaintext: bytes) -> bytes: ...

    def sm4_cbc_decrypt(self, key: bytes, iv: bytes, ciphertext: bytes) -> bytes: ...

    def sm4_gcm_encrypt(
        self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b""
    ) -> bytes: ...

    def sm4_gcm_decrypt(self, key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes: ...

    # SM2 keys
    def generate_private_key(self) -> KeyHandle: ...

    def load_private_key_pem(self, pem: bytes, password: bytes | None) -> KeyHandle: ...

    def private_key_to_pem(self, key: KeyHandle, password: bytes | None) -> bytes: ...

    def public_key_der(self, key: KeyHandle) -> bytes:
        """SPKI DER of the public half of ``key`` (a private or a public handle)."""
        ...

    def load_public_key_der(self, der: bytes) -> KeyHandle: ...

    # SM2 signatures and encryption
    def sign(self, key: KeyHandle, data: bytes, user_id: bytes) -> bytes:
        """DER-encoded SM2 signature over SM3(Z(user_id) || data)."""
        ...

    def verify(self, key: KeyHandle, signature: bytes, data: bytes, user_id: bytes) -> bool:
        """True only for a valid signature; any malformed input is simply False."""
        ...

    def encrypt(self, key: KeyHandle, plaintext: bytes) -> SM2Ciphertext: ...

    def decrypt(self, key: KeyHandle, ciphertext: SM2Ciphertext) -> bytes:
        """DecryptionFailed for a wrong key or a tampered or malformed ciphertext."""
        ...


def default_backend() -> CryptoBackend:
    """The backend named by PORTGW_CRYPTO_BACKEND, else ``fast``; read on every call."""
    return get_backend(os.environ.get(BACKEND_ENV_VAR, "").strip() or FAST)


def get_backend(name: str) -> CryptoBackend:
    """The process's backend called ``name`` (``fast`` or ``reference``)."""
    normalized = name.strip().lower()
    if normalized not in BACKEND_NAMES:
        raise ValueError(
            f"unknown crypto backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}"
        )
    return _create(normalized)


def resolve_backend(backend: CryptoBackend | str | None) -> CryptoBackend:
    if backend is None:
        return default_backend()
    if isinstance(backend, str):
        return get_backend(backend)
    return backend


@functools.cache
def _create(name: str) -> CryptoBackend:
    if name == REFERENCE:
        _log.info("crypto_backend_selected", backend=REFERENCE, requested=name)
        return ReferenceBackend()
    try:
        fast = OpenSSLBackend()
    except BackendUnavailable as exc:
        _log.warning(
            "crypto_backend_fallback",
            requested=FAST,
            backend=REFERENCE,
            reason=exc.message,
            hint="SM2 runs in pure Python (about 100 signatures/s); install OpenSSL 3",
        )
        return ReferenceBackend()
    _log.info("crypto_backend_selected", backend=FAST, libcrypto=fast.library_version)
    return fast
