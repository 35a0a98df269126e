"""What a recorder of TAKEN records remembers of the acknowledgements it recorded: one under
way is waited on by its repeats, one that failed is forgotten (its repeats try again), one
recorded is kept until its signed time leaves the window, and the outcomes read back from
px.taken.v1 after a restart do not replace what is known."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.kafka.wire import Published
from gateway.trail.taken import Outcome, Remembered, TakenPlace, TakenReceipt

AT = datetime(2026, 12, 7, 8, 0, 0, 123000, tzinfo=UTC)


def receipt(offset: int) -> TakenReceipt:
    return TakenReceipt(Published("px.taken.v1", 0, offset), "a" * 64,
                        (TakenPlace("d1", "taken-p0", offset, 40 + offset),), AT)


def test_an_outcome_survives_its_wire_form() -> None:
    outcome = Outcome("b" * 64, AT, receipt(3))
    assert Outcome.from_json(outcome.to_json()) == outcome


def test_remembered_outcomes_by_statement() -> None:
    async def run() -> None:
        remembered = Remembered()
        underway = remembered.begin("s1", AT)
        assert remembered.get("s1") is underway and not underway.done()
        remembered.failed("s1", underway)
        assert underway.cancelled() and remembered.get("s1") is None

        recorded = remembered.begin("s1", AT)
        recorded.set_result(receipt(1))
        remembered.keep(Outcome("s1", AT, receipt(9)))  # read back later: the first stays
        remembered.keep(Outcome("s2", AT + timedelta(minutes=5), receipt(2)))
        found = remembered.get("s1")
        assert found is not None and found.result() == receipt(1)

        remembered.forget_before(AT + timedelta(minutes=1))
        assert remembered.get("s1") is None and remembered.get("s2") is not None
        remembered.forget_before(AT + timedelta(minutes=6))
        assert len(remembered) == 0

    asyncio.run(run())
