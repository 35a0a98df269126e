"""What a recipient does with a delivery in an envelope, once its seal is verified.

An SM4-encrypted payload (`payload_encoding` `sm4-envelope+<encoding>`, the gateway's own
envelope, crypto.envelope; or `cms-enveloped+<encoding>`, CMS EnvelopedData, crypto.cms) is
opened with the recipient's private key (`open_sealed`). A China E-Port `DxpMsg`
(`dxp+<format>`, docs/eport.md, "Egress in envelopes") is read, then the enveloped signature
of the business message inside is checked with the gateway's E-Port certificate, which the
recipient holds (never the one the message embeds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from crypto import SM2PrivateKey, open_cms
from crypto import open_envelope as open_sm4_envelope
from crypto.xmldsig import SignerKeyResolver, VerifiedSignature, verify_enveloped
from message_formats import SafeXmlParser
from message_formats.dxp import DxpEnvelope, parse_dxp_msg

ENVELOPE_ENCODING_PREFIX = "dxp+"
SM4_ENVELOPE_PREFIX: Final = "sm4-envelope+"
CMS_ENVELOPE_PREFIX: Final = "cms-enveloped+"


def is_sealed(encoding: str) -> bool:
    return encoding.startswith((SM4_ENVELOPE_PREFIX, CMS_ENVELOPE_PREFIX))


def open_sealed(key: SM2PrivateKey, encoding: str, payload: bytes) -> tuple[bytes, str]:
    """The payload out of its SM4 envelope, in either format, and its encoding inside;
    DecryptionFailed when it does not open with `key`. An encoding that is not sealed
    (`is_sealed`) is a ValueError."""
    if encoding.startswith(SM4_ENVELOPE_PREFIX):
        return open_sm4_envelope(key, payload), encoding.removeprefix(SM4_ENVELOPE_PREFIX)
    if encoding.startswith(CMS_ENVELOPE_PREFIX):
        return open_cms(key, payload), encoding.removeprefix(CMS_ENVELOPE_PREFIX)
    raise ValueError("the payload encoding names no SM4 envelope")


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    envelope: DxpEnvelope
    signature: VerifiedSignature

    @property
    def business(self) -> bytes:
        """The business message, its signature included, as the gateway signed it."""
        return self.envelope.data


def open_envelope(payload: bytes, resolve: SignerKeyResolver) -> OpenedEnvelope:
    """FormatError (DXP_*) for an envelope that does not read, XmlSignatureError
    (XMLDSIG_*) for a business message whose signature does not verify."""
    parser = SafeXmlParser()
    envelope = parse_dxp_msg(payload, parser).envelope
    return OpenedEnvelope(envelope, verify_enveloped(parser.parse(envelope.data), resolve))
