"""Keyring entries given as RSA X.509 certificates, as the legacy E-Port CA issues them
(docs/eport-research.md §3: RSA-1024, sha1WithRSA), made with the `openssl` command line:
checked as SM2 certificates are (issuer in `trust`, validity, CRLs, the CA's signature), a
key shorter than `rsa_min_bits` refused, and usable for rsa-sha1 XML signatures only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from crypto import (
    Certificate,
    CertificateKey,
    CertificateRefused,
    CryptoError,
    KeyHint,
    KeyKindRefused,
    KeyNotValidAt,
    KeyRevoked,
    Keyring,
    KeyringError,
    KeyRole,
    RsaKeyEntry,
    SealKeyRefused,
    SignerEntry,
    SM2PrivateKey,
    sign_enveloped,
    verify_enveloped,
)
from crypto.xmldsig import XmlSignatureError
from tests.unit.sm2_ca import OpensslCA, needs_openssl, openssl

pytestmark = needs_openssl

CARRIER = "cn.carrier.cosco"
GATEWAY = "px.gateway"
NOW = datetime.now(UTC)
GOOD_SERIAL = 0x01691F7F  # an 8-digit serial, as the E-Port's RSA certificates have
LEGACY_SERIAL = 0x01691FE9
DOC = b'<Manifest xmlns="urn:Declaration:datamodel:standard:CN:MT2101:1"><Head/></Manifest>'


@dataclass(frozen=True)
class RsaPki:
    """`ca` (RSA-2048, sha256WithRSA) issued `good` (RSA-2048), `expired`, `revoked` (in
    `crl`) and `short` (RSA-1024); `legacy_ca` (sha1WithRSA, as the E-Port's) issued `legacy`
    (RSA-1024); `small_ca` is itself RSA-1024 and issued `small_issued`; `other` (not
    trusted) issued `stranger`; `sm2_ca` issued `sm2`."""

    ca: OpensslCA
    legacy_ca: OpensslCA
    small_ca: OpensslCA
    sm2_ca: OpensslCA
    good: Path
    expired: Path
    revoked: Path
    short: Path
    legacy: Path
    small_issued: Path
    stranger: Path
    sm2: Path
    crl: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> RsaPki:
    root = tmp_path_factory.mktemp("rsa-pki")
    ca = OpensslCA.create(root / "ca", "/C=CN/O=中国电子口岸/CN=RSA CA", rsa_bits=2048)
    legacy_ca = OpensslCA.create(root / "legacy", "/C=CN/O=Legacy/CN=RSA SHA1 CA",
                                 rsa_bits=2048, digest="sha1")
    small_ca = OpensslCA.create(root / "small", "/C=CN/O=Small/CN=RSA 1024 CA", rsa_bits=1024)
    other = OpensslCA.create(root / "other", "/C=CN/O=Other/CN=Other RSA CA", rsa_bits=2048)
    sm2_ca = OpensslCA.create(root / "sm2")
    revoked = ca.issue("revoked", 0x13)
    ca.revoke(revoked)
    return RsaPki(
        ca=ca, legacy_ca=legacy_ca, small_ca=small_ca, sm2_ca=sm2_ca,
        good=ca.issue("good", GOOD_SERIAL),
        expired=ca.issue("expired", 0x11, start=NOW - timedelta(days=60),
                         end=NOW - timedelta(days=30)),
        revoked=revoked,
        short=ca.issue("short", 0x14, rsa_bits=1024),
        legacy=legacy_ca.issue("legacy", LEGACY_SERIAL, rsa_bits=1024),
        small_issued=small_ca.issue("small-issued", 0x15, rsa_bits=2048),
        stranger=other.issue("stranger", 0x16),
        sm2=sm2_ca.issue("sm2", 0x17),
        crl=ca.crl(der=True),
    )  # fmt: skip


def keyring_file(directory: Path, pki: RsaPki, *entries: tuple[str, Path], header: str = "",
                 extra: str = "") -> Path:
    """A keyring.toml trusting the test CAs (not `other`), with the CA's CRL, one entry per
    (agency, certificate)."""
    trust = [pki.ca.cert, pki.legacy_ca.cert, pki.sm2_ca.cert]
    lines = [header, f"trust = {[str(path) for path in trust]}".replace("'", '"'),
             f'crls = ["{pki.crl}"]']
    for agency, certificate in entries:
        lines += ["[[key]]", f'agency = "{agency}"', f'certificate = "{certificate}"', extra]
    path = directory / "keyring.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(directory: Path, pki: RsaPki, *certificates: Path, header: str = "",
         extra: str = "") -> Keyring:
    return Keyring.from_toml(keyring_file(directory, pki, *((CARRIER, c) for c in certificates),
                                          header=header, extra=extra))


def private_key(certificate: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(certificate.with_suffix(".key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def signed(key: rsa.RSAPrivateKey | SM2PrivateKey, serial: int,
           convention: str = "rsa-sha1") -> etree._Element:
    root = etree.fromstring(DOC)
    sign_enveloped(root, key, convention=convention, serial=serial)
    return root


def verified_by(keyring: Keyring, root: etree._Element) -> SignerEntry:
    """What the gateway does with an E-Port signature: the certificate entry its KeyName
    names, usable now, must verify it."""
    found: list[SignerEntry] = []

    def resolve(hint: KeyHint) -> CertificateKey:
        assert hint.serial is not None
        entry = keyring.certificate_signer(hint.serial, NOW)
        found.append(entry)
        return entry.public_key

    verify_enveloped(root, resolve)
    return found[0]


def test_an_rsa_certificate_from_openssl_is_accepted_and_verifies_rsa_sha1(
        tmp_path: Path, pki: RsaPki) -> None:
    keyring = load(tmp_path, pki, pki.good)
    (entry,) = keyring.rsa_entries
    assert isinstance(entry, RsaKeyEntry) and keyring.entries == () and len(keyring) == 0
    assert entry.certificate is not None and entry.certificate.serial == GOOD_SERIAL
    assert entry.public_key.bits == 2048
    assert entry.roles == frozenset({KeyRole.DOCUMENT})
    with pytest.raises(TypeError):  # an entry is of one kind or the other
        SignerEntry(CARRIER, entry.public_key)
    assert (entry.valid_from, entry.valid_to) == (entry.certificate.not_before,
                                                  entry.certificate.not_after)
    assert keyring.certificate_signer("01691f7f", NOW) == entry
    assert keyring.usable_certificates(CARRIER, NOW) == (entry,)
    assert verified_by(keyring, signed(private_key(pki.good), GOOD_SERIAL)) == entry
    tampered = signed(private_key(pki.good), GOOD_SERIAL)
    tampered[0].set("changed", "after signing")
    with pytest.raises(XmlSignatureError) as error:
        verified_by(keyring, tampered)
    assert error.value.code == "XMLDSIG_DIGEST_MISMATCH"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(XmlSignatureError) as error:
        verified_by(keyring, signed(other_key, GOOD_SERIAL))
    assert error.value.code == "XMLDSIG_BAD_SIGNATURE"


def test_an_rsa_key_verifies_no_sm2_convention(tmp_path: Path, pki: RsaPki) -> None:
    keyring = load(tmp_path, pki, pki.good)
    (entry,) = keyring.rsa_entries
    for convention in ("eport-sm2-sm3", "eport-sm2-sha1"):
        root = signed(SM2PrivateKey.generate(), GOOD_SERIAL, convention)
        with pytest.raises(XmlSignatureError) as error:
            verify_enveloped(root, lambda hint: entry.public_key)
        assert error.value.code == "XMLDSIG_KEY_UNSUITABLE", convention


def test_the_legacy_rsa_1024_sha1_certificate_needs_the_keyrings_opt_in(
        tmp_path: Path, pki: RsaPki) -> None:
    for certificate in (pki.legacy, pki.short):
        with pytest.raises(KeyringError) as error:
            load(tmp_path, pki, certificate)
        assert error.value.code == "RSA_KEY_TOO_SHORT"
        assert "1024 bits" in error.value.message and "rsa_min_bits" in error.value.message
    keyring = load(tmp_path, pki, pki.legacy, header="rsa_min_bits = 1024")
    (entry,) = keyring.rsa_entries
    assert entry.public_key.bits == 1024
    assert verified_by(keyring, signed(private_key(pki.legacy), LEGACY_SERIAL)) == entry
    for value in ("512", '"1024"', "true"):
        with pytest.raises(KeyringError, match="'rsa_min_bits' must be an integer"):
            load(tmp_path, pki, pki.legacy, header=f"rsa_min_bits = {value}")


def test_a_trusted_rsa_1024_ca_is_refused_unless_the_keyring_opts_in(
        tmp_path: Path, pki: RsaPki) -> None:
    path = keyring_file(tmp_path, pki, (CARRIER, pki.small_issued))
    path.write_text(path.read_text().replace(f'"{pki.ca.cert}"',
                                             f'"{pki.ca.cert}", "{pki.small_ca.cert}"'))
    with pytest.raises(KeyringError) as error:
        Keyring.from_toml(path)
    assert error.value.code == "RSA_KEY_TOO_SHORT"
    path.write_text("rsa_min_bits = 1024\n" + path.read_text())
    (entry,) = Keyring.from_toml(path).rsa_entries
    assert entry.certificate is not None and entry.certificate.serial == 0x15


def test_an_expired_or_revoked_rsa_certificate_is_refused_with_its_code(
        tmp_path: Path, pki: RsaPki) -> None:
    keyring = load(tmp_path, pki, pki.expired, pki.revoked)
    revoked_at = keyring.rsa_entries[1].certificate_revoked_at
    assert revoked_at is not None  # when the CA's CRL says it was revoked
    with pytest.raises(KeyNotValidAt) as expired:
        keyring.certificate_signer(0x11, revoked_at)
    with pytest.raises(KeyRevoked) as revoked:
        keyring.certificate_signer(0x13, revoked_at)
    assert (expired.value.code, revoked.value.code) == ("CERT_EXPIRED", "CERT_REVOKED")
    assert keyring.certificate_signer(0x11, NOW - timedelta(days=45)).agency_id == CARRIER
    assert keyring.certificate_signer(0x13, revoked_at - timedelta(seconds=1)).agency_id == \
        CARRIER
    only_revoked = load(tmp_path, pki, pki.revoked)
    with pytest.raises(KeyRevoked) as error:
        only_revoked.usable_certificates(CARRIER, revoked_at)
    assert error.value.code == "CERT_REVOKED"


def test_an_rsa_certificate_of_an_untrusted_or_impostor_issuer_is_refused(
        tmp_path: Path, pki: RsaPki) -> None:
    with pytest.raises(KeyringError) as error:
        load(tmp_path, pki, pki.stranger)
    assert error.value.code == "CERT_UNTRUSTED"
    impostor = OpensslCA.create(tmp_path / "impostor", pki.ca.subject, rsa_bits=2048)
    forged = impostor.issue("forged", GOOD_SERIAL)
    with pytest.raises(KeyringError) as error:
        load(tmp_path, pki, forged)
    assert error.value.code in {"CERT_UNTRUSTED", "CERT_INVALID"}
    # The same name and key identifiers, but a signature by another key: CERT_INVALID.
    good = Certificate.from_pem(pki.good.read_bytes())
    changed = bytearray(good.der)
    changed[-5] ^= 0x01  # inside the CA's signature value
    ca = Certificate.from_pem(pki.ca.cert.read_bytes())
    with pytest.raises(CertificateRefused) as refused:
        Certificate.from_der(bytes(changed)).verify_issued_by(ca)
    assert refused.value.code == "CERT_INVALID"


def test_certificates_with_keys_neither_sm2_nor_rsa_are_refused(tmp_path: Path) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "p256.key", "-subj", "/CN=P-256", "-days", "1", "-out", "p256.pem",
            cwd=tmp_path)
    with pytest.raises(CertificateRefused) as error:
        Certificate.from_pem((tmp_path / "p256.pem").read_bytes())
    assert error.value.code == "CERT_INVALID"
    assert "SM2 or RSA" in error.value.message


def test_an_rsa_entry_where_an_sm2_key_is_needed_is_refused_with_its_code(
        tmp_path: Path, pki: RsaPki) -> None:
    keyring = load(tmp_path, pki, pki.good)
    (entry,) = keyring.rsa_entries
    sm2 = SM2PrivateKey.generate()
    refusals: dict[str, CryptoError] = {}
    for use, attempt in {
        "verify a detached signature": lambda: keyring.verify(CARRIER, sm2.sign(DOC), DOC,
                                                             at=NOW),
        "encrypt to the agency": lambda: keyring.current_key(CARRIER, NOW),
        "look the key up by id": lambda: keyring.by_key_id(entry.key_id),
        "verify an acknowledgement": lambda: keyring.verify(CARRIER, sm2.sign(DOC), DOC,
                                                           at=NOW, role=KeyRole.ACK),
    }.items():
        with pytest.raises(KeyKindRefused) as error:
            attempt()
        refusals[use] = error.value
    assert {error.code for error in refusals.values()} == {"AUTH_KEY_NOT_SM2"}
    assert all("rsa-sha1" in error.message for error in refusals.values())
    with pytest.raises(SealKeyRefused) as seal:
        keyring.sealing_key(entry.key_id, NOW)
    assert seal.value.code == "SEAL_KEY_NOT_SEALING"
    assert keyring.usable_entry(entry.key_id, CARRIER, NOW) is None
    assert keyring.keys_for(CARRIER) == () and list(keyring) == []


def test_an_rsa_certificate_may_not_be_the_gateways_or_sign_acknowledgements(
        tmp_path: Path, pki: RsaPki) -> None:
    gateway = keyring_file(tmp_path, pki, (GATEWAY, pki.good))
    with pytest.raises(KeyringError) as error:
        Keyring.from_toml(gateway)
    assert error.value.code == "AUTH_KEY_NOT_SM2"
    with pytest.raises(KeyringError) as error:
        load(tmp_path, pki, pki.good, extra='roles = ["document", "ack"]')
    assert error.value.code == "AUTH_KEY_NOT_SM2"


def test_an_agency_may_hold_an_sm2_and_an_rsa_certificate(tmp_path: Path, pki: RsaPki) -> None:
    keyring = load(tmp_path, pki, pki.sm2, pki.good)
    (sm2_entry,) = keyring.entries
    (rsa_entry,) = keyring.rsa_entries
    assert keyring.keys_for(CARRIER) == (sm2_entry,)
    assert keyring.certificate_entries(CARRIER) == (sm2_entry, rsa_entry)
    sm2 = SM2PrivateKey.from_pem(pki.sm2.with_suffix(".key").read_bytes())
    assert keyring.verify(CARRIER, sm2.sign(DOC), DOC, at=NOW) == sm2_entry
    assert keyring.current_key(CARRIER, NOW) == sm2_entry
    assert verified_by(keyring, signed(private_key(pki.good), GOOD_SERIAL)) == rsa_entry
