"""The lifecycle of a port safety early warning (口岸检验检疫安全事件预警), as a pure check.

Every step of a warning is a submission of the warning document (`warning-xml`) carrying the
step it performs: who (a named person, their post and organisation), what, and when. The
gateway accepts a step only when it follows the warning's recorded steps:

    draft ─► content review ─► category review ─► level review ─► re-review ─► published
      ▲            │                 │                  │               │          │
      └─ (draft again) ◄──────── returned ◄────────────────────────────┘      level changed
                                                                                   │
    the terror-relevance check: any time before release;                        released
    publication needs it and all four reviews                                       │
                                                                                  filed

Reviews, the check, publication and a return carry the content as drafted (a change needs a
return and a new draft); a level changes only by a level change; the category never changes
after publication. A reviewer is not the person who drafted the warning. Releasing belongs to
the authority that owns the warning's current level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.errors import GatewayError

DOCUMENT_TYPE = "warning"

DRAFT = "DRAFT"
CONTENT_REVIEW = "CONTENT_REVIEW"
CATEGORY_REVIEW = "CATEGORY_REVIEW"
LEVEL_REVIEW = "LEVEL_REVIEW"
RE_REVIEW = "RE_REVIEW"
TERROR_CHECK = "TERROR_CHECK"
PUBLISH = "PUBLISH"
RETURN = "RETURN"
CHANGE_LEVEL = "CHANGE_LEVEL"
RELEASE = "RELEASE"
FILE = "FILE"

# Statuses: where a warning stands after its last step.
DRAFTED = "DRAFTED"
RETURNED = "RETURNED"
PUBLISHED = "PUBLISHED"
RELEASED = "RELEASED"
FILED = "FILED"

REVIEWS = (CONTENT_REVIEW, CATEGORY_REVIEW, LEVEL_REVIEW, RE_REVIEW)
# Steps that stay inside the issuing authority (see is_internal).
INTERNAL_STEPS = frozenset({DRAFT, *REVIEWS, RETURN})
NOT_EXCLUDED = "NOT_EXCLUDED"
# The parts of the record that are not the warning's content (the offset its times were
# written in is how, not what).
_NOT_CONTENT = frozenset({"header", "step", "history", "utc_offset_minutes"})


class LifecycleError(GatewayError):
    code = "WARNING_TRANSITION_INVALID"


@dataclass(frozen=True, slots=True)
class RecordedStep:
    """One accepted step: the event that carried it, who submitted it, the record."""

    event_id: str
    sender: str
    record: Mapping[str, Any]

    @property
    def step(self) -> Mapping[str, Any]:
        step: Mapping[str, Any] = self.record["step"]
        return step

    @property
    def action(self) -> str:
        return str(self.record["step"]["action"])


@dataclass(frozen=True, slots=True)
class WarningState:
    """Where a warning stands, folded from its recorded steps."""

    warning_id: str
    issuer: str  # the agency that drafted it
    status: str
    reviews: tuple[str, ...]  # the reviews passed since the last draft, in order
    terror_checked: bool
    drafter: tuple[str, str]  # (name, organisation) of the person who drafted it
    draft: Mapping[str, Any]  # the content as last drafted
    current: Mapping[str, Any]  # the content as it stands (level changes included)
    last_at: datetime

    @property
    def level(self) -> str:
        return str(self.current["level"])


@dataclass(frozen=True, slots=True)
class Authorities:
    """Who may act on warnings: the agency owning each level (releases belong to it; a level
    with no owner is owned by the warning's issuer), and the names an agency may sign as
    issuing authority."""

    level_owners: Mapping[str, str]
    names_of: Callable[[str], frozenset[str]]

    def owner(self, level: str, issuer: str) -> str:
        return self.level_owners.get(level, issuer)


def content_of(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _NOT_CONTENT}


def fold(steps: Sequence[RecordedStep]) -> WarningState | None:
    """The state after the given steps, which were checked when they were accepted."""
    state: WarningState | None = None
    for recorded in steps:
        state = _after(state, recorded)
    return state


def check(steps: Sequence[RecordedStep], sender: str, record: Mapping[str, Any],
          authorities: Authorities) -> None:
    """Raises LifecycleError (with its WARNING_* code) when `record`'s step may not follow
    `steps` (the warning's accepted steps, oldest first) or `sender` may not take it."""
    state = fold(steps)
    step = record["step"]
    action = str(step["action"])
    if state is None:
        _check_first(sender, record, action, authorities)
        return
    _check_time(state, step)
    _check_sender(state, sender, record, action, authorities)
    _check_order(state, action)
    _check_content(state, record, action)
    if action in REVIEWS:
        actor = (step["actor"]["name"], step["actor"]["organisation"])
        if actor == state.drafter:
            raise LifecycleError(
                f"{_label(action)} of warning {state.warning_id} by {actor[0]}, who drafted "
                "it: a reviewer is another person", code="WARNING_SELF_REVIEW")
    if action == PUBLISH:
        _check_reviews_done(state)
    if action == CHANGE_LEVEL and record["level"] == state.level:
        raise LifecycleError(f"warning {state.warning_id} is already at level {state.level}",
                             code="WARNING_LEVEL_UNCHANGED")
    submitted = record.get("history") or []
    if submitted and list(submitted) != [s.step for s in steps]:
        raise LifecycleError(
            f"the history of warning {state.warning_id} in the document differs from the "
            f"{len(steps)} steps the gateway recorded", code="WARNING_HISTORY_MISMATCH")


def history_for(steps: Sequence[RecordedStep], record: Mapping[str, Any]) -> list[Any]:
    """What the canonical record's history holds: for a filing, every step recorded before
    it (every person and time involved); otherwise what the document carried (checked)."""
    if record["step"]["action"] == FILE:
        return [s.step for s in steps]
    return list(record.get("history") or [])


def is_internal(step: Mapping[str, Any]) -> bool:
    """A step that stays inside the issuing authority (shared with no one is fine): a draft,
    a review, a return, or a terror-relevance check that excluded terror. A check that could
    not exclude it must reach public security at once."""
    if step["action"] == TERROR_CHECK:
        return step.get("terror_relevance") != NOT_EXCLUDED
    return step["action"] in INTERNAL_STEPS


def describe_step(record: Mapping[str, Any]) -> str:
    """One line for the trail naming the step, the person and the time."""
    step = record["step"]
    actor = step["actor"]
    at = step["at"]
    when = at.strftime("%Y-%m-%d %H:%M UTC") if isinstance(at, datetime) else str(at)
    text = (f"warning {record['warning_id']} level {record['level']}: {_label(step['action'])} "
            f"by {actor['name']} ({actor['position']}, {actor['organisation']}) at {when}")
    if step.get("terror_relevance"):
        text += f"; terror relevance {step['terror_relevance'].lower().replace('_', ' ')}"
    if step.get("filed_to"):
        text += f"; filed to {step['filed_to']}"
    return text


# ------------------------------------------------------------------------------- checks


def _check_first(sender: str, record: Mapping[str, Any], action: str,
                 authorities: Authorities) -> None:
    if action != DRAFT:
        raise LifecycleError(
            f"warning {record['warning_id']} is unknown: its first step is a draft, "
            f"not {_label(action)}", code="WARNING_UNKNOWN")
    names = authorities.names_of(sender)
    if record["issuing_authority"] not in names:
        raise LifecycleError(
            f"the issuing authority {record['issuing_authority']!r} is not the sender "
            f"{sender} (registered as {' / '.join(sorted(names)) or 'nothing'})",
            code="WARNING_ISSUER_MISMATCH")


def _check_time(state: WarningState, step: Mapping[str, Any]) -> None:
    if step["at"] < state.last_at:
        raise LifecycleError(
            f"{_label(step['action'])} at {step['at']:%Y-%m-%d %H:%M} UTC is before the "
            f"warning's last step ({state.last_at:%Y-%m-%d %H:%M} UTC)",
            code="WARNING_STEP_TIME_ORDER")


def _check_sender(state: WarningState, sender: str, record: Mapping[str, Any], action: str,
                  authorities: Authorities) -> None:
    current_owner = authorities.owner(state.level, state.issuer)
    if action == RELEASE:
        if sender != current_owner:
            raise LifecycleError(
                f"warning {state.warning_id} is at level {state.level}, owned by "
                f"{current_owner}: only it releases the warning, not {sender}",
                code="WARNING_RELEASE_NOT_OWNER")
        return
    allowed = {state.issuer, current_owner}
    if action == CHANGE_LEVEL:
        allowed.add(authorities.owner(str(record["level"]), state.issuer))
    if sender not in allowed:
        raise LifecycleError(
            f"{sender} may not take steps on warning {state.warning_id} (issued by "
            f"{state.issuer}; level {state.level} owned by {current_owner})",
            code="WARNING_SENDER_NOT_AUTHORISED")


_ALLOWED_FROM: Mapping[str, frozenset[str]] = {
    DRAFT: frozenset({DRAFTED, RETURNED}),
    CONTENT_REVIEW: frozenset({DRAFTED}),
    CATEGORY_REVIEW: frozenset({DRAFTED}),
    LEVEL_REVIEW: frozenset({DRAFTED}),
    RE_REVIEW: frozenset({DRAFTED}),
    TERROR_CHECK: frozenset({DRAFTED, PUBLISHED}),
    PUBLISH: frozenset({DRAFTED}),
    RETURN: frozenset({DRAFTED}),
    CHANGE_LEVEL: frozenset({PUBLISHED}),
    RELEASE: frozenset({PUBLISHED}),
    FILE: frozenset({RELEASED}),
}


def _check_order(state: WarningState, action: str) -> None:
    if state.status == FILED:
        raise LifecycleError(f"warning {state.warning_id} is filed: it takes no more steps",
                             code="WARNING_FILED")
    if action in REVIEWS and state.status == DRAFTED:
        expected = REVIEWS[len(state.reviews)] if len(state.reviews) < len(REVIEWS) else None
        if action != expected:
            done = ", ".join(_label(r) for r in state.reviews) or "none"
            raise LifecycleError(
                f"{_label(action)} of warning {state.warning_id} out of order: reviews "
                f"passed: {done}; next: {_label(expected) if expected else 'publication'}",
                code="WARNING_REVIEW_ORDER")
        return
    if state.status in _ALLOWED_FROM[action]:
        return
    if action in (CHANGE_LEVEL, RELEASE) and state.status == RELEASED:
        raise LifecycleError(f"warning {state.warning_id} is released: no "
                             f"{_label(action)} after release", code="WARNING_RELEASED")
    if action in (CHANGE_LEVEL, RELEASE) and state.status in (DRAFTED, RETURNED):
        raise LifecycleError(f"warning {state.warning_id} was never published: no "
                             f"{_label(action)}", code="WARNING_NOT_PUBLISHED")
    if action == FILE:
        raise LifecycleError(f"warning {state.warning_id} is {state.status.lower()}: it is "
                             "filed after its release", code="WARNING_NOT_RELEASED")
    raise LifecycleError(f"no {_label(action)} of warning {state.warning_id}: it is "
                         f"{state.status.lower()}")


def _check_content(state: WarningState, record: Mapping[str, Any], action: str) -> None:
    content = content_of(record)
    if action == DRAFT:
        return
    if action in (*REVIEWS, TERROR_CHECK, PUBLISH, RETURN) and state.status == DRAFTED:
        if content != state.draft:
            raise LifecycleError(
                f"{_label(action)} of warning {state.warning_id} carries content other than "
                "the draft: to change it, return the warning and draft it again",
                code="WARNING_CONTENT_CHANGED")
        return
    current = state.current
    if (record["category"], record["subcategory"]) != (current["category"],
                                                       current["subcategory"]):
        raise LifecycleError(
            f"warning {state.warning_id} was published as {current['category']} / "
            f"{current['subcategory']}: its category does not change",
            code="WARNING_CATEGORY_CHANGED")
    if action != CHANGE_LEVEL and record["level"] != current["level"]:
        raise LifecycleError(
            f"warning {state.warning_id} is at level {current['level']}: a level changes "
            f"only by a level change, not by {_label(action)}", code="WARNING_LEVEL_MISMATCH")


def _check_reviews_done(state: WarningState) -> None:
    missing = [_label(r) for r in REVIEWS if r not in state.reviews]
    if not state.terror_checked:
        missing.append(_label(TERROR_CHECK))
    if missing:
        raise LifecycleError(
            f"warning {state.warning_id} is not published without {', '.join(missing)}",
            code="WARNING_REVIEWS_INCOMPLETE")


# ------------------------------------------------------------------------------- fold


def _after(state: WarningState | None, recorded: RecordedStep) -> WarningState:
    record = recorded.record
    step = recorded.step
    action = recorded.action
    content = content_of(record)
    if state is None or action == DRAFT:
        actor = step["actor"]
        return WarningState(
            warning_id=str(record["warning_id"]),
            issuer=state.issuer if state is not None else recorded.sender,
            status=DRAFTED, reviews=(), terror_checked=False,
            drafter=(actor["name"], actor["organisation"]),
            draft=content, current=content, last_at=step["at"],
        )
    status, reviews, terror_checked = state.status, state.reviews, state.terror_checked
    if action in REVIEWS:
        reviews = (*reviews, action)
    elif action == TERROR_CHECK:
        terror_checked = True
    else:
        status = {PUBLISH: PUBLISHED, RETURN: RETURNED, RELEASE: RELEASED,
                  FILE: FILED}.get(action, status)
    if action == RETURN:
        reviews, terror_checked = (), False
    current = content if action in (CHANGE_LEVEL, RELEASE) else state.current
    return WarningState(
        warning_id=state.warning_id, issuer=state.issuer, status=status, reviews=reviews,
        terror_checked=terror_checked, drafter=state.drafter, draft=state.draft,
        current=current, last_at=step["at"],
    )


_LABELS = {
    DRAFT: "draft (起草)", CONTENT_REVIEW: "content review (内容审核)",
    CATEGORY_REVIEW: "category review (类别审核)", LEVEL_REVIEW: "level review (级别审核)",
    RE_REVIEW: "re-review (复核)", TERROR_CHECK: "terror-relevance check (涉恐排查)",
    PUBLISH: "publication (发布)", RETURN: "return (退回)", CHANGE_LEVEL: "level change (级别调整)",
    RELEASE: "release (解除)", FILE: "filing (备案)",
}


def _label(action: str) -> str:
    return _LABELS.get(action, action)
