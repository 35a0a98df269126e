"""`portgw dlq list|show|retry` against a real broker holding dead letters."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crypto import SM2PrivateKey, sm3_hex
from gateway.cli.dlq import main
from gateway.home.create import Home
from gateway.ingress.client import submit
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import (
    H_EVENT_ID,
    H_FORMAT,
    H_RETRY_OF,
    H_SENDER,
    H_SIGNATURE,
    H_SUBMISSION_ID,
    StoredMessage,
    Topics,
)
from gateway.kafka.wire import ensure_topics, new_producer, read_topics
from gateway.publish.plan import DEAD_LETTER_SCHEMA
from gateway.receipts.receipt import Receipt, SignedReceipt
from gateway.service import Gateway
from message_formats import AvroSchemas
from tests.integration.support import FAL1_SAMPLES, gateway_parts

ARRIVAL = (FAL1_SAMPLES / "valid_arrival.xml").read_bytes()
NO_SHIP_NAME = (FAL1_SAMPLES / "missing_ship_name.xml").read_bytes()
DEPARTURE = (FAL1_SAMPLES / "valid_departure.xml").read_bytes()
XSD_MESSAGE = ("Reason: The content of element 'ship' is not complete. Tag 'name' expected. "
               "Path: /GeneralDeclaration/ship")


@dataclass(frozen=True, slots=True)
class Letter:
    partition: int
    submission_id: str
    event_id: str
    sender: str
    error_code: str
    error_message: str
    original: bytes
    received_at: datetime
    error_line: int | None = None


def letters() -> list[Letter]:
    """Three refusals of the kinds the gateway writes; their places are 0:0, 0:1 and 1:0."""
    return [
        Letter(0, "sub-1", "0193a1b2-0000-7000-8000-000000000001", "cn.port.sh", "XSD_INVALID",
               XSD_MESSAGE, NO_SHIP_NAME, datetime(2026, 5, 1, 8, 0, tzinfo=UTC), 7),
        Letter(0, "sub-2", "0193a1b2-0000-7000-8000-000000000002", "cn.border.sh",
               "ROUTE_NO_CONTRACT", "no contract lets cn.border.sh share fal1", ARRIVAL,
               datetime(2026, 5, 2, 9, 30, tzinfo=UTC)),
        Letter(1, "sub-3", "0193a1b2-0000-7000-8000-000000000003", "cn.port.sh",
               "AUTH_SIGNATURE_INVALID", "no key of 'cn.port.sh' verifies the signature",
               DEPARTURE, datetime(2026, 5, 3, 10, 15, tzinfo=UTC)),
    ]


def signature_of(letter: Letter) -> bytes:
    return SM2PrivateKey.generate().sign(letter.original)


async def write_dead_letters(bootstrap: str, topics: Topics, items: Sequence[Letter]
                             ) -> list[bytes]:
    """Produces the dead letters as gateway.service does; returns their signatures."""
    schemas = AvroSchemas()
    await ensure_topics(bootstrap, {topics.dlq: 2})
    producer = new_producer(bootstrap)
    signatures = []
    await producer.start()
    try:
        for item in items:
            signature = signature_of(item)
            signatures.append(signature)
            value = schemas.encode(DEAD_LETTER_SCHEMA, {
                "submission_id": item.submission_id, "event_id": item.event_id,
                "sender": item.sender, "format_id": "fal1-xml",
                "received_at": item.received_at, "error_code": item.error_code,
                "error_message": item.error_message, "error_line": item.error_line,
                "original": item.original, "signature": signature,
            })
            await producer.send_and_wait(
                topics.dlq, value, key=item.sender.encode(), partition=item.partition,
                headers=[(H_EVENT_ID, item.event_id.encode()), (H_SENDER, item.sender.encode())])
    finally:
        await producer.stop()
    return signatures


def dlq(*args: str | Path) -> int:
    return main(["dlq", *map(str, args)])


def ingress(bootstrap: str, topics: Topics) -> list[StoredMessage]:
    return asyncio.run(read_topics(bootstrap, [topics.ingress]))


@pytest.fixture
def stocked(broker: LocalBroker, topics: Topics) -> tuple[str, list[bytes]]:
    bootstrap = broker.bootstrap_servers
    return bootstrap, asyncio.run(write_dead_letters(bootstrap, topics, letters()))


def test_list_prints_one_line_each_and_filters(
    stocked: tuple[str, list[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap, _ = stocked
    assert dlq("list", "--bootstrap-servers", bootstrap) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].split("  ")[:5] == ["0:0", "2026-05-01T08:00:00.000Z", "cn.port.sh",
                                        "fal1-xml", "XSD_INVALID"]
    assert lines[0].endswith(f"  {len(NO_SHIP_NAME)} B")
    assert "…" in lines[0] and "Path:" not in lines[0]  # the long message is shortened
    assert [line.split()[0] for line in lines] == ["0:0", "0:1", "1:0"]

    assert dlq("list", "--sender", "cn.port.sh", "--bootstrap-servers", bootstrap) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["0:0", "1:0"]
    assert dlq("list", "--code", "ROUTE_NO_CONTRACT", "--bootstrap-servers", bootstrap) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["0:1"]
    assert dlq("list", "--since", "2026-05-02T00:00:00+08:00", "--json",
               "--bootstrap-servers", bootstrap) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["location"] for r in records] == ["0:1", "1:0"]
    assert records[0]["error_message"] == "no contract lets cn.border.sh share fal1"
    assert records[0]["size"] == len(ARRIVAL)
    assert records[0]["digest_sm3"] == sm3_hex(ARRIVAL)
    assert records[1]["received_at"] == "2026-05-03T10:15:00.000Z"
    assert "original" not in records[0] and "signature" not in records[0]


def test_show_prints_every_field_and_writes_the_original_exactly(
    stocked: tuple[str, list[bytes]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    topics: Topics
) -> None:
    bootstrap, signatures = stocked
    out = tmp_path / "original.xml"
    assert dlq("show", "0:0", "--out", out, "--bootstrap-servers", bootstrap) == 0
    shown = capsys.readouterr().out
    assert out.read_bytes() == NO_SHIP_NAME
    first = letters()[0]
    for line in (
        f"location: {topics.dlq}:0:0",
        f"error: XSD_INVALID (line 7): {XSD_MESSAGE}",
        "submission id: sub-1",
        f"event id: {first.event_id}",
        "sender: cn.port.sh",
        "format: fal1-xml",
        "received at: 2026-05-01T08:00:00.000Z",
        f"size: {len(NO_SHIP_NAME)} bytes",
        f"digest (SM3): {sm3_hex(NO_SHIP_NAME)}",
        f"signature (base64): {base64.b64encode(signatures[0]).decode()}",
    ):
        assert line in shown.splitlines()

    assert dlq("show", f"{topics.dlq}:1:0", "--bootstrap-servers", bootstrap) == 0
    assert "error: AUTH_SIGNATURE_INVALID: no key" in capsys.readouterr().out


def test_show_writes_the_original_readable_by_its_owner_alone(
    stocked: tuple[str, list[bytes]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The original is a crew list or the like: --out creates it with mode 0600 whatever the
    umask, and a file already there (0644) is replaced by one of mode 0600."""
    bootstrap, _ = stocked
    directory = tmp_path / "out"
    directory.mkdir()
    fresh, existing = directory / "fresh.xml", directory / "existing.xml"
    existing.write_bytes(b"an older file")
    existing.chmod(0o644)
    umask = os.umask(0o022)
    try:
        for out in (fresh, existing):
            assert dlq("show", "0:0", "--out", out, "--bootstrap-servers", bootstrap) == 0
    finally:
        os.umask(umask)
    for out in (fresh, existing):
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert out.read_bytes() == NO_SHIP_NAME
    assert sorted(path.name for path in directory.iterdir()) == ["existing.xml", "fresh.xml"]
    assert f"written to {existing}" in capsys.readouterr().out


def test_retry_puts_the_document_back_as_its_agency_sent_it(
    stocked: tuple[str, list[bytes]], capsys: pytest.CaptureFixture[str], topics: Topics
) -> None:
    bootstrap, signatures = stocked
    assert dlq("retry", "0:1", "--bootstrap-servers", bootstrap) == 0
    [printed] = capsys.readouterr().out.splitlines()
    [message] = ingress(bootstrap, topics)
    assert message.value == ARRIVAL
    assert message.key == b"cn.border.sh"
    headers = dict(message.headers)
    new_id = headers[H_SUBMISSION_ID].decode()
    assert new_id.startswith("retry-sub-2-") and len(new_id) == len("retry-sub-2-") + 8
    assert headers[H_SENDER] == b"cn.border.sh"
    assert headers[H_FORMAT] == b"fal1-xml"
    assert headers[H_SIGNATURE] == signatures[1]
    assert headers[H_RETRY_OF] == f"{topics.dlq}:0:1".encode()
    assert printed.startswith(f"0:1 -> {topics.ingress}:{message.partition}:{message.offset} "
                              f"as {new_id} ")


def test_retry_by_code_leaves_out_what_was_already_retried(
    stocked: tuple[str, list[bytes]], capsys: pytest.CaptureFixture[str], topics: Topics
) -> None:
    bootstrap, _ = stocked
    assert dlq("retry", "--code", "XSD_INVALID", "--dry-run", "--bootstrap-servers",
               bootstrap) == 0
    assert capsys.readouterr().out.startswith("0:0 -> (dry run) as retry-sub-1-")
    assert ingress(bootstrap, topics) == []

    assert dlq("retry", "--code", "AUTH_SIGNATURE_INVALID", "--sender", "cn.port.sh",
               "--bootstrap-servers", bootstrap) == 0
    assert [dict(m.headers)[H_RETRY_OF] for m in ingress(bootstrap, topics)] == [
        f"{topics.dlq}:1:0".encode()]
    capsys.readouterr()

    assert dlq("retry", "--code", "AUTH_SIGNATURE_INVALID", "--bootstrap-servers",
               bootstrap) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "left out 1 dead letter(s) already retried" in captured.err
    assert dlq("retry", "1:0", "--bootstrap-servers", bootstrap) == 0  # by name: again
    assert len(ingress(bootstrap, topics)) == 2


def test_missing_locations_exit_1_and_bad_ones_exit_2(
    stocked: tuple[str, list[bytes]], capsys: pytest.CaptureFixture[str], topics: Topics
) -> None:
    bootstrap, _ = stocked
    assert dlq("show", "0:9", "--bootstrap-servers", bootstrap) == 1
    assert "DLQ_NOT_FOUND: no dead letter at 0:9" in capsys.readouterr().err
    assert dlq("show", "7:0", "--bootstrap-servers", bootstrap) == 1
    assert dlq("retry", "0:0", "1:5", "0:9", "--bootstrap-servers", bootstrap) == 1
    assert f"no dead letter at 1:5, 0:9 on {topics.dlq}" in capsys.readouterr().err
    assert ingress(bootstrap, topics) == []  # all or nothing

    assert dlq("show", "zero:0", "--bootstrap-servers", bootstrap) == 2
    assert "bad location 'zero:0': expected PARTITION:OFFSET" in capsys.readouterr().err
    assert dlq("retry", "--bootstrap-servers", bootstrap) == 2
    assert "DLQ_USAGE: give either LOCATIONs or --code" in capsys.readouterr().err
    assert dlq("retry", "0:0", "--code", "XSD_INVALID", "--bootstrap-servers", bootstrap) == 2


BORDER_CONTRACT = """id = "fal1-border-to-customs"
version = 1
provider = "cn.border.sh"
consumers = ["cn.customs.sh"]
document_types = ["fal1"]
scope = "cross-department"
purpose = "arrival clearance"
legal_basis = "国际航行船舶进出中华人民共和国口岸检查办法"
valid_from = 2026-01-01T00:00:00Z
fields = ["*"]
"""


def test_a_retried_document_is_accepted_once_its_contract_exists(
    broker: LocalBroker, home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    refused, retried = asyncio.run(refuse_then_retry(home, broker.bootstrap_servers, capsys))
    assert refused.error_code == "ROUTE_NO_CONTRACT"
    assert retried.accepted, retried
    assert retried.recipients == ("cn.customs.sh",)
    assert retried.sender == "cn.border.sh"
    assert retried.digest_sm3 == sm3_hex(ARRIVAL) == refused.digest_sm3
    assert retried.event_id != refused.event_id  # a new ingress record, a new event


async def refuse_then_retry(
    home: Home, bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> tuple[Receipt, Receipt]:
    """A document no contract lets its sender share is refused; once a contract does, the
    operator retries its dead letter and the same gateway accepts it."""
    config, parts = gateway_parts(home)
    async with Gateway(config, parts, bootstrap) as gateway, gateway.serving() as serving:
        refused = await serving.alongside(submit(
            bootstrap, sender="cn.border.sh", format_id="fal1-xml", document=ARRIVAL,
            signature=home.agency_keys["cn.border.sh"].sign(ARRIVAL), schemas=parts.schemas,
            topics=parts.topics, timeout_s=20))
        contract = home.path / "contracts" / "fal1-border-to-customs.toml"
        contract.write_text(BORDER_CONTRACT, encoding="utf-8")
        assert parts.router.reload()
        capsys.readouterr()
        code = await asyncio.to_thread(dlq, "retry", "--code", "ROUTE_NO_CONTRACT",
                                       "--bootstrap-servers", bootstrap)
        assert code == 0
        new_id = capsys.readouterr().out.split(" as ")[1].split()[0]
        retried = await serving.alongside(receipt_of(bootstrap, parts.topics, new_id,
                                                     parts.schemas))
    return refused.receipt, retried


async def receipt_of(bootstrap: str, topics: Topics, submission_id: str, schemas: AvroSchemas
                     ) -> Receipt:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for message in await read_topics(bootstrap, [topics.receipt]):
            if message.key == submission_id.encode():
                return SignedReceipt.decode(schemas, message.value).receipt
    raise AssertionError(f"no receipt for {submission_id}")
