"""The checks done ahead in the worker process (gateway/ahead.py): the worker verifies the
usual case and parses what it verified, leaves everything else to the event loop, and a
worker that dies only sends the work back to the loop."""

from __future__ import annotations

import asyncio
import io
import pickle

from hypothesis import given
from hypothesis import strategies as st

from adapters import AdapterRegistry, ParseResult
from gateway.ahead import (
    CHUNK,
    NOTHING_AHEAD,
    Ahead,
    CheckAhead,
    Checker,
    decode_answer,
    decode_frame,
    encode_answer,
    encode_frame,
    serve,
)
from gateway.clock import utc_now
from gateway.config import GatewayConfig
from gateway.home import Home
from gateway.pipeline import Submission
from gateway.service import GatewayParts
from message_formats import AvroSchemas
from tests.integration.service_support import ARRIVAL, FORMAT, PROVIDER

SMALL_LIMIT = 64 * 1024


def submission(home: Home, n: int, *, document: bytes = ARRIVAL, signature: bytes | None = None,
               sender: str = PROVIDER) -> Submission:
    if signature is None:
        signature = home.agency_keys[PROVIDER].sign(document)
    return Submission(f"s-{n}", sender, FORMAT, document, signature, utc_now())


def test_the_worker_checks_the_usual_case_and_leaves_the_rest_to_the_loop(home: Home) -> None:
    config = GatewayConfig.load(home.config_file, env={
        "PORTGW__LIMITS__DEFAULT__MAX_DOCUMENT_BYTES": str(SMALL_LIMIT)})
    parts = GatewayParts.load(config)
    cases = [
        submission(home, 0),
        submission(home, 1, signature=home.agency_keys[PROVIDER].sign(b"other bytes")),
        submission(home, 2, signature=b"not a signature"),
        submission(home, 3, sender="cn.nobody"),
        submission(home, 4, document=ARRIVAL + b" " * SMALL_LIMIT),
        submission(home, 5, document=b"<not-a-crew-list/>"),
        *(submission(home, n) for n in range(6, 6 + 2 * CHUNK)),
    ]
    found = asyncio.run(check_all(CheckAhead(parts.keyring, config.limits_for), cases))

    newest = parts.keyring.current_key(PROVIDER, utc_now())
    parsed = parts.adapters.get(FORMAT).parse(ARRIVAL)
    assert found[0] == Ahead(newest, parsed)
    assert found[1:5] == [NOTHING_AHEAD] * 4
    assert found[5] == Ahead(newest, None)  # verified; the loop parses it and names the error
    assert found[6:] == [Ahead(newest, parsed)] * 2 * CHUNK


async def check_all(ahead: CheckAhead, cases: list[Submission]) -> list[Ahead]:
    try:
        chunks = await ahead.check(cases)
        return [found for chunk in chunks for found in await chunk]
    finally:
        await ahead.close()


def test_a_worker_that_dies_sends_the_work_back_to_the_loop(home: Home) -> None:
    config = GatewayConfig.load(home.config_file)
    parts = GatewayParts.load(config)
    asyncio.run(_worker_dies(CheckAhead(parts.keyring, config.limits_for), home))


async def _worker_dies(ahead: CheckAhead, home: Home) -> None:
    try:
        first = await ahead.check([submission(home, 0)])
        assert (await first[0])[0].signer is not None
        assert ahead._worker is not None
        ahead._worker.kill()
        await ahead._worker.wait()
        await asyncio.sleep(0.1)
        later = await ahead.check([submission(home, n) for n in range(3)])
        assert [found for chunk in later for found in await chunk] == [NOTHING_AHEAD] * 3
    finally:
        await ahead.close()


def test_closing_with_many_answers_unread_stops_the_worker_and_settles_every_chunk(
    home: Home,
) -> None:
    """A gateway told to stop under a backlog has sent the worker more than the pipes hold;
    closing must not wait for ever on a worker blocked writing its answers."""
    config = GatewayConfig.load(home.config_file)
    parts = GatewayParts.load(config)
    asyncio.run(_close_under_backlog(CheckAhead(parts.keyring, config.limits_for), home))


async def _close_under_backlog(ahead: CheckAhead, home: Home) -> None:
    chunks = await ahead.check([submission(home, n) for n in range(40 * CHUNK)])
    await asyncio.wait_for(ahead.close(), 30)
    assert all(chunk.done() for chunk in chunks) or await asyncio.wait_for(
        asyncio.gather(*chunks), 5)


@given(st.lists(st.tuples(st.binary(max_size=80), st.binary(max_size=80),
                          st.binary(max_size=300), st.binary(max_size=20)), max_size=20))
def test_a_request_decodes_to_the_items_encoded(items: list[tuple[bytes, ...]]) -> None:
    frame = encode_frame(items)  # type: ignore[arg-type]
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode_frame(frame[4:]) == items


@given(st.lists(st.tuples(st.booleans(), st.none() | st.builds(
    ParseResult, record=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    business_key=st.text(max_size=10), document_version=st.integers(1, 99))), max_size=10))
def test_an_answer_decodes_to_the_results_encoded(
    results: list[tuple[bool, ParseResult | None]]
) -> None:
    frame = encode_answer([(v, b"" if p is None else pickle.dumps(p)) for v, p in results])
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode_answer(frame[4:], len(results)) == results


def test_garbage_keys_and_signatures_get_a_no_not_an_error(home: Home) -> None:
    key = home.agency_keys[PROVIDER]
    good = (key.public_key().to_der(), key.sign(ARRIVAL), ARRIVAL, FORMAT.encode())
    checker = Checker(AdapterRegistry.default(AvroSchemas()))
    answer = checker.answer([good, (b"junk", b"junk", ARRIVAL, FORMAT.encode()),
                             (good[0], b"", ARRIVAL, FORMAT.encode())])
    results = decode_answer(answer[4:], 3)
    assert [verified for verified, _ in results] == [True, False, False]
    assert results[0][1] is not None and results[0][1].business_key


def test_the_worker_answers_whole_frames_and_stops_quietly_at_a_cut_one(home: Home) -> None:
    key = home.agency_keys[PROVIDER]
    item = (key.public_key().to_der(), key.sign(ARRIVAL), ARRIVAL, FORMAT.encode())
    frame = encode_frame([item])
    answers = io.BytesIO()
    serve(io.BytesIO(frame + frame[: len(frame) // 2]), answers,
          Checker(AdapterRegistry.default(AvroSchemas())))
    answer = answers.getvalue()
    assert int.from_bytes(answer[:4], "big") == len(answer) - 4  # one answer, whole
    assert [verified for verified, _ in decode_answer(answer[4:], 1)] == [True]
