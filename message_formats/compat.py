"""Backward compatibility of Avro schemas: can a reader with the new schema read every
record written with the released one? Follows the Avro specification's schema resolution
(records by name, fields by name, defaults for fields the writer lacks, enum symbols,
unions branch by branch, the numeric and string/bytes promotions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


def backward_problems(released: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Why data written with `released` cannot be read with `current` (empty: it can).
    Both are fastavro-parsed schemas."""
    checker = _Resolution(released.get("__named_schemas", {}),
                          current.get("__named_schemas", {}))
    return checker.problems(released, current, str(current.get("name", "")))


class _Resolution:
    __slots__ = ("_reader_named", "_seen", "_writer_named")

    def __init__(self, writer_named: Mapping[str, Any], reader_named: Mapping[str, Any]) -> None:
        self._writer_named = writer_named
        self._reader_named = reader_named
        self._seen: set[tuple[str, str]] = set()

    def problems(self, writer: Any, reader: Any, path: str) -> list[str]:
        writer = _resolve(writer, self._writer_named)
        reader = _resolve(reader, self._reader_named)
        if isinstance(writer, list):
            return [p for branch in writer for p in self.problems(branch, reader, path)]
        if isinstance(reader, list):
            for branch in reader:
                if not self.problems(writer, branch, path):
                    return []
            return [f"{path}: no branch of the new union reads the released {_kind(writer)}"]
        writer_kind, reader_kind = _kind(writer), _kind(reader)
        if writer_kind in _PROMOTIONS or reader_kind in _PROMOTIONS or writer_kind == "null":
            if reader_kind in _PROMOTIONS.get(writer_kind, {writer_kind}):
                return []
            return [f"{path}: released {writer_kind} cannot be read as {reader_kind}"]
        if writer_kind != reader_kind:
            return [f"{path}: released {writer_kind} cannot be read as {reader_kind}"]
        return getattr(self, f"_{writer_kind}", self._same)(writer, reader, path)

    def _record(self, writer: Mapping[str, Any], reader: Mapping[str, Any], path: str
                ) -> list[str]:
        key = (writer["name"], reader["name"])
        if key in self._seen:
            return []
        self._seen.add(key)
        if _short(writer["name"]) != _short(reader["name"]):
            return [f"{path}: record {writer['name']} became {reader['name']}"]
        written = {f["name"]: f for f in writer["fields"]}
        out: list[str] = []
        for field in reader["fields"]:
            where = f"{path}.{field['name']}"
            if field["name"] in written:
                out += self.problems(written[field["name"]]["type"], field["type"], where)
            elif "default" not in field:
                out.append(f"{where}: field added without a default")
        return out

    def _enum(self, writer: Mapping[str, Any], reader: Mapping[str, Any], path: str) -> list[str]:
        lost = set(writer["symbols"]) - set(reader["symbols"])
        if lost and "default" not in reader:
            return [f"{path}: enum symbols removed without a default: {sorted(lost)}"]
        return []

    def _array(self, writer: Mapping[str, Any], reader: Mapping[str, Any], path: str
               ) -> list[str]:
        return self.problems(writer["items"], reader["items"], f"{path}[]")

    def _map(self, writer: Mapping[str, Any], reader: Mapping[str, Any], path: str) -> list[str]:
        return self.problems(writer["values"], reader["values"], f"{path}{{}}")

    def _fixed(self, writer: Mapping[str, Any], reader: Mapping[str, Any], path: str
               ) -> list[str]:
        if writer["size"] != reader["size"]:
            return [f"{path}: fixed size changed from {writer['size']} to {reader['size']}"]
        return []

    def _same(self, writer: Any, reader: Any, path: str) -> list[str]:
        return []


def _resolve(schema: Any, named: Mapping[str, Any]) -> Any:
    if isinstance(schema, str) and schema in named:
        return named[schema]
    if isinstance(schema, Mapping) and isinstance(schema.get("type"), str | list | Mapping) \
            and schema["type"] not in ("record", "enum", "array", "map", "fixed"):
        return _resolve(schema["type"], named)  # {"type": "long", "logicalType": ...}
    return schema


def _kind(schema: Any) -> str:
    return schema if isinstance(schema, str) else str(schema["type"])


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]
