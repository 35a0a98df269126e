"""What the gateway sends as a China E-Port party: its deliveries, and the business receipts
of envelopes, as `DxpMsg` envelopes (docs/eport.md, "Egress in envelopes").

A recipient listed in `[dxp.recipients]` (gateway.home.config) is a `DxpParty`: the business
message it gets, in its own format, is signed enveloped by the gateway's key in the
recipient's convention (crypto.xmldsig), then carried base64 in `Data` with a TransInfo
from the configuration (the gateway's SenderId, the recipient's ReceiverId), the delivery's
id as CopMsgId and the business type as MsgType. Every other recipient is not looked at:
one dictionary lookup per grant is all the enveloping costs a document that has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from lxml import etree

from crypto import Certificate, SM2PrivateKey
from crypto.xmldsig import CONVENTIONS, Convention, KeyKind, SigningKey, sign_enveloped
from gateway.deliveries.envelopes import ENVELOPE_ENCODING_PREFIX
from gateway.errors import ConfigError
from gateway.home.config import DXP_CONFIG_INVALID, DxpSettings
from message_formats import CodedError, SafeXmlParser
from message_formats.dxp import (
    DxpEnvelope,
    DxpTransInfo,
    build_dxp_msg,
    format_creat_time,
    render_dxp_msg,
    serialise,
)

MSG_TYPE_MAX_LENGTH = 30


@dataclass(frozen=True, slots=True)
class DxpSigner:
    """The gateway's key for E-Port signatures and the certificate that names it (its
    serial is the KeyName, its DER the X509Certificate)."""

    key: SigningKey = field(repr=False)
    serial: int
    certificate: bytes = field(repr=False)

    def sign(self, root: etree._Element, convention: Convention | str) -> etree._Element:
        """`root` (a whole document) signed enveloped: KeyName the serial, the certificate
        embedded, as E-Port tools sign."""
        sign_enveloped(root, self.key, convention=convention, serial=self.serial,
                       certificate=self.certificate)
        return root

    def signed_envelope(self, envelope: DxpEnvelope, convention: Convention | str) -> bytes:
        """A `DxpMsg` carrying its own signature (a sender's way; the gateway signs the
        business message inside instead, `DxpParty.envelope`)."""
        return serialise(self.sign(build_dxp_msg(envelope), convention))


@dataclass(frozen=True, slots=True)
class DxpParty:
    """A recipient that takes `DxpMsg` envelopes: its ReceiverId, the gateway's SenderId
    towards it, its signing convention and the key that signs in it."""

    receiver_id: str
    sender_id: str
    convention: Convention
    signer: DxpSigner
    # Made once: a parser compiles its checks when made, and this one reads every document
    # the gateway envelopes for the party (on the event loop, one at a time).
    parser: SafeXmlParser = field(default_factory=SafeXmlParser, repr=False, compare=False)

    def envelope(self, business: bytes, msg_type: str, cop_msg_id: str, at: datetime) -> bytes:
        """`business` (XML) signed enveloped, in a `DxpMsg` created at `at`."""
        root = self.signer.sign(self.parser.parse(business), self.convention)
        info = DxpTransInfo(cop_msg_id, self.sender_id, (self.receiver_id,),
                            format_creat_time(at), msg_type[:MSG_TYPE_MAX_LENGTH])
        return render_dxp_msg(DxpEnvelope(info, serialise(root)))

    def enveloped(self, data: bytes, encoding: str, *, record: Mapping[str, Any],
                  cop_msg_id: str, at: datetime) -> tuple[bytes, str]:
        """A delivery's payload and its encoding, enveloped (`dxp+<format>`). It is a
        document in an XML format: the contracts of a DXP recipient name one (the router
        refuses them otherwise, CONTRACT_DXP_NOT_XML)."""
        return (self.envelope(data, business_type(record, encoding), cop_msg_id, at),
                ENVELOPE_ENCODING_PREFIX + encoding)


@dataclass(frozen=True, slots=True)
class DxpEgress:
    """The recipients that take envelopes, by agency id; empty: none does."""

    parties: Mapping[str, DxpParty] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def load(cls, settings: DxpSettings) -> DxpEgress:
        """Reads the key and certificate each convention in use needs (ConfigError naming
        the file when one does not load)."""
        if not settings.recipients:
            return cls()
        kinds = {CONVENTIONS[r.convention].key_kind for r in settings.recipients.values()}
        signers = {kind: _signer(settings, kind) for kind in kinds}
        return cls(MappingProxyType({
            agency: DxpParty(recipient.receiver_id, recipient.sender_id or settings.sender_id,
                             CONVENTIONS[recipient.convention],
                             signers[CONVENTIONS[recipient.convention].key_kind])
            for agency, recipient in settings.recipients.items()}))


NO_DXP = DxpEgress()


def _signer(settings: DxpSettings, kind: KeyKind) -> DxpSigner:
    if kind is KeyKind.RSA:
        key_file, certificate_file = settings.rsa_key_file, settings.rsa_certificate_file
    else:
        key_file, certificate_file = settings.key_file, settings.certificate_file
    try:
        key_pem, certificate_pem = Path(key_file).read_bytes(), \
            Path(certificate_file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"[dxp]: cannot read {exc.filename}: {exc.strerror}",
                          code=DXP_CONFIG_INVALID) from exc
    try:
        return _rsa_signer(key_pem, certificate_pem) if kind is KeyKind.RSA \
            else _sm2_signer(key_pem, certificate_pem)
    except (ValueError, TypeError, CodedError) as exc:
        raise ConfigError(f"[dxp]: the {kind.value} key or certificate does not load: "
                          f"{type(exc).__name__}", code=DXP_CONFIG_INVALID) from None


def _sm2_signer(key_pem: bytes, certificate_pem: bytes) -> DxpSigner:
    key = SM2PrivateKey.from_pem(key_pem)
    certificate = Certificate.from_pem(certificate_pem)
    _require_pair(key.public_key().to_der() == certificate.public_key.to_der())
    return DxpSigner(key, certificate.serial, certificate.der)


def _rsa_signer(key_pem: bytes, certificate_pem: bytes) -> DxpSigner:
    key = load_pem_private_key(key_pem, password=None)
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    public = certificate.public_key()
    _require_pair(isinstance(public, rsa.RSAPublicKey)
                  and public.public_numbers() == key.public_key().public_numbers())
    return DxpSigner(key, certificate.serial_number, certificate.public_bytes(Encoding.DER))


def _require_pair(matches: bool) -> None:
    if not matches:
        raise ValueError("the key is not the certificate's")


def business_type(record: Mapping[str, Any], format_id: str) -> str:
    """The MsgType of a document: a customs manifest's `Head/MessageType` (MT2101…), else
    its format id."""
    head = record.get("head")
    message_type = head.get("message_type") if isinstance(head, Mapping) else None
    return message_type if isinstance(message_type, str) and message_type else format_id
