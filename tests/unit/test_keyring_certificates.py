"""Keyring entries given as X.509 SM2 certificates (`certificate = "…"`), trusted through
the keyring's `trust` CAs and revoked by their `crls`; certificates and CRLs made by the
`openssl` command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crypto import (
    KeyEntry,
    KeyNotValidAt,
    KeyRevoked,
    Keyring,
    KeyringError,
    KeyRole,
    KeyRoleRefused,
    SM2PrivateKey,
    SM2PublicKey,
    UnknownSigner,
)
from tests.unit.sm2_ca import (
    EPORT_KEY_NAME,
    EPORT_SERIAL,
    REVOKED_SERIAL,
    Pki,
    make_pki,
    needs_openssl,
)

pytestmark = needs_openssl

CARRIER = "cn.carrier.cosco"
DOC = b"<Manifest><Head><MessageType>MT2101</MessageType></Head></Manifest>"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("keyring-pki"), NOW)


def signing_key(certificate: Path) -> SM2PrivateKey:
    return SM2PrivateKey.from_pem(certificate.with_suffix(".key").read_bytes())


def keyring_file(directory: Path, *certificates: Path, trust: tuple[Path, ...] = (),
                 crls: tuple[Path, ...] = (), extra: str = "") -> Path:
    """A keyring.toml in `directory` with one entry of CARRIER per certificate."""
    lines = [f"trust = {[str(path) for path in trust]}".replace("'", '"'),
             f"crls = {[str(path) for path in crls]}".replace("'", '"')]
    for certificate in certificates:
        lines += ["[[key]]", f'agency = "{CARRIER}"', f'certificate = "{certificate}"', extra]
    path = directory / "keyring.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(directory: Path, pki: Pki, *certificates: Path, extra: str = "") -> Keyring:
    return Keyring.from_toml(keyring_file(directory, *certificates, trust=(pki.ca.cert,),
                                          crls=(pki.crl,), extra=extra))


def test_a_certificate_from_openssl_is_accepted_and_found_by_its_serial(
        tmp_path: Path, pki: Pki) -> None:
    keyring = load(tmp_path, pki, pki.good)
    (entry,) = keyring.keys_for(CARRIER)
    assert entry.certificate is not None and entry.certificate.serial == EPORT_SERIAL
    assert (entry.valid_from, entry.valid_to) == (entry.certificate.not_before,
                                                  entry.certificate.not_after)
    assert entry.roles == frozenset({KeyRole.DOCUMENT, KeyRole.ACK})
    key = signing_key(pki.good)
    assert keyring.verify(CARRIER, key.sign(DOC), DOC, at=NOW) == entry
    for name in (EPORT_SERIAL, EPORT_KEY_NAME, EPORT_KEY_NAME.upper(), "3000000000cde6f"):
        assert keyring.by_certificate_serial(name) == entry
        assert keyring.certificate_signer(name, NOW) == entry
    entry.public_key.verify(key.sign(DOC), DOC)
    with pytest.raises(UnknownSigner):
        keyring.by_certificate_serial(EPORT_SERIAL + 1)
    with pytest.raises(KeyRoleRefused):
        keyring.certificate_signer(EPORT_SERIAL, NOW, KeyRole.SEAL)


def test_the_entrys_own_window_narrows_the_certificates(tmp_path: Path, pki: Pki) -> None:
    until = (NOW + timedelta(days=1)).replace(microsecond=0)
    stamp = until.strftime("%Y-%m-%dT%H:%M:%SZ")
    keyring = load(tmp_path, pki, pki.good, extra=f"valid_to = {stamp}")
    (entry,) = keyring.keys_for(CARRIER)
    assert entry.valid_to == until
    with pytest.raises(KeyNotValidAt) as error:
        keyring.certificate_signer(EPORT_SERIAL, until)
    assert error.value.code == "AUTH_KEY_NOT_VALID"


def test_an_expired_or_not_yet_valid_certificate_is_refused_at_the_time_of_use(
        tmp_path: Path, pki: Pki) -> None:
    keyring = load(tmp_path, pki, pki.expired, pki.future)
    for serial, code in ((0x11, "CERT_EXPIRED"), (0x12, "CERT_NOT_YET_VALID")):
        with pytest.raises(KeyNotValidAt) as error:
            keyring.certificate_signer(serial, NOW)
        assert error.value.code == code
    with pytest.raises(KeyNotValidAt) as error:
        keyring.verify(CARRIER, signing_key(pki.expired).sign(DOC), DOC, at=NOW)
    assert error.value.code == "AUTH_KEY_NOT_VALID"  # one expired, one not yet valid: mixed
    only_expired = load(tmp_path, pki, pki.expired)
    with pytest.raises(KeyNotValidAt) as error:
        only_expired.verify(CARRIER, signing_key(pki.expired).sign(DOC), DOC, at=NOW)
    assert error.value.code == "CERT_EXPIRED"
    assert only_expired.verify(CARRIER, signing_key(pki.expired).sign(DOC), DOC,
                               at=NOW - timedelta(days=45)) == only_expired.entries[0]


def test_a_certificate_its_cas_crl_revokes_is_refused_from_its_revocation(
        tmp_path: Path, pki: Pki) -> None:
    keyring = load(tmp_path, pki, pki.revoked)
    (entry,) = keyring.entries
    revoked_at = entry.certificate_revoked_at
    assert revoked_at is not None
    signature = signing_key(pki.revoked).sign(DOC)
    with pytest.raises(KeyRevoked) as error:
        keyring.verify(CARRIER, signature, DOC, at=revoked_at)
    assert error.value.code == "CERT_REVOKED"
    with pytest.raises(KeyRevoked) as error:
        keyring.certificate_signer(REVOKED_SERIAL, revoked_at + timedelta(days=1))
    assert error.value.code == "CERT_REVOKED"
    before = revoked_at - timedelta(seconds=1)
    assert keyring.verify(CARRIER, signature, DOC, at=before) == entry
    without_crl = Keyring.from_toml(keyring_file(tmp_path, pki.revoked, trust=(pki.ca.cert,)))
    assert without_crl.certificate_signer(REVOKED_SERIAL, revoked_at) == without_crl.entries[0]


def test_a_crl_past_its_next_update_still_revokes_and_is_reported(
        tmp_path: Path, pki: Pki) -> None:
    stale = pki.ca.crl("stale.crl", next_update=NOW - timedelta(days=1))
    with capture_logs() as logs:
        keyring = Keyring.from_toml(keyring_file(tmp_path, pki.revoked, trust=(pki.ca.cert,),
                                                 crls=(stale,)))
    revoked_at = keyring.entries[0].certificate_revoked_at
    assert revoked_at is not None
    with pytest.raises(KeyRevoked) as error:
        keyring.certificate_signer(REVOKED_SERIAL, revoked_at)
    assert error.value.code == "CERT_REVOKED"
    (warning,) = [log for log in logs if log["event"] == "keyring_crl_stale"]
    assert warning["path"] == str(stale) and warning["log_level"] == "warning"
    with capture_logs() as logs:
        load(tmp_path, pki, pki.revoked)
    assert not [log for log in logs if log["event"] == "keyring_crl_stale"]


@pytest.mark.parametrize("case", ["stranger", "no-trust", "tampered", "not-one"])
def test_a_certificate_no_trusted_ca_issued_does_not_load(
        tmp_path: Path, pki: Pki, case: str) -> None:
    certificate, code = pki.good, "CERT_UNTRUSTED"
    trust: tuple[Path, ...] = (pki.ca.cert,)
    if case == "stranger":
        certificate = pki.stranger
    elif case == "no-trust":
        trust = ()
    elif case == "tampered":
        der = bytearray(pki.ca.der(pki.good))
        at = der.find(b"good")
        der[at : at + 4] = b"evil"
        certificate = tmp_path / "tampered.der"
        certificate.write_bytes(bytes(der))
        code = "CERT_INVALID"
    else:
        certificate = tmp_path / "two.pem"
        certificate.write_bytes(pki.good.read_bytes() + pki.revoked.read_bytes())
        code = "CERT_INVALID"
    with pytest.raises(KeyringError) as error:
        Keyring.from_toml(keyring_file(tmp_path, certificate, trust=trust))
    assert error.value.code == code
    assert "[[key]] entry #1" in error.value.message


def test_a_crl_no_trusted_ca_signed_does_not_load(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(KeyringError) as error:
        Keyring.from_toml(keyring_file(tmp_path, pki.good, trust=(pki.ca.cert,),
                                       crls=(pki.other_crl,)))
    assert error.value.code == "CRL_INVALID"


@pytest.mark.parametrize(("text", "expected"), [
    ('trust = "ca.pem"\n', "'trust' must be a list of file paths"),
    ('crls = [1]\n', "'crls' must be a list of file paths"),
    ('trust = ["missing.pem"]\n', "cannot read"),
    ('[[key]]\nagency = "a"\npublic_key = "k.pub"\ncertificate = "c.pem"\n',
     "exactly one of 'public_key'"),
    ('[[key]]\nagency = "a"\ncertificate = ""\n', "'certificate' must be a path"),
])
def test_bad_certificate_settings_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "keyring.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KeyringError, match=expected):
        Keyring.from_toml(path)


def test_two_certificates_with_one_serial_are_refused(tmp_path: Path, pki: Pki) -> None:
    twin = pki.other.issue("twin", EPORT_SERIAL)
    with pytest.raises(KeyringError, match="serial"):
        Keyring.from_toml(keyring_file(tmp_path, pki.good, twin,
                                       trust=(pki.ca.cert, pki.other.cert)))


def test_a_gateway_certificate_seals(tmp_path: Path, pki: Pki) -> None:
    path = keyring_file(tmp_path, pki.good, trust=(pki.ca.cert,))
    path.write_text(path.read_text().replace(CARRIER, "px.gateway"), encoding="utf-8")
    keyring = Keyring.from_toml(path)
    assert keyring.verify_seal(signing_key(pki.good).sign(DOC), DOC, at=NOW,
                               key_id=keyring.entries[0].key_id) == keyring.entries[0]


def test_an_entry_and_its_certificate_must_overlap_and_agree(tmp_path: Path, pki: Pki) -> None:
    keyring = load(tmp_path, pki, pki.good)
    certificate = keyring.entries[0].certificate
    assert certificate is not None and isinstance(certificate.public_key, SM2PublicKey)
    with pytest.raises(ValueError, match="overlap"):
        KeyEntry(CARRIER, certificate.public_key, valid_to=certificate.not_before,
                 certificate=certificate)
    with pytest.raises(ValueError, match="certificate's public key"):
        KeyEntry(CARRIER, SM2PrivateKey.generate().public_key(), certificate=certificate)
