"""Reading contract files (TOML, one contract per file) into `Contract` values.

Reading only checks each file on its own: keys, types, names of scopes, rules and events,
dates. What needs the agency registry and the document catalog (scope against the agencies,
field paths, personal data, conditions) is `contracts.lint`. Both report `Problem`s rather
than stopping at the first, so `portgw contracts lint` can list them all; the gateway loads
a directory only when it has none (`load_contract_dir`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.catalog import CLASSIFICATIONS
from contracts.errors import ContractInvalid
from contracts.masking import MaskRule
from contracts.model import CONTRACT_KINDS, SCOPES, STATUS_EVENTS, WHOLE_RECORD, Contract

_COMMON = ("id", "version", "consumers", "document_types", "purpose", "legal_basis",
           "valid_from")
REQUIRED = {
    "sharing": (*_COMMON, "provider", "scope", "fields"),
    "subscription": (*_COMMON, "events"),
}
OPTIONAL = {
    "sharing": ("kind", "valid_to", "masks", "condition", "max_classification",
                "delivery_format", "encrypt", "export_assessment", "personal_data_basis"),
    "subscription": ("kind", "valid_to"),
}
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a contract file, printed as `file:line: code: message`."""

    path: Path
    line: int | None
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or 1}: {self.code}: {self.message}"


class SourceLines:
    """Finds the line of a key, or of a value under a key, in a TOML text (tomllib keeps no
    positions). Good enough for one-contract files written by people: the first match."""

    __slots__ = ("_lines",)

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()

    def of_key(self, key: str) -> int | None:
        for number, line in enumerate(self._lines, start=1):
            name = line.split("=", 1)[0].strip().strip("\"'")
            if "=" in line and name == key:
                return number
        return None

    def of_value(self, key: str, value: str) -> int | None:
        """The first line at or after `key` quoting `value`, else the key's line."""
        start = self.of_key(key) or 1
        for number in range(start, len(self._lines) + 1):
            line = self._lines[number - 1]
            if f'"{value}"' in line or f"'{value}'" in line:
                return number
        return start


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A contract file read on its own: the contract when it is well-formed, the problems,
    and its lines for later checks to point into."""

    path: Path
    contract: Contract | None
    problems: tuple[Problem, ...]
    lines: SourceLines


def read_contract_file(path: Path) -> ParsedFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem(path, None, "CONTRACT_INVALID", f"cannot read: {exc}")
        return ParsedFile(path, None, (problem,), SourceLines(""))
    lines = SourceLines(text)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = Problem(path, _toml_error_line(exc), "CONTRACT_INVALID", f"not valid TOML: {exc}")
        return ParsedFile(path, None, (problem,), lines)
    reader = _TableReader(path, lines, table.get("contract", table))
    contract = reader.contract()
    return ParsedFile(path, contract, tuple(reader.problems), lines)


def _toml_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    """tomllib says the line only in its message before Python 3.14: '(at line 3, column 9)'."""
    found = re.search(r"at line (\d+)", str(exc))
    return int(found.group(1)) if found else None


class _TableReader:
    """Turns one contract table into a Contract, noting every problem on the way."""

    def __init__(self, path: Path, lines: SourceLines, table: Mapping[str, Any]) -> None:
        self.path = path
        self.lines = lines
        self.table = table
        self.problems: list[Problem] = []

    def fail(self, key: str, code: str, message: str, *, value: str | None = None) -> None:
        line = self.lines.of_value(key, value) if value is not None else self.lines.of_key(key)
        self.problems.append(Problem(self.path, line, code, message))

    def contract(self) -> Contract | None:
        kind = self.table.get("kind", "sharing")
        if kind not in CONTRACT_KINDS:
            self.fail("kind", "CONTRACT_BAD_KIND",
                      f"kind {kind!r} is not one of {', '.join(sorted(CONTRACT_KINDS))}")
            return None
        missing = [key for key in REQUIRED[kind] if key not in self.table]
        if missing:
            self.problems.append(Problem(self.path, None, "CONTRACT_MISSING_FIELD",
                                         f"missing {', '.join(missing)}"))
        known = {*REQUIRED[kind], *OPTIONAL[kind]}
        for key in self.table:
            if key not in known:
                self.fail(key, "CONTRACT_UNKNOWN_KEY",
                          f"{key!r} is not a setting of a {kind} contract")
        before = len(self.problems)
        values = self.values(kind)
        if missing or len(self.problems) > before:
            return None
        return Contract(kind=kind, source=self.path, **values)

    def values(self, kind: str) -> dict[str, Any]:
        t = self.table
        values: dict[str, Any] = {
            "id": self.identifier(),
            "version": self.positive_int("version"),
            "consumers": self.strings("consumers"),
            "document_types": self.strings("document_types"),
            "purpose": self.text("purpose"),
            "legal_basis": self.text("legal_basis"),
            "valid_from": self.instant("valid_from"),
            "valid_to": self.instant("valid_to") if "valid_to" in t else None,
        }
        valid_from, valid_to = values["valid_from"], values["valid_to"]
        if valid_from and valid_to and valid_to <= valid_from:
            self.fail("valid_to", "CONTRACT_BAD_VALIDITY", "valid_to is not after valid_from")
        if kind == "subscription":
            values["events"] = self.events()
            return values
        values |= {
            "provider": self.text("provider"),
            "scope": self.scope(),
            "fields": self.strings("fields"),
            "masks": self.masks(),
            "condition": self.text("condition") if "condition" in t else None,
            "max_classification": self.classification(),
            "delivery_format": self.text("delivery_format") if "delivery_format" in t else None,
            "encrypt": self.flag("encrypt"),
            "export_assessment": self.optional_text("export_assessment"),
            "personal_data_basis": self.optional_text("personal_data_basis"),
        }
        if WHOLE_RECORD in values["fields"] and len(values["fields"]) > 1:
            self.fail("fields", "CONTRACT_BAD_PATH",
                      '"*" delivers the whole record and stands alone in fields')
        return values

    # --- one key each ---------------------------------------------------------------------

    def present(self, key: str, check: Callable[[Any], object], expected: str) -> Any:
        value = self.table.get(key)
        if key in self.table and not check(value):
            self.fail(key, "CONTRACT_INVALID", f"{key} must be {expected}, not {value!r}")
            return None
        return value

    def identifier(self) -> str:
        value = self.text("id")
        if value and not _ID.match(value):
            self.fail("id", "CONTRACT_INVALID",
                      f"id {value!r} must be lowercase letters, digits, '.', '_' or '-'")
        return value

    def text(self, key: str) -> str:
        value = self.present(key, lambda v: isinstance(v, str) and v.strip() != "",
                             "a non-empty string")
        return value or ""

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self.table else None

    def positive_int(self, key: str) -> int:
        value = self.present(key, lambda v: type(v) is int and v >= 1, "a whole number ≥ 1")
        return value or 0

    def flag(self, key: str) -> bool:
        return bool(self.present(key, lambda v: isinstance(v, bool), "true or false"))

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.present(
            key,
            lambda v: isinstance(v, list) and v and all(isinstance(s, str) and s for s in v),
            "a non-empty list of strings",
        )
        if value and len(set(value)) != len(value):
            self.fail(key, "CONTRACT_INVALID", f"{key} names an entry twice")
        return tuple(value or ())

    def instant(self, key: str) -> datetime | None:
        value = self.table.get(key)
        if not isinstance(value, datetime) or value.tzinfo is None:
            self.fail(key, "CONTRACT_BAD_VALIDITY",
                      f"{key} must be a TOML date-time with a UTC offset")
            return None
        return value.astimezone(UTC)

    def scope(self) -> str:
        value = self.table.get("scope")
        if value not in SCOPES:
            self.fail("scope", "CONTRACT_BAD_SCOPE",
                      f"scope {value!r} is not one of {', '.join(sorted(SCOPES))}")
            return ""
        return str(value)

    def classification(self) -> str:
        value = self.table.get("max_classification", "general")
        if value not in CLASSIFICATIONS:
            self.fail("max_classification", "CONTRACT_BAD_CLASSIFICATION",
                      f"max_classification {value!r} is not one of {', '.join(CLASSIFICATIONS)}")
            return "general"
        return str(value)

    def masks(self) -> tuple[tuple[str, MaskRule], ...]:
        table = self.present("masks", lambda v: isinstance(v, dict), "a table of path = rule")
        rules = []
        for path, spec in (table or {}).items():
            try:
                rules.append((path, MaskRule.parse(spec, path=path)))
            except ContractInvalid as exc:
                self.fail(path, exc.code, exc.message)
        return tuple(rules)

    def events(self) -> tuple[str, ...]:
        events = self.strings("events")
        for event in events:
            if event not in STATUS_EVENTS:
                self.fail("events", "CONTRACT_BAD_EVENT",
                          f"event {event!r} is not one of {', '.join(sorted(STATUS_EVENTS))}",
                          value=event)
        return events
