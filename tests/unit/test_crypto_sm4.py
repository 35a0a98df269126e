"""SM4-CBC (PKCS#7) and SM4-GCM: the module functions, and both backends agreeing."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import (
    DecryptionFailed,
    get_backend,
    hmac_sm3,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from crypto.sm4 import pkcs7_pad, pkcs7_unpad, sm4_block_encryptor

KEY = bytes(range(16))
IV = bytes(range(16, 32))
NONCE = bytes(range(12))


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32, 100])
def test_cbc_round_trip_and_padding(length: int) -> None:
    data = os.urandom(length)
    ciphertext = sm4_cbc_encrypt(KEY, IV, data)
    assert len(ciphertext) == (length // 16 + 1) * 16  # always at least one padding byte
    assert sm4_cbc_decrypt(KEY, IV, ciphertext) == data


def test_cbc_wrong_key_or_damage_is_decryption_failed() -> None:
    ciphertext = sm4_cbc_encrypt(KEY, IV, b"attack at dawn")
    with pytest.raises(DecryptionFailed):
        sm4_cbc_decrypt(bytes(16), IV, ciphertext)
    for bad in (b"", ciphertext[:-1], ciphertext + b"x"):
        with pytest.raises(DecryptionFailed):
            sm4_cbc_decrypt(KEY, IV, bad)


@pytest.mark.parametrize(
    "padded",
    [b"\x00" * 16, b"a" * 15 + b"\x11", b"a" * 14 + b"\x01\x02", b"a" * 13 + b"\x02\x03\x03"],
)
def test_pkcs7_unpad_is_strict(padded: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        pkcs7_unpad(padded)


def test_pkcs7_pad_examples() -> None:
    assert pkcs7_pad(b"") == b"\x10" * 16
    assert pkcs7_pad(b"a" * 15) == b"a" * 15 + b"\x01"
    assert pkcs7_unpad(pkcs7_pad(b"a" * 16)) == b"a" * 16


def test_gcm_round_trip_aad_and_tamper() -> None:
    sealed = sm4_gcm_encrypt(KEY, NONCE, b"payload", b"context")
    assert len(sealed) == len(b"payload") + 16
    assert sm4_gcm_decrypt(KEY, NONCE, sealed, b"context") == b"payload"
    for bit in range(0, 8 * len(sealed), 13):
        damaged = bytearray(sealed)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecryptionFailed):
            sm4_gcm_decrypt(KEY, NONCE, bytes(damaged), b"context")
    for key, nonce, aad in ((bytes(16), NONCE, b"context"), (KEY, bytes(12), b"context"),
                            (KEY, NONCE, b"other")):  # fmt: skip
        with pytest.raises(DecryptionFailed):
            sm4_gcm_decrypt(key, nonce, sealed, aad)
    with pytest.raises(DecryptionFailed):
        sm4_gcm_decrypt(KEY, NONCE, sealed[:15])


def test_sizes_and_types_are_checked() -> None:
    with pytest.raises(ValueError, match="SM4 key"):
        sm4_cbc_encrypt(bytes(15), IV, b"x")
    with pytest.raises(ValueError, match="iv"):
        sm4_cbc_encrypt(KEY, bytes(8), b"x")
    with pytest.raises(ValueError, match="nonce"):
        sm4_gcm_encrypt(KEY, bytes(16), b"x")
    with pytest.raises(TypeError):
        sm4_gcm_encrypt("0123456789abcdef", NONCE, b"x")  # type: ignore[arg-type]  # the wrong type on purpose
    with pytest.raises(ValueError, match="block"):
        sm4_block_encryptor(KEY)(b"short")
    for backend in (get_backend("reference"), get_backend("fast")):
        with pytest.raises(ValueError):
            backend.sm4_gcm_encrypt(KEY, bytes(8), b"x")
        with pytest.raises(ValueError):
            backend.sm4_cbc_encrypt(bytes(8), IV, b"x")


# -- the two backends agree -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16),
    nonce=st.binary(min_size=12, max_size=12),
    data=st.binary(max_size=100),
    aad=st.binary(max_size=40),
)
def test_gcm_backends_agree(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> None:
    fast, ref = get_backend("fast"), get_backend("reference")
    sealed = fast.sm4_gcm_encrypt(key, nonce, data, aad)
    assert ref.sm4_gcm_encrypt(key, nonce, data, aad) == sealed
    assert ref.sm4_gcm_decrypt(key, nonce, sealed, aad) == data
    if sealed:
        damaged = bytes([sealed[0] ^ 1]) + sealed[1:]
        with pytest.raises(DecryptionFailed):
            ref.sm4_gcm_decrypt(key, nonce, damaged, aad)


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16),
    iv=st.binary(min_size=16, max_size=16),
    data=st.binary(max_size=80),
)
def test_cbc_backends_agree(key: bytes, iv: bytes, data: bytes) -> None:
    fast, ref = get_backend("fast"), get_backend("reference")
    ciphertext = fast.sm4_cbc_encrypt(key, iv, data)
    assert ref.sm4_cbc_encrypt(key, iv, data) == ciphertext
    assert ref.sm4_cbc_decrypt(key, iv, ciphertext) == data


@pytest.mark.parametrize("key_size", [0, 1, 32, 64, 65, 200])
def test_hmac_sm3_backends_agree(key_size: int) -> None:
    key, data = os.urandom(key_size), os.urandom(100)
    assert get_backend("reference").hmac_sm3(key, data) == hmac_sm3(key, data)
    assert get_backend("fast").hmac_sm3(key, data) == hmac_sm3(key, data)
