"""The sharing contract: who may receive which documents from whom, when and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SCOPES = frozenset({"cross-department", "cross-region", "cross-border"})


@dataclass(frozen=True, slots=True)
class Contract:
    id: str
    version: int
    provider: str
    consumers: tuple[str, ...]
    document_types: tuple[str, ...]
    scope: str
    purpose: str
    legal_basis: str
    valid_from: datetime
    valid_to: datetime | None
    source: Path | None = None

    def in_force_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)


@dataclass(frozen=True, slots=True)
class Grant:
    """One permitted delivery: this recipient, under this contract."""

    recipient: str
    contract: Contract


@dataclass(frozen=True, slots=True)
class Decision:
    """The router's answer for one document: whom it goes to, and why others do not."""

    grants: tuple[Grant, ...]
    explanation: str

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(grant.recipient for grant in self.grants)
