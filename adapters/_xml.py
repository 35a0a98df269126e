"""Shared by the XML adapters: the adapter base class, rendering (build, hold to the
format's own XSD, serialise), and how messages name a field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

from lxml import etree

from message_formats import FormatError, SafeXmlParser, XsdStore

from .base import ParseResult, RenderError

# What a builder raises when a record does not have the shape its schema promises.
RENDER_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, IndexError)

Builder = Callable[[Mapping[str, Any], int], etree._Element]


def field_path(*steps: str) -> str:
    """How a message names a field: ElementPath steps (`{ns}Name`, `{ns}Name[2]`, `@name`)
    by their local names, joined by "/", as in "Consignment[2]/ContainerNumber[1]".

    Messages of refusals and warnings reach receipts, dead letters, logs and the sealed trail,
    which is never erased: they name the field and the rule broken, and never repeat a value
    of the document (a name, a date of birth, a passport or IMO number, a quantity)."""
    return "/".join(step.rpartition("}")[2] for step in steps)


def document_version(record: Mapping[str, Any]) -> int:
    """The version to write: the event header's, or 1 for a bare record."""
    header = record.get("header")
    return 1 if header is None else int(header["document_version"])


def render_checked(
    xsd: XsdStore, xsd_name: str, label: str, build: Builder, record: Mapping[str, Any]
) -> bytes:
    """Builds the document, then holds it to its own XSD, so that render never emits what
    parse would refuse. UTF-8 with an XML declaration."""
    try:
        root = build(record, document_version(record))
    except RENDER_ERRORS as exc:
        raise RenderError(f"cannot render {label} record: {type(exc).__name__}: {exc}") from None
    try:
        xsd.validate(xsd_name, root)
    except FormatError as exc:
        raise RenderError(f"rendered {label} is not valid: {exc.message}") from None
    # lxml has no type information; with an encoding, tostring gives bytes.
    return cast(bytes, etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                      pretty_print=True))


class XmlAdapter:
    """What the built-in XML adapters share: one XSD, the safe parser, and the shape of parse
    (parse safely, validate against the XSD, `read` the record and check its rules) and of
    render (build, then hold to the XSD). A format names itself and supplies `read`, `build`
    and `business_key`.

    The adapters of one registry share one XML parser, which is not thread-safe."""

    format_id: ClassVar[str]
    document_type: ClassVar[str]
    schema_name: ClassVar[str]
    schema_version: ClassVar[int] = 1
    media_type: ClassVar[str] = "application/xml"
    xsd_name: ClassVar[str]
    label: ClassVar[str]  # how messages name the format, e.g. "FAL 5"

    __slots__ = ("_parser", "_xsd")

    def __init__(
        self, *, xsd_store: XsdStore | None = None, xml_parser: SafeXmlParser | None = None
    ) -> None:
        self._xsd = xsd_store if xsd_store is not None else XsdStore()
        self._parser = xml_parser if xml_parser is not None else SafeXmlParser()
        self._xsd.schema(self.xsd_name)  # compile now rather than on the first document

    def parse(self, data: bytes) -> ParseResult:
        root = self._parser.parse(data)
        self._xsd.validate(self.xsd_name, root)
        record, warnings = self.read(root)
        return ParseResult(
            record=record,
            business_key=self.business_key(record),
            document_version=int(root.get("version", "")),
            warnings=warnings,
        )

    def render(self, record: Mapping[str, Any]) -> bytes:
        return render_checked(self._xsd, self.xsd_name, self.label, self.build, record)

    @staticmethod
    def read(root: etree._Element) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The canonical record of a schema-valid document and its warnings; raises
        RuleViolationError when a business rule fails."""
        raise NotImplementedError

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        raise NotImplementedError

    @staticmethod
    def business_key(record: Mapping[str, Any]) -> str:
        raise NotImplementedError
