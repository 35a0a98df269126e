"""Compiled XML Schemas, loaded once by name from the package's xsd/ directory (and extras)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from lxml import etree

from .errors import (
    SchemaRedefinedError,
    XsdInvalidError,
    XsdSchemaLoadError,
    XsdUnknownSchemaError,
)
from .xsd_messages import SchemaWords, describe

_MAX_REPORTED_ERRORS = 3


def _builtin_xsd_dir() -> Traversable:
    return resources.files("message_formats").joinpath("xsd")


def _schema_file_parser() -> etree.XMLParser:
    # Our own schema files are trusted, but they still never reach the network.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A compiled XSD, and the words of its source that error messages may repeat."""

    schema: etree.XMLSchema
    words: SchemaWords


class XsdStore:
    """Compiles each XSD once, on first use. Lookup order: the built-in directory, then
    `extra_dirs` in the order given.

    A compiled lxml XMLSchema keeps its error log on the object, so validate from one
    thread per store."""

    __slots__ = ("_compiled", "_dirs")

    def __init__(self, *extra_dirs: str | os.PathLike[str] | Traversable) -> None:
        self._dirs: tuple[Traversable, ...] = (
            _builtin_xsd_dir(),
            *(Path(d) if isinstance(d, str | os.PathLike) else d for d in extra_dirs),
        )
        self._compiled: dict[str, _Compiled] = {}

    @classmethod
    def with_extension(cls, directory: Traversable) -> XsdStore:
        """A store of the built-in XSDs and those of `directory` (an adapter plug-in's own),
        which are compiled now: SCHEMA_REDEFINED if one has the name of a built-in (that one
        would be found first), XSD_SCHEMA_LOAD_FAILED if one does not compile."""
        own = _names_in(directory)
        taken = sorted(set(own) & set(_names_in(_builtin_xsd_dir())))
        if taken:
            raise SchemaRedefinedError(
                f"{directory} redefines XSD(s) the gateway has: {', '.join(taken)}")
        store = cls(directory)
        for name in own:
            store.schema(name)
        return store

    def names(self) -> tuple[str, ...]:
        return tuple(sorted({name for directory in self._dirs for name in _names_in(directory)}))

    def compiled(self) -> tuple[str, ...]:
        """Names compiled so far."""
        return tuple(sorted(self._compiled))

    def schema(self, name: str) -> etree.XMLSchema:
        return self._get(name).schema

    def validate(self, name: str, root: etree._Element) -> None:
        """Raises XsdInvalidError naming, for each of the first errors, its line, the
        element (and attribute) and the rule broken, never the document's value."""
        compiled = self._get(name)
        if not compiled.schema.validate(root):
            raise _invalid(name, compiled.schema.error_log, compiled.words)

    def _get(self, name: str) -> _Compiled:
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = self._compile(name)
            self._compiled[name] = compiled
        return compiled

    def _compile(self, name: str) -> _Compiled:
        source = self._find(name)
        try:
            document = etree.fromstring(
                source.read_bytes(), _schema_file_parser(), base_url=str(source)
            )
            return _Compiled(etree.XMLSchema(document), SchemaWords.of(document))
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
            raise XsdSchemaLoadError(f"{name}.xsd does not compile: {exc}") from None

    def _find(self, name: str) -> Traversable:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise XsdUnknownSchemaError(f"invalid schema name {name!r}")
        for directory in self._dirs:
            candidate = directory.joinpath(f"{name}.xsd")
            if candidate.is_file():
                return candidate
        raise XsdUnknownSchemaError(f"no XSD named {name!r}")


def _names_in(directory: Traversable) -> tuple[str, ...]:
    if not directory.is_dir():
        return ()
    return tuple(sorted(entry.name.removesuffix(".xsd") for entry in directory.iterdir()
                        if entry.name.endswith(".xsd")))


def _invalid(name: str, log: etree._ListErrorLog, words: SchemaWords) -> XsdInvalidError:
    entries = list(log)[:_MAX_REPORTED_ERRORS]
    details = "; ".join(describe(entry, words) for entry in entries)
    more = len(log) - len(entries)
    if more > 0:
        details += f"; and {more} more"
    first_line = entries[0].line if entries else None
    return XsdInvalidError(f"not valid against {name}.xsd: {details}", line=first_line)
