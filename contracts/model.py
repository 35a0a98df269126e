"""The sharing contract: who may receive which documents from whom, when, why, which part of
them and how protected; and the router's decision built from contracts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.masking import MaskRule

if TYPE_CHECKING:
    from contracts.projection import Projection

SCOPES = frozenset({"cross-department", "cross-region", "cross-border"})
CONTRACT_KINDS = frozenset({"sharing", "subscription"})
# Status events an agency may subscribe to for the documents it is party to. TRANSPORT: one
# per transport event a transport status report (an IFTSTA) reports (docs/contracts.md).
TRANSPORT_EVENT = "transport"
STATUS_EVENTS = frozenset({"accepted", "rejected", "delivered", "released", TRANSPORT_EVENT})
WHOLE_RECORD = "*"
# Delivery formats besides an adapter's own format id.
AVRO = "avro"
JSON = "json"


@dataclass(frozen=True, slots=True)
class Contract:
    id: str
    version: int
    consumers: tuple[str, ...]
    document_types: tuple[str, ...]
    purpose: str
    legal_basis: str
    valid_from: datetime
    valid_to: datetime | None
    provider: str = ""
    scope: str = ""
    kind: str = "sharing"
    fields: tuple[str, ...] = (WHOLE_RECORD,)
    masks: tuple[tuple[str, MaskRule], ...] = ()
    condition: str | None = None
    max_classification: str = "general"
    delivery_format: str | None = None  # None: each consumer's own preference
    encrypt: bool = False
    export_assessment: str | None = None
    personal_data_basis: str | None = None
    events: tuple[str, ...] = ()
    source: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.id} v{self.version}"

    @property
    def whole_record(self) -> bool:
        return self.fields == (WHOLE_RECORD,) and not self.masks

    def in_force_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    """How one consumer gets one document type under one contract: the projection (None for
    the whole record), the format, the Avro schema of the projected record, encryption."""

    format: str
    projection: Projection | None
    payload_schema: str
    avro_schema: Mapping[str, Any] | None  # plain JSON of a projected record, else None
    encrypt: bool


@dataclass(frozen=True, slots=True)
class Grant:
    """One permitted delivery: this recipient, under this contract, delivered this way."""

    recipient: str
    contract: Contract
    plan: DeliveryPlan | None = None


@dataclass(frozen=True, slots=True)
class Denial:
    """A consumer of a contract on the route that does not get the document, and why."""

    recipient: str
    contract: Contract
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The router's answer for one document: whom it goes to, and why others do not. Agencies
    no contract on the route names are denied by default and not listed."""

    grants: tuple[Grant, ...]
    denials: tuple[Denial, ...] = ()
    no_route: str | None = field(default=None)
    # What the document itself does, said before the routing (e.g. a warning's lifecycle
    # step: who, what, when), so that the trail's one line explains both.
    note: str | None = None

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(grant.recipient for grant in self.grants)

    @property
    def code(self) -> str:
        """The code of a decision that delivers to nobody."""
        if self.no_route is not None or not self.denials:
            return "ROUTE_NO_CONTRACT"
        return self.denials[0].code

    @property
    def explanation(self) -> str:
        if self.no_route is not None:
            routing = self.no_route
        else:
            parts = [f"{g.recipient} under {g.contract.label}" for g in self.grants]
            parts += [f"not {d.recipient}: {d.reason}" for d in self.denials]
            routing = "; ".join(parts) if parts else "no contract in force"
        return routing if self.note is None else f"{self.note}; {routing}"
