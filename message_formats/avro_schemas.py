"""Avro schemas from `.avsc` files (one named type per file, `<full name>.avsc`) and the Avro
single-object encoding: `C3 01`, the 8-byte little-endian CRC-64-AVRO fingerprint of the
schema's Parsing Canonical Form, then the binary-encoded value."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.repository.base import AbstractSchemaRepository, SchemaRepositoryError
from fastavro.schema import SchemaParseException, load_schema, parse_schema
from fastavro.schema import to_parsing_canonical_form as _canonical_form

from ._avro_writer import CompiledWriter
from .errors import (
    AvroMalformedError,
    AvroRecordInvalidError,
    AvroSchemaLoadError,
    AvroUnknownSchemaError,
    SchemaRedefinedError,
)

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
FINGERPRINT_SIZE = 8
_PREFIX_SIZE = len(SINGLE_OBJECT_MAGIC) + FINGERPRINT_SIZE
_SCHEMA_SUFFIX = ".avsc"

# What fastavro raises on values that do not fit a schema, or bytes that are not a value.
_ENCODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
_DECODE_ERRORS = (
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    UnicodeDecodeError,
    MemoryError,
)


def avro_fingerprint(schema: str | Mapping[str, Any] | list[Any]) -> bytes:
    """CRC-64-AVRO of the schema's Parsing Canonical Form, as the 8 little-endian bytes the
    single-object encoding carries."""
    plain = dict(schema) if isinstance(schema, Mapping) else schema
    return fingerprint_of_canonical_form(_canonical_form(plain))


def fingerprint_of_canonical_form(canonical_form: str) -> bytes:
    """The spec's `fingerprint64` as the little-endian bytes the single-object header carries
    (verified against the spec's vectors in tests/conformance/test_avro_fingerprint.py).
    fastavro's own builds its 256-entry table on every call, which made it most of the cost
    of loading the schemas when a gateway, its parse worker or a command starts."""
    fp = _CRC64_EMPTY
    for byte in canonical_form.encode():
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def _crc64_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_CRC64_EMPTY = 0xC15D213AA4D7A795
_CRC64_TABLE = _crc64_table()


@dataclass(frozen=True, slots=True)
class LoadedSchema:
    full_name: str
    parsed: Any
    canonical_form: str
    fingerprint: bytes
    # The schema-compiled fast-path writer, compiled on first use (see _avro_writer).
    writer: CompiledWriter = field(init=False, repr=False, compare=False)
    # What the single-object encoding puts before the body: C3 01 and the fingerprint.
    single_object_prefix: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "writer", CompiledWriter(self.parsed))
        object.__setattr__(self, "single_object_prefix", SINGLE_OBJECT_MAGIC + self.fingerprint)


@dataclass(frozen=True, slots=True)
class WriterSchema:
    """A schema a value may have been written with, as plain JSON that any Avro library
    parses alone: every named type is defined where it is first used (as the Parsing
    Canonical Form orders them), docs, defaults and logical types kept. `current` is False
    for a schema of an earlier release that values written before an upgrade carry."""

    full_name: str
    fingerprint: bytes
    schema: Any
    current: bool


def plain_schema(parsed: Any) -> Any:
    """A fastavro parsed schema without fastavro's own keys (`__fastavro_parsed`,
    `__named_schemas`): the standalone JSON of the schema."""
    if isinstance(parsed, dict):
        return {key: plain_schema(value) for key, value in parsed.items()
                if not key.startswith("__")}
    if isinstance(parsed, list):
        return [plain_schema(item) for item in parsed]
    return parsed


class _SourceRepository(AbstractSchemaRepository):
    """Feeds fastavro's cross-file name resolution from already-read file texts."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self._sources = sources

    def load(self, name: str) -> Any:
        try:
            return json.loads(self._sources[name])
        except KeyError:
            raise SchemaRepositoryError(f"no schema file for {name!r}") from None


class AvroSchemas:
    """All schemas of the built-in `avro/` directory plus any extra directories, each parsed
    once, the schemas of adapter plug-ins (`read_extension`, then `extend`) and the schemas
    `add`ed at run time.

    The built-in files are read at once, but each is parsed when first asked for by name, and
    all of them when a fingerprint is asked for that no schema parsed yet has: parsing all
    took 0.04-0.1 s of each process's start, and a parse worker or a command asks for a few
    or none. The files of extra directories are parsed at once, so that one that does not load
    is refused there."""

    __slots__ = ("_builtin", "_by_fingerprint", "_by_name", "_released_by_name",
                 "_released_cache", "_repository", "_sources", "_unparsed")

    def __init__(self, *extra_dirs: str | os.PathLike[str], builtin: bool = True) -> None:
        directories: list[Traversable] = [_builtin_avro_dir()] if builtin else []
        directories.extend(Path(d) for d in extra_dirs)
        # The texts read here: what the types of an extension may refer to by name.
        self._sources = _read_sources(directories)
        self._repository = _SourceRepository(self._sources)
        self._unparsed = set(self._sources)
        self._by_name: dict[str, LoadedSchema] = {}
        self._by_fingerprint: dict[bytes, LoadedSchema] = {}
        self._builtin = builtin
        self._released_cache: dict[bytes, LoadedSchema] | None = None
        self._released_by_name: dict[str, tuple[LoadedSchema, ...]] = {}
        if extra_dirs:
            self._parse_all()

    def _parse(self, full_name: str) -> LoadedSchema:
        """Parses one file read at the start (threads may race to it: both get the same)."""
        entry = _load_one(full_name, self._repository)
        other = self._by_fingerprint.setdefault(entry.fingerprint, entry)
        if other.full_name != full_name:
            raise AvroSchemaLoadError(f"{full_name} and {other.full_name} share fingerprint "
                                      f"{entry.fingerprint.hex()}")
        self._by_name.setdefault(full_name, entry)
        self._unparsed.discard(full_name)
        return self._by_name[full_name]

    def _parse_all(self) -> None:
        for name in sorted(self._unparsed):
            self._parse(name)

    def _by_fingerprint_of(self, fingerprint: bytes) -> LoadedSchema | None:
        """The current schema of that fingerprint, parsing every file not yet parsed if none
        parsed so far has it."""
        entry = self._by_fingerprint.get(fingerprint)
        if entry is None and self._unparsed:
            self._parse_all()
            entry = self._by_fingerprint.get(fingerprint)
        return entry

    def _released(self) -> dict[bytes, LoadedSchema]:
        """Writer schemas of earlier releases that differ from the current one of their name:
        what a message written before an upgrade was encoded with. Loaded when first needed
        (a message of an earlier release, or its fingerprints asked for): loading them took
        0.25-0.4 s of every process's start, most of which never read such a message."""
        if self._released_cache is None:
            self._released_cache = {entry.fingerprint: entry for name in sorted(self._sources)
                                    for entry in self._released_versions(name)}
        return self._released_cache

    @classmethod
    def from_dirs(cls, *dirs: str | os.PathLike[str], builtin: bool = True) -> AvroSchemas:
        return cls(*dirs, builtin=builtin)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted({*self._by_name, *self._unparsed}))

    def __contains__(self, full_name: object) -> bool:
        return full_name in self._by_name or full_name in self._unparsed

    def loaded(self, full_name: str) -> LoadedSchema:
        entry = self._by_name.get(full_name)
        if entry is not None:
            return entry
        if full_name in self._unparsed:
            return self._parse(full_name)
        raise AvroUnknownSchemaError(f"no Avro schema named {full_name!r}")

    def schema(self, full_name: str) -> Any:
        """The fastavro parsed schema, ready for fastavro's readers and writers."""
        return self.loaded(full_name).parsed

    def fingerprint(self, full_name: str) -> bytes:
        return self.loaded(full_name).fingerprint

    def canonical_form(self, full_name: str) -> str:
        return self.loaded(full_name).canonical_form

    def read_extension(self, directory: Traversable) -> tuple[LoadedSchema, ...]:
        """The `.avsc` files of `directory` (an adapter plug-in's own), loaded but not yet
        known here (`extend` makes them known). They may refer to the types loaded here by
        name, as to `px.canonical.Header`; a type of a name or a fingerprint already known is
        refused with SCHEMA_REDEFINED, a file that does not load with AVRO_SCHEMA_LOAD_FAILED."""
        own = _read_sources([directory])
        self._parse_all()  # an extension's fingerprints must differ from every one here
        taken = sorted(set(own) & set(self._by_name))
        if taken:
            raise SchemaRedefinedError(
                f"{directory} redefines Avro schema(s) the gateway has: {', '.join(taken)}")
        repository = _SourceRepository({**self._sources, **own})
        loaded = tuple(_load_one(name, repository) for name in sorted(own))
        _index_by_fingerprint([*self._by_fingerprint.values(), *loaded])
        return loaded

    def extend(self, loaded: Iterable[LoadedSchema]) -> None:
        """Makes schemas from `read_extension` known, under their names and fingerprints."""
        for entry in loaded:
            self._by_fingerprint[entry.fingerprint] = entry
            self._by_name[entry.full_name] = entry

    def add(self, schema: Mapping[str, Any]) -> str:
        """Registers a self-contained record schema made at run time (a sharing contract's
        projected record) and returns its full name; a schema of the same name is replaced.
        Each registration is one dictionary store, so readers never see half of one."""
        try:
            parsed = parse_schema(dict(schema))
        except (SchemaParseException, ValueError, TypeError) as exc:
            raise AvroSchemaLoadError(f"cannot load Avro schema: {exc}") from None
        if not isinstance(parsed, dict):
            raise AvroSchemaLoadError("a schema added at run time must be a record")
        canonical = _canonical_form(parsed)
        entry = LoadedSchema(str(parsed["name"]), parsed, canonical,
                             fingerprint_of_canonical_form(canonical))
        self._by_fingerprint[entry.fingerprint] = entry
        self._by_name[entry.full_name] = entry
        self._unparsed.discard(entry.full_name)
        return entry.full_name

    def name_of_fingerprint(self, fingerprint: bytes) -> str:
        entry = self._by_fingerprint_of(bytes(fingerprint)) or self._released().get(
            bytes(fingerprint))
        if entry is None:
            raise AvroUnknownSchemaError(f"no Avro schema with fingerprint {fingerprint.hex()}")
        return entry.full_name

    def fingerprints(self, full_name: str) -> tuple[bytes, ...]:
        """Every fingerprint `decode` reads as `full_name`: the current schema's first, then
        those of the released versions that differ from it."""
        return (self.fingerprint(full_name),
                *(entry.fingerprint for entry in self._released_versions(full_name)))

    def _released_versions(self, full_name: str) -> tuple[LoadedSchema, ...]:
        """The released versions of `full_name` that differ from its current schema, read
        from that name's files (and those it refers to) alone: a trail archive opened asks
        for three names, and loading every release for them cost each gateway's start a
        tenth of a second per chain."""
        found = self._released_by_name.get(full_name)
        if found is None:
            found = (_released_writers_of(full_name, self.fingerprint(full_name))
                     if self._builtin and full_name in self._sources else ())
            self._released_by_name[full_name] = found
        return found

    def standalone(self, full_name: str) -> Any:
        """The schema as plain JSON that any Avro library parses alone (`WriterSchema`)."""
        return plain_schema(self.schema(full_name))

    def writer_schemas(self) -> tuple[WriterSchema, ...]:
        """Every schema `decode` reads: the current ones (built-in, plug-ins', added at run
        time) by name, then those of earlier releases."""
        self._parse_all()
        current = [WriterSchema(name, entry.fingerprint, plain_schema(entry.parsed), True)
                   for name, entry in sorted(self._by_name.items())]
        released = [WriterSchema(entry.full_name, fingerprint, plain_schema(entry.parsed),
                                 False)
                    for fingerprint, entry in sorted(self._released().items(),
                                                     key=lambda item: item[1].full_name)]
        return (*current, *released)

    def encode(self, full_name: str, record: Any) -> bytes:
        """Single-object encoding: `C3 01`, the schema's fingerprint, then the body."""
        entry = self.loaded(full_name)
        return entry.single_object_prefix + self._encode_body(entry, record)

    def encode_body(self, full_name: str, record: Any) -> bytes:
        """Plain Avro binary encoding, as hashed and signed by the trail. Extra fields, or
        missing fields without a default, are errors rather than silently dropped or
        invented.

        The schema's compiled writer encodes the values it can encode exactly as fastavro
        does; anything it leaves (by raising) goes to fastavro, which encodes it or says why
        not, as it always did."""
        return self._encode_body(self.loaded(full_name), record)

    @staticmethod
    def _encode_body(entry: LoadedSchema, record: Any) -> bytes:
        fast = entry.writer.function
        if fast is not None:
            try:
                return fast(record)
            except Exception:
                pass
        buffer = io.BytesIO()
        try:
            schemaless_writer(buffer, entry.parsed, record, strict_allow_default=True)
        except _ENCODE_ERRORS as exc:
            raise AvroRecordInvalidError(
                f"record does not fit {entry.full_name}: {exc}"
            ) from None
        return buffer.getvalue()

    def decode_body(self, full_name: str, data: bytes) -> Any:
        """Inverse of encode_body: the value of a plain Avro binary encoding of `full_name`.

        A plain encoding names no schema, so bytes that the current schema does not read
        exactly are read with each released version of it that differs (resolved to the
        current one, its new fields at their defaults): a receipt signed before a field was
        added stays readable. Where a version only adds fields at the end (what the
        released schemas of bodies have done), bytes of one version never read exactly as
        another's, so the reading is not ambiguous. The current schema is tried first: only
        bytes it refuses cost more."""
        entry = self.loaded(full_name)
        try:
            return _read_body(entry, data)
        except AvroMalformedError as refused:
            for released in self._released_versions(full_name):
                try:
                    return _read_body(released, data, entry.parsed)
                except AvroMalformedError:
                    continue
            raise refused from None

    def decode(self, data: bytes | bytearray | memoryview) -> tuple[str, Any]:
        """Inverse of encode: (full name, value). Trailing bytes make the input malformed."""
        view = memoryview(data)
        if len(view) < _PREFIX_SIZE or view[:2] != SINGLE_OBJECT_MAGIC:
            raise AvroMalformedError("not an Avro single-object encoding (no C3 01 header)")
        fingerprint = bytes(view[2:_PREFIX_SIZE])
        entry = self._by_fingerprint_of(fingerprint)
        reader = None
        if entry is None:
            entry = self._released().get(fingerprint)
            if entry is None:
                raise AvroUnknownSchemaError(
                    f"no Avro schema with fingerprint {fingerprint.hex()}")
            reader = self._by_name[entry.full_name].parsed  # resolved to the current schema
        buffer = io.BytesIO(view[_PREFIX_SIZE:])
        try:
            value = schemaless_reader(buffer, entry.parsed, reader)
        except _DECODE_ERRORS as exc:
            raise AvroMalformedError(
                f"bytes are not a {entry.full_name} value: {type(exc).__name__}: {exc}"
            ) from None
        if buffer.tell() != len(view) - _PREFIX_SIZE:
            raise AvroMalformedError(f"trailing bytes after the {entry.full_name} value")
        return entry.full_name, value


def _read_body(entry: LoadedSchema, data: bytes, reader: Any = None) -> Any:
    """The value of `data`, a plain encoding with `entry`'s schema (read as `reader`)."""
    buffer = io.BytesIO(data)
    try:
        value = schemaless_reader(buffer, entry.parsed, reader)
    except _DECODE_ERRORS as exc:
        raise AvroMalformedError(
            f"bytes are not a {entry.full_name} value: {type(exc).__name__}: {exc}") from None
    if buffer.tell() != len(data):
        raise AvroMalformedError(f"trailing bytes after the {entry.full_name} value")
    return value


def _builtin_avro_dir() -> Traversable:
    return resources.files("message_formats").joinpath("avro")


def _released_writers_of(full_name: str, current: bytes) -> tuple[LoadedSchema, ...]:
    """The schemas of `full_name` in every released version (message_formats/released/
    <version>/) whose fingerprint is not `current`, its current one's. Data written with them
    is read by Avro schema resolution; tests/conformance/test_schema_compat.py keeps that
    possible."""
    writers: dict[bytes, LoadedSchema] = {}
    for version in _release_directories():
        if not version.joinpath(full_name + _SCHEMA_SUFFIX).is_file():
            continue
        entry = _load_one(full_name, _DirectoryRepository(version))
        if entry.fingerprint != current:
            writers.setdefault(entry.fingerprint, entry)
    return tuple(writers.values())


def _release_directories() -> list[Traversable]:
    released = resources.files("message_formats").joinpath("released")
    if not released.is_dir():
        return []
    return sorted((d for d in released.iterdir() if d.is_dir()), key=lambda d: d.name)


class _DirectoryRepository(AbstractSchemaRepository):
    """Feeds fastavro's name resolution from one directory's files, read when asked for."""

    def __init__(self, directory: Traversable) -> None:
        self._directory = directory

    def load(self, name: str) -> Any:
        try:
            text = self._directory.joinpath(name + _SCHEMA_SUFFIX).read_text(encoding="utf-8")
        except OSError:
            raise SchemaRepositoryError(f"no schema file for {name!r}") from None
        return json.loads(text)


def _read_sources(directories: Iterable[Traversable]) -> dict[str, str]:
    """Schema file texts by full name (the file name without `.avsc`)."""
    sources: dict[str, str] = {}
    origins: dict[str, str] = {}
    for directory in directories:
        if not directory.is_dir():
            raise AvroSchemaLoadError(f"schema directory {directory} does not exist")
        for entry in sorted(directory.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(_SCHEMA_SUFFIX) or not entry.is_file():
                continue
            name = entry.name.removesuffix(_SCHEMA_SUFFIX)
            if name in sources:
                raise AvroSchemaLoadError(
                    f"schema {name} defined twice: {origins[name]} and {entry}"
                )
            sources[name] = entry.read_text(encoding="utf-8")
            origins[name] = str(entry)
    return sources


def _load_one(name: str, repository: AbstractSchemaRepository) -> LoadedSchema:
    try:
        parsed = load_schema(name, repo=repository)
    except (SchemaParseException, SchemaRepositoryError, ValueError) as exc:
        raise AvroSchemaLoadError(f"cannot load Avro schema {name}: {exc}") from None
    declared = parsed.get("name") if isinstance(parsed, dict) else None
    if declared != name:
        raise AvroSchemaLoadError(
            f"file {name}{_SCHEMA_SUFFIX} declares {declared!r}; the file name must be the "
            "full name of the type it defines"
        )
    canonical = _canonical_form(parsed)
    return LoadedSchema(name, parsed, canonical, fingerprint_of_canonical_form(canonical))


def _index_by_fingerprint(loaded: Iterable[LoadedSchema]) -> dict[bytes, LoadedSchema]:
    index: dict[bytes, LoadedSchema] = {}
    for entry in loaded:
        other = index.setdefault(entry.fingerprint, entry)
        if other is not entry:
            raise AvroSchemaLoadError(
                f"{entry.full_name} and {other.full_name} share fingerprint "
                f"{entry.fingerprint.hex()}"
            )
    return index
