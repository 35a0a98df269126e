"""The keyring: which SM2 public keys speak for which agency, and when."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self

import structlog

from .errors import (
    CryptoError,
    KeyNotValidAt,
    KeyRevoked,
    KeyringError,
    SignatureInvalid,
    UnknownSigner,
)
from .sm2 import DEFAULT_SM2_ID, SM2PublicKey

BEGINNING_OF_TIME = datetime.min.replace(tzinfo=UTC)
AUTH_SIGNATURE_INVALID = "AUTH_SIGNATURE_INVALID"

_ENTRY_FIELDS = frozenset({"agency", "public_key", "valid_from", "valid_to", "revoked_at"})

_log = structlog.get_logger(__name__)


def require_utc(value: datetime, name: str) -> datetime:
    """Return ``value`` in UTC; ValueError for a naive datetime."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key of one agency; valid on [valid_from, valid_to) and until it is revoked."""

    agency_id: str
    public_key: SM2PublicKey
    valid_from: datetime = BEGINNING_OF_TIME
    valid_to: datetime | None = None
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.agency_id:
            raise ValueError("agency_id must not be empty")
        object.__setattr__(self, "valid_from", require_utc(self.valid_from, "valid_from"))
        for name in ("valid_to", "revoked_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, require_utc(value, name))
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be later than valid_from")

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def in_window(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def revoked_by(self, at: datetime) -> bool:
        return self.revoked_at is not None and self.revoked_at <= at

    def usable_at(self, at: datetime) -> bool:
        return self.in_window(at) and not self.revoked_by(at)


class Keyring:
    """An immutable set of key entries, indexed by agency and by key id."""

    __slots__ = ("_by_agency", "_by_key_id", "_entries")

    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self._entries = tuple(entries)
        by_agency: dict[str, list[KeyEntry]] = {}
        by_key_id: dict[str, KeyEntry] = {}
        for entry in self._entries:
            if entry.key_id in by_key_id:
                raise KeyringError(
                    f"key {entry.key_id} is listed twice "
                    f"({by_key_id[entry.key_id].agency_id!r} and {entry.agency_id!r})"
                )
            by_key_id[entry.key_id] = entry
            by_agency.setdefault(entry.agency_id, []).append(entry)
        self._by_key_id: Mapping[str, KeyEntry] = MappingProxyType(by_key_id)
        self._by_agency: Mapping[str, tuple[KeyEntry, ...]] = MappingProxyType(
            {agency: tuple(keys) for agency, keys in by_agency.items()}
        )

    @property
    def entries(self) -> tuple[KeyEntry, ...]:
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[KeyEntry]:
        return iter(self._entries)

    def keys_for(self, agency_id: str) -> tuple[KeyEntry, ...]:
        return self._by_agency.get(agency_id, ())

    def by_key_id(self, key_id: str) -> KeyEntry:
        try:
            return self._by_key_id[key_id]
        except KeyError:
            raise UnknownSigner(f"no key with id {key_id} in the keyring") from None

    def verify(
        self,
        agency_id: str,
        signature: bytes,
        data: bytes,
        *,
        at: datetime,
        user_id: bytes = DEFAULT_SM2_ID,
    ) -> KeyEntry:
        """Return the entry of ``agency_id`` whose key, usable at ``at``, verifies."""
        at = require_utc(at, "at")
        for entry in self._usable_keys(agency_id, at):
            try:
                entry.public_key.verify(signature, data, user_id=user_id)
            except SignatureInvalid:
                continue
            return entry
        _log.debug("keyring_signature_invalid", agency_id=agency_id, at=at.isoformat())
        raise SignatureInvalid(
            f"no key of {agency_id!r} valid at {at.isoformat()} verifies the signature",
            code=AUTH_SIGNATURE_INVALID,
        )

    def current_key(self, agency_id: str, at: datetime) -> KeyEntry:
        """The agency's newest key usable at `at`: the one to encrypt to."""
        return self._usable_keys(agency_id, require_utc(at, "at"))[0]

    def _usable_keys(self, agency_id: str, at: datetime) -> list[KeyEntry]:
        keys = self.keys_for(agency_id)
        if not keys:
            raise UnknownSigner(f"agency {agency_id!r} has no keys in the keyring")
        in_window = [entry for entry in keys if entry.in_window(at)]
        usable = [entry for entry in in_window if not entry.revoked_by(at)]
        if usable:
            # Newest first: during a key rollover the new key is the likely signer.
            return sorted(usable, key=lambda entry: entry.valid_from, reverse=True)
        if in_window:
            raise KeyRevoked(f"every key of {agency_id!r} valid at {at.isoformat()} is revoked")
        raise KeyNotValidAt(f"agency {agency_id!r} has no key valid at {at.isoformat()}")

    @classmethod
    def from_toml(cls, path: Path) -> Self:
        """Load ``[[key]]`` tables; key files are SPKI PEM relative to the TOML's directory."""
        path = Path(path)
        document = _read_toml(path)
        unknown = set(document) - {"key"}
        if unknown:
            raise KeyringError(f"{path}: unknown top-level keys {sorted(unknown)}")
        tables = document.get("key", [])
        if not isinstance(tables, list):
            raise KeyringError(f"{path}: 'key' must be an array of tables ([[key]])")
        entries = [_entry_from_table(path, number, table) for number, table in enumerate(tables, 1)]
        try:
            keyring = cls(entries)
        except KeyringError as exc:
            raise KeyringError(f"{path}: {exc.message}") from exc
        _log.info("keyring_loaded", path=str(path), keys=len(keyring))
        return keyring


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise KeyringError(f"{path}: cannot read keyring file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise KeyringError(f"{path}: not valid TOML: {exc}") from exc


def _entry_from_table(path: Path, number: int, table: object) -> KeyEntry:
    where = f"{path}: [[key]] entry #{number}"
    if not isinstance(table, dict):
        raise KeyringError(f"{where}: must be a table")
    agency = table.get("agency")
    if agency:
        where += f" (agency {agency!r})"
    try:
        unknown = set(table) - _ENTRY_FIELDS
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        if not isinstance(agency, str) or not agency:
            raise ValueError("'agency' must be a non-empty string")
        return KeyEntry(
            agency_id=agency,
            public_key=_load_public_key(path.parent, table.get("public_key")),
            valid_from=_toml_datetime(table, "valid_from") or BEGINNING_OF_TIME,
            valid_to=_toml_datetime(table, "valid_to"),
            revoked_at=_toml_datetime(table, "revoked_at"),
        )
    except (ValueError, TypeError, OSError, CryptoError) as exc:
        raise KeyringError(f"{where}: {_describe(exc)}") from exc


def _load_public_key(base: Path, relative: object) -> SM2PublicKey:
    if not isinstance(relative, str) or not relative:
        raise ValueError("'public_key' must be a path to an SPKI PEM file")
    key_path = base / relative
    try:
        pem = key_path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read public key {key_path}: {exc.strerror or exc}") from exc
    return SM2PublicKey.from_pem(pem)


def _toml_datetime(table: dict[str, Any], name: str) -> datetime | None:
    value = table.get(name)
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"'{name}' must be a TOML offset date-time such as 2026-01-01T00:00:00Z")
    return require_utc(value, name)


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, CryptoError) else str(exc)
