"""China E-Port envelopes going out, on a real broker: a carrier's MT2101 sea pre-manifest in a
DxpMsg it signed (its X.509 SM2 certificate made with the `openssl` command line) reaches
customs, configured for DXP, as a sealed delivery whose payload is a DxpMsg holding the
manifest signed by the gateway in customs' convention; the MSA, not so configured, gets its
delivery as before. The carrier, itself a DXP party, gets an MT9999 for each of its
envelopes (accepted, a duplicate CopMsgId, refused) on its delivery topic, signed in its
own convention; none for an envelope whose signature does not verify."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.cn_receipt import (
    ACCEPTED_CODE,
    DUPLICATE_CODE,
    MESSAGE_TYPE,
    REFUSED_CODE,
    parse_receipt,
)
from crypto import Certificate, SM2PrivateKey
from gateway.home.create import ContractSpec, Home, create_home
from gateway.home.eport_home import add_certificate_entries, issue, make_ca
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_DXP_COP_MSG_ID, Topics
from gateway.kafka.wire import read_topics
from gateway.parts import GatewayParts
from gateway.publish.dxp_egress import DxpSigner
from message_formats import SafeXmlParser
from message_formats.dxp import (
    DxpEnvelope,
    DxpTransInfo,
    build_dxp_msg,
    format_creat_time,
    serialise,
)
from tests.integration.service_support import (
    deduplicated_deliveries,
    running_gateway,
    wait_ready,
)
from tests.integration.support import gateway_parts, trail_entries
from tests.unit.dxp_support import GATEWAY_DXP_ID, GatewayCertificates, add_dxp, open_envelope
from tests.unit.sm2_ca import OPENSSL

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command line")]

CARRIER, CUSTOMS, MSA = "cn.port.sh", "cn.customs.sh", "cn.msa.sh"
CARRIER_DXP_ID, CUSTOMS_DXP_ID = "3100900000001", "EPORTCUS2200"
MANIFESTS = Path(__file__).parents[1] / "data" / "cn-manifest"
PRE_MANIFEST = (MANIFESTS / "mt2101_sea_pre_manifest.xml").read_bytes()
SEQUENCE_GAP = (MANIFESTS / "item_sequence_gap.xml").read_bytes()
MANIFEST_TO_CLEARANCE = ContractSpec(
    id="manifest-carrier-to-clearance", provider=CARRIER, consumers=(CUSTOMS, MSA),
    document_types=("cn-manifest",), scope="cross-department",
    purpose="sea pre-manifests for customs risk screening and port state control",
    legal_basis="海关总署公告2010年第70号 (进出境运输工具舱单管理)",
    extra='max_classification = "important"\n')


@dataclasses.dataclass(frozen=True, slots=True)
class EgressHome:
    home: Home
    carrier: DxpSigner
    gateway: GatewayCertificates


@pytest.fixture
def egress_home(tmp_path: Path, topics: Topics) -> EgressHome:
    """Customs takes manifests in their own format, in envelopes signed eport-sm2-sm3; the
    MSA takes them in Avro; the carrier signs with a certificate entry of the keyring and
    takes its receipts in envelopes signed eport-sm2-sha1."""
    customs_format = dataclasses.replace(
        MANIFEST_TO_CLEARANCE, consumers=(CUSTOMS,), id="manifest-to-customs",
        extra=MANIFEST_TO_CLEARANCE.extra + 'delivery_format = "cn-manifest-xml"\n')
    msa_avro = dataclasses.replace(MANIFEST_TO_CLEARANCE, consumers=(MSA,), id="manifest-to-msa")
    home = create_home(tmp_path / "home", contracts=(customs_format, msa_avro), seal_every=4,
                       seal_interval_ms=100, topic_prefix=topics.prefix)
    ca = make_ca(home.path / "pki", "/C=CN/O=中国电子口岸/CN=测试证书管理中心")
    issued = issue(ca, "carrier", 0x3000000000CDE6F, "/C=CN/O=Carrier/CN=carrier")
    add_certificate_entries(home.path, ca, {CARRIER: issued.certificate})
    gateway = add_dxp(home.path, {CUSTOMS: (CUSTOMS_DXP_ID, "eport-sm2-sm3"),
                                  CARRIER: (CARRIER_DXP_ID, "eport-sm2-sha1")})
    certificate = Certificate.from_pem(issued.certificate.read_bytes())
    carrier = DxpSigner(SM2PrivateKey.from_pem(issued.key.read_bytes()), certificate.serial,
                        certificate.der)
    return EgressHome(home, carrier, gateway)


def envelope(carrier: DxpSigner, manifest: bytes, cop_msg_id: str) -> bytes:
    """The carrier's DxpMsg to customs, the envelope signed the E-Port way."""
    info = DxpTransInfo(cop_msg_id, CARRIER, (CUSTOMS_DXP_ID,),
                        format_creat_time(datetime.now(UTC)), "MT2101")
    return carrier.signed_envelope(DxpEnvelope(info, manifest), "eport-sm2-sm3")


async def post(session: aiohttp.ClientSession, base_url: str, document: bytes, key: str
               ) -> int:
    async with session.post(f"{base_url}/v1/dxp", data=document,
                            headers={"Px-Sender": CARRIER, "Idempotency-Key": key,
                                     "Content-Type": "application/xml"},
                            timeout=aiohttp.ClientTimeout(total=60)) as response:
        await response.read()
        return response.status


def posted(home: Home, bootstrap: str, sent: list[tuple[bytes, str]]) -> list[int]:
    """The HTTP status of each envelope posted, in order, to a gateway of `home`."""

    async def run() -> list[int]:
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            return [await gw.serving.alongside(post(session, gw.url, doc, key))
                    for doc, key in sent]

    return asyncio.run(run())


def deliveries(parts: GatewayParts, bootstrap: str, recipient: str) -> list[tuple[Any, dict[
        str, Any]]]:
    messages = asyncio.run(read_topics(bootstrap, [parts.topics.delivery(recipient)]))
    return [(message, parts.schemas.decode(message.value)[1]) for message in messages]


def test_a_dxp_recipient_gets_signed_envelopes_and_a_dxp_sender_its_mt9999_receipts(
    broker: LocalBroker, egress_home: EgressHome, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap_servers
    carrier = egress_home.carrier
    sent = [(envelope(carrier, PRE_MANIFEST, "COP-MT2101-1"), "k1"),
            (envelope(carrier, PRE_MANIFEST, "COP-MT2101-1"), "k2"),
            (envelope(carrier, SEQUENCE_GAP, "COP-MT2101-2"), "k3"),
            (envelope(carrier, PRE_MANIFEST, "COP-MT2101-3").replace(b"COP-MT2101-3",
                                                                     b"COP-MT2101-4"), "k4")]

    assert posted(egress_home.home, bootstrap, sent) == [200, 200, 422, 422]
    _, parts = gateway_parts(egress_home.home)

    (to_customs,) = deliveries(parts, bootstrap, CUSTOMS)
    message, delivery = to_customs
    assert delivery["payload_encoding"] == "dxp+cn-manifest-xml"
    opened = open_envelope(delivery["payload"], egress_home.gateway)
    info = opened.envelope.trans_info
    assert (info.sender_id, info.receiver_ids, info.msg_type) == (
        GATEWAY_DXP_ID, (CUSTOMS_DXP_ID,), "MT2101")
    assert info.cop_msg_id == delivery["delivery_id"] == message.header(H_DXP_COP_MSG_ID).decode()
    assert opened.signature.convention.name == "eport-sm2-sm3"
    business = SafeXmlParser().parse(opened.business)
    assert business.tag == "{urn:Declaration:datamodel:standard:CN:MT2101:1}Manifest"

    ((msa_message, to_msa),) = deliveries(parts, bootstrap, MSA)
    assert to_msa["payload_encoding"] == "avro-single-object"
    assert msa_message.header(H_DXP_COP_MSG_ID) is None

    receipts = deliveries(parts, bootstrap, CARRIER)  # none for the tampered envelope
    assert len(receipts) == 3
    read = []
    for receipt_message, receipt_delivery in receipts:
        assert receipt_delivery["payload_encoding"] == "dxp+cn-manifest-receipt"
        receipt_opened = open_envelope(receipt_delivery["payload"], egress_home.gateway)
        assert receipt_opened.envelope.trans_info.receiver_ids == (CARRIER_DXP_ID,)
        assert receipt_opened.envelope.trans_info.msg_type == MESSAGE_TYPE
        assert receipt_opened.signature.convention.name == "eport-sm2-sha1"
        assert receipt_message.header(H_DXP_COP_MSG_ID) is not None
        read.append(parse_receipt(receipt_opened.business, SafeXmlParser()))
    assert sorted(r.code for r in read) == [ACCEPTED_CODE, DUPLICATE_CODE, REFUSED_CODE]
    by_code = {r.code: r for r in read}
    accepted = by_code[ACCEPTED_CODE]
    assert accepted.answered.message_type == "MT2101"
    assert accepted.answered.message_id.startswith("CN_MT2101_")
    assert accepted.receiver_id == CARRIER_DXP_ID
    assert by_code[DUPLICATE_CODE].text.startswith("DUPLICATE ")
    refused = by_code[REFUSED_CODE]
    assert refused.text.startswith("RULE_SEQUENCE ")
    assert refused.answered.message_id == "COP-MT2101-2"

    # Each recipient takes its deliveries (the receipts included) verified by their seals.
    for recipient, count in ((CUSTOMS, 1), (MSA, 1), (CARRIER, 3)):
        handed = asyncio.run(deduplicated_deliveries(
            bootstrap, parts.topics, recipient, tmp_path / f"dedup-{recipient}", parts.keyring))
        assert sum(handed.values()) == count, recipient
    notified = [e for e in trail_entries(parts, bootstrap)
                if e["kind"] == "NOTIFIED" and e["recipient"] == CARRIER]
    assert len(notified) == 3
    assert all(e["ref_topic"] == parts.topics.delivery(CARRIER) for e in notified)
    delivered = [e for e in trail_entries(parts, bootstrap)
                 if e["kind"] == "DELIVERED" and e["recipient"] == CUSTOMS]
    assert [e["reason"].endswith(f"CopMsgId {info.cop_msg_id}") for e in delivered] == [True]


def test_a_pre_manifest_the_carrier_signed_itself_in_an_unsigned_envelope_is_accepted(
    broker: LocalBroker, egress_home: EgressHome
) -> None:
    """The U-key way (eport-sm2-sha1 on the business message, the envelope unsigned): the
    manifest's own signature authenticates the carrier, the adapter passes the signature by,
    customs gets the manifest in a gateway-signed envelope and the carrier an MT9999 01;
    the same manifest changed after signing is refused (XMLDSIG_DIGEST_MISMATCH), no
    delivery and no MT9999."""
    bootstrap = broker.bootstrap_servers
    carrier = egress_home.carrier
    parser = SafeXmlParser()
    signed = serialise(carrier.sign(parser.parse(PRE_MANIFEST), "eport-sm2-sha1"))
    changed = signed.replace(b"<JourneyID>", b"<JourneyID>9", 1)
    assert changed != signed

    def unsigned_envelope(manifest: bytes, cop_msg_id: str) -> bytes:
        info = DxpTransInfo(cop_msg_id, CARRIER, (CUSTOMS_DXP_ID,),
                            format_creat_time(datetime.now(UTC)), "MT2101")
        return serialise(build_dxp_msg(DxpEnvelope(info, manifest)))

    sent = [(unsigned_envelope(signed, "COP-UKEY-1"), "u1"),
            (unsigned_envelope(changed, "COP-UKEY-2"), "u2")]

    assert posted(egress_home.home, bootstrap, sent) == [200, 422]
    _, parts = gateway_parts(egress_home.home)
    ((_, to_customs),) = deliveries(parts, bootstrap, CUSTOMS)
    opened = open_envelope(to_customs["payload"], egress_home.gateway)
    assert opened.envelope.trans_info.msg_type == "MT2101"
    ((_, receipt),) = deliveries(parts, bootstrap, CARRIER)
    read = parse_receipt(open_envelope(receipt["payload"], egress_home.gateway).business, parser)
    assert read.code == ACCEPTED_CODE
    assert read.answered.message_type == "MT2101"
    accepted = [e for e in trail_entries(parts, bootstrap) if e["kind"] == "ACCEPTED"]
    rejected = [e for e in trail_entries(parts, bootstrap) if e["kind"] == "REJECTED"]
    assert [e["signature_key_id"] for e in accepted] == [
        Certificate.from_der(carrier.certificate).public_key.key_id]
    assert [e["error_code"] for e in rejected] == ["XMLDSIG_DIGEST_MISMATCH"]
