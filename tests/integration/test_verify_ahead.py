"""Signatures verified ahead in the worker process (gateway/verify_ahead.py): the worker finds
the usual case, leaves everything else to the event loop, and a worker that dies only sends
the work back to the loop."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from gateway.clock import utc_now
from gateway.config import GatewayConfig
from gateway.home import Home
from gateway.pipeline import Submission
from gateway.service import GatewayParts
from gateway.verify_ahead import CHUNK, VerifyAhead, decode_frame, encode_frame, verdicts
from tests.integration.service_support import ARRIVAL, PROVIDER

SMALL_LIMIT = 64 * 1024


def submission(home: Home, n: int, *, document: bytes = ARRIVAL, signature: bytes | None = None,
               sender: str = PROVIDER) -> Submission:
    if signature is None:
        signature = home.agency_keys[PROVIDER].sign(document)
    return Submission(f"s-{n}", sender, "fal1-xml", document, signature, utc_now())


def test_the_worker_finds_good_signatures_and_leaves_the_rest_to_the_loop(home: Home) -> None:
    config = GatewayConfig.load(home.config_file, env={
        "PORTGW__LIMITS__DEFAULT__MAX_DOCUMENT_BYTES": str(SMALL_LIMIT)})
    parts = GatewayParts.load(config)
    cases = [
        submission(home, 0),
        submission(home, 1, signature=home.agency_keys[PROVIDER].sign(b"other bytes")),
        submission(home, 2, signature=b"not a signature"),
        submission(home, 3, sender="cn.nobody"),
        submission(home, 4, document=ARRIVAL + b" " * SMALL_LIMIT),
        *(submission(home, n) for n in range(5, 5 + 2 * CHUNK)),
    ]
    signers = asyncio.run(verify_all(VerifyAhead(parts.keyring, config.limits_for), cases))

    newest = parts.keyring.current_key(PROVIDER, utc_now())
    assert signers[0] == newest
    assert signers[1:5] == [None] * 4
    assert signers[5:] == [newest] * 2 * CHUNK


async def verify_all(ahead: VerifyAhead, cases: list[Submission]) -> list[object]:
    try:
        chunks = await ahead.verify(cases)
        return [signer for chunk in chunks for signer in await chunk]
    finally:
        await ahead.close()


def test_a_worker_that_dies_sends_the_work_back_to_the_loop(home: Home) -> None:
    config = GatewayConfig.load(home.config_file)
    parts = GatewayParts.load(config)
    asyncio.run(_worker_dies(VerifyAhead(parts.keyring, config.limits_for), home))


async def _worker_dies(ahead: VerifyAhead, home: Home) -> None:
    try:
        first = await ahead.verify([submission(home, 0)])
        assert (await first[0])[0] is not None
        assert ahead._worker is not None
        ahead._worker.kill()
        await ahead._worker.wait()
        await asyncio.sleep(0.1)
        later = await ahead.verify([submission(home, n) for n in range(3)])
        assert [signer for chunk in later for signer in await chunk] == [None] * 3
    finally:
        await ahead.close()


@given(st.lists(st.tuples(st.binary(max_size=80), st.binary(max_size=80),
                          st.binary(max_size=300)), max_size=20))
def test_a_frame_decodes_to_the_items_encoded(items: list[tuple[bytes, bytes, bytes]]) -> None:
    frame = encode_frame(items)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode_frame(frame[4:]) == items


def test_garbage_keys_and_signatures_get_a_no_not_an_error(home: Home) -> None:
    key = home.agency_keys[PROVIDER]
    good = (key.public_key().to_der(), key.sign(b"doc"), b"doc")
    assert verdicts([good, (b"junk", b"junk", b"doc"), (good[0], b"", b"doc")]) == b"\1\0\0"
