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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_SAFE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# How a path names a key that is no field name (long, or holding other characters): a
# sender's key could hold a value (a name, a number) that kept texts must not carry.
_UNNAMED_KEY = "(a key)"


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
    if _ESCAPED_SURROGATE.search(data):  # else no string can hold one
        _check_surrogates(value)
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
    """Depth and number of values, walked over the containers only, without recursion; the
    path of a refusal is looked for only once there is one."""
    count = 1
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limits.max_depth:
            raise JsonError(f"{json_path(_path_to(value, item))}: nested deeper than "
                            f"{limits.max_depth} levels", code=JSON_TOO_DEEP)
        count += len(item)
        if count > limits.max_values:
            raise JsonError(f"more than {limits.max_values} values", code=JSON_TOO_MANY_VALUES)
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


def _check_surrogates(value: Any) -> None:
    """Refuses a string or key holding a lone surrogate, which only an escape can write."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                raise JsonError(f"{json_path(path)}: a string holds a lone surrogate",
                                code=JSON_ENCODING)
        elif isinstance(item, dict):
            for key, child in item.items():
                if _LONE_SURROGATE.search(key):
                    raise JsonError(f"{json_path(path)}: a key holds a lone surrogate",
                                    code=JSON_ENCODING)
                stack.append((child, (*path, key)))
        elif isinstance(item, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(item))


def _path_to(root: Any, target: Any) -> tuple[str | int, ...]:
    """The path from `root` to the container `target` (by identity)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        item, path = stack.pop()
        if item is target:
            return path
        children = item.items() if isinstance(item, dict) else enumerate(item)
        stack.extend((child, (*path, key)) for key, child in children
                     if isinstance(child, dict | list))
    return ()


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
        if isinstance(step, int):
            text += f"[{step}]"
            continue
        name = step if _SAFE_KEY.fullmatch(step) else _UNNAMED_KEY  # the sender's to write
        text += f"/{name}" if text else name
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

    def within(self, step: str | int) -> Violation:
        return Violation((step, *self.path), self.rule)


# A compiled schema node: the first violation of a value, its path relative to the value.
Check = Callable[[Any], Violation | None]


class JsonSchema:
    """One schema file of the subset, compiled once into nested checks that return the first
    violation (in document order) and build its path only then. Thread-safe."""

    __slots__ = ("_check", "_compiled", "_defs", "name")

    def __init__(self, schema: Mapping[str, Any], name: str) -> None:
        self.name = name
        for node in _nodes(schema):
            unknown = set(node) - _KEYWORDS
            if unknown:
                raise FormatError(f"schema {name} uses keywords outside the subset: "
                                  f"{sorted(unknown)}", code=JSON_SCHEMA_LOAD)
        self._defs: Mapping[str, Any] = schema.get("$defs", {})
        self._compiled: dict[str, Check] = {}
        for def_name, node in self._defs.items():
            self._compiled[def_name] = self._compile(node)
        self._check = self._compile(schema)

    @classmethod
    def load(cls, name: str, directory: Path = JSON_SCHEMA_DIR) -> JsonSchema:
        path = directory / f"{name}.json"
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")), name)
        except (OSError, ValueError) as exc:
            raise FormatError(f"cannot load JSON schema {name}: {exc}",
                              code=JSON_SCHEMA_LOAD) from exc

    def first_violation(self, value: Any) -> Violation | None:
        """Where `value` first breaks the schema, in document order; None if nowhere."""
        return self._check(value)

    def validate(self, value: Any) -> None:
        """JsonError (JSON_SCHEMA_INVALID) naming the first field that breaks the schema."""
        first = self._check(value)
        if first is not None:
            raise JsonError(f"{first} ({self.name})", code=JSON_SCHEMA_INVALID)

    def _compile(self, node: Mapping[str, Any]) -> Check:
        checks: list[Check] = []
        if "$ref" in node:
            checks.append(self._reference(node["$ref"].rpartition("/")[2]))
        checks += _value_checks(node)
        for key in ("oneOf", "anyOf"):
            if key in node:
                checks.append(_choice(key, [self._compile(b) for b in node[key]]))
        if "required" in node or "properties" in node:
            checks.append(_members(node.get("required", ()),
                                   {n: self._compile(c)
                                    for n, c in node.get("properties", {}).items()}))
        if "items" in node:
            checks.append(_items(self._compile(node["items"])))
        kind = node.get("type")
        return _all_of(checks, None if kind is None else (kind, _TYPES[kind]))

    def _reference(self, name: str) -> Check:
        compiled = self._compiled  # filled for every definition before a value is checked
        return lambda value: compiled[name](value)


def _all_of(checks: list[Check], kind: tuple[str, Callable[[Any], bool]] | None) -> Check:
    def check(value: Any) -> Violation | None:
        if kind is not None and not kind[1](value):
            return Violation((), f"must be of type {kind[0]}")
        for one in checks:
            found = one(value)
            if found is not None:
                return found
        return None
    return check


def _value_checks(node: Mapping[str, Any]) -> list[Check]:
    """The checks of a value itself: its code, length, pattern, date form, size, bounds."""
    checks: list[Check] = []
    if "enum" in node:
        allowed = node["enum"]
        checks.append(_rule(lambda v: v in allowed, "is not one of the allowed codes"))
    if "minLength" in node or "maxLength" in node or "pattern" in node \
            or node.get("format") == "date":
        checks.append(_string_checks(node))
    if "minItems" in node:
        low = node["minItems"]
        checks.append(_rule(lambda v: not isinstance(v, list) or len(v) >= low,
                            f"needs at least {low} items"))
    if "maxItems" in node:
        high = node["maxItems"]
        checks.append(_rule(lambda v: not isinstance(v, list) or len(v) <= high,
                            f"holds more than {high} items"))
    for key, rule, holds in _NUMBER_BOUNDS:
        if key in node:
            checks.append(_bound(holds, node[key], f"{rule} {node[key]}"))
    return checks


def _bound(holds: Callable[[Any, Any], bool], bound: Any, rule: str) -> Check:
    return _rule(lambda value: not _is_number(value) or holds(value, bound), rule)


_NUMBER_BOUNDS: tuple[tuple[str, str, Callable[[Any, Any], bool]], ...] = (
    ("minimum", "is less than", lambda v, b: v >= b),
    ("maximum", "is more than", lambda v, b: v <= b),
    ("exclusiveMinimum", "is not more than", lambda v, b: v > b),
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _rule(holds: Callable[[Any], bool], rule: str) -> Check:
    broken = Violation((), rule)
    return lambda value: None if holds(value) else broken


def _string_checks(node: Mapping[str, Any]) -> Check:
    low, high = node.get("minLength", 0), node.get("maxLength")
    pattern = _ecma_pattern(node["pattern"]) if "pattern" in node else None
    is_date = node.get("format") == "date"

    def check(value: Any) -> Violation | None:
        if not isinstance(value, str):
            return None
        if len(value) < low:
            return Violation((), f"is shorter than {low} characters")
        if high is not None and len(value) > high:
            return Violation((), f"is longer than {high} characters")
        if pattern is not None and pattern.search(value) is None:
            return Violation((), "does not match its pattern")
        if is_date and not _is_date(value):
            return Violation((), "is not a date (YYYY-MM-DD)")
        return None
    return check


def _choice(key: str, branches: list[Check]) -> Check:
    exactly = key == "oneOf"
    broken = Violation((), f"must match {'exactly' if exactly else 'at least'} one of its "
                           "alternatives")

    def check(value: Any) -> Violation | None:
        matching = sum(1 for branch in branches if branch(value) is None)
        return broken if matching == 0 or (exactly and matching > 1) else None
    return check


def _members(required: Sequence[str], properties: Mapping[str, Check]) -> Check:
    def check(value: Any) -> Violation | None:
        if not isinstance(value, dict):
            return None
        for name in required:
            if name not in value:
                return Violation((name,), "is required")
        for name, child in properties.items():
            if name in value:
                found = child(value[name])
                if found is not None:
                    return found.within(name)
        return None
    return check


def _items(item: Check) -> Check:
    def check(value: Any) -> Violation | None:
        if not isinstance(value, list):
            return None
        for index, one in enumerate(value):
            found = item(one)
            if found is not None:
                return found.within(index)
        return None
    return check


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
