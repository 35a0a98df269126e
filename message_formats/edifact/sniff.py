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
    if len(data) > limits.max_bytes:
        raise interchange_error("the interchange is larger than the size limit",
                                "EDI_TOO_LARGE", 18)
    separators, body, _ = service_string_advice(strip_leading(data))
    syntax_identifier(body, separators)
    terminator = re.escape(separators.terminator.encode("latin-1"))
    element = re.escape(separators.element.encode("latin-1"))
    unh = re.compile(terminator + rb"[ \t\r\n]*UNH" + element + rb"[^" + element + terminator
                     + rb"]*" + element + rb"([A-Z0-9]{1,6})")
    found = frozenset(match.decode("ascii") for match in unh.findall(body))
    if not found:
        raise no_message()
    return found


def no_message() -> EdifactError:
    return interchange_error("the interchange holds no message", "EDI_NO_MESSAGE", 32)
