"""Hypothesis strategies for values of an Avro schema (fastavro's parsed form or plain JSON),
as fastavro's writer takes them: dicts for records, Decimal for decimals, date and aware
datetime for the date and timestamp logical types. Small on purpose: arrays and maps hold at
most three entries, text is short."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "bytes": st.binary(max_size=8),
    "string": st.text(max_size=8),
}
_NAMED = ("record", "error", "enum", "fixed")
_INSTANTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1),
                         timezones=st.just(UTC))


def avro_values(schema: Any) -> st.SearchStrategy[Any]:
    """Values of `schema`; named types are resolved through fastavro's ``__named_schemas``
    or where the schema defines them."""
    named = dict(schema.get("__named_schemas", {})) if isinstance(schema, Mapping) else {}
    return _Strategies(named).of(schema, "")


class _Strategies:
    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.by_name: dict[str, st.SearchStrategy[Any]] = {}

    def of(self, avro_type: Any, namespace: str) -> st.SearchStrategy[Any]:
        if isinstance(avro_type, list):
            return st.one_of([self.of(branch, namespace) for branch in avro_type])
        if isinstance(avro_type, str):
            if avro_type in _PRIMITIVES:
                return _PRIMITIVES[avro_type]
            full = avro_type
            if avro_type not in self.named and "." not in avro_type and namespace:
                full = f"{namespace}.{avro_type}"
            return self.named_type(full)
        kind = avro_type["type"]
        if kind in _NAMED:
            full = _full_name(avro_type, namespace)
            self.named.setdefault(full, avro_type)
            return self.named_type(full)
        logical = _logical(avro_type)
        if logical is not None:
            return logical
        if kind == "array":
            return st.lists(self.of(avro_type["items"], namespace), max_size=3)
        if kind == "map":
            return st.dictionaries(st.text(max_size=4), self.of(avro_type["values"], namespace),
                                   max_size=3)
        return self.of(kind, namespace)

    def named_type(self, full: str) -> st.SearchStrategy[Any]:
        if full not in self.by_name:  # deferred: a record may refer to itself
            self.by_name[full] = st.deferred(lambda: self.definition(full))
        return self.by_name[full]

    def definition(self, full: str) -> st.SearchStrategy[Any]:
        avro_type = self.named[full]
        kind = avro_type["type"]
        if kind == "enum":
            return st.sampled_from(avro_type["symbols"])
        if kind == "fixed":
            return st.binary(min_size=avro_type["size"], max_size=avro_type["size"])
        namespace = full.rpartition(".")[0]
        names = [str(f["name"]) for f in avro_type["fields"]]
        values = [self.of(f["type"], namespace) for f in avro_type["fields"]]
        return st.tuples(*values).map(lambda drawn: dict(zip(names, drawn, strict=True)))


def _logical(avro_type: Mapping[str, Any]) -> st.SearchStrategy[Any] | None:
    match avro_type.get("logicalType"), avro_type["type"]:
        case "date", "int":
            return st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
        case ("timestamp-millis" | "timestamp-micros"), "long":
            return _INSTANTS
        case "decimal", "bytes":
            scale = int(avro_type.get("scale", 0))
            bound = Decimal(10) ** (int(avro_type["precision"]) - scale) - Decimal(10) ** -scale
            return st.decimals(min_value=-bound, max_value=bound, places=scale,
                               allow_nan=False, allow_infinity=False)
        case "uuid", "string":
            return st.uuids().map(str)
    return None


def _full_name(avro_type: Mapping[str, Any], namespace: str) -> str:
    name = str(avro_type["name"])
    if "." in name:
        return name
    own = avro_type.get("namespace", namespace)
    return f"{own}.{name}" if own else name
