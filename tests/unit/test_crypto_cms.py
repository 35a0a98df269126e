"""CMS EnvelopedData with SM2 key transport and SM4-CBC (crypto/cms.py): round trips for both
ways of naming the recipient and both sets of content-type OIDs, the layout RFC 5652 and
GM/T 0010 give, and every way opening must fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import (
    Certificate,
    CmsContentTypes,
    DecryptionFailed,
    SM2PrivateKey,
    open_cms,
    seal_cms,
    subject_key_identifier,
)
from crypto import _der as der
from crypto.cms import GM_ENVELOPED_DATA, PKCS7_ENVELOPED_DATA, SM2_ENCRYPTION, SM4_CBC
from tests.unit.sm2_ca import OpensslCA, needs_openssl, openssl

pytestmark = needs_openssl
PAYLOAD = b"<CargoManifest>" + bytes(range(256)) + b"</CargoManifest>"


class Party:
    def __init__(self, ca: OpensslCA, name: str, serial: int, backend: str) -> None:
        pem = ca.issue(name, serial)
        self.pem = pem
        self.certificate = Certificate.from_pem(pem.read_bytes())
        self.key = SM2PrivateKey.from_pem((ca.directory / f"{name}.key").read_bytes(),
                                          backend=backend)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> OpensslCA:
    return OpensslCA.create(tmp_path_factory.mktemp("cms") / "ca")


ALICE_SERIALS = {"fast": 0xA11CE, "reference": 0xA11CF}


@pytest.fixture(scope="module", params=sorted(ALICE_SERIALS))
def alice(ca: OpensslCA, request: pytest.FixtureRequest) -> Party:
    return Party(ca, f"alice-{request.param}", ALICE_SERIALS[request.param], request.param)


@pytest.fixture(scope="module")
def bob(ca: OpensslCA) -> Party:
    return Party(ca, "bob", 0xB0B, "fast")


def children(data: bytes) -> list[der.Element]:
    return der.read_children(der.read_single(data, der.SEQUENCE))


def enveloped_of(sealed: bytes) -> tuple[str, list[der.Element]]:
    content_type, content = children(sealed)
    body = der.read_single(der.expect(content, der.CONTEXT_0), der.SEQUENCE)
    return der.read_oid(content_type.body), der.read_children(body)


def test_issuer_and_serial_layout(alice: Party) -> None:
    content_type, (version, infos, encrypted) = enveloped_of(
        seal_cms(alice.certificate, PAYLOAD))
    assert content_type == PKCS7_ENVELOPED_DATA
    assert der.read_integer(version.body) == 0
    (info,) = der.read_children(der.expect(infos, der.SET))
    ri_version, rid, algorithm, key = der.read_children(info.body)
    assert der.read_integer(ri_version.body) == 0
    assert rid.body == alice.certificate.issuer_name_der + der.integer(alice.certificate.serial)
    assert der.read_oid(der.read_children(algorithm.body)[0].body) == SM2_ENCRYPTION
    assert alice.key.decrypt(key.body, order="ASN1") != b""
    _, content_algorithm, body = der.read_children(encrypted.body)
    oid, iv = der.read_children(content_algorithm.body)
    assert der.read_oid(oid.body) == SM4_CBC and len(iv.body) == 16
    assert body.tag == der.IMPLICIT_0 and len(body.body) == (len(PAYLOAD) // 16 + 1) * 16


def test_key_identifier_is_the_certificates(alice: Party) -> None:
    """A bare key is named by the subject key identifier `openssl ca` wrote (method 1)."""
    text = openssl("x509", "-in", str(alice.pem), "-noout", "-ext", "subjectKeyIdentifier",
                   cwd=alice.pem.parent).decode()
    written = bytes.fromhex(text.splitlines()[-1].strip().replace(":", ""))
    assert subject_key_identifier(alice.certificate.public_key) == written  # type: ignore[arg-type]
    _, (version, infos, _) = enveloped_of(seal_cms(alice.key.public_key(), PAYLOAD))
    assert der.read_integer(version.body) == 2
    (info,) = der.read_children(infos.body)
    assert der.read_children(info.body)[1] == der.Element(der.IMPLICIT_0, written)


def test_gmt0010_content_types(alice: Party) -> None:
    sealed = seal_cms(alice.certificate, PAYLOAD, content_types=CmsContentTypes.GMT0010)
    assert enveloped_of(sealed)[0] == GM_ENVELOPED_DATA
    assert open_cms(alice.key, sealed) == PAYLOAD


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=600), by_certificate=st.booleans(),
       content_types=st.sampled_from(CmsContentTypes))
def test_round_trip(alice: Party, payload: bytes, by_certificate: bool,
                    content_types: CmsContentTypes) -> None:
    recipient = alice.certificate if by_certificate else alice.key.public_key()
    sealed = seal_cms(recipient, payload, content_types=content_types)
    assert open_cms(alice.key, sealed) == payload
    assert open_cms(alice.key, sealed, alice.certificate) == payload


def test_another_recipient_cannot_open(alice: Party, bob: Party) -> None:
    for sealed in (seal_cms(alice.certificate, PAYLOAD),
                   seal_cms(alice.key.public_key(), PAYLOAD)):
        with pytest.raises(DecryptionFailed, match="no recipient info opens"):
            open_cms(bob.key, sealed)
    # Named by another certificate's issuer and serial: not even tried.
    with pytest.raises(DecryptionFailed, match="no recipient info opens"):
        open_cms(alice.key, seal_cms(alice.certificate, PAYLOAD), bob.certificate)


def test_tampered_key_does_not_open(alice: Party) -> None:
    sealed = bytearray(seal_cms(alice.certificate, PAYLOAD))
    at = sealed.index(der.oid(SM2_ENCRYPTION)) + 60  # inside the SM2 ciphertext's C1
    sealed[at] ^= 0x01
    with pytest.raises(DecryptionFailed):
        open_cms(alice.key, bytes(sealed))


@pytest.mark.parametrize("mangle", [
    lambda b: b[:-1],
    lambda b: b + b"\x00",
    lambda b: b"\x30\x80" + b[2:],  # BER indefinite length
    lambda b: b.replace(der.oid(SM4_CBC), der.oid("2.16.840.1.101.3.4.1.2")),  # aes-128-cbc
    lambda b: b.replace(der.oid(SM2_ENCRYPTION), der.oid("1.2.840.113549.1.1.1")),  # rsa
    lambda b: b.replace(der.oid(PKCS7_ENVELOPED_DATA), der.oid("1.2.840.113549.1.7.2")),
    lambda b: b"",
], ids=["truncated", "trailing", "ber", "aes", "rsa-key-transport", "signed-data", "empty"])
def test_malformed_containers_are_refused(alice: Party, mangle: object) -> None:
    assert callable(mangle)
    with pytest.raises(DecryptionFailed, match="CMS envelope"):
        open_cms(alice.key, mangle(seal_cms(alice.certificate, PAYLOAD)))


def test_an_rsa_certificate_is_refused(tmp_path: Path) -> None:
    rsa = OpensslCA.create(tmp_path / "rsa", rsa_bits=2048)
    certificate = Certificate.from_pem(rsa.issue("legacy", 7).read_bytes())
    with pytest.raises(TypeError, match="SM2 key"):
        seal_cms(certificate, PAYLOAD)
