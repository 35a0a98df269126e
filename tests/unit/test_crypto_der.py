"""The strict DER reader and the signature / ciphertext wire-form conversions."""

from __future__ import annotations

import pytest

from crypto import (
    CiphertextOrder,
    SM2PrivateKey,
    convert_ciphertext,
    signature_from_raw,
    signature_to_raw,
)
from crypto import _der as der
from crypto._sm2codec import decode_signature, encode_signature, parse_ciphertext
from crypto._sm2math import SM2_CURVE

N = SM2_CURVE.n


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "020100"),
        (1, "020101"),
        (127, "02017f"),
        (128, "02020080"),
        (255, "020200ff"),
        (256, "02020100"),
    ],
)
def test_integer_encoding_is_minimal_with_sign_bit(value: int, encoded: str) -> None:
    assert der.integer(value).hex() == encoded
    assert der.read_integer(der.read_single(bytes.fromhex(encoded), der.INTEGER)) == value


@pytest.mark.parametrize("body", ["", "80", "ff", "0001", "007f"])
def test_non_minimal_or_negative_integers_are_refused(body: str) -> None:
    with pytest.raises(ValueError):
        der.read_integer(bytes.fromhex(body))


@pytest.mark.parametrize(
    "data",
    [
        "30",  # truncated
        "3004020101",  # runs past the end
        "308103020101",  # long form for a short length
        "30800000",  # indefinite length
        "3082000302010100",  # long form with a leading zero
        "1f0100",  # multi-byte tag
    ],
)
def test_bad_lengths_are_refused(data: str) -> None:
    with pytest.raises(ValueError):
        der.read_single(bytes.fromhex(data), der.SEQUENCE)


def test_long_lengths_and_trailing_bytes() -> None:
    body = b"\x00" * 200
    encoded = der.octet_string(body)
    assert encoded[:3] == b"\x04\x81\xc8"
    assert der.read_single(encoded, der.OCTET_STRING) == body
    with pytest.raises(ValueError, match="trailing"):
        der.read_single(encoded + b"\x00", der.OCTET_STRING)
    with pytest.raises(ValueError, match="expected DER tag"):
        der.read_single(encoded, der.SEQUENCE)


@pytest.mark.parametrize("dotted", ["1.2.156.10197.1.301", "1.2.840.10045.2.1", "2.999.1"])
def test_oid_round_trip(dotted: str) -> None:
    assert der.read_oid(der.read_single(der.oid(dotted), der.OID)) == dotted


def test_sm2_oid_bytes_match_openssl() -> None:
    assert der.oid("1.2.156.10197.1.301").hex() == "06082a811ccf5501822d"
    with pytest.raises(ValueError):
        der.read_oid(bytes.fromhex("2a8081"))  # non-minimal arc / unterminated


# -- signatures -----------------------------------------------------------------------------------


def test_an_oid_longer_than_any_in_use_is_refused_before_its_arcs_are_read() -> None:
    longest = bytes([0x2A]) + b"\x81" * (der.MAX_OID_BYTES - 2) + b"\x01"
    der.read_oid(longest)
    with pytest.raises(ValueError, match="longer than"):
        der.read_oid(bytes([0x2A]) + b"\xff" * 60_000 + b"\x01")  # one arc of 60 000 bytes


def test_raw_and_der_signatures_convert_both_ways() -> None:
    for r, s in [(1, 2), (0x7F, N - 1), (1 << 247, 1 << 255), (N - 1, 0x80)]:
        encoded = encode_signature(r, s)
        raw = signature_to_raw(encoded)
        assert raw == r.to_bytes(32, "big") + s.to_bytes(32, "big")
        assert signature_from_raw(raw) == encoded
        assert decode_signature(encoded) == (r, s)


def test_short_r_is_left_padded_in_raw_form() -> None:
    encoded = encode_signature(0x1234, 1 << 255)
    assert len(encoded) == 2 + 4 + 35
    raw = signature_to_raw(encoded)
    assert raw[:30] == bytes(30) and raw[30:32] == b"\x12\x34"


@pytest.mark.parametrize("raw", [bytes(64), b"\x01" * 63, bytes(32) + b"\x01" * 32])
def test_raw_signatures_must_be_64_bytes_in_range(raw: bytes) -> None:
    with pytest.raises(ValueError):
        signature_from_raw(raw)


def test_out_of_range_der_signature_has_no_raw_form() -> None:
    with pytest.raises(ValueError, match="out of range"):
        signature_to_raw(encode_signature(N, 1))
    with pytest.raises(ValueError):
        decode_signature(der.sequence(der.integer(1), der.integer(2), der.integer(3)))


# -- ciphertexts ----------------------------------------------------------------------------------


def test_ciphertext_orders_convert_losslessly() -> None:
    key = SM2PrivateKey.generate()
    c1c3c2 = key.public_key().encrypt(b"hello, port")
    c1c2c3 = convert_ciphertext(c1c3c2, "C1C3C2", "C1C2C3")
    asn1 = convert_ciphertext(c1c2c3, CiphertextOrder.C1C2C3, CiphertextOrder.ASN1)
    assert c1c2c3 == c1c3c2[:65] + c1c3c2[97:] + c1c3c2[65:97]
    assert asn1[0] == 0x30
    assert convert_ciphertext(asn1, "ASN1", "C1C3C2") == c1c3c2
    assert key.decrypt(asn1, order="ASN1") == b"hello, port"


@pytest.mark.parametrize("order", list(CiphertextOrder))
def test_malformed_ciphertexts_are_refused(order: CiphertextOrder) -> None:
    point = SM2_CURVE.encode_point(SM2_CURVE.generator)
    for data in (b"", point + bytes(32), b"\x05" + point[1:] + bytes(40), b"\x30\x00"):
        with pytest.raises(ValueError):
            parse_ciphertext(data, order)


def test_asn1_ciphertext_point_must_be_on_the_curve() -> None:
    bad = der.sequence(der.integer(1), der.integer(2), der.octet_string(bytes(32)), b"\x04\x01x")
    with pytest.raises(ValueError, match="not on the SM2 curve"):
        parse_ciphertext(bad, CiphertextOrder.ASN1)
