"""Enveloped 国密 / RSA XML signatures in the China E-Port conventions: each one signs and
verifies, every tampering and wrapping is refused with its code, and the SM2 value is the
one OpenSSL's command line makes and checks (SM3, distid 1234567812345678)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from crypto import SM2PrivateKey, signature_from_raw, signature_to_raw
from crypto.xmldsig import (
    CONVENTIONS,
    DS_NS,
    EPORT_SM2_SHA1_CONVENTION,
    EPORT_SM2_SM3_CONVENTION,
    RSA_SHA1_CONVENTION,
    Convention,
    KeyHint,
    VerifyKey,
    XmlSignatureError,
    sign_enveloped,
    verify_enveloped,
)
from message_formats import SafeXmlParser

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command line not installed")

CEB = "http://www.chinaport.gov.cn/ceb"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SM2_SERIAL = 0x3000000000CDE6F
RSA_SERIAL = 0x1691FE9
DS = f"{{{DS_NS}}}"
BUSINESS = (
    f'<ceb:CEB311Message xmlns:ceb="{CEB}" xmlns:xsi="{XSI}" guid="4CDE1CFD" version="1.0">'
    "<ceb:Order><ceb:OrderHead><ceb:orderNo>order-1</ceb:orderNo>"
    "<ceb:goodsValue>100.00</ceb:goodsValue><ceb:note>港口 测试</ceb:note></ceb:OrderHead>"
    "</ceb:Order>\n  <ceb:BaseTransfer><ceb:copCode>1105910159</ceb:copCode>"
    "</ceb:BaseTransfer>\n</ceb:CEB311Message>"
).encode()
Keys = Mapping[int, VerifyKey]


@pytest.fixture(scope="module")
def sm2_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys(sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey) -> Keys:
    return {SM2_SERIAL: sm2_key.public_key(), RSA_SERIAL: rsa_key.public_key()}


def resolver(keys: Keys) -> Callable[[KeyHint], VerifyKey | None]:
    return lambda hint: None if hint.serial is None else keys.get(hint.serial)


def parse(data: bytes) -> etree._Element:
    return SafeXmlParser().parse(data)


def signed(convention: Convention, sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey,
           document: bytes = BUSINESS) -> bytes:
    root = parse(document)
    if convention is RSA_SHA1_CONVENTION:
        sign_enveloped(root, rsa_key, convention=convention, serial=RSA_SERIAL)
    else:
        sign_enveloped(root, sm2_key, convention=convention, serial=SM2_SERIAL,
                       certificate=b"\x30\x03\x02\x01\x01")
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def refusal(data: bytes | etree._Element, keys: Keys, **options: object) -> str:
    root = parse(data) if isinstance(data, bytes) else data
    with pytest.raises(XmlSignatureError) as caught:
        verify_enveloped(root, resolver(keys), **options)  # type: ignore[arg-type]
    return caught.value.code


def edited(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, old
    return data.replace(old, new)


def signature_of(root: etree._Element) -> etree._Element:
    found = root.find(f"{DS}Signature")
    assert found is not None
    return found


# -- each convention ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_a_signature_made_in_each_convention_verifies_after_a_round_trip_through_bytes(
    name: str, sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    data = signed(CONVENTIONS[name], sm2_key, rsa_key)
    verified = verify_enveloped(parse(data), resolver(keys))
    assert verified.convention is CONVENTIONS[name]
    assert verified.key is keys[verified.hint.serial or 0]


def test_each_convention_writes_its_published_uris_and_serial(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    ns = {"ds": DS_NS}
    for convention, key_name in ((EPORT_SM2_SM3_CONVENTION, "3000000000cde6f"),
                                 (EPORT_SM2_SHA1_CONVENTION, "03000000000cde6f"),
                                 (RSA_SHA1_CONVENTION, "1691fe9")):
        root = parse(signed(convention, sm2_key, rsa_key))
        assert root[-1].tag == f"{DS}Signature"
        assert root.xpath("string(//ds:SignatureMethod/@Algorithm)", namespaces=ns) == \
            convention.signature_method
        assert root.xpath("string(//ds:DigestMethod/@Algorithm)", namespaces=ns) == \
            convention.digest_method
        assert root.xpath("string(//ds:KeyName)", namespaces=ns) == key_name
        digest = base64.b64decode(root.xpath("string(//ds:DigestValue)", namespaces=ns))
        assert len(digest) == (32 if convention is EPORT_SM2_SM3_CONVENTION else 20)
        value = base64.b64decode(root.xpath("string(//ds:SignatureValue)", namespaces=ns))
        assert len(value) == (256 if convention is RSA_SHA1_CONVENTION else 64)


def test_signed_info_is_canonicalised_with_the_namespaces_of_the_business_root(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The canonical SignedInfo the U-key tools publish, byte for byte but the digest."""
    root = parse(signed(EPORT_SM2_SHA1_CONVENTION, sm2_key, rsa_key))
    signed_info = signature_of(root)[0]
    digest = signed_info.findtext(f".//{DS}DigestValue")
    published = (
        f'<ds:SignedInfo xmlns:ceb="{CEB}" xmlns:ds="{DS_NS}" xmlns:xsi="{XSI}">'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315">'
        "</ds:CanonicalizationMethod>"
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sm2-sm3">'
        '</ds:SignatureMethod><ds:Reference URI=""><ds:Transforms><ds:Transform '
        'Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></ds:Transform>'
        '</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1">'
        f"</ds:DigestMethod><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference>"
        "</ds:SignedInfo>"
    ).encode()
    assert etree.tostring(signed_info, method="c14n") == published


def test_a_line_wrapped_signature_value_and_certificate_verify(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    root = parse(signed(RSA_SHA1_CONVENTION, sm2_key, rsa_key))
    value = signature_of(root).find(f"{DS}SignatureValue")
    assert value is not None and value.text is not None
    value.text = "\n" + "\n".join(value.text[i:i + 64] for i in range(0, len(value.text), 64))
    assert verify_enveloped(root, resolver(keys)).convention is RSA_SHA1_CONVENTION


def test_the_2022_sm2_convention_accepts_a_der_value_and_the_u_key_one_only_raw(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    for convention, accepted in ((EPORT_SM2_SM3_CONVENTION, True),
                                 (EPORT_SM2_SHA1_CONVENTION, False)):
        root = parse(signed(convention, sm2_key, rsa_key))
        value = signature_of(root).find(f"{DS}SignatureValue")
        assert value is not None and value.text is not None
        value.text = base64.b64encode(signature_from_raw(base64.b64decode(value.text))).decode()
        if accepted:
            assert verify_enveloped(root, resolver(keys)).convention is convention
        else:
            assert refusal(root, keys) == "XMLDSIG_BAD_SIGNATURE"


def test_key_names_are_serials_whatever_their_padding_and_case(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    data = signed(EPORT_SM2_SHA1_CONVENTION, sm2_key, rsa_key)
    for written in (b"3000000000CDE6F", b"0003000000000cde6f"):
        root = parse(edited(data, b"03000000000cde6f", written))
        assert verify_enveloped(root, resolver(keys)).hint.serial_hex == "3000000000cde6f"


def test_a_key_name_that_is_not_a_serial_reaches_the_resolver_as_written(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    data = signed(EPORT_SM2_SHA1_CONVENTION, sm2_key, rsa_key)
    root = parse(edited(data, b"03000000000cde6f", b" agency-cert-1 "))
    verified = verify_enveloped(
        root, lambda hint: keys[SM2_SERIAL] if hint.key_name == "agency-cert-1" else None)
    assert (verified.hint.serial, verified.hint.serial_hex) == (None, None)


def test_the_resolver_gets_the_embedded_certificate_as_a_hint(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    hints: list[KeyHint] = []

    def resolve(hint: KeyHint) -> VerifyKey | None:
        hints.append(hint)
        return keys[SM2_SERIAL]

    verify_enveloped(parse(signed(EPORT_SM2_SM3_CONVENTION, sm2_key, rsa_key)), resolve)
    assert hints == [KeyHint(key_name="3000000000cde6f", serial=SM2_SERIAL,
                             certificate=b"\x30\x03\x02\x01\x01")]


def test_a_dxp_envelope_declaring_ds_itself_is_signed_and_verified(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    envelope = (
        '<DxpMsg ver="1.0" Id="CL01" xmlns="http://www.chinaport.gov.cn/dxp" '
        f'xmlns:ds="{DS_NS}" xmlns:xsi="{XSI}"><TransInfo><CopMsgId>m-1</CopMsgId>'
        "</TransInfo><Data>PGEvPg==</Data></DxpMsg>"
    ).encode()
    data = signed(EPORT_SM2_SM3_CONVENTION, sm2_key, rsa_key, envelope)
    assert verify_enveloped(parse(data), resolver(keys)).convention is EPORT_SM2_SM3_CONVENTION


# -- comments and whitespace -------------------------------------------------------------------

COMMENTED = BUSINESS.replace(b"<ceb:Order>", b"<!-- by the U-key --><ceb:Order>")


def keeping_comments(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(data, parser)


def test_the_u_key_convention_digests_comments_and_a_comment_removed_after_is_refused(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    root = keeping_comments(COMMENTED)
    sign_enveloped(root, sm2_key, convention=EPORT_SM2_SHA1_CONVENTION, serial=SM2_SERIAL)
    data = etree.tostring(root)
    assert verify_enveloped(keeping_comments(data), resolver(keys))
    assert refusal(parse(data), keys) == "XMLDSIG_DIGEST_MISMATCH"  # the safe parse drops it


def test_a_comment_is_outside_a_reference_that_excludes_comments(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    data = signed(EPORT_SM2_SM3_CONVENTION, sm2_key, rsa_key)
    with_comment = edited(data, b"<ceb:Order>", b"<!-- added --><ceb:Order>")
    assert verify_enveloped(keeping_comments(with_comment), resolver(keys))


def test_text_after_a_signature_inserted_before_it_stays_in_the_signed_document(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    root = parse(signed(EPORT_SM2_SM3_CONVENTION, sm2_key, rsa_key))
    signature = signature_of(root)
    before = signature.getprevious()
    assert before is not None and before.tail == "\n"
    signature.tail, before.tail = before.tail, None  # another signer's placement
    verify_enveloped(root, resolver(keys))
    assert signature.tail == "\n" and before.tail is None  # the tree is as it was
    signature.tail = "\n\n"
    assert refusal(root, keys) == "XMLDSIG_DIGEST_MISMATCH"


# -- tampering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_tampered_content_is_a_digest_mismatch(
    name: str, sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    data = signed(CONVENTIONS[name], sm2_key, rsa_key)
    for old, new in ((b"100.00", b"900.00"), (b'guid="4CDE1CFD"', b'guid="4CDE1CFE"'),
                     (b"</ceb:BaseTransfer>\n", b"</ceb:BaseTransfer>")):
        assert refusal(edited(data, old, new), keys) == "XMLDSIG_DIGEST_MISMATCH"


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_tampered_content_with_its_digest_recomputed_is_a_bad_signature(
    name: str, sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    convention = CONVENTIONS[name]
    root = parse(signed(convention, sm2_key, rsa_key))
    root.find(f".//{{{CEB}}}goodsValue").text = "900.00"
    signature = signature_of(root)
    root.remove(signature)
    digest = convention.digest(etree.tostring(root.getroottree(), method="c14n",
                                              with_comments=convention.digest_with_comments))
    root.append(signature)
    signature.find(f".//{DS}DigestValue").text = base64.b64encode(digest).decode()
    assert refusal(root, keys) == "XMLDSIG_BAD_SIGNATURE"


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_a_tampered_signature_value_is_a_bad_signature(
    name: str, sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    root = parse(signed(CONVENTIONS[name], sm2_key, rsa_key))
    value = signature_of(root).find(f"{DS}SignatureValue")
    raw = bytearray(base64.b64decode(value.text))
    raw[len(raw) // 2] ^= 0x01
    value.text = base64.b64encode(bytes(raw)).decode()
    assert refusal(root, keys) == "XMLDSIG_BAD_SIGNATURE"


def test_a_signature_under_another_key_or_an_unknown_one_is_refused(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys
) -> None:
    data = signed(EPORT_SM2_SM3_CONVENTION, sm2_key, rsa_key)
    other = {SM2_SERIAL: SM2PrivateKey.generate().public_key()}
    assert refusal(data, other) == "XMLDSIG_BAD_SIGNATURE"
    assert refusal(data, {}) == "XMLDSIG_KEY_UNKNOWN"
    assert refusal(data, {SM2_SERIAL: keys[RSA_SERIAL]}) == "XMLDSIG_KEY_UNSUITABLE"
    no_key_info = edited(data, data[data.index(b"<ds:KeyInfo>"):data.index(b"</ds:Signature>")],
                         b"")
    assert refusal(no_key_info, keys) == "XMLDSIG_KEY_MISSING"


# -- what is refused before any cryptography ---------------------------------------------------

ENVELOPED = b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'


@pytest.fixture(scope="module")
def sm3_signed(sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey) -> bytes:
    return signed(EPORT_SM2_SM3_CONVENTION, sm2_key, rsa_key)


def test_a_document_without_a_signature_is_refused(keys: Keys) -> None:
    assert refusal(BUSINESS, keys) == "XMLDSIG_MISSING"


def test_a_second_reference_is_refused(sm3_signed: bytes, keys: Keys) -> None:
    start = sm3_signed.index(b"<ds:Reference")
    reference = sm3_signed[start:sm3_signed.index(b"</ds:Reference>") + len(b"</ds:Reference>")]
    twice = edited(sm3_signed, reference, reference + reference.replace(b'URI=""', b'URI="#x"'))
    assert refusal(twice, keys) == "XMLDSIG_UNSUPPORTED_REFERENCE"


@pytest.mark.parametrize("uri", [b'URI="#ID01"', b'URI="http://example.org/doc.xml"', b""])
def test_a_reference_to_anything_but_the_whole_document_is_refused(
    uri: bytes, sm3_signed: bytes, keys: Keys
) -> None:
    data = edited(sm3_signed, b'<ds:Reference URI="">', b"<ds:Reference " + uri + b">")
    assert refusal(data, keys) == "XMLDSIG_UNSUPPORTED_REFERENCE"


@pytest.mark.parametrize("transforms", [
    b'<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116">'
    b'<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"/>'
    b"</ds:Transform>",
    b'<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116">'
    b"<ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>",
    ENVELOPED + b'<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>',
    ENVELOPED + b'<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>',
    ENVELOPED + ENVELOPED,
    b'<ds:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>',
    b"",
])
def test_transforms_other_than_enveloped_then_inclusive_c14n_are_refused(
    transforms: bytes, sm3_signed: bytes, keys: Keys
) -> None:
    data = parse(sm3_signed)
    steps = signature_of(data).find(f".//{DS}Transforms")
    for step in list(steps):
        steps.remove(step)
    for step in etree.fromstring(b'<w xmlns:ds="%s">%s</w>' % (DS_NS.encode(), transforms)):
        steps.append(step)
    assert refusal(data, keys) == "XMLDSIG_UNSUPPORTED_TRANSFORM"


def test_an_explicit_inclusive_c14n_transform_after_the_enveloped_one_is_accepted(
    sm3_signed: bytes, sm2_key: SM2PrivateKey, keys: Keys
) -> None:
    root = parse(sm3_signed)
    signature_of(root).find(f".//{DS}Transforms").append(etree.fromstring(
        f'<ds:Transform xmlns:ds="{DS_NS}" '
        'Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"/>'))
    assert refusal(root, keys) == "XMLDSIG_BAD_SIGNATURE"  # the digest held; SignedInfo changed
    signed_info = signature_of(root).find(f"{DS}SignedInfo")
    value = signature_to_raw(sm2_key.sign(etree.tostring(signed_info, method="c14n")))
    signature_of(root).find(f"{DS}SignatureValue").text = base64.b64encode(value).decode()
    assert verify_enveloped(root, resolver(keys)).convention is EPORT_SM2_SM3_CONVENTION


def test_a_moved_or_duplicated_signature_is_refused(sm3_signed: bytes, keys: Keys) -> None:
    root = parse(sm3_signed)
    signature = signature_of(root)
    root.find(f"{{{CEB}}}Order").append(signature)  # wrapped inside the content
    assert refusal(root, keys) == "XMLDSIG_MISPLACED"

    root = parse(sm3_signed)
    root.insert(0, signature_of(root))  # a child of the root, but not its last
    assert refusal(root, keys) == "XMLDSIG_MISPLACED"

    root = parse(sm3_signed)
    order = root.find(f"{{{CEB}}}Order")
    order.append(etree.fromstring(etree.tostring(signature_of(root))))  # a copy hidden inside
    assert refusal(root, keys) == "XMLDSIG_MISPLACED"


def test_a_wrapped_document_pointing_its_reference_at_the_original_is_refused(
    sm3_signed: bytes, keys: Keys
) -> None:
    """The classic wrapping attack: a forged root, the genuine signed content moved into an
    Object of the signature and the reference pointing at it by id."""
    genuine = parse(sm3_signed)
    signature = signature_of(genuine)
    genuine.remove(signature)
    genuine.set("Id", "genuine")
    carrier = etree.SubElement(signature, f"{DS}Object")
    carrier.append(genuine)
    signature.find(f".//{DS}Reference").set("URI", "#genuine")
    forged = parse(BUSINESS.replace(b"100.00", b"1.00"))
    forged.append(signature)
    assert refusal(forged, keys) == "XMLDSIG_MALFORMED"
    forged[-1].remove(forged[-1][-1])  # without the Object, the reference alone
    assert refusal(forged, keys) == "XMLDSIG_UNSUPPORTED_REFERENCE"


@pytest.mark.parametrize(("old", "new"), [
    (b"http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3",
     b"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
    (b"http://www.chinaport.gov.cn/2022/04/xmldsig#sm3",
     b"http://www.w3.org/2000/09/xmldsig#sha1"),  # a pair no convention uses
    (b"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"",
     b"http://www.w3.org/2001/10/xml-exc-c14n#\""),
])
def test_algorithms_outside_the_alias_table_are_refused(
    old: bytes, new: bytes, sm3_signed: bytes, keys: Keys
) -> None:
    assert refusal(edited(sm3_signed, old, new), keys) == "XMLDSIG_ALGORITHM_UNSUPPORTED"


def test_a_verifier_may_accept_fewer_conventions(sm3_signed: bytes, keys: Keys) -> None:
    code = refusal(sm3_signed, keys, conventions=[RSA_SHA1_CONVENTION])
    assert code == "XMLDSIG_ALGORITHM_UNSUPPORTED"


def test_structure_outside_the_enveloped_form_is_malformed(sm3_signed: bytes,
                                                          keys: Keys) -> None:
    for old, new in ((b"<ds:SignatureValue>", b"<ds:Object/><ds:SignatureValue>"),
                     (b"</ds:KeyInfo>", b"</ds:KeyInfo><ds:Object/>"),
                     (b"<ds:KeyName>", b"<ds:RetrievalMethod URI=\"http://x\"/><ds:KeyName>"),
                     (b"<ds:DigestValue>", b"<ds:DigestValue>!")):
        assert refusal(edited(sm3_signed, old, new), keys) == "XMLDSIG_MALFORMED"


def test_a_root_carrying_xml_attributes_is_neither_signed_nor_verified(
    sm2_key: SM2PrivateKey, sm3_signed: bytes, keys: Keys
) -> None:
    data = edited(sm3_signed, b'guid="4CDE1CFD"', b'guid="4CDE1CFD" xml:lang="zh"')
    assert refusal(data, keys) == "XMLDSIG_UNSUPPORTED_CONTEXT"
    with pytest.raises(XmlSignatureError) as caught:
        sign_enveloped(parse(edited(BUSINESS, b'guid="4CDE1CFD"', b'xml:lang="zh"')), sm2_key,
                       convention="eport-sm2-sm3", serial=1)
    assert caught.value.code == "XMLDSIG_UNSUPPORTED_CONTEXT"


def test_signing_refuses_a_signed_document_a_wrong_key_and_an_unknown_convention(
    sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, sm3_signed: bytes
) -> None:
    attempts: list[tuple[bytes, object, str, str]] = [
        (sm3_signed, sm2_key, "eport-sm2-sm3", "XMLDSIG_ALREADY_SIGNED"),
        (BUSINESS, rsa_key, "eport-sm2-sha1", "XMLDSIG_KEY_UNSUITABLE"),
        (BUSINESS, sm2_key, "rsa-sha1", "XMLDSIG_KEY_UNSUITABLE"),
        (BUSINESS, sm2_key, "sm2-sha256", "XMLDSIG_ALGORITHM_UNSUPPORTED"),
    ]
    for document, key, convention, code in attempts:
        with pytest.raises(XmlSignatureError) as caught:
            sign_enveloped(parse(document), key, convention=convention,  # type: ignore[arg-type]
                           serial=SM2_SERIAL)
        assert caught.value.code == code


def test_refusals_name_the_element_and_rule_never_a_value(sm3_signed: bytes,
                                                           keys: Keys) -> None:
    data = edited(sm3_signed, b"100.00", b"900.00")
    with pytest.raises(XmlSignatureError) as caught:
        verify_enveloped(parse(data), resolver({}))
    root = parse(sm3_signed)
    values = [text for text in root.itertext() if len(text.strip()) > 3]
    assert "ds:DigestValue" in caught.value.message
    assert not [value for value in values if value.strip() in str(caught.value)]


# -- round trip --------------------------------------------------------------------------------

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}", fullmatch=True)
TEXTS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), max_size=30)
Tree = tuple[str, str, dict[str, str], list[Any]]
ELEMENTS: st.SearchStrategy[Tree] = st.recursive(
    st.tuples(NAMES, TEXTS, st.dictionaries(NAMES, TEXTS, max_size=3), st.just([])),
    lambda children: st.tuples(NAMES, TEXTS, st.dictionaries(NAMES, TEXTS, max_size=3),
                               st.lists(children, max_size=4)),
    max_leaves=12,
)


def built(tree: Tree, nsmap: dict[str | None, str],
          parent: etree._Element | None = None) -> etree._Element:
    name, text, attributes, children = tree
    tag = f"{{{CEB}}}{name}"
    element = (etree.Element(tag, nsmap=nsmap) if parent is None
               else etree.SubElement(parent, tag))
    for key, value in attributes.items():
        element.set(key, value)
    element.text = text
    for child in children:
        built(child, nsmap, element).tail = text
    return element


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=ELEMENTS, convention=st.sampled_from(sorted(CONVENTIONS)),
       default_namespace=st.booleans())
def test_any_document_signed_in_any_convention_verifies_after_a_round_trip(
    tree: Tree, convention: str,
    default_namespace: bool, sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys,
) -> None:
    nsmap: dict[str | None, str] = {None if default_namespace else "ceb": CEB, "xsi": XSI}
    document = etree.tostring(built(tree, nsmap), encoding="UTF-8")
    data = signed(CONVENTIONS[convention], sm2_key, rsa_key, document)
    assert verify_enveloped(parse(data), resolver(keys)).convention.name == convention


# -- a second implementation -------------------------------------------------------------------


def openssl(*arguments: str) -> None:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *arguments], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


@needs_openssl
@pytest.mark.parametrize("convention", [EPORT_SM2_SM3_CONVENTION, EPORT_SM2_SHA1_CONVENTION])
def test_openssl_verifies_the_sm2_value_and_makes_one_that_verifies(
    convention: Convention, sm2_key: SM2PrivateKey, rsa_key: rsa.RSAPrivateKey, keys: Keys,
    tmp_path: Path,
) -> None:
    root = parse(signed(convention, sm2_key, rsa_key))
    signature = signature_of(root)
    (tmp_path / "signed-info").write_bytes(etree.tostring(signature[0], method="c14n"))
    (tmp_path / "key.pub").write_bytes(sm2_key.public_key().to_pem())
    (tmp_path / "key.pem").write_bytes(sm2_key.to_pem())
    raw = base64.b64decode(signature[1].text)
    assert len(raw) == 64
    (tmp_path / "ours.der").write_bytes(signature_from_raw(raw))
    sm3_with_id = ("-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
                   "-in", str(tmp_path / "signed-info"))
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "key.pub"),
            *sm3_with_id, "-sigfile", str(tmp_path / "ours.der"))

    openssl("pkeyutl", "-sign", "-inkey", str(tmp_path / "key.pem"), *sm3_with_id,
            "-out", str(tmp_path / "theirs.der"))
    theirs = signature_to_raw((tmp_path / "theirs.der").read_bytes())
    signature[1].text = base64.b64encode(theirs).decode()
    assert verify_enveloped(root, resolver(keys)).convention is convention
