"""A recipient's signed acknowledgement: made and read back in its canonical wire form,
verified with the agency's ack key only, refused with a code (and a text without values) when
malformed, too large, signed by another key, for another agency, naming deliveries that
are not the ones it took, or signed outside the window the gateway takes them in; a repeat
is known by its signed statement, whatever its signature."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from crypto import KeyEntry, Keyring, KeyRole, SM2PrivateKey, sm3_hex
from gateway.deliveries.acknowledgements import (
    ACK_AGENCY_MISMATCH,
    ACK_DELIVERY_UNKNOWN,
    ACK_DIGEST_MISMATCH,
    ACK_KEY_REFUSED,
    ACK_MALFORMED,
    ACK_MAX_AGE,
    ACK_MAX_AHEAD,
    ACK_SIGNATURE_INVALID,
    ACK_STALE,
    ACK_TOO_LARGE,
    MAX_ACK_BYTES,
    MAX_TAKEN,
    Acknowledgement,
    AcknowledgementRefused,
    AcknowledgementVerifier,
    Taken,
    check_fresh,
    check_taken,
    sign_acknowledgement,
)
from gateway.deliveries.proof import Delivery

CUSTOMS = "cn.customs.sh"
BORDER = "cn.border.sh"
AT = datetime(2026, 12, 7, 8, 0, 0, 123456, tzinfo=UTC)
PAYLOAD = b"\x01payload bytes"


@pytest.fixture(scope="module")
def keys() -> dict[str, SM2PrivateKey]:
    return {name: SM2PrivateKey.generate() for name in ("customs", "border", "documents")}


@pytest.fixture(scope="module")
def keyring(keys: dict[str, SM2PrivateKey]) -> Keyring:
    return Keyring([
        KeyEntry(CUSTOMS, keys["customs"].public_key(),
                 valid_from=datetime(2026, 1, 1, tzinfo=UTC)),
        KeyEntry(BORDER, keys["border"].public_key()),
        KeyEntry(BORDER, keys["documents"].public_key(), roles=frozenset({KeyRole.DOCUMENT})),
    ])


def taken(n: int = 2) -> tuple[Taken, ...]:
    return tuple(Taken.of(f"0190-{i}", PAYLOAD + bytes([i])) for i in range(n))


def test_signed_round_trip_in_canonical_form(keys: dict[str, SM2PrivateKey],
                                             keyring: Keyring) -> None:
    ack = sign_acknowledgement(CUSTOMS, taken(), AT, keys["customs"])
    assert ack.taken_at == AT.replace(microsecond=123000)
    wire = ack.to_json()
    document = json.loads(wire)
    assert list(document) == ["agency", "signature", "taken", "taken_at"]  # sorted
    assert document["taken_at"] == "2026-12-07T08:00:00.123Z"
    assert b" " not in wire
    again = Acknowledgement.from_json(wire)
    assert again == ack
    assert again.signed_bytes() == (
        b'{"agency":"cn.customs.sh","taken":[' + b",".join(
            b'{"delivery_id":"%s","digest":"%s"}' % (t.delivery_id.encode(), t.digest.encode())
            for t in ack.taken) + b'],"taken_at":"2026-12-07T08:00:00.123Z"}')
    entry = AcknowledgementVerifier(keyring).verify(again, expected_agency=CUSTOMS)
    assert entry.key_id == keys["customs"].public_key().key_id


def refusal(verifier: AcknowledgementVerifier, ack: Acknowledgement, agency: str, *,
            at: datetime | None = None) -> str:
    with pytest.raises(AcknowledgementRefused) as info:
        verifier.verify(ack, expected_agency=agency, at=at)
    return info.value.code


def test_another_agencys_key_or_an_altered_ack_is_refused(keys: dict[str, SM2PrivateKey],
                                                           keyring: Keyring) -> None:
    verifier = AcknowledgementVerifier(keyring)
    forged = sign_acknowledgement(CUSTOMS, taken(), AT, keys["border"])
    assert refusal(verifier, forged, CUSTOMS) == ACK_SIGNATURE_INVALID
    good = sign_acknowledgement(CUSTOMS, taken(), AT, keys["customs"])
    altered = dataclasses.replace(good, taken=good.taken[:1])
    assert refusal(verifier, altered, CUSTOMS) == ACK_SIGNATURE_INVALID


def test_an_ack_for_another_agency_is_refused(keys: dict[str, SM2PrivateKey],
                                              keyring: Keyring) -> None:
    ack = sign_acknowledgement(BORDER, taken(), AT, keys["border"])
    assert refusal(AcknowledgementVerifier(keyring), ack, CUSTOMS) == ACK_AGENCY_MISMATCH


def test_only_an_ack_key_valid_now_verifies(keys: dict[str, SM2PrivateKey],
                                            keyring: Keyring) -> None:
    verifier = AcknowledgementVerifier(keyring)
    by_document_key = sign_acknowledgement(BORDER, taken(), AT, keys["documents"])
    assert refusal(verifier, by_document_key, BORDER) == ACK_SIGNATURE_INVALID
    ack = sign_acknowledgement(CUSTOMS, taken(), AT, keys["customs"])
    assert refusal(verifier, ack, CUSTOMS, at=datetime(2025, 6, 1, tzinfo=UTC)) \
        == ACK_KEY_REFUSED
    no_ack_role = Keyring([KeyEntry(BORDER, keys["documents"].public_key(),
                                    roles=frozenset({KeyRole.DOCUMENT}))])
    assert refusal(AcknowledgementVerifier(no_ack_role), by_document_key, BORDER) \
        == ACK_KEY_REFUSED


def wire(**changes: object) -> bytes:
    document: dict[str, object] = {
        "agency": CUSTOMS,
        "taken": [{"delivery_id": "0190-1", "digest": "a" * 64}],
        "taken_at": "2026-12-07T08:00:00.000Z",
        "signature": base64.b64encode(b"\x30" * 70).decode(),
    }
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


@pytest.mark.parametrize(("data", "rule"), [
    (b"\xff\xfe", "not JSON"),
    (b"[]", "exactly agency"),
    (wire(extra=1), "exactly agency"),
    (wire(signature=...), "exactly agency"),
    (wire(agency=""), "agency is"),
    (wire(agency=7), "agency is"),
    (wire(taken=[]), "taken is a list"),
    (wire(taken=[{"delivery_id": "x", "digest": "a" * 64}] * 2), "each delivery once"),
    (wire(taken=[{"delivery_id": "x y", "digest": "a" * 64}]), "taken.delivery_id"),
    (wire(taken=[{"delivery_id": "x", "digest": "A" * 64}]), "taken.digest"),
    (wire(taken=[{"delivery_id": "x"}]), "exactly delivery_id and digest"),
    (wire(taken_at="2026-12-07T08:00:00Z"), "taken_at"),
    (wire(taken_at="2026-13-07T08:00:00.000Z"), "taken_at is not a valid"),
    (wire(signature="not base64!"), "signature"),
    (wire(signature=""), "signature"),
])
def test_malformed_acks_are_refused_naming_the_rule(data: bytes, rule: str) -> None:
    with pytest.raises(AcknowledgementRefused) as info:
        Acknowledgement.from_json(data)
    assert info.value.code == ACK_MALFORMED
    assert rule in info.value.message
    assert CUSTOMS not in info.value.message


def test_bounds() -> None:
    with pytest.raises(AcknowledgementRefused) as info:
        Acknowledgement.from_json(b" " * (MAX_ACK_BYTES + 1))
    assert info.value.code == ACK_TOO_LARGE
    many = [{"delivery_id": f"d{i}", "digest": "a" * 64} for i in range(MAX_TAKEN + 1)]
    with pytest.raises(AcknowledgementRefused) as info:
        Acknowledgement.from_json(wire(taken=many))
    assert info.value.code == ACK_MALFORMED


def delivery(delivery_id: str, payload: bytes, recipient: str = CUSTOMS) -> Delivery:
    return Delivery(delivery_id=delivery_id, event_id="e", recipient=recipient, sender="s",
                    contract_id="c", contract_version=1, document_type="fal1",
                    business_key="k", document_version=1, payload_schema="x",
                    payload_encoding="avro-single-object", payload=payload,
                    seal_key_id="g", sealed_at=AT)


def test_the_deliveries_taken_must_be_those_named(keys: dict[str, SM2PrivateKey]) -> None:
    ack = sign_acknowledgement(CUSTOMS, taken(2), AT, keys["customs"])
    right = [delivery(f"0190-{i}", PAYLOAD + bytes([i])) for i in range(2)]
    check_taken(ack, right)
    cases: dict[str, list[Delivery | None]] = {
        ACK_DIGEST_MISMATCH: [right[0], delivery("0190-1", b"other payload")],
        ACK_DELIVERY_UNKNOWN: [right[0], None],
    }
    for code, found in cases.items():
        with pytest.raises(AcknowledgementRefused) as info:
            check_taken(ack, found)
        assert info.value.code == code
    wrongs: list[list[Delivery | None]] = [
        [right[1], right[0]], [right[0], delivery("0190-1", right[1].payload, BORDER)],
        [right[0]]]
    for wrong in wrongs:
        with pytest.raises(AcknowledgementRefused) as info:
            check_taken(ack, wrong)
        assert info.value.code == ACK_DELIVERY_UNKNOWN
    assert sm3_hex(right[0].payload) == ack.taken[0].digest
    assert timedelta(0) <= AT - ack.taken_at < timedelta(milliseconds=1)


def test_an_acknowledgement_is_taken_only_within_the_window_of_the_gateways_clock(
        keys: dict[str, SM2PrivateKey]) -> None:
    ack = sign_acknowledgement(CUSTOMS, taken(), AT, keys["customs"])
    at = ack.taken_at
    for now in (at, at + ACK_MAX_AGE, at - ACK_MAX_AHEAD):
        check_fresh(ack, now)
    for now in (at + ACK_MAX_AGE + timedelta(milliseconds=1),
                at - ACK_MAX_AHEAD - timedelta(milliseconds=1)):
        with pytest.raises(AcknowledgementRefused) as info:
            check_fresh(ack, now)
        assert info.value.code == ACK_STALE
        assert "2026" not in info.value.message  # the rule, never the value


def test_a_repeat_is_known_by_its_statement_not_its_signature(
        keys: dict[str, SM2PrivateKey]) -> None:
    ack = sign_acknowledgement(CUSTOMS, taken(), AT, keys["customs"])
    again = sign_acknowledgement(CUSTOMS, taken(), AT, keys["customs"])
    later = sign_acknowledgement(CUSTOMS, taken(), AT + timedelta(seconds=1), keys["customs"])
    assert again.signature != ack.signature
    assert again.statement_digest() == ack.statement_digest() == sm3_hex(ack.signed_bytes())
    assert later.statement_digest() != ack.statement_digest()
