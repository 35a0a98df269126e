"""Projection: the part of a record a contract delivers, with its masks applied.

A contract names the field paths it shares; everything else stays behind (default deny).
Paths are dotted, and ``[]`` marks a step into every element of an array:

* ``"ship"`` delivers the whole ship sub-record;
* ``"ship.name"`` delivers a ship holding only its name;
* ``"crew[].family_name"`` delivers every crew member, each holding only a family name.

A step that meets an array goes into each element whether or not the path says ``[]``;
the marker is there so that contract paths read like, and can be checked against, the
paths of the canonical Avro schemas (`field_paths_of_avro`).

Masks (see `contracts.masking`) sit at paths that are delivered: the path itself or one
under it (``ship`` included, ``ship.imo_number`` pseudonymised). A ``drop`` mask removes
its field even from a parent delivered whole. Projections are compiled once into nested
closures; applying one builds a new record and never alters, or shares containers with,
the input. Fields absent from the input are absent from the output; a partly delivered
record lists its fields in the order the contract first names them, a record delivered whole
keeps its own order.

A recipient gets its part as Avro: `projected_avro_schema` gives the record schema of what a
projection delivers from records of a canonical schema. `field_paths_of_avro` lists the paths
a contract may name in a schema, `personal_paths_of_avro` those of fields marked
``"personal": true``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from contracts.errors import ContractInvalid
from contracts.masking import MaskRule

Record = Mapping[str, Any]
Transform = Callable[[Any], Any]

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[\])*\Z")
_FULL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_DROP = object()  # what a transform returns for a value that must not be delivered
_MISSING = object()
# Values that can be delivered as they are: immutable, so sharing them is safe.
_SCALARS = frozenset({str, int, float, bool, type(None), bytes, Decimal, date, datetime})
_AVRO_PRIMITIVES = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
_RECORD_KINDS = frozenset({"record", "error"})
_NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})


@dataclass(frozen=True, slots=True)
class Projection:
    """A compiled projection. Call it with a record; hot loops may call `project`. The
    masking key lives only inside the closures, never in the repr."""

    include: tuple[str, ...]
    masks: tuple[tuple[str, MaskRule], ...]
    project: Callable[[Record], dict[str, Any]] = field(repr=False, compare=False)

    def __call__(self, record: Record) -> dict[str, Any]:
        return self.project(record)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the contract names, for checking against a schema."""
        return tuple(dict.fromkeys([*self.include, *(path for path, _ in self.masks)]))

    def describe(self) -> str:
        """One line for decision explanations and the trail."""
        masked = ", ".join(f"{path} ({rule})" for path, rule in self.masks)
        return f"fields {', '.join(self.include) or 'none'}; masked {masked or 'none'}"


def compile_projection(
    include: Sequence[str], masks: Mapping[str, MaskRule], *, key: bytes
) -> Projection:
    """Compile once; errors: CONTRACT_BAD_PATH (malformed path), CONTRACT_MASK_NOT_INCLUDED,
    CONTRACT_BAD_MASK (a mask under another mask, or pseudonyms without a key)."""
    root = _tree(include, masks)
    if not key and any(rule.kind == "pseudonym" for rule in masks.values()):
        raise ContractInvalid("pseudonym masks need a non-empty key", code="CONTRACT_BAD_MASK")
    project = _fields_projector(_field_entries(root, key))
    return Projection(
        include=tuple(dict.fromkeys(include)),
        masks=tuple(masks.items()),
        project=project,
    )


def split_path(path: str) -> tuple[str, ...]:
    """The field names along a path, without the `[]` markers; CONTRACT_BAD_PATH if it is
    not a dotted path of Avro names."""
    segments = path.split(".")
    if not all(_SEGMENT.match(segment) for segment in segments):
        raise ContractInvalid(f"{path!r} is not a field path like 'ship.name' or "
                              f"'crew[].family_name'", code="CONTRACT_BAD_PATH")
    return tuple(segment.split("[", 1)[0] for segment in segments)


def validate_paths(paths: Iterable[str], known_paths: Collection[str]) -> list[str]:
    """The paths that are not among `known_paths`, in first-seen order, each once."""
    known = known_paths if isinstance(known_paths, set | frozenset) else set(known_paths)
    return [path for path in dict.fromkeys(paths) if path not in known]


def projected_avro_schema(
    schema: Mapping[str, Any], projection: Projection, *, name: str
) -> dict[str, Any]:
    """The Avro record schema (plain JSON, full names throughout) of what `projection` makes
    of records of `schema` (fastavro's parsed form or the plain JSON of a record schema);
    `name` is the full name of the new top-level record.

    Fields follow `project`: only the delivered ones, in the order it outputs them (contract
    order in a partly delivered record, the record's own order in one delivered whole), each
    keeping its doc and other attributes. A masked field becomes ``["null", "string"]``
    (default null: masking fails closed to null), an array of such for a masked array; a
    ``drop`` takes the field out. A record delivered partly, or whole with masks below it,
    becomes a new record named after `name`'s namespace and its path
    (``crew[].identity_document`` → ``CrewItemIdentityDocument``), clashing with no name of
    the schema; a named type delivered untouched keeps its definition, given where the output
    first uses it and referred to by name after. A default is kept where it still fits: any
    on an untouched field, a null or empty-array one on a reshaped field.

    Errors: CONTRACT_UNKNOWN_FIELD for a path the schema lacks; CONTRACT_UNSUPPORTED_SCHEMA
    where a path enters a union that also holds a map (`project` would treat the map like a
    record); ValueError for a schema that is not a record, a malformed `name`, or a `name`
    that is also a type the projection keeps."""
    walk = _walk_avro(schema)
    unknown = validate_paths(projection.paths, walk.paths)
    if unknown:
        raise ContractInvalid(
            f"{_full_name(schema, '')} has no field {', '.join(map(repr, unknown))}",
            code="CONTRACT_UNKNOWN_FIELD")
    if not _FULL_NAME.match(name):
        raise ValueError(f"{name!r} is not a full Avro name like 'px.projected.Fal5CrewList'")
    root = _tree(projection.include, dict(projection.masks))
    builder = _SchemaBuilder(schema, walk, name)
    return builder.record(schema, _full_name(schema, ""), root, "", whole=False, name=name)


# --- the path tree ------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    """Built while compiling, thrown away after: what to do with one field."""

    children: dict[str, _Node] = field(default_factory=dict)
    whole: bool = False  # delivered entirely (bar masks below it)
    mask: MaskRule | None = None


def _tree(include: Iterable[str], masks: Mapping[str, MaskRule]) -> _Node:
    root = _Node()
    for path in include:
        _insert_include(root, path)
    for path, rule in masks.items():
        _insert_mask(root, path, rule)
    return root


def _insert_include(root: _Node, path: str) -> None:
    node = root
    for name in split_path(path):
        node = node.children.setdefault(name, _Node())
    node.whole = True


def _insert_mask(root: _Node, path: str, rule: MaskRule) -> None:
    node, included = root, False
    for name in split_path(path):
        child = node.children.get(name)
        if child is None:
            if not included:
                raise ContractInvalid(f"mask on {path!r}, which the contract does not deliver",
                                      code="CONTRACT_MASK_NOT_INCLUDED")
            child = node.children[name] = _Node()
        node = child
        if node.mask is not None:
            raise ContractInvalid(f"mask on {path!r} lies under (or repeats) another mask",
                                  code="CONTRACT_BAD_MASK")
        included = included or node.whole
    if not included:
        raise ContractInvalid(f"mask on {path!r}, which the contract does not deliver",
                              code="CONTRACT_MASK_NOT_INCLUDED")
    if _has_mask_below(node):
        raise ContractInvalid(f"mask on {path!r} covers another mask below it",
                              code="CONTRACT_BAD_MASK")
    node.mask = rule


def _has_mask_below(node: _Node) -> bool:
    return any(child.mask is not None or _has_mask_below(child)
               for child in node.children.values())


# --- compiled closures --------------------------------------------------------------------


def _field_entries(node: _Node, key: bytes) -> tuple[tuple[str, Transform | None], ...]:
    """(field name, transform) for a partly delivered record; None means "copy as is"."""
    return tuple(
        (name, _transform_of(child, key, within_whole=False))
        for name, child in node.children.items()
    )


def _transform_of(node: _Node, key: bytes, *, within_whole: bool) -> Transform | None:
    """What to do with one field's value; below a field delivered whole, every field is
    whole too, whatever narrower includes also name it."""
    if node.mask is not None:
        return _mask_transform(node.mask, key)
    if node.whole or within_whole:
        overrides = tuple(
            (name, _transform_of(child, key, within_whole=True))
            for name, child in node.children.items()
            if child.mask is not None or _has_mask_below(child)
        )
        return _whole_with_overrides(overrides) if overrides else None
    return _element_wise(_fields_projector(_field_entries(node, key)))


def _mask_transform(rule: MaskRule, key: bytes) -> Transform:
    if rule.drops:
        return lambda _value: _DROP
    return lambda value: rule.apply(value, key)


def _fields_projector(
    entries: tuple[tuple[str, Transform | None], ...],
) -> Callable[[Record], dict[str, Any]]:
    def project(record: Record) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, transform in entries:
            value = record.get(name, _MISSING)
            if value is _MISSING:
                continue
            if transform is None:
                out[name] = value if value.__class__ in _SCALARS else _copy(value)
                continue
            value = transform(value)
            if value is not _DROP:
                out[name] = value
        return out

    return project


def _element_wise(project: Callable[[Record], dict[str, Any]]) -> Transform:
    """Applies a record projection to a record, or to each record of an array. A scalar
    where a record was expected has none of the included fields, so nothing is kept."""

    def transform(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Mapping):
            return project(value)
        if isinstance(value, list | tuple):
            return [kept for item in value if (kept := transform(item)) is not _DROP]
        return _DROP

    return transform


def _whole_with_overrides(overrides: tuple[tuple[str, Transform | None], ...]) -> Transform:
    """A record delivered whole, in its own field order, except for the masked fields below
    it."""
    by_name = {name: override for name, override in overrides if override is not None}

    def transform(value: Any) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for name, item in value.items():
                override = by_name.get(name)
                if override is None:
                    out[name] = item if item.__class__ in _SCALARS else _copy(item)
                elif (masked := override(item)) is not _DROP:
                    out[name] = masked
            return out
        if isinstance(value, list | tuple):
            return [transform(item) for item in value]
        return _copy(value)

    return transform


def _copy(value: Any) -> Any:
    """A copy of the containers (records, arrays); scalars are immutable and shared."""
    if value.__class__ in _SCALARS:
        return value
    scalars = _SCALARS
    if isinstance(value, Mapping):
        return {name: item if item.__class__ in scalars else _copy(item)
                for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [item if item.__class__ in scalars else _copy(item) for item in value]
    return value


# --- paths of an Avro schema --------------------------------------------------------------


def field_paths_of_avro(schema: Mapping[str, Any]) -> frozenset[str]:
    """Every path into a record schema, as contracts write them: nested record fields
    dotted (``ship.name``), an array as its field and its elements (``crew``, ``crew[]``,
    ``crew[].family_name``), unions entered branch by branch (so ``["null", T]`` is T).
    Takes fastavro's parsed form or the plain JSON; a named type is resolved if defined
    earlier in the schema (or in fastavro's ``__named_schemas``), else taken as a leaf.
    Maps and enums are leaves; a recursive record is not entered again."""
    return frozenset(_walk_avro(schema).paths)


def personal_paths_of_avro(schema: Mapping[str, Any]) -> frozenset[str]:
    """The paths, as `field_paths_of_avro` writes them, of the fields whose Avro definition
    carries ``"personal": true``; a record used in several places gives a path for each."""
    return frozenset(_walk_avro(schema).personal)


def _walk_avro(schema: Mapping[str, Any]) -> _AvroPaths:
    if not isinstance(schema, Mapping) or schema.get("type") not in _RECORD_KINDS:
        raise ValueError("an Avro record schema is needed here")
    collector = _AvroPaths(dict(schema.get("__named_schemas", {})))
    collector.visit(schema, "", "")
    return collector


class _AvroPaths:
    """One walk over a schema: the named types met so far, the paths found and those of them
    marked personal."""

    __slots__ = ("named", "open_records", "paths", "personal")

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.paths: set[str] = set()
        self.personal: set[str] = set()
        self.open_records: set[str] = set()

    def visit(self, avro_type: Any, path: str, namespace: str) -> None:
        if isinstance(avro_type, str):
            self.visit_reference(avro_type, path, namespace)
        elif isinstance(avro_type, list):
            for branch in avro_type:
                self.visit(branch, path, namespace)
        elif isinstance(avro_type, Mapping):
            self.visit_definition(avro_type, path, namespace)

    def visit_reference(self, name: str, path: str, namespace: str) -> None:
        if name in _AVRO_PRIMITIVES:
            return
        full_name, found = _resolve(self.named, name, namespace)
        if isinstance(found, Mapping):
            self.visit_definition(found, path, full_name.rpartition(".")[0])

    def visit_definition(self, avro_type: Mapping[str, Any], path: str, namespace: str) -> None:
        kind = avro_type.get("type")
        if kind in _NAMED_KINDS:
            full_name = _full_name(avro_type, namespace)
            self.named.setdefault(full_name, avro_type)
            if kind in _RECORD_KINDS:
                self.visit_record(avro_type, path, full_name)
        elif kind == "array":
            self.paths.add(f"{path}[]")
            self.visit(avro_type.get("items"), f"{path}[]", namespace)
        elif kind != "map":
            self.visit(kind, path, namespace)  # {"type": "long", "logicalType": ...} etc.

    def visit_record(self, record: Mapping[str, Any], path: str, full_name: str) -> None:
        if full_name in self.open_records:
            return
        self.open_records.add(full_name)
        namespace = full_name.rpartition(".")[0]
        for avro_field in record.get("fields", ()):
            child = f"{path}.{avro_field['name']}" if path else str(avro_field["name"])
            self.paths.add(child)
            if avro_field.get("personal") is True:
                self.personal.add(child)
            self.visit(avro_field.get("type"), child, namespace)
        self.open_records.discard(full_name)


def _resolve(named: Mapping[str, Any], name: str, namespace: str) -> tuple[str, Any]:
    """The full name a reference stands for, and the definition of that name if known."""
    if name in named or not namespace:
        return name, named.get(name)
    qualified = f"{namespace}.{name}"
    if qualified in named or "." not in name:
        return qualified, named.get(qualified)
    return name, None


def _full_name(avro_type: Mapping[str, Any], namespace: str) -> str:
    name = str(avro_type.get("name", ""))
    if "." in name:
        return name
    own_namespace = avro_type.get("namespace", namespace)
    return f"{own_namespace}.{name}" if own_namespace else name


# --- the Avro schema of a projection ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Branch:
    """One alternative of a type, named references resolved."""

    source: Any  # as written in the schema, for copying
    kind: str  # "record", "array", "string", ...; "unknown" for an unresolved name
    definition: Mapping[str, Any] | None
    namespace: str  # for the names inside it


class _SchemaBuilder:
    """Builds one projected schema; remembers which names the output has defined so far
    (True: a type of the source schema, False: a new record) and which names are taken."""

    __slots__ = ("defined", "named", "namespace", "taken")

    def __init__(self, schema: Mapping[str, Any], walk: _AvroPaths, name: str) -> None:
        self.named: dict[str, Any] = {}
        _collect_named(schema, "", self.named)  # also those the walk does not enter (maps)
        self.named.update(walk.named)
        self.namespace = name.rpartition(".")[0]
        self.taken = {*self.named, name}
        self.defined: dict[str, bool] = {}

    # records delivered partly, or whole with masks below

    def record(self, source: Mapping[str, Any], source_name: str, node: _Node, path: str, *,
               whole: bool, name: str) -> dict[str, Any]:
        self.defined[name] = False
        namespace = source_name.rpartition(".")[0]
        fields = [f for f in source.get("fields", ()) if isinstance(f, Mapping)]
        built: list[dict[str, Any] | None] = []
        if whole:
            for avro_field in fields:
                child = node.children.get(str(avro_field["name"]))
                if child is None or (child.mask is None and not _has_mask_below(child)):
                    built.append(self.whole_field(avro_field, namespace))
                else:
                    built.append(self.field(avro_field, child, namespace,
                                            _step(path, avro_field["name"]), within_whole=True))
        else:
            by_name = {str(f["name"]): f for f in fields}
            for field_name, child in node.children.items():
                if field_name in by_name:
                    built.append(self.field(by_name[field_name], child, namespace,
                                            _step(path, field_name), within_whole=False))
        return {"type": "record", "name": name,
                **_attributes(source, "type", "name", "namespace", "fields", "aliases"),
                "fields": [f for f in built if f is not None]}

    def field(self, source: Mapping[str, Any], node: _Node, namespace: str, path: str, *,
              within_whole: bool) -> dict[str, Any] | None:
        """A field as `_transform_of` treats it; None for a dropped one."""
        avro_type = source.get("type")
        if node.mask is not None:
            if node.mask.drops:
                return None
            masked = self.masked(avro_type, namespace)
            note = f"Masked ({node.mask}); null where a value cannot be masked."
            doc = source.get("doc")
            out = {"name": source["name"], "type": masked,
                   **_attributes(source, "name", "type", "default"),
                   "doc": f"{doc} {note}" if doc else note}
            if masked == "null" or (isinstance(masked, list) and masked[0] == "null"):
                out["default"] = None
            elif source.get("default") == []:
                out["default"] = []
            return out
        if node.whole or within_whole:
            if not _has_mask_below(node):
                return self.whole_field(source, namespace)
            new_type = self.overrides(avro_type, namespace, node, path)
        else:
            new_type = self.partial(avro_type, namespace, node, path)
        out = {"name": source["name"], "type": new_type,
               **_attributes(source, "name", "type", "default")}
        default = source.get("default", _MISSING)
        if default is None or default == []:  # the null or array branch stays, and first
            out["default"] = default
        return out

    def partial(self, avro_type: Any, namespace: str, node: _Node, path: str) -> Any:
        """`_element_wise`: records projected, arrays element by element, null kept; any
        other value has none of the fields, so `project` leaves it out."""
        branches = self.branches(avro_type, namespace)
        several = sum(b.kind in _RECORD_KINDS for b in branches) > 1
        out: list[Any] = []
        for branch in branches:
            if branch.kind == "null":
                out.append("null")
            elif branch.kind in _RECORD_KINDS and branch.definition is not None:
                out.append(self.new_record(branch, node, path, several, whole=False))
            elif branch.kind == "array" and branch.definition is not None:
                items = self.partial(branch.definition.get("items"), branch.namespace, node,
                                     f"{path}[]")
                out.append({"type": "array", "items": items})
            elif branch.kind == "map":
                raise _unsupported(path)
        return _union(out)

    def overrides(self, avro_type: Any, namespace: str, node: _Node, path: str) -> Any:
        """`_whole_with_overrides`: records reshaped, arrays element by element, any other
        value as it is."""
        branches = self.branches(avro_type, namespace)
        several = sum(b.kind in _RECORD_KINDS for b in branches) > 1
        out: list[Any] = []
        for branch in branches:
            if branch.kind in _RECORD_KINDS and branch.definition is not None:
                out.append(self.new_record(branch, node, path, several, whole=True))
            elif branch.kind == "array" and branch.definition is not None:
                items = self.overrides(branch.definition.get("items"), branch.namespace, node,
                                       f"{path}[]")
                out.append({"type": "array", "items": items})
            elif branch.kind == "map":
                raise _unsupported(path)
            else:
                out.append(self.whole(branch.source, namespace))
        return _union(out)

    def new_record(self, branch: _Branch, node: _Node, path: str, several: bool, *,
                   whole: bool) -> dict[str, Any]:
        assert branch.definition is not None
        source_name = _full_name(branch.definition, branch.namespace)
        suffix = source_name.rpartition(".")[2] if several else ""
        base = _camel_case(path) + suffix
        prefix = f"{self.namespace}." if self.namespace else ""
        name, number = prefix + base, 1
        while name in self.taken:
            number += 1
            name = f"{prefix}{base}{number}"
        self.taken.add(name)
        return self.record(branch.definition, source_name, node, path, whole=whole, name=name)

    def masked(self, avro_type: Any, namespace: str) -> Any:
        """What `MaskRule.apply` makes of a value: text or null, element by element in an
        array."""
        branches = self.branches(avro_type, namespace)
        others = [b for b in branches if b.kind != "array" or b.definition is None]
        out: list[Any] = ["null"] if others else []
        if any(b.kind != "null" for b in others):
            out.append("string")
        out.extend({"type": "array", "items": self.masked(b.definition.get("items"), b.namespace)}
                   for b in branches if b.kind == "array" and b.definition is not None)
        return _union(out)

    # types delivered untouched

    def whole_field(self, source: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        return {"name": source["name"], "type": self.whole(source.get("type"), namespace),
                **_attributes(source, "name", "type")}

    def whole(self, avro_type: Any, namespace: str) -> Any:
        """A copy with full names, each named type defined at its first use in the output
        and referred to by name after."""
        if isinstance(avro_type, str):
            if avro_type in _AVRO_PRIMITIVES:
                return avro_type
            full_name, found = _resolve(self.named, avro_type, namespace)
            return self.definition(found, full_name) if isinstance(found, Mapping) else full_name
        if isinstance(avro_type, list):
            return [self.whole(branch, namespace) for branch in avro_type]
        if not isinstance(avro_type, Mapping):
            return copy.deepcopy(avro_type)
        kind = avro_type.get("type")
        if kind in _NAMED_KINDS:
            return self.definition(avro_type, _full_name(avro_type, namespace))
        if kind == "array":
            return {**_attributes(avro_type, "items"),
                    "items": self.whole(avro_type.get("items"), namespace)}
        if kind == "map":
            return {**_attributes(avro_type, "values"),
                    "values": self.whole(avro_type.get("values"), namespace)}
        if kind in _AVRO_PRIMITIVES:
            return _attributes(avro_type)
        return self.whole(kind, namespace)  # {"type": "px.canonical.Ship"}

    def definition(self, source: Mapping[str, Any], full_name: str) -> Any:
        kept = self.defined.get(full_name)
        if kept is not None:
            if kept:
                return full_name
            raise ValueError(f"{full_name} would name both a new record and a type of the "
                             f"schema; choose another name")
        self.defined[full_name] = True
        kind = source.get("type")
        out: dict[str, Any] = {"type": "record" if kind in _RECORD_KINDS else kind,
                               "name": full_name}
        if "." not in full_name:
            out["namespace"] = ""  # not the namespace of whatever encloses it
        out.update(_attributes(source, "type", "name", "namespace", "fields"))
        if kind in _RECORD_KINDS:
            namespace = full_name.rpartition(".")[0]
            out["fields"] = [self.whole_field(f, namespace) for f in source.get("fields", ())]
        return out

    def branches(self, avro_type: Any, namespace: str) -> list[_Branch]:
        if isinstance(avro_type, list):
            return [b for item in avro_type for b in self.branches(item, namespace)]
        if isinstance(avro_type, str):
            if avro_type in _AVRO_PRIMITIVES:
                return [_Branch(avro_type, avro_type, None, namespace)]
            full_name, found = _resolve(self.named, avro_type, namespace)
            if not isinstance(found, Mapping):
                return [_Branch(avro_type, "unknown", None, namespace)]
            return [_Branch(avro_type, str(found.get("type")), found,
                            full_name.rpartition(".")[0])]
        if isinstance(avro_type, Mapping):
            kind = avro_type.get("type")
            if kind in _NAMED_KINDS:
                return [_Branch(avro_type, str(kind), avro_type, namespace)]
            if kind in ("array", "map") or kind in _AVRO_PRIMITIVES:
                return [_Branch(avro_type, str(kind), avro_type, namespace)]
            return self.branches(kind, namespace)
        return [_Branch(avro_type, "unknown", None, namespace)]


def _collect_named(avro_type: Any, namespace: str, into: dict[str, Any]) -> None:
    """Every named type defined anywhere in a schema (references are not followed)."""
    if isinstance(avro_type, list):
        for branch in avro_type:
            _collect_named(branch, namespace, into)
    elif isinstance(avro_type, Mapping):
        for name, parsed in avro_type.get("__named_schemas", {}).items():
            into.setdefault(name, parsed)
        kind = avro_type.get("type")
        if kind in _NAMED_KINDS:
            full_name = _full_name(avro_type, namespace)
            into.setdefault(full_name, avro_type)
            namespace = full_name.rpartition(".")[0]
        for avro_field in avro_type.get("fields", ()) if kind in _RECORD_KINDS else ():
            _collect_named(avro_field.get("type"), namespace, into)
        for key in ("items", "values"):
            if kind in ("array", "map") and key in avro_type:
                _collect_named(avro_type[key], namespace, into)
        if isinstance(kind, Mapping | list):
            _collect_named(kind, namespace, into)


def _attributes(avro: Mapping[str, Any], *leave_out: str) -> dict[str, Any]:
    """The attributes of a type or field, copied, but for fastavro's own and `leave_out`."""
    return {key: copy.deepcopy(value) for key, value in avro.items()
            if key not in leave_out and not key.startswith("__")}


def _union(branches: list[Any]) -> Any:
    if not branches:
        return "null"  # not reached for a checked path: some branch holds the field
    return branches[0] if len(branches) == 1 else branches


def _step(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


def _camel_case(path: str) -> str:
    """``crew[].identity_document`` → ``CrewItemIdentityDocument``."""
    words = path.replace("[]", ".item").split(".")
    name = "".join(part[:1].upper() + part[1:] for word in words for part in word.split("_"))
    return name if name[:1].isalpha() else f"_{name}"


def _unsupported(path: str) -> ContractInvalid:
    return ContractInvalid(f"{path!r} leads into a union that also holds a map, which the "
                           f"projected schema cannot describe",
                           code="CONTRACT_UNSUPPORTED_SCHEMA")
