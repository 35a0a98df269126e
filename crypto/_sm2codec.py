"""Wire forms of SM2 signatures and ciphertexts, and the conversions between them.

Signatures are DER SEQUENCE { r, s } (GB/T 35276 / GM/T 0009) at every boundary; the raw
r ‖ s form exists only for tools that want it. Ciphertexts are C1 ‖ C3 ‖ C2 (GB/T 32918.4-2016,
GM/T 0009), the pre-2016 C1 ‖ C2 ‖ C3, or the GM/T 0009 SM2Cipher DER that OpenSSL writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from . import _der as der
from ._sm2math import SM2_CURVE, Curve

DIGEST_SIZE = 32  # C3 is an SM3 digest


class CiphertextOrder(StrEnum):
    C1C3C2 = "C1C3C2"
    C1C2C3 = "C1C2C3"
    ASN1 = "ASN1"


@dataclass(frozen=True, slots=True)
class SM2Ciphertext:
    """C1 = 04 ‖ x ‖ y (the ephemeral point), C3 = SM3(x2 ‖ M ‖ y2), C2 = M ⊕ KDF(x2 ‖ y2)."""

    c1: bytes
    c3: bytes
    c2: bytes


# -- signatures --------------------------------------------------------------------------------


def encode_signature(r: int, s: int) -> bytes:
    return der.sequence(der.integer(r), der.integer(s))


def decode_signature(signature: bytes) -> tuple[int, int]:
    """(r, s) of a strict DER signature; ValueError for any other encoding."""
    parts = der.read_children(der.read_single(signature, der.SEQUENCE))
    if len(parts) != 2:
        raise ValueError("an SM2 signature is a SEQUENCE of two INTEGERs")
    r, s = (der.read_integer(der.expect(part, der.INTEGER)) for part in parts)
    return r, s


def signature_to_raw(signature: bytes, curve: Curve = SM2_CURVE) -> bytes:
    r, s = decode_signature(signature)
    if not (0 < r < curve.n and 0 < s < curve.n):
        raise ValueError("r or s is out of range [1, n-1]")
    return r.to_bytes(curve.size, "big") + s.to_bytes(curve.size, "big")


def signature_from_raw(raw: bytes, curve: Curve = SM2_CURVE) -> bytes:
    if len(raw) != 2 * curve.size:
        raise ValueError(f"a raw SM2 signature is exactly {2 * curve.size} bytes (r ‖ s)")
    r = int.from_bytes(raw[: curve.size], "big")
    s = int.from_bytes(raw[curve.size :], "big")
    if not (0 < r < curve.n and 0 < s < curve.n):
        raise ValueError("r or s is out of range [1, n-1]")
    return encode_signature(r, s)


# -- ciphertexts -------------------------------------------------------------------------------


def parse_ciphertext(
    data: bytes, order: CiphertextOrder, curve: Curve = SM2_CURVE
) -> SM2Ciphertext:
    """Split ``data``; C1 must be an uncompressed point on the curve. ValueError otherwise."""
    if order is CiphertextOrder.ASN1:
        return _parse_asn1(data, curve)
    point_size = 1 + 2 * curve.size
    if len(data) <= point_size + DIGEST_SIZE:
        raise ValueError("SM2 ciphertext is too short")
    c1, rest = data[:point_size], data[point_size:]
    curve.decode_point(c1)
    if order is CiphertextOrder.C1C3C2:
        return SM2Ciphertext(c1, rest[:DIGEST_SIZE], rest[DIGEST_SIZE:])
    return SM2Ciphertext(c1, rest[-DIGEST_SIZE:], rest[:-DIGEST_SIZE])


def format_ciphertext(
    ciphertext: SM2Ciphertext, order: CiphertextOrder, curve: Curve = SM2_CURVE
) -> bytes:
    if order is CiphertextOrder.C1C3C2:
        return ciphertext.c1 + ciphertext.c3 + ciphertext.c2
    if order is CiphertextOrder.C1C2C3:
        return ciphertext.c1 + ciphertext.c2 + ciphertext.c3
    size = curve.size
    x = int.from_bytes(ciphertext.c1[1 : 1 + size], "big")
    y = int.from_bytes(ciphertext.c1[1 + size :], "big")
    return der.sequence(
        der.integer(x),
        der.integer(y),
        der.octet_string(ciphertext.c3),
        der.octet_string(ciphertext.c2),
    )


def convert_ciphertext(
    data: bytes, source: CiphertextOrder | str, target: CiphertextOrder | str
) -> bytes:
    return format_ciphertext(
        parse_ciphertext(data, CiphertextOrder(source)), CiphertextOrder(target)
    )


def _parse_asn1(data: bytes, curve: Curve) -> SM2Ciphertext:
    parts = der.read_children(der.read_single(data, der.SEQUENCE))
    if len(parts) != 4:
        raise ValueError("SM2Cipher is a SEQUENCE of x, y, hash and ciphertext")
    x = der.read_integer(der.expect(parts[0], der.INTEGER))
    y = der.read_integer(der.expect(parts[1], der.INTEGER))
    c3 = der.expect(parts[2], der.OCTET_STRING)
    c2 = der.expect(parts[3], der.OCTET_STRING)
    if len(c3) != DIGEST_SIZE or not c2:
        raise ValueError("SM2Cipher hash must be 32 bytes and the ciphertext non-empty")
    if not curve.contains((x, y)):
        raise ValueError("SM2Cipher point is not on the SM2 curve")
    return SM2Ciphertext(curve.encode_point((x, y)), c3, c2)
