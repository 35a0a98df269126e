"""Client certificates bound to who holds them: the keyring's `[[client]]` tables.

A TLS client certificate proves only that its holder has the private key of a certificate the
client CA issued. Which agency (or operator, or TLCP proxy) it speaks for is said here, by the
certificate's SHA-256 fingerprint (of its DER bytes), with a validity window and revocation
like a key's. The bindings live in keyring.toml, so they reload with it (SIGHUP, file
change): a binding revoked or removed is refused from the reload on, without waiting for the
CA's revocation list or the certificate's expiry.

    [[client]]
    sha256 = "9f86d08…"          # 64 hex digits; colons allowed
    agency = "cn.port.sh"        # role "agency" (the default): submits and reads as it
    valid_from = 2026-01-01T00:00:00Z

    [[client]]
    sha256 = "…"
    role = "operator"            # reads every submission and /metrics; submits nothing
    name = "ops-on-call"

    [[client]]
    sha256 = "…"
    role = "proxy"               # a TLCP-terminating proxy: passes its client's fingerprint
    name = "tlcp-proxy-1"

The operators' console (gateway/console, on the loopback operators' door where no client
certificate is presented) is entered with a token instead: a binding with `token_sha256`,
the SHA-256 of the token's UTF-8 bytes (the keyring never holds the token itself), for role
operator or auditor (reads the console, changes nothing):

    [[client]]
    token_sha256 = "…"
    role = "auditor"
    name = "audit-office"
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .errors import KeyringError

_FIELDS = frozenset({"sha256", "token_sha256", "agency", "role", "name", "valid_from",
                     "valid_to", "revoked_at"})
_FINGERPRINT = re.compile(r"[0-9a-f]{64}\Z")


class ClientRole(StrEnum):
    AGENCY = "agency"  # submits its agency's documents, reads its own submissions
    OPERATOR = "operator"  # reads every submission and the operator endpoints
    PROXY = "proxy"  # a TLCP-terminating proxy: speaks for the client it names, never itself
    AUDITOR = "auditor"  # reads the operators' console, changes nothing


# What a console token may be bound to: a token never submits nor speaks for another.
TOKEN_ROLES = frozenset({ClientRole.OPERATOR, ClientRole.AUDITOR})


@dataclass(frozen=True, slots=True)
class ClientBinding:
    """One client certificate's holder, usable on [valid_from, valid_to) until revoked.
    `holder` is the agency id for role agency, the operator's or proxy's name otherwise.
    `token`: `sha256` is a console token's digest, not a certificate's fingerprint."""

    sha256: str
    role: ClientRole
    holder: str
    valid_from: datetime
    valid_to: datetime | None = None
    revoked_at: datetime | None = None
    token: bool = False

    def usable_at(self, at: datetime) -> bool:
        return (self.valid_from <= at and (self.valid_to is None or at < self.valid_to)
                and (self.revoked_at is None or at < self.revoked_at))

    @property
    def agency(self) -> str | None:
        return self.holder if self.role is ClientRole.AGENCY else None


def certificate_fingerprint(der: bytes) -> str:
    """The lowercase hex SHA-256 of a certificate's DER bytes (what `sha256` names)."""
    return hashlib.sha256(der).hexdigest()


def token_digest(token: str) -> str:
    """The lowercase hex SHA-256 of a console token's UTF-8 bytes (what `token_sha256`
    names)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normal_fingerprint(text: str) -> str | None:
    """`text` as 64 lowercase hex digits (colons and case dropped); None if it is not one."""
    value = text.replace(":", "").strip().lower()
    return value if _FINGERPRINT.match(value) else None


def index_bindings(bindings: Iterable[ClientBinding]) -> Mapping[str, ClientBinding]:
    by_fingerprint: dict[str, ClientBinding] = {}
    for binding in bindings:
        if binding.sha256 in by_fingerprint:
            raise KeyringError(f"client certificate {binding.sha256} is bound twice")
        by_fingerprint[binding.sha256] = binding
    return MappingProxyType(by_fingerprint)


def binding_from_table(table: Any, dates: Mapping[str, datetime | None],
                       default_from: datetime) -> ClientBinding:
    """One `[[client]]` table, its dates already read (`dates`: valid_from, valid_to,
    revoked_at); ValueError naming the field and the rule."""
    if not isinstance(table, dict):
        raise ValueError("must be a table")
    unknown = set(table) - _FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    token = "token_sha256" in table
    if token == ("sha256" in table):
        raise ValueError("a binding names either 'sha256' (a certificate) or 'token_sha256' "
                         "(a console token), not both nor neither")
    digest_field = "token_sha256" if token else "sha256"
    sha256 = normal_fingerprint(str(table[digest_field]))
    if sha256 is None:
        raise ValueError(f"'{digest_field}' must be a SHA-256 digest (64 hex digits)")
    try:
        role = ClientRole(table.get("role", ClientRole.AGENCY.value))
    except ValueError:
        raise ValueError(f"'role' must be one of {', '.join(r.value for r in ClientRole)}"
                         ) from None
    if token and role not in TOKEN_ROLES:
        raise ValueError("a console token is bound to role operator or auditor")
    holder_field = "agency" if role is ClientRole.AGENCY else "name"
    other_field = "name" if role is ClientRole.AGENCY else "agency"
    holder = table.get(holder_field)
    if not isinstance(holder, str) or not holder or other_field in table:
        raise ValueError(f"role {role.value} names its holder in '{holder_field}' (a "
                         f"non-empty string), not in '{other_field}'")
    valid_from = dates.get("valid_from") or default_from
    valid_to = dates.get("valid_to")
    if valid_to is not None and valid_to <= valid_from:
        raise ValueError("valid_to must be later than valid_from")
    return ClientBinding(sha256, role, holder, valid_from, valid_to, dates.get("revoked_at"),
                         token=token)
