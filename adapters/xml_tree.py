"""Reading and writing XML trees described by a table of their elements, for formats that
publish no XSD (the China customs manifests, docs/eport.md): each `Node` gives an element's
canonical field, its local name (or alternative spellings), its kind, whether it repeats and
in which variants of the format it is required. `TreeReader` checks the structure as it reads
(unknown, missing, repeated and ambiguous elements and attributes, lengths, numbers, times) in
any child order, and refuses with a code naming the field and the rule, never the value;
`build_children` writes a record back in the table's order.

A node's path may go through wrappers ("Agent/ID"): each wrapper holds exactly the next step.
A repeated node repeats its last step. A SKIPPED node is an element the format has and the
canonical record does not carry: it is allowed where the table puts it, and not read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .toolkit import field_path, list_field, token

TEXT, TIME, DECIMAL, GROUP, SKIPPED = "text", "time", "decimal", "group", "skipped"
UNBOUNDED = 9999
DECIMAL_PLACES = Decimal("0.000001")
# The manifests' times are digits in China Standard Time, of one of these lengths.
_CHINA_OFFSET = timedelta(hours=8)
CHINA_STANDARD_TIME = timezone(_CHINA_OFFSET)
TIME_DIGITS = (8, 12, 14, 17)
_MAX_DECIMAL_DIGITS = 24
ATTRIBUTE_MAX_LENGTH = 35

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
    if digits not in TIME_DIGITS or not isinstance(instant, datetime):
        raise ValueError("a manifest time needs an instant and 8, 12, 14 or 17 digits")
    text = digits_of(instant.astimezone(CHINA_STANDARD_TIME), digits)
    if read_time_digits(text) != instant:
        raise ValueError("a manifest time is more precise than its digits")
    return text


def digits_of(local: datetime, digits: int) -> str:
    """A local time as yyyyMMddHHmmssSSS cut to `digits`."""
    return (f"{local.year:04d}{local.month:02d}{local.day:02d}{local.hour:02d}"
            f"{local.minute:02d}{local.second:02d}{local.microsecond // 1000:03d}")[:digits]


def read_time_digits(text: str) -> datetime | None:
    """The instant of 8, 12, 14 or 17 digits in China Standard Time, or None."""
    if len(text) not in TIME_DIGITS or not text.isascii() or not text.isdigit():
        return None
    try:
        # The local time as if it were UTC, less the eight hours: the instant, in UTC.
        return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]),
                        int(text[8:10] or 0), int(text[10:12] or 0), int(text[12:14] or 0),
                        int(text[14:17] or 0) * 1000, tzinfo=UTC) - _CHINA_OFFSET
    except (ValueError, OverflowError):  # not a time; or before year 1 in UTC
        return None


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


@dataclass(frozen=True, slots=True)
class Slot:
    """How a group reads one child element, found by its tag: the node (and its field and
    longest text, at hand), the first step as written, the wrapper steps after it, whether
    the node has other spellings (only then is the one used remembered), whether it is a
    plain text leaf of one spelling (read inline) and, for a group of one spelling without
    wrappers (read without the calls a leaf goes through), its plan."""

    node: Node
    field: str
    longest: int
    name: str
    rest: tuple[str, ...]
    spelled_otherwise: bool
    plain: bool
    group: Plan | None  # the plan of a group of one spelling without wrappers


@dataclass(frozen=True, slots=True)
class Reading:
    """A group's plan for one namespace and variant: each child's tag to its slot, and the
    fields required (with the path a refusal names)."""

    slots: dict[str, Slot]
    required: tuple[tuple[str, str], ...]


class Plan:
    """A group's children compiled for reading: each spelling's first step to its node and
    the steps after it, the defaults of absent fields, and the plans of child groups; and,
    per namespace and variant met, its `Reading` (made once)."""

    __slots__ = ("_readings", "by_name", "defaults", "groups", "nodes", "repeated")

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = tuple(nodes)
        self.by_name: dict[str, tuple[Node, tuple[str, ...]]] = {}
        for node in nodes:
            for path in node.paths:
                first, *rest = path.split("/")
                if first in self.by_name:
                    raise ValueError(f"two elements of one group begin with {first}")
                self.by_name[first] = (node, tuple(rest))
        self.defaults: dict[str, Any] = dict.fromkeys((n.field for n in nodes), None)
        self.repeated = tuple(n.field for n in nodes if n.repeats)
        self.groups = {n.field: Plan(n.children) for n in nodes if n.kind == GROUP}
        self._readings: dict[tuple[str, str], Reading] = {}

    def reading(self, prefix: str, variant: str) -> Reading:
        """The reading of this group in the namespace `prefix` ("{namespace}") for
        `variant`, made on first use."""
        found = self._readings.get((prefix, variant))
        if found is None:
            found = self._readings[prefix, variant] = Reading(
                {prefix + name: _slot(node, name, rest, self.groups.get(node.field))
                 for name, (node, rest) in self.by_name.items()},
                tuple((n.field, n.paths[0]) for n in self.nodes if n.required_in(variant)))
        return found


def _slot(node: Node, name: str, rest: tuple[str, ...], plan: Plan | None) -> Slot:
    spelled_otherwise = len(node.paths) > 1
    plain = (not rest and not node.repeats and node.kind == TEXT and node.attr is None
             and not spelled_otherwise)
    group = None if rest or spelled_otherwise else plan
    return Slot(node, node.field, node.max_length, name, rest, spelled_otherwise, plain, group)


@dataclass(slots=True)
class TreeReader:
    """Reads elements of one namespace by a compiled table, for one variant of the format.
    Paths in refusals are tuples of steps, built only when something is refused. Refusals
    come in document order: the first element that breaks a rule is the one named."""

    namespace: str
    variant: str
    _prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self._prefix = f"{{{self.namespace}}}"

    def read_group(self, element: etree._Element, plan: Plan, where: tuple[str, ...],
                   passed: etree._Element | None = None) -> dict[str, Any]:
        """The record of an aggregate element's children; the caller has checked its
        attributes. Plain text leaves, most of a message, are read here without a call.
        The child `passed`, if any, is not read (a root's enveloped signature)."""
        text = element.text
        if text and not text.isspace():
            _refuse_text(text, where, element)
        reading = plan.reading(self._prefix, self.variant)
        slots = reading.slots
        record = dict(plan.defaults)
        spelled: dict[str, str] = {}
        for child in element:
            tail = child.tail
            if tail and not tail.isspace():
                _refuse_text(tail, where, child)
            slot = slots.get(child.tag)
            if slot is None:
                if isinstance(child.tag, str) and child is not passed:
                    raise self._unknown(child, where)
                continue  # a comment or processing instruction, or the child passed
            if slot.plain and not len(child) and not child.keys():
                if record[slot.field] is not None:
                    raise _repeated(slot, where, child)
                value = child.text or ""
                if " " in value or not value.isprintable():  # else it is its own token
                    value = token(value)
                if len(value) > slot.longest:
                    raise refusal(TEXT_TOO_LONG, f"is longer than {slot.longest} "
                                  "characters", (*where, slot.name), child.sourceline)
                record[slot.field] = value
            elif slot.group is not None:
                self._read_subgroup(child, slot, slot.group, record, where)
            else:
                self._read_child(child, slot, record, spelled, plan, where)
        for required, path in reading.required:
            if record[required] is None:
                raise refusal(ELEMENT_MISSING, "is required in this message type",
                              (*where, path), element.sourceline)
        for repeated in plan.repeated:
            if record[repeated] is None:
                record[repeated] = []
        return record

    def _read_subgroup(self, child: etree._Element, slot: Slot, plan: Plan,
                       record: dict[str, Any], where: tuple[str, ...]) -> None:
        """Reads into `record` a child group of one spelling without wrappers: what
        `_read_child` and `_read_value` do for it, without their calls."""
        value = record[slot.field]
        if not slot.node.repeats:
            if value is not None:
                raise _repeated(slot, where, child)
            inner = (*where, slot.name)
            if child.keys():
                _refuse_attributes(child, (), inner)
            record[slot.field] = self.read_group(child, plan, inner)
            return
        if value is None:
            value = record[slot.field] = []
        if len(value) == UNBOUNDED:
            raise refusal(ELEMENT_REPEATED, f"may occur at most {UNBOUNDED} times",
                          (*where, slot.name), child.sourceline)
        inner = (*where, f"{slot.name}[{len(value) + 1}]")
        if child.keys():
            _refuse_attributes(child, (), inner)
        value.append(self.read_group(child, plan, inner))

    def _read_child(self, child: etree._Element, slot: Slot, record: dict[str, Any],
                    spelled: dict[str, str], plan: Plan, where: tuple[str, ...]) -> None:
        """Reads into `record` a child that is no plain text leaf: a group, a typed or
        repeated leaf, one under wrappers, one of several spellings, or one to refuse."""
        node, name = slot.node, slot.name
        if node.kind == SKIPPED:
            return
        if slot.spelled_otherwise:
            first = spelled.setdefault(node.field, name)
            if first != name:
                raise refusal(ELEMENT_AMBIGUOUS, f"is given twice, as "
                              f"{_spelling(node, first)} and {_spelling(node, name)}",
                              (*where, _spelling(node, name)), child.sourceline)
        value = record[node.field]
        if value is not None and (slot.rest or not node.repeats):
            raise _repeated(slot, where, child)
        if slot.rest:
            record[node.field] = self._read_wrapped(child, node, slot.rest, plan,
                                                    (*where, name))
        elif node.repeats:
            if value is None:
                value = record[node.field] = []
            if len(value) == UNBOUNDED:
                raise refusal(ELEMENT_REPEATED, f"may occur at most {UNBOUNDED} times",
                              (*where, name), child.sourceline)
            value.append(self._read_value(child, node, plan, where, name, len(value)))
        else:
            record[node.field] = self._read_value(child, node, plan, where, name, None)

    def _unknown(self, child: etree._Element, where: tuple[str, ...]) -> RuleViolationError:
        tag = str(child.tag)
        if not tag.startswith(self._prefix):
            return refusal(ELEMENT_UNKNOWN, "is in another namespace than the message",
                           (*where, etree.QName(child).localname), child.sourceline)
        return refusal(ELEMENT_UNKNOWN, "is not an element of this message",
                       (*where, tag[len(self._prefix):]), child.sourceline)

    def _read_wrapped(self, wrapper: etree._Element, node: Node, rest: tuple[str, ...],
                      plan: Plan, where: tuple[str, ...]) -> Any:
        """The value under wrapper elements ("Agent/ID"): each holds only the next step; the
        last step repeats if the node does."""
        if wrapper.keys():
            _refuse_attributes(wrapper, (), where)
        _refuse_text(wrapper.text, where, wrapper)
        step, tag = rest[0], self._prefix + rest[0]
        children = []
        for child in wrapper:
            tail = child.tail
            if tail and not tail.isspace():
                _refuse_text(tail, where, child)
            if child.tag == tag:
                children.append(child)
            elif isinstance(child.tag, str):
                raise self._unknown(child, where)
        if not children:
            raise refusal(ELEMENT_MISSING, "is required in this message type", (*where, step),
                          wrapper.sourceline)
        last = len(rest) == 1
        if len(children) > 1 and not (last and node.repeats):
            raise refusal(ELEMENT_REPEATED, "may occur once", (*where, f"{step}[2]"),
                          children[1].sourceline)
        if not last:
            return self._read_wrapped(children[0], node, rest[1:], plan, (*where, step))
        if not node.repeats:
            return self._read_value(children[0], node, plan, where, step, None)
        if len(children) > UNBOUNDED:
            raise refusal(ELEMENT_REPEATED, f"may occur at most {UNBOUNDED} times",
                          (*where, step), children[UNBOUNDED].sourceline)
        return [self._read_value(child, node, plan, where, step, index)
                for index, child in enumerate(children)]

    def _read_value(self, element: etree._Element, node: Node, plan: Plan,
                    parent: tuple[str, ...], name: str, index: int | None) -> Any:
        """The value of one element, the `index`-th (from 0) of a repeated `name` under
        `parent` (the path is only built for a group or a refusal: most elements are leaves
        that pass)."""
        if node.kind == GROUP:
            where = (*parent, _step(name, index))
            if element.keys():
                _refuse_attributes(element, (), where)
            return self.read_group(element, plan.groups[node.field], where)
        if len(element):
            child = element[0]
            inner = etree.QName(child).localname if isinstance(child.tag, str) else "node()"
            raise refusal(ELEMENT_UNKNOWN, "is not an element of this message",
                          (*parent, _step(name, index), inner), child.sourceline)
        value = element.text or ""
        if " " in value or not value.isprintable():  # else it is its own token
            value = token(value)
        if node.kind != TEXT or len(value) > node.max_length:
            value = _typed_value(value, node, parent, _step(name, index), element.sourceline)
        if node.attr is None:
            if element.keys():
                _refuse_attributes(element, (), (*parent, _step(name, index)))
            return value
        return {"value": value,
                node.attr.field: _attribute(element, node.attr, parent, _step(name, index))}


def _repeated(slot: Slot, where: tuple[str, ...], child: etree._Element) -> RuleViolationError:
    return refusal(ELEMENT_REPEATED, "may occur once", (*where, f"{slot.name}[2]"),
                   child.sourceline)


def _step(name: str, index: int | None) -> str:
    return name if index is None else f"{name}[{index + 1}]"


def _refuse_text(text: str | None, where: tuple[str, ...], element: etree._Element) -> None:
    """Text before or after an element of an aggregate (other than whitespace) is refused."""
    if text and not text.isspace():
        raise refusal(TEXT_MISPLACED, "holds text but is an aggregate of elements", where,
                      element.sourceline)


def _spelling(node: Node, first_step: str) -> str:
    return next(path for path in node.paths if path.split("/")[0] == first_step)


def _typed_value(value: str, node: Node, parent: tuple[str, ...], step: str,
                 line: int | None) -> Any:
    """A time or decimal leaf's value, or the refusal of a text over its length."""
    if node.kind == TIME:
        instant = read_time_digits(value)
        if instant is None:
            raise refusal(TIME_INVALID, "must be a date and time of 8, 12, 14 or 17 digits "
                          "(yyyyMMdd[HHmm[ss[SSS]]])", (*parent, step), line)
        return {"instant": instant, "digits": len(value), "local_date_time": None}
    if node.kind == DECIMAL:
        return _read_decimal(value, parent, step, line)
    if len(value) > node.max_length:
        raise refusal(TEXT_TOO_LONG, f"is longer than {node.max_length} characters",
                      (*parent, step), line)
    return value


def _attribute(element: etree._Element, attr: Attr, parent: tuple[str, ...], step: str
               ) -> str | None:
    """The leaf's attribute, under whichever of its spellings is given (one at most)."""
    names = element.keys()
    if not names:
        return None
    if len(names) > 1 or names[0] not in attr.names:
        where = (*parent, step)
        _refuse_attributes(element, attr.names, where)
        given = [name for name in attr.names if name in names]
        raise refusal(ATTRIBUTE_AMBIGUOUS, f"gives both @{given[0]} and @{given[1]}",
                      where, element.sourceline)
    value = token(element.get(names[0]) or "")
    if len(value) > ATTRIBUTE_MAX_LENGTH:
        raise refusal(TEXT_TOO_LONG, f"@{names[0]} is longer than {ATTRIBUTE_MAX_LENGTH} "
                      "characters", (*parent, step), element.sourceline)
    return value


def _refuse_attributes(element: etree._Element, allowed: tuple[str, ...],
                       where: tuple[str, ...]) -> None:
    for name in element.attrib:
        if name not in allowed:
            raise refusal(ATTRIBUTE_UNKNOWN, f"@{etree.QName(name).localname} is not an "
                          "attribute of this element", where, element.sourceline)


def _read_decimal(text: str, parent: tuple[str, ...], step: str, line: int | None) -> Decimal:
    unsigned = text[1:] if text[:1] in ("+", "-") else text
    if len(text) > _MAX_DECIMAL_DIGITS + 2 or not unsigned.isascii() \
            or not unsigned.replace(".", "", 1).isdigit():
        raise _number_invalid(parent, step, line)
    number = Decimal(text)  # digits with at most one point: always a number
    try:
        exact = number.quantize(DECIMAL_PLACES)
    except InvalidOperation:  # more digits than the context's precision
        raise _number_invalid(parent, step, line) from None
    # A quantized number's digits run from its first to the sixth place after the point.
    if exact != number or (exact and exact.adjusted() + 7 > _MAX_DECIMAL_DIGITS):
        raise _number_invalid(parent, step, line)
    return exact


def _number_invalid(parent: tuple[str, ...], step: str, line: int | None
                    ) -> RuleViolationError:
    return refusal(NUMBER_INVALID, f"must be a decimal number of at most "
                   f"{_MAX_DECIMAL_DIGITS - 6} integer digits and 6 decimal places",
                   (*parent, step), line)


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
        if node.kind == SKIPPED:
            continue
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
