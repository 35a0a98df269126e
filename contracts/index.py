"""The router's index: contracts compiled once, looked up by (provider, document type).

A routing decision is one dictionary lookup, then a binary search of the route's timeline
for the contracts in force, then each distinct condition of those contracts evaluated once.
Those answers (which contracts are in force, which conditions hold) settle the decision, so
it is built once per combination and handed out again: `Decision` and all it holds are
immutable. Everything a decision holds (grants, denials with their reasons) is built here,
ahead of time. Default deny: an agency no contract names gets nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.agencies import AgencyRegistry
from contracts.catalog import DocumentCatalog, DocumentInfo
from contracts.expr import Predicate, compile_condition
from contracts.model import (
    AVRO,
    JSON,
    WHOLE_RECORD,
    Contract,
    Decision,
    DeliveryPlan,
    Denial,
    Grant,
)
from contracts.projection import compile_projection, projected_avro_schema

# The header (event id, sender, business key, digest) travels with every delivery: it names
# the document and carries nothing personal.
HEADER = "header"


def delivered_fields(contract: Contract, document: DocumentInfo) -> list[str]:
    """The include list of the contract's projection for one document type."""
    if contract.fields == (WHOLE_RECORD,):
        return list(document.top_fields)
    return [HEADER, *(path for path in contract.fields if path != HEADER)]


def projected_schema_name(contract: Contract, document: DocumentInfo) -> str:
    safe_id = contract.id.replace(".", "_").replace("-", "_")
    record = document.schema_name.rpartition(".")[2]
    return f"px.projected.{safe_id}.v{contract.version}.{record}"


@dataclass(frozen=True, slots=True)
class _RouteEntry:
    contract: Contract
    valid_from: datetime
    valid_to: datetime | None
    condition: Predicate | None
    grants: tuple[Grant, ...]
    not_in_force: tuple[Denial, ...]
    condition_false: tuple[Denial, ...]


# Decisions kept per route, across its time slots, for the combinations of condition results
# met so far; beyond this, further combinations are built for each document, not kept.
MAX_KEPT_PER_ROUTE = 64


class _Route:
    """One route's contracts along time. `bounds` are the instants at which some contract
    starts or stops being in force, in order; slot i holds between bounds[i-1] (included)
    and bounds[i] (excluded), slot 0 before the first, the last after the last bound.
    Deciding reads a slot as the tuple (tests, kept, slot): `tests` pairs each distinct
    condition of the contracts in force with its bit, `kept` maps the condition results
    met so far (a bit mask) to their decision."""

    __slots__ = ("bounds", "entries", "kept", "slots")

    def __init__(self, entries: tuple[_RouteEntry, ...]) -> None:
        self.entries = entries
        self.kept = 0
        instants = {e.valid_from for e in entries}
        instants.update(e.valid_to for e in entries if e.valid_to is not None)
        self.bounds = tuple(sorted(instants))
        self.slots = tuple(
            _Slot(self, None if i == 0 else self.bounds[i - 1]).reading()
            for i in range(len(self.bounds) + 1)
        )


class _Slot:
    """The contracts of a route in force from one instant to the next bound (none before
    the first bound), and the decisions built for them so far."""

    __slots__ = ("bits", "in_force", "kept", "route", "tests")

    def __init__(self, route: _Route, start: datetime | None) -> None:
        self.route = route
        self.in_force = tuple(
            start is not None and e.valid_from <= start
            and (e.valid_to is None or start < e.valid_to)
            for e in route.entries
        )
        # One bit per distinct condition (by its text: the same text gives the same
        # answer for a record whichever document type it was compiled against).
        bit_of: dict[str, int] = {}
        tests: list[tuple[int, Predicate]] = []
        self.bits = tuple(
            _bit(bit_of, tests, entry) if in_force and entry.condition is not None else 0
            for entry, in_force in zip(route.entries, self.in_force, strict=True)
        )
        self.tests = tuple(tests)
        self.kept: dict[int, Decision] = {}

    def reading(self) -> tuple[tuple[tuple[int, Predicate], ...], dict[int, Decision], _Slot]:
        return self.tests, self.kept, self

    def decide(self, holds: int) -> Decision:
        """The decision when the conditions whose bits are set in `holds` hold and the
        others do not: for each contract on the route, in order, its grants or its
        consumers' denials; a consumer granted by one contract is not listed as denied."""
        grants: dict[str, Grant] = {}
        denials: list[Denial] = []
        for entry, in_force, bit in zip(self.route.entries, self.in_force, self.bits,
                                        strict=True):
            if not in_force:
                denials += entry.not_in_force
            elif bit and not holds & bit:
                denials += entry.condition_false
            else:
                for grant in entry.grants:
                    grants.setdefault(grant.recipient, grant)
        if grants and denials:
            denials = [d for d in denials if d.recipient not in grants]
        decision = Decision(tuple(grants.values()), tuple(denials))
        route = self.route
        if route.kept < MAX_KEPT_PER_ROUTE:
            route.kept += 1
            self.kept[holds] = decision
        return decision


def _bit(bit_of: dict[str, int], tests: list[tuple[int, Predicate]],
         entry: _RouteEntry) -> int:
    text = entry.contract.condition
    assert text is not None and entry.condition is not None
    if text not in bit_of:
        bit_of[text] = 1 << len(tests)
        tests.append((bit_of[text], entry.condition))
    return bit_of[text]


class ContractIndex:
    __slots__ = ("_routes", "_subscriptions", "_timelines", "agencies", "contracts")

    def __init__(
        self,
        contracts: Iterable[Contract],
        agencies: AgencyRegistry,
        catalog: DocumentCatalog,
        *,
        mask_key: bytes,
    ) -> None:
        self.contracts = tuple(contracts)
        self.agencies = agencies
        routes: dict[tuple[str, str], list[_RouteEntry]] = {}
        subscriptions: dict[str, list[Contract]] = {}
        for contract in self.contracts:
            for document_type in contract.document_types:
                if contract.kind == "subscription":
                    subscriptions.setdefault(document_type, []).append(contract)
                    continue
                entry = _compile(contract, catalog[document_type], agencies, mask_key)
                routes.setdefault((contract.provider, document_type), []).append(entry)
        self._routes = {route: tuple(entries) for route, entries in routes.items()}
        self._timelines = {
            route: (timeline.bounds, timeline.slots)
            for route, timeline in ((r, _Route(e)) for r, e in self._routes.items())
        }
        self._subscriptions = {t: tuple(found) for t, found in subscriptions.items()}

    def decide(
        self, sender: str, document_type: str, record: Mapping[str, Any], at: datetime
    ) -> Decision:
        """Whom a document of this sender, type and content may go to at time `at`. When two
        contracts grant the same consumer, the first (in file name order) wins."""
        timeline = self._timelines.get((sender, document_type))
        if timeline is None:
            return Decision((), (), f"no contract shares {document_type} from {sender}")
        bounds, slots = timeline
        tests, kept, slot = slots[bisect_right(bounds, at)]
        holds = 0
        for bit, test in tests:
            if test(record):
                holds |= bit
        decision = kept.get(holds)
        return slot.decide(holds) if decision is None else decision

    def subscribers(
        self, document_type: str, event: str, parties: Iterable[str], at: datetime
    ) -> tuple[tuple[str, Contract], ...]:
        """(agency, subscription) for each party to a document subscribed, at `at`, to this
        status event of this document type; each agency once."""
        found: dict[str, Contract] = {}
        wanted = set(parties)
        for contract in self._subscriptions.get(document_type, ()):
            if event in contract.events and contract.in_force_at(at):
                for agency in contract.consumers:
                    if agency in wanted:
                        found.setdefault(agency, contract)
        return tuple(found.items())

    def plans(self) -> Iterator[DeliveryPlan]:
        """Every delivery plan of every route, each once."""
        seen: set[int] = set()
        for entries in self._routes.values():
            for entry in entries:
                for grant in entry.grants:
                    if grant.plan is not None and id(grant.plan) not in seen:
                        seen.add(id(grant.plan))
                        yield grant.plan

    def routes_from(self, sender: str, document_type: str) -> tuple[Contract, ...]:
        return tuple(e.contract for e in self._routes.get((sender, document_type), ()))


def _compile(
    contract: Contract, document: DocumentInfo, agencies: AgencyRegistry, mask_key: bytes
) -> _RouteEntry:
    condition = (
        compile_condition(contract.condition, known_paths=document.field_paths).evaluate
        if contract.condition is not None else None
    )
    plans: dict[str, DeliveryPlan] = {}
    grants = []
    for consumer in contract.consumers:
        agency = agencies.get(consumer)
        wanted = contract.delivery_format or agency.delivery_format
        if wanted not in plans:
            plans[wanted] = _plan(contract, document, wanted, mask_key)
        grants.append(Grant(consumer, contract, plans[wanted]))
    window = (f"valid from {contract.valid_from.isoformat()}"
              + (f" to {contract.valid_to.isoformat()}" if contract.valid_to else ""))
    return _RouteEntry(
        contract=contract,
        valid_from=contract.valid_from,
        valid_to=contract.valid_to,
        condition=condition,
        grants=tuple(grants),
        not_in_force=tuple(
            Denial(c, contract, "ROUTE_NOT_IN_FORCE",
                   f"{contract.label} is not in force ({window})")
            for c in contract.consumers
        ),
        condition_false=tuple(
            Denial(c, contract, "ROUTE_CONDITION_FALSE",
                   f"the condition of {contract.label} does not hold: {contract.condition}")
            for c in contract.consumers
        ),
    )


def _plan(contract: Contract, document: DocumentInfo, wanted: str, mask_key: bytes) -> DeliveryPlan:
    if wanted not in (AVRO, JSON):  # an adapter's own format: the whole document, rendered
        return DeliveryPlan(format=wanted, projection=None, payload_schema=wanted,
                            avro_schema=None, encrypt=contract.encrypt)
    if contract.whole_record:
        return DeliveryPlan(format=wanted, projection=None, payload_schema=document.schema_name,
                            avro_schema=None, encrypt=contract.encrypt)
    projection = compile_projection(delivered_fields(contract, document), dict(contract.masks),
                                    key=mask_key)
    name = projected_schema_name(contract, document)
    return DeliveryPlan(
        format=wanted,
        projection=projection,
        payload_schema=name,
        avro_schema=projected_avro_schema(document.schema, projection, name=name),
        encrypt=contract.encrypt,
    )
