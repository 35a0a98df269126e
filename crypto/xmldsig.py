"""Enveloped XML signatures the China E-Port way (国密 and RSA), verified and made.

Three published conventions, told apart by their SignatureMethod and DigestMethod URIs
(docs/eport-research.md §2; the alias table is ``CONVENTIONS``):

- ``eport-sm2-sm3``: the 2022 E-Port spec, SM2 over SM3 and an SM3 digest. How its
  SignatureValue is encoded is not published: raw r ‖ s (64 bytes) and DER are accepted,
  raw is written (the E-Port's own U-key returns raw).
- ``eport-sm2-sha1``: what the E-Port U-key tools emit, SM2 under an invented URI in the W3C
  namespace with a SHA-1 digest and a raw 64-byte r ‖ s value.
- ``rsa-sha1``: the legacy RSA PKCS#1 v1.5 certificates.

SM2 signs with SM3 and the user ID ``1234567812345678`` (GM/T 0009's default) in Z.

Only the enveloped form is spoken: one ``ds:Signature``, the last element child of the
document's root, with one ``Reference URI=""``, the enveloped-signature transform and at
most an inclusive C14N 1.0 after it. Anything else (another reference, ``#id`` or external
URIs, XPath, XSLT or exclusive C14N transforms, ``ds:Object``, a second or misplaced
signature) is refused: the whole document is what is signed, so a signature that covers a
part of it, or one hidden deeper, is a wrapping attack or a convention nobody here uses.

This module takes elements already parsed by the caller (message_formats' SafeXmlParser:
no DTD, budgets); it parses nothing. Canonical forms come from libxml2 through lxml, on the
tree in place: SignedInfo is canonicalised with the namespaces in scope from the business
root, as inclusive C14N says and the E-Port tools do. To digest the document without its
signature, verification takes the ``ds:Signature`` out of the tree for the time of one
canonicalisation and puts it back (cheaper than copying the document): a tree must not be
read by another thread while it is verified.

Keys: the caller resolves them (``SignerKeyResolver``) from the KeyName (the certificate's
serial, hex) and the embedded X509Certificate. That certificate is a hint, never trusted by
itself: a resolver returns a key from its own keyring, never the one inside the document.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from ._sm2codec import signature_from_raw, signature_to_raw
from .errors import CertificateRefused, CryptoError, SignatureInvalid
from .rsa_keys import RsaPublicKey
from .sm2 import DEFAULT_SM2_ID, SM2PrivateKey, SM2PublicKey
from .sm3 import sm3
from .x509 import serial_from_key_name

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_WITH_COMMENTS = C14N + "#WithComments"
ENVELOPED_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EPORT_SM2_SM3 = "http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3"
EPORT_SM3 = "http://www.chinaport.gov.cn/2022/04/xmldsig#sm3"
W3C_SM2_SM3 = "http://www.w3.org/2000/09/xmldsig#sm2-sm3"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"

XMLDSIG_MISSING = "XMLDSIG_MISSING"
XMLDSIG_MISPLACED = "XMLDSIG_MISPLACED"
XMLDSIG_MALFORMED = "XMLDSIG_MALFORMED"
XMLDSIG_UNSUPPORTED_REFERENCE = "XMLDSIG_UNSUPPORTED_REFERENCE"
XMLDSIG_UNSUPPORTED_TRANSFORM = "XMLDSIG_UNSUPPORTED_TRANSFORM"
XMLDSIG_UNSUPPORTED_CONTEXT = "XMLDSIG_UNSUPPORTED_CONTEXT"
XMLDSIG_ALGORITHM_UNSUPPORTED = "XMLDSIG_ALGORITHM_UNSUPPORTED"
XMLDSIG_DIGEST_MISMATCH = "XMLDSIG_DIGEST_MISMATCH"
XMLDSIG_BAD_SIGNATURE = "XMLDSIG_BAD_SIGNATURE"
XMLDSIG_KEY_MISSING = "XMLDSIG_KEY_MISSING"
XMLDSIG_KEY_UNKNOWN = "XMLDSIG_KEY_UNKNOWN"
XMLDSIG_KEY_UNSUITABLE = "XMLDSIG_KEY_UNSUITABLE"
XMLDSIG_ALREADY_SIGNED = "XMLDSIG_ALREADY_SIGNED"

_XML_NS = "http://www.w3.org/XML/1998/namespace"


def _ds(name: str) -> str:
    return f"{{{DS_NS}}}{name}"


_SIGNATURE = _ds("Signature")


class XmlSignatureError(CryptoError):
    """An enveloped signature refused; ``code`` says which rule (the XMLDSIG_* constants).
    The message names the element and the rule, never a value."""

    code = "XMLDSIG_ERROR"


def _refuse(code: str, message: str) -> XmlSignatureError:
    return XmlSignatureError(message, code=code)


class KeyKind(StrEnum):
    SM2 = "sm2"
    RSA = "rsa"


class Sm2Encoding(StrEnum):
    RAW = "raw"  # r ‖ s, 32 bytes each
    DER = "der"  # SEQUENCE { INTEGER r, INTEGER s }


@dataclass(frozen=True, slots=True)
class Convention:
    """One published way of signing: which URIs it writes and how.

    ``digest_with_comments``: whether its signers digest the document with its comments
    (the U-key tools canonicalise with comments although the enveloped reference excludes
    them); verification tries the other form too when the document has comments.
    ``key_name_width``: hex digits the KeyName is zero-padded to when signing."""

    name: str
    signature_method: str
    digest_method: str
    key_kind: KeyKind
    digest: Callable[[bytes], bytes]
    digest_with_comments: bool
    sm2_encodings: tuple[Sm2Encoding, ...] = ()
    key_name_width: int = 0


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


EPORT_SM2_SM3_CONVENTION = Convention(
    name="eport-sm2-sm3", signature_method=EPORT_SM2_SM3, digest_method=EPORT_SM3,
    key_kind=KeyKind.SM2, digest=sm3, digest_with_comments=False,
    sm2_encodings=(Sm2Encoding.RAW, Sm2Encoding.DER),
)  # fmt: skip
EPORT_SM2_SHA1_CONVENTION = Convention(
    name="eport-sm2-sha1", signature_method=W3C_SM2_SM3, digest_method=SHA1,
    key_kind=KeyKind.SM2, digest=_sha1, digest_with_comments=True,
    sm2_encodings=(Sm2Encoding.RAW,), key_name_width=16,
)  # fmt: skip
RSA_SHA1_CONVENTION = Convention(
    name="rsa-sha1", signature_method=RSA_SHA1, digest_method=SHA1,
    key_kind=KeyKind.RSA, digest=_sha1, digest_with_comments=False,
)  # fmt: skip

CONVENTIONS: Mapping[str, Convention] = MappingProxyType({
    convention.name: convention
    for convention in (EPORT_SM2_SM3_CONVENTION, EPORT_SM2_SHA1_CONVENTION, RSA_SHA1_CONVENTION)
})  # fmt: skip

VerifyKey = SM2PublicKey | RsaPublicKey | rsa.RSAPublicKey  # RSA as the keyring or a caller has it
SigningKey = SM2PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class KeyHint:
    """What a signature says about its key: the KeyName read as a hex serial (``serial``,
    None when absent), the KeyName as written, and the embedded certificate's DER. Hints
    only: none of them is a key."""

    key_name: str | None
    serial: int | None
    certificate: bytes | None

    @property
    def serial_hex(self) -> str | None:
        """The serial as lowercase hex without leading zeros (KeyNames differ in padding)."""
        return None if self.serial is None else format(self.serial, "x")


class SignerKeyResolver(Protocol):
    """Finds the signer's key in the caller's own keyring; None when it has none.

    It must return a key it trusts for this signer, never one taken from ``hint.certificate``
    unless that very certificate is in its keyring: a certificate inside a document proves
    nothing by itself."""

    def __call__(self, hint: KeyHint, /) -> VerifyKey | None: ...


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    convention: Convention
    hint: KeyHint
    key: VerifyKey


@dataclass(frozen=True, slots=True)
class _ParsedSignature:
    element: etree._Element
    signed_info: etree._Element
    signed_info_comments: bool
    convention: Convention
    digest_comments: bool | None  # None: no C14N transform named, the convention decides
    digest_value: bytes
    signature_value: bytes
    hint: KeyHint


# -- verifying ---------------------------------------------------------------------------------


def verify_enveloped(
    root: etree._Element,
    resolve: SignerKeyResolver,
    *,
    conventions: Iterable[Convention] = CONVENTIONS.values(),
) -> VerifiedSignature:
    """Check the enveloped signature of the document whose root is ``root``; XmlSignatureError
    says why it is refused. ``conventions`` limits which ones are accepted."""
    parsed = _parse_signature(_the_signature(root), conventions)
    _check_digest(root, parsed)
    key = resolve(parsed.hint)
    if key is None:
        raise _refuse(XMLDSIG_KEY_UNKNOWN, "ds:KeyInfo names no key of the keyring")
    _check_signature_value(parsed, key)
    return VerifiedSignature(parsed.convention, parsed.hint, key)


def _the_signature(root: etree._Element) -> etree._Element:
    _require_document_root(root)
    found = list(root.iter(_SIGNATURE))
    if not found:
        raise _refuse(XMLDSIG_MISSING, "the document has no ds:Signature")
    if len(found) > 1:
        raise _refuse(XMLDSIG_MISPLACED, "the document must carry exactly one ds:Signature")
    signature = found[0]
    if signature.getparent() is not root or _elements(root)[-1] is not signature:
        raise _refuse(XMLDSIG_MISPLACED, "ds:Signature must be the last child of the root")
    _require_no_inherited_xml_attributes(root)
    return signature


def _require_document_root(root: etree._Element) -> None:
    if root.getparent() is not None:
        raise ValueError("an enveloped signature is over a whole document: pass its root")


def _require_no_inherited_xml_attributes(root: etree._Element) -> None:
    """Inclusive C14N would carry the root's xml:lang / xml:space / xml:base into SignedInfo;
    libxml2's canonical form of an element in place does not, so no such root is signed
    or verified rather than disagree with other implementations."""
    if any(name.startswith(f"{{{_XML_NS}}}") for name in root.attrib):
        raise _refuse(XMLDSIG_UNSUPPORTED_CONTEXT,
                      "the signed root must not carry xml: attributes")


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _ds_children(parent: etree._Element, what: str) -> list[etree._Element]:
    children = _elements(parent)
    if any(etree.QName(child).namespace != DS_NS for child in children):
        raise _refuse(XMLDSIG_MALFORMED, f"{what} may hold only XML-DSig elements")
    return children


def _local(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def _expect_sequence(
    parent: etree._Element, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, etree._Element]:
    """The ds children of ``parent``, which must be exactly ``required`` in order, then any
    of ``optional`` in order."""
    children = _ds_children(parent, what)
    names = [_local(child) for child in children]
    if names[: len(required)] != list(required) or not _in_order(names[len(required):], optional):
        expected = ", ".join([*required, *(f"{name}?" for name in optional)])
        raise _refuse(XMLDSIG_MALFORMED, f"{what} must hold {expected} in this order")
    return dict(zip(names, children, strict=True))


def _in_order(names: list[str], allowed: tuple[str, ...]) -> bool:
    positions = [allowed.index(name) if name in allowed else -1 for name in names]
    return all(position >= 0 for position in positions) and positions == sorted(set(positions))


def _parse_signature(
    signature: etree._Element, conventions: Iterable[Convention]
) -> _ParsedSignature:
    parts = _expect_sequence(signature, "ds:Signature", ("SignedInfo", "SignatureValue"),
                             ("KeyInfo",))
    signed_info = parts["SignedInfo"]
    children = _ds_children(signed_info, "ds:SignedInfo")
    names = [_local(child) for child in children]
    if names[:2] != ["CanonicalizationMethod", "SignatureMethod"] or any(
        name != "Reference" for name in names[2:]
    ):
        raise _refuse(XMLDSIG_MALFORMED, "ds:SignedInfo must hold CanonicalizationMethod, "
                                         "SignatureMethod and Reference in this order")
    if len(children) != 3:
        raise _refuse(XMLDSIG_UNSUPPORTED_REFERENCE, "ds:SignedInfo must hold exactly one "
                                                     "ds:Reference")
    c14n_method, signature_method, reference = children
    signed_info_comments = _c14n_comments(_algorithm(c14n_method, "CanonicalizationMethod"))
    if signed_info_comments is None:
        raise _refuse(XMLDSIG_ALGORITHM_UNSUPPORTED,
                      "ds:CanonicalizationMethod must be inclusive C14N 1.0")
    reference_parts = _expect_sequence(reference, "ds:Reference", (),
                                       ("Transforms", "DigestMethod", "DigestValue"))
    if "DigestMethod" not in reference_parts or "DigestValue" not in reference_parts:
        raise _refuse(XMLDSIG_MALFORMED, "ds:Reference must hold DigestMethod and DigestValue")
    if reference.get("URI") != "":
        raise _refuse(XMLDSIG_UNSUPPORTED_REFERENCE,
                      'ds:Reference must have URI="" (the whole document)')
    convention = _convention(
        _algorithm(signature_method, "SignatureMethod"),
        _algorithm(reference_parts["DigestMethod"], "DigestMethod"),
        conventions,
    )
    return _ParsedSignature(
        element=signature,
        signed_info=signed_info,
        signed_info_comments=signed_info_comments,
        convention=convention,
        digest_comments=_digest_transforms(reference_parts.get("Transforms")),
        digest_value=_base64(reference_parts["DigestValue"], "ds:DigestValue"),
        signature_value=_base64(parts["SignatureValue"], "ds:SignatureValue"),
        hint=_key_hint(parts.get("KeyInfo")),
    )


def _algorithm(element: etree._Element, what: str) -> str:
    if _elements(element):
        raise _refuse(XMLDSIG_ALGORITHM_UNSUPPORTED, f"ds:{what} must have no parameters")
    return _algorithm_named(element, what)


def _algorithm_named(element: etree._Element, what: str) -> str:
    algorithm = element.get("Algorithm")
    if algorithm is None:
        raise _refuse(XMLDSIG_MALFORMED, f"ds:{what} must name its Algorithm")
    return str(algorithm)


def _c14n_comments(algorithm: str) -> bool | None:
    """Whether inclusive C14N 1.0 ``algorithm`` keeps comments; None for any other."""
    return {C14N: False, C14N_WITH_COMMENTS: True}.get(algorithm)


def _convention(
    signature_method: str, digest_method: str, conventions: Iterable[Convention]
) -> Convention:
    for convention in conventions:
        if (convention.signature_method, convention.digest_method) == (signature_method,
                                                                       digest_method):
            return convention
    raise _refuse(XMLDSIG_ALGORITHM_UNSUPPORTED, "ds:SignatureMethod with ds:DigestMethod is "
                                                 "not an accepted signing convention")


def _digest_transforms(transforms: etree._Element | None) -> bool | None:
    """The enveloped-signature transform, then at most an inclusive C14N: whether that C14N
    keeps comments (None when none is named)."""
    steps = [] if transforms is None else _ds_children(transforms, "ds:Transforms")
    if any(_local(step) != "Transform" for step in steps):
        raise _refuse(XMLDSIG_MALFORMED, "ds:Transforms may hold only ds:Transform")
    algorithms = [_transform_algorithm(step) for step in steps]
    if not algorithms or algorithms[0] != ENVELOPED_SIGNATURE:
        raise _refuse(XMLDSIG_UNSUPPORTED_TRANSFORM,
                      "ds:Transforms must begin with the enveloped-signature transform")
    if len(algorithms) == 1:
        return None
    comments = _c14n_comments(algorithms[1])
    if len(algorithms) > 2 or comments is None:
        raise _refuse(XMLDSIG_UNSUPPORTED_TRANSFORM, "ds:Transform after the enveloped "
                                                     "signature may only be inclusive C14N 1.0")
    return comments


def _transform_algorithm(step: etree._Element) -> str:
    if _elements(step):
        raise _refuse(XMLDSIG_UNSUPPORTED_TRANSFORM, "ds:Transform must have no parameters "
                                                     "(no XPath, no XSLT)")
    return _algorithm_named(step, "Transform")


def _base64(element: etree._Element, what: str) -> bytes:
    """The element's base64 text; the line breaks and indentation real files carry are
    stripped first."""
    if _elements(element):
        raise _refuse(XMLDSIG_MALFORMED, f"{what} must hold text only")
    text = "".join((element.text or "").split())
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(XMLDSIG_MALFORMED, f"{what} must be base64") from None
    if not value:
        raise _refuse(XMLDSIG_MALFORMED, f"{what} must not be empty")
    return value


def _key_hint(key_info: etree._Element | None) -> KeyHint:
    if key_info is None:
        raise _refuse(XMLDSIG_KEY_MISSING, "ds:Signature must hold ds:KeyInfo")
    parts = _expect_sequence(key_info, "ds:KeyInfo", (), ("KeyName", "X509Data"))
    key_name = _key_name(parts.get("KeyName"))
    certificate = _certificate(parts.get("X509Data"))
    if key_name is None and certificate is None:
        raise _refuse(XMLDSIG_KEY_MISSING, "ds:KeyInfo must hold KeyName or X509Certificate")
    return KeyHint(key_name=key_name, serial=_serial(key_name), certificate=certificate)


def _key_name(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    if _elements(element):
        raise _refuse(XMLDSIG_MALFORMED, "ds:KeyName must hold text only")
    return (element.text or "").strip() or None


def _serial(key_name: str | None) -> int | None:
    """The KeyName as a certificate serial (hex, any case, any padding); None when it is
    not hex: the resolver may still know it by name or certificate."""
    if key_name is None:
        return None
    try:
        return serial_from_key_name(key_name)
    except CertificateRefused:
        return None


def _certificate(x509_data: etree._Element | None) -> bytes | None:
    if x509_data is None:
        return None
    certificates = [child for child in _ds_children(x509_data, "ds:X509Data")
                    if _local(child) == "X509Certificate"]
    if len(certificates) > 1:
        raise _refuse(XMLDSIG_MALFORMED, "ds:X509Data must hold at most one X509Certificate")
    return _base64(certificates[0], "ds:X509Certificate") if certificates else None


def _check_digest(root: etree._Element, parsed: _ParsedSignature) -> None:
    convention = parsed.convention
    first = (convention.digest_with_comments if parsed.digest_comments is None
             else parsed.digest_comments)
    with _detached(parsed.element):
        document = root.getroottree()
        if _digest_matches(parsed, _canonical(document, first)):
            return
        if (parsed.digest_comments is None and _has_comments(document)
                and _digest_matches(parsed, _canonical(document, not first))):
            return
    raise _refuse(XMLDSIG_DIGEST_MISMATCH, "ds:DigestValue does not match the document")


def _digest_matches(parsed: _ParsedSignature, canonical: bytes) -> bool:
    return hmac.compare_digest(parsed.convention.digest(canonical), parsed.digest_value)


def _has_comments(document: etree._ElementTree) -> bool:
    root = document.getroot()
    outside = [*root.itersiblings(preceding=True), *root.itersiblings()]
    return (next(root.iter(etree.Comment), None) is not None
            or any(node.tag is etree.Comment for node in outside))


@contextmanager
def _detached(element: etree._Element) -> Iterator[None]:
    """``element`` out of the tree, its tail text left where it was (the enveloped-signature
    transform removes the element node only), and put back afterwards."""
    parent = element.getparent()
    assert parent is not None
    index = parent.index(element)
    previous = element.getprevious()
    tail = element.tail
    element.tail = None
    parent.remove(element)
    before = parent.text if previous is None else previous.tail
    _set_text_before(parent, previous, (before or "") + (tail or "") or None)
    try:
        yield
    finally:
        _set_text_before(parent, previous, before)
        parent.insert(index, element)
        element.tail = tail


def _set_text_before(parent: etree._Element, previous: etree._Element | None,
                     text: str | None) -> None:
    if previous is None:
        parent.text = text
    else:
        previous.tail = text


def _canonical(node: etree._Element | etree._ElementTree, with_comments: bool) -> bytes:
    return bytes(etree.tostring(node, method="c14n", with_comments=with_comments))


def _check_signature_value(parsed: _ParsedSignature, key: VerifyKey) -> None:
    signed = _canonical(parsed.signed_info, parsed.signed_info_comments)
    convention = parsed.convention
    if convention.key_kind is KeyKind.SM2 and isinstance(key, SM2PublicKey):
        _verify_sm2(convention, key, parsed.signature_value, signed)
    elif convention.key_kind is KeyKind.RSA and isinstance(key, RsaPublicKey | rsa.RSAPublicKey):
        _verify_rsa(key.key if isinstance(key, RsaPublicKey) else key, parsed.signature_value,
                    signed)
    else:
        raise _refuse(XMLDSIG_KEY_UNSUITABLE,
                      "the signer's key is not of the kind ds:SignatureMethod names")


def _verify_sm2(convention: Convention, key: SM2PublicKey, value: bytes, signed: bytes) -> None:
    try:
        der = _sm2_der(convention, value)
        key.verify(der, signed, user_id=DEFAULT_SM2_ID)
    except (ValueError, SignatureInvalid):
        raise _refuse(XMLDSIG_BAD_SIGNATURE,
                      "ds:SignatureValue does not verify over ds:SignedInfo") from None


def _sm2_der(convention: Convention, value: bytes) -> bytes:
    """The DER form of ``value``: DER as it is where the convention allows it (tried first: a
    DER value can be 64 bytes long, raw r ‖ s practically never parses as strict DER), else
    raw r ‖ s. ValueError for anything else."""
    if Sm2Encoding.DER in convention.sm2_encodings and _is_der_signature(value):
        return value
    if Sm2Encoding.RAW in convention.sm2_encodings:
        return signature_from_raw(value)
    raise ValueError("not an SM2 signature in this convention's encoding")


def _is_der_signature(value: bytes) -> bool:
    try:
        signature_to_raw(value)
    except ValueError:
        return False
    return True


def _verify_rsa(key: rsa.RSAPublicKey, value: bytes, signed: bytes) -> None:
    try:
        key.verify(value, signed, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        raise _refuse(XMLDSIG_BAD_SIGNATURE,
                      "ds:SignatureValue does not verify over ds:SignedInfo") from None


# -- signing -----------------------------------------------------------------------------------


def sign_enveloped(
    root: etree._Element,
    key: SigningKey,
    *,
    convention: Convention | str,
    serial: int,
    certificate: bytes | None = None,
) -> etree._Element:
    """Sign the document whose root is ``root`` in ``convention`` (a Convention or its name):
    appends ``ds:Signature`` as the root's last child, with KeyName = ``serial`` in hex and,
    when given, the certificate's DER as X509Certificate. Returns the Signature element."""
    chosen = convention if isinstance(convention, Convention) else _named(convention)
    _require_document_root(root)
    if next(root.iter(_SIGNATURE), None) is not None:
        raise _refuse(XMLDSIG_ALREADY_SIGNED, "the document already carries a ds:Signature")
    _require_no_inherited_xml_attributes(root)
    _require_key_kind(chosen, key)
    digest = chosen.digest(_canonical(root.getroottree(), chosen.digest_with_comments))
    signature = etree.SubElement(root, _SIGNATURE, nsmap={"ds": DS_NS})
    signed_info = _signed_info(signature, chosen, digest)
    value = _sign(key, _canonical(signed_info, with_comments=False))
    _text_child(signature, "SignatureValue", base64.b64encode(value).decode("ascii"))
    key_info = etree.SubElement(signature, _ds("KeyInfo"))
    _text_child(key_info, "KeyName", format(serial, "x").zfill(chosen.key_name_width))
    if certificate is not None:
        x509_data = etree.SubElement(key_info, _ds("X509Data"))
        _text_child(x509_data, "X509Certificate", base64.b64encode(certificate).decode("ascii"))
    return signature


def _named(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise _refuse(XMLDSIG_ALGORITHM_UNSUPPORTED, "the signing convention is not known "
                                                     "(eport-sm2-sm3, eport-sm2-sha1, rsa-sha1)"
                      ) from None


def _require_key_kind(convention: Convention, key: SigningKey) -> None:
    expected = SM2PrivateKey if convention.key_kind is KeyKind.SM2 else rsa.RSAPrivateKey
    if not isinstance(key, expected):
        raise _refuse(XMLDSIG_KEY_UNSUITABLE,
                      "the signing key is not of the kind the convention signs with")


def _signed_info(signature: etree._Element, convention: Convention,
                 digest: bytes) -> etree._Element:
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=C14N)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=convention.signature_method)
    reference = etree.SubElement(signed_info, _ds("Reference"), URI="")
    transforms = etree.SubElement(reference, _ds("Transforms"))
    etree.SubElement(transforms, _ds("Transform"), Algorithm=ENVELOPED_SIGNATURE)
    etree.SubElement(reference, _ds("DigestMethod"), Algorithm=convention.digest_method)
    _text_child(reference, "DigestValue", base64.b64encode(digest).decode("ascii"))
    return signed_info


def _text_child(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, _ds(name)).text = text


def _sign(key: SigningKey, signed: bytes) -> bytes:
    if isinstance(key, SM2PrivateKey):
        return signature_to_raw(key.sign(signed, user_id=DEFAULT_SM2_ID))
    return key.sign(signed, padding.PKCS1v15(), hashes.SHA1())
