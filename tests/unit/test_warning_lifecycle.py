"""The early-warning lifecycle as a pure check: which step may follow which, and who may take
it. Records here are canonical bodies as the adapter gives them (the fields the check reads)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.warnings.lifecycle import (
    CATEGORY_REVIEW,
    CHANGE_LEVEL,
    CONTENT_REVIEW,
    DRAFT,
    FILE,
    LEVEL_REVIEW,
    PUBLISH,
    RE_REVIEW,
    RELEASE,
    RETURN,
    TERROR_CHECK,
    Authorities,
    LifecycleError,
    RecordedStep,
    check,
    describe_step,
    fold,
    history_for,
    is_internal,
)

ISSUER = "cn.customs.sh"
NATIONAL = "cn.customs.gacc"
AUTHORITIES = Authorities(
    level_owners={"I": NATIONAL, "II": ISSUER},
    names_of=lambda agency: frozenset({"中华人民共和国上海海关"}) if agency == ISSUER
    else frozenset({"中华人民共和国海关总署"}),
)
T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
REVIEWERS = {
    DRAFT: ("张伟", "科员"),
    CONTENT_REVIEW: ("李娜", "科长"),
    CATEGORY_REVIEW: ("王芳", "副处长"),
    LEVEL_REVIEW: ("刘洋", "处长"),
    RE_REVIEW: ("陈静", "副关长"),
}


def warning(action: str, minute: int, *, level: str = "II", situation: str = "泄漏",
            actor: tuple[str, str] | None = None, **step: Any) -> dict[str, Any]:
    name, position = actor or REVIEWERS.get(action, ("赵磊", "关长"))
    return {
        "warning_id": "SH-2026-0042",
        "issuing_authority": "中华人民共和国上海海关",
        "issued_at": T0,
        "utc_offset_minutes": 480,
        "category": "HAZARDOUS_CHEMICALS",
        "subcategory": "CHEMICAL_LEAK",
        "level": level,
        "situation": situation,
        "step": {"action": action, "at": T0 + timedelta(minutes=minute),
                 "actor": {"name": name, "position": position,
                           "organisation": "中华人民共和国上海海关"},
                 "comment": None, "terror_relevance": None, "filed_to": None, **step},
        "history": [],
    }


def recorded(records: Sequence[tuple[str, dict[str, Any]]]) -> list[RecordedStep]:
    return [RecordedStep(f"e{n}", sender, record) for n, (sender, record) in enumerate(records)]


def reviewed() -> list[tuple[str, dict[str, Any]]]:
    return [(ISSUER, warning(action, minute)) for minute, action in enumerate(
        (DRAFT, CONTENT_REVIEW, CATEGORY_REVIEW, LEVEL_REVIEW, RE_REVIEW))] + [
        (ISSUER, warning(TERROR_CHECK, 5, terror_relevance="EXCLUDED"))]


def published() -> list[tuple[str, dict[str, Any]]]:
    return [*reviewed(), (ISSUER, warning(PUBLISH, 6))]


def refused(steps: list[tuple[str, dict[str, Any]]], sender: str, record: dict[str, Any]) -> str:
    with pytest.raises(LifecycleError) as caught:
        check(recorded(steps), sender, record, AUTHORITIES)
    return caught.value.code


def test_a_full_lifecycle_is_accepted_step_by_step() -> None:
    steps = published()
    for sender, record in [(ISSUER, warning(CHANGE_LEVEL, 7, level="I")),
                           (NATIONAL, warning(RELEASE, 8, level="I")),
                           (ISSUER, warning(FILE, 9, level="I", filed_to="海关总署预警系统"))]:
        check(recorded(steps), sender, record, AUTHORITIES)
        steps.append((sender, record))
    state = fold(recorded(steps))
    assert state is not None and state.status == "FILED" and state.level == "I"


def test_the_first_step_is_a_draft_by_the_named_authority() -> None:
    assert refused([], ISSUER, warning(CONTENT_REVIEW, 0)) == "WARNING_UNKNOWN"
    assert refused([], NATIONAL, warning(DRAFT, 0)) == "WARNING_ISSUER_MISMATCH"


def test_reviews_go_in_order_and_publication_needs_them_all() -> None:
    draft = [(ISSUER, warning(DRAFT, 0))]
    assert refused(draft, ISSUER, warning(LEVEL_REVIEW, 1)) == "WARNING_REVIEW_ORDER"
    assert refused(draft, ISSUER, warning(PUBLISH, 1)) == "WARNING_REVIEWS_INCOMPLETE"
    without_check = reviewed()[:-1]
    assert refused(without_check, ISSUER, warning(PUBLISH, 6)) == "WARNING_REVIEWS_INCOMPLETE"


def test_the_drafter_does_not_review_their_own_warning() -> None:
    draft = [(ISSUER, warning(DRAFT, 0))]
    assert refused(draft, ISSUER, warning(CONTENT_REVIEW, 1, actor=REVIEWERS[DRAFT])) \
        == "WARNING_SELF_REVIEW"


def test_reviews_carry_the_content_as_drafted() -> None:
    draft = [(ISSUER, warning(DRAFT, 0))]
    assert refused(draft, ISSUER, warning(CONTENT_REVIEW, 1, situation="火灾")) \
        == "WARNING_CONTENT_CHANGED"
    assert refused(draft, ISSUER, warning(CONTENT_REVIEW, 1, level="I")) \
        == "WARNING_CONTENT_CHANGED"


def test_a_returned_warning_is_drafted_again_and_reviewed_from_the_start() -> None:
    steps = [(ISSUER, warning(DRAFT, 0)), (ISSUER, warning(CONTENT_REVIEW, 1)),
             (ISSUER, warning(RETURN, 2, comment="级别偏低"))]
    assert refused(steps, ISSUER, warning(CATEGORY_REVIEW, 3)) == "WARNING_TRANSITION_INVALID"
    steps.append((ISSUER, warning(DRAFT, 3, level="I")))
    assert refused(steps, ISSUER, warning(CATEGORY_REVIEW, 4, level="I")) \
        == "WARNING_REVIEW_ORDER"
    check(recorded(steps), ISSUER, warning(CONTENT_REVIEW, 4, level="I"), AUTHORITIES)


def test_no_release_or_level_change_of_what_was_never_published() -> None:
    assert refused(reviewed(), ISSUER, warning(RELEASE, 7)) == "WARNING_NOT_PUBLISHED"
    assert refused(reviewed(), ISSUER, warning(CHANGE_LEVEL, 7, level="I")) \
        == "WARNING_NOT_PUBLISHED"


def test_the_level_changes_only_by_a_level_change() -> None:
    assert refused(published(), ISSUER, warning(CHANGE_LEVEL, 7)) == "WARNING_LEVEL_UNCHANGED"
    assert refused(published(), ISSUER, warning(TERROR_CHECK, 7, level="III",
                                                terror_relevance="EXCLUDED")) \
        == "WARNING_LEVEL_MISMATCH"


def test_the_owner_of_the_level_releases() -> None:
    at_level_one = [*published(), (ISSUER, warning(CHANGE_LEVEL, 7, level="I"))]
    assert refused(at_level_one, ISSUER, warning(RELEASE, 8, level="I")) \
        == "WARNING_RELEASE_NOT_OWNER"
    check(recorded(at_level_one), NATIONAL, warning(RELEASE, 8, level="I"), AUTHORITIES)
    # At level II the issuer owns the level; the national authority may not release it.
    assert refused(published(), NATIONAL, warning(RELEASE, 7)) == "WARNING_RELEASE_NOT_OWNER"


def test_an_agency_that_neither_issued_nor_owns_the_level_takes_no_step() -> None:
    assert refused(published(), "cn.msa.sh", warning(CHANGE_LEVEL, 7, level="III")) \
        == "WARNING_SENDER_NOT_AUTHORISED"


def test_no_level_change_after_release_and_filing_closes_the_warning() -> None:
    released = [*published(), (ISSUER, warning(RELEASE, 7))]
    assert refused(released, ISSUER, warning(CHANGE_LEVEL, 8, level="I")) == "WARNING_RELEASED"
    assert refused(published(), ISSUER, warning(FILE, 8, filed_to="x")) == "WARNING_NOT_RELEASED"
    filed = [*released, (ISSUER, warning(FILE, 8, filed_to="x"))]
    assert refused(filed, ISSUER, warning(FILE, 9, filed_to="x")) == "WARNING_FILED"


def test_steps_do_not_go_back_in_time() -> None:
    draft = [(ISSUER, warning(DRAFT, 10))]
    assert refused(draft, ISSUER, warning(CONTENT_REVIEW, 9)) == "WARNING_STEP_TIME_ORDER"


def test_a_filing_carries_every_person_and_time_recorded() -> None:
    steps = recorded([*published(), (ISSUER, warning(RELEASE, 7))])
    history = history_for(steps, warning(FILE, 8, filed_to="x"))
    assert [(s["action"], s["actor"]["name"], s["at"]) for s in history] == [
        (s.action, s.step["actor"]["name"], s.step["at"]) for s in steps]
    assert history_for(steps, warning(RELEASE, 8)) == []


def test_a_history_in_the_document_must_be_the_recorded_one() -> None:
    steps = [*published(), (ISSUER, warning(RELEASE, 7))]
    record = warning(FILE, 8, filed_to="x")
    record["history"] = [r["step"] for _, r in steps][:-1]
    assert refused(steps, ISSUER, record) == "WARNING_HISTORY_MISMATCH"
    record["history"] = [r["step"] for _, r in steps]
    check(recorded(steps), ISSUER, record, AUTHORITIES)


def test_the_trail_line_names_the_person_and_the_time() -> None:
    line = describe_step(warning(CONTENT_REVIEW, 1))
    assert "李娜" in line and "科长" in line and "2026-11-21 01:01 UTC" in line
    assert "content review" in line and "level II" in line


ACTIONS = st.sampled_from([DRAFT, CONTENT_REVIEW, CATEGORY_REVIEW, LEVEL_REVIEW, RE_REVIEW,
                           TERROR_CHECK, PUBLISH, RETURN, CHANGE_LEVEL, RELEASE, FILE])


@given(st.lists(st.tuples(ACTIONS, st.sampled_from([ISSUER, NATIONAL]),
                          st.sampled_from(["I", "II", "III"])), max_size=25))
def test_whatever_is_submitted_the_accepted_steps_keep_the_rules(
        attempts: list[tuple[str, str, str]]) -> None:
    """Random submissions: the accepted ones never publish without the reviews, never
    release what was not published, never change anything after filing."""
    accepted: list[tuple[str, dict[str, Any]]] = []
    for minute, (action, sender, level) in enumerate(attempts):
        extra: dict[str, Any] = ({"terror_relevance": "EXCLUDED"} if action == TERROR_CHECK else
                 {"filed_to": "x"} if action == FILE else {})
        record = warning(action, minute, level=level, **extra)
        try:
            check(recorded(accepted), sender, record, AUTHORITIES)
        except LifecycleError:
            continue
        accepted.append((sender, record))
    actions = [r["step"]["action"] for _, r in accepted]
    for index, action in enumerate(actions):
        before = actions[:index]
        since_draft = before[len(before) - before[::-1].index(DRAFT):] if DRAFT in before else []
        if action == PUBLISH:
            assert {CONTENT_REVIEW, CATEGORY_REVIEW, LEVEL_REVIEW, RE_REVIEW,
                    TERROR_CHECK} <= set(since_draft)
        if action in (RELEASE, CHANGE_LEVEL):
            assert PUBLISH in before and RELEASE not in before
        assert FILE not in before


def test_internal_steps_are_those_kept_inside_the_authority() -> None:
    assert is_internal(warning(DRAFT, 0)["step"])
    assert is_internal(warning(RETURN, 0)["step"])
    assert is_internal(warning(TERROR_CHECK, 0, terror_relevance="EXCLUDED")["step"])
    assert not is_internal(warning(TERROR_CHECK, 0, terror_relevance="NOT_EXCLUDED")["step"])
    assert not is_internal(warning(PUBLISH, 0)["step"])
