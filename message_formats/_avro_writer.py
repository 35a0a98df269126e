"""Schema-compiled Avro binary writer: the same bytes as fastavro, in about a third of the
time (bench/avro.py compares the two on the FAL 5 crew list of 25 crew).

`compile_writer(parsed)` turns one fastavro-parsed schema into a Python function
`encode(value) -> bytes`. Like the standard library's `dataclasses` does for `__init__`, it
generates Python source text from the schema and compiles it with `exec`. The schemas are
trusted, repository-owned files, and still nothing of a schema is interpolated into the source
except through `repr()` (field names and symbols as string literals); every other schema value
(enum tables, defaults, decimal parameters) reaches the code as a named constant of the
function's namespace.

The generated function is a fast path, not a second implementation of Avro: it accepts only
values it encodes exactly as `fastavro.schemaless_writer(..., strict_allow_default=True)` does,
checked with cheap exact tests (ints within the int/long range and not bool, dicts with exactly
the record's fields, missing fields only where the schema has a default, aware datetimes only;
a string is whatever the value's `.encode()` gives, as in fastavro, and shorter than 4096
bytes). Anything else, a naive datetime, bytes for a string, a tuple for an array, raises
inside it; the caller then runs fastavro, so every error (and every lenient fastavro
conversion) stays fastavro's own. Schema shapes it does not handle (unions other than
`["null", X]`, `float`, logical types other than date, timestamp-millis/micros and
bytes-decimal, recursive types) make `compile_writer` return None: fastavro for that schema.

How it is fast. The output is built as text in which each character stands for one byte
(Latin-1), and turned into bytes once at the end. An ASCII string, most strings of a
record, then goes in as it is (a str, not a subclass, whose `.encode()` could say
otherwise): no bytes object per string, and its length in bytes is its length. A string
with other characters goes in as its UTF-8 bytes read as Latin-1. The values to append are
gathered as pending expressions ("pieces") and joined once where control flow starts or
ends (a loop, a branch that appends), not appended one by one. Lengths, counts and small
ints come from a table of their varints; dates, timestamps and other longs from two tables
of seven-bit groups. A decimal quantized to its schema's scale becomes its bytes here, not
through fastavro's conversion (which takes its digits apart as a tuple: a fifth of the
encoding time of a customs manifest, whose measures are decimals).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

from fastavro.logical_writers import LOGICAL_WRITERS

__all__ = ["CompiledWriter", "compile_writer"]

_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_DAYS_SHIFT = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TABLE_SIZE = 1 << 12


def _uvarint(n: int) -> bytes:
    """Unsigned base-128 varint, least significant group first (n >= 0)."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# _ZZ[n]: the zig-zag varint of a small non-negative long (lengths, counts, small ints).
_ZZ = tuple(_uvarint(n << 1) for n in range(_TABLE_SIZE))


# A varint seven bits at a time: _LOW7[g] is a group with more to follow, _LAST7[g] the last.
_LOW7 = tuple(bytes((g | 0x80,)) for g in range(0x80))
_LAST7 = tuple(bytes((g,)) for g in range(0x80))


def _latin1(data: bytes) -> str:
    return data.decode("latin-1")


# The same tables as text, one character a byte (see the module's docstring).
_ZZ_TEXT = tuple(map(_latin1, _ZZ))
_LOW7_TEXT = tuple(map(_latin1, _LOW7))
_LAST7_TEXT = tuple(map(_latin1, _LAST7))


def _long_text(value: int) -> str:
    """Zig-zag varint of an int or long already checked to be within the long range."""
    if 0 <= value < _TABLE_SIZE:
        return _ZZ_TEXT[value]
    return _uvarint_text((value << 1) ^ (value >> 63))


def _uvarint_text(n: int) -> str:
    """Unsigned varint (n >= 0) from the tables of seven-bit groups, as text: no bytes
    object per group (a timestamp in milliseconds takes six)."""
    if n < 0x80:
        return _LAST7_TEXT[n]
    groups = []
    while n > 0x7F:
        groups.append(_LOW7_TEXT[n & 0x7F])
        n >>= 7
    groups.append(_LAST7_TEXT[n])
    return "".join(groups)


class Reject(Exception):
    """Raised by a generated writer for a value it leaves to fastavro."""


class Unsupported(Exception):
    """A schema shape the generator does not compile."""


def _fill(value: Any, fields: tuple[frozenset[str], Mapping[str, Any]]) -> dict[str, Any]:
    """The record dict with the schema's defaults for missing fields, as fastavro's
    strict_allow_default does; Reject for a non-dict, an extra field or a missing field
    without a default."""
    names, defaults = fields
    if type(value) is not dict or not value.keys() <= names:
        raise Reject
    filled = dict(value)
    for name in names - value.keys():
        if name not in defaults:
            raise Reject
        filled[name] = defaults[name]
    return filled


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "double", "string", "bytes"})
_SUPPORTED_LOGICAL = frozenset(
    {"int-date", "long-timestamp-millis", "long-timestamp-micros", "bytes-decimal"}
)


class _Generator:
    """Emits the body of `encode`, which appends text (one character a byte) to the list
    `out` through `add`. The values to append are gathered as pending expressions ("pieces")
    and added with one `"".join` at the next point where control flow starts or ends. A piece
    refers only to variables that nothing rebinds before it is flushed: every variable is
    assigned once per pass, but the loop's own."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.lines: list[str] = []
        self.pending: list[str] = []
        self.namespace: dict[str, Any] = {
            "Reject": Reject, "_fill": _fill, "_ZZ": _ZZ_TEXT, "_long": _long_text,
            "_uvarint": _uvarint_text, "_LOW7": _LOW7_TEXT, "_LAST7": _LAST7_TEXT,
            "_date": date, "_datetime": datetime,
            "_Decimal": Decimal, "_EPOCH": _EPOCH, "_pack_double": struct.Struct("<d").pack,
        }
        self.counter = 0
        self.flushes = 0
        self.inlining: list[str] = []

    def var(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def const(self, value: Any) -> str:
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def piece(self, expression: str) -> None:
        """Text to append after everything emitted so far."""
        self.pending.append(expression)

    def flush(self, depth: int) -> None:
        """Adds the pending pieces to `out`, at `depth`."""
        pieces, self.pending = self.pending, []
        if pieces:
            self.flushes += 1
            self.line(depth, f"add({_concatenation(pieces)})")

    def emit(self, schema: Any, x: str, d: int) -> None:
        """Lines and pieces that encode local `x` (of type `schema`)."""
        if isinstance(schema, list):
            return self.union(schema, x, d)
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return self.primitive(schema, x, d)
            if schema not in self.named:
                raise Unsupported(f"unknown type {schema!r}")
            return self.emit(self.named[schema], x, d)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical and f"{kind}-{logical}" in LOGICAL_WRITERS:
            return self.logical(f"{kind}-{logical}", schema, x, d)
        if kind in _PRIMITIVES:
            return self.primitive(kind, x, d)
        emitter = {
            "record": self.record, "enum": self.enum, "array": self.array,
            "map": self.map, "fixed": self.fixed,
        }.get(kind)
        if emitter is None:
            if isinstance(kind, str | list | dict) and kind != schema:
                return self.emit(kind, x, d)  # {"type": "some.Name"} or a nested type
            raise Unsupported(f"type {kind!r}")
        return emitter(schema, x, d)

    def primitive(self, kind: str, x: str, d: int) -> None:
        if kind == "null":
            self.line(d, f"if {x} is not None: raise Reject")
        elif kind == "boolean":
            self.line(d, f"if {x} is not True and {x} is not False: raise Reject")
            self.piece(f"('\\x01' if {x} is True else '\\x00')")
        elif kind in ("int", "long"):
            low, high = (_INT_MIN, _INT_MAX) if kind == "int" else (_LONG_MIN, _LONG_MAX)
            self.line(d, f"if type({x}) is not int or not {low} <= {x} <= {high}: raise Reject")
            self.piece(f"(_ZZ[{x}] if 0 <= {x} < {_TABLE_SIZE} else _long({x}))")
        elif kind == "double":
            self.line(d, f"if type({x}) is not float: raise Reject")
            self.piece(f"_pack_double({x}).decode('latin-1')")
        elif kind == "string":
            # As fastavro does: whatever .encode() gives; a str of ASCII characters as it
            # is, which is what its .encode() gives (a subclass may say otherwise). The
            # length is looked up in the table only: a string of _TABLE_SIZE bytes or more
            # raises IndexError, and the record goes to fastavro, which saves a test on
            # every string of every record.
            b = self.var()
            self.line(
                d,
                f"{b} = {x} if type({x}) is str and {x}.isascii()"
                f" else {x}.encode().decode('latin-1')",
            )
            self.piece(f"_ZZ[len({b})]")
            self.piece(b)
        elif kind == "bytes":
            self.line(d, f"if type({x}) is not bytes: raise Reject")
            self.length_prefixed(x, d)
        else:  # pragma: no cover - _PRIMITIVES and this chain list the same names
            raise Unsupported(kind)

    def length_prefixed(self, data: str, d: int) -> None:
        """`data`, a bytes object, after its length."""
        n = self.var()
        self.line(d, f"{n} = len({data})")
        self.piece(f"(_ZZ[{n}] if {n} < {_TABLE_SIZE} else _long({n}))")
        self.piece(f"{data}.decode('latin-1')")

    def logical(self, key: str, schema: Any, x: str, d: int) -> None:
        if key not in _SUPPORTED_LOGICAL:
            raise Unsupported(f"logical type {key}")
        if key == "bytes-decimal":
            return self.decimal(schema, x, d)
        if key == "int-date":
            # Days since 1970 as a zig-zag varint: a date's day count is always within the
            # int range; a plain int is checked as for "int". Dates from 1824 to 2115 take
            # three bytes at most, from two tables of 128 seven-bit groups.
            z = self.var()
            self.line(d, f"if type({x}) is _date:")
            self.line(d + 1, f"{x} = {x}.toordinal() - {_DAYS_SHIFT}")
            self.line(d, f"elif type({x}) is not int or not {_INT_MIN} <= {x} <= {_INT_MAX}:")
            self.line(d + 1, "raise Reject")
            self.line(d, f"{z} = ({x} << 1) ^ ({x} >> 31)")
            self.piece(
                f"(_LOW7[{z} & 0x7F] + _LOW7[{z} >> 7 & 0x7F] + _LAST7[{z} >> 14]"
                f" if 0x4000 <= {z} < 0x200000 else _LAST7[{z}] if {z} < 0x80"
                f" else _LOW7[{z} & 0x7F] + _LAST7[{z} >> 7] if {z} < 0x4000"
                f" else _uvarint({z}))"
            )
            return None
        # Aware datetimes only: fastavro turns naive ones into local time with mktime.
        per_second, sub = (
            ("1000", " // 1000") if key == "long-timestamp-millis" else ("1000000", "")
        )
        delta = self.var()
        self.line(d, f"if type({x}) is _datetime and {x}.tzinfo is not None:")
        self.line(d + 1, f"{delta} = {x} - _EPOCH")
        self.line(
            d + 1,
            f"{x} = ({delta}.days * 86400 + {delta}.seconds) * {per_second}"
            f" + {delta}.microseconds{sub}",
        )
        return self.primitive("long", x, d)

    def decimal(self, schema: Any, x: str, d: int) -> None:
        """fastavro's conversion (`prepare_bytes_decimal`), done here for a Decimal whose
        exponent is the scale's, as a value quantized to the scale has: the unscaled integer,
        at most `precision` digits, in big-endian two's complement of (bit length + 8) // 8
        bytes. The scaling is exact: a context of the greatest precision, not the thread's,
        whose precision a caller may have lowered. Other exponents go through fastavro's
        function, so the bytes are its bytes by construction."""
        scale, limit = int(schema.get("scale", 0)), 10 ** int(schema["precision"])
        quantum = self.const(Decimal(f"1E{-scale}"))
        exact = self.const(Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN))
        prepare, params = self.const(LOGICAL_WRITERS["bytes-decimal"]), self.const(schema)
        n = self.var()
        self.line(d, f"if type({x}) is _Decimal:")
        self.line(d + 1, f"if {x}.same_quantum({quantum}):")
        self.line(d + 2, f"{n} = int({x}.scaleb({scale}, {exact}))")
        self.line(d + 2, f"if not -{limit} < {n} < {limit}: raise Reject")
        self.line(d + 2, f"{x} = {n}.to_bytes(({n}.bit_length() + 8) // 8, 'big', signed=True)")
        self.line(d + 1, "else:")
        self.line(d + 2, f"{x} = {prepare}({x}, {params})")
        self.primitive("bytes", x, d)

    def record(self, schema: Any, x: str, d: int) -> None:
        name = schema["name"]
        if name in self.inlining:
            raise Unsupported(f"recursive type {name}")
        self.inlining.append(name)
        fields = schema["fields"]
        names = frozenset(f["name"] for f in fields)
        defaults = {f["name"]: f["default"] for f in fields if "default" in f}
        shape = self.const((names, defaults))
        self.line(d, f"if type({x}) is not dict or len({x}) != {len(fields)}:")
        self.line(d + 1, f"{x} = _fill({x}, {shape})")
        for field in fields:
            value = self.var()
            self.line(d, f"{value} = {x}[{field['name']!r}]")
            self.emit(field["type"], value, d)
        self.inlining.pop()

    def enum(self, schema: Any, x: str, d: int) -> None:
        table = self.const({s: _long_text(i) for i, s in enumerate(schema["symbols"])})
        self.piece(f"{table}[{x}]")  # KeyError for anything but a symbol

    def fixed(self, schema: Any, x: str, d: int) -> None:
        self.line(d, f"if type({x}) is not bytes or len({x}) != {int(schema['size'])}:")
        self.line(d + 1, "raise Reject")
        self.piece(f"{x}.decode('latin-1')")

    def array(self, schema: Any, x: str, d: int) -> None:
        item = self.var()
        self.line(d, f"if type({x}) is not list: raise Reject")
        self.flush(d)
        self.line(d, f"if {x}:")
        self.line(d + 1, f"add(_long(len({x})))")
        self.line(d + 1, f"for {item} in {x}:")
        self.emit(schema["items"], item, d + 2)
        self.flush(d + 2)
        self.piece("'\\x00'")

    def map(self, schema: Any, x: str, d: int) -> None:
        key, value = self.var(), self.var()
        self.line(d, f"if type({x}) is not dict: raise Reject")
        self.flush(d)
        self.line(d, f"if {x}:")
        self.line(d + 1, f"add(_long(len({x})))")
        self.line(d + 1, f"for {key}, {value} in {x}.items():")
        self.primitive("string", key, d + 2)
        self.emit(schema["values"], value, d + 2)
        self.flush(d + 2)
        self.piece("'\\x00'")

    def union(self, schema: list[Any], x: str, d: int) -> None:
        # fastavro picks the first branch whose validator accepts the value; with one "null"
        # branch and one other, that is "null" exactly for None (no other type accepts None).
        if len(schema) != 2 or schema.count("null") != 1:
            raise Unsupported("union other than [null, X]")
        null_index = schema.index("null")
        other = schema[1 - null_index]
        if isinstance(other, list):
            raise Unsupported("union in a union")
        null, present = _long_text(null_index), _long_text(1 - null_index)
        # A branch that adds nothing itself (no array, map or union that flushes) becomes
        # one piece, `null if x is None else present + its pieces`, its lines run only for a
        # value: no flush, so the pieces around it still go in one join.
        outer, self.pending = self.pending, []
        start, flushes = len(self.lines), self.flushes
        self.line(d, f"if {x} is not None:")
        self.emit(other, x, d + 1)
        inner, self.pending = self.pending, outer
        if self.flushes == flushes:
            if len(self.lines) == start + 1:
                del self.lines[start]
            self.piece(f"({null!r} if {x} is None else {_concatenation([repr(present), *inner])})")
            return
        del self.lines[start:]
        self.flush(d)
        self.line(d, f"if {x} is None: add({null!r})")
        self.line(d, "else:")
        self.piece(repr(present))
        self.emit(other, x, d + 1)
        self.flush(d + 1)


def _concatenation(pieces: list[str]) -> str:
    if len(pieces) == 1:
        return pieces[0]
    if len(pieces) <= 3:
        return " + ".join(pieces)
    return f"''.join(({', '.join(pieces)}))"


def generate_source(parsed: Any) -> tuple[str, dict[str, Any]]:
    """The source of `_make(**constants)`, which returns `encode(value) -> bytes` for a
    fastavro-parsed schema, and the constants. (Constants reach `encode` as closure cells,
    which it reads faster than globals.) Raises Unsupported for shapes left to fastavro."""
    named = parsed.get("__named_schemas", {}) if isinstance(parsed, dict) else {}
    generator = _Generator(named)
    generator.line(1, "def encode(v0):")
    generator.line(2, "out = []")
    generator.line(2, "add = out.append")
    generator.emit(parsed, "v0", 2)
    generator.flush(2)
    generator.line(2, "return ''.join(out).encode('latin-1')")
    generator.line(1, "return encode")
    head = f"def _make({', '.join(generator.namespace)}):"
    return "\n".join([head, *generator.lines]) + "\n", generator.namespace


def compile_writer(parsed: Any) -> Callable[[Any], bytes] | None:
    """The compiled fast-path writer of a fastavro-parsed schema, or None when the schema has a
    shape this module leaves to fastavro. The writer raises (usually Reject) for any value it
    does not encode exactly as fastavro would; the caller then runs fastavro."""
    try:
        source, constants = generate_source(parsed)
        code = compile(source, "<avro writer>", "exec")
    except (Unsupported, RecursionError, SyntaxError):
        return None  # SyntaxError: Python's limit on statically nested blocks
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    writer: Callable[[Any], bytes] = namespace["_make"](**constants)
    return writer


class CompiledWriter:
    """The compiled writer of one schema, compiled on first use so that loading all schemas
    stays cheap. `function` is None for a schema left to fastavro. Compiling twice in a race
    between threads is harmless: both results behave the same."""

    __slots__ = ("_compiled", "_function", "_parsed")

    def __init__(self, parsed: Any) -> None:
        self._parsed = parsed
        self._function: Callable[[Any], bytes] | None = None
        self._compiled = False

    @property
    def function(self) -> Callable[[Any], bytes] | None:
        if not self._compiled:
            self._function = compile_writer(self._parsed)
            self._compiled = True
        return self._function
