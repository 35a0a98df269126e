"""What an interchange is, told from its bytes without reading it whole: whether the content
is UN/EDIFACT at all, and the message types (UNH S009 0065) it holds, for format detection
(adapters.detect). The adapter then reads the interchange strictly."""

from __future__ import annotations

import re

from .errors import EdifactError
from .tokens import (
    DEFAULT_LIMITS,
    UTF8_BOM,
    Limits,
    interchange_error,
    service_string_advice,
    strip_leading,
    syntax_identifier,
)

_HEAD = 4096  # bytes looked at to tell what the content is


def starts_as_edifact(data: bytes) -> bool:
    """UNA or UNB first, after a UTF-8 byte order mark and spaces or line breaks."""
    return strip_leading(data[:_HEAD]).startswith((b"UNA", b"UNB"))


def starts_as_text(data: bytes) -> bool:
    """The first character (after a UTF-8 BOM and white space) is printable ASCII other than
    "<": JSON, CSV, EDIFACT, X12, plain text; never XML in any encoding the gateway reads."""
    head = data[:_HEAD]
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM):]
    head = head.lstrip(b" \t\r\n")
    return bool(head) and 0x20 < head[0] < 0x7F and head[0] != ord("<")


def message_types(data: bytes, limits: Limits = DEFAULT_LIMITS) -> frozenset[str]:
    """The message types of the UNH segments in an interchange; EdifactError when its UNA or
    UNB cannot be read, or it holds no message."""
    body, terminator, element = _separated(data, limits)
    unh = re.compile(terminator + rb"[ \t\r\n]*UNH" + element + rb"[^" + element + terminator
                     + rb"]*" + element + rb"([A-Z0-9]{1,6})")
    found = frozenset(match.decode("ascii") for match in unh.findall(body))
    if not found:
        raise no_message()
    return found


def document_names(data: bytes, limits: Limits = DEFAULT_LIMITS) -> frozenset[str]:
    """The document name codes (BGM C002 1001) of the messages in an interchange: what tells
    apart the adapters of one message type (a PAXLST crew list, 250, from a passenger list,
    745). EdifactError when its UNA or UNB cannot be read."""
    body, terminator, element = _separated(data, limits)
    bgm = re.compile(terminator + rb"[ \t\r\n]*BGM" + element + rb"([A-Z0-9]{1,3})(?![A-Z0-9])")
    return frozenset(match.decode("ascii") for match in bgm.findall(body))


def _separated(data: bytes, limits: Limits) -> tuple[bytes, bytes, bytes]:
    """The interchange after UNA, and its segment terminator and data element separator as
    regular expressions."""
    if len(data) > limits.max_bytes:
        raise interchange_error("the interchange is larger than the size limit",
                                "EDI_TOO_LARGE", 18)
    separators, body, _ = service_string_advice(strip_leading(data))
    syntax_identifier(body, separators)
    return (body, re.escape(separators.terminator.encode("latin-1")),
            re.escape(separators.element.encode("latin-1")))


def no_message() -> EdifactError:
    return interchange_error("the interchange holds no message", "EDI_NO_MESSAGE", 32)
