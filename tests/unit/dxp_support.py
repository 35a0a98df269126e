"""A gateway home that sends China E-Port envelopes: the gateway's own SM2 certificate (issued
by a CA made with the `openssl` command line) and an RSA one (made with `cryptography`), a
`[dxp]` section naming them and the recipients that take envelopes; and how a recipient opens
what it gets (message_formats.dxp, then crypto.xmldsig with the gateway's certificate)."""

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
from crypto.xmldsig import KeyHint, VerifiedSignature, VerifyKey, verify_enveloped
from message_formats import SafeXmlParser
from message_formats.dxp import DxpEnvelope, parse_dxp_msg
from tests.unit.sm2_ca import OpensslCA

GATEWAY_DXP_ID = "PXGW0001"
SM2_SERIAL = 0x5A000000000001
RSA_SERIAL = 0x5A000000000002


@dataclass(frozen=True, slots=True)
class GatewayCertificates:
    """The gateway's E-Port certificates as a recipient holds them: serial → public key."""

    sm2: Certificate
    rsa: x509.Certificate

    def key_for(self, hint: KeyHint) -> VerifyKey | None:
        keys: dict[int, VerifyKey] = {self.sm2.serial: self.sm2.public_key}
        public = self.rsa.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        keys[self.rsa.serial_number] = public
        return keys.get(hint.serial) if hint.serial is not None else None


def make_gateway_certificates(directory: Path) -> GatewayCertificates:
    """`dxp.pem`/`dxp.key` (SM2, openssl) and `dxp-rsa.pem`/`dxp-rsa.key` in `directory`."""
    ca = OpensslCA.create(directory / "dxp-ca", "/C=CN/O=Test E-Port CA/CN=Test SM2 CA")
    issued = ca.issue("gateway", SM2_SERIAL, subject="/C=CN/O=Port Exchange/CN=gateway")
    (directory / "dxp.pem").write_bytes(issued.read_bytes())
    (directory / "dxp.key").write_bytes(issued.with_suffix(".key").read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(RSA_SERIAL)
                   .not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    (directory / "dxp-rsa.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "dxp-rsa.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return GatewayCertificates(Certificate.from_pem(issued.read_bytes()), certificate)


def dxp_section(recipients: Mapping[str, tuple[str, str]]) -> str:
    """`[dxp]` with the files above, and each recipient: agency → (ReceiverId, convention)."""
    text = (f'\n[dxp]\nsender_id = "{GATEWAY_DXP_ID}"\nkey_file = "dxp.key"\n'
            'certificate_file = "dxp.pem"\nrsa_key_file = "dxp-rsa.key"\n'
            'rsa_certificate_file = "dxp-rsa.pem"\n')
    for agency, (receiver_id, convention) in recipients.items():
        text += (f'\n[dxp.recipients."{agency}"]\nreceiver_id = "{receiver_id}"\n'
                 f'convention = "{convention}"\n')
    return text


def add_dxp(home_path: Path, recipients: Mapping[str, tuple[str, str]]) -> GatewayCertificates:
    """The certificates made in the home, and its gateway.toml given the `[dxp]` section."""
    certificates = make_gateway_certificates(home_path)
    config = home_path / "gateway.toml"
    config.write_text(config.read_text(encoding="utf-8") + dxp_section(recipients),
                      encoding="utf-8")
    return certificates


@dataclass(frozen=True, slots=True)
class Opened:
    envelope: DxpEnvelope
    signature: VerifiedSignature
    business: bytes


def open_envelope(data: bytes, certificates: GatewayCertificates) -> Opened:
    """What a recipient does with a DxpMsg from the gateway: read it, then check the business
    message's enveloped signature with the gateway's certificate."""
    parser = SafeXmlParser()
    envelope = parse_dxp_msg(data, parser).envelope
    signature = verify_enveloped(parser.parse(envelope.data), certificates.key_for)
    return Opened(envelope, signature, envelope.data)
