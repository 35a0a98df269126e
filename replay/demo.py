"""`portgw demo`: the whole path on a fresh machine, explained for a person.

Starts the local broker and a gateway, creates agencies, keys and contracts, submits sample
documents over the ingress topic as the agencies would (FAL 1 declarations, then one early
warning's lifecycle), shows what each recipient received and each error receipt, then
verifies the trail as an auditor would. It lives here, on the top floor, because it uses
every package, the auditor's included; `portgw` finds it through the entry-point group
`port_exchange_gateway.commands`.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import signal
import sys
import tempfile
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lxml import etree

from adapters.cn_receipt import ACCEPTED_CODE, parse_receipt, render_receipt
from contracts import Agency
from crypto import Certificate, SM2PrivateKey, key_name
from gateway.clock import utc_now
from gateway.deliveries.envelopes import ENVELOPE_ENCODING_PREFIX, OpenedEnvelope, open_envelope
from gateway.home.config import GatewayConfig
from gateway.home.create import (
    DEMO_AGENCIES,
    DEMO_CONTRACTS,
    WARNING_AGENCIES,
    WARNING_CONTRACTS,
    WARNING_LEVEL_OWNERS,
    ContractSpec,
    Home,
    add_console_token,
    create_home,
)
from gateway.home.eport_home import DxpPeer, EportParties, add_eport_parties, openssl_available
from gateway.ingress.client import submit
from gateway.ingress.http_api import start_http
from gateway.kafka.local_broker import LocalBroker, LocalBrokerNote
from gateway.kafka.names import Topics
from gateway.kafka.wire import Broker, read_topics
from gateway.observe.metrics import GatewayMetrics
from gateway.parts import GatewayParts
from gateway.publish.dxp_egress import DxpSigner
from gateway.receipts.receipt import Receipt
from gateway.service import Gateway, Serving
from gateway.warnings.scenario import FORMAT_ID as WARNING_FORMAT
from gateway.warnings.scenario import Step, full_lifecycle
from message_formats import AvroSchemas, SafeXmlParser
from message_formats.dxp import DxpEnvelope, DxpTransInfo, format_creat_time
from replay.verify import describe, verify_kafka


@dataclass(frozen=True, slots=True)
class DemoCase:
    label: str
    sender: str
    sample: str
    expect: str  # "accepted" or the error code expected
    tamper_after_signing: bool = False


CASES = (
    DemoCase("FAL 1 arrival of PX HARMONY", "cn.port.sh", "fal1_arrival.xml", "accepted"),
    DemoCase("FAL 1 departure of PX HARMONY", "cn.port.sh", "fal1_departure.xml", "accepted"),
    DemoCase("FAL 1 altered after signing", "cn.port.sh", "fal1_arrival.xml",
             "AUTH_SIGNATURE_INVALID", tamper_after_signing=True),
    DemoCase("FAL 1 without the ship's name", "cn.port.sh", "fal1_missing_ship_name.xml",
             "XSD_INVALID"),
    DemoCase("FAL 1 sent by border inspection", "cn.border.sh", "fal1_arrival.xml",
             "ROUTE_NO_CONTRACT"),
)


def sample(name: str) -> bytes:
    return importlib.resources.files("gateway").joinpath("demo_data", name).read_bytes()


def add_demo_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole path on a local broker and explain what happened",
        description="Starts a local broker and a gateway, creates demo agencies, keys and "
        "sharing contracts in a temporary directory, submits sample FAL 1 documents (accepted "
        "and rejected), one early warning through its lifecycle and a carrier's MT2101 sea "
        "pre-manifest in a China E-Port DxpMsg envelope (delivered to customs in an envelope, "
        "answered with an MT9999 receipt), prints what each recipient received and each error "
        "receipt, then verifies the trail. Exits 0 when everything went as expected.",
    )
    demo.add_argument("--bootstrap-servers", default="",
                      help="use this Kafka cluster instead of starting the local broker")
    demo.add_argument("--serve", action="store_true",
                      help="then keep the broker, the gateway and its console up, printing "
                      "the console's address and an operator's console token, until "
                      "interrupted (SIGINT, SIGTERM)")
    demo.set_defaults(run=lambda args: run_demo(sys.stdout,
                                                bootstrap_servers=args.bootstrap_servers,
                                                serve=args.serve))


def run_demo(out: TextIO, *, bootstrap_servers: str = "", serve: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="portgw-demo-") as tmp:
        if bootstrap_servers:
            return asyncio.run(_demo(Path(tmp), bootstrap_servers, out, serve=serve))
        with LocalBroker() as broker:
            print(f"local broker (tansu) on {broker.bootstrap_servers}", file=out)
            assert broker.pid is not None  # started
            local = LocalBrokerNote(broker.bootstrap_servers, broker.pid)
            return asyncio.run(_demo(Path(tmp), broker.bootstrap_servers, out, serve=serve,
                                     local=local))


# China E-Port: a carrier files a sea pre-manifest (MT2101) in a DxpMsg; customs takes its
# deliveries in envelopes signed eport-sm2-sm3, the carrier its receipts (MT9999) in
# envelopes signed eport-sm2-sha1, as its U-key tools sign.
CARRIER = Agency("cn.carrier.px", "PX Ocean Shipping", "carrier", "310000", "CN", "派克斯远洋运输")
EPORT_CUSTOMS = Agency("cn.customs.ysh", "Yangshan Customs", "customs", "310000", "CN",
                       "中华人民共和国洋山海关")
CUSTOMS = EPORT_CUSTOMS.id
EPORT_PEERS = (DxpPeer(CUSTOMS, "EPORTCUS2200", "eport-sm2-sm3"),
               DxpPeer(CARRIER.id, "3100900000001", "eport-sm2-sha1"))
GATEWAY_DXP_ID = "PXGW0001"
CARRIER_SERIAL, GATEWAY_SERIAL = 0x3000000000CDE6F, 0x5A000000000001
MANIFEST_TO_CUSTOMS = ContractSpec(
    id="manifest-carrier-to-customs", provider=CARRIER.id, consumers=(CUSTOMS,),
    document_types=("cn-manifest",), scope="cross-department",
    purpose="sea pre-manifests for customs risk screening before loading",
    legal_basis="海关总署公告2010年第70号 (进出境运输工具舱单管理)",
    extra='max_classification = "important"\ndelivery_format = "cn-manifest-xml"\n')
EPORT_SAMPLE = "cn_mt2101_pre_manifest.xml"

AGENCIES = (*DEMO_AGENCIES, *WARNING_AGENCIES, EPORT_CUSTOMS, CARRIER)
WARNING_ID = "SH-2026-0042"


async def _demo(workdir: Path, bootstrap_servers: str, out: TextIO, *, serve: bool = False,
                local: LocalBrokerNote | None = None) -> int:
    home = create_home(workdir / "home", agencies=AGENCIES,
                       contracts=(*DEMO_CONTRACTS, *WARNING_CONTRACTS, MANIFEST_TO_CUSTOMS),
                       seal_interval_ms=200, warning_level_owners=WARNING_LEVEL_OWNERS)
    print(f"gateway home with agencies, keys and contracts: {home.path}", file=out)
    eport = add_eport_parties(home.path, carrier=CARRIER.id, carrier_serial=CARRIER_SERIAL,
                              gateway_serial=GATEWAY_SERIAL, sender_id=GATEWAY_DXP_ID,
                              peers=EPORT_PEERS) if openssl_available() else None
    config = GatewayConfig.load(home.config_file)
    parts = GatewayParts.load(config)
    receipts: list[Receipt] = []
    steps = full_lifecycle(WARNING_ID)
    step_receipts: list[Receipt] = []
    metrics = GatewayMetrics()  # kept for the console of --serve: the demo's counts
    async with (Gateway(config, parts, bootstrap_servers, metrics=metrics) as gateway,
                gateway.serving() as serving):
        for case in CASES:
            document = sample(case.sample)
            signature = home.agency_keys[case.sender].sign(document)
            if case.tamper_after_signing:
                document = document.replace(b"</", b" </", 1)
            receipts.append(await _submitted(serving, bootstrap_servers, parts,
                                             case.sender, "fal1-xml", document, signature))
        for step in steps:
            document = step.render(parts.adapters)
            step_receipts.append(await _submitted(
                serving, bootstrap_servers, parts, step.sender, WARNING_FORMAT, document,
                home.agency_keys[step.sender].sign(document)))
        eport_receipt = None if eport is None else await _submitted(
            serving, bootstrap_servers, parts, CARRIER.id, "dxp", carrier_envelope(eport), b"")
    print_outcomes(CASES, receipts, out)
    print_lifecycle(steps, step_receipts, out)
    await print_deliveries(bootstrap_servers, parts.topics, parts.schemas, out)
    eport_ok = await print_eport(bootstrap_servers, parts, eport, eport_receipt, out)
    report = await verify_kafka(bootstrap_servers, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail)
    print("\nTrail verification (portgw replay verify):", file=out)
    print(describe(report, parts.topics.trail), file=out)
    as_expected = all(
        r.status == c.expect or r.error_code == c.expect for c, r in zip(CASES, receipts,
                                                                        strict=True)
    ) and all(r.accepted for r in step_receipts) and eport_ok
    if not as_expected:
        print("\nSome receipts were not what the demo expected.", file=out)
    if serve:
        await serve_demo(Gateway(config, parts, bootstrap_servers, metrics=metrics), home,
                         local, out)
    return 0 if as_expected and report.ok else 1


DEMO_OPERATOR = "demo-operator"


async def serve_demo(gateway: Gateway, home: Home, local: LocalBrokerNote | None,
                     out: TextIO) -> None:
    """The demo's gateway served again, with its doors and console, until SIGINT or SIGTERM;
    an operator's console token made for the demo home. With the local broker, its note is
    in the home meanwhile, so that `portgw dlq`, `replay` or `receive` given the home's
    configuration find the broker."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    token = add_console_token(home.path, "operator", DEMO_OPERATOR)
    gateway.parts.live_keyring.reload()
    http = gateway.config.http
    async with gateway:
        doors = [await start_http(gateway.http_app(), http.listen),
                 await start_http(gateway.operator_app(), http.operator_listen)]
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if local is not None:
            local.write(home.path)
        try:
            _print_served(doors[0].port, doors[1].port, gateway.bootstrap_servers, token,
                          home.config_file, out)
            await gateway.serve(stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if local is not None:
                LocalBrokerNote.remove(home.path)
            for door in doors:
                await door.close()
    print("\nstopped: the demo's gateway, console and broker are down", file=out, flush=True)


def _print_served(http_port: int, console_port: int, broker: Broker, token: str,
                  config_file: Path, out: TextIO) -> None:
    print(f"\nServing the demo until interrupted (Ctrl-C):\n"
          f"  agencies submit at http://127.0.0.1:{http_port}/v1/submissions, or on {broker}\n"
          f"  gateway configuration {config_file}\n"
          f"  console at http://127.0.0.1:{console_port}/console/\n"
          f"  console token (operator {DEMO_OPERATOR}): {token}", file=out, flush=True)


async def _submitted(serving: Serving, bootstrap_servers: str, parts: GatewayParts,
                     sender: str, format_id: str, document: bytes, signature: bytes) -> Receipt:
    """Submits as the agency would, and checks the receipt's seal: a sealing key of the
    gateway, valid at the receipt's time, signed it."""
    signed = await serving.alongside(
        submit(bootstrap_servers, sender=sender, format_id=format_id, document=document,
               signature=signature, schemas=parts.schemas, topics=parts.topics))
    signed.check(parts.keyring)
    return signed.receipt


def carrier_envelope(eport: EportParties) -> bytes:
    """The carrier's MT2101 in a DxpMsg to customs, the envelope signed eport-sm2-sm3 with
    its certificate's key (KeyName its serial, the certificate embedded)."""
    certificate = Certificate.from_pem(eport.carrier.certificate.read_bytes())
    carrier = DxpSigner(SM2PrivateKey.from_pem(eport.carrier.key.read_bytes()),
                        certificate.serial, certificate.der)
    info = DxpTransInfo(f"PXOS-{uuid.uuid4()}", CARRIER.id, (EPORT_PEERS[0].receiver_id,),
                        format_creat_time(utc_now()), "MT2101")
    return carrier.signed_envelope(DxpEnvelope(info, sample(EPORT_SAMPLE)), "eport-sm2-sm3")


async def enveloped_deliveries(bootstrap_servers: str, parts: GatewayParts, recipient: str,
                               gateway: Certificate) -> list[OpenedEnvelope]:
    """The recipient's deliveries that are DxpMsg envelopes, each read and its business
    message's signature verified with the gateway's certificate (XmlSignatureError if not)."""
    found = []
    for message in await read_topics(bootstrap_servers, [parts.topics.delivery(recipient)]):
        _, delivery = parts.schemas.decode(message.value)
        if str(delivery["payload_encoding"]).startswith(ENVELOPE_ENCODING_PREFIX):
            found.append(open_envelope(
                delivery["payload"],
                lambda hint: gateway.public_key if hint.serial == gateway.serial else None))
    return found


async def print_eport(bootstrap_servers: str, parts: GatewayParts, eport: EportParties | None,
                      receipt: Receipt | None, out: TextIO) -> bool:
    """The worked example: what the carrier sent, what customs got, the MT9999 the carrier
    got back. True when each is as expected (or when there is no openssl to make the
    certificates with: the example is then skipped)."""
    print("\nChina E-Port: a carrier's MT2101 sea pre-manifest in a DxpMsg envelope:", file=out)
    if eport is None or receipt is None:
        print("  (skipped: the openssl command line, which makes the demo's SM2 "
              "certificates, is not installed)", file=out)
        return True
    gateway = Certificate.from_pem(eport.gateway.certificate.read_bytes())
    print(f"  {CARRIER.id} sent a DxpMsg signed eport-sm2-sm3 with its certificate "
          f"{key_name(CARRIER_SERIAL)}: {receipt.status}"
          + (f", routed to {', '.join(receipt.recipients)}" if receipt.accepted
             else f" ({receipt.error_code})"), file=out)
    to_customs = await enveloped_deliveries(bootstrap_servers, parts, CUSTOMS, gateway)
    back = await enveloped_deliveries(bootstrap_servers, parts, CARRIER.id, gateway)
    for agency, verb, got in ((CUSTOMS, "received", to_customs),
                              (CARRIER.id, "got back", back)):
        for item in got:
            info = item.envelope.trans_info
            print(f"  {agency} {verb} on {parts.topics.delivery(agency)}: DxpMsg "
                  f"{info.msg_type} from {info.sender_id} to {', '.join(info.receiver_ids)}, "
                  f"CopMsgId {info.cop_msg_id}, signed {item.signature.convention.name} by "
                  f"the gateway's certificate {item.signature.hint.key_name}: verified",
                  file=out)
    receipts = [parse_receipt(item.business, SafeXmlParser()) for item in back]
    for mt9999 in receipts:
        print(f"  MT9999 {mt9999.message_id}: answers {mt9999.answered.message_type} "
              f"{mt9999.answered.message_id} (voyage {mt9999.answered.journey_id}, "
              f"vessel {mt9999.answered.transport_means_id}): code {mt9999.code}, "
              f"{mt9999.text}", file=out)
        print(_indented(render_receipt(mt9999)), file=out)
    return (receipt.accepted and len(to_customs) == 1
            and to_customs[0].envelope.trans_info.msg_type == "MT2101"
            and [r.code for r in receipts] == [ACCEPTED_CODE])


def _indented(document: bytes) -> str:
    root = SafeXmlParser().parse(document)
    etree.indent(root, space="  ")
    text = etree.tostring(root, encoding="unicode")
    return "\n".join(f"    {line}" for line in text.splitlines())


def print_lifecycle(steps: Sequence[Step], receipts: Sequence[Receipt], out: TextIO) -> None:
    print(f"\nEarly warning {WARNING_ID} (chemical leak), step by step:", file=out)
    rows = [("step", "sender", "person", "level", "status", "recipients / code")]
    for step, receipt in zip(steps, receipts, strict=True):
        actor = step.record["step"]["actor"]
        detail = (", ".join(receipt.recipients) or "(internal: recorded in the trail only)"
                  if receipt.accepted else f"{receipt.error_code}")
        rows.append((step.label, step.sender, f"{actor['name']} {actor['position']}",
                     step.record["level"], receipt.status, detail))
    _table(rows, out)


def print_outcomes(cases: Sequence[DemoCase], receipts: Sequence[Receipt], out: TextIO) -> None:
    print("\nReceipts:", file=out)
    rows = [("submission", "sender", "status", "code / recipients")]
    for case, receipt in zip(cases, receipts, strict=True):
        detail = (", ".join(receipt.recipients) if receipt.accepted
                  else f"{receipt.error_code}: {_short(receipt.error_message or '')}")
        rows.append((case.label, receipt.sender, receipt.status, detail))
    _table(rows, out)


async def print_deliveries(bootstrap_servers: str, topics: Topics, schemas: AvroSchemas,
                           out: TextIO) -> None:
    print("\nWhat each recipient received (its delivery topic):", file=out)
    rows = [("recipient", "topic", "document", "business key", "contract")]
    for agency in AGENCIES:
        topic = topics.delivery(agency.id)
        messages = await read_topics(bootstrap_servers, [topic])
        for message in messages:
            _, delivery = schemas.decode(message.value)
            rows.append((agency.id, topic, _what(delivery, schemas), delivery["business_key"],
                         f"{delivery['contract_id']} v{delivery['contract_version']}"))
        if not messages:
            rows.append((agency.id, topic, "(nothing: no contract shares with it)", "", ""))
    _table(rows, out)


def _what(delivery: dict[str, Any], schemas: AvroSchemas) -> str:
    """The document type; for a warning, also the step it was delivered for."""
    kind = str(delivery["document_type"])
    if kind != "warning" or delivery["payload_encoding"] != "avro-single-object":
        return kind
    _, record = schemas.decode(delivery["payload"])
    return f"warning: {record['step']['action'].lower()} at level {record['level']}"


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _width(text: str) -> int:
    """Columns a terminal gives the text: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(_width(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = (str(c) + " " * (w - _width(str(c))) for c, w in zip(row, widths, strict=True))
        print("  " + "  ".join(cells).rstrip(), file=out)
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths), file=out)
