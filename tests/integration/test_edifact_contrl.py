"""An EDIFACT sender answered with CONTRL on a real broker: an adapter of EDIFACT messages
installed as a plug-in (a small test-only one: no real EDIFACT adapter is needed to test
the layer's answers) reads PAXLST interchanges in the parse worker; the gateway accepts a
sound interchange and puts a positive CONTRL on the sender's delivery topic when UNB asked
for one, refuses an interchange whose UNT count lies with a negative CONTRL naming the
message, the segment and the error code, and answers an interchange that names no format
as the format its message types show (a ship's passenger list, which the built-in
paxlst-passengers reads: of the PAXLST adapters, the one that names its BGM document)."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import aiohttp
import pytest

from gateway.home.create import ContractSpec, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import read_topics
from gateway.parts import GatewayParts
from gateway.publish.contrl_answers import CONTRL_FORMAT
from message_formats.edifact import Acknowledgement, Action, read_contrl, read_interchange
from message_formats.edifact import render_interchange as render
from message_formats.edifact.writer import OutgoingMessage
from tests.integration.service_support import (
    Document,
    deduplicated_deliveries,
    post_document,
    post_unnamed,
    running_gateway,
    signed,
    wait_ready,
)
from tests.integration.support import gateway_parts
from tests.unit.edifact_support import header, interchange_with, paxlst

pytestmark = pytest.mark.integration
SHIPS_PASSENGER_LIST = Path(__file__).parents[1] / "data" / "paxlst" / "fal6" / "passengers_2.edi"

SENDER, CUSTOMS = "cn.port.sh", "cn.customs.sh"
PLUGIN = '''
from dataclasses import dataclass
from adapters.base import ParseResult, RenderError
from message_formats.edifact import read_interchange


@dataclass(frozen=True)
class ProbeInterchange:
    """Reads PAXLST interchanges with the EDIFACT layer and keeps their references."""

    format_id: str = "probe-edifact"
    document_type: str = "probe-interchange"
    schema_name: str = "px.test.ProbeInterchange"
    media_type: str = "application/EDIFACT"
    edifact_message_types: frozenset = frozenset({"PAXLST"})

    def parse(self, data):
        interchange = read_interchange(data)
        return ParseResult(
            {"control_reference": interchange.control_reference,
             "message_references": [m.reference for m in interchange.messages]},
            interchange.control_reference, 1)

    def render(self, record):
        raise RenderError("the probe renders nothing")
'''
SCHEMA = '''
{"type": "record", "name": "ProbeInterchange", "namespace": "px.test",
 "doc": "A test-only record of an EDIFACT interchange: its references.",
 "fields": [
  {"name": "header", "type": "px.canonical.Header", "doc": "The event header."},
  {"name": "control_reference", "type": "string", "doc": "UNB 0020."},
  {"name": "message_references", "type": {"type": "array", "items": "string"},
   "doc": "UNH 0062 of each message."}]}
'''
PROBE_CONTRACT = ContractSpec(
    id="probe-port-to-customs", provider=SENDER, consumers=(CUSTOMS,),
    document_types=("probe-interchange",), scope="cross-department",
    purpose="passenger lists for border control", legal_basis="中华人民共和国出境入境管理法")
PASSENGER_LIST_CONTRACT = ContractSpec(
    id="passenger-lists-port-to-customs", provider=SENDER, consumers=(CUSTOMS,),
    document_types=("fal6",), scope="cross-department",
    purpose="passenger lists for border control", legal_basis="中华人民共和国出境入境管理法")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The probe installed as a plug-in (a package with its Avro schema, and its
    distribution's entry point), for this process and the parse worker it starts."""
    site = tmp_path / "site"
    package = site / "px_edifact_probe"
    (package / "avro").mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (package / "avro" / "px.test.ProbeInterchange.avsc").write_text(SCHEMA)
    dist_info = site / "px_edifact_probe-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: px-edifact-probe\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[port_exchange_gateway.adapters]\nprobe-edifact = px_edifact_probe:ProbeInterchange\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, (str(site), os.environ.get("PYTHONPATH")))))
    return site


def unnamed(doc: Document) -> Document:
    return Document(doc.submission_id, doc.sender, doc.document, doc.signature, format_id="")


def contrls(parts: GatewayParts, bootstrap: str) -> dict[str, Acknowledgement]:
    """The CONTRLs on the sender's delivery topic, by the reference of the interchange each
    answers."""
    found = {}
    for message in asyncio.run(read_topics(bootstrap, [parts.topics.delivery(SENDER)])):
        delivery = parts.schemas.decode(message.value)[1]
        assert delivery["payload_encoding"] == CONTRL_FORMAT
        contrl = read_interchange(delivery["payload"])
        assert (contrl.sender, contrl.recipient) == ("PORTGW", "CARRIER")
        read = read_contrl(contrl.messages[0])
        found[read.interchange.reference] = read
    return found


def ships_passenger_list(reference: str) -> OutgoingMessage:
    """The message of a ship's passenger list sample, to be sent in an interchange of ours."""
    message = read_interchange(SHIPS_PASSENGER_LIST.read_bytes()).messages[0]
    return OutgoingMessage(reference, message.identifier, message.body())


def test_an_edifact_sender_gets_its_contrl_answers(
        broker: LocalBroker, topics: Topics, tmp_path: Path, installed: Path) -> None:
    home = create_home(tmp_path / "home", contracts=(PROBE_CONTRACT, PASSENGER_LIST_CONTRACT),
                       topic_prefix=topics.prefix, seal_every=4, seal_interval_ms=100)
    sound = signed(home, render(header(reference="SOUND", ack=True), [paxlst("M1")]), "s-1")
    silent = signed(home, render(header(reference="SILENT"), [paxlst("M1")]), "s-2")
    lying = signed(home, interchange_with("UNH+M1+PAXLST:D:05B:UN:IATA'", "BGM+745'",
                                          "UNT+9+M1'"), "s-3")
    detected = signed(home, render(header(reference="DETECTED", ack=True),
                                   [ships_passenger_list("M2")]), "s-4")
    named = [Document(d.submission_id, d.sender, d.document, d.signature, "probe-edifact")
             for d in (sound, silent, lying)]
    bootstrap = broker.bootstrap_servers

    async def run() -> list[int]:
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            statuses = [(await gw.serving.alongside(post_document(session, gw.url, doc))).status
                        for doc in named]
            return [*statuses, await gw.serving.alongside(post_unnamed(session, gw.url,
                                                                       detected))]

    assert asyncio.run(run()) == [200, 200, 422, 200]
    _, parts = gateway_parts(home)
    answers = contrls(parts, bootstrap)
    assert sorted(answers) == ["DETECTED", "ICR1", "SOUND"]  # none for SILENT
    for reference in ("SOUND", "DETECTED"):
        assert answers[reference].interchange.action == Action.ACKNOWLEDGED
    refused = answers["ICR1"]
    assert refused.interchange.action == Action.REJECTED
    [ucm] = refused.reports("UCM")
    assert (ucm.reference, ucm.action, ucm.syntax_error, ucm.service_segment, ucm.element) == (
        "M1", Action.REJECTED, 29, "UNT", 1)
    handed = asyncio.run(deduplicated_deliveries(bootstrap, parts.topics, SENDER,
                                                 tmp_path / "dedup", parts.keyring))
    assert sum(handed.values()) == 3  # each CONTRL verified by its seal, once
