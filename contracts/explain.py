"""What the router would do with one document, for a person: which contracts match, what each
recipient gets and how it is masked, and why every other agency gets nothing. As lines
(`explain`: `portgw contracts explain`) or as one verdict per agency (`verdicts`: the
console)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.index import ContractIndex
from contracts.model import Grant

ROUTE_NO_CONTRACT = "ROUTE_NO_CONTRACT"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one agency gets of the document: a grant, or why not (its code and reason)."""

    recipient: str
    grant: Grant | None = None
    code: str = ""
    reason: str = ""


def verdicts(
    index: ContractIndex, sender: str, document_type: str, record: Mapping[str, Any],
    at: datetime,
) -> list[Verdict]:
    """Every agency but the sender once: the grants first, then the denials of the contracts
    on the route, then the agencies no contract names (denied by default)."""
    decision = index.decide(sender, document_type, record, at)
    found = [Verdict(grant.recipient, grant) for grant in decision.grants]
    explained = {g.recipient for g in decision.grants}
    for denial in decision.denials:
        if denial.recipient not in explained:
            explained.add(denial.recipient)
            found.append(Verdict(denial.recipient, code=denial.code, reason=denial.reason))
    for agency in index.agencies:
        if agency.id not in explained and agency.id != sender:
            found.append(Verdict(agency.id, code=ROUTE_NO_CONTRACT,
                                 reason=f"no contract shares {document_type} from {sender} "
                                        "with it (default deny)"))
    return found


def explain(
    index: ContractIndex, sender: str, document_type: str, record: Mapping[str, Any],
    at: datetime,
) -> list[str]:
    lines = [f"{document_type} from {sender} at {at.isoformat()}"]
    matching = index.routes_from(sender, document_type)
    lines.append("contracts on this route: "
                 + (", ".join(f"{c.label} ({c.scope})" for c in matching) or "none"))
    for verdict in verdicts(index, sender, document_type, record, at):
        if verdict.grant is not None:
            envelope = index.agencies.get(verdict.recipient).envelope_format
            lines.append(f"  DELIVER {verdict.recipient}: {_delivery(verdict.grant, envelope)}")
        else:
            lines.append(f"  DENY    {verdict.recipient}: {verdict.code}: {verdict.reason}")
    return lines


def _delivery(grant: Grant, envelope_format: str) -> str:
    contract, plan = grant.contract, grant.plan
    parts = [f"under {contract.label} ({contract.scope}; purpose: {contract.purpose}; "
             f"legal basis: {contract.legal_basis})"]
    if contract.export_assessment:
        parts.append(f"export assessment {contract.export_assessment}")
    if plan is not None:
        parts.append(f"as {plan.format}")
        parts.append("whole record" if plan.projection is None else plan.projection.describe())
        if plan.encrypt:
            parts.append(f"SM4 envelope ({envelope_format}) to the recipient's key")
    return "; ".join(parts)
