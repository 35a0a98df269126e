"""Just enough DER (ITU-T X.690) for SM2 signatures, GM/T 0009 ciphertexts and key files.

The reader is strict: definite, minimal lengths; minimal, non-negative INTEGERs; nothing after
the last element. A second, laxer reading of the same bytes would let one signature have
several encodings, so anything else is a ValueError that callers turn into their own error.
"""

from __future__ import annotations

from dataclasses import dataclass

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
SEQUENCE = 0x30
SET = 0x31
IMPLICIT_0 = 0x80  # [0] IMPLICIT of a primitive type
CONTEXT_0 = 0xA0
CONTEXT_1 = 0xA1

_LONG_FORM = 0x80
MAX_OID_BYTES = 64  # the longest OID in use here (GM/T, RFC 5652, PKCS) has 10


@dataclass(frozen=True, slots=True)
class Element:
    tag: int
    body: bytes


# -- writing -----------------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    if length < _LONG_FORM:
        return bytes([length])
    digits = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([_LONG_FORM | len(digits)]) + digits


def tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(body)) + body


def integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative INTEGERs are supported")
    return tlv(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def octet_string(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


def bit_string(value: bytes) -> bytes:
    return tlv(BIT_STRING, b"\x00" + value)


def null() -> bytes:
    return tlv(NULL, b"")


def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray(_base128(40 * arcs[0] + arcs[1]))
    for arc in arcs[2:]:
        body += _base128(arc)
    return tlv(OID, bytes(body))


def _base128(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


# -- reading -----------------------------------------------------------------------------------


def read_element(data: bytes, offset: int = 0) -> tuple[Element, int]:
    """The element starting at ``offset`` and the offset just after it."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER element")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte DER tags are not supported")
    start = offset + 2
    if first < _LONG_FORM:
        length = first
    else:
        count = first & 0x7F
        digits = data[start : start + count]
        if count == 0 or len(digits) != count or digits[0] == 0:
            raise ValueError("bad DER length")
        length = int.from_bytes(digits, "big")
        if length < _LONG_FORM:
            raise ValueError("non-minimal DER length")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("DER element runs past the end of its container")
    return Element(tag, bytes(data[start:end])), end


def read_single(data: bytes, tag: int) -> bytes:
    """Body of ``data``, which must be exactly one element with ``tag``."""
    element, end = read_element(data)
    if end != len(data):
        raise ValueError("trailing bytes after DER element")
    return expect(element, tag)


def read_children(body: bytes) -> list[Element]:
    children: list[Element] = []
    offset = 0
    while offset < len(body):
        element, offset = read_element(body, offset)
        children.append(element)
    return children


def expect(element: Element, tag: int) -> bytes:
    if element.tag != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}, found 0x{element.tag:02x}")
    return element.body


def read_integer(body: bytes) -> int:
    if not body:
        raise ValueError("empty DER INTEGER")
    if body[0] & 0x80:
        raise ValueError("negative DER INTEGER")
    if len(body) > 1 and body[0] == 0 and not body[1] & 0x80:
        raise ValueError("non-minimal DER INTEGER")
    return int.from_bytes(body, "big")


def read_bit_string(body: bytes) -> bytes:
    if not body or body[0] != 0:
        raise ValueError("BIT STRING with unused bits")
    return body[1:]


def read_oid(body: bytes) -> str:
    """The dotted OID; a body longer than any OID the gateway knows is refused before its
    arcs are decoded (an arc of n bytes costs time quadratic in n to build)."""
    if len(body) > MAX_OID_BYTES:
        raise ValueError(f"OBJECT IDENTIFIER longer than {MAX_OID_BYTES} bytes")
    if not body or body[-1] & 0x80:
        raise ValueError("bad OBJECT IDENTIFIER")
    values: list[int] = []
    current = 0
    for index, byte in enumerate(body):
        if current == 0 and byte == 0x80 and (index == 0 or not body[index - 1] & 0x80):
            raise ValueError("non-minimal OBJECT IDENTIFIER arc")
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            values.append(current)
            current = 0
    first = min(values[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, values[0] - 40 * first, *values[1:]])
