"""The `portgw` command as a person or an agency system runs it, against a real broker: `serve`,
`demo` and a start-up failure as real processes, the other commands through `main` in this
process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from gateway.home.create import Home
from gateway.kafka.local_broker import LOCAL_BROKER_FILE, LocalBroker
from gateway.kafka.names import Topics
from gateway.kafka.wire import read_topics
from gateway.trail.writer import RECORD_SCHEMA
from message_formats import AvroSchemas
from tests.integration.support import FAL1_SAMPLES, portgw

ARRIVAL = FAL1_SAMPLES / "valid_arrival.xml"


def portgw_process(*args: str | Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`portgw ARGS` as a process of its own, through the module's entry point."""
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def serve_and_submit(home: Home, bootstrap: str, tmp_path: Path) -> list[dict[str, Any]]:
    """Runs `portgw serve` and submits one good and one badly signed document."""
    common: list[str | Path] = ["--config", home.config_file, "--bootstrap-servers", bootstrap]
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve",
                               *map(str, common)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        good = portgw("submit", ARRIVAL, "--sender", "cn.port.sh",
                      "--key", home.path / "keys" / "cn.port.sh.key", *common)
        assert good.returncode == 0, good.stderr
        bad_signature = tmp_path / "bad.sig"
        bad_signature.write_bytes(home.agency_keys["cn.port.sh"].sign(b"some other bytes"))
        bad = portgw("submit", ARRIVAL, "--sender", "cn.port.sh", "--signature", bad_signature,
                     *common)
        assert bad.returncode == 1, bad.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, server_err = server.communicate(timeout=30)
    assert server.returncode == 0, server_err
    return [json.loads(good.stdout)["receipt"], json.loads(bad.stdout)["receipt"]]


def test_serve_submit_and_verify_from_the_command_line(
    broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap_servers
    good, bad = serve_and_submit(home, bootstrap, tmp_path)
    assert good["status"] == "accepted"
    assert sorted(good["recipients"]) == ["cn.customs.sh", "cn.msa.sh"]
    assert bad["status"] == "rejected" and bad["error_code"] == "AUTH_SIGNATURE_INVALID"

    verified = portgw("replay", "verify", "--config", home.config_file,
                      "--bootstrap-servers", bootstrap)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # RECEIVED for both, ACCEPTED and two DELIVERED for one, REJECTED for the other.
    assert "6 records" in verified.stdout
    assert "OK:" in verified.stdout

    archived = portgw("replay", "verify", "--config", home.config_file, "--source", "archive")
    assert archived.returncode == 0, archived.stdout + archived.stderr
    assert "6 records" in archived.stdout

    key = good["business_key"]
    traced = portgw("replay", "trace", key, "--config", home.config_file,
                    "--bootstrap-servers", bootstrap)
    assert traced.returncode == 0, traced.stderr
    assert "DELIVERED" in traced.stdout and "cn.customs.sh" in traced.stdout

    bundle = tmp_path / "bundle.zip"
    exported = portgw("replay", "export", key, "--out", bundle, "--config", home.config_file,
                      "--bootstrap-servers", bootstrap)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    checked = portgw("replay", "check-bundle", bundle, "--keyring", home.path / "keyring.toml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def copy_trail_altering(bootstrap: str, topics: Topics, tampered: str, seq: int) -> None:
    """What someone with write access to the broker could do: rewrite the trail with one
    record changed (its stored hash kept, as the content alone was edited)."""
    schemas = AvroSchemas()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for message in await read_topics(bootstrap, [topics.trail]):
            name, value = schemas.decode(message.value)
            if name == RECORD_SCHEMA and value["entry"]["seq"] == seq:
                value["entry"]["recipient"] = "cn.border.sh"
                message_value = schemas.encode(name, value)
            else:
                message_value = message.value
            await producer.send_and_wait(tampered, message_value, key=message.key,
                                         partition=message.partition)
    finally:
        await producer.stop()


def test_replay_verify_names_the_record_that_was_altered(
    broker: LocalBroker, home: Home, topics: Topics, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap_servers
    tampered = f"{topics.prefix}px.trail.tampered.v1"
    serve_and_submit(home, bootstrap, tmp_path)
    asyncio.run(copy_trail_altering(bootstrap, topics, tampered, seq=1))

    result = portgw("replay", "verify", "--config", home.config_file,
                    "--bootstrap-servers", bootstrap, "--trail-topic", tampered)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert "seq 1: record altered" in result.stdout


def test_demo_shows_recipients_receipts_and_a_verified_trail() -> None:
    result = portgw_process("demo", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "px.deliver.cn.customs.sh.v1" in out
    assert "AUTH_SIGNATURE_INVALID" in out and "XSD_INVALID" in out
    assert "ROUTE_NO_CONTRACT" in out
    assert "OK: chains, seal signatures" in out
    assert "DxpMsg MT2101 from PXGW0001 to EPORTCUS2200" in out
    assert "DxpMsg MT9999 from PXGW0001 to 3100900000001" in out
    assert "code 01, ACCEPTED" in out


def test_every_command_explains_itself() -> None:
    for command in (["demo"], ["serve"], ["submit"], ["replay", "verify"], ["broker"],
                    ["keys", "generate"], ["keys", "sign"], ["keys", "verify"], ["keys", "show"]):
        result = portgw(*command, "--help")
        assert result.returncode == 0
        assert len(result.stdout.splitlines()) > 3, command


def test_a_missing_key_file_is_a_clear_error_not_a_traceback(home: Home) -> None:
    (home.path / "gateway.key").unlink()
    result = portgw_process("serve", "--config", home.config_file,
                            "--bootstrap-servers", "127.0.0.1:1")
    assert result.returncode == 2
    assert "CONFIG_FILE_MISSING" in result.stderr and "gateway.key" in result.stderr
    assert "Traceback" not in result.stderr


def test_operator_tools_find_the_local_broker_that_serve_started(home: Home) -> None:
    """`portgw serve` with no broker configured starts one on a free port; the operator's
    tools run against the same home find it without being told, and stop finding it once the
    gateway is gone."""
    common: list[str | Path] = ["--config", home.config_file]
    note = home.path / LOCAL_BROKER_FILE
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve",
                               *map(str, common)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not note.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert note.exists(), "serve wrote no note of its local broker"
        submitted = portgw("submit", ARRIVAL, "--sender", "cn.port.sh",
                           "--key", home.path / "keys" / "cn.port.sh.key", *common)
        assert submitted.returncode == 0, submitted.stderr
        assert "using the local broker 127.0.0.1:" in submitted.stderr
        verified = portgw("replay", "verify", *common)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "OK:" in verified.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        _, server_err = server.communicate(timeout=30)
    assert server.returncode == 0, server_err
    assert not note.exists()

    # What a gateway that was killed leaves behind: a note naming a process that has ended.
    note.write_text(json.dumps({"bootstrap_servers": "127.0.0.1:9", "pid": _ended_pid()}))
    refused = portgw("replay", "verify", *common)
    assert refused.returncode != 0
    assert "CONFIG_NO_BROKER" in refused.stdout + refused.stderr


def _ended_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
