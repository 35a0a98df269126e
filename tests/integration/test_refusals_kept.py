"""What the gateway keeps of a document it refuses once its format is known, on a real broker:
its type, and its business key and version once parsed, in the receipt, the trail record, the
dead letter and the metrics, so that `portgw replay trace` lists its refused versions. And
what the operators' /metrics says of an idle gateway: nothing in flight, the process's own."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli.main import main as portgw
from gateway.home.create import Home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.wire import read_topics
from gateway.parts import GatewayParts
from gateway.publish.dead_letters import DeadLetter
from gateway.receipts.receipt import Receipt
from gateway.warnings.scenario import (
    FORMAT_ID,
    ISSUER,
    PUBLISHER,
    Step,
    full_lifecycle,
    step_record,
)
from replay.history import trace_kafka
from tests.integration.service_support import (
    ARRIVAL,
    PROVIDER,
    Document,
    post_document,
    receipt_from_json,
    running_gateway,
    signed,
    signed_arrivals,
    wait_ready,
)
from tests.integration.support import FAL1_SAMPLES, gateway_parts, trail_entries, warning_home
from tests.unit.keyring_support import add_second_key
from tests.unit.sm2_ca import OpensslCA

pytestmark = pytest.mark.integration

ARRIVAL_KEY = "9074729:V2611:A:CNSHA"
BAD_IMO = (FAL1_SAMPLES / "bad_imo_check_digit.xml").read_bytes()
BAD_IMO_KEY = "9074728:V2611:A:CNSHA"  # read before the rule on its check digit ran
WARNING_ID = "SH-2026-0077"
REFUSALS = {"REJECTED", "DENIED"}
IDLE_WITHIN_S = 60.0


@pytest.fixture
def warnings_home(tmp_path: Path) -> Home:
    return warning_home(tmp_path / "home")


def warning_documents(home: Home) -> list[Document]:
    """A level IV warning's draft (accepted, version 1), then its release, which the
    lifecycle refuses once the document is adapted: it was never published (version 2)."""
    adapters = gateway_parts(home)[1].adapters
    draft = {**full_lifecycle(WARNING_ID)[0].record, "level": "IV"}
    steps = (Step("draft", ISSUER, draft, 1),
             Step("release", ISSUER, step_record(draft, "RELEASE", PUBLISHER, 1), 2))
    return [signed_step(home, step.render(adapters), f"warning-{step.version}")
            for step in steps]


def signed_step(home: Home, document: bytes, submission_id: str) -> Document:
    return Document(submission_id, ISSUER, document, home.agency_keys[ISSUER].sign(document),
                    FORMAT_ID)


async def scrape(session: aiohttp.ClientSession, base_url: str) -> list[Any]:
    """Every sample GET /metrics answers."""
    async with session.get(f"{base_url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return [sample for family in text_string_to_metric_families(text)
            for sample in family.samples]


def rejected_counts(samples: list[Any]) -> dict[tuple[str, str, str], float]:
    return {(s.labels["document_type"], s.labels["agency"], s.labels["code"]): s.value
            for s in samples if s.name == "portgw_documents_rejected_total"}


Facts = tuple[str | None, str | None, int | None]


def facts(fields: dict[str, Any]) -> Facts:
    return fields["document_type"], fields["business_key"], fields["document_version"]


def refusals_kept(parts: GatewayParts, bootstrap: str
                  ) -> tuple[dict[str, Facts], dict[str, Facts]]:
    """By event id, the facts the trail's refusal records and the dead letters keep."""
    trail = trail_entries(parts, bootstrap)
    letters = [DeadLetter.from_message(m, parts.schemas)
               for m in asyncio.run(read_topics(bootstrap, [parts.topics.dlq]))]
    return ({e["event_id"]: facts(e) for e in trail if e["kind"] in REFUSALS},
            {d.event_id: (d.document_type, d.business_key, d.document_version)
             for d in letters})


def test_a_document_refused_after_adapting_keeps_its_type_key_and_version(
    broker: LocalBroker, warnings_home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    home, bootstrap = warnings_home, broker.bootstrap_servers
    draft, release = warning_documents(home)
    no_contract = signed(home, ARRIVAL, "no-contract", sender="cn.border.sh")
    bad_rule = signed(home, BAD_IMO, "bad-imo")
    receipts, samples = asyncio.run(_post_all(home, bootstrap,
                                              [draft, release, no_contract, bad_rule]))

    assert receipts[0].accepted, receipts[0]
    refused = {r.error_code: r for r in receipts[1:]}
    assert {code: (r.document_type, r.business_key) for code, r in refused.items()} == {
        "WARNING_NOT_PUBLISHED": ("warning", WARNING_ID),
        "ROUTE_NO_CONTRACT": ("fal1", ARRIVAL_KEY),
        # refused by a rule while the worker parsed it: its key was read before the rules
        "RULE_IMO_CHECK_DIGIT": ("fal1", BAD_IMO_KEY),
    }
    want = {refused["WARNING_NOT_PUBLISHED"].event_id: ("warning", WARNING_ID, 2),
            refused["ROUTE_NO_CONTRACT"].event_id: ("fal1", ARRIVAL_KEY, 1),
            refused["RULE_IMO_CHECK_DIGIT"].event_id: ("fal1", BAD_IMO_KEY, 1)}
    assert rejected_counts(samples) == {("warning", ISSUER, "WARNING_NOT_PUBLISHED"): 1,
                                        ("fal1", "cn.border.sh", "ROUTE_NO_CONTRACT"): 1,
                                        ("fal1", "cn.port.sh", "RULE_IMO_CHECK_DIGIT"): 1}

    _, parts = gateway_parts(home)
    assert refusals_kept(parts, bootstrap) == (want, want)

    history = asyncio.run(trace_kafka(bootstrap, parts.schemas, WARNING_ID,
                                      trail_topic=parts.topics.trail))
    assert [(v.document_version, [r.kind for r in v.records]) for v in history.versions] == [
        (1, ["RECEIVED", "ACCEPTED"]), (2, ["RECEIVED", "REJECTED"])]
    assert portgw(["replay", "trace", WARNING_ID, "--config", str(home.config_file),
                   "--bootstrap-servers", bootstrap]) == 0
    traced = capsys.readouterr().out
    assert "version 2 · event" in traced and "REJECTED · WARNING_NOT_PUBLISHED" in traced


def test_a_rule_refusal_keeps_the_business_key_read_before_the_rules_ran(
    broker: LocalBroker, home: Home
) -> None:
    """Whether the worker verified the signature and parsed (the sender's newest key) or the
    gateway verified it and the worker only parsed (an older key): the refused document keeps
    its business key and version in its receipt, its trail record and its dead letter."""
    bootstrap = broker.bootstrap_servers
    newest = add_second_key(home)
    by_newest = Document("bad-imo-newest-key", PROVIDER, BAD_IMO, newest.sign(BAD_IMO))
    by_older = signed(home, BAD_IMO, "bad-imo-older-key")
    receipts, samples = asyncio.run(_post_all(home, bootstrap, [by_newest, by_older]))

    assert [(r.error_code, r.document_type, r.business_key) for r in receipts] == [
        ("RULE_IMO_CHECK_DIGIT", "fal1", BAD_IMO_KEY)] * 2
    want = {r.event_id: ("fal1", BAD_IMO_KEY, 1) for r in receipts}
    assert len(want) == 2
    assert rejected_counts(samples) == {("fal1", PROVIDER, "RULE_IMO_CHECK_DIGIT"): 2}
    assert refusals_kept(gateway_parts(home)[1], bootstrap) == (want, want)


async def _post_all(home: Home, bootstrap: str, docs: list[Document]
                    ) -> tuple[list[Receipt], list[Any]]:
    """Posts each document in turn; their verified receipts, then what /metrics says."""
    config, parts = gateway_parts(home)
    receipts = []
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        await wait_ready(session, gw.url)
        for doc in docs:
            answer = await gw.serving.alongside(post_document(session, gw.url, doc))
            signed_receipt = receipt_from_json(answer.body, parts.schemas)
            signed_receipt.check(parts.keyring)
            receipts.append(signed_receipt.receipt)
        return receipts, await scrape_counted(session, gw.ops_url, len(docs))


async def scrape_counted(session: aiohttp.ClientSession, base_url: str, documents: int,
                         deadline_s: float = 30.0) -> list[Any]:
    """What /metrics says once it has counted `documents` decided ones: a sender may hold its
    receipt a moment before the gateway has counted the decision."""
    deadline = time.monotonic() + deadline_s
    while True:
        samples = await scrape(session, base_url)
        counted = sum(s.value for s in samples if s.name in (
            "portgw_documents_accepted_total", "portgw_documents_rejected_total"))
        if counted >= documents or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


def test_an_idle_gateway_has_nothing_in_flight_and_exports_its_process_metrics(
    broker: LocalBroker, home: Home
) -> None:
    samples = asyncio.run(_idle_after(home, broker.bootstrap_servers, count=6))
    values = {s.name: s.value for s in samples if not s.labels}
    assert values["portgw_in_flight_documents"] == 0
    assert values["process_resident_memory_bytes"] > 0
    assert values["process_cpu_seconds_total"] > 0
    assert any(s.name == "python_info" for s in samples)


async def _idle_after(home: Home, bootstrap: str, *, count: int) -> list[Any]:
    """Posts `count` documents at once, then scrapes /metrics until no document is in flight
    (or the deadline passed); the last scrape."""
    config, parts = gateway_parts(home)
    async with running_gateway(config, parts, bootstrap) as gw, \
            aiohttp.ClientSession() as session:
        await wait_ready(session, gw.url)
        answers = await gw.serving.alongside(asyncio.gather(
            *(post_document(session, gw.url, doc) for doc in signed_arrivals(home, count))))
        assert [a.body["status"] for a in answers] == ["accepted"] * count
        deadline = time.monotonic() + IDLE_WITHIN_S
        while True:
            samples = await scrape(session, gw.ops_url)
            idle = any(s.name == "portgw_in_flight_documents" and s.value == 0
                       for s in samples)
            if idle or time.monotonic() > deadline:
                return samples
            await asyncio.sleep(0.1)


def test_the_gateways_own_certificates_expiry_is_exported(
    broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    """What an operator alerts on before an E-Port recipient refuses the gateway's
    signatures: each own certificate's notAfter, by the setting that names it."""
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)
    certificate = OpensslCA.create(tmp_path / "ca").issue("gateway", 0x21, end=not_after)
    config, parts = gateway_parts(home)
    config = replace(config, dxp=replace(config.dxp, certificate_file=str(certificate)))

    async def exported() -> dict[str, float]:
        async with running_gateway(config, parts, broker.bootstrap_servers) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            return {s.labels["setting"]: s.value for s in await scrape(session, gw.ops_url)
                    if s.name == "portgw_certificate_not_after_seconds"}

    assert asyncio.run(exported()) == {"[dxp] certificate_file": not_after.timestamp()}
