"""SM2 keys, signatures and encryption (GB/T 32918; DER signatures over SM3 with Z(user_id);
ciphertexts C1C3C2 by default, C1C2C3 or GM/T 0009 DER on request)."""

from __future__ import annotations

from typing import Self

import structlog

from ._backend import CryptoBackend, KeyHandle, resolve_backend
from ._keyfile import spki_der, spki_point
from ._pem import pem_decode, pem_encode
from ._sm2codec import CiphertextOrder, format_ciphertext, parse_ciphertext
from ._sm2math import SM2_CURVE, z_value
from .errors import DecryptionFailed, KeyInvalid, SignatureInvalid
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


def _checked_plaintext(plaintext: bytes | bytearray | memoryview) -> bytes:
    data = _as_bytes(plaintext, "plaintext")
    if not data:
        # GB/T 32918.4 needs klen > 0, and OpenSSL 3.0 refuses an empty message.
        raise ValueError("SM2 cannot encrypt an empty message")
    return data


def _as_bytes(value: bytes | bytearray | memoryview, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


class SM2PublicKey:
    """An SM2 public key; equal and hashed by its SubjectPublicKeyInfo DER."""

    __slots__ = ("_backend", "_der", "_handle", "_key_id")

    def __init__(self, backend: CryptoBackend, handle: KeyHandle) -> None:
        """Internal: use ``from_pem``, ``from_der``, ``from_point`` or ``public_key()``."""
        self._backend = backend
        self._handle = handle
        self._der = backend.public_key_der(handle)
        self._key_id = sm3_hex(self._der)

    @classmethod
    def from_der(cls, der: bytes, *, backend: CryptoBackend | str | None = None) -> Self:
        backend = resolve_backend(backend)
        return cls(backend, backend.load_public_key_der(_as_bytes(der, "der")))

    @classmethod
    def from_point(cls, point: bytes, *, backend: CryptoBackend | str | None = None) -> Self:
        """From the uncompressed point 04 ‖ x ‖ y (65 bytes), as gmssl and HSMs give it."""
        point = _as_bytes(point, "point")
        try:
            SM2_CURVE.decode_point(point)
        except ValueError as exc:
            raise KeyInvalid(f"SM2 public key is invalid: {exc}") from exc
        return cls.from_der(spki_der(point), backend=backend)

    @classmethod
    def from_pem(cls, pem: bytes, *, backend: CryptoBackend | str | None = None) -> Self:
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

    @property
    def point(self) -> bytes:
        """The uncompressed point 04 ‖ x ‖ y."""
        return spki_point(self._der)

    @property
    def backend(self) -> CryptoBackend:
        return self._backend

    def z_value(self, user_id: bytes = DEFAULT_SM2_ID) -> bytes:
        """Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), GB/T 32918.2-2016 §5.5."""
        public = SM2_CURVE.decode_point(self.point)
        return z_value(SM2_CURVE, _checked_user_id(user_id), public, self._backend.sm3)

    def encrypt(
        self,
        plaintext: bytes,
        *,
        order: CiphertextOrder | str = CiphertextOrder.C1C3C2,
    ) -> bytes:
        """SM2 encryption (GB/T 32918.4) to this key, C1 = 04 ‖ x ‖ y uncompressed."""
        order = CiphertextOrder(order)
        ciphertext = self._backend.encrypt(self._handle, _checked_plaintext(plaintext))
        return format_ciphertext(ciphertext, order)

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

    def __init__(self, backend: CryptoBackend, handle: KeyHandle) -> None:
        """Internal: use ``generate`` or ``from_pem``."""
        self._backend = backend
        self._handle = handle
        self._public = SM2PublicKey.from_der(backend.public_key_der(handle), backend=backend)

    @classmethod
    def generate(cls, *, backend: CryptoBackend | str | None = None) -> Self:
        backend = resolve_backend(backend)
        key = cls(backend, backend.generate_private_key())
        _log.debug("sm2_key_generated", key_id=key.public_key().key_id, backend=backend.name)
        return key

    @classmethod
    def from_pem(
        cls,
        pem: bytes,
        password: bytes | None = None,
        *,
        backend: CryptoBackend | str | None = None,
    ) -> Self:
        backend = resolve_backend(backend)
        handle = backend.load_private_key_pem(_as_bytes(pem, "pem"), _checked_password(password))
        return cls(backend, handle)

    def to_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM; encrypted (PBES2, AES-256-CBC) when a password is given."""
        return self._backend.private_key_to_pem(self._handle, _checked_password(password))

    def public_key(self) -> SM2PublicKey:
        return self._public

    @property
    def backend(self) -> CryptoBackend:
        return self._backend

    def sign(self, data: bytes, *, user_id: bytes = DEFAULT_SM2_ID) -> bytes:
        """DER SEQUENCE { r, s } over SM3(Z(user_id) ‖ data), with a fresh random nonce."""
        data = _as_bytes(data, "data")
        return self._backend.sign(self._handle, data, _checked_user_id(user_id))

    def decrypt(
        self,
        ciphertext: bytes,
        *,
        order: CiphertextOrder | str = CiphertextOrder.C1C3C2,
    ) -> bytes:
        """DecryptionFailed for a wrong key, a tampered ciphertext or the wrong ``order``."""
        order = CiphertextOrder(order)
        try:
            parsed = parse_ciphertext(_as_bytes(ciphertext, "ciphertext"), order)
        except ValueError as exc:
            raise DecryptionFailed(f"not an SM2 {order.value} ciphertext: {exc}") from None
        return self._backend.decrypt(self._handle, parsed)

    def __repr__(self) -> str:
        return f"SM2PrivateKey(key_id={self._public.key_id!r})"

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("SM2PrivateKey cannot be pickled; use to_pem(password)")
