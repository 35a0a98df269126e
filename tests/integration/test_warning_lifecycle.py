"""A port safety early warning's whole lifecycle on a real broker: who received what at each
step, the steps that were refused and why, and the trail that names every person and time."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from gateway.home.create import DEMO_AGENCIES, WARNING_AGENCIES, Home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.wire import read_topics
from gateway.parts import GatewayParts
from gateway.receipts.receipt import Receipt
from gateway.warnings.scenario import (
    FILING_SYSTEM,
    ISSUER,
    PUBLISHER,
    Step,
    content,
    full_lifecycle,
    step_record,
)
from replay import verify_kafka
from tests.integration.support import (
    Sent,
    gateway_parts,
    submit_all,
    trail_entries,
    warning_home,
)

AGENCIES = (*DEMO_AGENCIES, *WARNING_AGENCIES)
PORT_AGENCIES = {"cn.port.sh", "cn.msa.sh", "cn.border.sh"}
MAJOR = {"cn.customs.gacc", "cn.mem", "cn.gov.sh"} | PORT_AGENCIES


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return warning_home(tmp_path / "home", seal_every=8)


def refused(label: str, sender: str, record: dict[str, Any], version: int) -> Step:
    return Step(f"refused: {label}", sender, record, version)


def with_refusals(steps: list[Step]) -> list[tuple[Step, str | set[str]]]:
    """The lifecycle with wrong steps in between, each with what it must come to: the
    recipients of an accepted step, or the code of a refused one."""
    by_label = {s.label: s for s in steps}
    release = by_label["release by the owner of level I"]
    escalated = by_label["escalation to level I"].record
    early = by_label["publication at level II"].record
    expected: dict[str, str | set[str]] = {
        "draft": set(), "content review": set(), "category review": set(),
        "level review": set(), "re-review": set(),
        "terror-relevance check": {"cn.police.sh"},
        "publication at level II": MAJOR, "escalation to level I": MAJOR,
        "release by the owner of level I": (MAJOR - {"cn.customs.gacc"}) | {ISSUER},
        "filing": {"cn.customs.gacc"},
    }
    out: list[tuple[Step, str | set[str]]] = []
    for step in steps:
        if step.label == "re-review":
            out.append((refused("publication before the re-review", ISSUER,
                                {**early, "step": {**early["step"],
                                                   "at": step.record["step"]["at"]}}, 90),
                        "WARNING_REVIEWS_INCOMPLETE"))
        if step.label == "release by the owner of level I":
            out.append((refused("release by the issuer at level I", ISSUER,
                                {**release.record, "step": {**release.record["step"],
                                                            "actor": PUBLISHER.actor()}}, 91),
                        "WARNING_RELEASE_NOT_OWNER"))
        if step.label == "filing":
            after = step_record(content(escalated["warning_id"], "II", escalated=True),
                                "CHANGE_LEVEL", PUBLISHER, 260)
            out.append((refused("level change after release", ISSUER, after, 92),
                        "WARNING_RELEASED"))
        out.append((step, expected[step.label]))
    # A level IV warning, terror excluded: a release before publication is refused; the
    # check stays internal; published, it goes to the port's emergency working group and
    # the port agencies.
    minor = [Step(s.label, s.sender, {**s.record, "level": "IV"}, s.version)
             for s in full_lifecycle("SH-2026-0099")[:7]]
    check = minor[5].record
    minor[5] = Step(minor[5].label, ISSUER, {**check, "step": {
        **check["step"], "terror_relevance": "EXCLUDED", "comment": None}}, minor[5].version)
    out.append((minor[0], set()))
    out.append((refused("release of what was never published", ISSUER,
                        step_record(minor[0].record, "RELEASE", PUBLISHER, 1), 90),
                "WARNING_NOT_PUBLISHED"))
    out += [(step, set()) for step in minor[1:6]]
    out.append((minor[6], {"cn.port.sh.emergency"} | PORT_AGENCIES))
    return out


def received_by_event(parts: GatewayParts, bootstrap: str) -> dict[str, dict[str, Any]]:
    """event id -> recipient -> the canonical record it received."""
    by_event: dict[str, dict[str, Any]] = defaultdict(dict)
    topics = [parts.topics.delivery(a.id) for a in AGENCIES]
    for message in asyncio.run(read_topics(bootstrap, topics)):
        _, delivery = parts.schemas.decode(message.value)
        _, record = parts.schemas.decode(delivery["payload"])
        by_event[delivery["event_id"]][delivery["recipient"]] = record
    return by_event


def test_a_warning_lifecycle_reaches_each_party_at_its_step_and_the_trail_names_everyone(
    broker: LocalBroker, home: Home
) -> None:
    bootstrap = broker.bootstrap_servers
    _, parts = gateway_parts(home)
    plan = with_refusals(full_lifecycle("SH-2026-0042"))
    receipts: list[Receipt] = asyncio.run(submit_all(home, bootstrap, [
        Sent(step.sender, step.render(parts.adapters), format_id="warning-xml")
        for step, _ in plan]))

    for (step, want), receipt in zip(plan, receipts, strict=True):
        if isinstance(want, set):
            assert receipt.accepted and set(receipt.recipients) == want, (step.label, receipt)
        else:
            assert receipt.error_code == want, (step.label, receipt)

    received = received_by_event(parts, bootstrap)
    for (step, want), receipt in zip(plan, receipts, strict=True):
        got = received.get(receipt.event_id, {})
        assert set(got) == (want if isinstance(want, set) else set()), step.label
        for record in got.values():
            assert record["step"]["action"] == step.record["step"]["action"]
            assert record["level"] == step.record["level"]

    filing = next(r for (s, _), r in zip(plan, receipts, strict=True) if s.label == "filing")
    [filed] = received[filing.event_id].values()
    accepted_steps = [s for (s, want), r in zip(plan, receipts, strict=True)
                      if r.accepted and s.record["warning_id"] == "SH-2026-0042"]
    assert [(h["action"], h["actor"]["name"], h["at"]) for h in filed["history"]] == [
        (s.record["step"]["action"], s.record["step"]["actor"]["name"], s.record["step"]["at"])
        for s in accepted_steps[:-1]]
    assert filed["step"]["filed_to"] == FILING_SYSTEM

    dead = asyncio.run(read_topics(bootstrap, [parts.topics.dlq]))
    assert sorted(parts.schemas.decode(m.value)[1]["error_code"] for m in dead) == sorted(
        want for _, want in plan if isinstance(want, str))

    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                      trail_topic=parts.topics.trail))
    assert report.ok, report.breaks
    reasons = {e["event_id"]: e["reason"] for e in trail_entries(parts, bootstrap)
               if e["kind"] == "ACCEPTED"}
    for (step, _), receipt in zip(plan, receipts, strict=True):
        if receipt.accepted:
            actor = step.record["step"]["actor"]
            at = step.record["step"]["at"]
            assert actor["name"] in reasons[receipt.event_id], step.label
            assert f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in reasons[
                receipt.event_id], step.label

