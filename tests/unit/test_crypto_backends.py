"""Backend selection, and the contract both backends keep through SM2PrivateKey/SM2PublicKey."""

from __future__ import annotations

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import (
    BACKEND_ENV_VAR,
    CiphertextOrder,
    CryptoBackend,
    CryptoError,
    DecryptionFailed,
    KeyInvalid,
    SignatureInvalid,
    SM2PrivateKey,
    SM2PublicKey,
    _backend,
    _libcrypto,
    default_backend,
    get_backend,
)
from crypto._reference import ReferenceBackend

MESSAGE = b"<Manifest><Vessel>MV EXAMPLE</Vessel></Manifest>"
ORDER_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


@pytest.fixture(scope="module", params=["fast", "reference"])
def backend(request: pytest.FixtureRequest) -> CryptoBackend:
    return get_backend(request.param)


@pytest.fixture(scope="module")
def key(backend: CryptoBackend) -> SM2PrivateKey:
    return SM2PrivateKey.generate(backend=backend)


@pytest.fixture(scope="module")
def signature(key: SM2PrivateKey) -> bytes:
    return key.sign(MESSAGE)


def flip_bit(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


# -- selection ----------------------------------------------------------------------------------


def test_default_is_fast_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)
    assert default_backend().name == "fast"
    monkeypatch.setenv(BACKEND_ENV_VAR, "reference")
    assert default_backend().name == "reference"
    assert SM2PrivateKey.generate().backend.name == "reference"
    monkeypatch.setenv(BACKEND_ENV_VAR, " FAST ")
    assert default_backend().name == "fast"
    monkeypatch.setenv(BACKEND_ENV_VAR, "")
    assert default_backend().name == "fast"


def test_unknown_backend_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown crypto backend"):
        get_backend("gmssl")
    monkeypatch.setenv(BACKEND_ENV_VAR, "bogus")
    with pytest.raises(ValueError, match="bogus"):
        default_backend()


def test_explicit_backend_argument_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV_VAR, "reference")
    assert SM2PrivateKey.generate(backend="fast").backend.name == "fast"
    fast = get_backend("fast")
    assert SM2PrivateKey.generate(backend=fast).backend is fast


def test_one_backend_object_per_process() -> None:
    assert get_backend("fast") is get_backend("fast") is get_backend("Fast")
    assert get_backend("reference") is get_backend("reference")
    assert isinstance(get_backend("reference"), ReferenceBackend)
    assert isinstance(get_backend("fast"), _libcrypto.OpenSSLBackend)


@pytest.mark.usefixtures("info_logs")
def test_creation_is_logged() -> None:
    with structlog.testing.capture_logs() as logs:
        fast = _backend._create.__wrapped__("fast")
        _backend._create.__wrapped__("reference")
    assert fast.name == "fast"
    events = [(entry["event"], entry["backend"], entry["log_level"]) for entry in logs]
    assert events == [
        ("crypto_backend_selected", "fast", "info"),
        ("crypto_backend_selected", "reference", "info"),
    ]
    assert logs[0]["libcrypto"].startswith("3.")


def test_fast_falls_back_to_reference_without_libcrypto_3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_libcrypto, "_candidate_names", lambda: iter(["libcrypto-nope.so.0"]))
    monkeypatch.setattr(_libcrypto, "load_library", _libcrypto.load_library.__wrapped__)
    with structlog.testing.capture_logs() as logs:
        chosen = _backend._create.__wrapped__("fast")
    assert isinstance(chosen, ReferenceBackend)
    (entry,) = logs
    assert entry["event"] == "crypto_backend_fallback"
    assert entry["log_level"] == "warning"
    assert (entry["requested"], entry["backend"]) == ("fast", "reference")
    assert "libcrypto-nope" in entry["reason"]
    key = SM2PrivateKey.generate(backend=chosen)  # and it works
    key.public_key().verify(key.sign(MESSAGE), MESSAGE)


def test_handles_of_one_backend_are_refused_by_the_other(key: SM2PrivateKey) -> None:
    other = get_backend("reference" if key.backend.name == "fast" else "fast")
    with pytest.raises(CryptoError, match="does not belong"):
        other.sign(key._handle, MESSAGE, b"1234567812345678")


# -- the contract, for both backends --------------------------------------------------------------


def test_sign_verify_round_trip_with_strict_der(key: SM2PrivateKey, signature: bytes) -> None:
    key.public_key().verify(signature, MESSAGE)
    assert signature[0] == 0x30 and signature[1] == len(signature) - 2
    first, second = key.sign(MESSAGE), key.sign(MESSAGE)
    assert first != second


@pytest.mark.parametrize("bit", [0, 13, 8 * 7 + 1, 8 * 30 + 7, 8 * 40, -1])
def test_flipped_bit_in_signature_is_rejected(
    key: SM2PrivateKey, signature: bytes, bit: int
) -> None:
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(flip_bit(signature, bit % (8 * len(signature))), MESSAGE)


@pytest.mark.parametrize("bit", [0, 77, -1])
def test_flipped_bit_in_message_is_rejected(key: SM2PrivateKey, signature: bytes, bit: int) -> None:
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signature, flip_bit(MESSAGE, bit % (8 * len(MESSAGE))))


def test_wrong_key_and_wrong_id_are_rejected(key: SM2PrivateKey, signature: bytes) -> None:
    other = SM2PrivateKey.generate(backend=key.backend)
    with pytest.raises(SignatureInvalid):
        other.public_key().verify(signature, MESSAGE)
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signature, MESSAGE, user_id=b"")
    custom = key.sign(MESSAGE, user_id=b"ALICE123@YAHOO.COM")
    key.public_key().verify(custom, MESSAGE, user_id=b"ALICE123@YAHOO.COM")


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x30\x00", b"\x30\x06\x02\x01\x01\x02\x01\x01", b"\xff" * 72, bytes(range(64))],
)
def test_garbage_signatures_are_invalid(key: SM2PrivateKey, garbage: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(garbage, MESSAGE)


def test_non_minimal_der_is_rejected(key: SM2PrivateKey, signature: bytes) -> None:
    # Same r and s with a redundant leading zero on r: a second encoding must not verify.
    r_len = signature[3]
    r_body = signature[4 : 4 + r_len]
    padded = b"\x02" + bytes([r_len + 1]) + b"\x00" + r_body + signature[4 + r_len :]
    candidate = b"\x30" + bytes([len(padded)]) + padded
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(candidate, MESSAGE)
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signature + b"\x00", MESSAGE)


def test_private_pem_round_trips(key: SM2PrivateKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert SM2PrivateKey.from_pem(pem, backend=key.backend).to_pem() == pem
    encrypted = key.to_pem(b"correct horse")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    loaded = SM2PrivateKey.from_pem(encrypted, b"correct horse", backend=key.backend)
    assert loaded.public_key() == key.public_key()
    with pytest.raises(KeyInvalid, match="bad decrypt"):
        SM2PrivateKey.from_pem(encrypted, b"wrong horse", backend=key.backend)
    with pytest.raises(KeyInvalid):
        SM2PrivateKey.from_pem(encrypted, backend=key.backend)


def test_both_backends_write_the_same_files(key: SM2PrivateKey) -> None:
    other = get_backend("reference" if key.backend.name == "fast" else "fast")
    twin = SM2PrivateKey.from_pem(key.to_pem(), backend=other)
    assert twin.to_pem() == key.to_pem()
    assert twin.public_key().to_der() == key.public_key().to_der()
    assert twin.public_key().key_id == key.public_key().key_id
    assert twin.public_key().z_value() == key.public_key().z_value()
    twin_from_encrypted = SM2PrivateKey.from_pem(key.to_pem(b"pw"), b"pw", backend=other)
    assert twin_from_encrypted.public_key() == key.public_key()


def test_non_sm2_keys_are_refused(backend: CryptoBackend) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    private_pem = p256.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_der = p256.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyInvalid, match="not an SM2 key"):
        SM2PrivateKey.from_pem(private_pem, backend=backend)
    with pytest.raises(KeyInvalid, match="not an SM2 key"):
        SM2PublicKey.from_der(public_der, backend=backend)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x00",
        bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004") + b"\x01" * 64,
    ],
)
def test_bad_public_keys_are_refused(backend: CryptoBackend, der: bytes) -> None:
    with pytest.raises(KeyInvalid):
        SM2PublicKey.from_der(der, backend=backend)


def test_public_key_point_round_trip(key: SM2PrivateKey) -> None:
    public = key.public_key()
    assert len(public.point) == 65 and public.point[0] == 4
    assert SM2PublicKey.from_point(public.point, backend=key.backend) == public
    with pytest.raises(KeyInvalid):
        SM2PublicKey.from_point(public.point[1:], backend=key.backend)
    with pytest.raises(KeyInvalid, match="not on the SM2 curve"):
        SM2PublicKey.from_point(flip_bit(public.point, 100), backend=key.backend)


@pytest.mark.parametrize("order", list(CiphertextOrder))
def test_encrypt_decrypt_round_trip(key: SM2PrivateKey, order: CiphertextOrder) -> None:
    for plaintext in (b"x", MESSAGE, bytes(range(256)) * 3):
        ciphertext = key.public_key().encrypt(plaintext, order=order)
        assert key.decrypt(ciphertext, order=order) == plaintext
    first = key.public_key().encrypt(MESSAGE, order=order)
    assert first != key.public_key().encrypt(MESSAGE, order=order)


def test_c1c3c2_layout(key: SM2PrivateKey) -> None:
    ciphertext = key.public_key().encrypt(MESSAGE)
    assert len(ciphertext) == 65 + 32 + len(MESSAGE)
    assert ciphertext[0] == 4
    reordered = ciphertext[:65] + ciphertext[97:] + ciphertext[65:97]
    assert key.decrypt(reordered, order="C1C2C3") == MESSAGE
    with pytest.raises(DecryptionFailed):
        key.decrypt(reordered)  # C1C2C3 read as C1C3C2


def test_tampered_or_misdirected_ciphertext_fails(key: SM2PrivateKey) -> None:
    ciphertext = key.public_key().encrypt(MESSAGE)
    for bit in (8 * 40, 8 * 70 + 3, 8 * 100, 8 * len(ciphertext) - 1):
        with pytest.raises(DecryptionFailed):
            key.decrypt(flip_bit(ciphertext, bit))
    with pytest.raises(DecryptionFailed):
        SM2PrivateKey.generate(backend=key.backend).decrypt(ciphertext)
    for short in (b"", ciphertext[:97], b"\x04" + bytes(200)):
        with pytest.raises(DecryptionFailed):
            key.decrypt(short)


def test_empty_plaintext_is_refused(key: SM2PrivateKey) -> None:
    with pytest.raises(ValueError, match="empty"):
        key.public_key().encrypt(b"")


def test_ciphertexts_cross_between_backends(key: SM2PrivateKey) -> None:
    other = get_backend("reference" if key.backend.name == "fast" else "fast")
    twin = SM2PrivateKey.from_pem(key.to_pem(), backend=other)
    for order in CiphertextOrder:
        assert twin.decrypt(key.public_key().encrypt(MESSAGE, order=order), order=order) == MESSAGE
        assert key.decrypt(twin.public_key().encrypt(MESSAGE, order=order), order=order) == MESSAGE


def test_z_value_depends_on_key_and_id(key: SM2PrivateKey) -> None:
    public = key.public_key()
    assert len(public.z_value()) == 32
    assert public.z_value() != public.z_value(b"ALICE123@YAHOO.COM")
    assert public.z_value() != SM2PrivateKey.generate(backend=key.backend).public_key().z_value()
    with pytest.raises(ValueError):
        public.z_value(b"u" * 8191)


def test_signature_s_plus_n_is_rejected(key: SM2PrivateKey, signature: bytes) -> None:
    """(r, s + n) satisfies the verification equation mod n; only the range check stops it."""
    from crypto._sm2codec import decode_signature, encode_signature

    r, s = decode_signature(signature)
    for candidate in (encode_signature(r, s + ORDER_N), encode_signature(r + ORDER_N, s)):
        with pytest.raises(SignatureInvalid):
            key.public_key().verify(candidate, MESSAGE)


@pytest.mark.parametrize(("r", "s"), [(0, 1), (1, 0), (ORDER_N, 1), (1, ORDER_N), (5, ORDER_N - 5)])
def test_out_of_range_r_and_s_are_rejected(key: SM2PrivateKey, r: int, s: int) -> None:
    from crypto._sm2codec import encode_signature

    with pytest.raises(SignatureInvalid):
        key.public_key().verify(encode_signature(r, s), MESSAGE)
