"""The adapter toolkit: what every XML adapter needs, the built-in ones and an integrator's
alike (docs/adapters.md).

- `XmlAdapter`, the base class: parse safely, hold to the format's XSD, then the hooks a
  format overrides: `read` (XML tree -> record), `business_key` (record -> key), `check`
  (the business rules -> warnings, or RuleViolationError) and `build` (record -> XML tree);
  render builds, then holds the result to the XSD.
- Reading a schema-valid document: `Children`, a cursor over an element's children in XSD
  order, and readers of tokens, ints, decimals, booleans and instants with their offsets.
- Building a document: `new_root`, `add_text` and its kin, and formatters that refuse a value
  of the wrong type (a render must fail with a code, never write what parse would refuse).
- Naming a field in a message without its value: `field_path`, `nth`, `line_of`, `violation`
  and `ItemLines`.

The readers below rely on the document having been validated against its XSD: they read
children by position and take text the schema has already constrained."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, cast

from lxml import etree

from message_formats import FormatError, SafeXmlParser, XsdStore

from .base import AdapterError, ParseResult, RenderError, RuleViolationError

XML_WHITESPACE = " \t\n\r"
_XML_WHITESPACE_RUN = re.compile(r"[ \t\n\r]+")
_ONE_MINUTE = timedelta(minutes=1)

# What a builder raises when a record does not have the shape its schema promises (lxml
# refuses control characters with ValueError; Decimal.quantize raises InvalidOperation, an
# ArithmeticError).
RENDER_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, IndexError)

Builder = Callable[[Mapping[str, Any], int], etree._Element]


# ---------------------------------------------------------------- the base class


class XmlAdapter:
    """An adapter of one XML format, with one XSD or (`xsd_name` empty) none. `parse` reads
    the bytes with the safe parser, validates them against the XSD when there is one, then
    calls the hooks in this order:

    1. `document_version(root)`: the version the document says it is;
    2. `read(root)`: the canonical record (every field but "header");
    3. `business_key(record)`: taken before the rules run, so that a document a rule refuses
       still has its key (and version) on the error, `AdapterError.business_key`;
    4. `check(record, root)`: raises RuleViolationError on a broken rule, returns warnings.

    `render` calls `build(record, version)` and holds the tree to the XSD, so that render
    never emits what parse would refuse. A format without an XSD checks its structure in
    `read` and overrides `render` to hold what it builds to the same checks.

    A format names itself in the class attributes. The adapters of one registry share one
    XML parser, which is not thread-safe."""

    format_id: ClassVar[str]
    document_type: ClassVar[str]
    schema_name: ClassVar[str]
    schema_version: ClassVar[int] = 1
    media_type: ClassVar[str] = "application/xml"
    xsd_name: ClassVar[str] = ""  # none: the structure is checked in `read`
    label: ClassVar[str]  # how messages name the format, e.g. "FAL 5"
    # The root elements of the format's documents, "{namespace}LocalName": how detection
    # recognises them (adapters.base.RecognisesRoot). None declared: never detected.
    root_elements: ClassVar[tuple[str, ...]] = ()
    # Where the format's XSD is when the adapter is made on its own, if it is not one of the
    # gateway's; the gateway passes a store that knows it (docs/adapters.md, step 5).
    xsd_dir: ClassVar[Path | None] = None

    __slots__ = ("_parser", "_xsd")

    def __init__(
        self, *, xsd_store: XsdStore | None = None, xml_parser: SafeXmlParser | None = None
    ) -> None:
        if xsd_store is None:
            xsd_store = XsdStore() if self.xsd_dir is None else XsdStore(self.xsd_dir)
        self._xsd = xsd_store
        self._parser = xml_parser if xml_parser is not None else SafeXmlParser()
        if self.xsd_name:
            self._xsd.schema(self.xsd_name)  # compile now rather than on the first document

    def parse(self, data: bytes) -> ParseResult:
        root = self._parser.parse(data)
        if self.xsd_name:
            self._xsd.validate(self.xsd_name, root)
        version = self.document_version(root)
        record = self.read(root)
        business_key = self.business_key(record)
        try:
            warnings = self.check(record, root)
        except AdapterError as exc:
            exc.business_key, exc.document_version = business_key, version
            raise
        return ParseResult(
            record=record, business_key=business_key, document_version=version,
            warnings=warnings,
        )

    def render(self, record: Mapping[str, Any]) -> bytes:
        return render_checked(self._xsd, self.xsd_name, self.label, self.build, record)

    # ------------------------------------------------------------ the hooks

    def document_version(self, root: etree._Element) -> int:
        """The document's version: its root's `version` attribute, which the XSD requires."""
        return int(root.get("version", ""))

    def read(self, root: etree._Element) -> dict[str, Any]:
        """The canonical record of a schema-valid document, without "header"."""
        raise NotImplementedError

    def business_key(self, record: Mapping[str, Any]) -> str:
        """What keeps all versions of one document together (the Kafka key): built from what
        identifies the document, never from its version."""
        raise NotImplementedError

    def check(self, record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        """The business rules: RuleViolationError for the first one broken (`violation`
        makes one naming the field and its line), else the warnings, findings that do not
        refuse the document. `root` is there to find the lines. None by default."""
        return ()

    def build(self, record: Mapping[str, Any], version: int) -> etree._Element:
        """The document of a canonical record, as the root element of a tree; raises one of
        RENDER_ERRORS when the record lacks the shape its schema promises."""
        raise NotImplementedError


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


# ---------------------------------------------------------------- XML -> canonical record


class Children:
    """An element's children, read front to back in the order the XSD sequence fixes (the
    document has been validated), so only optional and repeated elements need their tag
    checked. Reading a record as a dict display, one value per child, relies on dict
    displays being evaluated left to right, as the language guarantees."""

    __slots__ = ("_elements", "_position")

    def __init__(self, parent: etree._Element) -> None:
        self._elements = list(parent)
        self._position = 0

    def next(self) -> etree._Element:
        element = self._elements[self._position]
        self._position += 1
        return element

    def text(self) -> str:
        element = self._elements[self._position]
        self._position += 1
        return element.text or ""

    def optional(self, tag: str) -> etree._Element | None:
        if self._position < len(self._elements) and self._elements[self._position].tag == tag:
            return self.next()
        return None

    def optional_text(self, tag: str) -> str | None:
        if self._position < len(self._elements) and self._elements[self._position].tag == tag:
            return self.text()
        return None

    def take(self, count: int) -> list[etree._Element]:
        """The next `count` children, which the XSD makes required."""
        start = self._position
        self._position = start + count
        taken = self._elements[start : start + count]
        if len(taken) != count:
            raise IndexError("fewer children than the XSD requires")
        return taken

    def repeated(self, tag: str) -> list[etree._Element]:
        """The run of consecutive `tag` children from the current position (possibly
        empty); the XSD has already enforced the minimum and maximum count."""
        start = self._position
        elements = self._elements
        end = start
        while end < len(elements) and elements[end].tag == tag:
            end += 1
        self._position = end
        return elements[start:end]

    def repeated_text(self, tag: str) -> list[str]:
        return [element.text or "" for element in self.repeated(tag)]

    def rest(self) -> list[etree._Element]:
        """The remaining children, when the XSD has made them all the repeated element."""
        remaining = self._elements[self._position :]
        self._position = len(self._elements)
        return remaining


def token(text: str) -> str:
    """The value of an xs:token: XML whitespace runs collapsed to one space, ends trimmed."""
    if " " not in text and text.isprintable():  # no space, tab or line break: most values
        return text
    if (
        "\n" in text
        or "\t" in text
        or "\r" in text
        or "  " in text
        or text[:1] == " "
        or text[-1:] == " "
    ):
        return _XML_WHITESPACE_RUN.sub(" ", text).strip(" ")
    return text


def optional_token(text: str | None) -> str | None:
    return None if text is None else token(text)


def optional_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def read_decimal(text: str, quantum: Decimal) -> Decimal:
    """An xs:decimal at the canonical scale. The XSD bounds the fraction digits by value,
    so "1.5000" may arrive for a three-place field; quantizing is exact and gives the
    canonical record (and the Avro decimal) one scale per field."""
    return Decimal(text.strip(XML_WHITESPACE)).quantize(quantum)


def optional_decimal(text: str | None, quantum: Decimal) -> Decimal | None:
    return None if text is None else read_decimal(text, quantum)


def read_bool(text: str) -> bool:
    return text.strip(XML_WHITESPACE) in ("true", "1")


def read_instant(text: str) -> tuple[datetime, int]:
    """The UTC instant and the sender's UTC offset in minutes. The XSD guarantees an offset
    and at most millisecond precision."""
    local = datetime.fromisoformat(text.strip(XML_WHITESPACE))
    offset = local.utcoffset()
    assert offset is not None  # the XSD pattern requires Z or ±hh:mm
    return local.astimezone(UTC), offset // _ONE_MINUTE


def instant_fields(text: str, field: str) -> dict[str, Any]:
    """`field` (the UTC instant) and `field`_utc_offset_minutes, as the canonical records
    carry every instant."""
    instant, offset = read_instant(text)
    return {field: instant, f"{field}_utc_offset_minutes": offset}


def optional_instant_fields(text: str | None, field: str) -> dict[str, Any]:
    if text is None:
        return {field: None, f"{field}_utc_offset_minutes": None}
    return instant_fields(text, field)


# ---------------------------------------------------------------- canonical record -> XML


def new_root(tag: str, namespace: str, version: int) -> etree._Element:
    """The root element in the format's default namespace, with its `version` attribute."""
    root = etree.Element(tag, nsmap={None: namespace})
    root.set("version", format_int(version))
    return root


def add_text(parent: etree._Element, tag: str, text: str) -> None:
    """A child element holding `text`, which must be a string."""
    if not isinstance(text, str):
        raise TypeError(f"{etree.QName(tag).localname} must be a string, not {type(text).__name__}")
    etree.SubElement(parent, tag).text = text


def add_optional_text(parent: etree._Element, tag: str, text: str | None) -> None:
    if text is not None:
        add_text(parent, tag, text)


def add_texts(parent: etree._Element, tag: str, texts: Sequence[str]) -> None:
    """One child element per text, for a repeated element."""
    for text in list_field(texts):
        add_text(parent, tag, text)


def list_field(value: Sequence[Any]) -> Sequence[Any]:
    """A list field of the record; a string or a mapping here is a caller's mistake that
    would otherwise be iterated silently."""
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, not {type(value).__name__}")
    return value


def require_int(value: int) -> int:
    """`value`, if it is an int (a bool is not one here)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an int, not {type(value).__name__}")
    return value


def format_int(value: int) -> str:
    return str(require_int(value))


def format_optional_int(value: int | None) -> str | None:
    return None if value is None else format_int(value)


def format_decimal(value: Decimal, quantum: Decimal) -> str:
    """A decimal at the field's scale; one with more places would not read back the same."""
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError("a decimal is not a finite number")
    exact = value.quantize(quantum)
    if exact != value:
        raise ValueError(f"a decimal has more decimal places than {quantum}")
    return format(exact, "f")


def format_optional_decimal(value: Decimal | None, quantum: Decimal) -> str | None:
    return None if value is None else format_decimal(value, quantum)


def format_bool(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"expected a bool, not {type(value).__name__}")
    return "true" if value else "false"


def format_date(value: date) -> str:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"expected a date, not {type(value).__name__}")
    return value.isoformat()


def format_instant(instant: datetime, offset_minutes: int, field: str) -> str:
    """The instant in the sender's local time, at the offset it came with; `field` names it
    in the error."""
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime")
    local = instant.astimezone(timezone(timedelta(minutes=require_int(offset_minutes))))
    return local.isoformat(timespec="milliseconds" if local.microsecond else "seconds")


def format_instant_field(record: Mapping[str, Any], field: str) -> str:
    """The instant `field` of the record in the sender's local time, from the pair that
    instant_fields produced."""
    return format_instant(record[field], record[f"{field}_utc_offset_minutes"], field)


def format_optional_instant_field(record: Mapping[str, Any], field: str) -> str | None:
    instant, offset = record.get(field), record.get(f"{field}_utc_offset_minutes")
    if instant is None and offset is None:
        return None
    if instant is None or offset is None:
        raise ValueError(f"{field} and {field}_utc_offset_minutes must both be null or neither")
    return format_instant(instant, offset, field)


# ---------------------------------------------------------------- naming a field


def field_path(*steps: str) -> str:
    """How a message names a field: ElementPath steps (`{ns}Name`, `{ns}Name[2]`, `@name`)
    by their local names, joined by "/", as in "Consignment[2]/ContainerNumber[1]".

    Messages of refusals and warnings reach receipts, dead letters, logs and the sealed trail,
    which is never erased: they name the field and the rule broken, and never repeat a value
    of the document (a name, a date of birth, a passport or IMO number, a quantity)."""
    return "/".join(step.rpartition("}")[2] for step in steps)


def nth(tag: str, index: int) -> str:
    """An ElementPath step to the index-th (from 0) child named `tag`."""
    return f"{tag}[{index + 1}]"


def line_of(root: etree._Element, *path: str) -> int | None:
    """The source line of the element at `path` (ElementPath steps from the root)."""
    element = root.find("/".join(path))
    return None if element is None else element.sourceline


def violation(code: str, rule: str, root: etree._Element, *path: str) -> RuleViolationError:
    """A refusal naming the field at `path` (ElementPath steps from the root, which also
    give the line) and the rule it breaks, never a value of the document."""
    message = f"{field_path(*path)}: {rule}" if path else rule
    return RuleViolationError(message, code=code, line=line_of(root, *path))


@dataclass(frozen=True, slots=True)
class ItemLines:
    """Finds the source line of the n-th repeated element (a person, an article), or of a
    child element of it, for messages about one item. Only rule failures and warnings pay
    for the search."""

    root: etree._Element
    item_tag: str

    def field(self, index: int, attribute: str) -> str:
        """How a message names an attribute of the n-th item: "CrewMember[3]/@expiryDate"."""
        return field_path(nth(self.item_tag, index), f"@{attribute}")

    def line(self, index: int, *path: str) -> int | None:
        items = self.root.findall(self.item_tag)
        if index >= len(items):
            return None
        element = items[index].find("/".join(path)) if path else items[index]
        return None if element is None else element.sourceline
