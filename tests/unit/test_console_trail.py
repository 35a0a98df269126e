"""The console's trail index (a document's history, chains with their seals and checkpoints),
the bodies of its pages, and its jobs (`portgw replay …` as a child process)."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contracts import Contract
from contracts.masking import MaskRule
from gateway.console.history import history_body, trail_body
from gateway.console.jobs import Command, Job, Jobs
from gateway.console.markup import load_templates
from gateway.console.trail import TrailIndex
from gateway.console.words import Lang, Words
from gateway.home.create import create_home
from gateway.kafka.names import StoredMessage
from gateway.trail.writer import ENTRY_DEFAULTS, TrailCodec
from tests.unit.seal_support import SCHEMAS

CODEC = TrailCodec(SCHEMAS)
AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
KEY = "9074729:V000001:A:CNSHA"
CONTRACT = Contract("fal1-share", 3, ("cn.customs.sh",), ("fal1",), "clearance", "law",
                    AT - timedelta(days=1), None, provider="cn.port.sh",
                    fields=("ship_name", "master_name"),
                    masks=(("master_name", MaskRule("pseudonym")),))


def record(offset: int, seq: int, kind: str, event_id: str, *, chain: str = "p0",
           business_key: str | None = KEY, **fields: Any) -> StoredMessage:
    entry = {**ENTRY_DEFAULTS, "chain": chain, "seq": seq, "prev_hash": "0" * 64,
             "time": AT + timedelta(seconds=offset), "kind": kind, "submission_id": "sub-1",
             "event_id": event_id, "sender": "cn.port.sh", "format_id": "fal1-xml",
             "digest_sm3": "ab" * 32, "reason": f"{kind} by rule", "business_key": business_key,
             **fields}
    return StoredMessage("px.trail.v1", 0, offset, None,
                         CODEC.encode_record(entry, CODEC.entry_hash(entry)), (), 0)


def seal(offset: int, chain: str, seal_seq: int, first: int, last: int) -> StoredMessage:
    body = {"chain": chain, "seal_seq": seal_seq, "first_seq": first, "last_seq": last,
            "root": "00" * 32, "time": AT + timedelta(seconds=offset), "key_id": "k",
            "previous_seal": None}
    return StoredMessage("px.trail.v1", 0, offset, None, CODEC.encode_seal(body, b"sig"), (), 0)


def checkpoint(chain: str, seal_seq: int, last: int) -> StoredMessage:
    body = {"chain": chain, "seal_seq": seal_seq, "last_seq": last, "seal_hash": "00" * 32,
            "partition": 0, "offset": 0, "time": AT, "key_id": "k"}
    return StoredMessage("px.checkpoint.v1", 0, seal_seq, None,
                         CODEC.encode_checkpoint(body, b"sig"), (), 0)


def filled_index() -> TrailIndex:
    """One document's submission (received before its key was known, accepted, delivered,
    acknowledged on the chain `taken`), another document's, a seal and checkpoints."""
    index = TrailIndex(SCHEMAS)
    delivered: dict[str, Any] = {"recipient": "cn.customs.sh", "contract_id": "fal1-share",
                 "contract_version": 3}
    for message in (
            record(0, 0, "RECEIVED", "e1", business_key=None),
            record(1, 1, "ACCEPTED", "e1", document_version=1),
            record(2, 2, "DELIVERED", "e1", **delivered),
            record(3, 3, "ACCEPTED", "e2", business_key="9999999:V1:A:CNSHA"),
            seal(4, "p0", 0, 0, 3),
            record(5, 0, "TAKEN", "e1", chain="taken", **delivered),
            StoredMessage("px.trail.v1", 0, 6, None, b"not avro", (), 0)):
        index.file(message)
    index.file_checkpoint(checkpoint("taken", 2, 9))
    index.file_checkpoint(checkpoint("taken", 1, 4))  # an older one, read later: kept out
    return index


def test_a_documents_history_holds_every_record_of_its_events_and_no_other() -> None:
    history = filled_index().history(KEY)
    assert [(d.kind, d.name) for d in history] == [
        ("RECEIVED", "p0-0"), ("ACCEPTED", "p0-1"), ("DELIVERED", "p0-2"),
        ("TAKEN", "taken-0")]
    assert filled_index().history("nothing") == []


def test_chains_show_their_records_seals_and_newest_checkpoint() -> None:
    chains = {state.chain: state for state in filled_index().chains()}
    assert (chains["p0"].records, chains["p0"].last_seq, chains["p0"].seals,
            chains["p0"].sealed_to, chains["p0"].checkpoint_seal) == (4, 3, 1, 3, None)
    assert (chains["taken"].records, chains["taken"].seals, chains["taken"].checkpoint_seal,
            chains["taken"].checkpoint_to) == (1, 0, 2, 9)


def test_a_history_names_each_recipients_fields_and_masks_never_values() -> None:
    words = Words(Lang.EN)
    index = filled_index()
    body = history_body(load_templates(), words, KEY, index.history(KEY),
                        {(CONTRACT.id, CONTRACT.version): CONTRACT}, None, busy=False,
                        form_token="t")
    assert "fal1-share v3" in body and "ship_name, master_name" in body
    assert "master_name (pseudonym)" in body
    assert "not acknowledged" not in body  # the TAKEN record answers for it
    gone = history_body(load_templates(), words, KEY, index.history(KEY), {}, None,
                        busy=False, form_token="t")
    assert words("contract_gone") in gone


def test_a_verification_marks_the_chains_its_breaks_name() -> None:
    output = ("BROKEN: 1 problem(s):\n  px.trail.v1[0]@7 chain p0 seq 3: TRAIL_HASH_MISMATCH: "
              "the hash differs")
    job = Job(1, "verify", "", "ops", "t0", "t1", 1, output)
    body = trail_body(load_templates(), Words(Lang.EN), filled_index().chains(), job,
                      busy=False, form_token="t")
    assert 'data-chain="p0" data-verified="broken"' in body
    assert 'data-chain="taken" data-verified="ok"' in body
    assert "TRAIL_HASH_MISMATCH" in body


def test_a_job_runs_portgw_one_at_a_time_and_keeps_its_exit_code_and_output(
        tmp_path: Path) -> None:
    async def started() -> tuple[Job | None, Job | None, Job]:
        jobs = Jobs(Command(tmp_path / "no-such.toml", "127.0.0.1:1"))
        first, second = jobs.verify("ops"), jobs.export(KEY, "ops")
        while jobs.busy:
            await asyncio.sleep(0.05)
        last = jobs.last("verify")
        assert last is not None
        await jobs.stop()
        return first, second, last
    first, second, last = asyncio.run(asyncio.wait_for(started(), 120))
    assert first is not None and first.running
    assert second is None  # one job at a time
    assert last.exit_code not in (None, 0) and "no-such.toml" in last.output


def test_a_job_past_its_time_is_killed(tmp_path: Path) -> None:
    """A broker that takes the connection and never answers (the command would wait ~40 s
    for it): the job is stopped at its limit."""
    home = create_home(tmp_path / "home")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()

        async def run() -> Job:
            jobs = Jobs(Command(home.config_file, f"{host}:{port}"), time_s=3.0)
            assert jobs.verify("ops") is not None
            while jobs.busy:
                await asyncio.sleep(0.05)
            job = jobs.last("verify")
            assert job is not None
            return job
        job = asyncio.run(asyncio.wait_for(run(), 120))
    assert job.exit_code == -1 and "stopped after" in job.output
