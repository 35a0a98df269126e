"""What a recipient does with a delivery whose payload is a China E-Port `DxpMsg`
(`payload_encoding` `dxp+<format>`, docs/eport.md, "Egress in envelopes"), once its seal is
verified: read the envelope, then check the enveloped signature of the business message
inside with the gateway's E-Port certificate, which the recipient holds (never the one the
message embeds)."""

from __future__ import annotations

from dataclasses import dataclass

from crypto.xmldsig import SignerKeyResolver, VerifiedSignature, verify_enveloped
from message_formats import SafeXmlParser
from message_formats.dxp import DxpEnvelope, parse_dxp_msg

ENVELOPE_ENCODING_PREFIX = "dxp+"


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
