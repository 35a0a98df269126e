"""Canonical records as JSON, for people and tools (not the wire: Kafka carries Avro).

Instants become ISO 8601 text in UTC, dates ISO dates, decimals their exact digits as text
(a JSON number would pass through binary floating point in most readers), bytes base64.
Reading JSON back is guided by the Avro schema, so the text is turned into the types the
schema declares.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import FormatError


def to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


def from_json(schema: Mapping[str, Any], value: Any, *, omit: Collection[str] = ()) -> Any:
    """`value` (as `json.load` gives it) typed as the fastavro-parsed record `schema` says,
    leaving out the top-level fields named in `omit` (e.g. the event header)."""
    named: Mapping[str, Any] = schema.get("__named_schemas", {})
    if omit:
        schema = {**schema, "fields": [f for f in schema["fields"] if f["name"] not in omit]}
    return _typed(schema, value, named, path="")


def _typed(schema: Any, value: Any, named: Mapping[str, Any], path: str) -> Any:
    if isinstance(schema, str):
        return _typed(named[schema], value, named, path) if schema in named else value
    if isinstance(schema, list):
        return _union(schema, value, named, path)
    kind = schema["type"]
    if kind == "record":
        if not isinstance(value, Mapping):
            raise _wrong(path, "an object", value)
        return {
            field["name"]: _typed(field["type"], value.get(field["name"], field.get("default")),
                                  named, f"{path}.{field['name']}".lstrip("."))
            for field in schema["fields"]
        }
    if kind == "array":
        if not isinstance(value, list):
            raise _wrong(path, "an array", value)
        return [_typed(schema["items"], item, named, f"{path}[{i}]") for i, item in
                enumerate(value)]
    logical = schema.get("logicalType")
    try:
        if logical in ("timestamp-millis", "timestamp-micros") and isinstance(value, str):
            return datetime.fromisoformat(value)
        if logical == "date" and isinstance(value, str):
            return date.fromisoformat(value)
        if logical == "decimal" and isinstance(value, str):
            return Decimal(value)
        if kind == "bytes" and isinstance(value, str):
            return base64.b64decode(value, validate=True)
    except (ValueError, InvalidOperation) as exc:
        raise FormatError(f"{path}: {exc}", code="JSON_BAD_VALUE") from None
    if isinstance(kind, dict | list):
        return _typed(kind, value, named, path)
    return value


def _union(branches: list[Any], value: Any, named: Mapping[str, Any], path: str) -> Any:
    if value is None:
        return None
    for branch in branches:
        if branch != "null":
            return _typed(branch, value, named, path)
    return value


def _wrong(path: str, expected: str, value: Any) -> FormatError:
    return FormatError(f"{path or 'record'}: expected {expected}, got {type(value).__name__}",
                       code="JSON_BAD_VALUE")
