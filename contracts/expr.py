"""Content conditions of sharing contracts: a small, safe expression language.

A contract may share a document only when its content meets a condition, e.g.
``ship.flag_state in ["PA", "LR"] and crew_count > 20``. Conditions come from files that
agencies edit, so they are parsed by hand and compiled once into nested Python closures:
no ``eval``, ``exec`` or ``compile`` of source text, no attribute access, no calls. Routing
evaluates them for every document, so a simple comparison costs a few hundred nanoseconds.

Grammar (keywords are lower case; whitespace, newlines included, separates tokens)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | cmp
    cmp     := operand ( ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                       | "not"? "in" list
                       | "not"? "in" path )?
    operand := path | string | number | "true" | "false" | "null" | "(" expr ")"
    list    := "[" (literal ("," literal)*)? "]"
    literal := string | number | "true" | "false" | "null"
    path    := identifier ("." identifier)*          identifier := [A-Za-z_][A-Za-z0-9_]*
    string  := '"' ... '"' | "'" ... "'"    escapes as in JSON, plus \\'
                (\\\\ \\" \\' \\/ \\b \\f \\n \\r \\t \\uXXXX)
    number  := "-"? digits ("." digits)?              (int, or float when it has a point)

Array paths (``crew[].nationality``) are rejected: conditions have no any/all semantics yet.

Semantics, chosen so that a condition never raises on a decoded record:

* A path reads nested mappings; a missing key, or null (or a non-record) along the way,
  yields null.
* A bare operand is tested for truth as in Python (null, "", 0, [] are false).
  Parentheses around a lone field or literal only group: ``(ship.name) == "X"`` compares
  the name; a parenthesised condition used as an operand is its true/false value.
* ``null`` equals only null. ``!=`` is always the negation of ``==``.
* Values of different kinds (null, boolean, number, string, date/date-time, other) are
  never equal and never ordered: ``crew_count < "10"`` is false, ``crew_count != "10"``
  true. Booleans are not numbers here (``true == 1`` is false). Ordering anything with
  null is false.
* A string literal shaped like ISO 8601 (``"2026-06-01"``, ``"2026-06-01T08:00Z"``,
  ``"2026-06-01T08:00:00+08:00"``) is parsed once, at compile time; compared with a date or
  date-time field it acts as that date or instant, compared with a string field it stays a
  string. A literal without a UTC offset is taken as UTC, and a date compared with a
  date-time is taken as midnight UTC of that day. A literal of that shape that is not a
  real date (``"2026-13-01"``) is a syntax error rather than a condition that is silently
  never true.
* ``x in [..]`` is true when x equals (as ``==``) a member. ``x in path`` is true when the
  path holds an array with a member equal to x, or a string containing x as a substring
  (when x is a string); anything else, null included, is not a container.
  ``not in`` is the negation of ``in``.
"""

from __future__ import annotations

import difflib
import operator
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from contracts.errors import ContractInvalid

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]
Getter = Callable[[Any], Any]

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
COMPARATORS = ("==", "!=", "<=", ">=", "<", ">")

MAX_NESTING = 64  # parentheses and `not`s, so that no condition exhausts the stack

_OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = MappingProxyType({
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
})
_MIRRORED = MappingProxyType(
    {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="})
# What a comparison between values of different kinds yields: only `!=` holds.
_MISMATCH = MappingProxyType(
    {"==": False, "!=": True, "<": False, "<=": False, ">": False, ">=": False})
_NUMBER_TYPES = frozenset({int, float, Decimal})
# JSON's escapes plus \', so any JSON string is a valid string literal.
_ESCAPES = MappingProxyType({"\\": "\\", '"': '"', "'": "'", "/": "/", "b": "\b", "f": "\f",
                             "n": "\n", "r": "\r", "t": "\t"})

_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_ISO_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?\Z",
    re.ASCII,
)


class ConditionError(ContractInvalid):
    """A condition that cannot be compiled. `position` is the 0-based character offset in
    `source`; the message repeats the offending line with a caret under that position."""

    code = "CONDITION_SYNTAX"

    def __init__(
        self,
        reason: str,
        *,
        source: str,
        position: int,
        code: str | None = None,
        path: Path | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.position = position
        super().__init__(_render(reason, source, position), code=code, path=path, line=line)

    def located(self, path: Path | None, line: int | None) -> ConditionError:
        """The same error, placed in a contract file (the loader knows where)."""
        return ConditionError(self.reason, source=self.source, position=self.position,
                              code=self.code, path=path, line=line)


def _render(reason: str, source: str, position: int) -> str:
    line_start = source.rfind("\n", 0, position) + 1
    line_end = source.find("\n", position)
    text = source[line_start : len(source) if line_end < 0 else line_end]
    caret = _caret_pad(text[: position - line_start]) + "^"
    return f"{reason} at position {position}\n  {text}\n  {caret}"


def _caret_pad(before: str) -> str:
    """Blank space as wide as `before` on a terminal: tabs kept, CJK characters doubled."""
    pad = []
    for char in before:
        if char == "\t":
            pad.append("\t")
        elif unicodedata.east_asian_width(char) in ("W", "F"):
            pad.append("  ")
        else:
            pad.append(" ")
    return "".join(pad)


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition. Call it with a record; hot loops may call `evaluate` directly
    and save one Python frame."""

    source: str
    paths: tuple[str, ...]
    evaluate: Predicate = field(repr=False, compare=False)

    def __call__(self, record: Record) -> bool:
        return self.evaluate(record)


def compile_condition(source: str, *, known_paths: Collection[str] | None = None) -> Condition:
    """Parse and compile `source`. With `known_paths`, every field path must be one of them
    (error CONDITION_UNKNOWN_FIELD); syntax errors are CONDITION_SYNTAX."""
    known = None if known_paths is None else frozenset(known_paths)
    tokens = _tokenize(source)
    node = _Parser(source, tokens, known).parse()
    paths = tuple(dict.fromkeys(_paths_of(node)))
    return Condition(source=source, paths=paths, evaluate=_compile_predicate(node))


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "path", "string", "number", "end", or the keyword / symbol itself
    text: str
    position: int
    value: Any = None


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while True:
        space = _SPACE.match(source, position)
        if space:
            position = space.end()
        if position >= len(source):
            tokens.append(_Token("end", "", len(source)))
            return tokens
        token = _next_token(source, position)
        tokens.append(token)
        position += len(token.text)


def _next_token(source: str, position: int) -> _Token:
    char = source[position]
    if char in "\"'":
        return _scan_string(source, position)
    for symbol in (*COMPARATORS, "(", ")", "[", "]", ","):
        if source.startswith(symbol, position):
            return _Token(symbol, symbol, position)
    number = _NUMBER.match(source, position)
    if number:
        text = number.group()
        return _Token("number", text, position, float(text) if "." in text else int(text))
    path = _PATH.match(source, position)
    if path:
        return _path_token(source, path)
    hint = "; did you mean '=='?" if char == "=" else ""
    raise ConditionError(f"unexpected character {char!r}{hint}", source=source,
                         position=position)


def _path_token(source: str, match: re.Match[str]) -> _Token:
    text, end = match.group(), match.end()
    if source.startswith("[]", end):
        raise ConditionError(
            f"array paths such as '{text}[]' cannot be used in conditions (no any/all yet)",
            source=source, position=end)
    if source.startswith(".", end):
        raise ConditionError("expected a field name after '.'", source=source,
                             position=end + 1)
    if text in KEYWORDS:
        return _Token(text, text, match.start())
    return _Token("path", text, match.start(), text)


def _scan_string(source: str, start: int) -> _Token:
    quote, position = source[start], start + 1
    parts: list[str] = []
    while position < len(source):
        char = source[position]
        if char == quote:
            return _Token("string", source[start : position + 1], start, "".join(parts))
        if char != "\\":
            parts.append(char)
            position += 1
            continue
        escaped, position = _scan_escape(source, position, start)
        parts.append(escaped)
    raise ConditionError("unterminated string", source=source, position=start)


def _scan_escape(source: str, backslash: int, start: int) -> tuple[str, int]:
    """The character an escape stands for, and the position after the escape; `start` is
    where the string began, for the message when the source ends inside it."""
    code = source[backslash + 1 : backslash + 2]
    if code in _ESCAPES:
        return _ESCAPES[code], backslash + 2
    if code == "u" and _HEX4.match(source, backslash + 2):
        return chr(int(source[backslash + 2 : backslash + 6], 16)), backslash + 6
    if not code:
        raise ConditionError("unterminated string", source=source, position=start)
    raise ConditionError(f"unknown escape '\\{code}'", source=source, position=backslash)


# --- syntax tree --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Path:
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any
    position: int
    instant: date | None = None  # the parsed form of an ISO-8601-shaped string


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _All:
    operands: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Any:
    operands: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Compare:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _InList:
    operand: _Node
    members: tuple[_Literal, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class _InPath:
    operand: _Node
    container: _Path
    negated: bool


_Node = _Path | _Literal | _Not | _All | _Any | _Compare | _InList | _InPath


def _paths_of(node: _Node) -> list[str]:
    match node:
        case _Path(name=name):
            return [name]
        case _Literal():
            return []
        case _Not(operand=operand) | _InList(operand=operand):
            return _paths_of(operand)
        case _All(operands=operands) | _Any(operands=operands):
            return [path for operand in operands for path in _paths_of(operand)]
        case _Compare(left=left, right=right):
            return _paths_of(left) + _paths_of(right)
        case _InPath(operand=operand, container=container):
            return [*_paths_of(operand), container.name]
    raise AssertionError(node)


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    __slots__ = ("depth", "index", "known", "source", "tokens")

    def __init__(self, source: str, tokens: list[_Token], known: frozenset[str] | None):
        self.source, self.tokens, self.known, self.index, self.depth = source, tokens, known, 0, 0

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise self.error("empty condition", self.peek())
        node = self.parse_or()
        if self.peek().kind != "end":
            raise self.error(f"unexpected {_describe(self.peek())} after a complete condition",
                             self.peek())
        return node

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def error(self, reason: str, token: _Token) -> ConditionError:
        return ConditionError(reason, source=self.source, position=token.position)

    def expect(self, kind: str, what: str) -> _Token:
        if self.peek().kind != kind:
            raise self.error(f"expected {what}, found {_describe(self.peek())}", self.peek())
        return self.advance()

    def parse_or(self) -> _Node:
        operands = [self.parse_and()]
        while self.peek().kind == "or":
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else _Any(tuple(operands))

    def parse_and(self) -> _Node:
        operands = [self.parse_not()]
        while self.peek().kind == "and":
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else _All(tuple(operands))

    def parse_not(self) -> _Node:
        if self.peek().kind == "not":
            self.enter(self.advance())
            node = _Not(self.parse_not())
            self.depth -= 1
            return node
        return self.parse_comparison()

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"condition nested more than {MAX_NESTING} deep", token)

    def parse_comparison(self) -> _Node:
        left = self.parse_operand()
        kind = self.peek().kind
        if kind in COMPARATORS:
            self.advance()
            return _Compare(kind, left, self.parse_operand())
        negated = kind == "not" and self.peek(1).kind == "in"
        if kind == "in" or negated:
            self.index += 2 if negated else 1
            return self.parse_membership(left, negated)
        return left

    def parse_membership(self, operand: _Node, negated: bool) -> _Node:
        token = self.peek()
        if token.kind == "[":
            return _InList(operand, self.parse_list(), negated)
        if token.kind == "path":
            return _InPath(operand, self.parse_path(self.advance()), negated)
        raise self.error(f"expected a list '[...]' or a field path after 'in', found "
                         f"{_describe(token)}", token)

    def parse_list(self) -> tuple[_Literal, ...]:
        self.advance()  # "["
        members: list[_Literal] = []
        if self.peek().kind == "]":
            self.advance()
            return ()
        while True:
            token = self.advance()
            literal = self.literal_of(token)
            if literal is None:
                raise self.error(f"expected a literal in the list, found {_describe(token)}",
                                 token)
            members.append(literal)
            if self.peek().kind == "]":
                self.advance()
                return tuple(members)
            self.expect(",", "',' or ']'")

    def parse_operand(self) -> _Node:
        token = self.advance()
        if token.kind == "path":
            return self.parse_path(token)
        if token.kind == "(":
            self.enter(token)
            node = self.parse_or()
            self.expect(")", "')'")
            self.depth -= 1
            return node
        literal = self.literal_of(token)
        if literal is None:
            raise self.error(f"expected a field, a literal or '(', found {_describe(token)}",
                             token)
        return literal

    def parse_path(self, token: _Token) -> _Path:
        if self.known is not None and token.value not in self.known:
            hint = _suggestion(token.value, self.known)
            raise ConditionError(f"unknown field '{token.value}'{hint}", source=self.source,
                                 position=token.position, code="CONDITION_UNKNOWN_FIELD")
        return _Path(token.value, token.position)

    def literal_of(self, token: _Token) -> _Literal | None:
        match token.kind:
            case "string":
                return _Literal(token.value, token.position, self.instant_of(token))
            case "number":
                return _Literal(token.value, token.position)
            case "true" | "false":
                return _Literal(token.kind == "true", token.position)
            case "null":
                return _Literal(None, token.position)
        return None

    def instant_of(self, token: _Token) -> date | None:
        text = token.value
        if not _ISO_SHAPE.match(text):
            return None
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.error(f"{token.text} is not a valid ISO 8601 date or date-time",
                             token) from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _describe(token: _Token) -> str:
    return "end of condition" if token.kind == "end" else f"'{token.text}'"


def _suggestion(name: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- compilation into closures ------------------------------------------------------------


def _compile_predicate(node: _Node) -> Predicate:
    """A closure answering the node as a condition (bare values are tested for truth)."""
    match node:
        case _Path(name=name):
            return _truth_of(_path_getter(name))
        case _Literal(value=value):
            return _constant(bool(value))
        case _Not(operand=operand):
            return _negation(_compile_predicate(operand))
        case _All(operands=operands):
            return _all_of(tuple(_compile_predicate(o) for o in operands))
        case _Any(operands=operands):
            return _any_of(tuple(_compile_predicate(o) for o in operands))
        case _Compare(op=op, left=left, right=right):
            return _compile_comparison(op, left, right)
        case _InList(operand=operand, members=members, negated=negated):
            return _maybe_negated(_membership(_value_getter(operand), members), negated)
        case _InPath(operand=operand, container=container, negated=negated):
            test = _containment(_value_getter(operand), _path_getter(container.name))
            return _maybe_negated(test, negated)
    raise AssertionError(node)


def _value_getter(node: _Node) -> Getter:
    """A closure giving the node's value: a field's content, a literal, or a sub-condition's
    truth value."""
    if isinstance(node, _Path):
        return _path_getter(node.name)
    if isinstance(node, _Literal):
        return _constant(node.value)
    return _compile_predicate(node)


def _path_getter(path: str) -> Getter:
    """Reading a dotted path; `.get` on null or on a non-mapping raises AttributeError, which
    is the cheapest way to turn "missing along the way" into null."""
    names = path.split(".")
    if len(names) == 1:
        (first,) = names

        def get_1(record: Any) -> Any:
            try:
                return record.get(first)
            except AttributeError:
                return None

        return get_1
    if len(names) == 2:
        first, second = names

        def get_2(record: Any) -> Any:
            try:
                return record.get(first).get(second)
            except AttributeError:
                return None

        return get_2

    def get_n(record: Any) -> Any:
        try:
            for name in names:
                record = record.get(name)
        except AttributeError:
            return None
        return record

    return get_n


def _constant(value: Any) -> Callable[[Any], Any]:
    return lambda _record: value


def _truth_of(get: Getter) -> Predicate:
    return lambda record: bool(get(record))


def _negation(test: Predicate) -> Predicate:
    return lambda record: not test(record)


def _maybe_negated(test: Predicate, negated: bool) -> Predicate:
    return _negation(test) if negated else test


def _all_of(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 2:
        first, second = tests
        return lambda record: first(record) and second(record)
    if len(tests) == 3:
        first, second, third = tests
        return lambda record: first(record) and second(record) and third(record)

    def all_of(record: Record) -> bool:
        for test in tests:  # noqa: SIM110 - a plain loop beats all() over a generator
            if not test(record):
                return False
        return True

    return all_of


def _any_of(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 2:
        first, second = tests
        return lambda record: first(record) or second(record)
    if len(tests) == 3:
        first, second, third = tests
        return lambda record: first(record) or second(record) or third(record)

    def any_of(record: Record) -> bool:
        for test in tests:  # noqa: SIM110 - a plain loop beats any() over a generator
            if test(record):
                return True
        return False

    return any_of


def _compile_comparison(op: str, left: _Node, right: _Node) -> Predicate:
    """Literals go to the right, then comparisons with a literal get a closure specialised
    for the literal's kind; the rest use the general, kind-checking comparison."""
    if isinstance(left, _Literal) and not isinstance(right, _Literal):
        op, left, right = _MIRRORED[op], right, left
    get = _value_getter(left)
    if isinstance(right, _Literal):
        return _compare_with_literal(op, get, right)
    get_right = _value_getter(right)
    compare = _OPERATORS[op]
    return lambda record: _compare_values(op, compare, get(record), get_right(record))


def _compare_with_literal(op: str, get: Getter, literal: _Literal) -> Predicate:
    value = literal.value
    if literal.instant is not None:
        return _compare_with_instant(op, get, value, literal.instant)
    if value is None:
        return _compare_with_null(op, get)
    if isinstance(value, bool):
        return _compare_with_bool(op, get, value)
    if isinstance(value, str):
        return _compare_with_string(op, get, value)
    return _compare_with_number(op, get, value)


def _compare_with_null(op: str, get: Getter) -> Predicate:
    if op == "==":
        return lambda record: get(record) is None
    if op == "!=":
        return lambda record: get(record) is not None
    return _constant(False)


def _compare_with_bool(op: str, get: Getter, flag: bool) -> Predicate:
    if op == "==":
        return lambda record: get(record) is flag
    if op == "!=":
        return lambda record: get(record) is not flag
    compare = _OPERATORS[op]
    return lambda record: _compare_values(op, compare, get(record), flag)


def _compare_with_string(op: str, get: Getter, text: str) -> Predicate:
    if op == "==":
        return lambda record: get(record) == text
    if op == "!=":
        return lambda record: get(record) != text
    compare = _OPERATORS[op]

    def test(record: Record) -> bool:
        value = get(record)
        return isinstance(value, str) and compare(value, text)

    return test


def _compare_with_number(op: str, get: Getter, number: int | float) -> Predicate:
    numbers = _NUMBER_TYPES
    if op == "!=":
        def differs(record: Record) -> bool:
            value = get(record)
            return value.__class__ not in numbers or value != number

        return differs
    compare = _OPERATORS[op]

    def test(record: Record) -> bool:
        value = get(record)
        return value.__class__ in numbers and compare(value, number)

    return test


def _compare_with_instant(op: str, get: Getter, text: str, instant: date) -> Predicate:
    """The literal is a string to string fields and a date or instant to temporal fields."""
    compare, mismatch = _OPERATORS[op], _MISMATCH[op]
    as_instant = instant if isinstance(instant, datetime) else _midnight_utc(instant)

    def test(record: Record) -> bool:
        value = get(record)
        if isinstance(value, str):
            return compare(value, text)
        if isinstance(value, datetime):
            return _compare_safely(compare, value, as_instant, mismatch)
        if isinstance(value, date):
            if isinstance(instant, datetime):
                return compare(_midnight_utc(value), instant)
            return compare(value, instant)
        return mismatch

    return test


def _compare_safely(compare: Callable[[Any, Any], bool], left: Any, right: Any,
                    mismatch: bool) -> bool:
    try:
        return compare(left, right)
    except TypeError:  # e.g. a naive date-time against an aware one
        return mismatch


def _midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if value.__class__ in _NUMBER_TYPES:
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, date):
        return "temporal"
    return "other"


def _compare_values(op: str, compare: Callable[[Any, Any], bool], left: Any,
                    right: Any) -> bool:
    """The general comparison: kinds must agree, null is only equal to null, and a date
    meets a date-time as midnight UTC."""
    kind = _kind(left)
    if kind != _kind(right):
        return _MISMATCH[op]
    if kind == "null":
        return op == "=="
    if kind == "temporal" and isinstance(left, datetime) != isinstance(right, datetime):
        left, right = _as_instant(left), _as_instant(right)
    return _compare_safely(compare, left, right, _MISMATCH[op])


def _as_instant(value: date) -> datetime:
    return value if isinstance(value, datetime) else _midnight_utc(value)


def _membership(get: Getter, members: tuple[_Literal, ...]) -> Predicate:
    """Set lookup when no member needs date handling; booleans are kept apart because
    Python's sets take `True` for `1`."""
    if any(member.instant is not None for member in members):
        tests = tuple(_compare_with_literal("==", _identity, m) for m in members)
        return lambda record: _equals_any(get(record), tests)
    flags = frozenset(m.value for m in members if isinstance(m.value, bool))
    others = frozenset(m.value for m in members if not isinstance(m.value, bool))

    def test(record: Record) -> bool:
        value = get(record)
        if value is True or value is False:
            return value in flags
        try:
            return value in others
        except TypeError:  # unhashable: a list or a record is never a literal
            return False

    return test


def _identity(value: Any) -> Any:
    return value


def _equals_any(value: Any, tests: tuple[Predicate, ...]) -> bool:
    return any(test(value) for test in tests)


def _containment(get: Getter, get_container: Getter) -> Predicate:
    equal = _OPERATORS["=="]

    def test(record: Record) -> bool:
        container = get_container(record)
        value = get(record)
        if isinstance(container, str):
            return isinstance(value, str) and value in container
        if isinstance(container, list | tuple):
            return any(_compare_values("==", equal, value, item) for item in container)
        return False

    return test
