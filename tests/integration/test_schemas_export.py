"""An agency with nothing of ours: the deliveries the running gateway published on the real
broker, projected and masked, decoded by a plain fastavro reader in a Python started
isolated (`-I`: no PYTHONPATH, no working directory on its path, so no module of this
project can be imported) from the schemas `portgw schemas export` wrote alone; and the one
sealed in CMS EnvelopedData for its recipient first opened by `openssl cms -decrypt` (and by
`portgw receive --key`)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts import Agency
from gateway.home.create import DEMO_AGENCIES, ContractSpec, Home, create_home
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_FINGERPRINT, StoredMessage, Topics
from gateway.kafka.wire import read_topics
from tests.integration.support import Sent, gateway_parts, portgw, submit_all
from tests.unit.sm2_ca import needs_openssl, openssl

CREW_LIST = (Path(__file__).parents[1] / "data" / "fal5" / "valid_arrival.xml").read_bytes()
MASKS = ('[masks]\n"crew[].family_name" = "pseudonym"\n"crew[].given_names" = "pseudonym"\n'
         '"crew[].date_of_birth" = "year"\n"crew[].place_of_birth" = "drop"\n'
         '"crew[].identity_document.number" = {rule = "partial", keep_start = 2, keep_end = 2}\n')
AGENCIES = (
    *DEMO_AGENCIES,
    Agency("hk.immd", "Hong Kong Immigration Department", "border", "810000", "HK",
           "香港入境事务处", envelope_format="cms"),
)
CONTRACTS = (
    ContractSpec(
        id="crew-to-msa", provider="cn.border.sh", consumers=("cn.msa.sh",),
        document_types=("fal5",), scope="cross-department", purpose="crew for port state control",
        legal_basis="海上交通安全法", fields=("ship", "crew"), extra=MASKS),
    ContractSpec(
        id="crew-to-hk", provider="cn.border.sh", consumers=("hk.immd",),
        document_types=("fal5",), scope="cross-border", purpose="joint crew screening",
        legal_basis="Mainland–HK immigration cooperation arrangement", fields=("ship", "crew"),
        extra=f'encrypt = true\nexport_assessment = "CAC-SJCJ-2026-0042"\n{MASKS}'),
)

# What an agency writes for itself: the index, the file, fastavro. Reads one single-object
# encoded value on stdin, prints its schema's name and the value as JSON.
PLAIN_READER = """
import io, json, sys
import fastavro
directory = sys.argv[1]
index = json.load(open(directory + "/index.json", encoding="utf-8"))
data = sys.stdin.buffer.read()
assert data[:2] == b"\\xc3\\x01", "not Avro single-object encoding"
entry = index["schemas"][data[2:10].hex()]
schema = fastavro.parse_schema(json.load(open(directory + "/" + entry["file"], encoding="utf-8")))
value = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema)
print(json.dumps({"name": entry["name"], "value": value}, default=repr, ensure_ascii=False))
"""


def plain_read(directory: Path, data: bytes) -> tuple[str, Any]:
    done = subprocess.run([sys.executable, "-I", "-c", PLAIN_READER, str(directory)],
                          input=data, capture_output=True, check=False, cwd=directory)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    read = json.loads(done.stdout)
    return read["name"], read["value"]


def as_json(value: Any) -> Any:
    """What the plain reader prints of a value, for comparing with what we decode."""
    return json.loads(json.dumps(value, default=repr, ensure_ascii=False))


@pytest.fixture
def crew_home(tmp_path: Path, topics: Topics) -> Home:
    return create_home(tmp_path / "home", agencies=AGENCIES, contracts=CONTRACTS,
                       seal_every=4, seal_interval_ms=100, topic_prefix=topics.prefix)


def delivered(bootstrap: str, topic: str) -> StoredMessage:
    [message] = asyncio.run(read_topics(bootstrap, [topic]))
    return message


@needs_openssl
def test_projected_deliveries_decode_with_fastavro_and_the_exported_schemas_alone(
    broker: LocalBroker, crew_home: Home, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap_servers
    [receipt] = asyncio.run(submit_all(crew_home, bootstrap,
                                       [Sent("cn.border.sh", CREW_LIST, format_id="fal5-xml")]))
    assert receipt.accepted and set(receipt.recipients) == {"cn.msa.sh", "hk.immd"}
    exported = tmp_path / "schemas"
    ran = portgw("schemas", "export", exported, "--config", crew_home.config_file)
    assert ran.returncode == 0, ran.stderr
    _, parts = gateway_parts(crew_home)

    # cn.msa.sh: the Delivery record, then its projected and masked payload.
    message = delivered(bootstrap, parts.topics.delivery("cn.msa.sh"))
    name, envelope = plain_read(exported, message.value)
    assert name == "px.gateway.Delivery"
    assert message.header(H_FINGERPRINT) == message.value[2:10].hex().encode()
    assert envelope == as_json(parts.schemas.decode(message.value)[1])
    assert envelope["payload_schema"] == "px.projected.crew_to_msa.v1.Fal5CrewList"
    payload = parts.schemas.decode(message.value)[1]["payload"]
    ours = parts.schemas.decode(payload)
    name, record = plain_read(exported, payload)
    assert (name, record) == (ours[0], as_json(ours[1]))
    assert name == "px.projected.crew_to_msa.v1.Fal5CrewList"
    assert list(record) == ["header", "ship", "crew"]
    assert record["header"]["event_id"] == receipt.event_id
    assert all(len(member["family_name"]) == 32 and "place_of_birth" not in member
               for member in record["crew"])

    # hk.immd: the payload in CMS EnvelopedData, opened by OpenSSL with the agency's key.
    message = delivered(bootstrap, parts.topics.delivery("hk.immd"))
    _, envelope = plain_read(exported, message.value)
    assert envelope["payload_encoding"] == "cms-enveloped+avro-single-object"
    sealed = parts.schemas.decode(message.value)[1]["payload"]
    (tmp_path / "hk.der").write_bytes(sealed)
    key = crew_home.path / "keys" / "hk.immd.key"
    opened = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", "hk.der",
                     "-inkey", str(key), cwd=tmp_path)
    name, record = plain_read(exported, opened)
    assert name == "px.projected.crew_to_hk.v1.Fal5CrewList"
    assert record == as_json(parts.schemas.decode(opened)[1])
    assert record["header"]["event_id"] == receipt.event_id

    # The agency's own command opens it too, and hands over what OpenSSL opened.
    received = portgw("receive", "--agency", "hk.immd", "--keyring",
                      crew_home.path / "keyring.toml", "--bootstrap-servers", bootstrap,
                      "--store", tmp_path / "store", "--key", key)
    assert received.returncode == 0, received.stderr
    [line] = [json.loads(text) for text in received.stdout.splitlines()]
    assert line["payload_opened"] is True
    assert base64.b64decode(line["payload"]) == opened

