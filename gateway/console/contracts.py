"""The contracts as the console shows them: those in force (the router's index, as a reload
last swapped it in), the lint report of the contract directory as it is on disk now, and
"explain" for a pasted document, parsed as the gateway parses one (its parse worker: format
detected from the content, the safe XML parser, under the parse budget) and decided by the
router in force, as `portgw contracts explain` does. What a recipient would get is named by
field and mask, never by value."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters import AdapterRegistry
from contracts import AgencyRegistry, LintReport, Verdict, lint_contract_dir, verdicts
from gateway.decide.ahead import Ahead
from gateway.decide.pipeline import Refusal, Submission
from gateway.decide.router import Router, contracts_fingerprint, document_catalog, format_table
from gateway.home.config import AgencyLimits
from message_formats import AvroSchemas

CONSOLE_SENDER_UNKNOWN = "CONSOLE_SENDER_UNKNOWN"
DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
DOCUMENT_EMPTY = "DOCUMENT_EMPTY"
FORMAT_UNKNOWN = "FORMAT_UNKNOWN"
EXPLAIN_ID = "console-explain"


@dataclass(frozen=True, slots=True)
class ContractSources:
    """What the contracts page reads: the gateway's router, adapters and parse worker."""

    router: Router
    contracts_dir: Path
    adapters: AdapterRegistry
    schemas: AvroSchemas
    agencies: AgencyRegistry
    # The gateway's parse worker (gateway.decide.ahead.CheckAhead.parse).
    parse: Callable[[Submission], Awaitable[Ahead]]
    limits_for: Callable[[str], AgencyLimits]


@dataclass(frozen=True, slots=True)
class Explained:
    """A pasted document: its format and type as read, and each agency's verdict; or why it
    could not be read (`refusal`)."""

    format_id: str = ""
    document_type: str = ""
    business_key: str = ""
    verdicts: tuple[Verdict, ...] = ()
    refusal: Refusal | None = None


def lint_report(sources: ContractSources) -> LintReport:
    """What `portgw contracts lint` says of the contract directory now."""
    adapters = sources.adapters
    return lint_contract_dir(sources.contracts_dir, sources.agencies,
                             document_catalog(adapters, sources.schemas),
                             format_table(adapters))


class LintCache:
    """The lint report of the directory as its files were when it was made: made again only
    when a file changed (name, size, modification time), and in a thread, so that linting a
    large directory (400 contracts: ~140 ms) does not hold the event loop."""

    __slots__ = ("_kept", "_sources")

    def __init__(self, sources: ContractSources) -> None:
        self._sources = sources
        self._kept: tuple[object, LintReport] | None = None

    async def report(self) -> LintReport:
        fingerprint = contracts_fingerprint(self._sources.contracts_dir)
        if self._kept is None or self._kept[0] != fingerprint:
            self._kept = (fingerprint, await asyncio.to_thread(lint_report, self._sources))
        return self._kept[1]


async def explain_document(sources: ContractSources, sender: str, document: bytes,
                           at: datetime) -> Explained:
    """The document read by the parse worker (its format found from its content first),
    then decided by the contracts in force at `at`."""
    if sender not in sources.agencies:
        return Explained(refusal=Refusal(CONSOLE_SENDER_UNKNOWN,
                                         "the sender is not a registered agency"))
    limit = sources.limits_for(sender).max_document_bytes
    if len(document) > limit:
        return Explained(refusal=Refusal(DOCUMENT_TOO_LARGE, f"document is {len(document)} "
                                         f"bytes; the limit is {limit}"))
    if not document:
        return Explained(refusal=Refusal(DOCUMENT_EMPTY, "document is empty"))
    submission = Submission(EXPLAIN_ID, sender, "", document, b"", at)
    detected = await sources.parse(submission)
    if detected.refused is not None or not detected.format_id:
        return Explained(refusal=detected.refused or Refusal(
            FORMAT_UNKNOWN, "the document's format was not found"))
    format_id = detected.format_id
    found = await sources.parse(Submission(EXPLAIN_ID, sender, format_id, document, b"", at))
    if found.parsed is None:
        return Explained(format_id, refusal=found.refused or Refusal(
            FORMAT_UNKNOWN, f"the document was not read as {format_id}"))
    document_type = sources.adapters.get(format_id).document_type
    return Explained(format_id, document_type, found.parsed.business_key,
                     tuple(verdicts(sources.router.index, sender, document_type,
                                    found.parsed.record, at)))
