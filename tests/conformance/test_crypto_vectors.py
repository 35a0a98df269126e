"""Known-answer vectors and interoperability with the openssl CLI and the gmssl package."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from gmssl import func as gmssl_func
from gmssl import sm2 as gmssl_sm2
from gmssl import sm3 as gmssl_sm3

from crypto import (
    DEFAULT_SM2_ID,
    SignatureInvalid,
    SM2PrivateKey,
    SM2PublicKey,
    sm3,
    sm3_hex,
)

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command line not installed")

MESSAGE = b"<Manifest voyage='V001'>\x00binary tail\xff</Manifest>"
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")
SM2_CURVE_OID = bytes.fromhex("06082a811ccf5501822d")

# GM/T 0003.5-2012 example on the recommended curve (ID 1234567812345678, "message digest").
KAT_D = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
KAT_X = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
KAT_Y = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
KAT_R = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
KAT_S = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
KAT_MESSAGE = b"message digest"


def der_integer(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")  # minimal, with a sign bit
    return b"\x02" + bytes([len(body)]) + body


def der_signature(r: int, s: int) -> bytes:
    body = der_integer(r) + der_integer(s)
    return b"\x30" + bytes([len(body)]) + body


def raw_signature(der: bytes) -> tuple[int, int]:
    assert der[0] == 0x30
    r_len = der[3]
    r = int.from_bytes(der[4 : 4 + r_len], "big")
    s_len = der[5 + r_len]
    s = int.from_bytes(der[6 + r_len : 6 + r_len + s_len], "big")
    return r, s


def traditional_ec_pem(d_hex: str, point: bytes) -> bytes:
    """RFC 5915 ECPrivateKey with the SM2 curve OID, as OpenSSL 1.1.1 and other tools write it."""
    body = (
        b"\x02\x01\x01"
        + b"\x04\x20"
        + bytes.fromhex(d_hex)
        + b"\xa0\x0a"
        + SM2_CURVE_OID
        + b"\xa1\x44\x03\x42\x00"
        + point
    )
    der = b"\x30" + bytes([len(body)]) + body
    lines = base64.encodebytes(der).replace(b"\n", b"")
    return b"-----BEGIN EC PRIVATE KEY-----\n" + lines + b"\n-----END EC PRIVATE KEY-----\n"


def public_xy_hex(public: SM2PublicKey) -> str:
    der = public.to_der()
    assert der.startswith(SPKI_PREFIX)
    return der[len(SPKI_PREFIX) :].hex()


def openssl(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], input=input, capture_output=True, check=False)


# -- SM3 ----------------------------------------------------------------------------------------


def test_sm3_standard_vectors() -> None:
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert (
        sm3_hex(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )
    assert len(sm3(b"")) == 32


@pytest.mark.parametrize("length", [0, 1, 55, 56, 63, 64, 65, 119, 128, 1000])
def test_sm3_agrees_with_system_openssl_and_gmssl(length: int) -> None:
    data = os.urandom(length)
    assert sm3(data) == hashlib.new("sm3", data).digest()
    assert sm3_hex(data) == gmssl_sm3.sm3_hash(gmssl_func.bytes_to_list(data))


# -- SM2 known answer -----------------------------------------------------------------------


def kat_public_key() -> SM2PublicKey:
    return SM2PublicKey.from_der(SPKI_PREFIX + bytes.fromhex(KAT_X + KAT_Y))


def test_sm2_standard_signature_verifies() -> None:
    signature = der_signature(int(KAT_R, 16), int(KAT_S, 16))
    kat_public_key().verify(signature, KAT_MESSAGE, user_id=b"1234567812345678")
    kat_public_key().verify(signature, KAT_MESSAGE)
    with pytest.raises(SignatureInvalid):
        kat_public_key().verify(signature, KAT_MESSAGE + b".")
    with pytest.raises(SignatureInvalid):
        kat_public_key().verify(der_signature(int(KAT_R, 16), int(KAT_S, 16) ^ 1), KAT_MESSAGE)


def test_sm2_standard_private_key_in_traditional_pem() -> None:
    pem = traditional_ec_pem(KAT_D, b"\x04" + bytes.fromhex(KAT_X + KAT_Y))
    key = SM2PrivateKey.from_pem(pem)
    assert key.public_key() == kat_public_key()
    kat_public_key().verify(key.sign(KAT_MESSAGE), KAT_MESSAGE)


# -- gmssl cross-check ----------------------------------------------------------------------


def gmssl_compatible_key() -> SM2PrivateKey:
    # gmssl strips a "04" prefix with str.lstrip, which also eats leading "0"/"4" digits of x.
    while True:
        key = SM2PrivateKey.generate()
        if public_xy_hex(key.public_key())[0] not in "04":
            return key


def test_our_signature_verifies_in_gmssl_and_back() -> None:
    key = gmssl_compatible_key()
    xy = public_xy_hex(key.public_key())
    gm = gmssl_sm2.CryptSM2(private_key="", public_key=xy)
    r, s = raw_signature(key.sign(MESSAGE))
    assert gm.verify_with_sm3(f"{r:064x}{s:064x}", MESSAGE)
    assert not gm.verify_with_sm3(f"{r:064x}{s:064x}", MESSAGE + b"x")

    d = private_scalar_hex(key)
    signer = gmssl_sm2.CryptSM2(private_key=d, public_key=xy)
    raw = signer.sign_with_sm3(MESSAGE, os.urandom(32).hex())
    key.public_key().verify(der_signature(int(raw[:64], 16), int(raw[64:], 16)), MESSAGE)


def private_scalar_hex(key: SM2PrivateKey) -> str:
    """The private scalar from our unencrypted PKCS#8 (OpenSSL's fixed layout for SM2)."""
    der = base64.b64decode(b"".join(key.to_pem().splitlines()[1:-1]))
    marker = b"\x02\x01\x01\x04\x20"
    start = der.index(marker) + len(marker)
    return der[start : start + 32].hex()


# -- openssl command line -------------------------------------------------------------------


@needs_openssl
def test_our_signature_verifies_with_openssl(tmp_path: Path) -> None:
    key = SM2PrivateKey.generate()
    (tmp_path / "pub.pem").write_bytes(key.public_key().to_pem())
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "sig").write_bytes(key.sign(MESSAGE))
    (tmp_path / "sig_alice").write_bytes(key.sign(MESSAGE, user_id=b"ALICE123@YAHOO.COM"))

    def verify(sig: str, distid: str) -> subprocess.CompletedProcess[bytes]:
        return openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
            "-rawin", "-digest", "sm3", "-pkeyopt", f"distid:{distid}",
            "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / sig),
        )  # fmt: skip

    ok = verify("sig", DEFAULT_SM2_ID.decode())
    assert ok.returncode == 0, ok.stderr
    assert b"Signature Verified Successfully" in ok.stdout
    assert verify("sig", "1234567812345679").returncode != 0
    assert verify("sig_alice", "ALICE123@YAHOO.COM").returncode == 0
    assert verify("sig_alice", DEFAULT_SM2_ID.decode()).returncode != 0


@needs_openssl
def test_openssl_signature_verifies_with_us(tmp_path: Path) -> None:
    key_pem = tmp_path / "key.pem"
    assert openssl("genpkey", "-algorithm", "SM2", "-out", str(key_pem)).returncode == 0
    (tmp_path / "msg").write_bytes(MESSAGE)
    signed = openssl(
        "pkeyutl", "-sign", "-inkey", str(key_pem), "-rawin", "-digest", "sm3",
        "-pkeyopt", "distid:1234567812345678", "-in", str(tmp_path / "msg"),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    public = openssl("pkey", "-in", str(key_pem), "-pubout")
    assert public.returncode == 0, public.stderr
    SM2PublicKey.from_pem(public.stdout).verify(signed.stdout, MESSAGE)
    with pytest.raises(SignatureInvalid):
        SM2PublicKey.from_pem(public.stdout).verify(signed.stdout, MESSAGE, user_id=b"")


@needs_openssl
def test_openssl_generated_key_loads_and_matches(tmp_path: Path) -> None:
    key_pem = tmp_path / "key.pem"
    assert openssl("genpkey", "-algorithm", "SM2", "-out", str(key_pem)).returncode == 0
    key = SM2PrivateKey.from_pem(key_pem.read_bytes())
    public = openssl("pkey", "-in", str(key_pem), "-pubout")
    assert key.public_key() == SM2PublicKey.from_pem(public.stdout)
    assert key.public_key().to_pem() == public.stdout
    der = openssl("pkey", "-in", str(key_pem), "-pubout", "-outform", "DER")
    assert SM2PublicKey.from_der(der.stdout).to_der() == der.stdout


@needs_openssl
def test_openssl_traditional_and_encrypted_keys_load(tmp_path: Path) -> None:
    key_pem = tmp_path / "key.pem"
    assert openssl("genpkey", "-algorithm", "SM2", "-out", str(key_pem)).returncode == 0
    expected = SM2PrivateKey.from_pem(key_pem.read_bytes()).public_key()

    # OpenSSL 3.0 `openssl ec` labels the RFC 5915 structure "SM2 PRIVATE KEY"; 1.1.1 and most
    # other tools say "EC PRIVATE KEY". Both must load.
    traditional = openssl("ec", "-in", str(key_pem))
    assert traditional.returncode == 0, traditional.stderr
    assert b"-----BEGIN SM2 PRIVATE KEY-----" in traditional.stdout
    relabelled = traditional.stdout.replace(b"SM2 PRIVATE KEY", b"EC PRIVATE KEY")
    for pem in (traditional.stdout, relabelled):
        assert SM2PrivateKey.from_pem(pem).public_key() == expected

    encrypted = openssl("pkey", "-in", str(key_pem), "-aes-256-cbc", "-passout", "pass:s3cret")
    assert encrypted.stdout.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert SM2PrivateKey.from_pem(encrypted.stdout, b"s3cret").public_key() == expected


@needs_openssl
def test_our_pem_loads_in_openssl(tmp_path: Path) -> None:
    key = SM2PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    (tmp_path / "enc.pem").write_bytes(key.to_pem(password=b"s3cret"))
    (tmp_path / "pub.pem").write_bytes(key.public_key().to_pem())
    expected = key.public_key().to_pem()

    plain = openssl("pkey", "-in", str(tmp_path / "key.pem"), "-pubout")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == expected
    text = openssl("pkey", "-in", str(tmp_path / "key.pem"), "-noout", "-text")
    assert b"ASN1 OID: SM2" in text.stdout

    decrypted = openssl(
        "pkey", "-in", str(tmp_path / "enc.pem"), "-passin", "pass:s3cret", "-pubout"
    )
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == expected
    wrong = openssl("pkey", "-in", str(tmp_path / "enc.pem"), "-passin", "pass:nope", "-pubout")
    assert wrong.returncode != 0
    info = openssl("asn1parse", "-in", str(tmp_path / "enc.pem"))
    assert b"aes-256-cbc" in info.stdout

    public = openssl("pkey", "-pubin", "-in", str(tmp_path / "pub.pem"), "-pubout")
    assert public.returncode == 0, public.stderr
    assert public.stdout == expected
