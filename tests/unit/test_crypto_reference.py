"""The reference backend's wrapping of gmssl: each pitfall, shown and shown to be handled."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from gmssl import sm2 as gmssl_sm2

from crypto import (
    CryptoError,
    DecryptionFailed,
    KeyInvalid,
    SM2PrivateKey,
    SM2PublicKey,
    get_backend,
    signature_to_raw,
)
from crypto._keyfile import PrivateKeyFields, private_key_pem
from crypto._reference import ReferenceBackend
from crypto._sm2codec import SM2Ciphertext, decode_signature
from crypto._sm2math import SM2_CURVE

MESSAGE = b"short r and s"
ANNEX_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
# Nonces found by search that give the annex key a signature of MESSAGE with a short r / s.
K_SHORT_R = 71
K_SHORT_S = 162
N = SM2_CURVE.n


@pytest.fixture(scope="module")
def ref() -> ReferenceBackend:
    backend = get_backend("reference")
    assert isinstance(backend, ReferenceBackend)
    return backend


@pytest.fixture(scope="module")
def annex_key(ref: ReferenceBackend) -> SM2PrivateKey:
    return SM2PrivateKey.from_pem(
        private_key_pem(PrivateKeyFields(ANNEX_D, None), 32, None), backend=ref
    )


# -- nonces ---------------------------------------------------------------------------------------


def test_gmssl_itself_draws_nonces_from_random(annex_key: SM2PrivateKey) -> None:
    xy = annex_key.public_key().point[1:].hex()
    gm = gmssl_sm2.CryptSM2(private_key=f"{ANNEX_D:064x}", public_key=xy)
    random.seed(7)
    first = gm.sign_with_sm3(MESSAGE)
    random.seed(7)
    assert gm.sign_with_sm3(MESSAGE) == first  # same seed, same nonce: predictable


def test_our_nonces_do_not_come_from_random(annex_key: SM2PrivateKey) -> None:
    random.seed(7)
    first = annex_key.sign(MESSAGE)
    random.seed(7)
    assert annex_key.sign(MESSAGE) != first


@pytest.mark.parametrize(("drawn", "k"), [(0, 1), (N - 2, N - 1)])
def test_nonce_is_secrets_randbelow_mapped_to_1_to_n_minus_1(
    monkeypatch: pytest.MonkeyPatch,
    ref: ReferenceBackend,
    annex_key: SM2PrivateKey,
    drawn: int,
    k: int,
) -> None:
    calls: list[int] = []

    def randbelow(bound: int) -> int:
        calls.append(bound)
        return drawn

    monkeypatch.setattr("crypto._reference.secrets.randbelow", randbelow)
    signature = annex_key.sign(MESSAGE)
    assert calls == [N - 1]
    expected = ref._sign_with_k(annex_key._handle, MESSAGE, b"1234567812345678", k)
    assert signature == expected


def test_scalars_outside_1_to_n_minus_1_never_reach_gmssl(ref: ReferenceBackend) -> None:
    g_hex = f"{SM2_CURVE.gx:064x}{SM2_CURVE.gy:064x}"
    assert ref._gmssl._kg(0, g_hex) == g_hex  # gmssl: 0·G = G
    for scalar in (0, N, N + 1, -1):
        with pytest.raises(CryptoError, match="outside"):
            ref._multiply(scalar, SM2_CURVE.generator)


# -- public keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scalar", [11, 65, 138, 327])  # x starts with 04, 40, 44, 00
def test_public_keys_are_never_lstripped(ref: ReferenceBackend, scalar: int) -> None:
    pair = ref._private_key_from_scalar(scalar)
    xy = f"{pair.point[0]:064x}{pair.point[1]:064x}"
    mangled = gmssl_sm2.CryptSM2(private_key="", public_key="04" + xy).public_key
    if xy.startswith(("0", "4")):
        assert mangled != xy
    key = SM2PrivateKey(ref, pair)
    signature = key.sign(MESSAGE)
    SM2PublicKey.from_point(b"\x04" + bytes.fromhex(xy), backend=ref).verify(signature, MESSAGE)
    SM2PublicKey.from_der(key.public_key().to_der(), backend="fast").verify(signature, MESSAGE)


# -- signatures: DER, short r and s ---------------------------------------------------------------


@pytest.mark.parametrize(("k", "short"), [(K_SHORT_R, "r"), (K_SHORT_S, "s")])
def test_short_r_or_s_is_minimal_der_and_verifies_in_openssl(
    ref: ReferenceBackend, annex_key: SM2PrivateKey, k: int, short: str
) -> None:
    signature = ref._sign_with_k(annex_key._handle, MESSAGE, b"1234567812345678", k)
    assert signature is not None
    r, s = decode_signature(signature)
    assert (r if short == "r" else s) < 1 << 248
    r_len = signature[3]
    s_len = signature[5 + r_len]
    assert (r_len if short == "r" else s_len) <= 31  # minimal INTEGER, no zero padding
    raw = signature_to_raw(signature)
    assert len(raw) == 64
    assert raw[0 if short == "r" else 32] == 0  # left-padded
    annex_key.public_key().verify(signature, MESSAGE)
    fast_public = SM2PublicKey.from_der(annex_key.public_key().to_der(), backend="fast")
    fast_public.verify(signature, MESSAGE)


def test_openssl_short_r_signatures_verify_in_the_reference(annex_key: SM2PrivateKey) -> None:
    fast_key = SM2PrivateKey.from_pem(annex_key.to_pem(), backend="fast")
    for _ in range(4000):
        signature = fast_key.sign(MESSAGE)
        r, s = decode_signature(signature)
        if min(r, s) < 1 << 248:
            break
    else:
        pytest.fail("no short r or s in 4000 OpenSSL signatures (expected about 128)")
    annex_key.public_key().verify(signature, MESSAGE)


def test_sign_with_k_rejects_what_the_standard_rejects(
    ref: ReferenceBackend, annex_key: SM2PrivateKey
) -> None:
    with pytest.raises(CryptoError):
        ref._sign_with_k(annex_key._handle, MESSAGE, b"1234567812345678", 0)
    public = ref.load_public_key_der(annex_key.public_key().to_der())
    with pytest.raises(CryptoError, match="private key is needed"):
        ref.sign(public, MESSAGE, b"1234567812345678")


# -- private key files ----------------------------------------------------------------------------


@pytest.mark.parametrize("scalar", [0, N - 1, N, N + 5])
def test_private_scalar_must_be_in_1_to_n_minus_2(ref: ReferenceBackend, scalar: int) -> None:
    pem = private_key_pem(PrivateKeyFields(scalar % (1 << 256), None), 32, None)
    with pytest.raises(KeyInvalid, match="out of range"):
        SM2PrivateKey.from_pem(pem, backend=ref)


def test_private_key_with_a_foreign_public_key_is_refused(ref: ReferenceBackend) -> None:
    other = ref._private_key_from_scalar(12345)
    pem = private_key_pem(PrivateKeyFields(ANNEX_D, SM2_CURVE.encode_point(other.point)), 32, None)
    with pytest.raises(KeyInvalid, match="does not match"):
        SM2PrivateKey.from_pem(pem, backend=ref)


def test_legacy_encrypted_pem_gets_a_clear_error(ref: ReferenceBackend) -> None:
    pem = (
        b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        b"DEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n"
        b"-----END EC PRIVATE KEY-----\n"
    )
    with pytest.raises(KeyInvalid, match="openssl pkcs8 -topk8"):
        SM2PrivateKey.from_pem(pem, backend=ref)


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    ],
)
def test_private_key_garbage_is_key_invalid(ref: ReferenceBackend, pem: bytes) -> None:
    with pytest.raises(KeyInvalid):
        SM2PrivateKey.from_pem(pem, b"pw", backend=ref)


def test_repr_never_shows_the_scalar(ref: ReferenceBackend, annex_key: SM2PrivateKey) -> None:
    handle = annex_key._handle
    assert f"{ANNEX_D:x}" not in repr(handle).lower()
    assert str(ANNEX_D) not in repr(handle) + repr(annex_key)


def test_pem_written_to_disk_round_trips(tmp_path: Path, annex_key: SM2PrivateKey) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(annex_key.to_pem(b"pw"))
    loaded = SM2PrivateKey.from_pem(path.read_bytes(), b"pw", backend="reference")
    assert loaded.public_key() == annex_key.public_key()


# -- decryption checks ----------------------------------------------------------------------------


def test_c1_off_the_curve_is_refused_before_any_arithmetic(annex_key: SM2PrivateKey) -> None:
    good = annex_key.public_key().encrypt(MESSAGE)
    off_curve = good[:1] + good[1:33] + bytes(32) + good[65:]
    for backend in ("reference", "fast"):
        key = SM2PrivateKey.from_pem(annex_key.to_pem(), backend=backend)
        with pytest.raises(DecryptionFailed):
            key.decrypt(off_curve)


def test_backend_decrypt_checks_its_inputs(ref: ReferenceBackend, annex_key: SM2PrivateKey) -> None:
    c1 = annex_key.public_key().encrypt(MESSAGE)[:65]
    with pytest.raises(DecryptionFailed, match="C1"):
        ref.decrypt(annex_key._handle, SM2Ciphertext(b"\x04" + bytes(64), bytes(32), b"x"))
    with pytest.raises(DecryptionFailed, match="malformed"):
        ref.decrypt(annex_key._handle, SM2Ciphertext(c1, bytes(31), b"x"))
    # 32 bytes of C2: with one byte the KDF mask is all zero (refused earlier) once in 256.
    with pytest.raises(DecryptionFailed, match="C3"):
        ref.decrypt(annex_key._handle, SM2Ciphertext(c1, bytes(32), b"x" * 32))
