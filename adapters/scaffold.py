"""`portgw adapters new --xsd`: an adapter skeleton written from a format's XML Schema.

An integrator with a published XSD and a few real documents gets a plug-in package that
already passes the conformance kit: the adapter (reading and building every element and
attribute the schema declares), its canonical Avro record, the schema files (the main one and
those it imports or includes, flattened into one folder), the samples, a test that runs the
kit on them, and a pyproject.toml that declares the entry point. What it cannot know is left
to the integrator, and the generated code says where: what identifies a document (the
business key), the business rules, and better canonical types than the text of a value.

The schema is read with `xmlschema`, from local files only and without a DTD: the same rule
the gateway holds documents to holds the schemas it is given.

The mapping, element by element, in the schema's order:
- a simple element or attribute becomes a field: `boolean`, `int`, `long` or `double` where
  the XSD type's values are those of that Avro type (the integer types all map to `int` or
  `long`), else `string`, the text as written (decimals, dates and times included: choosing
  their canonical type needs the format's rules, see docs/adapters.md);
- a complex element becomes a nested record; simple content becomes its `value` field;
- an element that may be absent (minOccurs 0, or in a choice, or in an optional group)
  becomes a union with null; one that may repeat becomes an array;
- wildcards (`xs:any`, `xs:anyAttribute`) and mixed text are not read, and the generated
  module lists them; a type that contains itself is refused (write that part by hand).
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import xmlschema
from lxml import etree

from message_formats import AvroSchemas, XsdStore

from .base import Adapter, AdapterError

XSD_NS = "http://www.w3.org/2001/XMLSchema"
LOCATED = (f"{{{XSD_NS}}}import", f"{{{XSD_NS}}}include", f"{{{XSD_NS}}}redefine")
# XSD built-in types whose value survives value -> text -> value unchanged. The unbounded
# integer types are taken as long: a value beyond 64 bits is refused when the record is
# encoded (AVRO_...), which a format that needs such numbers changes to string by hand.
AVRO_OF_BUILTIN = {
    "boolean": "boolean",
    "int": "int", "short": "int", "byte": "int", "unsignedShort": "int", "unsignedByte": "int",
    "long": "long", "unsignedInt": "long", "unsignedLong": "long", "integer": "long",
    "nonNegativeInteger": "long", "positiveInteger": "long", "negativeInteger": "long",
    "nonPositiveInteger": "long",
    "float": "double", "double": "double",
}
CONVERTERS = {"string": "", "boolean": "as_bool", "int": "int", "long": "int",
              "double": "float"}
FORMATTERS = {"string": "", "boolean": "format_bool", "int": "str", "long": "str",
              "double": "repr"}
FORMAT_ID = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")
PACKAGE = re.compile(r"[a-z][a-z0-9_]*\Z")
AVRO_NAMESPACE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


class ScaffoldError(AdapterError):
    """A skeleton that cannot be written; `code` says why (SCAFFOLD_...)."""

    code = "SCAFFOLD_FAILED"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True)
class Leaf:
    """A field read from text: an attribute (`attribute` True), an element's text, or, for
    an element with simple content, its own text (`tag` empty)."""

    name: str
    tag: str
    avro: str
    optional: bool
    repeated: bool
    attribute: bool = False


@dataclass(frozen=True, slots=True)
class Branch:
    """A field read from a complex child element: a nested record."""

    name: str
    tag: str
    record: Record
    optional: bool
    repeated: bool


@dataclass(frozen=True, slots=True)
class Record:
    """One canonical record: what one complex element holds."""

    name: str
    fields: tuple[Leaf | Branch, ...]
    skipped: tuple[str, ...]  # what the skeleton does not read (wildcards, mixed text)


@dataclass(frozen=True, slots=True)
class Occurs:
    optional: bool
    repeated: bool

    def within(self, item: Any, in_choice: bool) -> Occurs:
        high = item.max_occurs
        return Occurs(self.optional or item.min_occurs == 0 or in_choice,
                      self.repeated or high is None or high > 1)


@dataclass(slots=True)
class _Namer:
    """Unique record names: one per XSD type (named types are shared where reused)."""

    by_type: dict[int, Record] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    open_types: list[int] = field(default_factory=list)

    def fresh(self, base: str) -> str:
        name, number = base, 2
        while name in self.used:
            name, number = f"{base}{number}", number + 1
        self.used.add(name)
        return name


def record_of(element: Any) -> Record:
    """The canonical record of a global element of an `xmlschema` schema."""
    return _record(element, _Namer())


def _record(element: Any, namer: _Namer) -> Record:
    xsd_type = element.type
    known = namer.by_type.get(id(xsd_type))
    if known is not None:
        return known
    if id(xsd_type) in namer.open_types:
        raise ScaffoldError("SCAFFOLD_RECURSIVE_TYPE",
                            f"element {local_name(element.name)} contains itself; a skeleton "
                            "cannot flatten a recursive type (write that part by hand)")
    namer.open_types.append(id(xsd_type))
    name = namer.fresh(_record_name(element))
    fields: list[Leaf | Branch] = []
    skipped: list[str] = []
    for attribute_name, attribute in xsd_type.attributes.items():
        if attribute_name is None:
            skipped.append("xs:anyAttribute")
            continue
        fields.append(Leaf(snake(local_name(attribute_name)), attribute_name,
                           avro_of(attribute.type), attribute.use != "required", False, True))
    if xsd_type.has_simple_content():
        fields.append(Leaf("value", "", avro_of(xsd_type.content), False, False))
    elif xsd_type.has_complex_content():
        if xsd_type.mixed:
            skipped.append("mixed text")
        content = xsd_type.content
        for child, occurs in _children(content, Occurs(False, False).within(content, False),
                                       skipped):
            fields.append(_field_of(child, occurs, namer))
    namer.open_types.pop()
    record = Record(name, _unique_names(fields), tuple(skipped))
    namer.by_type[id(xsd_type)] = record
    return record


def _record_name(element: Any) -> str:
    """A named type's name without its "Type" ending (the type may serve several elements),
    else the element's."""
    type_name = element.type.name
    if type_name is None:
        return pascal(local_name(element.name))
    return pascal(local_name(type_name).removesuffix("Type") or local_name(type_name))


def _children(group: Any, occurs: Occurs, skipped: list[str]) -> Iterator[tuple[Any, Occurs]]:
    """The elements of a model group, depth first, each with how often it may occur once the
    groups around it are counted in."""
    in_choice = group.model == "choice" and len(group) > 1
    for item in group:
        item_occurs = occurs.within(item, in_choice)
        if hasattr(item, "model"):
            yield from _children(item, item_occurs, skipped)
        elif type(item).__name__ == "XsdAnyElement":
            skipped.append("xs:any")
        else:
            yield item, item_occurs


def _field_of(child: Any, occurs: Occurs, namer: _Namer) -> Leaf | Branch:
    name = snake(local_name(child.name))
    if child.type.is_simple():
        return Leaf(name, child.name, avro_of(child.type), occurs.optional, occurs.repeated)
    return Branch(name, child.name, _record(child, namer), occurs.optional, occurs.repeated)


def _unique_names(fields: Sequence[Leaf | Branch]) -> tuple[Leaf | Branch, ...]:
    seen: set[str] = set()
    unique: list[Leaf | Branch] = []
    for item in fields:
        name, number = item.name, 2
        while name in seen:
            name, number = f"{item.name}_{number}", number + 1
        seen.add(name)
        unique.append(item if name == item.name else _renamed(item, name))
    return tuple(unique)


def _renamed(item: Leaf | Branch, name: str) -> Leaf | Branch:
    if isinstance(item, Leaf):
        return Leaf(name, item.tag, item.avro, item.optional, item.repeated, item.attribute)
    return Branch(name, item.tag, item.record, item.optional, item.repeated)


def avro_of(simple_type: Any) -> str:
    """The Avro type of an XSD simple type: that of its nearest built-in ancestor where the
    text round-trips exactly, else string."""
    current = simple_type
    while current is not None:
        if getattr(current, "is_list", lambda: False)() or \
                getattr(current, "is_union", lambda: False)():
            return "string"
        name = current.name
        if name is not None and name.startswith(f"{{{XSD_NS}}}"):
            return AVRO_OF_BUILTIN.get(local_name(name), "string")
        current = getattr(current, "base_type", None)
    return "string"


def q(value: str) -> str:
    """A Python string literal of `value`, in double quotes."""
    return json.dumps(value, ensure_ascii=False)


def local_name(clark: str) -> str:
    return clark.rpartition("}")[2]


def snake(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    text = re.sub(r"[^0-9A-Za-z]+", "_", words).strip("_").lower() or "field"
    if text[0].isdigit():
        text = f"f_{text}"
    return f"{text}_" if keyword.iskeyword(text) or text == "header" else text


def pascal(name: str) -> str:
    text = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name))
    return text if text and not text[0].isdigit() else f"T{text}"


# ---------------------------------------------------------------- the Avro record


def avro_schema(record: Record, namespace: str, doc: str) -> dict[str, Any]:
    schema = _avro_record(record, set())
    schema["namespace"] = namespace
    schema["doc"] = doc
    schema["fields"].insert(0, {"name": "header", "type": "px.canonical.Header",
                                "doc": "Event header shared by all canonical documents."})
    return schema


def _avro_record(record: Record, defined: set[str]) -> dict[str, Any]:
    defined.add(record.name)
    fields = [_avro_field(item, defined) for item in record.fields]
    return {"type": "record", "name": record.name, "fields": fields}


def _avro_field(item: Leaf | Branch, defined: set[str]) -> dict[str, Any]:
    if isinstance(item, Leaf):
        value: Any = item.avro
    elif item.record.name in defined:
        value = item.record.name
    else:
        value = _avro_record(item.record, defined)
    if item.repeated:
        return {"name": item.name, "type": {"type": "array", "items": value}}
    if item.optional:
        return {"name": item.name, "type": ["null", value], "default": None}
    return {"name": item.name, "type": value}


# ---------------------------------------------------------------- the schema files


def schema_files(main: Path) -> dict[Path, str]:
    """The main schema and every local file it imports, includes or redefines, each with the
    name its copy gets in the flat xsd/ folder (never one of the gateway's own XSD names,
    which would be found first). Remote locations are refused: the gateway never loads a
    schema from the network."""
    names: dict[Path, str] = {}
    builtin = set(XsdStore().names())
    pending = [main.resolve()]
    while pending:
        path = pending.pop()
        if path in names:
            continue
        names[path] = _flat_name(path, builtin | set(names.values()))
        pending.extend(location for _, location in _locations(path))
    return names


def _locations(path: Path) -> Iterator[tuple[etree._Element, Path]]:
    for element in _read_schema_tree(path).iter(*LOCATED):
        location = element.get("schemaLocation")
        if location:
            yield element, _local_path(path, location)


def _local_path(base: Path, location: str) -> Path:
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        raise ScaffoldError("SCAFFOLD_XSD_REMOTE",
                            f"{base.name} names a schema at a {parsed.scheme} location; "
                            "download it and point schemaLocation at the local file")
    target = (base.parent / unquote(parsed.path)).resolve()
    if not target.is_file():
        raise ScaffoldError("SCAFFOLD_XSD_UNREADABLE",
                            f"{base.name} names a schema file that is not there: {location}")
    return target


def _flat_name(path: Path, taken: set[str]) -> str:
    stem = re.sub(r"[^0-9A-Za-z_-]+", "_", path.stem) or "schema"
    name, number = stem, 2
    while name in taken:
        name, number = f"{stem}_{number}", number + 1
    return name


def _read_schema_tree(path: Path) -> etree._ElementTree:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        tree = etree.parse(str(path), parser)
    except (OSError, etree.XMLSyntaxError) as exc:
        raise ScaffoldError("SCAFFOLD_XSD_UNREADABLE", f"{path.name}: {exc}") from None
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise ScaffoldError("SCAFFOLD_XSD_DTD",
                            f"{path.name} has a DOCTYPE; the gateway parses no DTD: remove it "
                            "and write out the entities it defines")
    return tree


def copy_schemas(names: dict[Path, str], target: Path) -> None:
    """Writes each schema as <flat name>.xsd with its schemaLocations pointing at the copies."""
    for path, name in names.items():
        tree = _read_schema_tree(path)
        for element in tree.iter(*LOCATED):
            location = element.get("schemaLocation")
            if location:
                element.set("schemaLocation", f"{names[_local_path(path, location)]}.xsd")
        tree.write(str(target / f"{name}.xsd"), xml_declaration=True, encoding="UTF-8")


def _xmlschema_of(main: Path) -> Any:
    """The schema as `xmlschema` reads it, once `schema_files` has refused DTDs and remote
    locations: local files only, with its safe parser."""
    try:
        return xmlschema.XMLSchema(str(main), allow="local", defuse="always")
    except (xmlschema.XMLSchemaException, OSError, etree.XMLSyntaxError) as exc:
        raise ScaffoldError("SCAFFOLD_XSD_UNREADABLE", f"{main.name}: {exc}") from None


def root_element(schema: Any, wanted: str | None) -> Any:
    """The global element the documents start with: `wanted` (local name or Clark), or the
    schema's only global element."""
    candidates = list(schema.elements.values())
    if wanted is not None:
        chosen = [e for e in candidates if wanted in (e.name, local_name(e.name))]
        if not chosen:
            raise ScaffoldError("SCAFFOLD_NO_ROOT", f"the schema declares no global element "
                                f"{wanted}; it has: {_listing(candidates)}")
        return chosen[0]
    if len(candidates) != 1:
        raise ScaffoldError("SCAFFOLD_ROOT_AMBIGUOUS", "the schema has several global "
                            f"elements; choose one with --root: {_listing(candidates)}")
    return candidates[0]


def _listing(elements: Sequence[Any]) -> str:
    return ", ".join(sorted(local_name(e.name) for e in elements)) or "none"


# ---------------------------------------------------------------- the adapter module


@dataclass(frozen=True, slots=True)
class Names:
    """What the integrator names: the format, the document type, the package and record."""

    format_id: str
    document_type: str
    package: str
    avro_namespace: str
    label: str

    def check(self) -> None:
        rules = ((FORMAT_ID, self.format_id, "--format-id", "lower-case words joined by '-'"),
                 (PACKAGE, self.package, "--package", "a lower-case Python package name"),
                 (AVRO_NAMESPACE, self.avro_namespace, "--avro-namespace",
                  "dotted Avro names"),
                 (PACKAGE, self.document_type, "--document-type", "lower-case letters, "
                  "digits and '_'"))
        for pattern, value, option, rule in rules:
            if not pattern.match(value) or keyword.iskeyword(value):
                raise ScaffoldError("SCAFFOLD_NAME_INVALID", f"{option} must be {rule}")
        if not self.label.isprintable() or '"' in self.label or "\\" in self.label:
            raise ScaffoldError("SCAFFOLD_NAME_INVALID",
                                "--label must be printable text without quotes or backslashes")

    @property
    def class_name(self) -> str:
        return f"{pascal(self.package.removesuffix('_adapter'))}Adapter"


@dataclass(slots=True)
class _Tags:
    """One module constant per element or attribute name, named after its local name."""

    by_clark: dict[str, str] = field(default_factory=dict)

    def constant(self, clark: str) -> str:
        known = self.by_clark.get(clark)
        if known is not None:
            return known
        base = snake(local_name(clark)).strip("_").upper() or "TAG"
        name, number = base, 2
        while name in self.by_clark.values() or name in RESERVED_CONSTANTS:
            name, number = f"{base}_{number}", number + 1
        self.by_clark[clark] = name
        return name


RESERVED_CONSTANTS = frozenset({"ROOT", "NS", "NSMAP", "HERE"})


def adapter_module(names: Names, root: Any, record: Record, xsd_name: str,
                   source_name: str) -> str:
    tags = _Tags()
    records = list(_records_in(record))
    readers = [_reader(each, tags) for each in records]
    builders = [_builder(each, tags) for each in records]
    namespace = root.name.partition("}")[0][1:] if root.name.startswith("{") else ""
    skipped = sorted({f"{r.name}: {what}" for r in records for what in r.skipped})
    lines = [
        f'"""{names.label} ("{names.format_id}"): an adapter written by',
        f"`portgw adapters new` from {source_name}.",
        "",
        "Written to pass the conformance kit on the samples given; what the schema cannot say",
        "is yours to finish: `business_key` (what identifies one document across its",
        "versions), `check` (the business rules, each refusal a RULE_ code), and the canonical",
        "types of values kept as their text (decimals, dates, codes).",
    ]
    if skipped:
        lines += ["", "Not read (wildcards and mixed text the schema allows):",
                  *(f"- {item}" for item in skipped)]
    lines += [
        '"""', "", "from __future__ import annotations", "",
        "from collections.abc import Callable, Mapping",
        "from pathlib import Path", "from typing import Any, TypeVar", "",
        "from lxml import etree", "", "from adapters.toolkit import XmlAdapter", "",
        'T = TypeVar("T")', f"NS = {q(namespace)}",
        "NSMAP = {None: NS} if NS else None",
        f"ROOT = {q(root.name)}",
    ]
    body = [*readers, *builders]
    lines += [f"{constant} = {q(clark)}" for clark, constant in tags.by_clark.items()]
    lines += ["", "", *_adapter_class(names, root, record, xsd_name), *HELPERS.splitlines()]
    for block in body:
        lines += ["", "", *block]
    return "\n".join(lines) + "\n"


def _records_in(record: Record) -> Iterator[Record]:
    seen: set[str] = set()
    pending = [record]
    while pending:
        current = pending.pop(0)
        if current.name in seen:
            continue
        seen.add(current.name)
        yield current
        pending.extend(item.record for item in current.fields if isinstance(item, Branch))


def _adapter_class(names: Names, root: Any, record: Record, xsd_name: str) -> list[str]:
    version_attribute = next((item for item in record.fields if isinstance(item, Leaf)
                              and item.attribute and item.tag == "version"
                              and item.avro in ("int", "long")), None)
    version = ('int(root.get("version", "1"))  # the root\'s version attribute'
               if version_attribute is not None else
               "1  # the schema carries no version: say here where a document's version is")
    return [
        f"class {names.class_name}(XmlAdapter):",
        f"    format_id = {q(names.format_id)}",
        f"    document_type = {q(names.document_type)}",
        f"    schema_name = {q(names.avro_namespace + '.' + record.name)}",
        f"    xsd_name = {q(xsd_name)}",
        "    root_elements = (ROOT,)",
        '    xsd_dir = Path(__file__).parent / "xsd"',
        f"    label = {q(names.label)}",
        "    __slots__ = ()",
        "",
        "    def document_version(self, root: etree._Element) -> int:",
        f"        return {version}",
        "",
        "    def read(self, root: etree._Element) -> dict[str, Any]:",
        f"        return read_{snake(record.name)}(root)",
        "",
        "    def business_key(self, record: Mapping[str, Any]) -> str:",
        "        # What identifies this document across its versions: check and replace.",
        f"        return {_key_guess(record, names)}",
        "",
        "    def build(self, record: Mapping[str, Any], version: int) -> etree._Element:",
        "        root = etree.Element(ROOT, nsmap=NSMAP)",
        f"        build_{snake(record.name)}(root, record)",
        "        return root",
    ]


def _key_guess(record: Record, names: Names) -> str:
    leaves = [item for item in record.fields if isinstance(item, Leaf) and item.avro == "string"
              and not item.optional and not item.repeated]
    hinted = [item for item in leaves
              if re.search(r"(^|_)(id|number|no|reference|ref|key)($|_)", item.name)]
    chosen = (hinted or leaves)[:1]
    if chosen:
        return f'str(record[{q(chosen[0].name)}])'
    return repr(names.document_type)


HELPERS = '''

def text(element: etree._Element, tag: str) -> str:
    return element.findtext(tag) or ""


def optional_text(element: etree._Element, tag: str) -> str | None:
    found = element.find(tag)
    return None if found is None else found.text or ""


def texts(element: etree._Element, tag: str) -> list[str]:
    return [found.text or "" for found in element.iterfind(tag)]


def child(element: etree._Element, tag: str) -> etree._Element:
    found = element.find(tag)
    if found is None:  # the schema requires it and the document was validated
        raise ValueError(f"{tag} is missing")
    return found


def optional_value(convert: Callable[[str], T], value: str | None) -> T | None:
    return None if value is None else convert(value)


def optional_record(read: Callable[[etree._Element], dict[str, Any]],
                    element: etree._Element | None) -> dict[str, Any] | None:
    return None if element is None else read(element)


def as_bool(value: str) -> bool:
    return value.strip() in ("true", "1")


def format_bool(value: bool) -> str:
    return "true" if value else "false"


def format_double(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "INF" if value > 0 else "-INF"
    return repr(value)


def add(parent: etree._Element, tag: str, value: str) -> None:
    etree.SubElement(parent, tag).text = value


def set_attribute(element: etree._Element, name: str, value: str | None) -> None:
    if value is not None:
        element.set(name, value)'''


def _reader(record: Record, tags: _Tags) -> list[str]:
    lines = [f"def read_{snake(record.name)}(element: etree._Element) -> dict[str, Any]:",
             "    return {"]
    for item in record.fields:
        lines.append(f"        {q(item.name)}: {_read_expression(item, tags)},")
    lines.append("    }")
    return lines


def _read_expression(item: Leaf | Branch, tags: _Tags) -> str:
    if isinstance(item, Branch):
        tag, reader = tags.constant(item.tag), f"read_{snake(item.record.name)}"
        if item.repeated:
            return f"[{reader}(found) for found in element.iterfind({tag})]"
        if item.optional:
            return f"optional_record({reader}, element.find({tag}))"
        return f"{reader}(child(element, {tag}))"
    convert = CONVERTERS[item.avro]
    if item.tag == "":
        return f'{convert}(element.text or "")' if convert else 'element.text or ""'
    if item.attribute:
        source = f"element.get({tags.constant(item.tag)})"
        if item.optional:
            return f"optional_value({convert}, {source})" if convert else source
        return f'{convert or "str"}(element.get({tags.constant(item.tag)}, ""))'
    tag = tags.constant(item.tag)
    if item.repeated:
        return f"[{convert}(value) for value in texts(element, {tag})]" if convert else \
            f"texts(element, {tag})"
    if item.optional:
        return f"optional_value({convert}, optional_text(element, {tag}))" if convert else \
            f"optional_text(element, {tag})"
    return f"{convert}(text(element, {tag}))" if convert else f"text(element, {tag})"


def _builder(record: Record, tags: _Tags) -> list[str]:
    lines = [f"def build_{snake(record.name)}(element: etree._Element, "
             "record: Mapping[str, Any]) -> None:"]
    for item in record.fields:
        lines += [f"    {line}" for line in _build_statements(item, tags)]
    if not record.fields:
        lines.append("    del element, record  # an empty element")
    return lines


def _build_statements(item: Leaf | Branch, tags: _Tags) -> list[str]:
    value = f"record[{q(item.name)}]"
    if isinstance(item, Branch):
        tag, builder = tags.constant(item.tag), f"build_{snake(item.record.name)}"
        if item.repeated:
            return [f"for value in {value}:",
                    f"    {builder}(etree.SubElement(element, {tag}), value)"]
        if item.optional:
            return [f"if {value} is not None:",
                    f"    {builder}(etree.SubElement(element, {tag}), {value})"]
        return [f"{builder}(etree.SubElement(element, {tag}), {value})"]
    if item.tag == "":
        return [f"element.text = {_formatted(item, value)}"]
    if item.attribute:
        tag = tags.constant(item.tag)
        if item.optional:
            return [f"if {value} is not None:",
                    f"    element.set({tag}, {_formatted(item, value)})"]
        return [f"element.set({tag}, {_formatted(item, value)})"]
    tag = tags.constant(item.tag)
    if item.repeated:
        return [f"for value in {value}:", f"    add(element, {tag}, {_formatted(item, 'value')})"]
    if item.optional:
        return [f"if {value} is not None:", f"    add(element, {tag}, {_formatted(item, value)})"]
    return [f"add(element, {tag}, {_formatted(item, value)})"]


def _formatted(item: Leaf, value: str) -> str:
    if item.avro == "double":
        return f"format_double({value})"
    formatter = FORMATTERS[item.avro]
    return f"{formatter}({value})" if formatter else value


# ---------------------------------------------------------------- the package


@dataclass(frozen=True, slots=True)
class Skeleton:
    """What `write_skeleton` wrote, for the command to report."""

    folder: Path
    package: Path
    adapter_module: Path
    avro_file: Path
    schema_name: str
    files: tuple[Path, ...]


def write_skeleton(xsd: Path, out: Path, names: Names, samples: Sequence[Path],
                   root_name: str | None = None) -> Skeleton:
    """Writes the plug-in project into `out` (which must not exist yet)."""
    names.check()
    if out.exists():
        raise ScaffoldError("SCAFFOLD_TARGET_EXISTS", f"{out} exists; name a new folder")
    if not samples:
        raise ScaffoldError("SCAFFOLD_NO_SAMPLES", "give at least one real document of the "
                            "format with --sample: the tests and the kit run on samples")
    files = schema_files(xsd)
    root = root_element(_xmlschema_of(xsd), root_name)
    record = record_of(root)
    xsd_name = files[xsd.resolve()]
    package = out / names.package
    for folder in (package / "xsd", package / "avro", out / "samples", out / "tests"):
        folder.mkdir(parents=True)
    copy_schemas(files, package / "xsd")
    schema_name = f"{names.avro_namespace}.{record.name}"
    avro_file = package / "avro" / f"{schema_name}.avsc"
    avro = avro_schema(record, names.avro_namespace,
                       f"{names.label}, canonical form (written from {xsd.name}).")
    avro_file.write_text(json.dumps(avro, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    module = package / "__init__.py"
    module.write_text(adapter_module(names, root, record, xsd_name, xsd.name), encoding="utf-8")
    _copy_samples(samples, out / "samples")
    (out / "tests" / "test_kit.py").write_text(_kit_test(names), encoding="utf-8")
    (out / "pyproject.toml").write_text(_pyproject(names), encoding="utf-8")
    written = tuple(sorted(path for path in out.rglob("*") if path.is_file()))
    return Skeleton(out, package, module, avro_file, schema_name, written)


def load_written(skeleton: Skeleton, names: Names) -> tuple[Adapter, AvroSchemas]:
    """The written adapter, made as the gateway would make it once installed, with its
    canonical schema: what the command runs the conformance kit on. The package is imported
    from its file under its own name for the time of the import only."""
    spec = importlib.util.spec_from_file_location(
        names.package, skeleton.adapter_module,
        submodule_search_locations=[str(skeleton.package)])
    if spec is None or spec.loader is None:
        raise ScaffoldError("SCAFFOLD_NOT_LOADED", f"cannot import {skeleton.adapter_module}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(names.package)
    sys.modules[names.package] = module
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            sys.modules.pop(names.package, None)
        else:
            sys.modules[names.package] = previous
    adapter: Adapter = getattr(module, names.class_name)()
    return adapter, AvroSchemas(skeleton.package / "avro")


def _copy_samples(samples: Sequence[Path], target: Path) -> None:
    names = [sample.name for sample in samples]
    if len(set(names)) != len(names) or "expected.json" in names:
        raise ScaffoldError("SCAFFOLD_SAMPLE_NAMES", "samples need distinct file names, "
                            "none of them expected.json")
    for sample in samples:
        if not sample.is_file():
            raise ScaffoldError("SCAFFOLD_SAMPLE_MISSING", f"no sample file {sample}")
        shutil.copyfile(sample, target / sample.name)
    expected = {"_comment": "Each sample the adapter must refuse, with its code, e.g. "
                "{\"bad.xml\": {\"code\": \"RULE_X\"}}; every other sample must be accepted."}
    (target / "expected.json").write_text(json.dumps(expected, indent=2) + "\n",
                                          encoding="utf-8")


def _kit_test(names: Names) -> str:
    return f'''"""The conformance kit on the samples, as `portgw adapters check` runs it."""

from pathlib import Path

from adapters.kit import check_adapter
from message_formats import AvroSchemas
from {names.package} import {names.class_name}

PROJECT = Path(__file__).resolve().parents[1]


def test_the_samples_pass_the_conformance_kit() -> None:
    schemas = AvroSchemas(PROJECT / {q(names.package)} / "avro")
    report = check_adapter({names.class_name}(), samples_dir=PROJECT / "samples",
                           schemas=schemas)
    assert report.ok, report.describe()
'''


def _pyproject(names: Names) -> str:
    return f'''# An adapter plug-in for the Port Exchange Gateway, written by `portgw adapters new`.
# `pip install .` here, and `portgw adapters list` shows {names.format_id}.
[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "{names.package.replace("_", "-")}"
version = "0.1.0"
description = "{names.label} for the Port Exchange Gateway"
requires-python = ">=3.11"
dependencies = ["port-exchange-gateway"]

[project.entry-points."port_exchange_gateway.adapters"]
{names.format_id} = "{names.package}:{names.class_name}"

[tool.setuptools]
packages = ["{names.package}"]

[tool.setuptools.package-data]
{names.package} = ["avro/*.avsc", "xsd/*.xsd"]
'''
