"""A signed receipt verifies only under one of the gateway's sealing keys, valid at the
receipt's time: never under an agency's key, an unknown key or a key out of its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crypto import (
    BatchSeal,
    BatchSigner,
    SealKeyRefused,
    SignatureInvalid,
    SM2PrivateKey,
)
from gateway.receipts.receipt import ACCEPTED, Receipt, SignedReceipt
from tests.unit.seal_support import AGENCY_KEY, GATEWAY_KEY, JAN, KEYRING, SCHEMAS

DECIDED = datetime(2026, 3, 21, 8, 0, tzinfo=UTC)


def signed_by(key: SM2PrivateKey, *, time: datetime = DECIDED) -> SignedReceipt:
    receipt = Receipt(submission_id="s-1", event_id="e-1", sender="cn.port.sh",
                      format_id="fal1-xml", digest_sm3="ab" * 32, status=ACCEPTED, time=time,
                      recipients=("cn.customs.sh",))
    body = SCHEMAS.encode_body("px.gateway.Receipt", receipt.to_avro())
    [signed] = SignedReceipt.of_batch([receipt], [body], BatchSigner(key).sign([body]))
    return SignedReceipt.decode(SCHEMAS, signed.encode(SCHEMAS))  # as a client reads it


def test_a_receipt_sealed_by_the_gateway_checks() -> None:
    entry = signed_by(GATEWAY_KEY).check(KEYRING)
    assert (entry.agency_id, entry.key_id) == ("px.gateway", GATEWAY_KEY.public_key().key_id)


def test_a_receipt_signed_by_an_agency_key_fails_its_check() -> None:
    forged = signed_by(AGENCY_KEY)
    forged.verify(AGENCY_KEY.public_key())  # a good signature: the key is what is wrong
    with pytest.raises(SealKeyRefused) as info:
        forged.check(KEYRING)
    assert info.value.code == "SEAL_KEY_NOT_SEALING"
    assert AGENCY_KEY.public_key().key_id in info.value.message
    assert "only the gateway's sealing keys (role seal) seal" in info.value.message


def test_a_receipt_signed_by_an_unknown_key_fails_its_check() -> None:
    with pytest.raises(SealKeyRefused) as info:
        signed_by(SM2PrivateKey.generate()).check(KEYRING)
    assert info.value.code == "SEAL_KEY_UNKNOWN"


def test_a_receipt_from_outside_the_sealing_keys_window_fails_its_check() -> None:
    with pytest.raises(SealKeyRefused) as info:
        signed_by(GATEWAY_KEY, time=JAN - timedelta(days=1)).check(KEYRING)
    assert info.value.code == "SEAL_KEY_NOT_VALID"


def test_a_receipt_naming_the_gateway_key_but_signed_by_another_fails_its_check() -> None:
    forged = signed_by(AGENCY_KEY)
    seal = BatchSeal(forged.seal.root, forged.seal.count, forged.seal.signature,
                     GATEWAY_KEY.public_key().key_id)
    impostor = SignedReceipt(forged.receipt, forged.body, seal, forged.proof)
    with pytest.raises(SignatureInvalid) as info:
        impostor.check(KEYRING)
    assert info.value.code == "SEAL_SIGNATURE_INVALID"
