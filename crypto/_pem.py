"""PEM armour (RFC 7468) in pure Python, so public keys need only DER from a backend."""

from __future__ import annotations

import base64
import binascii
import re

_LINE = 64


def pem_encode(der: bytes, label: str) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + _LINE] for i in range(0, len(body), _LINE)]
    return b"\n".join(
        [f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode(), b""]
    )


def pem_decode(pem: bytes, label: str) -> bytes:
    """Return the DER of the first ``label`` block; ValueError if there is none or it is bad."""
    return pem_blocks(pem, label)[0]


def pem_blocks(pem: bytes, label: str) -> list[bytes]:
    """The DER of every ``label`` block, in order; ValueError if there is none or one is bad."""
    pattern = re.compile(
        rb"-----BEGIN " + label.encode() + rb"-----(.*?)-----END " + label.encode() + rb"-----",
        re.DOTALL,
    )
    blocks = [_base64_body(match.group(1), label) for match in pattern.finditer(pem)]
    if not blocks:
        raise ValueError(f"no '{label}' PEM block found")
    return blocks


def _base64_body(text: bytes, label: str) -> bytes:
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64 in '{label}' PEM block: {exc}") from exc
