"""The router on a real broker: 一单两报 (one manifest, two customs authorities, each in its own
format), a cross-border crew list projected, masked and SM4-enveloped, a denial recorded in
the trail, and status events for a subscribed party."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from contracts import Agency
from crypto import open_envelope
from gateway.home.create import DEMO_AGENCIES, ContractSpec, Home, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.wire import read_topics
from gateway.parts import GatewayParts
from replay import verify_kafka
from tests.integration.support import Sent, gateway_parts, submit_all, trail_entries

DATA = Path(__file__).parents[1] / "data"
MANIFEST = (DATA / "manifest" / "valid_import.xml").read_bytes()
CREW_LIST = (DATA / "fal5" / "valid_arrival.xml").read_bytes()

AGENCIES = (
    *DEMO_AGENCIES,
    Agency("cn.agent.sh", "PX Shipping Agency (Shanghai)", "agent", "310000", "CN"),
    Agency("hk.customs", "Hong Kong Customs and Excise Department", "customs", "810000", "HK",
           "香港海关", delivery_format="manifest-xml"),
    Agency("hk.immd", "Hong Kong Immigration Department", "border", "810000", "HK",
           "香港入境事务处", delivery_format="json"),
)
ASSESSMENT = 'export_assessment = "CAC-SJCJ-2026-0042"\n'
CONTRACTS = (
    ContractSpec(
        id="manifest-mainland", provider="cn.agent.sh", consumers=("cn.customs.sh",),
        document_types=("manifest",), scope="cross-department",
        purpose="import cargo manifest declaration", legal_basis="海关法 第十四条",
        extra='max_classification = "important"\n',
    ),
    ContractSpec(
        id="manifest-hk", provider="cn.agent.sh", consumers=("hk.customs",),
        document_types=("manifest",), scope="cross-border",
        purpose="一单两报: the same manifest declared to Hong Kong customs",
        legal_basis="Mainland–HK customs cooperation arrangement",
        extra=f'max_classification = "important"\nencrypt = true\n{ASSESSMENT}',
    ),
    ContractSpec(
        id="crew-to-hk", provider="cn.border.sh", consumers=("hk.immd",),
        document_types=("fal5",), scope="cross-border", purpose="joint crew screening",
        legal_basis="Mainland–HK immigration cooperation arrangement",
        fields=("ship", "crew"),
        extra=(f"encrypt = true\n{ASSESSMENT}[masks]\n"
               '"crew[].family_name" = "pseudonym"\n"crew[].given_names" = "pseudonym"\n'
               '"crew[].date_of_birth" = "year"\n"crew[].place_of_birth" = "drop"\n'
               '"crew[].identity_document.number" = '
               '{rule = "partial", keep_start = 2, keep_end = 2}\n'),
    ),
    ContractSpec(
        id="crew-flag-of-convenience", provider="cn.border.sh", consumers=("cn.customs.sh",),
        document_types=("fal5",), scope="cross-department",
        purpose="crew of ships under open registries", legal_basis="海关法 第八条",
        extra="condition = 'ship.flag_state in [\"PA\", \"LR\", \"MH\"]'\n",
    ),
    ContractSpec(
        id="agent-status", provider="", consumers=("cn.agent.sh",),
        document_types=("manifest",), scope="", purpose="the agent follows what it files",
        legal_basis="单一窗口 service agreement", kind="subscription",
        events=("accepted", "rejected", "delivered"),
    ),
)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return create_home(tmp_path / "home", agencies=AGENCIES, contracts=CONTRACTS,
                       seal_every=4, seal_interval_ms=100)


def decoded(parts: GatewayParts, messages: list[Any]) -> list[Any]:
    return [parts.schemas.decode(m.value)[1] for m in messages]


def test_one_manifest_reaches_mainland_and_hong_kong_customs_each_in_its_own_format(
    broker: LocalBroker, home: Home
) -> None:
    bootstrap = broker.bootstrap_servers
    [receipt] = asyncio.run(submit_all(home, bootstrap,
                                       [Sent("cn.agent.sh", MANIFEST, format_id="manifest-xml")]))
    assert receipt.accepted, receipt
    assert set(receipt.recipients) == {"cn.customs.sh", "hk.customs"}
    _, parts = gateway_parts(home)
    expected = parts.adapters.get("manifest-xml").parse(MANIFEST).record

    [mainland] = decoded(parts, asyncio.run(read_topics(bootstrap,
                                                        [parts.topics.delivery("cn.customs.sh")])))
    assert mainland["payload_encoding"] == "avro-single-object"
    name, event = parts.schemas.decode(mainland["payload"])
    assert name == "px.canonical.CustomsCargoManifest"
    assert {k: v for k, v in event.items() if k != "header"} == expected

    [hong_kong] = decoded(parts, asyncio.run(read_topics(bootstrap,
                                                         [parts.topics.delivery("hk.customs")])))
    assert hong_kong["payload_encoding"] == "sm4-envelope+manifest-xml"
    assert (hong_kong["contract_id"], hong_kong["event_id"]) == ("manifest-hk", receipt.event_id)
    xml = open_envelope(home.agency_keys["hk.customs"], hong_kong["payload"])
    assert xml.startswith(b"<?xml")
    assert parts.adapters.get("manifest-xml").parse(xml).record == expected
    with pytest.raises(Exception):  # noqa: B017 - any failure: the wrong key opens nothing
        open_envelope(home.agency_keys["cn.customs.sh"], hong_kong["payload"])

    statuses = decoded(parts, asyncio.run(read_topics(bootstrap,
                                                      [parts.topics.status("cn.agent.sh")])))
    assert sorted((s["status"], s["recipient"]) for s in statuses) == [
        ("accepted", None), ("delivered", "cn.customs.sh"), ("delivered", "hk.customs")]
    assert all(s["contract_id"] == "agent-status" for s in statuses)

    trail = trail_entries(parts, bootstrap)
    delivered = {(e["recipient"], e["contract_id"], e["contract_version"])
                 for e in trail if e["kind"] == "DELIVERED"}
    assert delivered == {("cn.customs.sh", "manifest-mainland", 1),
                         ("hk.customs", "manifest-hk", 1)}
    assert sum(e["kind"] == "NOTIFIED" for e in trail) == 3
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail))
    assert report.ok, report.breaks


def test_a_crew_list_crosses_the_border_masked_and_a_denial_is_in_the_trail(
    broker: LocalBroker, home: Home
) -> None:
    bootstrap = broker.bootstrap_servers
    [receipt] = asyncio.run(submit_all(home, bootstrap,
                                       [Sent("cn.border.sh", CREW_LIST, format_id="fal5-xml")]))
    assert receipt.accepted, receipt
    assert receipt.recipients == ("hk.immd",)
    _, parts = gateway_parts(home)
    original = parts.adapters.get("fal5-xml").parse(CREW_LIST).record

    [delivery] = decoded(parts, asyncio.run(read_topics(bootstrap,
                                                        [parts.topics.delivery("hk.immd")])))
    assert delivery["payload_encoding"] == "sm4-envelope+json"
    assert delivery["payload_schema"] == "px.projected.crew_to_hk.v1.Fal5CrewList"
    record = json.loads(open_envelope(home.agency_keys["hk.immd"], delivery["payload"]))
    assert list(record) == ["header", "ship", "crew"]
    assert record["header"]["event_id"] == receipt.event_id
    sent_names = {member["family_name"] for member in original["crew"]}
    for member, source in zip(record["crew"], original["crew"], strict=True):
        assert member["family_name"] not in sent_names and len(member["family_name"]) == 32
        assert member["date_of_birth"] == str(source["date_of_birth"].year)
        assert "place_of_birth" not in member
        number = member["identity_document"]["number"]
        assert number[:2] == source["identity_document"]["number"][:2] and "*" in number
    assert asyncio.run(read_topics(bootstrap, [parts.topics.delivery("cn.customs.sh")])) == []

    trail = trail_entries(parts, bootstrap)
    [denied] = [e for e in trail if e["kind"] == "DENIED"]
    assert (denied["recipient"], denied["error_code"], denied["contract_id"]) == (
        "cn.customs.sh", "ROUTE_CONDITION_FALSE", "crew-flag-of-convenience")
    report = asyncio.run(verify_kafka(bootstrap, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail))
    assert report.ok, report.breaks


def test_a_refused_manifest_reaches_its_subscribed_sender_as_a_rejected_status(
    broker: LocalBroker, home: Home
) -> None:
    """The refusal keeps the document type its format gave, so the subscription to the
    manifests' "rejected" status finds it."""
    bootstrap = broker.bootstrap_servers
    bad = (DATA / "manifest" / "bad_hs_chapter.xml").read_bytes()
    [receipt] = asyncio.run(submit_all(home, bootstrap,
                                       [Sent("cn.agent.sh", bad, format_id="manifest-xml")]))
    assert (receipt.error_code, receipt.document_type) == ("RULE_HS_CODE", "manifest")
    _, parts = gateway_parts(home)
    [status] = decoded(parts, asyncio.run(read_topics(bootstrap,
                                                      [parts.topics.status("cn.agent.sh")])))
    assert (status["status"], status["error_code"], status["event_id"]) == (
        "rejected", "RULE_HS_CODE", receipt.event_id)
    assert [e["recipient"] for e in trail_entries(parts, bootstrap)
            if e["kind"] == "NOTIFIED"] == ["cn.agent.sh"]
