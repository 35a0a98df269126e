"""Masking rules: how a sensitive field is altered before it leaves under a contract.

A contract lists, per field path, one rule:

* ``"drop"`` — the field is removed from the delivered record, even when its parent
  record is delivered whole (the projection does the removing).
* ``"pseudonym"`` — a keyed HMAC-SM3 of the value's text (UTF-8), as the first 32 hex
  characters: the same value under the same key always gives the same pseudonym, so a
  recipient can link documents about one person without learning who it is; another key
  (another gateway, another rotation) gives unrelated pseudonyms.
* ``{rule = "partial", keep_start = K, keep_end = L}`` — the first K and last L characters
  kept, every one between replaced by ``*`` (``E12345678`` → ``E12****78`` with 3 and 2). A
  value of K + L characters or fewer is starred entirely, so a short value never leaks
  whole.
* ``"year"`` — a date or date-time becomes its year, ``"1987"``.

Null stays null. An array value is masked element by element. A value a rule cannot mask
(a record given to `pseudonym`, a number given to `year`, text that is not an ISO date)
becomes null: masking fails closed and never lets the original through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from contracts.errors import ContractInvalid
from crypto import hmac_sm3

MASK_KINDS = frozenset({"drop", "pseudonym", "partial", "year"})
PSEUDONYM_HEX_CHARS = 32
_PARTIAL_PARAMETERS = ("keep_start", "keep_end")


@dataclass(frozen=True, slots=True)
class MaskRule:
    kind: str
    keep_start: int = 0
    keep_end: int = 0

    def __post_init__(self) -> None:
        if self.kind not in MASK_KINDS:
            raise _bad_mask(f"unknown mask rule {self.kind!r}; use one of {sorted(MASK_KINDS)}")
        for name in _PARTIAL_PARAMETERS:
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise _bad_mask(f"{name} must be a whole number of characters, not {count!r}")
        if self.kind != "partial" and (self.keep_start or self.keep_end):
            raise _bad_mask(f"only the partial rule keeps characters, not {self.kind}")

    @classmethod
    def parse(cls, spec: object, *, path: str) -> MaskRule:
        """A rule from its contract form: a rule name, or a table with `rule` and the
        rule's parameters. `path` is the masked field path, named in error messages."""
        if isinstance(spec, str):
            return cls._from_name(spec, path)
        if isinstance(spec, Mapping):
            return cls._from_table(spec, path)
        raise _bad_mask(f"mask of {path!r} must be a rule name or a table, not {spec!r}")

    @classmethod
    def _from_name(cls, name: str, path: str) -> MaskRule:
        if name == "partial":
            raise _bad_mask(f'mask of {path!r}: partial needs its counts, e.g. {{rule = '
                            f'"partial", keep_start = 3, keep_end = 2}}')
        if name not in MASK_KINDS:
            raise _bad_mask(f"mask of {path!r}: unknown rule {name!r}; use one of "
                            f"{sorted(MASK_KINDS)}")
        return cls(name)

    @classmethod
    def _from_table(cls, table: Mapping[Any, Any], path: str) -> MaskRule:
        name = table.get("rule")
        if not isinstance(name, str) or name not in MASK_KINDS:
            raise _bad_mask(f"mask of {path!r}: 'rule' must be one of {sorted(MASK_KINDS)}, "
                            f"not {name!r}")
        allowed = {"rule", *(_PARTIAL_PARAMETERS if name == "partial" else ())}
        unexpected = sorted(str(key) for key in table if key not in allowed)
        if unexpected:
            raise _bad_mask(f"mask of {path!r}: {name} takes no {', '.join(unexpected)}")
        missing = [key for key in allowed - {"rule"} if key not in table]
        if missing:
            raise _bad_mask(f"mask of {path!r}: {name} needs {', '.join(sorted(missing))}")
        try:
            return cls(name, **{key: table[key] for key in allowed - {"rule"}})
        except ContractInvalid as exc:
            raise _bad_mask(f"mask of {path!r}: {exc.message}") from None

    @property
    def drops(self) -> bool:
        return self.kind == "drop"

    def __str__(self) -> str:
        if self.kind == "partial":
            return f"partial(keep_start={self.keep_start}, keep_end={self.keep_end})"
        return self.kind

    def apply(self, value: Any, key: bytes) -> Any:
        """The masked value. `drop` gives null here; removing the field is the projection's
        job."""
        if value is None or self.kind == "drop":
            return None
        if isinstance(value, list | tuple):
            return [self.apply(item, key) for item in value]
        match self.kind:
            case "pseudonym":
                return pseudonym(value, key)
            case "partial":
                return partial(value, self.keep_start, self.keep_end)
            case "year":
                return year_of(value)
        raise AssertionError(self.kind)


def pseudonym(value: Any, key: bytes) -> str | None:
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    else:
        text = _text_of(value)
        if text is None:
            return None
        data = text.encode("utf-8")
    return hmac_sm3(key, data).hex()[:PSEUDONYM_HEX_CHARS]


def partial(value: Any, keep_start: int, keep_end: int) -> str | None:
    text = _text_of(value)
    if text is None:
        return None
    if len(text) <= keep_start + keep_end:
        return "*" * len(text)
    tail = text[len(text) - keep_end :]
    return text[:keep_start] + "*" * (len(text) - keep_start - keep_end) + tail


def year_of(value: Any) -> str | None:
    if isinstance(value, date):  # datetime is a date too
        return f"{value.year:04d}"
    if isinstance(value, str):
        try:
            return f"{date.fromisoformat(value[:10]).year:04d}"
        except ValueError:
            return None
    return None


def _text_of(value: Any) -> str | None:
    """The text a scalar is masked as; None for what has no single text (records)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return None


def _bad_mask(message: str) -> ContractInvalid:
    return ContractInvalid(message, code="CONTRACT_BAD_MASK")
