"""The supervised parse worker (gateway/decide/ahead.py): it verifies the usual case and parses
every document the gateway needs parsed; a document that overruns its time or memory, or kills its
worker twice, is refused with its own code, while every other document is answered; a worker
that dies is replaced, and `ready` says when none can take work."""

from __future__ import annotations

import asyncio
import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterRegistry
from gateway.clock import utc_now
from gateway.decide.ahead import (
    ANSWER,
    CHUNK,
    GOODBYE,
    HELLO,
    NOT_VERIFIED,
    NOTHING_AHEAD,
    PARSE_MEMORY_EXCEEDED,
    PARSE_TIME_EXCEEDED,
    PARSE_WORKER_FAILED,
    PARSED,
    Ahead,
    CheckAhead,
    Checker,
    ParseUnavailable,
    decode_frame,
    encode_frame,
    item_of,
    serve,
    worker_environment,
)
from gateway.decide.pipeline import Refusal, Submission
from gateway.home.config import GatewayConfig, ParseSettings
from gateway.home.create import Home
from gateway.parts import GatewayParts
from message_formats import AvroSchemas
from tests.integration.service_support import ARRIVAL, FORMAT, PROVIDER, numbered_arrival
from tests.unit.keyring_support import (
    add_second_key,
    keyring_text,
    revoked,
    second_key_file,
    write_keyring,
)

SMALL_LIMIT = 64 * 1024
RIGGED = "tests.integration.rigged_worker"


def submission(home: Home, n: int, *, document: bytes = ARRIVAL, signature: bytes | None = None,
               sender: str = PROVIDER) -> Submission:
    if signature is None:
        signature = home.agency_keys[PROVIDER].sign(document)
    return Submission(f"s-{n}", sender, FORMAT, document, signature, utc_now())


def rigged(marker: str, n: int = 0) -> bytes:
    """A valid arrival with a marker the rigged worker acts on (a comment: no effect on the
    parse)."""
    return numbered_arrival(n).replace(b"?>", f"?><!--{marker}-->".encode(), 1)


def checker_for(home: Home, *, settings: ParseSettings | None = None,
                module: str = "gateway.decide.ahead_worker", env: dict[str, str] | None = None
                ) -> tuple[CheckAhead, GatewayParts, list[str]]:
    config = GatewayConfig.load(home.config_file, env=env or {})
    parts = GatewayParts.load(config)
    lost: list[str] = []
    return (CheckAhead(parts.live_keyring, config.limits_for, settings,
                       on_worker_lost=lost.append,
                       worker_module=module), parts, lost)


async def check_all(ahead: CheckAhead, cases: list[Submission]) -> list[Ahead]:
    await ahead.start()
    chunks = ahead.check(cases)
    return [found for chunk in chunks for found in await asyncio.wait_for(chunk, 60)]


def checked(ahead: CheckAhead, cases: list[Submission]) -> list[Ahead]:
    """What the worker found for each case; the worker stopped afterwards."""

    async def run() -> list[Ahead]:
        try:
            return await check_all(ahead, cases)
        finally:
            await ahead.close()

    return asyncio.run(run())


def test_the_worker_checks_the_usual_case_and_parses_what_it_verified(home: Home) -> None:
    ahead, parts, _ = checker_for(home, env={
        "PORTGW__LIMITS__DEFAULT__MAX_DOCUMENT_BYTES": str(SMALL_LIMIT)})
    cases = [
        submission(home, 0),
        submission(home, 1, signature=home.agency_keys[PROVIDER].sign(b"other bytes")),
        submission(home, 2, signature=b"not a signature"),
        submission(home, 3, sender="cn.nobody"),
        submission(home, 4, document=ARRIVAL + b" " * SMALL_LIMIT),
        submission(home, 5, document=b"<not-a-crew-list/>"),
        *(submission(home, n) for n in range(6, 6 + 2 * CHUNK)),
    ]

    found = checked(ahead, cases)
    newest = parts.keyring.current_key(PROVIDER, utc_now())
    parsed = parts.adapters.get(FORMAT).parse(ARRIVAL)
    assert found[0] == Ahead(newest, parsed)
    assert found[1:5] == [NOTHING_AHEAD] * 4  # the loop verifies these itself
    assert found[5].signer == newest and found[5].parsed is None
    assert found[5].refused is not None and found[5].refused.code == "XSD_INVALID"
    assert found[6:] == [Ahead(newest, parsed)] * 2 * CHUNK


def test_the_worker_is_sent_the_newest_key_of_the_keyring_in_force(home: Home) -> None:
    """A reload that revokes the sender's newest key: the next documents are sent to the
    worker with the key now in force (the worker itself holds no keyring)."""
    second = add_second_key(home)
    ahead, parts, _ = checker_for(home)
    signed_by_first = submission(home, 0)
    signed_by_second = submission(home, 1, signature=second.sign(ARRIVAL))
    newest = parts.keyring.current_key(PROVIDER, utc_now())
    assert newest.key_id == second.public_key().key_id

    async def run() -> tuple[list[Ahead], list[Ahead]]:
        try:
            before = await check_all(ahead, [signed_by_first, signed_by_second])
            write_keyring(home, revoked(keyring_text(home), second_key_file(), utc_now()))
            assert parts.live_keyring.reload()
            return before, await check_all(ahead, [submission(home, 2),
                                                   submission(home, 3, signature=second.sign(
                                                       ARRIVAL))])
        finally:
            await ahead.close()

    before, after = asyncio.run(run())
    parsed = parts.adapters.get(FORMAT).parse(ARRIVAL)
    assert before == [NOTHING_AHEAD, Ahead(newest, parsed)]
    first_entry = parts.keyring.current_key(PROVIDER, utc_now())
    assert first_entry.key_id == home.agency_keys[PROVIDER].public_key().key_id
    assert after == [Ahead(first_entry, parsed), NOTHING_AHEAD]


def test_a_document_the_loop_verified_is_parsed_by_the_worker(home: Home) -> None:
    ahead, parts, _ = checker_for(home)

    async def run() -> tuple[Ahead, Ahead]:
        await ahead.start()
        try:
            return (await ahead.parse(submission(home, 0)),
                    await ahead.parse(submission(home, 1, document=b"<a><b></a>")))
        finally:
            await ahead.close()

    good, bad = asyncio.run(run())
    assert good == Ahead(None, parts.adapters.get(FORMAT).parse(ARRIVAL))
    assert bad.refused is not None and bad.refused.code == "XML_MALFORMED"


def test_a_document_that_spins_is_refused_in_its_time_and_the_others_are_answered(
        home: Home) -> None:
    settings = ParseSettings(time_limit_ms=1500)
    ahead, _, lost = checker_for(home, settings=settings, module=RIGGED)
    cases = [submission(home, n, document=numbered_arrival(n)) for n in range(3)]
    cases.insert(1, submission(home, 9, document=rigged("spin", 9)))

    async def run() -> tuple[list[Ahead], float]:
        try:
            await ahead.start()
            await wait_until(lambda: ahead.ready)
            started = time.monotonic()
            found = await check_all(ahead, cases)
            return found, time.monotonic() - started
        finally:
            await ahead.close()

    found, took = asyncio.run(run())
    assert found[1].refused is not None and found[1].refused.code == PARSE_TIME_EXCEEDED
    assert all(f.parsed is not None for f in found[:1] + found[2:])
    assert lost == ["overran"]
    assert took < 30  # a liveness bound, not a speed figure: the spin did not hold the rest


def test_a_worker_that_waits_past_the_budget_using_no_cpu_is_not_cut_off(home: Home) -> None:
    """The budget is CPU time: a worker that a busy machine runs seldom (here: one that
    sleeps three times the budget) is no fault of the document, which is parsed."""
    ahead, _, lost = checker_for(home, settings=ParseSettings(time_limit_ms=300),
                                 module=RIGGED)
    cases = [submission(home, 0, document=rigged("wait:0.9")), submission(home, 1)]

    found = checked(ahead, cases)
    assert [f.parsed is not None for f in found] == [True, True]
    assert lost == []


def test_a_document_the_worker_waits_on_for_ever_is_refused_at_ten_times_the_budget(
        home: Home) -> None:
    ahead, _, lost = checker_for(home, settings=ParseSettings(time_limit_ms=100),
                                 module=RIGGED)
    cases = [submission(home, 0, document=rigged("wait:3600")), submission(home, 1)]

    found = checked(ahead, cases)
    assert found[0].refused is not None and found[0].refused.code == PARSE_TIME_EXCEEDED
    assert found[1].parsed is not None
    assert lost == ["overran"]


def test_a_document_that_swells_is_refused_and_its_worker_replaced(home: Home) -> None:
    # Filling 256 MB takes more than the default second on a busy machine: this test is
    # about memory, so its time budget is generous.
    ahead, _, lost = checker_for(home, settings=ParseSettings(memory_limit_mb=256,
                                                              time_limit_ms=30_000),
                                 module=RIGGED)
    cases = [submission(home, 0, document=rigged("swell")), submission(home, 1)]

    found = checked(ahead, cases)
    assert found[0].refused is not None
    assert found[0].refused == Refusal(PARSE_MEMORY_EXCEEDED, found[0].refused.message)
    assert found[1].parsed is not None
    assert lost == []  # it left by itself, after answering: not a loss


def test_a_worker_killed_while_parsing_is_replaced_and_the_document_tried_again(
        home: Home, tmp_path: Path) -> None:
    ahead, _, lost = checker_for(home, module=RIGGED)
    once = tmp_path / "crashed"
    cases = [submission(home, 0, document=rigged(f"crash-once:{once}")),
             submission(home, 1, document=rigged("crash", 1)),
             submission(home, 2, document=numbered_arrival(2))]

    found = checked(ahead, cases)
    assert found[0].parsed is not None  # the second worker parsed it
    assert found[1].refused is not None and found[1].refused.code == PARSE_WORKER_FAILED
    assert found[2].parsed is not None
    assert lost == ["died"] * 3


def test_killing_the_worker_mid_stream_answers_every_document_once(home: Home) -> None:
    """`ready` turns false while no worker runs; nothing is lost or answered twice."""
    ahead, parts, lost = checker_for(home)
    cases = [submission(home, n, document=numbered_arrival(n)) for n in range(20 * CHUNK)]

    async def run() -> tuple[list[Ahead], list[bool]]:
        try:
            await ahead.start()
            await wait_until(lambda: ahead.ready)
            first_pid = ahead.worker_pid
            assert first_pid is not None
            chunks = ahead.check(cases)
            await asyncio.wait_for(chunks[0], 60)
            os.kill(first_pid, signal.SIGKILL)
            seen = [ahead.ready]
            while not all(chunk.done() for chunk in chunks):
                seen.append(ahead.ready)
                await asyncio.sleep(0.005)
            await wait_until(lambda: ahead.ready)
            assert ahead.worker_pid != first_pid
            return [f for chunk in chunks for f in chunk.result()], seen
        finally:
            await ahead.close()

    found, seen = asyncio.run(run())
    adapter = parts.adapters.get(FORMAT)
    assert [f.parsed for f in found] == [adapter.parse(s.document) for s in cases]
    assert False in seen  # not ready while the worker was replaced
    assert lost == ["died"]


def test_a_worker_that_cannot_start_is_retried_and_never_ready(home: Home) -> None:
    ahead, _, lost = checker_for(home, module="tests.integration.no_such_worker")

    async def run() -> bool:
        try:
            await ahead.start()
            await wait_until(lambda: len(lost) >= 3)
            return ahead.ready
        finally:
            await ahead.close()

    assert asyncio.run(run()) is False
    assert set(lost) == {"died"}


def test_closing_settles_what_was_not_answered_and_what_is_asked_later(home: Home) -> None:
    ahead, _, _ = checker_for(home)

    async def run() -> list[Ahead]:
        await ahead.start()
        chunks = ahead.check([submission(home, n) for n in range(40 * CHUNK)])
        await asyncio.wait_for(ahead.close(), 30)
        with pytest.raises(ParseUnavailable):  # nothing asked after the close waits either
            await asyncio.wait_for(ahead.parse(submission(home, 0)), 5)
        return [f for chunk in await asyncio.wait_for(asyncio.gather(*chunks), 5) for f in chunk]

    found = asyncio.run(run())
    assert len(found) == 40 * CHUNK
    assert all(f == NOTHING_AHEAD or f.parsed is not None for f in found)


def test_the_worker_runs_the_gateways_code_from_any_folder_and_dies_with_its_parent(
        tmp_path: Path) -> None:
    """Started in a folder with packages named like the project's (a home folder has a
    `contracts/` folder of its own), the worker still imports the project's and says hello;
    killing its parent kills it, although its input stays open (the test holds it)."""
    for shadow in ("contracts", "adapters", "gateway"):
        (tmp_path / shadow).mkdir()
        (tmp_path / shadow / "__init__.py").write_text("raise ImportError('shadowed')\n")
    start_worker = ("import subprocess\n"
                    "from gateway.decide.ahead import worker_command\n"
                    "from gateway.home.config import ParseSettings\n"
                    "worker = subprocess.Popen(worker_command(ParseSettings()))\n"
                    "print(worker.pid, flush=True)\n"
                    "worker.wait()\n")
    parent = subprocess.Popen([sys.executable, "-P", "-c", start_worker],
                              cwd=tmp_path, env=worker_environment(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert parent.stdout is not None and parent.stdin is not None
    try:
        worker_pid = int(parent.stdout.readline())
        assert messages(parent.stdout.read(5)) == [HELLO]
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    alive = _alive(worker_pid)
    parent.stdin.close()
    assert not alive


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def wait_until(condition: object, timeout_s: float = 60.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------- the wire


def messages(stream: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(stream):
        (length,) = struct.unpack_from(">I", stream, at)
        out.append(stream[at + 4 : at + 4 + length])
        at += 4 + length
    return out


@given(st.lists(st.tuples(st.binary(max_size=80), st.binary(max_size=80),
                          st.binary(max_size=300), st.binary(max_size=20),
                          st.binary(max_size=20), st.binary(max_size=40)), max_size=20))
def test_a_request_decodes_to_the_items_encoded(items: list[tuple[bytes, ...]]) -> None:
    frame = encode_frame(items)  # type: ignore[arg-type]  # hypothesis gives tuple[bytes, ...]; the frame takes 6-tuples
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode_frame(frame[4:]) == items


def test_garbage_keys_and_signatures_get_a_no_not_an_error(home: Home) -> None:
    key = home.agency_keys[PROVIDER]
    der = key.public_key().to_der()
    checker = Checker(AdapterRegistry.default(AvroSchemas()))
    answers = [checker.check(item)[0] for item in (
        item_of(submission(home, 0), der),
        item_of(submission(home, 1, signature=b"junk"), b"junk"),
        item_of(submission(home, 2, signature=b""), der))]
    outcomes = [messages(answer)[0][1] for answer in answers]
    assert outcomes == [PARSED, NOT_VERIFIED, NOT_VERIFIED]
    assert pickle.loads(messages(answers[0])[0][2:]).business_key


def test_the_worker_says_hello_answers_each_item_and_stops_quietly_at_a_cut_frame(
        home: Home) -> None:
    item = item_of(submission(home, 0), home.agency_keys[PROVIDER].public_key().to_der())
    frame = encode_frame([item, item])
    answers = io.BytesIO()
    serve(io.BytesIO(frame + frame[: len(frame) // 2]), answers,
          Checker(AdapterRegistry.default(AvroSchemas())))
    said = messages(answers.getvalue())
    assert [m[:1] for m in said] == [HELLO, ANSWER, ANSWER]
    assert [m[1] for m in said[1:]] == [PARSED, PARSED]


def test_a_worker_grown_too_much_says_goodbye_after_its_answer(home: Home) -> None:
    item = item_of(submission(home, 0), home.agency_keys[PROVIDER].public_key().to_der())
    answers = io.BytesIO()
    serve(io.BytesIO(encode_frame([item, item])), answers,
          Checker(AdapterRegistry.default(AvroSchemas())), grown_too_much=lambda: True)
    assert [m[:1] for m in messages(answers.getvalue())] == [HELLO, ANSWER, GOODBYE]


def test_a_submission_naming_no_format_is_detected_then_checked_and_an_overrun_names_no_key(
        home: Home) -> None:
    """Sent with no format, a document comes back with the format the worker detected,
    verified by the sender's newest key and parsed; one that spins is refused in its time,
    and since the supervisor, not the worker, answered it, no key is said to have verified
    it."""
    settings = ParseSettings(time_limit_ms=1500)
    ahead, parts, _ = checker_for(home, settings=settings, module=RIGGED)
    newest = parts.live_keyring.current.current_key(PROVIDER, utc_now())
    cases = [replace(submission(home, n, document=document), format_id="")
             for n, document in enumerate((numbered_arrival(1), rigged("spin", 2)))]

    found = checked(ahead, cases)
    assert (found[0].format_id, found[0].signer, found[0].refused) == ("fal1-xml", newest, None)
    assert found[0].parsed is not None
    assert found[1].refused is not None and found[1].refused.code == PARSE_TIME_EXCEEDED
    assert (found[1].signer, found[1].format_id) == (None, None)
