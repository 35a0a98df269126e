"""What the router would do with one document, for a person: which contracts match, what each
recipient gets and how it is masked, and why every other agency gets nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from contracts.index import ContractIndex
from contracts.model import Grant


def explain(
    index: ContractIndex, sender: str, document_type: str, record: Mapping[str, Any],
    at: datetime,
) -> list[str]:
    decision = index.decide(sender, document_type, record, at)
    lines = [f"{document_type} from {sender} at {at.isoformat()}"]
    matching = index.routes_from(sender, document_type)
    lines.append("contracts on this route: "
                 + (", ".join(f"{c.label} ({c.scope})" for c in matching) or "none"))
    for grant in decision.grants:
        envelope = index.agencies.get(grant.recipient).envelope_format
        lines.append(f"  DELIVER {grant.recipient}: {_delivery(grant, envelope)}")
    explained = {g.recipient for g in decision.grants}
    for denial in decision.denials:
        if denial.recipient not in explained:
            explained.add(denial.recipient)
            lines.append(f"  DENY    {denial.recipient}: {denial.code}: {denial.reason}")
    for agency in index.agencies:
        if agency.id not in explained and agency.id != sender:
            lines.append(f"  DENY    {agency.id}: ROUTE_NO_CONTRACT: no contract shares "
                         f"{document_type} from {sender} with it (default deny)")
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
