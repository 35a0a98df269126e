"""X.509 certificates and revocation lists as China E-Port uses them (docs/eport-research.md
§3): SM2 certificates, and the legacy RSA ones (whose keys only verify rsa-sha1 XML
signatures, crypto/rsa_keys.py).

libcrypto reads the fields (serial, names, validity, public key); the signatures of
certificates and CRLs are checked here over the exact TBS bytes received, with the issuer's
key: SM2-with-SM3 and the GM/T 0009 user ID ``1234567812345678`` given explicitly (OpenSSL
3.0 would verify with an empty ID unless one is set on each object, and X509_CRL has no
setter for it), or sha256WithRSA / sha1WithRSA for an RSA issuer.

Certificates carry personal data (names, private extensions under 1.3.6.1.4.1.5315.100): no
error text or log line here names a subject; a certificate is named by its serial (KeyName)
and SM3 fingerprint, and `repr` shows only those.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Self

from cryptography.hazmat.primitives import hashes

from . import _der
from ._pem import pem_blocks, pem_encode
from ._x509lib import issued, read_certificate, read_crl
from .errors import CertificateRefused, CryptoError
from .rsa_keys import RSA_KEY_TOO_SHORT, RsaPublicKey
from .sm2 import DEFAULT_SM2_ID, SM2PublicKey
from .sm3 import sm3_hex

SM2_WITH_SM3 = "1.2.156.10197.1.501"
SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
SHA1_WITH_RSA = "1.2.840.113549.1.1.5"
# What an RSA issuer may sign a certificate or CRL with (the E-Port's RSA CA signs sha1).
_RSA_SIGNATURE_DIGESTS: Mapping[str, Callable[[], hashes.HashAlgorithm]] = MappingProxyType({
    SHA256_WITH_RSA: hashes.SHA256, SHA1_WITH_RSA: hashes.SHA1,
})  # fmt: skip
_SIGNATURE_RULE = ("SM2-with-SM3 by an SM2 issuer, sha256WithRSA or sha1WithRSA by an RSA "
                   "issuer, over the exact TBS bytes")

CertificateKey = SM2PublicKey | RsaPublicKey

CERT_INVALID = "CERT_INVALID"
CERT_UNTRUSTED = "CERT_UNTRUSTED"
CERT_EXPIRED = "CERT_EXPIRED"
CERT_NOT_YET_VALID = "CERT_NOT_YET_VALID"
CERT_REVOKED = "CERT_REVOKED"
CRL_INVALID = "CRL_INVALID"

# The E-Port U-key writes SM2 serials as 16 lowercase hex digits (docs/eport-research.md §2.3).
KEY_NAME_DIGITS = 16
# RFC 5280 §4.1.2.2: a serial has at most 20 octets; a KeyName longer than this names none.
_MAX_KEY_NAME = 64
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_CERTIFICATE_LABEL = "CERTIFICATE"
_CRL_LABEL = "X509 CRL"
_PEM_START = b"-----BEGIN "


def key_name(serial: int) -> str:
    """The serial as E-Port's KeyName: lowercase hex, zero-padded to 16 digits."""
    if serial < 0:
        raise ValueError("a certificate serial is not negative")
    return f"{serial:0{KEY_NAME_DIGITS}x}"


def serial_from_key_name(text: str) -> int:
    """The serial a KeyName names: hex, any case, padded or not (compare serials as integers).
    CertificateRefused (CERT_INVALID) for anything else."""
    value = text.strip()
    if len(value) > _MAX_KEY_NAME or not _HEX.match(value):
        raise CertificateRefused("KeyName must be the certificate serial in hex digits",
                                 code=CERT_INVALID)
    return int(value, 16)


@dataclass(frozen=True, slots=True)
class Certificate:
    """One X.509 certificate with an SM2 or RSA public key. `issuer` and `subject` are RFC
    4514 text (personal data: never log them); `fingerprint` is the lowercase hex SM3 of
    `der`."""

    serial: int
    fingerprint: str
    not_before: datetime
    not_after: datetime
    issuer: str = field(repr=False)
    subject: str = field(repr=False)
    public_key: CertificateKey = field(repr=False)
    is_ca: bool = field(repr=False)
    der: bytes = field(repr=False)
    issuer_name_der: bytes = field(repr=False)
    subject_name_der: bytes = field(repr=False)

    @classmethod
    def from_der(cls, der: bytes) -> Self:
        """CertificateRefused (CERT_INVALID) for bytes that are not one DER certificate with
        an SM2 or RSA public key."""
        der = bytes(der)
        try:
            fields = read_certificate(der)
        except ValueError as exc:
            raise CertificateRefused(f"certificate: {exc}", code=CERT_INVALID) from None
        return cls(serial=fields.serial, fingerprint=sm3_hex(der),
                   not_before=fields.not_before, not_after=fields.not_after,
                   issuer=fields.issuer, subject=fields.subject,
                   public_key=_certificate_key(fields.spki_der),
                   is_ca=fields.is_ca, der=der, issuer_name_der=fields.issuer_der,
                   subject_name_der=fields.subject_der)

    @classmethod
    def from_pem(cls, pem: bytes) -> Self:
        """The first CERTIFICATE block of `pem`."""
        return cls.from_der(_der_blocks(pem, _CERTIFICATE_LABEL)[0])

    def to_pem(self) -> bytes:
        return pem_encode(self.der, _CERTIFICATE_LABEL)

    @property
    def key_name(self) -> str:
        return key_name(self.serial)

    def describe(self) -> str:
        """How messages name this certificate: serial and fingerprint, never the subject."""
        return f"certificate {self.key_name} (SM3 {self.fingerprint[:16]}…)"

    def verify_issued_by(self, issuer: Certificate) -> None:
        """CertificateRefused unless `issuer`, a CA, issued this certificate (names, key
        identifiers, key usage) and its key verifies this certificate's signature:
        CERT_UNTRUSTED when `issuer` is not its issuer, CERT_INVALID when the signature
        does not verify (the certificate was changed after it was signed)."""
        if not issuer.is_ca or not issued(issuer.der, self.der):
            raise CertificateRefused(f"{self.describe()} is not issued by the CA "
                                     f"{issuer.describe()}", code=CERT_UNTRUSTED)
        if not _signature_verifies(self.der, issuer.public_key):
            raise CertificateRefused(
                f"{self.describe()}: its signature does not verify with the key of its "
                f"issuer {issuer.describe()}; it must be {_SIGNATURE_RULE}",
                code=CERT_INVALID)

    def require_rsa_bits(self, minimum: int) -> None:
        """CertificateRefused (RSA_KEY_TOO_SHORT) when this certificate's key is RSA and
        shorter than `minimum` bits; an SM2 key has its one size."""
        if isinstance(self.public_key, RsaPublicKey) and self.public_key.bits < minimum:
            raise CertificateRefused(
                f"{self.describe()}: its RSA key has {self.public_key.bits} bits; keys under "
                f"{minimum} bits are refused (the keyring's 'rsa_min_bits')",
                code=RSA_KEY_TOO_SHORT)


@dataclass(frozen=True, slots=True)
class RevocationList:
    """One X.509 CRL: the serials its issuer revoked, each with its revocation time."""

    this_update: datetime
    next_update: datetime | None
    revoked: Mapping[int, datetime] = field(repr=False)
    issuer: str = field(repr=False)
    issuer_name_der: bytes = field(repr=False)
    der: bytes = field(repr=False)

    @classmethod
    def from_der(cls, der: bytes) -> Self:
        der = bytes(der)
        try:
            fields = read_crl(der)
        except ValueError as exc:
            raise CertificateRefused(f"CRL: {exc}", code=CRL_INVALID) from None
        revoked: dict[int, datetime] = {}
        for serial, at in fields.revoked:
            revoked[serial] = min(at, revoked.get(serial, at))
        return cls(this_update=fields.this_update, next_update=fields.next_update,
                   revoked=MappingProxyType(revoked), issuer=fields.issuer,
                   issuer_name_der=fields.issuer_der, der=der)

    def revocation_time(self, serial: int) -> datetime | None:
        return self.revoked.get(serial)

    def is_issued_by(self, issuer: Certificate) -> bool:
        """Whether `issuer`, a CA, is this CRL's issuer by name and its key verifies the CRL's
        signature."""
        return (issuer.is_ca and issuer.subject_name_der == self.issuer_name_der
                and _signature_verifies(self.der, issuer.public_key))


class TrustStore:
    """The CA certificates trusted to issue keyring certificates, and the CRLs they signed.
    Each CA issues certificates directly (list an intermediate CA itself to trust what it
    issues). A CRL that no trusted CA signed is refused (CRL_INVALID)."""

    __slots__ = ("_anchors", "_crls")

    def __init__(self, anchors: Iterable[Certificate] = (),
                 crls: Iterable[RevocationList] = ()) -> None:
        self._anchors = tuple(anchors)
        self._crls = tuple((crl, self._signer_of(crl)) for crl in crls)

    @property
    def anchors(self) -> tuple[Certificate, ...]:
        return self._anchors

    def issuer_of(self, certificate: Certificate) -> Certificate:
        """The trusted CA that issued `certificate`; CertificateRefused (CERT_UNTRUSTED)
        if none did, CERT_INVALID if its signature does not verify with its issuer's key."""
        refusals: list[CertificateRefused] = []
        for anchor in self._anchors:
            if anchor.subject_name_der != certificate.issuer_name_der:
                continue
            try:
                certificate.verify_issued_by(anchor)
                return anchor
            except CertificateRefused as exc:
                refusals.append(exc)
        if refusals:
            # A CA that issued it but whose signature fails says more than a namesake.
            raise min(refusals, key=lambda exc: exc.code != CERT_INVALID)
        raise CertificateRefused(f"{certificate.describe()} is not issued by a trusted CA "
                                 "(the keyring's 'trust' list)", code=CERT_UNTRUSTED)

    def revoked_at(self, certificate: Certificate, issuer: Certificate) -> datetime | None:
        """The earliest time a CRL of `issuer` revoked `certificate`; None if none did."""
        times = [crl.revocation_time(certificate.serial)
                 for crl, signer in self._crls if signer == issuer]
        return min((at for at in times if at is not None), default=None)

    def _signer_of(self, crl: RevocationList) -> Certificate:
        for anchor in self._anchors:
            if crl.is_issued_by(anchor):
                return anchor
        raise CertificateRefused("CRL: no trusted CA (the keyring's 'trust' list) has its "
                                 f"issuer name and a key that verifies its signature "
                                 f"({_SIGNATURE_RULE})", code=CRL_INVALID)


def certificates_from_bytes(data: bytes) -> tuple[Certificate, ...]:
    """Every certificate of a PEM file (one or more CERTIFICATE blocks) or one DER one."""
    return tuple(Certificate.from_der(der) for der in _der_blocks(data, _CERTIFICATE_LABEL))


def revocation_lists_from_bytes(data: bytes) -> tuple[RevocationList, ...]:
    """Every CRL of a PEM file (one or more X509 CRL blocks) or one DER one."""
    return tuple(RevocationList.from_der(der) for der in _der_blocks(data, _CRL_LABEL))


def _der_blocks(data: bytes, label: str) -> list[bytes]:
    if _PEM_START not in data:
        return [data]
    try:
        return pem_blocks(data, label)
    except ValueError as exc:
        code = CRL_INVALID if label == _CRL_LABEL else CERT_INVALID
        raise CertificateRefused(str(exc), code=code) from None


def _certificate_key(spki_der: bytes) -> CertificateKey:
    """The certificate's key: SM2 (tried first, the usual case), else RSA."""
    try:
        return SM2PublicKey.from_der(spki_der)
    except CryptoError:
        pass
    try:
        return RsaPublicKey.from_der(spki_der)
    except CryptoError:
        raise CertificateRefused("certificate: subjectPublicKeyInfo must be an SM2 or RSA "
                                 "public key", code=CERT_INVALID) from None


def _signature_verifies(der: bytes, key: CertificateKey) -> bool:
    """Whether `der`, a certificate or CRL (SEQUENCE { tbs, algorithm, BIT STRING }), carries
    a signature by `key` over its TBS bytes as received: SM2-with-SM3 (no parameters) by an
    SM2 key, sha256WithRSA or sha1WithRSA (NULL or no parameters) by an RSA key. The
    algorithm must be the same inside the TBS (what was signed) as outside."""
    try:
        tbs, algorithm, signature = _der.read_children(_der.read_single(der, _der.SEQUENCE))
        algorithm_der = _der.tlv(algorithm.tag, algorithm.body)
        signed_algorithm = next(child for child in _der.read_children(tbs.body)
                                if child.tag == _der.SEQUENCE)
        identifier = _der.read_children(_der.expect(algorithm, _der.SEQUENCE))
        oid = _der.read_oid(_der.expect(identifier[0], _der.OID))
        value = _der.read_bit_string(_der.expect(signature, _der.BIT_STRING))
    except (ValueError, StopIteration, IndexError):
        return False
    if (tbs.tag != _der.SEQUENCE
            or _der.tlv(signed_algorithm.tag, signed_algorithm.body) != algorithm_der):
        return False
    signed = _der.tlv(tbs.tag, tbs.body)
    if isinstance(key, RsaPublicKey):
        digest = _RSA_SIGNATURE_DIGESTS.get(oid)
        return (digest is not None and _null_or_no_parameters(identifier[1:])
                and key.verifies(value, signed, digest()))
    if oid != SM2_WITH_SM3 or len(identifier) != 1:
        return False
    try:
        key.verify(value, signed, user_id=DEFAULT_SM2_ID)
    except CryptoError:
        return False
    return True


def _null_or_no_parameters(parameters: list[_der.Element]) -> bool:
    return not parameters or (len(parameters) == 1 and parameters[0].tag == _der.NULL
                              and not parameters[0].body)
