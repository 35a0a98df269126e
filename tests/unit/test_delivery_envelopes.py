"""A recipient's envelope format: the gateway's own SM4 envelope ("px", the default) or CMS
EnvelopedData ("cms", crypto/cms.py), chosen per agency in agencies.toml; what the deliveries
stage makes of each, and `open_sealed`, which opens both."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import AgencyInvalid, AgencyRegistry
from crypto import Certificate, DecryptionFailed, Envelope, subject_key_identifier
from crypto import _der as der
from gateway.cli.main import main
from gateway.deliveries.envelopes import is_sealed, open_sealed
from gateway.deliveries.proof import DELIVERY_SCHEMA
from gateway.home.config import GatewayConfig
from gateway.home.create import DEMO_AGENCIES, DEMO_CONTRACTS, Home, create_home
from gateway.parts import GatewayParts
from tests.unit import publish_support
from tests.unit.sm2_ca import OpensslCA, needs_openssl, openssl

CMS_AGENCY, PX_AGENCY = "cn.customs.sh", "cn.msa.sh"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    agencies = tuple(replace(a, envelope_format="cms") if a.id == CMS_AGENCY else a
                     for a in DEMO_AGENCIES)
    contracts = tuple(replace(c, extra=c.extra + "encrypt = true\n") for c in DEMO_CONTRACTS)
    return create_home(tmp_path_factory.mktemp("envelopes") / "home", agencies=agencies,
                       contracts=contracts)


def payloads_by_recipient(home: Home) -> dict[str, dict[str, object]]:
    parts = GatewayParts.load(GatewayConfig.load(home.config_file))
    ctx, why = publish_support.decided(home, parts, "valid_arrival.xml")
    assert why is None
    return {grant.recipient: parts.schemas.decode(message.value)[1]
            for grant, message in ctx.deliveries
            if parts.schemas.decode(message.value)[0] == DELIVERY_SCHEMA}


def test_each_recipient_gets_the_envelope_it_chose_and_opens_it(home: Home) -> None:
    deliveries = payloads_by_recipient(home)
    cms, px = deliveries[CMS_AGENCY], deliveries[PX_AGENCY]
    assert cms["payload_encoding"] == "cms-enveloped+avro-single-object"
    assert px["payload_encoding"] == "sm4-envelope+avro-single-object"
    cms_payload, px_payload = cms["payload"], px["payload"]
    assert isinstance(cms_payload, bytes) and isinstance(px_payload, bytes)
    # The keyring gives raw keys: the CMS recipient is named by its subject key identifier.
    key = home.agency_keys[CMS_AGENCY]
    assert subject_key_identifier(key.public_key()) in cms_payload
    assert Envelope.parse(px_payload).recipient_key_id.hex() == \
        home.agency_keys[PX_AGENCY].public_key().key_id
    opened_cms = open_sealed(key, str(cms["payload_encoding"]), cms_payload)
    opened_px = open_sealed(home.agency_keys[PX_AGENCY], str(px["payload_encoding"]), px_payload)
    assert opened_cms[1] == opened_px[1] == "avro-single-object"
    assert opened_cms[0] == opened_px[0]  # the same canonical event, whole
    with pytest.raises(DecryptionFailed):
        open_sealed(home.agency_keys[PX_AGENCY], str(cms["payload_encoding"]), cms_payload)


@needs_openssl
def test_a_recipient_with_a_certificate_is_named_by_its_issuer_and_serial(
        tmp_path: Path) -> None:
    """The recipient's newest key is a certificate entry: the envelope names it by issuer and
    serial, and `openssl cms -decrypt -recip` picks it out by those."""
    agencies = tuple(replace(a, envelope_format="cms") if a.id == CMS_AGENCY else a
                     for a in DEMO_AGENCIES)
    contracts = tuple(replace(c, extra=c.extra + "encrypt = true\n") for c in DEMO_CONTRACTS)
    home = create_home(tmp_path / "home", agencies=agencies, contracts=contracts)
    ca = OpensslCA.create(home.path / "ca")
    pem = ca.issue("customs-encryption", 0xC0FFEE, start=datetime(2026, 1, 2, tzinfo=UTC))
    keyring = home.path / "keyring.toml"
    keyring.write_text('trust = ["ca/ca.pem"]\n' + keyring.read_text() + (
        f'\n[[key]]\nagency = "{CMS_AGENCY}"\ncertificate = "ca/{pem.name}"\n'
        'roles = ["document"]\n'))

    sealed = payloads_by_recipient(home)[CMS_AGENCY]["payload"]
    assert isinstance(sealed, bytes)
    certificate = Certificate.from_pem(pem.read_bytes())
    assert certificate.issuer_name_der + der.integer(0xC0FFEE) in sealed
    (tmp_path / "sealed.der").write_bytes(sealed)
    opened = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", "sealed.der",
                     "-recip", str(pem), "-inkey", str(ca.directory / "customs-encryption.key"),
                     cwd=tmp_path)
    assert opened[:2] == b"\xc3\x01"  # the canonical event, single-object encoded
    with pytest.raises(DecryptionFailed):  # the agency's older raw key is not the recipient
        open_sealed(home.agency_keys[CMS_AGENCY], "cms-enveloped+avro-single-object", sealed)


def test_explain_names_each_recipients_envelope(home: Home,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fal1 = Path(__file__).parents[1] / "data" / "fal1" / "valid_arrival.xml"
    assert main(["contracts", "explain", "--sender", "cn.port.sh", str(fal1), "--at",
                 "2026-06-01T00:00:00Z", "--config", str(home.config_file)]) == 0
    delivered = {line.split(":")[0].split()[-1]: line
                 for line in capsys.readouterr().out.splitlines() if "DELIVER" in line}
    assert "SM4 envelope (cms) to the recipient's key" in delivered[CMS_AGENCY]
    assert "SM4 envelope (px) to the recipient's key" in delivered[PX_AGENCY]


def test_only_sealed_encodings_are_opened(home: Home) -> None:
    assert is_sealed("cms-enveloped+json") and is_sealed("sm4-envelope+json")
    assert not is_sealed("avro-single-object") and not is_sealed("dxp+fal1-xml")
    with pytest.raises(ValueError, match="names no SM4 envelope"):
        open_sealed(home.agency_keys[CMS_AGENCY], "json", b"{}")


def test_the_envelope_format_is_px_unless_named(home: Home, tmp_path: Path) -> None:
    registry = AgencyRegistry.from_toml(home.path / "agencies.toml")
    assert registry.get(CMS_AGENCY).envelope_format == "cms"
    assert registry.get(PX_AGENCY).envelope_format == "px"
    plain = tmp_path / "agencies.toml"
    plain.write_text('[[agency]]\nid = "a"\nname = "A"\nkind = "customs"\nregion = "310000"\n'
                     'jurisdiction = "CN"\n')
    assert AgencyRegistry.from_toml(plain).get("a").envelope_format == "px"
    plain.write_text(plain.read_text() + 'envelope_format = "pkcs7"\n')
    with pytest.raises(AgencyInvalid, match="envelope_format must be one of px, cms"):
        AgencyRegistry.from_toml(plain)
