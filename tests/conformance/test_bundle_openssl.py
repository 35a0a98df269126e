"""An evidence bundle checked with stock OpenSSL 3, running exactly the commands its README
gives (parsed out of the README, so the README is what is tested)."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from crypto import KeyEntry, Keyring, SM2PrivateKey, sm3_hex
from gateway.home.config import TrailSettings
from gateway.kafka.names import H_SIGNATURE, StoredMessage, Topics
from gateway.trail.writer import TrailCodec, TrailWriter
from message_formats import AvroSchemas
from replay.bundle import Bundle, build_bundle, read_bundle_files
from tests.unit.trail_support import MemoryTopic

TOPICS = Topics()  # the production names, no prefix
SCHEMAS = AvroSchemas()
GATEWAY_KEY = SM2PrivateKey.generate()
SENDER_KEY = SM2PrivateKey.generate()
SENDER = "cn.port.sh"
KEY = "BL-OPENSSL-1"
VERIFIED = b"Signature Verified Successfully"


@cache
def openssl_with_sm2() -> str | None:
    found = shutil.which("openssl")
    if found is None:
        return None
    probe = subprocess.run([found, "genpkey", "-algorithm", "SM2"], capture_output=True,
                           check=False)
    return found if probe.returncode == 0 else None


pytestmark = pytest.mark.skipif(openssl_with_sm2() is None,
                                reason="no openssl command line with SM2 on PATH")


def exported() -> Bundle:
    """One signed document, received, accepted and delivered, sealed in two seals."""
    trail = MemoryTopic()
    writer = TrailWriter(topics=TOPICS, producer=trail, codec=TrailCodec(SCHEMAS), key=GATEWAY_KEY,
                         partition=0, settings=TrailSettings(seal_every=2))
    document = b"<Manifest key='BL-OPENSSL-1'>\xe6\xb8\xaf</Manifest>"
    event = b"canonical event bytes"
    ingress = StoredMessage(TOPICS.ingress, 0, 7, None, document,
                            ((H_SIGNATURE, SENDER_KEY.sign(document)),), 0)
    canonical = StoredMessage("px.canonical.CustomsCargoManifest.v1", 0, 3, None, event, (), 0)
    base: dict[str, Any] = {"submission_id": "s1", "event_id": "e1", "sender": SENDER,
                            "format_id": "manifest-xml", "digest_sm3": sm3_hex(document)}
    parsed = {**base, "business_key": KEY, "document_version": 1,
              "signature_key_id": SENDER_KEY.public_key().key_id}

    def ref(message: StoredMessage) -> dict[str, Any]:
        return {"ref_topic": message.topic, "ref_partition": message.partition,
                "ref_offset": message.offset, "ref_digest": sm3_hex(message.value)}

    async def run() -> None:
        await writer.append(**base, kind="RECEIVED", reason="received", **ref(ingress))
        await writer.append(**parsed, kind="ACCEPTED", reason="routed", **ref(canonical))
        await writer.append(**parsed, kind="DELIVERED", recipient="cn.customs",
                            contract_id="C-1", contract_version=1, reason="shared")
        await writer.seal()

    asyncio.run(run())
    referenced = {(m.topic, m.partition, m.offset): m for m in (ingress, canonical)}
    ring = Keyring([
        KeyEntry("px.gateway", GATEWAY_KEY.public_key(), valid_from=datetime(2026, 1, 1,
                                                                             tzinfo=UTC)),
        KeyEntry(SENDER, SENDER_KEY.public_key()),
    ])
    return build_bundle(trail.messages, referenced, SCHEMAS, ring, KEY)


@pytest.fixture()
def unzipped(tmp_path: Path) -> Path:
    """The bundle written as a zip, read back safely and laid out as an auditor unzips it."""
    path = tmp_path / "bundle.zip"
    exported().write(path)
    root = tmp_path / "bundle"
    for name, data in read_bundle_files(path).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def readme_command(root: Path, prefix: str, names: str) -> str:
    """The README's command line starting with `prefix` that names `names`."""
    lines = [line for line in (root / "README.md").read_text().splitlines()
             if line.startswith(prefix) and names in line]
    assert len(lines) == 1, (prefix, names, lines)
    return lines[0].split("   # ")[0]


def run(root: Path, command: str) -> subprocess.CompletedProcess[bytes]:
    argv = shlex.split(command)
    assert argv[0] == "openssl"
    return subprocess.run([openssl_with_sm2() or "openssl", *argv[1:]], cwd=root,
                          capture_output=True, check=False)


def manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text())


def test_openssl_verifies_every_seal_as_the_readme_says(unzipped: Path) -> None:
    seals = manifest(unzipped)["seals"]
    assert len(seals) == 2
    for seal in seals:
        command = readme_command(unzipped, "openssl pkeyutl -verify", f"-in {seal['body']} ")
        result = run(unzipped, command)
        assert result.returncode == 0, result.stderr
        assert VERIFIED in result.stdout


def test_openssl_refuses_a_seal_body_with_one_flipped_byte(unzipped: Path) -> None:
    seal = manifest(unzipped)["seals"][0]
    command = readme_command(unzipped, "openssl pkeyutl -verify", f"-in {seal['body']} ")
    body = unzipped / seal["body"]
    data = bytearray(body.read_bytes())
    data[len(data) // 2] ^= 0x01
    body.write_bytes(bytes(data))
    result = run(unzipped, command)
    assert result.returncode != 0
    assert VERIFIED not in result.stdout


def test_openssl_verifies_the_senders_signature_over_the_original(unzipped: Path) -> None:
    document = manifest(unzipped)["documents"][0]
    command = readme_command(unzipped, "openssl pkeyutl -verify", f"-in {document['original']} ")
    result = run(unzipped, command)
    assert result.returncode == 0, result.stderr
    assert VERIFIED in result.stdout
    (unzipped / document["original"]).write_bytes(b"<Manifest/>")
    assert run(unzipped, command).returncode != 0


def test_openssl_recomputes_each_record_hash_from_its_entry(unzipped: Path) -> None:
    for record in manifest(unzipped)["records"]:
        command = readme_command(unzipped, "openssl dgst -sm3", f" {record['entry']}")
        result = run(unzipped, command)
        assert result.returncode == 0, result.stderr
        _, value = SCHEMAS.decode((unzipped / record["record"]).read_bytes())
        assert result.stdout.split()[0].decode() == value["hash"]


def test_openssl_recomputes_each_key_id(unzipped: Path) -> None:
    for key in manifest(unzipped)["keys"]:
        command = readme_command(unzipped, "openssl pkey -pubin", key["file"])
        assert command.count("|") == 1 and command.startswith("openssl ")
        first, second = (shlex.split(part) for part in command.split("|"))
        assert second[0] == "openssl"
        der = run(unzipped, shlex.join(first))
        assert der.returncode == 0, der.stderr
        digest = subprocess.run([openssl_with_sm2() or "openssl", *second[1:]], input=der.stdout,
                                capture_output=True, check=False)
        assert digest.stdout.split()[0].decode() == key["key_id"]
