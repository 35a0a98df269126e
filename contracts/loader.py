"""Loading contracts from TOML files, one contract per file."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.agencies import AgencyRegistry
from contracts.errors import ContractInvalid
from contracts.model import SCOPES, Contract

REQUIRED = ("id", "version", "provider", "consumers", "document_types", "scope", "purpose",
            "legal_basis", "valid_from")


def load_contract_dir(directory: Path, agencies: AgencyRegistry) -> tuple[Contract, ...]:
    """Every `*.toml` file of the directory, in name order; the first bad file raises."""
    if not directory.is_dir():
        raise ContractInvalid(f"no contract directory at {directory}", path=directory)
    return tuple(load_contract_file(p, agencies) for p in sorted(directory.glob("*.toml")))


def load_contract_file(path: Path, agencies: AgencyRegistry) -> Contract:
    try:
        text = path.read_text(encoding="utf-8")
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(exc)
        raise ContractInvalid(f"not valid TOML: {exc}", path=path, line=line) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractInvalid(f"cannot read: {exc}", path=path) from exc
    return _contract_from_table(table.get("contract", table), path, text, agencies)


def _toml_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    """tomllib says the line only in its message before Python 3.14: '(at line 3, column 9)'."""
    found = re.search(r"at line (\d+)", str(exc))
    return int(found.group(1)) if found else None


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.split("=", 1)[0].strip() == key:
            return number
    return None


def _contract_from_table(
    table: dict[str, Any], path: Path, text: str, agencies: AgencyRegistry
) -> Contract:
    def fail(key: str, message: str, code: str = "CONTRACT_INVALID") -> ContractInvalid:
        return ContractInvalid(message, code=code, path=path, line=_line_of(text, key))

    missing = [key for key in REQUIRED if key not in table]
    if missing:
        raise ContractInvalid(f"missing {', '.join(missing)}", code="CONTRACT_MISSING_FIELD",
                              path=path)
    if table["scope"] not in SCOPES:
        raise fail("scope", f"scope {table['scope']!r} is not one of {sorted(SCOPES)}",
                   "CONTRACT_BAD_SCOPE")
    for key, agency_ids in (("provider", [table["provider"]]), ("consumers", table["consumers"])):
        for agency_id in agency_ids:
            if agency_id not in agencies:
                raise fail(key, f"unknown agency {agency_id!r}", "CONTRACT_UNKNOWN_AGENCY")
    if not table["consumers"]:
        raise fail("consumers", "a contract needs at least one consumer")
    valid_from = _utc(table["valid_from"], fail, "valid_from")
    valid_to = _utc(table["valid_to"], fail, "valid_to") if "valid_to" in table else None
    if valid_to is not None and valid_to <= valid_from:
        raise fail("valid_to", "valid_to is not after valid_from", "CONTRACT_BAD_VALIDITY")
    return Contract(
        id=str(table["id"]),
        version=int(table["version"]),
        provider=str(table["provider"]),
        consumers=tuple(str(c) for c in table["consumers"]),
        document_types=tuple(str(d) for d in table["document_types"]),
        scope=str(table["scope"]),
        purpose=str(table["purpose"]),
        legal_basis=str(table["legal_basis"]),
        valid_from=valid_from,
        valid_to=valid_to,
        source=path,
    )


def _utc(value: object, fail: Any, key: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise fail(key, f"{key} must be a TOML date-time with a UTC offset",
                   "CONTRACT_BAD_VALIDITY")
    return value.astimezone(UTC)
