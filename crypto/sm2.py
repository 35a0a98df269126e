"""SM2 keys and signatures (GB/T 32918, GB/T 35276 DER signatures over SM3 with Z(user_id))."""

from __future__ import annotations

from typing import Self

import structlog

from ._backend import KeyHandle, SM2Backend, default_backend
from ._pem import pem_decode, pem_encode
from .errors import KeyInvalid, SignatureInvalid
from .sm3 import sm3_hex

DEFAULT_SM2_ID: bytes = b"1234567812345678"

# Z = SM3(ENTL || ID || ...) stores the ID length in bits in two bytes; OpenSSL refuses
# IDs of 8191 bytes and more.
_MAX_USER_ID_LEN = 8190
_PUBLIC_KEY_LABEL = "PUBLIC KEY"

_log = structlog.get_logger(__name__)


def _checked_user_id(user_id: bytes) -> bytes:
    if not isinstance(user_id, bytes):
        raise TypeError(f"user_id must be bytes, not {type(user_id).__name__}")
    if len(user_id) > _MAX_USER_ID_LEN:
        raise ValueError(f"SM2 user_id is longer than {_MAX_USER_ID_LEN} bytes")
    return user_id


def _checked_password(password: bytes | None) -> bytes | None:
    if password is not None and not password:
        raise ValueError("password must not be empty; pass None for an unencrypted key")
    return password


def _as_bytes(value: bytes | bytearray | memoryview, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


class SM2PublicKey:
    """An SM2 public key; equal and hashed by its SubjectPublicKeyInfo DER."""

    __slots__ = ("_backend", "_der", "_handle", "_key_id")

    def __init__(self, backend: SM2Backend, handle: KeyHandle) -> None:
        """Internal: use ``from_pem``, ``from_der`` or ``SM2PrivateKey.public_key``."""
        self._backend = backend
        self._handle = handle
        self._der = backend.public_key_der(handle)
        self._key_id = sm3_hex(self._der)

    @classmethod
    def from_der(cls, der: bytes, *, backend: SM2Backend | None = None) -> Self:
        backend = backend or default_backend()
        return cls(backend, backend.load_public_key_der(_as_bytes(der, "der")))

    @classmethod
    def from_pem(cls, pem: bytes, *, backend: SM2Backend | None = None) -> Self:
        try:
            der = pem_decode(_as_bytes(pem, "pem"), _PUBLIC_KEY_LABEL)
        except ValueError as exc:
            raise KeyInvalid(f"cannot read SM2 public key PEM: {exc}") from exc
        return cls.from_der(der, backend=backend)

    def to_der(self) -> bytes:
        return self._der

    def to_pem(self) -> bytes:
        return pem_encode(self._der, _PUBLIC_KEY_LABEL)

    @property
    def key_id(self) -> str:
        """Lowercase hex SM3 of the SubjectPublicKeyInfo DER."""
        return self._key_id

    def verify(
        self,
        signature: bytes,
        data: bytes,
        *,
        user_id: bytes = DEFAULT_SM2_ID,
    ) -> None:
        user_id = _checked_user_id(user_id)
        signature = _as_bytes(signature, "signature")
        data = _as_bytes(data, "data")
        if not self._backend.verify(self._handle, signature, data, user_id):
            raise SignatureInvalid(f"SM2 signature does not verify with key {self._key_id}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SM2PublicKey):
            return NotImplemented
        return self._der == other._der

    def __hash__(self) -> int:
        return hash(self._der)

    def __repr__(self) -> str:
        return f"SM2PublicKey(key_id={self._key_id!r})"

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class SM2PrivateKey:
    """An SM2 private key. Its repr shows only the key id; the secret never leaves as text
    except through ``to_pem``."""

    __slots__ = ("_backend", "_handle", "_public")

    def __init__(self, backend: SM2Backend, handle: KeyHandle) -> None:
        """Internal: use ``generate`` or ``from_pem``."""
        self._backend = backend
        self._handle = handle
        self._public = SM2PublicKey.from_der(backend.public_key_der(handle), backend=backend)

    @classmethod
    def generate(cls, *, backend: SM2Backend | None = None) -> Self:
        backend = backend or default_backend()
        key = cls(backend, backend.generate_private_key())
        _log.debug("sm2_key_generated", key_id=key.public_key().key_id, backend=backend.name)
        return key

    @classmethod
    def from_pem(
        cls,
        pem: bytes,
        password: bytes | None = None,
        *,
        backend: SM2Backend | None = None,
    ) -> Self:
        backend = backend or default_backend()
        handle = backend.load_private_key_pem(_as_bytes(pem, "pem"), _checked_password(password))
        return cls(backend, handle)

    def to_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM; encrypted (PBES2, AES-256-CBC) when a password is given."""
        return self._backend.private_key_to_pem(self._handle, _checked_password(password))

    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(self, data: bytes, *, user_id: bytes = DEFAULT_SM2_ID) -> bytes:
        data = _as_bytes(data, "data")
        return self._backend.sign(self._handle, data, _checked_user_id(user_id))

    def __repr__(self) -> str:
        return f"SM2PrivateKey(key_id={self._public.key_id!r})"

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("SM2PrivateKey cannot be pickled; use to_pem(password)")
