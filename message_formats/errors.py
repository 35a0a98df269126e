"""The coded error base every package's errors share, and the format layer's own errors.

Every refusal carries a stable UPPER_SNAKE ``code`` that reaches receipts, dead letters, the
trail and HTTP problem answers, a ``message`` that names the field and rule (never a value),
and, where known, where: a ``line`` and a ``path``. It lives on the bottom floor so that
every package (crypto included) can derive its own base from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class CodedError(Exception):
    """Base of the errors of every package: FormatError, CryptoError, ContractError,
    AdapterError, GatewayError. Catching it catches a refusal with a code; anything else
    raised where a document is decided is a bug."""

    code: str = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        line: int | None = None,
        path: Path | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.line = line
        self.path = path

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.path}:{self.line or 1}: {self.code}: {self.message}"
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.code}: {self.message}{where}"

    def __reduce__(self) -> tuple[Any, ...]:
        # The default exception pickling calls the class with its positional arguments only,
        # which loses the keyword fields (and fails for a subclass with other required
        # arguments); errors cross the parse worker's process boundary.
        return rebuilt_error, (type(self), self.args, dict(self.__dict__))


def rebuilt_error(cls: type[CodedError], args: tuple[Any, ...],
                  fields: dict[str, Any]) -> CodedError:
    """An unpickled CodedError: made without __init__, its arguments and fields restored."""
    error = cls.__new__(cls, *args)
    error.args = args  # OSError.__new__ leaves them to __init__ in a subclass that has one
    error.__dict__.update(fields)
    return error


class FormatError(CodedError):
    code = "FORMAT_ERROR"


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
