"""X.509 certificates and CRLs read by the system's OpenSSL 3 ``libcrypto`` through ctypes.

Only reading happens here: DER in, plain Python values out, every OpenSSL object freed before
returning. Signatures are checked above (x509.py), over the exact bytes received.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ctypes import POINTER, c_char_p, c_int, c_long, c_ulong, c_void_p
from dataclasses import dataclass
from datetime import UTC, datetime

from ._libcrypto import bio_contents, declare, der_of, from_der, load_library, memory_bio

# XN_FLAG_RFC2253 without ASN1_STRFLGS_ESC_MSB: RFC 4514 text, UTF-8 left as UTF-8 (E-Port
# names are Chinese) rather than escaped byte by byte.
_ASN1_STRFLGS_RFC2253_UTF8 = 0x1 | 0x2 | 0x10 | 0x100 | 0x200
_XN_FLAG_RFC4514 = _ASN1_STRFLGS_RFC2253_UTF8 | (1 << 16) | (1 << 20) | (1 << 24)
_X509_V_OK = 0

_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "d2i_X509": (c_void_p, [c_void_p, POINTER(c_void_p), c_long]),
    "X509_free": (None, [c_void_p]),
    "X509_get_serialNumber": (c_void_p, [c_void_p]),
    "X509_get_issuer_name": (c_void_p, [c_void_p]),
    "X509_get_subject_name": (c_void_p, [c_void_p]),
    "X509_get0_notBefore": (c_void_p, [c_void_p]),
    "X509_get0_notAfter": (c_void_p, [c_void_p]),
    "X509_get_X509_PUBKEY": (c_void_p, [c_void_p]),
    "i2d_X509_PUBKEY": (c_int, [c_void_p, POINTER(c_void_p)]),
    "X509_check_ca": (c_int, [c_void_p]),
    "X509_check_issued": (c_int, [c_void_p, c_void_p]),
    "d2i_X509_CRL": (c_void_p, [c_void_p, POINTER(c_void_p), c_long]),
    "X509_CRL_free": (None, [c_void_p]),
    "X509_CRL_get_issuer": (c_void_p, [c_void_p]),
    "X509_CRL_get0_lastUpdate": (c_void_p, [c_void_p]),
    "X509_CRL_get0_nextUpdate": (c_void_p, [c_void_p]),
    "X509_CRL_get_REVOKED": (c_void_p, [c_void_p]),
    "X509_REVOKED_get0_serialNumber": (c_void_p, [c_void_p]),
    "X509_REVOKED_get0_revocationDate": (c_void_p, [c_void_p]),
    "OPENSSL_sk_num": (c_int, [c_void_p]),
    "OPENSSL_sk_value": (c_void_p, [c_void_p, c_int]),
    "X509_NAME_print_ex": (c_int, [c_void_p, c_void_p, c_int, c_ulong]),
    "i2d_X509_NAME": (c_int, [c_void_p, POINTER(c_void_p)]),
    "ASN1_INTEGER_to_BN": (c_void_p, [c_void_p, c_void_p]),
    "BN_is_negative": (c_int, [c_void_p]),
    "BN_num_bits": (c_int, [c_void_p]),
    "BN_bn2bin": (c_int, [c_void_p, c_char_p]),
    "BN_free": (None, [c_void_p]),
    "ASN1_TIME_to_tm": (c_int, [c_void_p, c_void_p]),
}


class _Tm(ctypes.Structure):
    """glibc's struct tm."""

    _fields_ = [("tm_sec", c_int), ("tm_min", c_int), ("tm_hour", c_int), ("tm_mday", c_int),
                ("tm_mon", c_int), ("tm_year", c_int), ("tm_wday", c_int), ("tm_yday", c_int),
                ("tm_isdst", c_int), ("tm_gmtoff", c_long), ("tm_zone", c_char_p)]


@dataclass(frozen=True, slots=True)
class CertificateFields:
    serial: int
    issuer: str
    subject: str
    issuer_der: bytes
    subject_der: bytes
    not_before: datetime
    not_after: datetime
    spki_der: bytes
    is_ca: bool


@dataclass(frozen=True, slots=True)
class CrlFields:
    issuer: str
    issuer_der: bytes
    this_update: datetime
    next_update: datetime | None
    revoked: tuple[tuple[int, datetime], ...]


@functools.cache
def _library() -> ctypes.CDLL:
    lib = load_library()
    declare(lib, _SIGNATURES)
    return lib


def read_certificate(der: bytes) -> CertificateFields:
    """The fields of the one DER certificate `der`; ValueError naming the rule it breaks."""
    lib = _library()
    with _decoded(lib.d2i_X509, lib.X509_free, der, "certificate") as cert:
        return CertificateFields(
            serial=_integer(lib, lib.X509_get_serialNumber(cert), "serialNumber"),
            issuer=_name_text(lib, lib.X509_get_issuer_name(cert)),
            subject=_name_text(lib, lib.X509_get_subject_name(cert)),
            issuer_der=_i2d(lib.i2d_X509_NAME, lib.X509_get_issuer_name(cert), "issuer"),
            subject_der=_i2d(lib.i2d_X509_NAME, lib.X509_get_subject_name(cert), "subject"),
            not_before=_time(lib, lib.X509_get0_notBefore(cert), "notBefore"),
            not_after=_time(lib, lib.X509_get0_notAfter(cert), "notAfter"),
            spki_der=_i2d(lib.i2d_X509_PUBKEY, lib.X509_get_X509_PUBKEY(cert),
                          "subjectPublicKeyInfo"),
            is_ca=lib.X509_check_ca(cert) != 0,
        )


def issued(issuer_der: bytes, subject_der: bytes) -> bool:
    """Whether libcrypto finds the certificate `subject_der` issued by `issuer_der`: names,
    key identifiers and the issuer's key usage agree (X509_check_issued; no signature)."""
    lib = _library()
    with (_decoded(lib.d2i_X509, lib.X509_free, issuer_der, "certificate") as issuer,
          _decoded(lib.d2i_X509, lib.X509_free, subject_der, "certificate") as subject):
        return bool(lib.X509_check_issued(issuer, subject) == _X509_V_OK)


def read_crl(der: bytes) -> CrlFields:
    """The fields of the one DER CRL `der`; ValueError naming the rule it breaks."""
    lib = _library()
    with _decoded(lib.d2i_X509_CRL, lib.X509_CRL_free, der, "CRL") as crl:
        next_update = lib.X509_CRL_get0_nextUpdate(crl)
        return CrlFields(
            issuer=_name_text(lib, lib.X509_CRL_get_issuer(crl)),
            issuer_der=_i2d(lib.i2d_X509_NAME, lib.X509_CRL_get_issuer(crl), "issuer"),
            this_update=_time(lib, lib.X509_CRL_get0_lastUpdate(crl), "thisUpdate"),
            next_update=_time(lib, next_update, "nextUpdate") if next_update else None,
            revoked=tuple(_revoked(lib, lib.X509_CRL_get_REVOKED(crl))),
        )


def _revoked(lib: ctypes.CDLL, stack: int | None) -> Iterator[tuple[int, datetime]]:
    if not stack:
        return
    for index in range(lib.OPENSSL_sk_num(stack)):
        entry = lib.OPENSSL_sk_value(stack, index)
        yield (_integer(lib, lib.X509_REVOKED_get0_serialNumber(entry), "userCertificate"),
               _time(lib, lib.X509_REVOKED_get0_revocationDate(entry), "revocationDate"))


@contextmanager
def _decoded(d2i: Callable[..., int | None], free: Callable[[int], None], der: bytes,
             what: str) -> Iterator[int]:
    ptr, whole = from_der(d2i, der)
    if ptr is None:
        _library().ERR_clear_error()  # what d2i queued must not reach the next operation
        raise ValueError(f"not a DER {what}")
    try:
        if not whole:
            raise ValueError(f"trailing bytes after the DER {what}")
        yield ptr
    finally:
        free(ptr)


def _i2d(i2d: Callable[..., int], ptr: int | None, what: str) -> bytes:
    if not ptr:
        raise ValueError(f"no {what}")
    der = der_of(i2d, ptr)
    if der is None:
        raise ValueError(f"{what} cannot be encoded")
    return der


def _integer(lib: ctypes.CDLL, asn1_integer: int | None, what: str) -> int:
    bignum = lib.ASN1_INTEGER_to_BN(asn1_integer, None) if asn1_integer else None
    if not bignum:
        raise ValueError(f"{what} is not a readable INTEGER")
    try:
        if lib.BN_is_negative(bignum):
            raise ValueError(f"{what} must not be negative")
        buf = ctypes.create_string_buffer((lib.BN_num_bits(bignum) + 7) // 8)
        written = lib.BN_bn2bin(bignum, buf)
        return int.from_bytes(buf.raw[:written], "big")
    finally:
        lib.BN_free(bignum)


def _time(lib: ctypes.CDLL, asn1_time: int | None, what: str) -> datetime:
    tm = _Tm()
    if not asn1_time or lib.ASN1_TIME_to_tm(asn1_time, ctypes.byref(tm)) != 1:
        raise ValueError(f"{what} is not a valid time")
    return datetime(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec, tzinfo=UTC)


def _name_text(lib: ctypes.CDLL, name: int | None) -> str:
    if not name:
        raise ValueError("no name")
    with memory_bio(lib) as bio:
        if lib.X509_NAME_print_ex(bio, name, 0, _XN_FLAG_RFC4514) < 0:
            raise ValueError("name cannot be printed")
        return (bio_contents(lib, bio) or b"").decode("utf-8", "replace")
