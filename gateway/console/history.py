"""The bodies of the document history (单证追溯) and trail pages, from what the trail index
(trail.py) and the jobs (jobs.py) hold: decisions, contracts, field names and mask rules,
never a document's values.

The fields a recipient got are its contract's projection and masks, named by field: the trail
names the contract and its version, and the contracts in force hold what that version
delivers (an older version no longer loaded is said to be so, not guessed at)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from string import Template

from contracts import Contract
from contracts.model import WHOLE_RECORD
from gateway.console.jobs import Job
from gateway.console.markup import Markup, escape, fill, join
from gateway.console.trail import ChainState, Decision
from gateway.console.words import WORDS, Words
from gateway.trail.progress import Progress
from gateway.trail.taken import TAKEN

DELIVERED_KINDS = frozenset({"DELIVERED", "REDELIVERED"})
NOTHING = Markup("")

_TABLE = Template('<table class="letters" id="$id"><caption>$caption</caption><thead><tr>$head'
                  '</tr></thead><tbody>$body</tbody></table>')
_TH = Template('<th scope="col">$text</th>')
_TD = Template('<td>$text</td>')
_ROW = Template('<tr data-kind="$kind" data-recipient="$recipient">$cells</tr>')
_CHAIN_ROW = Template('<tr data-chain="$chain" data-verified="$verified">$cells</tr>')
_VERSION = Template('<section aria-labelledby="v-$n"><h2 id="v-$n">$title</h2>$table</section>')
_PRE = Template('<pre id="$id">$text</pre>')
_P = Template('<p id="$id" class="$cls" role="status">$text</p>')
_BUNDLE = Template('<a href="/console/jobs/$number/bundle" id="bundle">$text</a>')
_PROGRESS_BAR = Template('<progress id="verify-progress" max="$chains" value="$done" '
                         'aria-labelledby="verify-state">$done / $chains</progress>')

Contracts = Mapping[tuple[str, int], Contract]


def history_body(templates: Mapping[str, Template], words: Words, key: str,
                 decisions: Sequence[Decision], contracts: Contracts, export: Job | None, *,
                 busy: bool, form_token: str, follow: Markup = NOTHING) -> Markup:
    """`follow`: while a job runs, what says the page refreshes itself (app.py)."""
    versions = _versions(decisions)
    total = (words("history_total", versions=len(versions), records=len(decisions))
             if decisions else words("history_none"))
    return fill(templates["history"], total=total, form_token=form_token, key=key,
                disabled=Markup(" disabled") if busy or not decisions else "",
                export=words("export"), follow=follow,
                export_state=_export_state(words, key, export, busy=busy),
                recipients_h=words("recipients_h"), fields_note=words("fields_note"),
                recipients=_recipients(words, versions, contracts),
                versions=join(_version(words, n, records)
                              for n, records in enumerate(versions.values(), start=1)))


def trail_body(templates: Mapping[str, Template], words: Words, chains: Sequence[ChainState],
               verification: Job | None, *, busy: bool, form_token: str,
               follow: Markup = NOTHING) -> Markup:
    broken = verification.broken_chains() if verification is not None else frozenset()
    heads = ("chain", "records", "last_seq", "seals", "sealed_to", "last_seal_at",
             "checkpoint", "last_verified")
    rows = []
    for state in chains:
        verified = _chain_verified(words, state.chain, verification, broken)
        cells = (state.chain, state.records, _or_dash(state.last_seq if state.records else None),
                 state.seals, _or_dash(state.sealed_to), _or_dash(state.last_seal_at),
                 (words("checkpoint_of", seal=state.checkpoint_seal, seq=state.checkpoint_to,
                        at=state.checkpoint_at) if state.checkpoint_seal is not None else "–"),
                 verified[1])
        rows.append(fill(_CHAIN_ROW, chain=state.chain, verified=verified[0],
                         cells=join(fill(_TD, text=cell) for cell in cells)))
    chains_table = (fill(_TABLE, id="chains", caption=words("chains_h"),
                         head=join(fill(_TH, text=words(h)) for h in heads), body=join(rows))
                    if rows else fill(_P, id="no-chains", cls="note", text=words("no_chains")))
    return fill(templates["trail"], form_token=form_token,
                disabled=Markup(" disabled") if busy else "", verify=words("verify_now"),
                refresh=words("refresh"), follow=follow,
                verification_h=words("verification_h"),
                verification=_verification(words, verification),
                chains_h=words("chains_h"), chains_note=words("chains_note"),
                chains=chains_table)


def _versions(decisions: Sequence[Decision]) -> dict[str, list[Decision]]:
    """The records by event id (one submission each), in the order of their first record."""
    versions: dict[str, list[Decision]] = {}
    for decision in decisions:
        versions.setdefault(decision.event_id, []).append(decision)
    return versions


def _version(words: Words, n: int, records: Sequence[Decision]) -> Markup:
    first = records[0]
    version = next((r.document_version for r in records if r.document_version is not None),
                   None)
    title = words("version_title", version="?" if version is None else version,
                  sender=first.sender, submission=first.submission_id, format=first.format_id)
    heads = ("decided_at", "decision", "recipient", "contract", "code", "reason", "record")
    body = join(fill(_ROW, kind=r.kind, recipient=r.recipient or "", cells=join(
        fill(_TD, text=cell) for cell in (r.time, _kind(words, r.kind), r.recipient or "–",
                                          _contract_label(r), r.error_code or "", r.reason,
                                          r.name)))
        for r in records)
    return fill(_VERSION, n=n, title=title, table=fill(
        _TABLE, id=f"timeline-{n}", caption=words("timeline"),
        head=join(fill(_TH, text=words(h)) for h in heads), body=body))


def _recipients(words: Words, versions: Mapping[str, Sequence[Decision]],
                contracts: Contracts) -> Markup:
    """One row per recipient of each version: its decision, contract, the fields it got
    and their masks (by name), when delivered and when it acknowledged."""
    rows = []
    for records in versions.values():
        taken = {r.recipient: r.time for r in records if r.kind == TAKEN}
        for r in records:
            if r.recipient is None or r.kind == TAKEN:
                continue
            contract = (contracts.get((r.contract_id, r.contract_version))
                        if r.contract_id is not None and r.contract_version is not None
                        else None)
            delivered = r.kind in DELIVERED_KINDS
            fields, masks = (_fields(words, r, contract) if delivered else ("–", "–"))
            cells = (r.recipient, _kind(words, r.kind), _contract_label(r), fields, masks,
                     r.time, taken.get(r.recipient, words("not_taken")) if delivered else "–")
            rows.append(fill(_ROW, kind=r.kind, recipient=r.recipient,
                             cells=join(fill(_TD, text=cell) for cell in cells)))
    if not rows:
        return fill(_P, id="no-recipients", cls="note", text=words("no_recipients"))
    heads = ("recipient", "decision", "contract", "fields", "masks", "decided_at", "taken_at")
    return fill(_TABLE, id="recipients", caption=words("recipients_h"),
                head=join(fill(_TH, text=words(h)) for h in heads), body=join(rows))


def _fields(words: Words, decision: Decision, contract: Contract | None) -> tuple[str, str]:
    if contract is None:
        return (words("contract_gone"), "–") if decision.contract_id else ("–", "–")
    fields = (words("whole_record") if contract.fields == (WHOLE_RECORD,)
              else ", ".join(contract.fields))
    masks = ", ".join(f"{field} ({rule.kind})" for field, rule in contract.masks)
    return fields, masks or words("no_masks")


def _export_state(words: Words, key: str, job: Job | None, *, busy: bool) -> Markup | str:
    if job is None or job.subject != key:
        return words("job_busy") if busy else ""
    if job.running:
        return fill(_P, id="export-state", cls="note",
                    text=words("job_running", by=job.by, at=job.started_at))
    if job.ok:
        return fill(_BUNDLE, number=job.number,
                    text=words("bundle_ready", at=job.finished_at or ""))
    return join([fill(_P, id="export-state", cls="problem",
                      text=words("job_failed", code=job.exit_code)),
                 fill(_PRE, id="export-output", text=job.output)])


def _verification(words: Words, job: Job | None) -> Markup:
    if job is None:
        return fill(_P, id="verify-state", cls="note", text=words("never_verified"))
    if job.running:
        return _verifying(words, job, job.progress)
    state = words("verify_ok" if job.ok else "verify_broken", by=job.by, at=job.finished_at,
                  code=job.exit_code)
    return join([Markup(f'<p id="verify-state" class="{"done" if job.ok else "problem"}" '
                        f'role="status" data-ok="{str(job.ok).lower()}">{escape(state)}</p>'),
                 fill(_PRE, id="verify-output", text=job.output)])


def _verifying(words: Words, job: Job, progress: Progress | None) -> Markup:
    """A running verification: how far it has got, as the command last reported."""
    at, by = job.started_at, job.by
    if progress is None:
        text = words("job_running", by=by, at=at)
    elif progress.phase == "read":
        text = words("verify_reading", by=by, at=at, read=progress.read)
    elif progress.phase == "chains":
        text = words("verify_checking", by=by, at=at, verified=progress.verified,
                     done=progress.chains_done, chains=progress.chains)
    else:
        text = words("verify_references", by=by, at=at, verified=progress.verified,
                     chains=progress.chains)
    state = fill(_P, id="verify-state", cls="note", text=text)
    if progress is None or not progress.chains:
        return state
    return join([state, fill(_PROGRESS_BAR, chains=progress.chains,
                             done=progress.chains_done)])


def _chain_verified(words: Words, chain: str, job: Job | None, broken: frozenset[str]
                    ) -> tuple[str, str]:
    """(data value, text): how the last finished verification found the chain."""
    if job is None or job.running:
        return "", "–"
    if chain in broken:
        return "broken", words("chain_broken", at=job.finished_at)
    if not job.ok and not broken:
        return "unknown", words("chain_unknown", at=job.finished_at)
    return "ok", words("chain_ok", at=job.finished_at)


def _kind(words: Words, kind: str) -> str:
    """The decision in words; a kind the catalogue does not know, as the trail says it."""
    key = f"kind_{kind.lower()}"
    return words(key) if key in WORDS else kind


def _contract_label(decision: Decision) -> str:
    if decision.contract_id is None:
        return "–"
    if decision.contract_version is None:
        return decision.contract_id
    return f"{decision.contract_id} v{decision.contract_version}"


def _or_dash(value: object) -> object:
    return "–" if value is None else value

