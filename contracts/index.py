"""The routing index: (provider, document type) → contracts. Default deny."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from contracts.model import Contract, Decision, Grant


class ContractIndex:
    __slots__ = ("_by_route", "contracts")

    def __init__(self, contracts: Iterable[Contract]) -> None:
        self.contracts = tuple(contracts)
        by_route: defaultdict[tuple[str, str], list[Contract]] = defaultdict(list)
        for contract in self.contracts:
            for document_type in contract.document_types:
                by_route[(contract.provider, document_type)].append(contract)
        self._by_route = {route: tuple(found) for route, found in by_route.items()}

    def decide(self, sender: str, document_type: str, at: datetime) -> Decision:
        """Whom a document of this sender and type may go to at time `at`.

        Every consumer of every contract in force gets a grant (the first contract naming it
        wins, in file order); nobody else gets anything.
        """
        candidates = self._by_route.get((sender, document_type), ())
        if not candidates:
            return Decision((), f"no contract shares {document_type} from {sender}")
        in_force = [c for c in candidates if c.in_force_at(at)]
        if not in_force:
            names = ", ".join(f"{c.id} v{c.version}" for c in candidates)
            return Decision((), f"no contract in force at {at.isoformat()} ({names} are not)")
        grants: dict[str, Grant] = {}
        for contract in in_force:
            for consumer in contract.consumers:
                grants.setdefault(consumer, Grant(consumer, contract))
        contract_names = ", ".join(f"{c.id} v{c.version}" for c in in_force)
        return Decision(tuple(grants.values()), f"shared under {contract_names}")
