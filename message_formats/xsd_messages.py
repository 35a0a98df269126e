"""XSD validation errors said again without the document's values.

libxml2 quotes the offending value in most of its schema errors ("'1968-13-14' is not a
valid value of the atomic type …", "The value 'EJ 4821937' is not accepted by the pattern
…"), and the refusal's message is kept in receipts, the sealed trail, dead letters and logs.
So each error is written again as `line N: element X[, attribute Y]: RULE`, from three
things only:

- the line, and libxml2's error type (a constant such as SCHEMAV_CVC_PATTERN_VALID), which
  chooses the rule's wording;
- names of elements and attributes, which are repeated only if the schema declares them;
- the facet, type or expected-element names a rule may mention (a pattern, the allowed
  values, a maximum length), repeated only if the schema itself holds that text.

Nothing of libxml2's text is repeated that the schema does not contain, so a value cannot
come through even where libxml2's message is cut short or a value imitates its wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from lxml import etree

_XS = "http://www.w3.org/2001/XMLSchema"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_FACETS = ("pattern", "enumeration", "length", "minLength", "maxLength", "minInclusive",
           "maxInclusive", "minExclusive", "maxExclusive", "totalDigits", "fractionDigits")
_XSI_ATTRIBUTES = frozenset({"type", "nil", "schemaLocation", "noNamespaceSchemaLocation"})
# The built-in types of XML Schema, as libxml2 names them ("xs:date").
_BUILTIN_TYPES = frozenset({
    "anyType", "anySimpleType", "anyURI", "base64Binary", "boolean", "byte", "date",
    "dateTime", "decimal", "double", "duration", "ENTITIES", "ENTITY", "float", "gDay",
    "gMonth", "gMonthDay", "gYear", "gYearMonth", "hexBinary", "ID", "IDREF", "IDREFS",
    "int", "integer", "language", "long", "Name", "NCName", "negativeInteger", "NMTOKEN",
    "NMTOKENS", "nonNegativeInteger", "nonPositiveInteger", "normalizedString", "NOTATION",
    "positiveInteger", "QName", "short", "string", "time", "token", "unsignedByte",
    "unsignedInt", "unsignedLong", "unsignedShort",
})
# How libxml2 begins each schema error: the element, and the attribute if the error is one.
_SUBJECT = re.compile(r"Element '([^']*)'(?:, attribute '([^']*)')?: ")
_DATATYPE = re.compile(r"the (?:local )?(?:atomic|list|union) type(?: '([^']*)')?\.\Z")
_MISSING_ATTRIBUTE = re.compile(r"The attribute '([^']*)' is required but missing\.\Z")


@dataclass(frozen=True, slots=True)
class SchemaWords:
    """What one XSD says, and so what a message about a document may repeat: the names it
    declares (elements, attributes), its named types and the values of its facets."""

    namespace: str
    names: frozenset[str]
    types: frozenset[str]
    facets: frozenset[str]

    @classmethod
    def of(cls, schema: etree._Element) -> SchemaWords:
        """The words of a schema document (an `xs:schema` element)."""
        return cls(
            namespace=schema.get("targetNamespace", ""),
            names=_attribute_values(schema, ("element", "attribute"), "name"),
            types=_attribute_values(schema, ("simpleType", "complexType"), "name"),
            facets=_attribute_values(schema, _FACETS, "value"),
        )

    def element(self, clark: str) -> str | None:
        """The local name of `{namespace}local` if the schema declares it, else None."""
        namespace, local = _split(clark)
        if namespace in (self.namespace, "") and local in self.names:
            return local
        return None

    def attribute(self, clark: str) -> str | None:
        namespace, local = _split(clark)
        if namespace == "" and local in self.names:
            return local
        if namespace == _XSI and local in _XSI_ATTRIBUTES:
            return f"xsi:{local}"
        return None


def describe(entry: etree._LogEntry, words: SchemaWords) -> str:
    """One validation error as `line N: SUBJECT: RULE`, with no value of the document."""
    message = entry.message.rstrip()
    found = _SUBJECT.match(message)
    body = message[found.end():] if found else message
    rule = _RULES.get(entry.type_name)
    text = rule(body, words) if rule is not None else f"is not valid ({entry.type_name})"
    return f"line {entry.line}: {_subject(found, words)}: {text}"


# ---------------------------------------------------------------- what the error is about


def _subject(found: re.Match[str] | None, words: SchemaWords) -> str:
    if found is None:
        return "the document"
    element = words.element(found.group(1))
    named = f"element {element}" if element else "an element the schema does not declare"
    if found.group(2) is None:
        return named
    attribute = words.attribute(found.group(2))
    return f"{named}, " + (f"attribute {attribute}" if attribute
                           else "an attribute the schema does not declare")


def _split(clark: str) -> tuple[str, str]:
    if clark.startswith("{"):
        namespace, _, local = clark[1:].rpartition("}")
        return namespace, local
    return "", clark


def _attribute_values(schema: etree._Element, kinds: Iterable[str], name: str) -> frozenset[str]:
    tags = [f"{{{_XS}}}{kind}" for kind in kinds]
    return frozenset(value for item in schema.iter(*tags)
                     if (value := item.get(name)) is not None)


# ---------------------------------------------------------------- the rule broken

# A rule's wording from libxml2's message after its subject ("Element '…': ").
Rule = Callable[[str, SchemaWords], str]


def _fixed(text: str) -> Rule:
    def rule(message: str, words: SchemaWords) -> str:
        return text

    return rule


def _facet(marker: str, end: str, known: str, unknown: str) -> Rule:
    """A facet's rule: `known` naming the facet's value (the text between the last `marker`
    and `end`) if the schema holds that value, else `unknown`."""

    def rule(message: str, words: SchemaWords) -> str:
        value = _between(message, marker, end)
        return known.format(value) if value is not None and value in words.facets else unknown

    return rule


def _between(message: str, marker: str, end: str) -> str | None:
    _, found, tail = message.rpartition(marker)
    if not found or not tail.endswith(end):
        return None
    return tail[: len(tail) - len(end)]


def _enumeration(message: str, words: SchemaWords) -> str:
    listed = _between(message, "is not an element of the set {", "}.")
    values = listed[1:-1].split("', '") if listed and listed[:1] == listed[-1:] == "'" else []
    if values and all(value in words.facets for value in values):
        return f"is not one of the values its type allows: {listed}"
    return "is not one of the values its type allows"


def _datatype(message: str, words: SchemaWords) -> str:
    found = _DATATYPE.search(message)
    name = found.group(1) if found else None
    if name is not None and name.startswith("xs:") and name[3:] in _BUILTIN_TYPES:
        return f"is not a valid value of its type {name}"
    if name is not None:
        namespace, local = _split(name)
        if namespace == words.namespace and local in words.types:
            return f"is not a valid value of its type {local}"
    return "is not a valid value of its type"


def _expected(message: str, words: SchemaWords) -> str:
    """"; expected A" or "; expected one of A, B" when libxml2 names what the schema wants
    there and the schema declares each name; else nothing."""
    listed = _between(message, " Expected is ", " ).")
    if listed is None:
        return ""
    several = listed.startswith("one of ( ")
    names = listed.removeprefix("one of ( " if several else "( ").split(", ")
    declared = [name for name in map(words.element, names) if name is not None]
    if len(declared) != len(names):
        return ""
    return "; expected " + ("one of " if several else "") + ", ".join(declared)


def _content(message: str, words: SchemaWords) -> str:
    """libxml2 gives one error type both for a child that is missing and for one that is
    not expected; its text after the subject tells which."""
    if message.startswith("Missing child element(s)."):
        return "is missing a child element" + _expected(message, words)
    return "is not expected here" + _expected(message, words)


def _missing_attribute(message: str, words: SchemaWords) -> str:
    found = _MISSING_ATTRIBUTE.search(message)
    name = words.attribute(found.group(1)) if found else None
    return f"is missing the required attribute {name}" if name else \
        "is missing a required attribute"


_FIXED_VALUE = _fixed("does not match the fixed value its declaration gives")
_RULES: Mapping[str, Rule] = MappingProxyType({
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_1": _datatype,
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_2": _datatype,
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_3": _datatype,
    "SCHEMAV_CVC_PATTERN_VALID": _facet(
        "is not accepted by the pattern '", "'.",
        "does not match the pattern '{}'", "does not match the pattern of its type"),
    "SCHEMAV_CVC_ENUMERATION_VALID": _enumeration,
    "SCHEMAV_CVC_LENGTH_VALID": _facet(
        "the allowed length of '", "'.",
        "does not have the length {} its type requires",
        "does not have the length its type requires"),
    "SCHEMAV_CVC_MINLENGTH_VALID": _facet(
        "the allowed minimum length of '", "'.",
        "is shorter than the minimum length {}", "is shorter than its type allows"),
    "SCHEMAV_CVC_MAXLENGTH_VALID": _facet(
        "the allowed maximum length of '", "'.",
        "is longer than the maximum length {}", "is longer than its type allows"),
    "SCHEMAV_CVC_MININCLUSIVE_VALID": _facet(
        "the minimum value allowed ('", "').",
        "is less than the minimum {}", "is less than its type allows"),
    "SCHEMAV_CVC_MAXINCLUSIVE_VALID": _facet(
        "the maximum value allowed ('", "').",
        "is greater than the maximum {}", "is greater than its type allows"),
    "SCHEMAV_CVC_MINEXCLUSIVE_VALID": _facet(
        "must be greater than '", "'.",
        "must be greater than {}", "is not above the lower bound of its type"),
    "SCHEMAV_CVC_MAXEXCLUSIVE_VALID": _facet(
        "must be less than '", "'.",
        "must be less than {}", "is not below the upper bound of its type"),
    "SCHEMAV_CVC_TOTALDIGITS_VALID": _facet(
        "digits than are allowed ('", "').",
        "has more digits than the {} allowed", "has more digits than its type allows"),
    "SCHEMAV_CVC_FRACTIONDIGITS_VALID": _facet(
        "digits than are allowed ('", "').",
        "has more fractional digits than the {} allowed",
        "has more fractional digits than its type allows"),
    "SCHEMAV_CVC_FACET_VALID": _fixed("breaks a facet of its type"),
    "SCHEMAV_ELEMENT_CONTENT": _content,
    "SCHEMAV_CVC_COMPLEX_TYPE_2_4": _content,
    "SCHEMAV_CVC_COMPLEX_TYPE_2_1": _fixed("must be empty: no text and no child elements"),
    "SCHEMAV_CVC_COMPLEX_TYPE_2_2": _fixed("must hold text only, no child elements"),
    "SCHEMAV_CVC_COMPLEX_TYPE_2_3": _fixed("must hold child elements only, no text"),
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1": _fixed("is not allowed here"),
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2": _fixed("is not allowed here"),
    "SCHEMAV_CVC_COMPLEX_TYPE_4": _missing_attribute,
    "SCHEMAV_CVC_ELT_1": _fixed("is not a root element the schema declares (check the root "
                                "element's name and namespace)"),
    "SCHEMAV_CVC_ELT_2": _fixed("is abstract and cannot be used"),
    "SCHEMAV_CVC_ELT_3_1": _fixed("is not nillable: xsi:nil is not allowed"),
    "SCHEMAV_CVC_ELT_3_2_1": _fixed("is nil (xsi:nil) and must be empty"),
    "SCHEMAV_CVC_ELT_3_2_2": _fixed("is nil (xsi:nil) but has a fixed value"),
    "SCHEMAV_CVC_ELT_4_1": _fixed("has an xsi:type that is not a type name"),
    "SCHEMAV_CVC_ELT_4_2": _fixed("has an xsi:type that names no type of the schema"),
    "SCHEMAV_CVC_ELT_4_3": _fixed("has an xsi:type that cannot be used here"),
    "SCHEMAV_CVC_ELT_5_2_1": _fixed("must have no child elements (it has a fixed value)"),
    "SCHEMAV_CVC_ELT_5_2_2_1": _FIXED_VALUE,
    "SCHEMAV_CVC_ELT_5_2_2_2_1": _FIXED_VALUE,
    "SCHEMAV_CVC_ELT_5_2_2_2_2": _FIXED_VALUE,
    "SCHEMAV_CVC_AU": _FIXED_VALUE,
    "SCHEMAV_CVC_TYPE_3_1_1": _fixed("has attributes, which its simple type does not allow"),
    "SCHEMAV_CVC_TYPE_3_1_2": _fixed("must not have child elements (its type is simple)"),
    "SCHEMAV_CVC_IDC": _fixed("breaks an identity constraint (a duplicate or missing key)"),
})
