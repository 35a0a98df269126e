"""Deliveries sealed in batches verify alone, for their recipient, under a gateway sealing key;
anything else (no proof, an altered value, an agency's key, another recipient, a receipt's
seal, a header that is not the value's) is refused with its code. The batch sealer shares one
signature between what is asked for together, and hands deliveries on in order."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import BatchSeal, InclusionProof, KeyEntry, Keyring, SM2PrivateKey
from gateway.deliveries.dedup import DEDUP_VERIFIER_REQUIRED, DedupReader
from gateway.deliveries.proof import (
    DELIVERY_SCHEMA,
    H_SEAL,
    DeliveryProof,
    DeliveryRefused,
    DeliveryVerifier,
)
from gateway.errors import GatewayError
from gateway.kafka.names import H_EVENT_ID, Outbound, StoredMessage, Topics
from gateway.publish.sealing import (
    BatchSealer,
    DeliverySealer,
    ProofHeaders,
    Sealed,
    sealed_now,
)
from gateway.receipts.receipt import ACCEPTED, Receipt
from tests.unit.seal_support import AGENCY_KEY, GATEWAY_KEY, JAN, KEYRING, SCHEMAS

TOPICS = Topics()  # the production names, no prefix
RECIPIENT = "cn.customs.sh"
OTHER = "cn.msa.sh"
TOPIC = f"px.deliver.{RECIPIENT}.v1"


def delivery(number: int, *, recipient: str = RECIPIENT, payload: bytes = b"<payload/>"
             ) -> Outbound:
    """A delivery as gateway.publish.deliveries.delivery_message makes it."""
    event_id = f"0190c0de-0000-7000-8000-{number:012d}"
    value = SCHEMAS.encode(DELIVERY_SCHEMA, {
        "delivery_id": f"d-{number}", "event_id": event_id, "recipient": recipient,
        "sender": "cn.port.sh", "contract_id": "port-to-customs", "contract_version": 1,
        "document_type": "fal1", "business_key": f"GD-{number}", "document_version": 1,
        "payload_schema": "px.canonical.Fal1GeneralDeclaration",
        "payload_encoding": "avro-single-object", "payload": payload})
    return Outbound(f"px.deliver.{recipient}.v1", f"GD-{number}".encode(), value,
                    ((H_EVENT_ID, event_id.encode()),))


def on_topic(out: Outbound, offset: int = 0, *, topic: str = TOPIC) -> StoredMessage:
    return StoredMessage(topic, 0, offset, out.key, out.value, out.headers, 0)


def refusal(verifier: DeliveryVerifier, out: Outbound) -> str:
    with pytest.raises(DeliveryRefused) as info:
        verifier.check(on_topic(out))
    return info.value.code


def verifier() -> DeliveryVerifier:
    return DeliveryVerifier(KEYRING, RECIPIENT, schemas=SCHEMAS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=17), data=st.data())
def test_every_delivery_of_a_sealed_batch_verifies_alone_and_none_altered_does(
        payloads: list[bytes], data: st.DataObject) -> None:
    outs = sealed_now(GATEWAY_KEY, [delivery(n, payload=p) for n, p in enumerate(payloads)],
                      SCHEMAS)
    check = verifier()
    for number, out in enumerate(outs):
        got = check.check(on_topic(out, number))
        assert (got.payload, got.delivery_id) == (payloads[number], f"d-{number}")
        assert got.seal_key_id == GATEWAY_KEY.public_key().key_id
    victim = data.draw(st.sampled_from(outs))
    at = data.draw(st.integers(0, len(victim.value) - 1))
    flip = data.draw(st.integers(1, 255))
    altered = bytearray(victim.value)
    altered[at] ^= flip
    assert refusal(check, dataclasses.replace(victim, value=bytes(altered))) == \
        "DELIVERY_PROOF_INVALID"


@given(index=st.integers(0, 2**40), count=st.integers(1, 2**40),
       path=st.lists(st.binary(min_size=32, max_size=32), max_size=5))
def test_the_seal_header_round_trips(index: int, count: int, path: list[bytes]) -> None:
    [out] = sealed_now(GATEWAY_KEY, [delivery(1)], SCHEMAS)
    proof = DeliveryProof.decode(SCHEMAS, dict(out.headers)[H_SEAL])
    moved = dataclasses.replace(proof, proof=dataclasses.replace(
        proof.proof, index=index, count=count, path=tuple(path)),
        seal=dataclasses.replace(proof.seal, count=count))
    assert DeliveryProof.decode(SCHEMAS, moved.encode(SCHEMAS)) == moved


@given(sealed_at=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1),
                               timezones=st.just(UTC)),
       index=st.integers(0, 2**40), count=st.integers(1, 2**40),
       signature=st.binary(max_size=80), key_id=st.text(max_size=70),
       path=st.lists(st.binary(min_size=32, max_size=32), max_size=5))
def test_the_service_s_seal_header_is_the_one_a_delivery_proof_encodes(
        sealed_at: datetime, index: int, count: int, signature: bytes, key_id: str,
        path: list[bytes]) -> None:
    """The header made per delivery, with what its batch shares encoded once, is byte for
    byte what DeliveryProof.encode gives (a recipient decodes it as such)."""
    seal = BatchSeal(bytes(range(32)), count, signature, key_id)
    proof = InclusionProof(index, count, tuple(path))
    headers = ProofHeaders(SCHEMAS)
    # more of the same batch: within the same millisecond, then the next one
    for at in (sealed_at, sealed_at, sealed_at + timedelta(milliseconds=1)):
        assert headers.encode(at, Sealed(seal, proof)) == DeliveryProof(at, seal, proof).encode(
            SCHEMAS)


def test_a_delivery_without_proof_is_refused() -> None:
    assert refusal(verifier(), delivery(1)) == "DELIVERY_PROOF_MISSING"


def test_a_delivery_with_two_proofs_or_a_garbled_one_is_refused() -> None:
    [out] = sealed_now(GATEWAY_KEY, [delivery(1)], SCHEMAS)
    seal = dict(out.headers)[H_SEAL]
    twice = dataclasses.replace(out, headers=(*out.headers, (H_SEAL, seal)))
    garbled = dataclasses.replace(out, headers=(*delivery(1).headers, (H_SEAL, seal[:-3])))
    assert refusal(verifier(), twice) == "DELIVERY_PROOF_MALFORMED"
    assert refusal(verifier(), garbled) == "DELIVERY_PROOF_MALFORMED"


def test_a_delivery_sealed_with_an_agency_key_is_refused() -> None:
    [forged] = sealed_now(AGENCY_KEY, [delivery(1)], SCHEMAS)
    assert refusal(verifier(), forged) == "SEAL_KEY_NOT_SEALING"


def test_a_delivery_sealed_with_an_unknown_key_is_refused() -> None:
    [forged] = sealed_now(SM2PrivateKey.generate(), [delivery(1)], SCHEMAS)
    assert refusal(verifier(), forged) == "SEAL_KEY_UNKNOWN"


def test_a_delivery_sealed_after_its_key_was_revoked_is_refused() -> None:
    revoked = Keyring([KeyEntry("px.gateway", GATEWAY_KEY.public_key(), valid_from=JAN,
                                revoked_at=datetime.now(UTC) - timedelta(days=1))])
    [out] = sealed_now(GATEWAY_KEY, [delivery(1)], SCHEMAS)
    with pytest.raises(DeliveryRefused) as info:
        DeliveryVerifier(revoked, RECIPIENT, schemas=SCHEMAS).check(on_topic(out))
    assert info.value.code == "SEAL_KEY_REVOKED"


def test_a_delivery_sealed_for_another_recipient_is_refused() -> None:
    [theirs] = sealed_now(GATEWAY_KEY, [delivery(1, recipient=OTHER)], SCHEMAS)
    assert refusal(verifier(), theirs) == "DELIVERY_NOT_FOR_RECIPIENT"
    DeliveryVerifier(KEYRING, OTHER, schemas=SCHEMAS).check(on_topic(theirs))


def test_a_sealed_delivery_under_another_event_id_header_is_refused() -> None:
    """De-duplication goes by the header: a copy under a new event id must not pass."""
    [out] = sealed_now(GATEWAY_KEY, [delivery(1)], SCHEMAS)
    renamed = dataclasses.replace(out, headers=tuple(
        (name, b"0190c0de-0000-7000-8000-999999999999" if name == H_EVENT_ID else value)
        for name, value in out.headers))
    assert refusal(verifier(), renamed) == "DELIVERY_HEADER_MISMATCH"


def test_the_proof_of_a_receipt_sealed_in_the_same_batch_never_passes_for_a_delivery() -> None:
    """Receipts and deliveries share batches: the leaf's domain keeps them apart."""
    receipt = Receipt(submission_id="s-1", event_id="e-1", sender="cn.port.sh",
                      format_id="fal1-xml", digest_sm3="ab" * 32, status=ACCEPTED,
                      time=datetime.now(UTC), recipients=(RECIPIENT,))
    body = SCHEMAS.encode_body("px.gateway.Receipt", receipt.to_avro())

    async def seal_both() -> tuple[Any, Any]:
        sealer = BatchSealer(GATEWAY_KEY)
        return await asyncio.gather(sealer.seal(body), sealer.seal(delivery(1).value))

    receipt_seal, _ = asyncio.run(seal_both())
    proof = DeliveryProof(datetime.now(UTC), receipt_seal.seal, receipt_seal.proof)
    claimed = dataclasses.replace(delivery(1), headers=(
        *delivery(1).headers, (H_SEAL, proof.encode(SCHEMAS))))
    assert refusal(verifier(), claimed) == "DELIVERY_PROOF_INVALID"


def test_messages_asked_for_together_share_one_seal_each_with_its_own_proof() -> None:
    async def seal(messages: Sequence[bytes]) -> list[Any]:
        sealer = BatchSealer(GATEWAY_KEY, linger_ms=20)
        return list(await asyncio.gather(*(sealer.seal(m) for m in messages)))

    sealed = asyncio.run(seal([b"a", b"b", b"c"]))
    assert len({s.seal for s in sealed}) == 1
    assert [(s.proof.index, s.proof.count) for s in sealed] == [(0, 3), (1, 3), (2, 3)]


class _KeyStoreGone:
    """A sealing key whose store went away: signing fails."""

    def sign(self, *args: Any, **kwargs: Any) -> bytes:
        raise OSError("the key store is gone")


def test_a_key_that_cannot_sign_fails_each_message_of_its_batch() -> None:
    async def seal() -> list[Any]:
        sealer = BatchSealer(_KeyStoreGone())  # type: ignore[arg-type]  # a fake key store
        return list(await asyncio.gather(sealer.seal(b"a"), sealer.seal(b"b"),
                                         return_exceptions=True))

    assert [type(r) for r in asyncio.run(seal())] == [OSError, OSError]


def test_deliveries_are_sent_sealed_in_the_order_they_were_put() -> None:
    sent: list[Outbound] = []

    async def send(out: Outbound) -> asyncio.Future[Any]:
        await asyncio.sleep(0.001 * (len(sent) % 3))  # a producer that sometimes waits
        if out.key == b"GD-3":
            raise OSError("the broker is away")
        sent.append(out)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(("acked", out.key))
        return done

    async def run() -> list[Any]:
        sealer = DeliverySealer(BatchSealer(GATEWAY_KEY, linger_ms=1), SCHEMAS, send)
        waiting = []
        for number in range(8):
            waiting.append(sealer.put(delivery(number)))
            if number == 4:
                await asyncio.sleep(0.01)  # the rest go into a second batch
        return list(await asyncio.gather(*waiting, return_exceptions=True))

    results = asyncio.run(run())
    assert [out.key for out in sent] == [f"GD-{n}".encode() for n in range(8) if n != 3]
    assert isinstance(results[3], OSError)
    assert [r for n, r in enumerate(results) if n != 3] == [
        ("acked", f"GD-{n}".encode()) for n in range(8) if n != 3]
    check = verifier()
    for offset, out in enumerate(sent):
        check.check(on_topic(out, offset))


def test_a_delivery_topic_is_never_read_without_a_verifier(tmp_path: Path) -> None:
    with pytest.raises(GatewayError) as caught:
        DedupReader("127.0.0.1:9", [TOPICS.delivery(RECIPIENT)], tmp_path / "seen.sqlite")
    assert caught.value.code == DEDUP_VERIFIER_REQUIRED
    DedupReader("127.0.0.1:9", [TOPICS.delivery(RECIPIENT)], tmp_path / "seen.sqlite",
                verifier=DeliveryVerifier(KEYRING, RECIPIENT))
