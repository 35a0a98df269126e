"""Digital envelopes: layout, round trips across backends, and every way one must fail."""

from __future__ import annotations

import pytest

from crypto import (
    ENVELOPE_VERSION,
    DecryptionFailed,
    Envelope,
    SM2PrivateKey,
    envelope_recipient,
    open_envelope,
    seal_envelope,
    sm3,
)

PAYLOAD = b"<CargoManifest>" + bytes(range(256)) * 4 + b"</CargoManifest>"
HEADER = 158


@pytest.fixture(scope="module", params=["fast", "reference"])
def recipient(request: pytest.FixtureRequest) -> SM2PrivateKey:
    return SM2PrivateKey.generate(backend=request.param)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_documented_layout(recipient: SM2PrivateKey) -> None:
    sealed = seal_envelope(recipient.public_key(), PAYLOAD)
    assert len(sealed) == HEADER + len(PAYLOAD) + 16
    assert sealed[0] == ENVELOPE_VERSION == 1
    assert sealed[1:33] == sm3(recipient.public_key().to_der())
    assert sealed[33] == 0x04  # C1 of the SM2-encrypted key, uncompressed
    envelope = Envelope.parse(sealed)
    assert envelope.recipient_key_id.hex() == recipient.public_key().key_id
    assert len(envelope.encrypted_key) == 113 and len(envelope.nonce) == 12
    assert envelope.to_bytes() == sealed
    assert recipient.decrypt(envelope.encrypted_key) != b""  # a C1C3C2 SM2 ciphertext
    assert len(recipient.decrypt(envelope.encrypted_key)) == 16
    assert envelope_recipient(sealed) == recipient.public_key().key_id


def test_round_trip_with_and_without_aad(recipient: SM2PrivateKey) -> None:
    for payload in (b"", b"x", PAYLOAD):
        assert open_envelope(recipient, seal_envelope(recipient.public_key(), payload)) == payload
    sealed = seal_envelope(recipient.public_key(), PAYLOAD, aad=b"doc-42")
    assert open_envelope(recipient, sealed, aad=b"doc-42") == PAYLOAD
    with pytest.raises(DecryptionFailed):
        open_envelope(recipient, sealed)
    with pytest.raises(DecryptionFailed):
        open_envelope(recipient, sealed, aad=b"doc-43")


def test_fresh_key_and_nonce_each_time(recipient: SM2PrivateKey) -> None:
    first = Envelope.parse(seal_envelope(recipient.public_key(), PAYLOAD))
    second = Envelope.parse(seal_envelope(recipient.public_key(), PAYLOAD))
    assert first.encrypted_key != second.encrypted_key
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_opens_with_the_other_backend(recipient: SM2PrivateKey) -> None:
    other = "reference" if recipient.backend.name == "fast" else "fast"
    twin = SM2PrivateKey.from_pem(recipient.to_pem(), backend=other)
    assert open_envelope(twin, seal_envelope(recipient.public_key(), PAYLOAD)) == PAYLOAD
    assert open_envelope(recipient, seal_envelope(twin.public_key(), PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("index", [0, 1, 32, 34, 100, 140, 146, 157, HEADER, HEADER + 500, -1])
def test_any_altered_byte_is_detected(recipient: SM2PrivateKey, index: int) -> None:
    sealed = seal_envelope(recipient.public_key(), PAYLOAD)
    with pytest.raises(DecryptionFailed):
        open_envelope(recipient, flip(sealed, index % len(sealed)))


def test_wrong_recipient_is_named(recipient: SM2PrivateKey) -> None:
    sealed = seal_envelope(recipient.public_key(), PAYLOAD)
    stranger = SM2PrivateKey.generate(backend=recipient.backend)
    with pytest.raises(DecryptionFailed, match=recipient.public_key().key_id):
        open_envelope(stranger, sealed)


def test_key_block_cannot_be_moved_to_another_envelope(recipient: SM2PrivateKey) -> None:
    first = Envelope.parse(seal_envelope(recipient.public_key(), PAYLOAD))
    second = Envelope.parse(seal_envelope(recipient.public_key(), b"other payload"))
    grafted = Envelope(first.recipient_key_id, second.encrypted_key, first.nonce, first.ciphertext)
    with pytest.raises(DecryptionFailed):
        open_envelope(recipient, grafted.to_bytes())


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x02" + bytes(200), bytes(HEADER + 15)])
def test_malformed_envelopes(recipient: SM2PrivateKey, data: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        open_envelope(recipient, data)
