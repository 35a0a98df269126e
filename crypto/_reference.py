"""The reference backend: gmssl's curve arithmetic, SM3 and SM4, wrapped so it is correct.

gmssl 3.2.2 is used only where it is right, and everything around it is done here:

* ``CryptSM2.__init__`` strips a "04" prefix with ``str.lstrip``, which also eats leading "0"
  and "4" digits of x; so gmssl is never handed a public key, only fixed-width points for its
  scalar multiplication ``_kg``.
* ``_kg(0, P)`` returns P, and its addition has no doubling or infinity case. For a scalar in
  [1, n-1] and a point of order n the double-and-add ladder never meets those cases, so
  every scalar is checked before the call, every point is on the curve, and the one
  addition that can meet them (s·G + t·P_A when verifying) is done by ``Curve.add``.
* Its nonces come from ``random``; ours come from ``secrets``, in [1, n-1].
* Its sign/verify work on raw r ‖ s hex without range checks, and its encryption neither
  checks C1 nor compares C3; the SM2 equations (GB/T 32918.2 §6-7, .4 §6-7) are here, with
  DER signatures and r, s in [1, n-1].
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gmssl import sm2 as gmssl_sm2
from gmssl import sm3 as gmssl_sm3
from gmssl import sm4 as gmssl_sm4

from ._keyfile import (
    PrivateKeyFields,
    private_key_pem,
    read_private_key_pem,
    spki_der,
    spki_point,
)
from ._sm2codec import DIGEST_SIZE, SM2Ciphertext, decode_signature, encode_signature
from ._sm2math import SM2_CURVE, Curve, Point, kdf, z_value
from .errors import CryptoError, DecryptionFailed, KeyInvalid
from .sm4 import (
    GCM_NONCE_SIZE,
    GCM_TAG_SIZE,
    SM4_BLOCK_SIZE,
    SM4_KEY_SIZE,
    pkcs7_pad,
    pkcs7_unpad,
)

_HMAC_BLOCK = 64
_GCM_R = 0xE1 << 120


@dataclass(frozen=True, slots=True, repr=False)
class ReferenceKey:
    """An SM2 key of the reference backend; ``scalar`` is None for a public key."""

    point: Point
    scalar: int | None = None

    def __repr__(self) -> str:
        return "ReferenceKey(<SM2 key>)"


class ReferenceBackend:
    name = "reference"

    def __init__(self, curve: Curve = SM2_CURVE) -> None:
        self._curve = curve
        hex_width = 2 * curve.size
        table = {
            "n": f"{curve.n:0{hex_width}x}",
            "p": f"{curve.p:0{hex_width}x}",
            "g": f"{curve.gx:0{hex_width}x}{curve.gy:0{hex_width}x}",
            "a": f"{curve.a:0{hex_width}x}",
            "b": f"{curve.b:0{hex_width}x}",
        }
        self._gmssl = gmssl_sm2.CryptSM2(private_key="", public_key="", ecc_table=table)

    @property
    def curve(self) -> Curve:
        return self._curve

    # -- SM3 / HMAC-SM3 ----------------------------------------------------------------------

    def sm3(self, data: bytes) -> bytes:
        return bytes.fromhex(gmssl_sm3.sm3_hash(list(data)))

    def hmac_sm3(self, key: bytes, data: bytes) -> bytes:
        if len(key) > _HMAC_BLOCK:
            key = self.sm3(key)
        key = key.ljust(_HMAC_BLOCK, b"\x00")
        inner = self.sm3(bytes(b ^ 0x36 for b in key) + data)
        return self.sm3(bytes(b ^ 0x5C for b in key) + inner)

    # -- SM4 ---------------------------------------------------------------------------------

    def sm4_block_encryptor(self, key: bytes) -> Callable[[bytes], bytes]:
        cipher = _gmssl_sm4(key, gmssl_sm4.SM4_ENCRYPT)

        def encrypt(block: bytes) -> bytes:
            if len(block) != SM4_BLOCK_SIZE:
                raise ValueError("block must be 16 bytes")
            return bytes(cipher.one_round(cipher.sk, list(block)))

        return encrypt

    def sm4_cbc_encrypt(self, key: bytes, iv: bytes, plaintext: bytes) -> bytes:
        encrypt = self.sm4_block_encryptor(key)
        out, previous = bytearray(), _checked_iv(iv)
        for block in _blocks(pkcs7_pad(plaintext)):
            previous = encrypt(_xor(block, previous))
            out += previous
        return bytes(out)

    def sm4_cbc_decrypt(self, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        if not ciphertext or len(ciphertext) % SM4_BLOCK_SIZE:
            raise DecryptionFailed("SM4-CBC ciphertext is not a whole number of blocks")
        cipher = _gmssl_sm4(key, gmssl_sm4.SM4_DECRYPT)
        out, previous = bytearray(), _checked_iv(iv)
        for block in _blocks(ciphertext):
            out += _xor(bytes(cipher.one_round(cipher.sk, list(block))), previous)
            previous = block
        return pkcs7_unpad(bytes(out))

    def sm4_gcm_encrypt(
        self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b""
    ) -> bytes:
        encrypt, counter = self._gcm_start(key, nonce)
        body = _gctr(encrypt, counter + 1, plaintext)
        return body + self._gcm_tag(encrypt, counter, aad, body)

    def sm4_gcm_decrypt(self, key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        encrypt, counter = self._gcm_start(key, nonce)
        if len(data) < GCM_TAG_SIZE:
            raise DecryptionFailed("SM4-GCM data is shorter than its tag")
        body, tag = data[:-GCM_TAG_SIZE], data[-GCM_TAG_SIZE:]
        if not hmac.compare_digest(tag, self._gcm_tag(encrypt, counter, aad, body)):
            raise DecryptionFailed("SM4-GCM authentication failed")
        return _gctr(encrypt, counter + 1, body)

    def _gcm_start(self, key: bytes, nonce: bytes) -> tuple[Callable[[bytes], bytes], int]:
        """NIST SP 800-38D with a 96-bit IV: J0 = IV ‖ 0^31 ‖ 1."""
        if len(nonce) != GCM_NONCE_SIZE:
            raise ValueError("SM4-GCM nonce must be 12 bytes")
        return self.sm4_block_encryptor(key), int.from_bytes(nonce + b"\x00\x00\x00\x01", "big")

    def _gcm_tag(
        self, encrypt: Callable[[bytes], bytes], counter: int, aad: bytes, body: bytes
    ) -> bytes:
        h = int.from_bytes(encrypt(bytes(SM4_BLOCK_SIZE)), "big")
        lengths = (8 * len(aad)).to_bytes(8, "big") + (8 * len(body)).to_bytes(8, "big")
        digest = 0
        for block in (*_blocks(_zero_pad(aad)), *_blocks(_zero_pad(body)), lengths):
            digest = _gf128_multiply(digest ^ int.from_bytes(block, "big"), h)
        mask = int.from_bytes(encrypt(counter.to_bytes(SM4_BLOCK_SIZE, "big")), "big")
        return (digest ^ mask).to_bytes(SM4_BLOCK_SIZE, "big")

    # -- keys --------------------------------------------------------------------------------

    def generate_private_key(self) -> ReferenceKey:
        # GB/T 32918.1-2016 §6.1: d in [1, n-2], so that 1 + d is invertible mod n.
        return self._private_key_from_scalar(secrets.randbelow(self._curve.n - 2) + 1)

    def load_private_key_pem(self, pem: bytes, password: bytes | None) -> ReferenceKey:
        fields = read_private_key_pem(pem, password)
        if not 1 <= fields.scalar <= self._curve.n - 2:
            raise KeyInvalid("SM2 private scalar is out of range [1, n-2]")
        key = self._private_key_from_scalar(fields.scalar)
        if fields.point is not None and fields.point != self._curve.encode_point(key.point):
            raise KeyInvalid("the private key file's public key does not match its scalar")
        return key

    def private_key_to_pem(self, key: object, password: bytes | None) -> bytes:
        private = self._private(key)
        fields = PrivateKeyFields(private.scalar or 0, self._curve.encode_point(private.point))
        return private_key_pem(fields, self._curve.size, password)

    def public_key_der(self, key: object) -> bytes:
        return spki_der(self._curve.encode_point(self._key(key).point))

    def load_public_key_der(self, der: bytes) -> ReferenceKey:
        try:
            return ReferenceKey(self._curve.decode_point(spki_point(der)))
        except ValueError as exc:
            raise KeyInvalid(f"SM2 public key is invalid: {exc}") from exc

    def _private_key_from_scalar(self, scalar: int) -> ReferenceKey:
        """Internal and for known-answer tests: the key pair of a given scalar."""
        if not 1 <= scalar <= self._curve.n - 2:
            raise KeyInvalid("SM2 private scalar is out of range [1, n-2]")
        return ReferenceKey(self._multiply(scalar, self._curve.generator), scalar)

    def _public_key_from_point(self, point: Point) -> ReferenceKey:
        if not self._curve.contains(point):
            raise KeyInvalid("point is not on the curve")
        return ReferenceKey(point)

    # -- signatures --------------------------------------------------------------------------

    def z_value(self, key: object, user_id: bytes) -> bytes:
        return z_value(self._curve, user_id, self._key(key).point, self.sm3)

    def sign(self, key: object, data: bytes, user_id: bytes) -> bytes:
        n = self._curve.n
        while True:
            signature = self._sign_with_k(key, data, user_id, secrets.randbelow(n - 1) + 1)
            if signature is not None:
                return signature

    def _sign_with_k(self, key: object, data: bytes, user_id: bytes, k: int) -> bytes | None:
        """GB/T 32918.2-2016 §6.1 with a caller's nonce: only for known-answer tests.

        None when this k must be rejected (r = 0, r + k = n or s = 0) and another drawn.
        """
        private = self._private(key)
        n, d = self._curve.n, private.scalar or 0
        e = self._digest(private, data, user_id)
        x1, _ = self._multiply(k, self._curve.generator)
        r = (e + x1) % n
        if r == 0 or r + k == n:
            return None
        s = pow(1 + d, -1, n) * (k - r * d) % n
        return None if s == 0 else encode_signature(r, s)

    def verify(self, key: object, signature: bytes, data: bytes, user_id: bytes) -> bool:
        """GB/T 32918.2-2016 §7.1."""
        public = self._key(key)
        n = self._curve.n
        try:
            r, s = decode_signature(signature)
        except ValueError:
            return False
        if not (1 <= r < n and 1 <= s < n):
            return False
        t = (r + s) % n
        if t == 0:
            return False
        e = self._digest(public, data, user_id)
        point = self._curve.add(
            self._multiply(s, self._curve.generator), self._multiply(t, public.point)
        )
        return point is not None and (e + point[0]) % n == r

    def _digest(self, key: ReferenceKey, data: bytes, user_id: bytes) -> int:
        z = z_value(self._curve, user_id, key.point, self.sm3)
        return int.from_bytes(self.sm3(z + data), "big")

    # -- encryption --------------------------------------------------------------------------

    def encrypt(self, key: object, plaintext: bytes) -> SM2Ciphertext:
        n = self._curve.n
        while True:
            ciphertext = self._encrypt_with_k(key, plaintext, secrets.randbelow(n - 1) + 1)
            if ciphertext is not None:
                return ciphertext

    def _encrypt_with_k(self, key: object, plaintext: bytes, k: int) -> SM2Ciphertext | None:
        """GB/T 32918.4-2016 §6.1 with a caller's k: only for known-answer tests.

        None when KDF output is all zero for this k and another must be drawn.
        """
        public = self._key(key)
        c1 = self._curve.encode_point(self._multiply(k, self._curve.generator))
        shared = self._curve.encode_point(self._multiply(k, public.point))[1:]
        mask = kdf(shared, len(plaintext), self.sm3)
        if not any(mask):
            return None
        half = self._curve.size
        c3 = self.sm3(shared[:half] + plaintext + shared[half:])
        return SM2Ciphertext(c1, c3, _xor(plaintext, mask))

    def decrypt(self, key: object, ciphertext: SM2Ciphertext) -> bytes:
        """GB/T 32918.4-2016 §7.1; C1 is checked to be on the curve (cofactor 1)."""
        private = self._private(key)
        try:
            c1 = self._curve.decode_point(ciphertext.c1)
        except ValueError as exc:
            raise DecryptionFailed(f"SM2 ciphertext C1 is invalid: {exc}") from None
        if len(ciphertext.c3) != DIGEST_SIZE or not ciphertext.c2:
            raise DecryptionFailed("SM2 ciphertext is malformed")
        shared = self._curve.encode_point(self._multiply(private.scalar or 0, c1))[1:]
        mask = kdf(shared, len(ciphertext.c2), self.sm3)
        if not any(mask):
            raise DecryptionFailed("SM2 decryption failed")
        plaintext = _xor(ciphertext.c2, mask)
        half = self._curve.size
        check = self.sm3(shared[:half] + plaintext + shared[half:])
        if not hmac.compare_digest(check, ciphertext.c3):
            raise DecryptionFailed("SM2 decryption failed (C3 does not match)")
        return plaintext

    # -- plumbing ----------------------------------------------------------------------------

    def _multiply(self, scalar: int, point: Point) -> Point:
        if not 1 <= scalar < self._curve.n:
            raise CryptoError("scalar outside [1, n-1] given to gmssl's scalar multiplication")
        width = 2 * self._curve.size
        result = self._gmssl._kg(scalar, f"{point[0]:0{width}x}{point[1]:0{width}x}")
        if result is None:
            raise CryptoError("gmssl's scalar multiplication failed")
        return int(result[:width], 16), int(result[width:], 16)

    def _key(self, key: object) -> ReferenceKey:
        if not isinstance(key, ReferenceKey):
            raise CryptoError("key handle does not belong to the reference backend")
        return key

    def _private(self, key: object) -> ReferenceKey:
        private = self._key(key)
        if private.scalar is None:
            raise CryptoError("a private key is needed for this operation")
        return private


def _gmssl_sm4(key: bytes, mode: int) -> gmssl_sm4.CryptSM4:
    if len(key) != SM4_KEY_SIZE:
        raise ValueError(f"SM4 key must be {SM4_KEY_SIZE} bytes, not {len(key)}")
    cipher = gmssl_sm4.CryptSM4()
    cipher.set_key(key, mode)
    return cipher


def _checked_iv(iv: bytes) -> bytes:
    if len(iv) != SM4_BLOCK_SIZE:
        raise ValueError("iv must be 16 bytes")
    return iv


def _blocks(data: bytes) -> list[bytes]:
    return [data[i : i + SM4_BLOCK_SIZE] for i in range(0, len(data), SM4_BLOCK_SIZE)]


def _zero_pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % SM4_BLOCK_SIZE)


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=False))


def _gctr(encrypt: Callable[[bytes], bytes], counter: int, data: bytes) -> bytes:
    out = bytearray()
    prefix = counter >> 32 << 32
    for index, block in enumerate(_blocks(data)):
        value = prefix | ((counter + index) & 0xFFFFFFFF)  # inc32
        out += _xor(block, encrypt(value.to_bytes(SM4_BLOCK_SIZE, "big")))
    return bytes(out)


def _gf128_multiply(x: int, y: int) -> int:
    """Multiplication in GF(2^128) with GCM's bit order (SP 800-38D §6.3)."""
    result, v = 0, y
    for bit in range(127, -1, -1):
        if (x >> bit) & 1:
            result ^= v
        v = (v >> 1) ^ _GCM_R if v & 1 else v >> 1
    return result
