"""Errors raised by the format layer; each carries a stable code for receipts and the trail."""

from __future__ import annotations

from typing import Any


class FormatError(Exception):
    code: str = "FORMAT_ERROR"

    def __init__(self, message: str, *, code: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.line = line

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.code}: {self.message}{where}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments are lost by the default exception pickling.
        return (type(self), (self.message,), {"code": self.code, "line": self.line})


class XmlTooLargeError(FormatError):
    code = "XML_TOO_LARGE"


class XmlMalformedError(FormatError):
    code = "XML_MALFORMED"


class XmlEncodingMismatchError(FormatError):
    """The XML declaration names one encoding, the bytes are plainly in another."""

    code = "XML_ENCODING_MISMATCH"


class XmlEncodingInvalidError(FormatError):
    """The bytes cannot be decoded in the declared (or default) encoding."""

    code = "XML_ENCODING_INVALID"


class XmlEncodingUnsupportedError(FormatError):
    """An encoding the gateway does not read: one whose bytes could hide markup from the
    checks made before parsing (UTF-7, EBCDIC, UTF-32, UTF-16 without its byte order mark)."""

    code = "XML_ENCODING_UNSUPPORTED"


class XmlDtdForbiddenError(FormatError):
    code = "XML_DTD_FORBIDDEN"


class XmlExternalReferenceError(FormatError):
    """The document asks for something outside itself: a URI in a processing instruction,
    an XInclude, a schema location. None is ever followed; such a document is refused."""

    code = "XML_EXTERNAL_REFERENCE"


class XmlLimitExceededError(FormatError):
    """The document is within the size limit but beyond what any port document needs (for
    example thousands of attributes on one element)."""

    code = "XML_LIMIT_EXCEEDED"


class XsdUnknownSchemaError(FormatError):
    code = "XSD_UNKNOWN_SCHEMA"


class XsdInvalidError(FormatError):
    code = "XSD_INVALID"


class AvroUnknownSchemaError(FormatError):
    code = "AVRO_UNKNOWN_SCHEMA"


class AvroMalformedError(FormatError):
    code = "AVRO_MALFORMED"


class AvroRecordInvalidError(FormatError):
    code = "AVRO_RECORD_INVALID"


class AvroSchemaLoadError(FormatError):
    code = "AVRO_SCHEMA_LOAD_FAILED"


class XsdSchemaLoadError(FormatError):
    code = "XSD_SCHEMA_LOAD_FAILED"


class SchemaRedefinedError(FormatError):
    """A schema file names a type (or XSD) the gateway already has: the first one would win
    unseen, so the second is refused."""

    code = "SCHEMA_REDEFINED"
