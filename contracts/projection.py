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
"""

from __future__ import annotations

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
_DROP = object()  # what a transform returns for a value that must not be delivered
_MISSING = object()
# Values that can be delivered as they are: immutable, so sharing them is safe.
_SCALARS = frozenset({str, int, float, bool, type(None), bytes, Decimal, date, datetime})
_AVRO_PRIMITIVES = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)


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
    root = _Node()
    for path in include:
        _insert_include(root, path)
    for path, rule in masks.items():
        _insert_mask(root, path, rule)
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


# --- the path tree ------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    """Built while compiling, thrown away after: what to do with one field."""

    children: dict[str, _Node] = field(default_factory=dict)
    whole: bool = False  # delivered entirely (bar masks below it)
    mask: MaskRule | None = None


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
    if not isinstance(schema, Mapping) or schema.get("type") not in ("record", "error"):
        raise ValueError("field_paths_of_avro needs an Avro record schema")
    collector = _AvroPaths(dict(schema.get("__named_schemas", {})))
    collector.visit(schema, "", "")
    return frozenset(collector.paths)


class _AvroPaths:
    """One walk over a schema: the named types met so far and the paths found."""

    __slots__ = ("named", "open_records", "paths")

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.paths: set[str] = set()
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
        found = self.named.get(name)
        if found is None and namespace:
            found = self.named.get(f"{namespace}.{name}")
        if isinstance(found, Mapping):
            self.visit_definition(found, path, namespace)

    def visit_definition(self, avro_type: Mapping[str, Any], path: str, namespace: str) -> None:
        kind = avro_type.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            full_name = _full_name(avro_type, namespace)
            self.named.setdefault(full_name, avro_type)
            if kind in ("record", "error"):
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
            self.visit(avro_field.get("type"), child, namespace)
        self.open_records.discard(full_name)


def _full_name(avro_type: Mapping[str, Any], namespace: str) -> str:
    name = str(avro_type.get("name", ""))
    if "." in name:
        return name
    own_namespace = avro_type.get("namespace", namespace)
    return f"{own_namespace}.{name}" if own_namespace else name
