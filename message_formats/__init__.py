"""Schema files (XSD, Avro) and their loaders: safe XML parsing, compiled XSDs, Avro
single-object encoding; and CodedError, the error base of every package. Imports nothing
else of the project."""

from .avro_schemas import (
    FINGERPRINT_SIZE,
    SINGLE_OBJECT_MAGIC,
    AvroSchemas,
    LoadedSchema,
    WriterSchema,
    avro_fingerprint,
    fingerprint_of_canonical_form,
)
from .errors import (
    AvroMalformedError,
    AvroRecordInvalidError,
    AvroSchemaLoadError,
    AvroUnknownSchemaError,
    CodedError,
    FormatError,
    SchemaRedefinedError,
    XmlDtdForbiddenError,
    XmlEncodingInvalidError,
    XmlEncodingMismatchError,
    XmlEncodingUnsupportedError,
    XmlExternalReferenceError,
    XmlLimitExceededError,
    XmlMalformedError,
    XmlTooLargeError,
    XsdInvalidError,
    XsdSchemaLoadError,
    XsdUnknownSchemaError,
)
from .safe_xml import (
    DEFAULT_MAX_BYTES,
    SafeXmlParser,
    check_before_parsing,
    parse_untrusted_xml,
)
from .xsd_store import XsdStore

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FINGERPRINT_SIZE",
    "SINGLE_OBJECT_MAGIC",
    "AvroMalformedError",
    "AvroRecordInvalidError",
    "AvroSchemaLoadError",
    "AvroSchemas",
    "AvroUnknownSchemaError",
    "CodedError",
    "FormatError",
    "LoadedSchema",
    "SafeXmlParser",
    "SchemaRedefinedError",
    "WriterSchema",
    "XmlDtdForbiddenError",
    "XmlEncodingInvalidError",
    "XmlEncodingMismatchError",
    "XmlEncodingUnsupportedError",
    "XmlExternalReferenceError",
    "XmlLimitExceededError",
    "XmlMalformedError",
    "XmlTooLargeError",
    "XsdInvalidError",
    "XsdSchemaLoadError",
    "XsdStore",
    "XsdUnknownSchemaError",
    "avro_fingerprint",
    "check_before_parsing",
    "fingerprint_of_canonical_form",
    "parse_untrusted_xml",
]
