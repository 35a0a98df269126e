from __future__ import annotations

import copy
import pickle
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import (
    DEFAULT_SM2_ID,
    BackendUnavailable,
    CryptoError,
    KeyInvalid,
    SignatureInvalid,
    SM2PrivateKey,
    SM2PublicKey,
    hmac_sm3,
    sm3,
    sm3_hex,
)

MESSAGE = b"<CrewList><Vessel>MV EXAMPLE</Vessel></CrewList>"


@pytest.fixture(scope="module")
def key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


@pytest.fixture(scope="module")
def other_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


@pytest.fixture(scope="module")
def signature(key: SM2PrivateKey) -> bytes:
    return key.sign(MESSAGE)


def flip_bit(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def der_integers(signature: bytes) -> tuple[int, int]:
    """Minimal strict DER reader for SEQUENCE { INTEGER r, INTEGER s } (short lengths)."""
    assert signature[0] == 0x30 and signature[1] == len(signature) - 2
    values: list[int] = []
    pos = 2
    while pos < len(signature):
        assert signature[pos] == 0x02
        length = signature[pos + 1]
        body = signature[pos + 2 : pos + 2 + length]
        assert body[0] & 0x80 == 0, "negative INTEGER"
        assert not (body[0] == 0 and len(body) > 1 and body[1] & 0x80 == 0), "non-minimal"
        values.append(int.from_bytes(body, "big"))
        pos += 2 + length
    assert len(values) == 2
    return values[0], values[1]


def p256_private_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def p256_public_der() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# -- sign / verify --------------------------------------------------------------------------


def test_sign_verify_round_trip(key: SM2PrivateKey, signature: bytes) -> None:
    assert key.public_key().verify(signature, MESSAGE) is None


def test_signature_is_strict_der_with_r_s_in_range(signature: bytes) -> None:
    order = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
    r, s = der_integers(signature)
    assert 0 < r < order and 0 < s < order


def test_signatures_are_randomised_and_all_verify(key: SM2PrivateKey) -> None:
    first, second = key.sign(MESSAGE), key.sign(MESSAGE)
    assert first != second
    for sig in (first, second):
        key.public_key().verify(sig, MESSAGE)


def test_empty_message_round_trip(key: SM2PrivateKey) -> None:
    key.public_key().verify(key.sign(b""), b"")


@pytest.mark.parametrize("bit", [0, 7, 8 * 10 + 3, 8 * len(MESSAGE) - 1])
def test_verify_rejects_flipped_bit_in_message(
    key: SM2PrivateKey, signature: bytes, bit: int
) -> None:
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signature, flip_bit(MESSAGE, bit))


def test_verify_rejects_every_flipped_bit_in_signature(
    key: SM2PrivateKey, signature: bytes
) -> None:
    public = key.public_key()
    for byte in range(len(signature)):
        for bit in (8 * byte, 8 * byte + 7):
            with pytest.raises(SignatureInvalid):
                public.verify(flip_bit(signature, bit), MESSAGE)


def test_verify_rejects_wrong_key(other_key: SM2PrivateKey, signature: bytes) -> None:
    with pytest.raises(SignatureInvalid) as info:
        other_key.public_key().verify(signature, MESSAGE)
    assert info.value.code == "CRYPTO_SIGNATURE_INVALID"


def test_user_id_is_bound_into_the_signature(key: SM2PrivateKey, signature: bytes) -> None:
    public = key.public_key()
    with pytest.raises(SignatureInvalid):
        public.verify(signature, MESSAGE, user_id=b"1234567812345679")
    with pytest.raises(SignatureInvalid):
        public.verify(signature, MESSAGE, user_id=b"")
    custom = key.sign(MESSAGE, user_id=b"ALICE123@YAHOO.COM")
    public.verify(custom, MESSAGE, user_id=b"ALICE123@YAHOO.COM")
    with pytest.raises(SignatureInvalid):
        public.verify(custom, MESSAGE)


def test_default_user_id_is_the_standard_one() -> None:
    assert DEFAULT_SM2_ID == b"1234567812345678"


def test_explicit_default_user_id_equals_implicit(key: SM2PrivateKey) -> None:
    key.public_key().verify(key.sign(MESSAGE), MESSAGE, user_id=DEFAULT_SM2_ID)
    key.public_key().verify(key.sign(MESSAGE, user_id=DEFAULT_SM2_ID), MESSAGE)


def test_user_id_length_limit(key: SM2PrivateKey) -> None:
    longest = b"u" * 8190
    key.public_key().verify(key.sign(MESSAGE, user_id=longest), MESSAGE, user_id=longest)
    with pytest.raises(ValueError):
        key.sign(MESSAGE, user_id=longest + b"u")
    with pytest.raises(TypeError):
        key.sign(MESSAGE, user_id="1234567812345678")  # type: ignore[arg-type]  # the wrong type on purpose


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00",
        b"\x30",
        b"\x30\x00",
        b"\x30\x06\x02\x01\x01\x02\x01\x01",
        b"\xff" * 72,
        bytes(range(64)),
        b"not a signature at all" * 50,
    ],
)
def test_verify_rejects_garbage_with_signature_invalid(key: SM2PrivateKey, garbage: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(garbage, MESSAGE)


def test_verify_rejects_raw_r_s_and_trailing_bytes(key: SM2PrivateKey, signature: bytes) -> None:
    r, s = der_integers(signature)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    for candidate in (raw, signature + b"\x00", signature[:-1]):
        with pytest.raises(SignatureInvalid):
            key.public_key().verify(candidate, MESSAGE)


def test_one_key_object_signs_and_verifies_from_many_threads(key: SM2PrivateKey) -> None:
    public = key.public_key()

    def work(n: int) -> None:
        for i in range(25):
            data = f"{n}:{i}".encode()
            public.verify(key.sign(data), data)
            with pytest.raises(SignatureInvalid):
                public.verify(key.sign(data), data + b"!")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(4)))


# -- private key PEM ------------------------------------------------------------------------


def test_private_pem_round_trip(key: SM2PrivateKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    loaded = SM2PrivateKey.from_pem(pem)
    assert loaded.public_key() == key.public_key()
    key.public_key().verify(loaded.sign(MESSAGE), MESSAGE)
    assert loaded.to_pem() == pem


def test_encrypted_private_pem_round_trip(key: SM2PrivateKey) -> None:
    pem = key.to_pem(password=b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert key.to_pem() not in pem
    loaded = SM2PrivateKey.from_pem(pem, password=b"correct horse")
    assert loaded.public_key() == key.public_key()


def test_encrypted_pem_needs_the_right_password(key: SM2PrivateKey) -> None:
    pem = key.to_pem(password=b"correct horse")
    with pytest.raises(KeyInvalid):
        SM2PrivateKey.from_pem(pem)
    with pytest.raises(KeyInvalid) as info:
        SM2PrivateKey.from_pem(pem, password=b"wrong horse")
    assert info.value.code == "CRYPTO_KEY_INVALID"
    assert "bad decrypt" in info.value.message


def test_empty_password_is_refused(key: SM2PrivateKey) -> None:
    with pytest.raises(ValueError):
        key.to_pem(password=b"")
    with pytest.raises(ValueError):
        SM2PrivateKey.from_pem(key.to_pem(), password=b"")


@pytest.mark.parametrize(
    "pem",
    [b"", b"hello", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
)
def test_private_key_garbage_is_key_invalid(pem: bytes) -> None:
    with pytest.raises(KeyInvalid):
        SM2PrivateKey.from_pem(pem)


def test_non_sm2_private_key_is_refused() -> None:
    with pytest.raises(KeyInvalid, match="not an SM2 key"):
        SM2PrivateKey.from_pem(p256_private_pem())


def test_private_key_never_shows_secret(key: SM2PrivateKey) -> None:
    body = b"".join(key.to_pem().splitlines()[1:-1]).decode()
    text = repr(key) + str(key)
    assert key.public_key().key_id in repr(key)
    assert body not in text and body[10:30] not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_copies_share_the_key(key: SM2PrivateKey) -> None:
    assert copy.copy(key) is key
    assert copy.deepcopy(key) is key
    assert copy.deepcopy(key.public_key()) is key.public_key()


# -- public key ------------------------------------------------------------------------------


def test_public_pem_and_der_round_trip(key: SM2PrivateKey) -> None:
    public = key.public_key()
    pem = public.to_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert SM2PublicKey.from_pem(pem) == public
    assert SM2PublicKey.from_der(public.to_der()) == public
    assert SM2PublicKey.from_pem(pem).to_der() == public.to_der()


def test_public_pem_tolerates_crlf_and_surrounding_text(key: SM2PrivateKey) -> None:
    pem = b"comment line\r\n" + key.public_key().to_pem().replace(b"\n", b"\r\n") + b"trailer"
    assert SM2PublicKey.from_pem(pem) == key.public_key()


def test_public_key_der_is_sm2_spki(key: SM2PrivateKey) -> None:
    der = key.public_key().to_der()
    # SEQUENCE { SEQUENCE { id-ecPublicKey, sm2p256v1 }, BIT STRING 04||x||y }
    assert der[:27] == bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")
    assert len(der) == 91


def test_key_id_is_lowercase_sm3_of_spki_der(key: SM2PrivateKey) -> None:
    public = key.public_key()
    assert public.key_id == sm3(public.to_der()).hex() == sm3_hex(public.to_der())
    assert re.fullmatch(r"[0-9a-f]{64}", public.key_id)


def test_key_id_is_stable_across_serialisations(key: SM2PrivateKey) -> None:
    key_id = key.public_key().key_id
    assert SM2PublicKey.from_pem(key.public_key().to_pem()).key_id == key_id
    assert SM2PrivateKey.from_pem(key.to_pem()).public_key().key_id == key_id
    assert SM2PrivateKey.from_pem(key.to_pem(b"pw"), b"pw").public_key().key_id == key_id


def test_public_key_equality_and_hash(key: SM2PrivateKey, other_key: SM2PrivateKey) -> None:
    same = SM2PublicKey.from_der(key.public_key().to_der())
    assert same == key.public_key() and hash(same) == hash(key.public_key())
    assert key.public_key() != other_key.public_key()
    assert len({same, key.public_key(), other_key.public_key()}) == 2
    assert key.public_key() != key.public_key().to_der()


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x00",
        bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004") + b"\x01" * 64,
    ],
)
def test_public_der_garbage_and_off_curve_points_are_key_invalid(der: bytes) -> None:
    with pytest.raises(KeyInvalid):
        SM2PublicKey.from_der(der)


def test_public_der_with_trailing_bytes_is_refused(key: SM2PrivateKey) -> None:
    with pytest.raises(KeyInvalid, match="trailing"):
        SM2PublicKey.from_der(key.public_key().to_der() + b"\x00")


def test_non_sm2_public_key_is_refused() -> None:
    with pytest.raises(KeyInvalid, match="not an SM2 key"):
        SM2PublicKey.from_der(p256_public_der())


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
    ],
)
def test_public_pem_garbage_is_key_invalid(pem: bytes) -> None:
    with pytest.raises(KeyInvalid):
        SM2PublicKey.from_pem(pem)


# -- SM3 / HMAC / errors ---------------------------------------------------------------------


def test_hmac_sm3_matches_rfc2104_construction() -> None:
    def reference(key: bytes, data: bytes) -> bytes:
        block = 64
        if len(key) > block:
            key = sm3(key)
        key = key.ljust(block, b"\x00")
        inner = sm3(bytes(b ^ 0x36 for b in key) + data)
        return sm3(bytes(b ^ 0x5C for b in key) + inner)

    for key_bytes in (b"", b"k", b"k" * 64, b"k" * 100):
        assert hmac_sm3(key_bytes, b"payload") == reference(key_bytes, b"payload")
    assert hmac_sm3(b"a", b"x") != hmac_sm3(b"b", b"x")


def test_error_codes_and_override() -> None:
    assert CryptoError("x").code == "CRYPTO_ERROR"
    assert BackendUnavailable("x").code == "CRYPTO_BACKEND_UNAVAILABLE"
    error = SignatureInvalid("bad", code="AUTH_SIGNATURE_INVALID")
    assert (error.code, error.message, str(error)) == ("AUTH_SIGNATURE_INVALID", "bad", "bad")
    assert SignatureInvalid("x").code == "CRYPTO_SIGNATURE_INVALID"


def test_missing_libcrypto_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from crypto import _libcrypto

    monkeypatch.setattr(_libcrypto, "_candidate_names", lambda: iter(["libcrypto-nope.so.0"]))
    with pytest.raises(BackendUnavailable, match="libcrypto-nope") as info:
        _libcrypto.load_library.__wrapped__()
    assert info.value.code == "CRYPTO_BACKEND_UNAVAILABLE"
