"""The OpenEnvelope stage on its own and in the parse worker's Checker: who a DxpMsg's XML
signature speaks for (the sender's certificate entry KeyName names), what becomes the
document (the business message, its format from MsgType or detected), and the DxpRep
ResponseCode a refusal's code maps to. Certificates are made with the openssl command line."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters import AdapterRegistry, FormatDetector
from crypto import Certificate, KeyEntry, Keyring, SM2PrivateKey
from crypto.xmldsig import sign_enveloped
from gateway.decide import pipeline as stages
from gateway.decide.ahead import ANSWER, OPENED, Checker, item_of, pack_certificates
from gateway.decide.pipeline import DXP_FORMAT, Context, Opened, OpenEnvelope, Submission
from gateway.errors import GatewayError
from gateway.ingress.dxp_answer import response_code
from gateway.service import run_stages
from message_formats import AvroSchemas, CodedError, SafeXmlParser
from message_formats.dxp import DxpEnvelope, DxpTransInfo, build_dxp_msg, serialise
from tests.unit.sm2_ca import Pki, make_pki, needs_openssl

pytestmark = needs_openssl

SENDER = "cn.port.sh"
OTHER = "cn.border.sh"
ARRIVAL = (Path(__file__).parents[1] / "data" / "fal1" / "valid_arrival.xml").read_bytes()
NOW = datetime.now(UTC)
ADAPTERS = AdapterRegistry.default(AvroSchemas())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("envelope-pki"), NOW)


def certificate(path: Path) -> Certificate:
    return Certificate.from_pem(path.read_bytes())


def entry(agency: str, path: Path, **fields: datetime) -> KeyEntry:
    cert = certificate(path)
    return KeyEntry(agency, cert.public_key, certificate=cert, **fields)  # type: ignore[arg-type]  # only the datetime fields are passed


def envelope(pki: Pki, business: bytes = ARRIVAL, *, msg_type: str = "FAL1",
             sender: str = SENDER, embedded: Path | None = None, sign: bool = True) -> bytes:
    """A DxpMsg signed by `pki.good`'s key under its serial, embedding `embedded` (default:
    `pki.good`)."""
    info = DxpTransInfo("COP-1", sender, ("cn.customs.sh",), "2026-05-01T08:00:00", msg_type)
    root = build_dxp_msg(DxpEnvelope(info, business))
    if sign:
        sign_enveloped(root, SM2PrivateKey.from_pem(pki.good.with_suffix(".key").read_bytes()),
                       convention="eport-sm2-sm3", serial=certificate(pki.good).serial,
                       certificate=certificate(embedded or pki.good).der)
    return serialise(root)


def context(document: bytes, keyring: Keyring, *, sender: str = SENDER) -> Context:
    return stages.new_context(Submission("s", sender, DXP_FORMAT, document, b"", NOW), "e", keyring)


def opening() -> OpenEnvelope:
    return OpenEnvelope(detector=FormatDetector(ADAPTERS), parser=SafeXmlParser())


def refusal(stage: OpenEnvelope, ctx: Context) -> CodedError:
    with pytest.raises(CodedError) as raised:
        stage(ctx)
    return raised.value


def test_an_envelope_signed_by_the_senders_certificate_becomes_its_business_message(
    pki: Pki
) -> None:
    keyring = Keyring([entry(SENDER, pki.good)])
    pipeline = stages.Pipeline([("open", opening()),
                                ("adapter", stages.ChooseAdapter(ADAPTERS)),
                                ("adapt", stages.Adapt())])
    reached = pipeline.run(context(envelope(pki), keyring))
    assert reached.failed is None, reached.failed
    ctx = reached.context
    assert ctx.opened is not None
    assert (ctx.opened.format_id, ctx.opened.serial, ctx.opened.trans_info.cop_msg_id) == (
        "fal1-xml", certificate(pki.good).serial, "COP-1")
    assert ctx.signer is not None and ctx.signer.agency_id == SENDER
    assert (ctx.format_id, ctx.document, ctx.identity) == ("fal1-xml", ARRIVAL, "dxp:COP-1")
    assert ctx.parsed is not None and ctx.document_type == "fal1"


def test_msg_type_naming_an_installed_format_is_taken_as_it(pki: Pki) -> None:
    ctx = opening()(context(envelope(pki, msg_type="fal1-xml"),
                            Keyring([entry(SENDER, pki.good)])))
    assert ctx.format_id == "fal1-xml"


def test_who_the_signature_speaks_for_is_the_senders_certificate_entry_kept_in_the_keyring(
    pki: Pki
) -> None:
    stage = opening()
    mine = Keyring([entry(SENDER, pki.good), entry(SENDER, pki.expired)])
    cases = [
        # SenderId says another agency: refused whatever the signature
        ("DXP_SENDER_MISMATCH", context(envelope(pki, sender=OTHER), mine)),
        # the embedded certificate is another than the keyring's of that serial
        ("XMLDSIG_KEY_UNKNOWN", context(envelope(pki, embedded=pki.expired), mine)),
        # KeyName names a certificate the keyring holds for another agency
        ("XMLDSIG_KEY_UNKNOWN", context(envelope(pki), Keyring([entry(OTHER, pki.good)]))),
        # revoked by its CA's CRL before the document came
        ("CERT_REVOKED", context(envelope(pki), Keyring([entry(
            SENDER, pki.good, certificate_revoked_at=NOW - timedelta(days=1))]))),
        ("XMLDSIG_DIGEST_MISMATCH", context(envelope(pki).replace(b">COP-1<", b">COP-2<"),
                                            mine)),
    ]
    for code, ctx in cases:
        refused = refusal(stage, ctx)
        assert refused.code == code, (code, refused.message)
        assert isinstance(refused, stages.EnvelopeRefused) and refused.opened.serial is None


def test_an_unsigned_envelope_is_authenticated_by_its_business_messages_signature(
    pki: Pki
) -> None:
    """The business message carries the enveloped signature; the envelope none. Its format
    is then detected: no installed format declares this root."""
    root = SafeXmlParser().parse(b"<Declaration xmlns='urn:example'><Id>1</Id></Declaration>")
    sign_enveloped(root, SM2PrivateKey.from_pem(pki.good.with_suffix(".key").read_bytes()),
                   convention="eport-sm2-sha1", serial=certificate(pki.good).serial)
    keyring = Keyring([entry(SENDER, pki.good)])
    refused = refusal(opening(), context(envelope(pki, serialise(root), sign=False), keyring))
    assert refused.code == "FORMAT_UNKNOWN"  # the signature verified: detection came next
    unsigned = SafeXmlParser().parse(b"<Declaration xmlns='urn:example'/>")
    refused = refusal(opening(), context(envelope(pki, serialise(unsigned), sign=False),
                                         keyring))
    assert refused.code == "XMLDSIG_MISSING"


def test_the_gateways_stage_confirms_the_workers_signer_under_the_keyring_in_force(
    pki: Pki
) -> None:
    """It opens nothing: a signer revoked since the worker verified is refused; a document
    format other than dxp passes untouched."""
    serial = certificate(pki.good).serial
    opened = Opened(DxpTransInfo("C", SENDER, ("r",), "2026-05-01T08:00:00", ""), "fal1-xml",
                    serial)
    gateway_stage = OpenEnvelope()
    fine = context(b"<x/>", Keyring([entry(SENDER, pki.good)]))
    assert gateway_stage(replace(fine, opened=opened)).signer is not None
    revoked = context(b"<x/>", Keyring([entry(SENDER, pki.good,
                                              certificate_revoked_at=NOW - timedelta(1))]))
    assert refusal(gateway_stage, replace(revoked, opened=opened)).code == "CERT_REVOKED"
    with pytest.raises(GatewayError):  # nothing the worker found: it does not open it
        gateway_stage(fine)
    other = stages.new_context(Submission("s", SENDER, "fal1-xml", ARRIVAL, b"", NOW), "e")
    assert gateway_stage(other) is other


def test_the_worker_answers_an_envelope_with_its_facts_and_its_parse(pki: Pki) -> None:
    document = envelope(pki)
    s = Submission("", SENDER, DXP_FORMAT, document, b"", NOW)
    answer, out_of_memory = Checker(ADAPTERS).check(
        item_of(s, pack_certificates([certificate(pki.good).der])))
    assert not out_of_memory
    assert answer[4:5] == ANSWER and answer[5] == OPENED
    opened, parsed, refused = pickle.loads(answer[6:])
    assert (opened.format_id, opened.trans_info.cop_msg_id, refused) == ("fal1-xml", "COP-1",
                                                                          None)
    assert parsed is not None and parsed.business_key


def test_an_expired_certificate_is_refused_in_the_worker_with_the_envelope_read(
    pki: Pki
) -> None:
    key = SM2PrivateKey.from_pem(pki.expired.with_suffix(".key").read_bytes())
    root = build_dxp_msg(DxpEnvelope(DxpTransInfo("COP-E", SENDER, ("r",),
                                                  "2026-05-01T08:00:00", ""), ARRIVAL))
    sign_enveloped(root, key, convention="eport-sm2-sm3",
                   serial=certificate(pki.expired).serial)
    s = Submission("", SENDER, DXP_FORMAT, serialise(root), b"", NOW)
    answer, _ = Checker(ADAPTERS).check(
        item_of(s, pack_certificates([certificate(pki.expired).der])))
    assert answer[5] == OPENED
    opened, parsed, refused = pickle.loads(answer[6:])
    assert (opened.trans_info.cop_msg_id, parsed, refused.code) == ("COP-E", None,
                                                                    "CERT_EXPIRED")


@pytest.mark.parametrize(("code", "expected"), [
    (None, "0000"), ("XMLDSIG_DIGEST_MISMATCH", "1004"), ("XMLDSIG_BAD_SIGNATURE", "1001"),
    ("CERT_EXPIRED", "1002"), ("CERT_REVOKED", "1001"), ("DXP_SENDER_MISMATCH", "1999"),
    ("DXP_BAD_BASE64", "0001"), ("XSD_INVALID", "0002"), ("ROUTE_NO_CONTRACT", "2999"),
    ("PARSE_TIME_EXCEEDED", "3999"),
])
def test_a_refusals_code_maps_to_its_dxprep_response_code(code: str | None,
                                                          expected: str) -> None:
    assert response_code(code) == expected


def test_the_workers_refusal_of_the_business_message_comes_after_the_signer_is_confirmed(
    pki: Pki
) -> None:
    """The worker verified the signature (its serial) and then refused the business message:
    the gateway confirms the signer first. Confirmed, the refusal keeps its code, what was
    read before it, and names the signer; revoked since, the refusal is the keyring's and
    names no signer and no serial."""
    serial = certificate(pki.good).serial
    opened = Opened(DxpTransInfo("C", SENDER, ("r",), "2026-05-01T08:00:00", ""), "fal1-xml",
                    serial)
    inner = stages.Refusal("XSD_INVALID", "element 'X' is not expected", 7, "key-1", 1)
    from_worker = stages.Pipeline([("envelope", OpenEnvelope()),
                                   ("authenticate", stages.Authenticate())])
    fine = context(b"<x/>", Keyring([entry(SENDER, pki.good)]))
    ctx, why = run_stages(from_worker, replace(fine, opened=opened, refused=inner))
    assert why is not None and why.code == "XSD_INVALID"
    assert ctx.signer is not None and ctx.signer.certificate is not None
    assert ctx.signer.certificate.serial == serial
    assert ctx.opened == opened and ctx.refused == inner and ctx.business_key == "key-1"

    revoked = context(b"<x/>", Keyring([entry(SENDER, pki.good,
                                              certificate_revoked_at=NOW - timedelta(1))]))
    ctx, why = run_stages(from_worker, replace(revoked, opened=opened, refused=inner))
    assert why is not None and why.code == "CERT_REVOKED"
    assert ctx.signer is None and ctx.business_key is None
    assert ctx.opened == Opened(opened.trans_info)  # no serial: not confirmed
    assert ctx.refused is not None and ctx.refused.code == "CERT_REVOKED"


def test_an_envelope_is_authenticated_once_by_its_own_stage(pki: Pki) -> None:
    """The authenticate stage lets an envelope pass: OpenEnvelope confirmed its signer."""
    ctx = context(b"<x/>", Keyring([]))
    assert stages.Authenticate()(ctx) is ctx


def test_a_business_message_that_is_no_xml_is_refused_after_the_envelopes_signature(
    pki: Pki
) -> None:
    """Signed envelope: its signature verified first, so the refusal of what it holds carries
    the serial for the gateway to confirm. Unsigned envelope: the business message must be
    read for its own signature; refused so, it names no serial."""
    keyring = Keyring([entry(SENDER, pki.good)])
    refused = refusal(opening(), context(envelope(pki, b"no xml here"), keyring))
    assert isinstance(refused, stages.EnvelopeRefused)
    assert refused.code == "XML_MALFORMED"
    assert refused.opened.serial == certificate(pki.good).serial
    assert refused.signer is not None
    refused = refusal(opening(), context(envelope(pki, b"no xml here", sign=False),
                                         keyring))
    assert isinstance(refused, stages.EnvelopeRefused)
    assert refused.code == "XML_MALFORMED"
    assert (refused.opened.serial, refused.signer) == (None, None)
