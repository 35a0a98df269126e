"""China E-Port DxpMsg envelopes handed to the gateway on a real broker: over HTTP (POST
/v1/dxp, answered with a DxpRep transport receipt) and on the ingress topic (format `dxp`).
The sender is authenticated by the envelope's enveloped XML signature, verified with its
X.509 SM2 certificate entry of the keyring (a CA, certificates and a CRL made with the
`openssl` command line), or, for the legacy rsa-sha1 convention, its RSA certificate entry
(an RSA-1024 certificate signed sha1WithRSA, as the E-Port's are); CopMsgId de-duplicates."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crypto import Certificate, SM2PrivateKey
from crypto.xmldsig import SigningKey, sign_enveloped
from gateway.home.create import Home, create_home
from gateway.ingress.client import submit
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_SENDER, H_SIGNATURE, H_SUBMISSION_ID, Topics
from gateway.kafka.wire import new_producer
from message_formats import SafeXmlParser
from message_formats.dxp import (
    DxpEnvelope,
    DxpReceipt,
    DxpTransInfo,
    build_dxp_msg,
    format_creat_time,
    parse_dxp_rep,
    serialise,
)
from tests.integration.service_support import (
    ARRIVAL,
    PROVIDER,
    RECIPIENTS,
    dead_letters,
    numbered_arrival,
    raw_deliveries,
    running_gateway,
    wait_ready,
)
from tests.integration.support import gateway_parts, trail_entries
from tests.integration.test_http_tls import ask, make_pki, tls_gateway, tls_home
from tests.unit.keyring_support import keyring_text, write_keyring
from tests.unit.sm2_ca import OPENSSL, OpensslCA

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command line")]

CUSTOMS = "cn.customs.sh"
EXPIRED_SENDER = "cn.customs.sh"  # its one certificate has expired
REVOKED_SENDER = "cn.msa.sh"  # its one certificate is in the CA's CRL
CARRIER_SERIAL = 0x3000000000CDE6F  # the E-Port's published serial (docs/eport-research.md §2)
LEGACY_SERIAL = 0x01691FE9  # an 8-digit RSA certificate serial, as the E-Port's


@dataclass(frozen=True, slots=True)
class Signer:
    """An agency's certificate entry as its signing system holds it."""

    agency: str
    key: SigningKey
    serial: int
    der: bytes


@dataclass(frozen=True, slots=True)
class DxpHome:
    home: Home
    carrier: Signer
    expired: Signer
    revoked: Signer
    legacy: Signer  # the carrier's RSA certificate (rsa-sha1)


@pytest.fixture
def dxp_home(tmp_path: Path, topics: Topics) -> DxpHome:
    """A home whose keyring trusts a CA made with openssl and lists certificate entries: the
    provider's (valid), the customs' (expired) and the MSA's (revoked by the CA's CRL); and
    an RSA CA (sha1WithRSA) that issued the provider an RSA-1024 certificate, the keyring
    opting in to 1024-bit RSA keys."""
    home = create_home(tmp_path / "home", seal_every=4, seal_interval_ms=100,
                       topic_prefix=topics.prefix)
    ca = OpensslCA.create(home.path / "pki", "/C=CN/O=中国电子口岸/CN=测试证书管理中心")
    now = datetime.now(UTC)
    issued = {
        PROVIDER: ca.issue("carrier", CARRIER_SERIAL),
        EXPIRED_SENDER: ca.issue("expired", 0x11, start=now - timedelta(days=60),
                                 end=now - timedelta(days=30)),
        REVOKED_SENDER: ca.issue("revoked", 0x13),
    }
    ca.revoke(issued[REVOKED_SENDER])
    crl = ca.crl(der=True)
    rsa_ca = OpensslCA.create(home.path / "rsa-pki", "/C=CN/O=中国电子口岸/CN=RSA CA",
                              rsa_bits=2048, digest="sha1")
    legacy = rsa_ca.issue("carrier-rsa", LEGACY_SERIAL, rsa_bits=1024)
    listed = [*issued.items(), (PROVIDER, legacy)]
    entries = "".join(f'\n[[key]]\nagency = "{agency}"\n'
                      f'certificate = "{path.relative_to(home.path)}"\n'
                      for agency, path in listed)
    trust = [str(path.relative_to(home.path)) for path in (ca.cert, rsa_ca.cert)]
    write_keyring(home, "rsa_min_bits = 1024\n"
                        f"trust = {trust}\n".replace("'", '"')
                        + f'crls = ["{crl.relative_to(home.path)}"]\n'
                        + keyring_text(home) + entries)
    signers = {agency: Signer(agency, SM2PrivateKey.from_pem(path.with_suffix(".key")
                                                              .read_bytes()),
                              Certificate.from_pem(path.read_bytes()).serial, ca.der(path))
               for agency, path in issued.items()}
    legacy_key = serialization.load_pem_private_key(legacy.with_suffix(".key").read_bytes(),
                                                    None)
    assert isinstance(legacy_key, rsa.RSAPrivateKey)
    return DxpHome(home, signers[PROVIDER], signers[EXPIRED_SENDER], signers[REVOKED_SENDER],
                   Signer(PROVIDER, legacy_key, LEGACY_SERIAL, rsa_ca.der(legacy)))


def trans_info(cop_msg_id: str, sender: str, msg_type: str = "fal1-xml") -> DxpTransInfo:
    return DxpTransInfo(cop_msg_id, sender, (CUSTOMS,), format_creat_time(datetime.now(UTC)),
                        msg_type)


def envelope(signer: Signer, document: bytes, info: DxpTransInfo, *,
             convention: str = "eport-sm2-sm3") -> bytes:
    """A DxpMsg holding `document`, signed by `signer` as E-Port tools sign: KeyName the
    certificate's serial, the certificate embedded."""
    root = build_dxp_msg(DxpEnvelope(info, document))
    sign_enveloped(root, signer.key, convention=convention, serial=signer.serial,
                   certificate=signer.der)
    return serialise(root)


@dataclass(frozen=True, slots=True)
class DxpAnswer:
    status: int
    content_type: str
    rep: DxpReceipt | None
    body: Any
    duplicate_of: str | None


async def post_dxp(session: aiohttp.ClientSession, base_url: str, sender: str,
                   document: bytes, key: str) -> DxpAnswer:
    """POST /v1/dxp on the local door (Px-Sender names the agency, as a client certificate
    would under TLS)."""
    async with session.post(f"{base_url}/v1/dxp", data=document,
                            headers={"Px-Sender": sender, "Idempotency-Key": key,
                                     "Content-Type": "application/xml"},
                            timeout=aiohttp.ClientTimeout(total=60)) as response:
        body = await response.read()
        xml = response.content_type == "application/xml"
        return DxpAnswer(response.status, response.content_type,
                         parse_dxp_rep(body, SafeXmlParser()) if xml else None,
                         None if xml else await response.json(),
                         response.headers.get("Px-Duplicate-Of"))


def test_an_envelope_signed_the_eport_way_is_accepted_over_http_routed_and_once_per_cop_msg_id(
    broker: LocalBroker, dxp_home: DxpHome, topics: Topics
) -> None:
    """eport-sm2-sm3 over HTTP: a DxpRep echoing the TransInfo with our success code, the FAL1
    declaration inside delivered to each recipient its contract names; a second envelope
    with the same CopMsgId (signed again, later CreatTime: other bytes) is the first one's
    answer and nothing is delivered again; a new CopMsgId is a new event."""
    bootstrap = broker.bootstrap_servers
    carrier = dxp_home.carrier
    first_info = trans_info("COP-0001", PROVIDER)
    first = envelope(carrier, ARRIVAL, first_info)
    again_info = trans_info("COP-0001", PROVIDER)
    again = envelope(carrier, ARRIVAL, again_info)
    other_info = trans_info("COP-0002", PROVIDER, msg_type="FAL1")  # detected from content
    other = envelope(carrier, numbered_arrival(7), other_info)
    assert first != again

    async def run() -> list[DxpAnswer]:
        config, parts = gateway_parts(dxp_home.home)
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            return [await gw.serving.alongside(post_dxp(session, gw.url, PROVIDER, doc, key))
                    for doc, key in ((first, "k1"), (again, "k2"), (other, "k3"))]

    answers = asyncio.run(run())
    for answer, info in zip(answers, (first_info, again_info, other_info), strict=True):
        assert (answer.status, answer.content_type) == (200, "application/xml"), answer
        assert answer.rep is not None
        assert answer.rep.receiver_id == PROVIDER
        (response,) = answer.rep.responses
        assert response.response_code == "0000"
        assert response.original == info
    assert [a.duplicate_of for a in answers] == [None, f"{PROVIDER}~k1", None]

    for recipient in RECIPIENTS:
        deliveries = asyncio.run(raw_deliveries(bootstrap, topics, recipient))
        assert sorted(deliveries.values()) == [1, 1], (recipient, deliveries)
    kinds = [e["kind"] for e in trail_entries(gateway_parts(dxp_home.home)[1], bootstrap)]
    assert kinds.count("ACCEPTED") == 2 and kinds.count("DUPLICATE") == 1


def test_an_envelope_on_the_ingress_topic_signed_with_the_ukey_convention_is_accepted(
    broker: LocalBroker, dxp_home: DxpHome, topics: Topics
) -> None:
    """eport-sm2-sha1 (SHA-1 digest, raw r‖s), put on px.ingress.v1 by the agency's own
    producer with format `dxp` and no detached signature: accepted, delivered."""
    bootstrap = broker.bootstrap_servers
    document = envelope(dxp_home.carrier, ARRIVAL, trans_info("COP-UKEY-1", PROVIDER),
                        convention="eport-sm2-sha1")

    async def run() -> Any:
        config, parts = gateway_parts(dxp_home.home)
        async with running_gateway(config, parts, bootstrap) as gw:
            return await gw.serving.alongside(submit(
                bootstrap, sender=PROVIDER, format_id="dxp", document=document, signature=b"",
                schemas=parts.schemas, topics=parts.topics, submission_id="ukey-1",
                timeout_s=60))

    signed_receipt = asyncio.run(run())
    receipt = signed_receipt.receipt
    assert receipt.accepted and receipt.error_code is None, receipt
    assert (receipt.format_id, receipt.document_type) == ("dxp", "fal1")
    assert sorted(receipt.recipients) == sorted(RECIPIENTS)
    for recipient in RECIPIENTS:
        assert sum(asyncio.run(raw_deliveries(bootstrap, topics, recipient)).values()) == 1


def test_refused_envelopes_keep_their_codes_in_the_dxprep_the_trail_and_the_dead_letter(
    broker: LocalBroker, dxp_home: DxpHome, topics: Topics
) -> None:
    """Tampered after signing (XMLDSIG_DIGEST_MISMATCH), SenderId not the sender
    (DXP_SENDER_MISMATCH), signed under an expired certificate (CERT_EXPIRED) and under a
    revoked one (CERT_REVOKED): each answered with a DxpRep echoing its TransInfo, its class
    as ResponseCode and the gateway's code leading ResponseInfo; nothing delivered."""
    bootstrap = broker.bootstrap_servers
    carrier = dxp_home.carrier
    tampered = envelope(carrier, ARRIVAL, trans_info("COP-T", PROVIDER)).replace(
        b"<CopMsgId>COP-T<", b"<CopMsgId>COP-X<")
    cases = {
        "tampered": (PROVIDER, tampered, "COP-X", "XMLDSIG_DIGEST_MISMATCH", "1004"),
        "mismatch": (PROVIDER, envelope(carrier, ARRIVAL, trans_info("COP-M", "cn.border.sh")),
                     "COP-M", "DXP_SENDER_MISMATCH", "1999"),
        "expired": (EXPIRED_SENDER, envelope(dxp_home.expired, ARRIVAL,
                                             trans_info("COP-E", EXPIRED_SENDER)),
                    "COP-E", "CERT_EXPIRED", "1002"),
        "revoked": (REVOKED_SENDER, envelope(dxp_home.revoked, ARRIVAL,
                                             trans_info("COP-R", REVOKED_SENDER)),
                    "COP-R", "CERT_REVOKED", "1001"),
    }

    async def run() -> dict[str, DxpAnswer]:
        config, parts = gateway_parts(dxp_home.home)
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            return {key: await gw.serving.alongside(post_dxp(session, gw.url, sender, doc, key))
                    for key, (sender, doc, *_) in cases.items()}

    answers = asyncio.run(run())
    for key, (_, _, cop_msg_id, code, response_code) in cases.items():
        answer = answers[key]
        assert (answer.status, answer.content_type) == (422, "application/xml"), (key, answer)
        assert answer.rep is not None
        (response,) = answer.rep.responses
        assert response.response_code == response_code, key
        assert (response.response_info or "").startswith(f"{code}: "), key
        assert response.original.cop_msg_id == cop_msg_id

    letters = asyncio.run(dead_letters(bootstrap, topics, gateway_parts(dxp_home.home)[1].schemas))
    assert {sid: letter["error_code"] for sid, letter in letters.items()} == {
        f"{sender}~{key}": code for key, (sender, _, _, code, _) in cases.items()}
    trail = trail_entries(gateway_parts(dxp_home.home)[1], bootstrap)
    assert sorted(e["error_code"] for e in trail if e["kind"] == "REJECTED") == sorted(
        code for *_, code, _ in cases.values())
    for recipient in RECIPIENTS:
        assert not asyncio.run(raw_deliveries(bootstrap, topics, recipient))


# -- submissions that name no format --------------------------------------------------------------

UNKNOWN_ROOT = b"<Declaration xmlns='urn:example:nobody'><Id>1</Id></Declaration>"


async def put_unnamed(bootstrap: str, topics: Topics, submission_id: str, sender: str,
                      document: bytes, signature: bytes) -> None:
    """An agency's own record on the ingress topic with no px-format header at all."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topics.ingress, document, key=sender.encode(), headers=[
            (H_SUBMISSION_ID, submission_id.encode()), (H_SENDER, sender.encode()),
            (H_SIGNATURE, signature)])
    finally:
        await producer.stop()


async def post_unnamed(session: aiohttp.ClientSession, base_url: str, sender: str,
                       document: bytes, signature: bytes, key: str) -> tuple[int, Any]:
    """POST /v1/submissions without Px-Format."""
    async with session.post(f"{base_url}/v1/submissions", data=document, headers={
            "Px-Sender": sender, "Idempotency-Key": key,
            "Px-Signature": base64.b64encode(signature).decode()},
            timeout=aiohttp.ClientTimeout(total=60)) as response:
        return response.status, await response.json()


def test_submissions_that_name_no_format_are_read_as_their_content_shows(
    broker: LocalBroker, dxp_home: DxpHome, topics: Topics
) -> None:
    """On the ingress topic without a px-format header, and over HTTP without Px-Format: a
    FAL1 declaration is read as fal1-xml, a DxpMsg as an envelope (its business message
    then detected in turn), and a document no installed format declares is refused with
    FORMAT_UNKNOWN in its receipt, its dead letter and its trail record."""
    bootstrap = broker.bootstrap_servers
    home = dxp_home.home
    keys = home.agency_keys[PROVIDER]
    on_topic = {
        "topic-fal1": (numbered_arrival(31), "fal1-xml", "fal1", None),
        "topic-dxp": (envelope(dxp_home.carrier, numbered_arrival(32),
                               trans_info("COP-UNNAMED", PROVIDER, msg_type="")),
                      "dxp", "fal1", None),
        "topic-unknown": (UNKNOWN_ROOT, "", None, "FORMAT_UNKNOWN"),
    }
    over_http = {
        "http-fal1": (numbered_arrival(33), 200, "fal1-xml", None),
        "http-unknown": (UNKNOWN_ROOT + b"\n", 422, "", "FORMAT_UNKNOWN"),
    }

    async def run() -> tuple[dict[str, Any], dict[str, tuple[int, Any]]]:
        config, parts = gateway_parts(home)
        async with running_gateway(config, parts, bootstrap) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            for sid, (document, *_) in on_topic.items():
                await put_unnamed(bootstrap, topics, sid, PROVIDER, document,
                                  keys.sign(document))
            found = {sid: await gw.serving.alongside(gw.gateway.book.wait(sid, 60))
                     for sid in on_topic}
            posted = {key: await gw.serving.alongside(post_unnamed(
                session, gw.url, PROVIDER, document, keys.sign(document), key))
                for key, (document, *_) in over_http.items()}
            return found, posted

    found, posted = asyncio.run(run())
    for sid, (_, format_id, document_type, code) in on_topic.items():
        answer = found[sid]
        assert answer is not None, sid
        receipt = answer.receipt.receipt
        assert (receipt.format_id, receipt.document_type, receipt.error_code) == (
            format_id, document_type, code), sid
    dxp_info = found["topic-dxp"].trans_info
    assert dxp_info is not None and dxp_info.cop_msg_id == "COP-UNNAMED"
    for key, (_, status, format_id, code) in over_http.items():
        answer_status, body = posted[key]
        assert answer_status == status, (key, body)
        receipt_json = body["receipt"]
        assert (receipt_json["format_id"], receipt_json.get("error_code")) == (
            format_id, code), key

    schemas = gateway_parts(home)[1].schemas
    letters = asyncio.run(dead_letters(bootstrap, topics, schemas))
    assert {sid: letter["error_code"] for sid, letter in letters.items()} == {
        "topic-unknown": "FORMAT_UNKNOWN", f"{PROVIDER}~http-unknown": "FORMAT_UNKNOWN"}
    trail = trail_entries(gateway_parts(home)[1], bootstrap)
    assert sorted(e["submission_id"] for e in trail if e["kind"] == "REJECTED"
                  and e["error_code"] == "FORMAT_UNKNOWN") == sorted(
        ["topic-unknown", f"{PROVIDER}~http-unknown"])
    assert sorted(e["submission_id"] for e in trail if e["kind"] == "ACCEPTED") == sorted(
        ["topic-fal1", "topic-dxp", f"{PROVIDER}~http-fal1"])


# -- POST /v1/dxp through the mutual-TLS door ----------------------------------------------------


def test_an_envelope_posted_through_the_mutual_tls_door_speaks_for_the_certificates_agency(
    broker: LocalBroker, dxp_home: DxpHome, tmp_path: Path
) -> None:
    """Under TLS the sender is the agency the client certificate is bound to: the
    carrier's client posting its envelope without Px-Sender gets a DxpRep 0000; another
    agency's client posting the same envelope is that agency, which the envelope's SenderId
    is not (DXP_SENDER_MISMATCH), and naming the carrier in Px-Sender is refused at the door;
    an unbound certificate is refused, and no certificate gets no handshake."""
    pki = make_pki(tmp_path / "tls")
    config, parts, _ = tls_home(dxp_home.home, pki)
    info = trans_info("COP-TLS-1", PROVIDER)
    document = envelope(dxp_home.carrier, numbered_arrival(41), info)
    xml = {"Content-Type": "application/xml"}

    async def run() -> dict[str, Any]:
        async with tls_gateway(config, parts, broker.bootstrap_servers) as url:
            with pytest.raises(aiohttp.ClientConnectionError):
                await ask(pki, None, "POST", f"{url}/v1/dxp", data=document)
            post = f"{url}/v1/dxp"
            return {
                "carrier": await ask(pki, "agency-a", "POST", post, data=document, headers={
                    **xml, "Idempotency-Key": "tls-1"}),
                "other": await ask(pki, "agency-b", "POST", post, data=document, headers={
                    **xml, "Idempotency-Key": "tls-2"}),
                "claims": await ask(pki, "agency-b", "POST", post, data=document, headers={
                    **xml, "Idempotency-Key": "tls-3", "Px-Sender": PROVIDER}),
                "unbound": await ask(pki, "unbound", "POST", post, data=document,
                                     headers=xml),
            }

    answers = asyncio.run(run())
    parser = SafeXmlParser()
    carrier, other = answers["carrier"], answers["other"]
    assert carrier.status == 200, carrier.body
    (accepted,) = parse_dxp_rep(carrier.body.encode(), parser).responses
    assert (accepted.response_code, accepted.original) == ("0000", info)
    assert other.status == 422, other.body
    rep = parse_dxp_rep(other.body.encode(), parser)
    (refused,) = rep.responses
    assert rep.receiver_id == PROVIDER  # the envelope's SenderId, echoed
    assert (refused.response_info or "").startswith("DXP_SENDER_MISMATCH: ")
    assert (answers["claims"].status, answers["claims"].body["code"]) == (
        403, "HTTP_SENDER_MISMATCH")
    assert (answers["unbound"].status, answers["unbound"].body["code"]) == (
        403, "HTTP_CLIENT_UNBOUND")


# -- a business message signed with the legacy rsa-sha1 convention --------------------------------


def test_rsa_sha1_signed_with_the_senders_rsa_certificate_is_accepted_and_a_changed_one_not(
    broker: LocalBroker, dxp_home: DxpHome, topics: Topics
) -> None:
    """The alias table reads rsa-sha1 (docs/security.md), and the carrier holds an RSA
    certificate entry (RSA-1024, sha1WithRSA) besides its SM2 one: an envelope signed
    rsa-sha1 with that certificate (KeyName its serial, the certificate embedded) is accepted
    (DxpRep 0000), delivered to each recipient, and the trail names the RSA key as the
    signer. Changed after signing, the envelope or a business message inside an unsigned
    one is XMLDSIG_DIGEST_MISMATCH (1004), the digest being checked before the key; an RSA
    signature naming the carrier's SM2 certificate, or an SM2 one naming its RSA
    certificate, is XMLDSIG_KEY_UNSUITABLE (1001): each key verifies only the conventions
    of its kind."""
    legacy = dxp_home.legacy
    signed_business = signed_business_message(51, legacy.key, "rsa-sha1", legacy.serial,
                                              legacy.der)
    tampered_business = signed_business.replace(b"V000051", b"V000052")
    assert tampered_business != signed_business
    tampered_envelope = envelope(legacy, ARRIVAL, trans_info("COP-RT", PROVIDER),
                                 convention="rsa-sha1").replace(b"<CopMsgId>COP-RT<",
                                                                b"<CopMsgId>COP-RX<")
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sm2_naming_rsa = Signer(PROVIDER, dxp_home.carrier.key, legacy.serial, legacy.der)

    def unsigned_envelope(document: bytes, cop_msg_id: str) -> bytes:
        return serialise(build_dxp_msg(DxpEnvelope(trans_info(cop_msg_id, PROVIDER),
                                                   document)))

    refusals = {
        "rsa-tampered": (unsigned_envelope(tampered_business, "COP-rsa-tampered"),
                         "XMLDSIG_DIGEST_MISMATCH", "1004"),
        "rsa-envelope-tampered": (tampered_envelope, "XMLDSIG_DIGEST_MISMATCH", "1004"),
        "rsa": (unsigned_envelope(signed_business_message(52, stranger_key, "rsa-sha1",
                                                          dxp_home.carrier.serial), "COP-rsa"),
                "XMLDSIG_KEY_UNSUITABLE", "1001"),
        "sm2-naming-rsa": (envelope(sm2_naming_rsa, ARRIVAL, trans_info("COP-S", PROVIDER)),
                           "XMLDSIG_KEY_UNSUITABLE", "1001"),
    }
    accepted_envelope = envelope(legacy, ARRIVAL, trans_info("COP-RSA-1", PROVIDER),
                                 convention="rsa-sha1")
    posted = {"rsa-accepted": accepted_envelope,
              **{key: document for key, (document, *_) in refusals.items()}}

    async def run() -> dict[str, DxpAnswer]:
        config, parts = gateway_parts(dxp_home.home)
        async with running_gateway(config, parts, broker.bootstrap_servers) as gw, \
                aiohttp.ClientSession() as session:
            await wait_ready(session, gw.url)
            return {key: await gw.serving.alongside(post_dxp(session, gw.url, PROVIDER,
                                                             document, key))
                    for key, document in posted.items()}

    answers = asyncio.run(run())
    accepted = answers["rsa-accepted"]
    assert (accepted.status, accepted.content_type) == (200, "application/xml"), accepted
    assert accepted.rep is not None
    (response,) = accepted.rep.responses
    assert response.response_code == "0000"
    assert response.original.cop_msg_id == "COP-RSA-1"
    for key, (_, code, response_code) in refusals.items():
        answer = answers[key]
        assert answer.status == 422 and answer.rep is not None, (key, answer)
        (response,) = answer.rep.responses
        assert response.response_code == response_code, key
        assert (response.response_info or "").startswith(f"{code}: "), key

    bootstrap = broker.bootstrap_servers
    for recipient in RECIPIENTS:
        assert sum(asyncio.run(raw_deliveries(bootstrap, topics, recipient)).values()) == 1
    trail = trail_entries(gateway_parts(dxp_home.home)[1], bootstrap)
    legacy_key_id = Certificate.from_der(legacy.der).public_key.key_id
    assert [e["signature_key_id"] for e in trail if e["kind"] == "ACCEPTED"] == [legacy_key_id]
    assert sorted(e["error_code"] for e in trail if e["kind"] == "REJECTED") == sorted(
        code for _, code, _ in refusals.values())


def signed_business_message(number: int, key: SigningKey, convention: str, serial: int,
                            certificate: bytes | None = None) -> bytes:
    """The numbered arrival declaration with its enveloped signature in `convention`."""
    business = SafeXmlParser().parse(numbered_arrival(number))
    sign_enveloped(business, key, convention=convention, serial=serial,
                   certificate=certificate)
    return serialise(business)
