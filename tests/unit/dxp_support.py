"""A gateway home that sends China E-Port envelopes: the gateway's own SM2 certificate (issued
by a CA made with the `openssl` command line, gateway.home.eport_home) and an RSA one (made
with `cryptography`), a `[dxp]` section naming them and the recipients that take envelopes;
and how a recipient opens what it gets (message_formats.dxp, then crypto.xmldsig with the
gateway's certificate: gateway.deliveries.envelopes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from crypto import Certificate
from crypto.xmldsig import KeyHint, VerifyKey
from gateway.deliveries.envelopes import OpenedEnvelope
from gateway.deliveries.envelopes import open_envelope as gateway_envelope
from gateway.home.eport_home import DxpPeer, Issued, add_dxp_section, issue, make_ca

GATEWAY_DXP_ID = "PXGW0001"
SM2_SERIAL = 0x5A000000000001
RSA_SERIAL = 0x5A000000000002


@dataclass(frozen=True, slots=True)
class GatewayCertificates:
    """The gateway's E-Port certificates as a recipient holds them, and their files."""

    sm2: Certificate
    rsa: x509.Certificate
    sm2_files: Issued
    rsa_files: Issued

    def key_for(self, hint: KeyHint) -> VerifyKey | None:
        public = self.rsa.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        keys: dict[int, VerifyKey] = {self.sm2.serial: self.sm2.public_key,
                                      self.rsa.serial_number: public}
        return keys.get(hint.serial) if hint.serial is not None else None


def make_gateway_certificates(directory: Path) -> GatewayCertificates:
    """`dxp-ca/gateway.pem` (SM2, key `gateway.key`) and `dxp-rsa.pem` (key `dxp-rsa.key`)."""
    ca = make_ca(directory / "dxp-ca", "/C=CN/O=Test E-Port CA/CN=Test SM2 CA")
    issued = issue(ca, "gateway", SM2_SERIAL, "/C=CN/O=Port Exchange/CN=gateway")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(RSA_SERIAL)
                   .not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    rsa_files = Issued(directory / "dxp-rsa.pem", directory / "dxp-rsa.key")
    rsa_files.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    rsa_files.key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return GatewayCertificates(Certificate.from_pem(issued.certificate.read_bytes()),
                               certificate, issued, rsa_files)


def add_dxp(home_path: Path, recipients: Mapping[str, tuple[str, str]]) -> GatewayCertificates:
    """The certificates made in the home, and its gateway.toml given `[dxp]` with each
    recipient: agency → (ReceiverId, convention)."""
    certificates = make_gateway_certificates(home_path)
    add_dxp_section(home_path, GATEWAY_DXP_ID, certificates.sm2_files,
                    tuple(DxpPeer(agency, receiver_id, convention)
                          for agency, (receiver_id, convention) in recipients.items()),
                    rsa=certificates.rsa_files)
    return certificates


def open_envelope(data: bytes, certificates: GatewayCertificates) -> OpenedEnvelope:
    """What a recipient does with a DxpMsg from the gateway, with the gateway's certificates."""
    return gateway_envelope(data, certificates.key_for)
