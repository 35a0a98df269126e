"""Interoperability of both backends with the OpenSSL 3 command line and with raw gmssl."""

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
    CiphertextOrder,
    CryptoBackend,
    SignatureInvalid,
    SM2PrivateKey,
    SM2PublicKey,
    get_backend,
    signature_from_raw,
    signature_to_raw,
    sm3,
    sm3_hex,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
)
from crypto._keyfile import PrivateKeyFields, private_key_pem

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command line not installed")

MESSAGE = b"<Manifest voyage='V001'>\x00binary tail\xff</Manifest>"
SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")
SM2_CURVE_OID = bytes.fromhex("06082a811ccf5501822d")

# GM/T 0003.5-2012 Annex A/C (see test_crypto_vectors.py for the provenance).
ANNEX_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
ANNEX_XY = (
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
ANNEX_E = bytes.fromhex("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
ANNEX_RS = (
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
ANNEX_CIPHER_ASN1 = bytes.fromhex(
    "307C022004EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73022100E858F9D8"
    "1E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0042059983C18F809E262923C53AEC2"
    "95D30383B54E39D609D160AFCB1908D0BD8766041321886CA989CA9C7D58087307CA93092D651EFA"
)
# Private scalars whose public x coordinate starts with hex "04" / "00" (found by search):
# the keys gmssl's lstrip("04") mangles.
X_STARTS_04 = 11
X_STARTS_00 = 327


@pytest.fixture(params=["fast", "reference"])
def backend(request: pytest.FixtureRequest) -> CryptoBackend:
    return get_backend(request.param)


def openssl(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], input=input, capture_output=True, check=False)


def key_from_scalar(scalar: int, backend: CryptoBackend) -> SM2PrivateKey:
    pem = private_key_pem(PrivateKeyFields(scalar, None), 32, None)
    return SM2PrivateKey.from_pem(pem, backend=backend)


def private_scalar_hex(key: SM2PrivateKey) -> str:
    """The private scalar from our unencrypted PKCS#8 (OpenSSL's fixed layout for SM2)."""
    der = base64.b64decode(b"".join(key.to_pem().splitlines()[1:-1]))
    marker = b"\x02\x01\x01\x04\x20"
    start = der.index(marker) + len(marker)
    return der[start : start + 32].hex()


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


# -- SM3 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 55, 56, 63, 64, 65, 119, 128, 1000])
def test_sm3_agrees_with_system_openssl_and_gmssl(length: int) -> None:
    data = os.urandom(length)
    assert sm3(data) == hashlib.new("sm3", data).digest()
    assert sm3_hex(data) == gmssl_sm3.sm3_hash(gmssl_func.bytes_to_list(data))
    assert get_backend("reference").sm3(data) == sm3(data)


# -- SM2 signatures with the openssl command line ----------------------------------------------


@needs_openssl
def test_annex_signature_verifies_in_openssl_over_the_annex_digest(tmp_path: Path) -> None:
    """`pkeyutl -verify` without -rawin takes its input as e = SM3(Z ‖ M), so this checks
    OpenSSL against the annex's e, and with it the Z value we verified independently."""
    (tmp_path / "pub.pem").write_bytes(
        SM2PublicKey.from_point(bytes.fromhex("04" + ANNEX_XY)).to_pem()
    )
    (tmp_path / "e").write_bytes(ANNEX_E)
    (tmp_path / "sig").write_bytes(signature_from_raw(bytes.fromhex(ANNEX_RS)))
    result = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
        "-in", str(tmp_path / "e"), "-sigfile", str(tmp_path / "sig"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@needs_openssl
def test_openssl_signature_over_our_digest_verifies_with_us(
    tmp_path: Path, backend: CryptoBackend
) -> None:
    """OpenSSL signs e = SM3(Z ‖ M) with Z computed by us; the backend recomputes Z itself."""
    key = SM2PrivateKey.generate(backend=backend)
    user_id = b"ALICE123@YAHOO.COM"
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    (tmp_path / "e").write_bytes(sm3(key.public_key().z_value(user_id) + MESSAGE))
    signed = openssl("pkeyutl", "-sign", "-inkey", str(tmp_path / "key.pem"),
                     "-in", str(tmp_path / "e"))  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    key.public_key().verify(signed.stdout, MESSAGE, user_id=user_id)
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signed.stdout, MESSAGE)


@needs_openssl
def test_our_signature_verifies_with_openssl(tmp_path: Path, backend: CryptoBackend) -> None:
    key = SM2PrivateKey.generate(backend=backend)
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
def test_openssl_signature_verifies_with_us(tmp_path: Path, backend: CryptoBackend) -> None:
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
    SM2PublicKey.from_pem(public.stdout, backend=backend).verify(signed.stdout, MESSAGE)
    with pytest.raises(SignatureInvalid):
        SM2PublicKey.from_pem(public.stdout, backend=backend).verify(
            signed.stdout, MESSAGE, user_id=b""
        )


# -- SM2 keys with the openssl command line ----------------------------------------------------


@needs_openssl
def test_openssl_generated_key_loads_and_matches(tmp_path: Path, backend: CryptoBackend) -> None:
    key_pem = tmp_path / "key.pem"
    assert openssl("genpkey", "-algorithm", "SM2", "-out", str(key_pem)).returncode == 0
    key = SM2PrivateKey.from_pem(key_pem.read_bytes(), backend=backend)
    public = openssl("pkey", "-in", str(key_pem), "-pubout")
    assert key.public_key() == SM2PublicKey.from_pem(public.stdout, backend=backend)
    assert key.public_key().to_pem() == public.stdout
    assert key.to_pem() == key_pem.read_bytes()  # PKCS#8 written byte for byte like OpenSSL
    der = openssl("pkey", "-in", str(key_pem), "-pubout", "-outform", "DER")
    assert SM2PublicKey.from_der(der.stdout, backend=backend).to_der() == der.stdout


@needs_openssl
def test_openssl_traditional_and_encrypted_keys_load(
    tmp_path: Path, backend: CryptoBackend
) -> None:
    key_pem = tmp_path / "key.pem"
    assert openssl("genpkey", "-algorithm", "SM2", "-out", str(key_pem)).returncode == 0
    expected = SM2PrivateKey.from_pem(key_pem.read_bytes(), backend=backend).public_key()

    # OpenSSL 3.0 `openssl ec` labels the RFC 5915 structure "SM2 PRIVATE KEY"; 1.1.1 and most
    # other tools say "EC PRIVATE KEY". Both must load.
    traditional = openssl("ec", "-in", str(key_pem))
    assert traditional.returncode == 0, traditional.stderr
    assert b"-----BEGIN SM2 PRIVATE KEY-----" in traditional.stdout
    relabelled = traditional.stdout.replace(b"SM2 PRIVATE KEY", b"EC PRIVATE KEY")
    for pem in (traditional.stdout, relabelled):
        assert SM2PrivateKey.from_pem(pem, backend=backend).public_key() == expected

    encrypted = openssl("pkey", "-in", str(key_pem), "-aes-256-cbc", "-passout", "pass:s3cret")
    assert encrypted.stdout.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = SM2PrivateKey.from_pem(encrypted.stdout, b"s3cret", backend=backend)
    assert loaded.public_key() == expected

    sm4 = openssl("pkcs8", "-topk8", "-in", str(key_pem), "-v2", "sm4-cbc",
                  "-passout", "pass:s3cret")  # fmt: skip
    assert sm4.returncode == 0, sm4.stderr
    loaded = SM2PrivateKey.from_pem(sm4.stdout, b"s3cret", backend=backend)
    assert loaded.public_key() == expected


@needs_openssl
def test_our_pem_loads_in_openssl(tmp_path: Path, backend: CryptoBackend) -> None:
    key = SM2PrivateKey.generate(backend=backend)
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    (tmp_path / "enc.pem").write_bytes(key.to_pem(password=b"s3cret"))
    (tmp_path / "pub.pem").write_bytes(key.public_key().to_pem())
    expected = key.public_key().to_pem()

    plain = openssl("pkey", "-in", str(tmp_path / "key.pem"), "-pubout")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == expected
    text = openssl("pkey", "-in", str(tmp_path / "key.pem"), "-noout", "-text")
    assert b"ASN1 OID: SM2" in text.stdout
    check = openssl("pkey", "-in", str(tmp_path / "key.pem"), "-check", "-noout")
    assert check.returncode == 0, check.stderr

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


# -- SM2 encryption with the openssl command line ----------------------------------------------


@needs_openssl
def test_our_ciphertext_decrypts_in_openssl(tmp_path: Path, backend: CryptoBackend) -> None:
    key = SM2PrivateKey.generate(backend=backend)
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    (tmp_path / "ct").write_bytes(key.public_key().encrypt(MESSAGE, order=CiphertextOrder.ASN1))
    result = openssl("pkeyutl", "-decrypt", "-inkey", str(tmp_path / "key.pem"),
                     "-in", str(tmp_path / "ct"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == MESSAGE


@needs_openssl
def test_openssl_ciphertext_decrypts_with_us(tmp_path: Path, backend: CryptoBackend) -> None:
    key = SM2PrivateKey.generate(backend=backend)
    (tmp_path / "pub.pem").write_bytes(key.public_key().to_pem())
    (tmp_path / "msg").write_bytes(MESSAGE)
    result = openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
                     "-in", str(tmp_path / "msg"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert key.decrypt(result.stdout, order=CiphertextOrder.ASN1) == MESSAGE


@needs_openssl
def test_annex_ciphertext_decrypts_in_openssl_with_our_key_file(
    tmp_path: Path, backend: CryptoBackend
) -> None:
    (tmp_path / "key.pem").write_bytes(key_from_scalar(ANNEX_D, backend).to_pem())
    (tmp_path / "ct").write_bytes(ANNEX_CIPHER_ASN1)
    result = openssl("pkeyutl", "-decrypt", "-inkey", str(tmp_path / "key.pem"),
                     "-in", str(tmp_path / "ct"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"encryption standard"


# -- SM4-CBC with the openssl command line -----------------------------------------------------


@needs_openssl
@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 100])
def test_sm4_cbc_agrees_with_openssl_enc(length: int) -> None:
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(length)
    args = ("enc", "-sm4-cbc", "-K", key.hex(), "-iv", iv.hex())
    theirs = openssl(*args, input=data)
    assert theirs.returncode == 0, theirs.stderr
    assert sm4_cbc_encrypt(key, iv, data) == theirs.stdout
    assert get_backend("reference").sm4_cbc_encrypt(key, iv, data) == theirs.stdout
    back = openssl(*args, "-d", input=sm4_cbc_encrypt(key, iv, data))
    assert back.returncode == 0 and back.stdout == data
    assert sm4_cbc_decrypt(key, iv, theirs.stdout) == data


# -- raw gmssl ---------------------------------------------------------------------------------


def gmssl_compatible_key(backend: CryptoBackend) -> SM2PrivateKey:
    # gmssl strips a "04" prefix with str.lstrip, which also eats leading "0"/"4" digits of x.
    while True:
        key = SM2PrivateKey.generate(backend=backend)
        if key.public_key().point[1:].hex()[0] not in "04":
            return key


def test_our_signature_verifies_in_gmssl_and_back(backend: CryptoBackend) -> None:
    key = gmssl_compatible_key(backend)
    xy = key.public_key().point[1:].hex()
    gm = gmssl_sm2.CryptSM2(private_key="", public_key=xy)
    raw = signature_to_raw(key.sign(MESSAGE)).hex()
    assert gm.verify_with_sm3(raw, MESSAGE)
    assert not gm.verify_with_sm3(raw, MESSAGE + b"x")

    signer = gmssl_sm2.CryptSM2(private_key=private_scalar_hex(key), public_key=xy)
    theirs = signer.sign_with_sm3(MESSAGE, os.urandom(32).hex())
    key.public_key().verify(signature_from_raw(bytes.fromhex(theirs)), MESSAGE)


def test_gmssl_ciphertext_decrypts_with_us_and_back(backend: CryptoBackend) -> None:
    key = gmssl_compatible_key(backend)
    gm = gmssl_sm2.CryptSM2(
        private_key=private_scalar_hex(key), public_key=key.public_key().point[1:].hex(), mode=1
    )
    theirs = gm.encrypt(MESSAGE)  # C1C3C2 with C1 missing its 04 prefix
    assert key.decrypt(b"\x04" + theirs) == MESSAGE
    ours = key.public_key().encrypt(MESSAGE)
    assert gm.decrypt(ours[1:]) == MESSAGE


@pytest.mark.parametrize("scalar", [X_STARTS_04, X_STARTS_00])
def test_keys_that_break_gmssl_work_here(backend: CryptoBackend, scalar: int) -> None:
    key = key_from_scalar(scalar, backend)
    xy = key.public_key().point[1:].hex()
    assert xy.startswith(("04", "00"))
    mangled = gmssl_sm2.CryptSM2(private_key="", public_key="04" + xy)
    assert mangled.public_key != xy  # the bug the reference backend wraps
    signature = key.sign(MESSAGE)
    key.public_key().verify(signature, MESSAGE)
    other = get_backend("reference" if backend.name == "fast" else "fast")
    SM2PublicKey.from_der(key.public_key().to_der(), backend=other).verify(signature, MESSAGE)
