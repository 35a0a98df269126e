"""Untrusted JSON, read within bounds and held to a JSON Schema subset.

`read_untrusted_json` refuses, each with its JSON_* code, what could stall or swell a reader:
more bytes than the budget (checked before anything is decoded), anything but UTF-8 (RFC
8259 §8.1; a leading byte order mark is ignored), a key given twice in one object (Python's
reader would keep the last silently), NaN and Infinity (not JSON), numbers longer than a
bound (a 100,000-digit integer costs quadratic time to convert), escaped lone surrogates
(no UTF-8 can carry them downstream), nesting deeper than a bound and more values than a
bound. Numbers with a fraction or an exponent are read as `Decimal`, so amounts keep their
exact digits. Messages name the field path, never a value.

`JsonSchema` checks a document against a JSON Schema (2020-12) that uses only the keywords
the gateway's schema files use: `$ref` to `#/$defs/...`, `type`, `properties`, `required`,
`items`, `enum`, `pattern`, `minLength`, `maxLength`, `minItems`, `maxItems`, `minimum`,
`maximum`, `exclusiveMinimum`, `format: date`, `oneOf` and `anyOf`. Other keywords are
refused when the schema is loaded, so a schema never means more than is checked. The
tests hold the same schema files and samples to the `jsonschema` package as well."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import FormatError

JSON_TOO_LARGE = "JSON_TOO_LARGE"
JSON_ENCODING = "JSON_ENCODING_INVALID"
JSON_MALFORMED = "JSON_MALFORMED"
JSON_DUPLICATE_KEY = "JSON_DUPLICATE_KEY"
JSON_NUMBER_TOO_LONG = "JSON_NUMBER_TOO_LONG"
JSON_TOO_DEEP = "JSON_TOO_DEEP"
JSON_TOO_MANY_VALUES = "JSON_TOO_MANY_VALUES"
JSON_SCHEMA_INVALID = "JSON_SCHEMA_INVALID"
JSON_SCHEMA_LOAD = "JSON_SCHEMA_LOAD_FAILED"

JSON_SCHEMA_DIR = Path(__file__).parent / "jsonschema"
_UTF8_BOM = b"\xef\xbb\xbf"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SAFE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class JsonLimits:
    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 32
    max_values: int = 100_000
    max_number_chars: int = 40


DEFAULT_JSON_LIMITS = JsonLimits()


class JsonError(FormatError):
    code = JSON_MALFORMED


def read_untrusted_json(data: bytes, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> Any:
    """The JSON value of `data`, or JsonError with the code of the bound or rule broken."""
    if len(data) > limits.max_bytes:
        raise JsonError(f"document is {len(data)} bytes, limit is {limits.max_bytes}",
                        code=JSON_TOO_LARGE)
    try:
        text = data.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonError(f"not UTF-8 at byte {exc.start}", code=JSON_ENCODING) from None
    try:
        value = json.loads(
            text, object_pairs_hook=_unique_object, parse_constant=_no_constant,
            parse_int=_bounded(int, limits.max_number_chars),
            parse_float=_bounded(Decimal, limits.max_number_chars))
    except json.JSONDecodeError as exc:
        raise JsonError(f"not JSON: {exc.msg}", code=JSON_MALFORMED, line=exc.lineno) from None
    except RecursionError:
        raise JsonError(f"nested deeper than {limits.max_depth} levels",
                        code=JSON_TOO_DEEP) from None
    _check_shape(value, limits)
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        twice = _first_repeated(key for key, _ in pairs)
        named = f"key {twice!r}" if _SAFE_KEY.fullmatch(twice) else "a key"
        raise JsonError(f"an object holds {named} twice", code=JSON_DUPLICATE_KEY)
    return obj


def _first_repeated(keys: Iterable[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise ValueError("no key is repeated")


def _no_constant(name: str) -> Any:
    raise JsonError("NaN and Infinity are not JSON numbers", code=JSON_MALFORMED)


def _bounded(convert: Callable[[str], Any], max_chars: int) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        if len(text) > max_chars:
            raise JsonError(f"a number has more than {max_chars} characters",
                            code=JSON_NUMBER_TOO_LONG)
        return convert(text)
    return read


def _check_shape(value: Any, limits: JsonLimits) -> None:
    """Depth, number of values and lone surrogates, walked without recursion."""
    count = 0
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        count += 1
        if count > limits.max_values:
            raise JsonError(f"more than {limits.max_values} values", code=JSON_TOO_MANY_VALUES)
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                raise JsonError(f"{json_path(path)}: a string holds a lone surrogate",
                                code=JSON_ENCODING)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > limits.max_depth:
            raise JsonError(f"{json_path(path)}: nested deeper than {limits.max_depth} levels",
                            code=JSON_TOO_DEEP)
        children = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in children:
            if isinstance(key, str) and _LONE_SURROGATE.search(key):
                raise JsonError(f"{json_path(path)}: a key holds a lone surrogate",
                                code=JSON_ENCODING)
            stack.append((child, depth + 1, (*path, key)))


def dump_json(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON, members in the order given; a Decimal is written with
    its exact digits (json.dumps would refuse it, and a float would round it)."""
    return "".join(_json_pieces(value)).encode("utf-8")


def _json_pieces(value: Any) -> Iterator[str]:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and Infinity are not JSON numbers")
        yield format(value, "f")
    elif isinstance(value, dict):
        yield "{"
        for n, (key, item) in enumerate(value.items()):
            yield ("," if n else "") + json.dumps(key, ensure_ascii=False) + ":"
            yield from _json_pieces(item)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for n, item in enumerate(value):
            if n:
                yield ","
            yield from _json_pieces(item)
        yield "]"
    else:
        yield json.dumps(value, ensure_ascii=False)


def json_path(path: tuple[str | int, ...]) -> str:
    """How a message names a field: "consignmentItems[1]/cargoItems[0]/equipmentReference"
    (array positions from 0, as JSON Pointer counts them); "(document)" for the root."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f"/{step}" if text else step)
    return text or "(document)"


# ---------------------------------------------------------------- the schema subset

_KEYWORDS = frozenset({
    "$schema", "$id", "$comment", "$ref", "$defs", "type", "properties", "required", "items",
    "enum", "pattern", "minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum",
    "exclusiveMinimum", "format", "oneOf", "anyOf",
})
_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, Decimal) and v == v.to_integral_value()),
    "number": lambda v: isinstance(v, int | Decimal) and not isinstance(v, bool),
}


@dataclass(frozen=True, slots=True)
class Violation:
    path: tuple[str | int, ...]
    rule: str

    def __str__(self) -> str:
        return f"{json_path(self.path)}: {self.rule}"


class JsonSchema:
    """One schema file of the subset, its patterns compiled once. Thread-safe."""

    __slots__ = ("_defs", "_patterns", "_root", "name")

    def __init__(self, schema: Mapping[str, Any], name: str) -> None:
        self.name = name
        self._root = schema
        self._defs: Mapping[str, Any] = schema.get("$defs", {})
        self._patterns: dict[str, re.Pattern[str]] = {}
        for node in _nodes(schema):
            unknown = set(node) - _KEYWORDS
            if unknown:
                raise FormatError(f"schema {name} uses keywords outside the subset: "
                                  f"{sorted(unknown)}", code=JSON_SCHEMA_LOAD)
            if "pattern" in node:
                self._patterns[node["pattern"]] = _ecma_pattern(node["pattern"])

    @classmethod
    def load(cls, name: str, directory: Path = JSON_SCHEMA_DIR) -> JsonSchema:
        path = directory / f"{name}.json"
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")), name)
        except (OSError, ValueError) as exc:
            raise FormatError(f"cannot load JSON schema {name}: {exc}",
                              code=JSON_SCHEMA_LOAD) from exc

    def violations(self, value: Any) -> Iterator[Violation]:
        """Every place `value` breaks the schema, in document order."""
        return self._check(self._root, value, ())

    def validate(self, value: Any) -> None:
        """JsonError (JSON_SCHEMA_INVALID) naming the first field that breaks the schema."""
        first = next(self.violations(value), None)
        if first is not None:
            raise JsonError(f"{first} ({self.name})", code=JSON_SCHEMA_INVALID)

    def _check(self, node: Mapping[str, Any], value: Any, path: tuple[str | int, ...]
               ) -> Iterator[Violation]:
        if "$ref" in node:
            yield from self._check(self._defs[node["$ref"].rpartition("/")[2]], value, path)
        kind = node.get("type")
        if kind is not None and not _TYPES[kind](value):
            yield Violation(path, f"must be of type {kind}")
            return
        yield from self._check_value(node, value, path)
        for key in ("oneOf", "anyOf"):
            if key in node:
                yield from self._check_choice(key, node[key], value, path)
        if isinstance(value, dict):
            yield from self._check_object(node, value, path)
        elif isinstance(value, list) and "items" in node:
            for i, item in enumerate(value):
                yield from self._check(node["items"], item, (*path, i))

    def _check_value(self, node: Mapping[str, Any], value: Any, path: tuple[str | int, ...]
                     ) -> Iterator[Violation]:
        if "enum" in node and value not in node["enum"]:
            yield Violation(path, "is not one of the allowed codes")
        if isinstance(value, str):
            yield from _check_string(node, value, path, self._patterns)
        elif isinstance(value, list):
            if len(value) < node.get("minItems", 0):
                yield Violation(path, f"needs at least {node['minItems']} items")
            if "maxItems" in node and len(value) > node["maxItems"]:
                yield Violation(path, f"holds more than {node['maxItems']} items")
        elif isinstance(value, int | Decimal) and not isinstance(value, bool):
            yield from _check_number(node, value, path)

    def _check_choice(self, key: str, branches: list[Mapping[str, Any]], value: Any,
                      path: tuple[str | int, ...]) -> Iterator[Violation]:
        matching = sum(1 for b in branches if next(self._check(b, value, path), None) is None)
        if matching == 0 or (key == "oneOf" and matching > 1):
            yield Violation(path, f"must match {'exactly' if key == 'oneOf' else 'at least'} "
                                  "one of its alternatives")

    def _check_object(self, node: Mapping[str, Any], value: Mapping[str, Any],
                      path: tuple[str | int, ...]) -> Iterator[Violation]:
        for name in node.get("required", ()):
            if name not in value:
                yield Violation((*path, name), "is required")
        for name, child in node.get("properties", {}).items():
            if name in value:
                yield from self._check(child, value[name], (*path, name))


def _check_string(node: Mapping[str, Any], value: str, path: tuple[str | int, ...],
                  patterns: Mapping[str, re.Pattern[str]]) -> Iterator[Violation]:
    if len(value) < node.get("minLength", 0):
        yield Violation(path, f"is shorter than {node['minLength']} characters")
    if "maxLength" in node and len(value) > node["maxLength"]:
        yield Violation(path, f"is longer than {node['maxLength']} characters")
    if "pattern" in node and patterns[node["pattern"]].search(value) is None:
        yield Violation(path, "does not match its pattern")
    if node.get("format") == "date" and not _is_date(value):
        yield Violation(path, "is not a date (YYYY-MM-DD)")


def _check_number(node: Mapping[str, Any], value: int | Decimal, path: tuple[str | int, ...]
                  ) -> Iterator[Violation]:
    if "minimum" in node and value < node["minimum"]:
        yield Violation(path, f"is less than {node['minimum']}")
    if "maximum" in node and value > node["maximum"]:
        yield Violation(path, f"is more than {node['maximum']}")
    if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
        yield Violation(path, f"is not more than {node['exclusiveMinimum']}")


def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A schema's pattern as Python reads it: a final `$` ends the text, as in ECMA-262,
    where Python's would also match before a final line break."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern)


def _is_date(text: str) -> bool:
    if len(text) != 10:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _nodes(schema: Any) -> Iterator[Mapping[str, Any]]:
    """Every schema object in a schema file (the values of properties and $defs, items,
    the branches of oneOf and anyOf)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.get("properties", {}).values())
        stack.extend(node.get("$defs", {}).values())
        stack.extend(node.get(key) for key in ("items",) if key in node)
        stack.extend(node.get("oneOf", ()))
        stack.extend(node.get("anyOf", ()))
