"""SM4 (GB/T 32907-2016) in CBC with PKCS#7 padding and in GCM, by the ``cryptography`` wheel.

CBC has no integrity: use it only where a format demands it, and authenticate the result
some other way. GCM takes a 12-byte nonce that must never repeat under one key.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import DecryptionFailed

SM4_KEY_SIZE = 16
SM4_BLOCK_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16


def sm4_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    _check_key(key)
    _check_size(iv, SM4_BLOCK_SIZE, "iv")
    encryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return encryptor.update(pkcs7_pad(plaintext)) + encryptor.finalize()


def sm4_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    _check_key(key)
    _check_size(iv, SM4_BLOCK_SIZE, "iv")
    if not ciphertext or len(ciphertext) % SM4_BLOCK_SIZE:
        raise DecryptionFailed("SM4-CBC ciphertext is not a whole number of blocks")
    decryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
    return pkcs7_unpad(decryptor.update(ciphertext) + decryptor.finalize())


def sm4_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Ciphertext followed by the 16-byte tag."""
    _check_key(key)
    _check_size(nonce, GCM_NONCE_SIZE, "nonce")
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    body = encryptor.update(plaintext) + encryptor.finalize()
    return body + encryptor.tag


def sm4_gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    _check_key(key)
    _check_size(nonce, GCM_NONCE_SIZE, "nonce")
    if len(data) < GCM_TAG_SIZE:
        raise DecryptionFailed("SM4-GCM data is shorter than its tag")
    body, tag = data[:-GCM_TAG_SIZE], data[-GCM_TAG_SIZE:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        return decryptor.update(body) + decryptor.finalize()
    except InvalidTag:
        raise DecryptionFailed("SM4-GCM authentication failed") from None


def sm4_block_encryptor(key: bytes) -> Callable[[bytes], bytes]:
    """Raw single-block SM4 under one key schedule, for known-answer tests and modes built on
    the block cipher; never a way to encrypt data (that would be ECB)."""
    _check_key(key)
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()

    def encrypt(block: bytes) -> bytes:
        _check_size(block, SM4_BLOCK_SIZE, "block")
        return encryptor.update(block)

    return encrypt


def pkcs7_pad(data: bytes) -> bytes:
    count = SM4_BLOCK_SIZE - len(data) % SM4_BLOCK_SIZE
    return data + bytes([count]) * count


def pkcs7_unpad(data: bytes) -> bytes:
    count = data[-1] if data else 0
    if not 1 <= count <= SM4_BLOCK_SIZE or data[-count:] != bytes([count]) * count:
        raise DecryptionFailed("SM4-CBC padding is invalid (wrong key or tampered data)")
    return data[:-count]


def _check_key(key: bytes) -> None:
    _check_size(key, SM4_KEY_SIZE, "SM4 key")


def _check_size(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, not {len(value)}")
