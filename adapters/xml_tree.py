"""Reading and writing XML trees described by a table of their elements, for formats that
publish no XSD (the China customs manifests, docs/eport.md): each `Node` gives an element's
canonical field, its local name (or alternative spellings), its kind, whether it repeats and
in which variants of the format it is required. `TreeReader` checks the structure as it reads
(unknown, missing, repeated and ambiguous elements and attributes, lengths, numbers, times) in
any child order, and refuses with a code naming the field and the rule, never the value;
`build_children` writes a record back in the table's order.

A node's path may go through wrappers ("Agent/ID"): each wrapper holds exactly the next step.
A repeated node repeats its last step."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .toolkit import field_path, list_field, token

TEXT, TIME, DECIMAL, GROUP = "text", "time", "decimal", "group"
UNBOUNDED = 9999
DECIMAL_PLACES = Decimal("0.000001")
# The manifests' times are digits in China Standard Time, of one of these lengths.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))
TIME_FORMATS = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S", 17: "%Y%m%d%H%M%S"}
_MAX_DECIMAL_DIGITS = 24

ELEMENT_UNKNOWN = "STRUCTURE_ELEMENT_UNKNOWN"
ELEMENT_MISSING = "STRUCTURE_ELEMENT_MISSING"
ELEMENT_REPEATED = "STRUCTURE_ELEMENT_REPEATED"
ELEMENT_AMBIGUOUS = "STRUCTURE_ELEMENT_AMBIGUOUS"
ATTRIBUTE_UNKNOWN = "STRUCTURE_ATTRIBUTE_UNKNOWN"
ATTRIBUTE_AMBIGUOUS = "STRUCTURE_ATTRIBUTE_AMBIGUOUS"
TEXT_TOO_LONG = "STRUCTURE_TEXT_TOO_LONG"
TEXT_MISPLACED = "STRUCTURE_TEXT_MISPLACED"
TIME_INVALID = "STRUCTURE_TIME_INVALID"
NUMBER_INVALID = "STRUCTURE_NUMBER_INVALID"


@dataclass(frozen=True, slots=True)
class Attr:
    """An attribute of a leaf, under one of its spellings (the first is the WCO one)."""

    field: str
    names: tuple[str, ...]
    doc: str


@dataclass(frozen=True, slots=True)
class Node:
    """One element of the table. `paths` are alternative spellings of the same data (read:
    at most one present; render: the spelling the record's variant prefers). A group's value
    is a record of its children's fields; a leaf with an attribute is a record
    {"value", attr.field}."""

    field: str
    paths: tuple[str, ...]
    doc: str
    kind: str = TEXT
    max_length: int = 35
    required: frozenset[str] = frozenset()
    repeats: bool = False
    children: tuple[Node, ...] = ()
    attr: Attr | None = None
    record: str = ""
    personal: bool = False  # personal information (contracts mask it; docs/contracts.md)

    def required_in(self, variant: str) -> bool:
        return variant in self.required


def leaf(field_name: str, path: str, doc: str, **options: Any) -> Node:
    return Node(field_name, tuple(path.split("|")), doc, **options)


def group(field_name: str, path: str, record: str, doc: str, children: Iterable[Node],
          **options: Any) -> Node:
    return Node(field_name, tuple(path.split("|")), doc, kind=GROUP, children=tuple(children),
                record=record, **options)


def refusal(code: str, rule: str, where: Sequence[str], line: int | None
            ) -> RuleViolationError:
    return RuleViolationError(f"{field_path(*where)}: {rule}", code=code, line=line)


def time_text(value: Mapping[str, Any]) -> str:
    """The digits of a time record {"instant", "digits"}; ValueError if the instant has more
    precision than its digits keep (render must not write what parses to another record)."""
    digits = value["digits"]
    instant = value["instant"]
    if digits not in TIME_FORMATS or not isinstance(instant, datetime):
        raise ValueError("a manifest time needs an instant and 8, 12, 14 or 17 digits")
    local = instant.astimezone(CHINA_STANDARD_TIME)
    text = local.strftime(TIME_FORMATS[digits])
    if digits == 17:
        text += f"{local.microsecond // 1000:03d}"
    if read_time_digits(text) != instant:
        raise ValueError("a manifest time is more precise than its digits")
    return text


def read_time_digits(text: str) -> datetime | None:
    """The instant of 8, 12, 14 or 17 digits in China Standard Time, or None."""
    if not text.isascii() or not text.isdigit() or len(text) not in TIME_FORMATS:
        return None
    try:
        local = datetime.strptime(text[:14], TIME_FORMATS[len(text)])
    except ValueError:
        return None
    millis = int(text[14:]) if len(text) == 17 else 0
    return local.replace(tzinfo=CHINA_STANDARD_TIME, microsecond=millis * 1000).astimezone(UTC)


def format_number(value: Decimal) -> str:
    """A decimal as plain digits without trailing zeros; ValueError if it has more places than
    the canonical scale."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError("expected a finite Decimal")
    if value.quantize(DECIMAL_PLACES) != value:
        raise ValueError("a decimal has more places than the canonical scale")
    plain = format(value.normalize(), "f")
    return "0" if plain in ("-0", "0") else plain


# ---------------------------------------------------------------- reading


@dataclass(slots=True)
class TreeReader:
    """Reads elements of one namespace by the table, for one variant of the format."""

    namespace: str
    variant: str
    _prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self._prefix = f"{{{self.namespace}}}"

    def read_group(self, element: etree._Element, nodes: Sequence[Node],
                   where: list[str]) -> dict[str, Any]:
        """The record of an aggregate element's children; the caller has checked its
        attributes."""
        present = self._children_by_name(element, where)
        record: dict[str, Any] = {}
        for node in nodes:
            record[node.field] = self._read_node(element, node, present, where)
        for name, elements in present.items():
            raise refusal(ELEMENT_UNKNOWN, "is not an element of this message", [*where, name],
                          elements[0].sourceline)
        return record

    def _children_by_name(self, element: etree._Element, where: list[str]
                          ) -> dict[str, list[etree._Element]]:
        if (element.text or "").strip():
            raise refusal(TEXT_MISPLACED, "holds text but is an aggregate of elements", where,
                          element.sourceline)
        present: dict[str, list[etree._Element]] = {}
        for child in element:
            if not isinstance(child.tag, str):
                continue  # a comment or processing instruction
            if (child.tail or "").strip():
                raise refusal(TEXT_MISPLACED, "holds text but is an aggregate of elements",
                              where, child.sourceline)
            if not child.tag.startswith(self._prefix):
                raise refusal(ELEMENT_UNKNOWN, "is in another namespace than the message",
                              [*where, etree.QName(child).localname], child.sourceline)
            present.setdefault(child.tag[len(self._prefix):], []).append(child)
        return present

    def _read_node(self, parent: etree._Element, node: Node,
                   present: dict[str, list[etree._Element]], where: list[str]) -> Any:
        found = [(path, present.pop(path.split("/", 1)[0]))
                 for path in node.paths if path.split("/", 1)[0] in present]
        if len(found) > 1:
            raise refusal(ELEMENT_AMBIGUOUS, f"is given twice, as {found[0][0]} and "
                          f"{found[1][0]}", [*where, found[1][0]], found[1][1][0].sourceline)
        if not found:
            if node.required_in(self.variant):
                raise refusal(ELEMENT_MISSING, "is required in this message type",
                              [*where, node.paths[0]], parent.sourceline)
            return [] if node.repeats else None
        path, elements = found[0]
        steps = path.split("/")
        if (len(steps) > 1 or not node.repeats) and len(elements) > 1:
            raise refusal(ELEMENT_REPEATED, "may occur once", [*where, f"{steps[0]}[2]"],
                          elements[1].sourceline)
        if len(steps) > 1:
            return self._read_wrapped(elements[0], node, steps, where)
        return self._read_occurrences(node, steps[0], elements, where)

    def _read_wrapped(self, wrapper: etree._Element, node: Node, steps: list[str],
                      where: list[str]) -> Any:
        inner = Node(node.field, ("/".join(steps[1:]),), node.doc, kind=node.kind,
                     max_length=node.max_length, required=ALWAYS, repeats=node.repeats,
                     children=node.children, attr=node.attr, record=node.record,
                     personal=node.personal)
        here = [*where, steps[0]]
        self._refuse_attributes(wrapper, (), here)
        present = self._children_by_name(wrapper, here)
        value = self._read_node(wrapper, inner, present, here)
        for name, elements in present.items():
            raise refusal(ELEMENT_UNKNOWN, "is not an element of this message", [*here, name],
                          elements[0].sourceline)
        return value

    def _read_occurrences(self, node: Node, name: str, elements: list[etree._Element],
                          where: list[str]) -> Any:
        if len(elements) > UNBOUNDED:
            raise refusal(ELEMENT_REPEATED, f"may occur at most {UNBOUNDED} times",
                          [*where, name], elements[UNBOUNDED].sourceline)
        values = []
        for index, element in enumerate(elements):
            step = f"{name}[{index + 1}]" if node.repeats else name
            values.append(self._read_element(element, node, [*where, step]))
        return values if node.repeats else values[0]

    def _read_element(self, element: etree._Element, node: Node, where: list[str]) -> Any:
        if node.kind == GROUP:
            self._refuse_attributes(element, (), where)
            return self.read_group(element, node.children, where)
        if len(element):
            child = element[0]
            name = etree.QName(child).localname if isinstance(child.tag, str) else "node()"
            raise refusal(ELEMENT_UNKNOWN, "is not an element of this message",
                          [*where, name], child.sourceline)
        value = self._leaf_value(element.text or "", node, where, element.sourceline)
        if node.attr is None:
            self._refuse_attributes(element, (), where)
            return value
        return {"value": value, node.attr.field: self._attribute(element, node.attr, where)}

    def _leaf_value(self, text: str, node: Node, where: list[str], line: int | None) -> Any:
        value = token(text)
        if node.kind == TIME:
            instant = read_time_digits(value)
            if instant is None:
                raise refusal(TIME_INVALID, "must be a date and time of 8, 12, 14 or 17 digits "
                              "(yyyyMMdd[HHmm[ss[SSS]]])", where, line)
            return {"instant": instant, "digits": len(value)}
        if node.kind == DECIMAL:
            return _read_decimal(value, where, line)
        if len(value) > node.max_length:
            raise refusal(TEXT_TOO_LONG, f"is longer than {node.max_length} characters", where,
                          line)
        return value

    @staticmethod
    def _attribute(element: etree._Element, attr: Attr, where: list[str]) -> str | None:
        TreeReader._refuse_attributes(element, attr.names, where)
        given = [name for name in attr.names if element.get(name) is not None]
        if len(given) > 1:
            raise refusal(ATTRIBUTE_AMBIGUOUS, f"gives both @{given[0]} and @{given[1]}",
                          where, element.sourceline)
        if not given:
            return None
        value = token(element.get(given[0]) or "")
        if len(value) > 35:
            raise refusal(TEXT_TOO_LONG, f"@{given[0]} is longer than 35 characters", where,
                          element.sourceline)
        return value

    @staticmethod
    def _refuse_attributes(element: etree._Element, allowed: tuple[str, ...],
                           where: list[str]) -> None:
        for name in element.attrib:
            if name not in allowed:
                raise refusal(ATTRIBUTE_UNKNOWN, f"@{etree.QName(name).localname} is not an "
                              "attribute of this element", where, element.sourceline)


def _read_decimal(text: str, where: list[str], line: int | None) -> Decimal:
    rule = (f"must be a decimal number of at most {_MAX_DECIMAL_DIGITS - 6} integer digits "
            "and 6 decimal places")
    if not text or len(text) > _MAX_DECIMAL_DIGITS + 2 or not text.isascii() \
            or text.lstrip("+-").replace(".", "", 1).isdigit() is False:
        raise refusal(NUMBER_INVALID, rule, where, line)
    try:
        number = Decimal(text)
        exact = number.quantize(DECIMAL_PLACES)
    except InvalidOperation:
        raise refusal(NUMBER_INVALID, rule, where, line) from None
    if exact != number or len(exact.as_tuple().digits) > _MAX_DECIMAL_DIGITS:
        raise refusal(NUMBER_INVALID, rule, where, line)
    return exact


class _Always(frozenset[str]):
    """Required in every variant."""

    __slots__ = ()

    def __contains__(self, item: object) -> bool:
        return True


ALWAYS: frozenset[str] = _Always()

# ---------------------------------------------------------------- building


def build_children(parent: etree._Element, record: Mapping[str, Any], nodes: Sequence[Node],
                   namespace: str, spelling: int) -> None:
    """Writes the record's fields as children of `parent`, in the table's order, each under
    the spelling at index `spelling` of its paths (or its last one)."""
    for node in nodes:
        value = record[node.field]
        if value is None or (node.repeats and not list_field(value)):
            continue
        path = node.paths[min(spelling, len(node.paths) - 1)].split("/")
        target = parent
        for step in path[:-1]:
            target = etree.SubElement(target, f"{{{namespace}}}{step}")
        values = list_field(value) if node.repeats else (value,)
        for one in values:
            element = etree.SubElement(target, f"{{{namespace}}}{path[-1]}")
            _build_element(element, one, node, namespace, spelling)


def _build_element(element: etree._Element, value: Any, node: Node, namespace: str,
                   spelling: int) -> None:
    if node.kind == GROUP:
        build_children(element, value, node.children, namespace, spelling)
        return
    if node.attr is not None:
        attribute = value[node.attr.field]
        if attribute is not None:
            names = node.attr.names
            element.set(names[min(spelling, len(names) - 1)], _string(attribute))
        value = value["value"]
    if node.kind == TIME:
        element.text = time_text(value)
    elif node.kind == DECIMAL:
        element.text = format_number(value)
    else:
        element.text = _string(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value
