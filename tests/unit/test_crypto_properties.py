"""Property tests: the two backends verify each other's signatures and reject every flip.

Keys are drawn as private scalars, so the fast backend gets the same key through PKCS#8; the
explicit examples pin the keys whose x coordinate starts with hex 0 or 4 (the ones gmssl's
lstrip("04") mangles) and nonces that give a short r or s (a 31-byte DER INTEGER).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from crypto import (
    DEFAULT_SM2_ID,
    KeyInvalid,
    SignatureInvalid,
    SM2PrivateKey,
    SM2PublicKey,
    get_backend,
    signature_from_raw,
    signature_to_raw,
)
from crypto._reference import ReferenceBackend
from crypto._sm2codec import decode_signature
from crypto._sm2math import SM2_CURVE

N = SM2_CURVE.n
ANNEX_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
SHORT_MESSAGE = b"short r and s"
K_SHORT_R, K_SHORT_S = 71, 162  # give ANNEX_D a short r / short s over SHORT_MESSAGE
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.integers(min_value=1, max_value=N - 2)
messages = st.binary(max_size=300)
bits = st.integers(min_value=0, max_value=1 << 20)


def reference() -> ReferenceBackend:
    backend = get_backend("reference")
    assert isinstance(backend, ReferenceBackend)
    return backend


def key_pair(scalar: int) -> tuple[SM2PrivateKey, SM2PrivateKey]:
    ref = reference()
    ref_key = SM2PrivateKey(ref, ref._private_key_from_scalar(scalar))
    fast_key = SM2PrivateKey.from_pem(ref_key.to_pem(), backend="fast")
    assert fast_key.public_key() == ref_key.public_key()
    return ref_key, fast_key


def flip(data: bytes, bit: int) -> bytes:
    if not data:
        return b"\x00"
    bit %= 8 * len(data)
    return data[: bit // 8] + bytes([data[bit // 8] ^ (1 << (bit % 8))]) + data[bit // 8 + 1 :]


def rejects(public: SM2PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except SignatureInvalid:
        return True
    return False


@SLOW
@given(scalar=scalars, message=messages, bit=bits)
@example(scalar=11, message=b"x starts with 04", bit=0)
@example(scalar=327, message=b"x starts with 00", bit=1)
@example(scalar=65, message=b"x starts with 40", bit=2)
@example(scalar=138, message=b"", bit=3)  # x starts with 44
def test_backends_verify_each_other(scalar: int, message: bytes, bit: int) -> None:
    ref_key, fast_key = key_pair(scalar)
    ref_public, fast_public = ref_key.public_key(), fast_key.public_key()
    by_ref, by_fast = ref_key.sign(message), fast_key.sign(message)

    fast_public.verify(by_ref, message)
    ref_public.verify(by_fast, message)
    ref_public.verify(by_ref, message)

    changed = flip(message, bit)
    assert rejects(fast_public, by_ref, changed)
    assert rejects(ref_public, by_fast, changed)
    assert rejects(fast_public, flip(by_ref, bit), message)
    assert rejects(ref_public, flip(by_fast, bit), message)


@SLOW
@given(scalar=scalars, bit=bits)
@example(scalar=11, bit=0)
def test_a_flipped_bit_in_the_key_is_rejected(scalar: int, bit: int) -> None:
    ref_key, fast_key = key_pair(scalar)
    message = b"<Manifest/>"
    signature = fast_key.sign(message)

    point = ref_key.public_key().point
    damaged_point = point[:1] + flip(point[1:], bit)
    for backend in ("fast", "reference"):
        with pytest.raises(KeyInvalid):  # off the curve: refused before any verification
            SM2PublicKey.from_point(damaged_point, backend=backend)

    other_scalar = scalar ^ (1 << (bit % 255))
    assume(1 <= other_scalar <= N - 2)
    other_ref, other_fast = key_pair(other_scalar)
    assert rejects(other_ref.public_key(), signature, message)
    assert rejects(other_fast.public_key(), ref_key.sign(message), message)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(min_value=1, max_value=N - 1), message=messages)
@example(k=K_SHORT_R, message=SHORT_MESSAGE)
@example(k=K_SHORT_S, message=SHORT_MESSAGE)
def test_openssl_verifies_reference_signatures_for_any_nonce(k: int, message: bytes) -> None:
    ref = reference()
    handle = ref._private_key_from_scalar(ANNEX_D)
    signature = ref._sign_with_k(handle, message, DEFAULT_SM2_ID, k)
    assume(signature is not None)
    assert signature is not None
    fast_public = SM2PublicKey.from_der(ref.public_key_der(handle), backend="fast")
    fast_public.verify(signature, message)
    assert signature_from_raw(signature_to_raw(signature)) == signature
    r, s = decode_signature(signature)
    if message == SHORT_MESSAGE and k in (K_SHORT_R, K_SHORT_S):
        assert min(r, s) < 1 << 248
