"""Deliveries as China E-Port envelopes (gateway.publish.dxp_egress), and the MT9999 business
receipt (adapters.cn_receipt): each published signing convention, read back as a recipient
reads it (message_formats.dxp, crypto.xmldsig with the gateway's certificate); other
recipients' deliveries unchanged byte for byte; the `[dxp]` settings refused precisely."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from adapters.cn_receipt import (
    MESSAGE_TYPE,
    NAMESPACE,
    REFUSED_CODE,
    Answered,
    ManifestReceipt,
    parse_receipt,
    render_receipt,
)
from crypto.xmldsig import XMLDSIG_DIGEST_MISMATCH, XmlSignatureError, verify_enveloped
from gateway.cli.config import check_config
from gateway.decide.pipeline import Opened, Rejection
from gateway.decide.router import CONTRACT_DXP_NOT_XML
from gateway.errors import ConfigError
from gateway.home.config import DXP_CONFIG_INVALID, DxpRecipient, DxpSettings, GatewayConfig
from gateway.home.create import DEMO_CONTRACTS, Home, create_home
from gateway.kafka.names import H_DXP_COP_MSG_ID
from gateway.parts import GatewayParts
from gateway.publish.business_receipts import BusinessReceipts, refused
from gateway.publish.dxp_egress import NO_DXP, DxpEgress
from gateway.publish.plan import Plan
from message_formats import FormatError, SafeXmlParser
from message_formats.dxp import DxpTransInfo, format_creat_time
from tests.unit import publish_support
from tests.unit.dxp_support import (
    GATEWAY_DXP_ID,
    RSA_SERIAL,
    SM2_SERIAL,
    GatewayCertificates,
    add_dxp,
    make_gateway_certificates,
    open_envelope,
)
from tests.unit.sm2_ca import needs_openssl

pytestmark = needs_openssl

MANIFEST = Path(__file__).parents[1] / "data" / "cn-manifest" / "mt2101_sea_pre_manifest.xml"
AT = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)
CONVENTIONS = ("eport-sm2-sm3", "eport-sm2-sha1", "rsa-sha1")
CUSTOMS, MSA = "cn.customs.sh", "cn.msa.sh"


def settings(certificates: GatewayCertificates, convention: str) -> DxpSettings:
    return DxpSettings(
        sender_id=GATEWAY_DXP_ID, key_file=str(certificates.sm2_files.key),
        certificate_file=str(certificates.sm2_files.certificate),
        rsa_key_file=str(certificates.rsa_files.key),
        rsa_certificate_file=str(certificates.rsa_files.certificate),
        recipients={CUSTOMS: DxpRecipient("EPORTCUS2200", convention)})


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_an_envelope_made_in_each_convention_verifies_and_a_changed_one_does_not(
        tmp_path: Path, convention: str) -> None:
    certificates = make_gateway_certificates(tmp_path)
    party = DxpEgress.load(settings(certificates, convention)).parties[CUSTOMS]
    business = MANIFEST.read_bytes()

    opened = open_envelope(party.envelope(business, "MT2101", "cop-0001", AT), certificates)

    assert opened.envelope.trans_info == DxpTransInfo(
        "cop-0001", GATEWAY_DXP_ID, ("EPORTCUS2200",), format_creat_time(AT), "MT2101")
    assert opened.signature.convention.name == convention
    rsa = convention == "rsa-sha1"
    assert opened.signature.hint.serial == (RSA_SERIAL if rsa else SM2_SERIAL)
    assert opened.signature.hint.certificate is not None
    root = SafeXmlParser().parse(opened.business)
    assert root.tag == "{urn:Declaration:datamodel:standard:CN:MT2101:1}Manifest"
    changed = opened.business.replace(b"<JourneyID>", b"<JourneyID>X", 1)
    assert changed != opened.business
    with pytest.raises(XmlSignatureError) as refused:
        verify_enveloped(SafeXmlParser().parse(changed), certificates.key_for)
    assert refused.value.code == XMLDSIG_DIGEST_MISMATCH


def fal1_home(path: Path, delivery_format: str) -> tuple[Home, GatewayParts,
                                                        GatewayCertificates]:
    """The demo's FAL 1 contract delivering to customs and the MSA in `delivery_format`;
    customs takes envelopes."""
    contract = dataclasses.replace(DEMO_CONTRACTS[0],
                                   extra=f'delivery_format = "{delivery_format}"\n')
    home = create_home(path, contracts=(contract, publish_support.PORT_FOLLOWS_ITS_FAL1))
    certificates = add_dxp(path, {CUSTOMS: ("EPORTCUS2200", "eport-sm2-sm3")})
    return home, GatewayParts.load(GatewayConfig.load(home.config_file)), certificates


def test_a_dxp_recipient_gets_a_signed_envelope_and_the_others_the_same_bytes(
        tmp_path: Path) -> None:
    home, parts, certificates = fal1_home(tmp_path / "home", "fal1-xml")

    plain, _ = publish_support.decided(home, parts, "valid_arrival.xml", dxp=NO_DXP)
    enveloped, why = publish_support.decided(home, parts, "valid_arrival.xml", dxp=parts.dxp)

    assert why is None
    before = {grant.recipient: out for grant, out in plain.deliveries}
    after = {grant.recipient: out for grant, out in enveloped.deliveries}
    assert after[MSA] == before[MSA]
    out = after[CUSTOMS]
    _, delivery = parts.schemas.decode(out.value)
    assert delivery["payload_encoding"] == "dxp+fal1-xml"
    assert dict(out.headers)[H_DXP_COP_MSG_ID] == delivery["delivery_id"].encode()
    opened = open_envelope(delivery["payload"], certificates)
    assert opened.envelope.trans_info.cop_msg_id == delivery["delivery_id"]
    assert opened.envelope.trans_info.sender_id == GATEWAY_DXP_ID
    assert opened.envelope.trans_info.receiver_ids == ("EPORTCUS2200",)
    assert opened.envelope.trans_info.msg_type == "fal1-xml"
    assert opened.signature.convention.name == "eport-sm2-sm3"
    _, plain_delivery = parts.schemas.decode(before[CUSTOMS].value)
    assert without_signature(opened.business) == canonical(plain_delivery["payload"])


def canonical(document: bytes) -> bytes:
    return bytes(etree.tostring(SafeXmlParser().parse(document), method="c14n"))


def without_signature(document: bytes) -> bytes:
    """The business message as it was before the gateway signed it."""
    root = SafeXmlParser().parse(document)
    root.remove(root[-1])
    return bytes(etree.tostring(root, method="c14n"))


def test_contracts_that_give_a_dxp_recipient_avro_are_refused_when_loaded(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=CONTRACT_DXP_NOT_XML):
        fal1_home(tmp_path / "home", "avro")


@pytest.mark.parametrize(("table", "says", "code"), [
    ('receiver_id = "EPORTCUS2200"\nconvention = "sm2-md5"\n', "convention must be one of",
     DXP_CONFIG_INVALID),
    ('receiver_id = "AN_ID_OF_SEVENTEEN"\n', "receiver_id", DXP_CONFIG_INVALID),
    ('convention = "eport-sm2-sm3"\n', "bad setting", "CONFIG_INVALID"),
])
def test_a_dxp_recipient_table_that_cannot_be_sent_to_is_refused(
        tmp_path: Path, table: str, says: str, code: str) -> None:
    home = create_home(tmp_path / "home")
    home.config_file.write_text(
        home.config_file.read_text(encoding="utf-8") + '\n[dxp]\nsender_id = "PXGW0001"\n'
        'key_file = "dxp.key"\ncertificate_file = "dxp.pem"\n'
        f'\n[dxp.recipients."{CUSTOMS}"]\n{table}', encoding="utf-8")
    with pytest.raises(ConfigError, match=says) as refused:
        GatewayConfig.load(home.config_file)
    assert refused.value.code == code


def test_an_rsa_recipient_without_an_rsa_key_is_refused(tmp_path: Path) -> None:
    home = create_home(tmp_path / "home")
    home.config_file.write_text(
        home.config_file.read_text(encoding="utf-8") + '\n[dxp]\nsender_id = "PXGW0001"\n'
        'key_file = "dxp.key"\ncertificate_file = "dxp.pem"\n'
        f'\n[dxp.recipients."{CUSTOMS}"]\nreceiver_id = "EPORTCUS"\nconvention = "rsa-sha1"\n',
        encoding="utf-8")
    with pytest.raises(ConfigError, match="rsa_key_file") as refused:
        GatewayConfig.load(home.config_file)
    assert refused.value.code == DXP_CONFIG_INVALID


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path: Path) -> None:
    certificates = make_gateway_certificates(tmp_path)
    certificates.sm2_files.key.write_bytes((tmp_path / "dxp-ca" / "ca.key").read_bytes())
    with pytest.raises(ConfigError) as refused:
        DxpEgress.load(settings(certificates, "eport-sm2-sm3"))
    assert refused.value.code == DXP_CONFIG_INVALID


def test_an_mt9999_is_read_back_as_written_and_names_no_value() -> None:
    receipt = ManifestReceipt(
        sender_id=GATEWAY_DXP_ID, receiver_id="3100900000001", sent=AT,
        answered=Answered("CN_MT2101_1p0_3100900000001_20260601083000000", "MT2101", "2",
                          "026E", "UN9812341"),
        code=REFUSED_CODE, text="RULE_SEQUENCE Declaration/Consignment/ConsignmentItem/"
                                "SequenceNumeric must number the items 1, 2, 3 …")
    data = render_receipt(receipt)
    root = SafeXmlParser().parse(data)
    assert root.tag == f"{{{NAMESPACE}}}Manifest"
    assert root.findtext(f"{{{NAMESPACE}}}Head/{{{NAMESPACE}}}MessageType") == MESSAGE_TYPE
    assert receipt.message_id == f"CN_MT9999_1p0_{GATEWAY_DXP_ID}_20260601163000000"
    assert parse_receipt(data, SafeXmlParser()) == dataclasses.replace(
        receipt, sent=parse_receipt(data, SafeXmlParser()).sent)
    assert parse_receipt(data, SafeXmlParser()).sent == AT


def test_a_document_that_is_no_mt9999_is_refused() -> None:
    with pytest.raises(FormatError) as refused:
        parse_receipt(MANIFEST.read_bytes(), SafeXmlParser())
    assert refused.value.code == "MT9999_INVALID"



def test_an_authenticated_envelope_gets_its_mt9999_and_an_unauthenticated_one_none(
        tmp_path: Path) -> None:
    """The decision on a document that came in an envelope, as the plan of its sender's
    receipt: an MT9999 in a DxpMsg to the sender, signed in its convention, with a NOTIFIED
    entry naming it; none when the envelope's signer was not established."""
    contract = dataclasses.replace(DEMO_CONTRACTS[0], extra='delivery_format = "fal1-xml"\n')
    home = create_home(tmp_path / "home", contracts=(contract,))
    sender = publish_support.SENDER
    certificates = add_dxp(home.path, {sender: ("3100900000001", "eport-sm2-sha1")})
    parts = GatewayParts.load(GatewayConfig.load(home.config_file))
    ctx, _ = publish_support.decided(home, parts, "valid_arrival.xml")
    info = DxpTransInfo("COP-9", sender, ("PXGW0001",), format_creat_time(AT), "fal1-xml")
    ctx = dataclasses.replace(ctx, opened=Opened(info, "fal1-xml", SM2_SERIAL))
    why = Rejection("RULE_SEQUENCE", "Declaration/Item/Sequence must number 1, 2, 3", 75,
                    "REJECTED")
    receipts = BusinessReceipts(parts.dxp, parts.payloads, parts.schemas)
    plan = Plan(ctx.submission)

    added = receipts.added(plan, ctx, refused(why), AT)

    unauthenticated = dataclasses.replace(ctx, signer=None, opened=Opened(info))
    assert receipts.added(plan, unauthenticated, refused(why), AT) is plan
    worker_verified = dataclasses.replace(ctx, signer=None)
    assert len(receipts.added(plan, worker_verified, refused(why), AT).messages) == 1
    (message,) = added.messages
    (entry,) = added.entries
    assert message.sealed and message.out.topic == parts.topics.delivery(sender)
    assert entry.names == 0 and entry.fields["kind"] == "NOTIFIED"
    _, delivery = parts.schemas.decode(message.out.value)
    assert delivery["payload_encoding"] == "dxp+cn-manifest-receipt"
    opened = open_envelope(delivery["payload"], certificates)
    assert opened.signature.convention.name == "eport-sm2-sha1"
    assert entry.fields["reason"].endswith(opened.envelope.trans_info.cop_msg_id)
    receipt = parse_receipt(opened.business, SafeXmlParser())
    assert (receipt.code, receipt.answered.message_id) == (REFUSED_CODE, "COP-9")
    assert receipt.text == "RULE_SEQUENCE Declaration/Item/Sequence must number 1, 2, 3"


def test_config_check_names_each_dxp_problem_with_its_code(tmp_path: Path) -> None:
    """A DXP recipient given Avro by a contract, one that is no agency, and a key file that is
    not there: `portgw config check` lists them all, as the gateway would refuse them."""
    home = create_home(tmp_path / "home")
    home.config_file.write_text(
        home.config_file.read_text(encoding="utf-8") + '\n[dxp]\nsender_id = "PXGW0001"\n'
        'key_file = "absent.key"\ncertificate_file = "absent.pem"\n'
        f'\n[dxp.recipients."{CUSTOMS}"]\nreceiver_id = "EPORTCUS2200"\n'
        '\n[dxp.recipients."cn.nobody"]\nreceiver_id = "NOBODY"\n', encoding="utf-8")

    report = check_config(GatewayConfig.load(home.config_file))

    codes = sorted(problem.code for problem in report.problems)
    assert codes == [DXP_CONFIG_INVALID, "CONFIG_DXP_UNKNOWN_AGENCY", CONTRACT_DXP_NOT_XML]
