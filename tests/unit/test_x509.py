"""X.509 SM2 certificates and CRLs made by the `openssl` command line, read and checked by
crypto.x509 (libcrypto via ctypes; signatures with the GM/T 0009 user ID)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import (
    Certificate,
    CertificateRefused,
    KeyringError,
    RevocationList,
    SM2PublicKey,
    TrustStore,
    certificates_from_bytes,
    key_name,
    revocation_lists_from_bytes,
    serial_from_key_name,
    sm3_hex,
)
from tests.unit.sm2_ca import (
    COMPANY,
    EPORT_KEY_NAME,
    EPORT_SERIAL,
    PERSON,
    REVOKED_SERIAL,
    Pki,
    make_pki,
    needs_openssl,
    openssl,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2036, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), datetime.now(UTC))


def certificate(path: Path) -> Certificate:
    return Certificate.from_pem(path.read_bytes())


def refusal_code(error: pytest.ExceptionInfo[CertificateRefused]) -> str:
    assert PERSON not in error.value.message and COMPANY not in error.value.message
    return error.value.code


@needs_openssl
def test_a_certificate_reads_as_openssl_wrote_it(pki: Pki) -> None:
    pem = pki.good.read_bytes()
    der = pki.ca.der(pki.good)
    cert = Certificate.from_pem(pem)
    assert Certificate.from_der(der) == cert
    assert cert.der == der
    assert cert.serial == EPORT_SERIAL
    assert cert.key_name == EPORT_KEY_NAME
    assert (cert.not_before, cert.not_after) == (START, END)
    assert cert.subject == f"CN={PERSON},O={COMPANY},C=CN"
    assert cert.issuer == "CN=测试证书管理中心,O=中国电子口岸,C=CN"
    assert cert.fingerprint == sm3_hex(der)
    assert not cert.is_ca
    public_pem = openssl("pkey", "-in", "good.key", "-pubout", cwd=pki.ca.directory)
    assert cert.public_key == SM2PublicKey.from_pem(public_pem)
    assert Certificate.from_pem(cert.to_pem()) == cert


@needs_openssl
def test_repr_and_description_name_the_serial_never_the_subject(pki: Pki) -> None:
    cert = certificate(pki.good)
    assert f"serial={EPORT_SERIAL}" in repr(cert)
    assert EPORT_KEY_NAME in cert.describe()
    for text in (repr(cert), cert.describe()):
        assert PERSON not in text and COMPANY not in text


@needs_openssl
def test_a_certificate_verifies_under_its_issuer(pki: Pki) -> None:
    ca = certificate(pki.ca.cert)
    certificate(pki.good).verify_issued_by(ca)
    ca.verify_issued_by(ca)  # self-signed
    assert ca.is_ca
    assert TrustStore([certificate(pki.other.cert), ca]).issuer_of(certificate(pki.good)) == ca


@needs_openssl
def test_another_ca_or_one_with_the_same_name_is_not_the_issuer(pki: Pki) -> None:
    leaf = certificate(pki.good)
    for issuer in (pki.other.cert, pki.impostor.cert, pki.good):
        with pytest.raises(CertificateRefused) as error:
            leaf.verify_issued_by(certificate(issuer))
        assert refusal_code(error) == "CERT_UNTRUSTED"
    with pytest.raises(CertificateRefused) as error:
        TrustStore([certificate(pki.other.cert), certificate(pki.impostor.cert)]).issuer_of(leaf)
    assert refusal_code(error) == "CERT_UNTRUSTED"


@needs_openssl
def test_a_tampered_certificate_is_refused(pki: Pki) -> None:
    der = bytearray(pki.ca.der(pki.good))
    at = der.find(PERSON.encode())
    der[at : at + 3] = "李".encode()
    tampered = Certificate.from_der(bytes(der))
    assert tampered.subject != certificate(pki.good).subject
    with pytest.raises(CertificateRefused) as error:
        tampered.verify_issued_by(certificate(pki.ca.cert))
    assert refusal_code(error) == "CERT_INVALID"


@needs_openssl
def test_a_certificate_signed_with_an_empty_sm2_id_is_refused(pki: Pki) -> None:
    """OpenSSL 3.0 signs with an empty user ID unless told; GM/T 0009's is 1234567812345678."""
    unset = pki.ca.issue("empty-id", 0x0B, distid=False)  # openssl ca without -sigopt distid
    with pytest.raises(CertificateRefused) as error:
        certificate(unset).verify_issued_by(certificate(pki.ca.cert))
    assert refusal_code(error) == "CERT_INVALID"


@needs_openssl
def test_what_is_not_one_sm2_certificate_is_refused(pki: Pki, tmp_path: Path) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "p256.key", "-subj", "/CN=p256", "-days", "1", "-out", "p256.pem",
            cwd=tmp_path)
    der = pki.ca.der(pki.good)
    for bad in ((tmp_path / "p256.pem").read_bytes(), b"not a certificate", der + b"\x00",
                der[:-1], b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"):
        with pytest.raises(CertificateRefused) as error:
            certificates_from_bytes(bad)
        assert refusal_code(error) == "CERT_INVALID"
        assert isinstance(error.value, KeyringError)


@needs_openssl
def test_a_pem_bundle_gives_every_certificate(pki: Pki) -> None:
    bundle = pki.ca.cert.read_bytes() + b"\n" + pki.other.cert.read_bytes()
    assert [c.serial for c in certificates_from_bytes(bundle)] == [1, 1]
    assert certificates_from_bytes(pki.ca.der(pki.good))[0].serial == EPORT_SERIAL


@needs_openssl
@pytest.mark.parametrize("der", [False, True], ids=["pem", "der"])
def test_a_crl_names_what_its_ca_revoked_and_verifies_under_it(pki: Pki, der: bool) -> None:
    (crl,) = revocation_lists_from_bytes(pki.ca.crl(f"list-{der}", der=der).read_bytes())
    ca = certificate(pki.ca.cert)
    assert crl.is_issued_by(ca)
    assert not crl.is_issued_by(certificate(pki.impostor.cert))
    assert not crl.is_issued_by(certificate(pki.good))
    revoked = certificate(pki.revoked)
    revoked_at = crl.revocation_time(revoked.serial)
    assert revoked_at is not None
    assert crl.revocation_time(EPORT_SERIAL) is None
    assert crl.next_update is not None and crl.next_update > crl.this_update
    store = TrustStore([ca], [crl])
    assert store.revoked_at(revoked, ca) == revoked_at
    assert store.revoked_at(certificate(pki.good), ca) is None


@needs_openssl
def test_a_crl_no_trusted_ca_signed_or_a_tampered_one_is_refused(pki: Pki) -> None:
    crl_bytes = pki.ca.crl("tamper.crl", der=True).read_bytes()
    (crl,) = revocation_lists_from_bytes(crl_bytes)
    with pytest.raises(CertificateRefused) as error:
        TrustStore([certificate(pki.other.cert), certificate(pki.impostor.cert)], [crl])
    assert refusal_code(error) == "CRL_INVALID"
    tampered = bytearray(crl_bytes)
    at = tampered.find(bytes([0x02, 0x01, REVOKED_SERIAL, 0x17]))  # the serial, then its time
    tampered[at + 2] = 0x0C
    (changed,) = revocation_lists_from_bytes(bytes(tampered))
    assert changed.revocation_time(0x0C) is not None
    with pytest.raises(CertificateRefused) as error:
        TrustStore([certificate(pki.ca.cert)], [changed])
    assert refusal_code(error) == "CRL_INVALID"
    with pytest.raises(CertificateRefused) as error:
        RevocationList.from_der(b"\x30\x00")
    assert refusal_code(error) == "CRL_INVALID"


def test_the_eport_key_name_of_a_serial() -> None:
    assert key_name(EPORT_SERIAL) == EPORT_KEY_NAME
    assert key_name(0x01691FE9) == "0000000001691fe9"
    assert serial_from_key_name("01691fe9") == 0x01691FE9
    assert serial_from_key_name(" 3000000000CDE6F\n") == EPORT_SERIAL
    for bad in ("", "0x1f", "12 34", "g1", "-1", "1" * 65):
        with pytest.raises(CertificateRefused) as error:
            serial_from_key_name(bad)
        assert error.value.code == "CERT_INVALID"


@given(st.integers(min_value=0, max_value=2**160 - 1))
def test_a_key_name_is_lowercase_hex_of_at_least_16_digits_naming_its_serial(
        serial: int) -> None:
    name = key_name(serial)
    assert len(name) == max(16, len(f"{serial:x}"))
    assert name == name.lower() and int(name, 16) == serial
    assert serial_from_key_name(name) == serial
    assert serial_from_key_name(name.upper().lstrip("0") or "0") == serial
