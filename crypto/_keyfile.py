"""SM2 key files in pure Python, for the reference backend: SPKI, PKCS#8, RFC 5915, PBES2.

What is written matches OpenSSL 3 byte for byte where OpenSSL is deterministic (SPKI and
unencrypted PKCS#8), so a key's files and its id do not depend on the backend. Encrypted
PKCS#8 uses PBES2 = PBKDF2-HMAC-SHA256 + AES-256-CBC, OpenSSL's default; reading also takes
the other PBKDF2 PRFs and AES or SM4 in CBC mode, which is what `openssl pkcs8 -v2` offers.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from . import _der as der
from ._pem import pem_encode
from .errors import KeyInvalid

ID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SM2_CURVE_OID = "1.2.156.10197.1.301"
_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_HMAC_WITH_SHA1 = "1.2.840.113549.2.7"
_HMAC_WITH_SHA256 = "1.2.840.113549.2.9"
_AES_256_CBC = "2.16.840.1.101.3.4.1.42"

_PRFS: Mapping[str, Callable[[], hashes.HashAlgorithm]] = MappingProxyType(
    {
        _HMAC_WITH_SHA1: hashes.SHA1,
        "1.2.840.113549.2.8": hashes.SHA224,
        _HMAC_WITH_SHA256: hashes.SHA256,
        "1.2.840.113549.2.10": hashes.SHA384,
        "1.2.840.113549.2.11": hashes.SHA512,
    }
)
# cipher OID -> (algorithm factory, key length)
_CIPHERS: Mapping[str, tuple[Callable[[bytes], BlockCipherAlgorithm], int]] = (
    MappingProxyType(
        {
            "2.16.840.1.101.3.4.1.2": (algorithms.AES, 16),
            "2.16.840.1.101.3.4.1.22": (algorithms.AES, 24),
            _AES_256_CBC: (algorithms.AES, 32),
            "1.2.156.10197.1.104.2": (algorithms.SM4, 16),
        }
    )
)
# OpenSSL's PKCS5_DEFAULT_ITER, so both backends write equally strong files.
_WRITE_ITERATIONS = 2048
_MAX_ITERATIONS = 10_000_000
_SALT_SIZE = 16
_BLOCK = 16

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PKCS8 = b"PRIVATE KEY"
_ENCRYPTED_PKCS8 = b"ENCRYPTED PRIVATE KEY"
_TRADITIONAL = (b"EC PRIVATE KEY", b"SM2 PRIVATE KEY")


@dataclass(frozen=True, slots=True, repr=False)
class PrivateKeyFields:
    """What a private key file holds: the scalar and, when the file has it, the public point."""

    scalar: int
    point: bytes | None


# -- public keys -------------------------------------------------------------------------------


def _sm2_algorithm() -> bytes:
    return der.sequence(der.oid(ID_EC_PUBLIC_KEY), der.oid(SM2_CURVE_OID))


def spki_der(point: bytes) -> bytes:
    return der.sequence(_sm2_algorithm(), der.bit_string(point))


def spki_point(data: bytes) -> bytes:
    """The encoded point of an SM2 SubjectPublicKeyInfo; KeyInvalid otherwise."""
    try:
        algorithm, key = der.read_children(der.read_single(data, der.SEQUENCE))
        _require_sm2_algorithm(der.expect(algorithm, der.SEQUENCE), "public key")
        return der.read_bit_string(der.expect(key, der.BIT_STRING))
    except (ValueError, IndexError) as exc:
        raise KeyInvalid(f"cannot decode SM2 SubjectPublicKeyInfo DER: {exc}") from exc


def _require_sm2_algorithm(body: bytes, what: str) -> None:
    """id-ecPublicKey with the SM2 curve, or the bare SM2 OID some Chinese tools write."""
    parts = der.read_children(body)
    oids = [der.read_oid(der.expect(part, der.OID)) for part in parts]
    if oids not in ([ID_EC_PUBLIC_KEY, SM2_CURVE_OID], [SM2_CURVE_OID]):
        raise KeyInvalid(f"{what} is not an SM2 key")


# -- private keys: writing -----------------------------------------------------------------------


def private_key_pem(fields: PrivateKeyFields, size: int, password: bytes | None) -> bytes:
    document = _pkcs8_der(fields, size)
    if password is None:
        return pem_encode(document, _PKCS8.decode())
    return pem_encode(_encrypt_pkcs8(document, password), _ENCRYPTED_PKCS8.decode())


def _pkcs8_der(fields: PrivateKeyFields, size: int) -> bytes:
    inner = [der.integer(1), der.octet_string(fields.scalar.to_bytes(size, "big"))]
    if fields.point is not None:
        inner.append(der.tlv(der.CONTEXT_1, der.bit_string(fields.point)))
    return der.sequence(der.integer(0), _sm2_algorithm(), der.octet_string(der.sequence(*inner)))


def _encrypt_pkcs8(document: bytes, password: bytes) -> bytes:
    salt, iv = secrets.token_bytes(_SALT_SIZE), secrets.token_bytes(_BLOCK)
    key = _pbkdf2(password, salt, _WRITE_ITERATIONS, 32, hashes.SHA256())
    padding = _BLOCK - len(document) % _BLOCK
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(document + bytes([padding]) * padding) + encryptor.finalize()
    kdf = der.sequence(
        der.oid(_PBKDF2),
        der.sequence(
            der.octet_string(salt),
            der.integer(_WRITE_ITERATIONS),
            der.sequence(der.oid(_HMAC_WITH_SHA256), der.null()),
        ),
    )
    scheme = der.sequence(der.oid(_AES_256_CBC), der.octet_string(iv))
    algorithm = der.sequence(der.oid(_PBES2), der.sequence(kdf, scheme))
    return der.sequence(algorithm, der.octet_string(encrypted))


# -- private keys: reading -----------------------------------------------------------------------


def read_private_key_pem(pem: bytes, password: bytes | None) -> PrivateKeyFields:
    label, body = _first_private_key_block(pem)
    if b"Proc-Type:" in body:
        raise KeyInvalid(
            "legacy PEM encryption (Proc-Type) is not supported; "
            "convert the key with `openssl pkcs8 -topk8`"
        )
    document = _base64(body)
    try:
        if label == _ENCRYPTED_PKCS8:
            return _read_pkcs8(_decrypt_pkcs8(document, password))
        if label == _PKCS8:
            return _read_pkcs8(document)
        return _read_ec_private_key(document, traditional=True)
    except (ValueError, IndexError) as exc:
        raise KeyInvalid(f"cannot read SM2 private key PEM: {exc}") from exc


def _first_private_key_block(pem: bytes) -> tuple[bytes, bytes]:
    for match in _PEM_BLOCK.finditer(pem):
        label = match.group(1)
        if label in (_PKCS8, _ENCRYPTED_PKCS8, *_TRADITIONAL):
            return label, match.group(2)
    raise KeyInvalid("cannot read SM2 private key PEM: no private key block found")


def _base64(body: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except binascii.Error as exc:
        raise KeyInvalid(f"cannot read SM2 private key PEM: bad base64: {exc}") from exc


def _read_pkcs8(document: bytes) -> PrivateKeyFields:
    parts = der.read_children(der.read_single(document, der.SEQUENCE))
    if len(parts) < 3 or der.read_integer(der.expect(parts[0], der.INTEGER)) not in (0, 1):
        raise ValueError("not a PKCS#8 PrivateKeyInfo")
    _require_sm2_algorithm(der.expect(parts[1], der.SEQUENCE), "private key")
    return _read_ec_private_key(der.expect(parts[2], der.OCTET_STRING), traditional=False)


def _read_ec_private_key(document: bytes, *, traditional: bool) -> PrivateKeyFields:
    """RFC 5915 ECPrivateKey; the traditional PEM form must name the SM2 curve itself."""
    parts = der.read_children(der.read_single(document, der.SEQUENCE))
    if len(parts) < 2 or der.read_integer(der.expect(parts[0], der.INTEGER)) != 1:
        raise ValueError("not an RFC 5915 ECPrivateKey")
    scalar = der.expect(parts[1], der.OCTET_STRING)
    if not 1 <= len(scalar) <= 32:
        raise ValueError("SM2 private scalar must be 1 to 32 bytes")
    optional = {part.tag: part.body for part in parts[2:]}
    curve = optional.get(der.CONTEXT_0)
    if curve is not None and der.read_oid(der.read_single(curve, der.OID)) != SM2_CURVE_OID:
        raise KeyInvalid("private key is not an SM2 key")
    if traditional and curve is None:
        raise KeyInvalid("EC private key names no curve; cannot tell that it is SM2")
    public = optional.get(der.CONTEXT_1)
    point = der.read_bit_string(der.read_single(public, der.BIT_STRING)) if public else None
    return PrivateKeyFields(int.from_bytes(scalar, "big"), point)


def _decrypt_pkcs8(document: bytes, password: bytes | None) -> bytes:
    if password is None:
        raise KeyInvalid("the private key is encrypted; a password is needed")
    algorithm, encrypted = der.read_children(der.read_single(document, der.SEQUENCE))
    scheme_oid, params = der.read_children(der.expect(algorithm, der.SEQUENCE))
    if der.read_oid(der.expect(scheme_oid, der.OID)) != _PBES2:
        raise KeyInvalid("unsupported private key encryption (only PBES2 is supported)")
    kdf, scheme = der.read_children(der.expect(params, der.SEQUENCE))
    cipher_oid, iv = der.read_children(der.expect(scheme, der.SEQUENCE))
    cipher_name = der.read_oid(der.expect(cipher_oid, der.OID))
    if cipher_name not in _CIPHERS:
        raise KeyInvalid(f"unsupported PBES2 cipher {cipher_name}")
    factory, key_size = _CIPHERS[cipher_name]
    key = _pbes2_key(der.expect(kdf, der.SEQUENCE), password, key_size)
    data = der.expect(encrypted, der.OCTET_STRING)
    iv_bytes = der.expect(iv, der.OCTET_STRING)
    if len(iv_bytes) != _BLOCK or not data or len(data) % _BLOCK:
        raise ValueError("malformed PBES2 ciphertext")
    decryptor = Cipher(factory(key), modes.CBC(iv_bytes)).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    padding = plain[-1]
    if not 1 <= padding <= _BLOCK or plain[-padding:] != bytes([padding]) * padding:
        raise KeyInvalid("cannot read SM2 private key PEM: bad decrypt (wrong password?)")
    return plain[:-padding]


def _pbes2_key(kdf: bytes, password: bytes, key_size: int) -> bytes:
    kdf_oid, params = der.read_children(kdf)
    if der.read_oid(der.expect(kdf_oid, der.OID)) != _PBKDF2:
        raise KeyInvalid("unsupported PBES2 key derivation (only PBKDF2 is supported)")
    fields = der.read_children(der.expect(params, der.SEQUENCE))
    salt = der.expect(fields[0], der.OCTET_STRING)
    iterations = der.read_integer(der.expect(fields[1], der.INTEGER))
    if not 1 <= iterations <= _MAX_ITERATIONS:
        raise ValueError(f"PBKDF2 iteration count {iterations} out of range")
    prf = _HMAC_WITH_SHA1
    for field in fields[2:]:
        if field.tag == der.INTEGER and der.read_integer(field.body) != key_size:
            raise ValueError("PBKDF2 key length does not match the cipher")
        if field.tag == der.SEQUENCE:
            prf = der.read_oid(der.expect(der.read_children(field.body)[0], der.OID))
    if prf not in _PRFS:
        raise KeyInvalid(f"unsupported PBKDF2 PRF {prf}")
    return _pbkdf2(password, salt, iterations, key_size, _PRFS[prf]())


def _pbkdf2(
    password: bytes, salt: bytes, iterations: int, length: int, prf: hashes.HashAlgorithm
) -> bytes:
    return PBKDF2HMAC(algorithm=prf, length=length, salt=salt, iterations=iterations).derive(
        password
    )
