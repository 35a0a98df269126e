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
import sys
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gateway.home.config import GatewayConfig
from gateway.home.create import (
    DEMO_AGENCIES,
    DEMO_CONTRACTS,
    WARNING_AGENCIES,
    WARNING_CONTRACTS,
    WARNING_LEVEL_OWNERS,
    create_home,
)
from gateway.ingress.client import submit
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.wire import Topics, read_topics
from gateway.parts import GatewayParts
from gateway.receipts.receipt import Receipt
from gateway.service import Gateway, Serving
from gateway.warnings.scenario import FORMAT_ID as WARNING_FORMAT
from gateway.warnings.scenario import Step, full_lifecycle
from message_formats import AvroSchemas
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
        "and rejected) and one early warning through its lifecycle, prints what each "
        "recipient received and each error receipt, then verifies the trail. Exits 0 when "
        "everything went as expected.",
    )
    demo.add_argument("--bootstrap-servers", default="",
                      help="use this Kafka cluster instead of starting the local broker")
    demo.set_defaults(run=lambda args: run_demo(sys.stdout,
                                                bootstrap_servers=args.bootstrap_servers))


def run_demo(out: TextIO, *, bootstrap_servers: str = "") -> int:
    with tempfile.TemporaryDirectory(prefix="portgw-demo-") as tmp:
        if bootstrap_servers:
            return asyncio.run(_demo(Path(tmp), bootstrap_servers, out))
        with LocalBroker() as broker:
            print(f"local broker (tansu) on {broker.bootstrap_servers}", file=out)
            return asyncio.run(_demo(Path(tmp), broker.bootstrap_servers, out))


AGENCIES = (*DEMO_AGENCIES, *WARNING_AGENCIES)
WARNING_ID = "SH-2026-0042"


async def _demo(workdir: Path, bootstrap_servers: str, out: TextIO) -> int:
    home = create_home(workdir / "home", agencies=AGENCIES,
                       contracts=(*DEMO_CONTRACTS, *WARNING_CONTRACTS), seal_interval_ms=200,
                       warning_level_owners=WARNING_LEVEL_OWNERS)
    print(f"gateway home with agencies, keys and contracts: {home.path}", file=out)
    config = GatewayConfig.load(home.config_file)
    parts = GatewayParts.load(config)
    receipts: list[Receipt] = []
    steps = full_lifecycle(WARNING_ID)
    step_receipts: list[Receipt] = []
    async with Gateway(config, parts, bootstrap_servers) as gateway, gateway.serving() as serving:
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
    print_outcomes(CASES, receipts, out)
    print_lifecycle(steps, step_receipts, out)
    await print_deliveries(bootstrap_servers, parts.topics, parts.schemas, out)
    report = await verify_kafka(bootstrap_servers, parts.schemas, parts.keyring,
                                trail_topic=parts.topics.trail)
    print("\nTrail verification (portgw replay verify):", file=out)
    print(describe(report, parts.topics.trail), file=out)
    as_expected = all(
        r.status == c.expect or r.error_code == c.expect for c, r in zip(CASES, receipts,
                                                                        strict=True)
    ) and all(r.accepted for r in step_receipts)
    if not as_expected:
        print("\nSome receipts were not what the demo expected.", file=out)
    return 0 if as_expected and report.ok else 1


async def _submitted(serving: Serving, bootstrap_servers: str, parts: GatewayParts,
                     sender: str, format_id: str, document: bytes, signature: bytes) -> Receipt:
    """Submits as the agency would, and checks the receipt's seal: a sealing key of the
    gateway, valid at the receipt's time, signed it."""
    signed = await serving.alongside(
        submit(bootstrap_servers, sender=sender, format_id=format_id, document=document,
               signature=signature, schemas=parts.schemas, topics=parts.topics))
    signed.check(parts.keyring)
    return signed.receipt


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
