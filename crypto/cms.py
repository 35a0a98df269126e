"""CMS EnvelopedData (RFC 5652 §6) with SM2 key transport and SM4-CBC, as GM/T 0010-2012
(SM2 cryptographic message syntax) defines it: a payload sealed for one recipient in a
published container that other toolkits open (`openssl cms -decrypt`).

    ContentInfo ::= SEQUENCE { contentType envelopedData, content [0] EXPLICIT EnvelopedData }
    EnvelopedData ::= SEQUENCE { version, recipientInfos SET OF KeyTransRecipientInfo,
                                 encryptedContentInfo }
    KeyTransRecipientInfo ::= SEQUENCE { version, rid, keyEncryptionAlgorithm sm2encrypt,
                                         encryptedKey OCTET STRING (GM/T 0009 SM2Cipher DER) }
    EncryptedContentInfo ::= SEQUENCE { contentType data,
                                        contentEncryptionAlgorithm { sm4-cbc, OCTET STRING iv },
                                        encryptedContent [0] IMPLICIT OCTET STRING }

The recipient is named as RFC 5652 names it: by its certificate's issuer and serial
(`IssuerAndSerialNumber`, version 0), or, for a key without a certificate, by its subject
key identifier (`[0]`, version 2: SHA-1 of the public key's bit string, RFC 5280 §4.2.1.2
method 1, what `openssl req` puts in a certificate). The content types are the RFC 5652 ones
(`1.2.840.113549.1.7.3` / `.7.1`), which OpenSSL reads, or GM/T 0010's
(`1.2.156.10197.6.1.4.2.3` / `.2.1`); opening takes both, and the key-encryption OIDs that
toolkits write for SM2 (sm2encrypt, sm2, id-ecPublicKey).

CBC has no integrity and neither has EnvelopedData: authenticate what is opened some other
way (a delivery's px-seal covers its payload). DER only: BER's indefinite lengths
(`openssl cms -stream`) are refused.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from . import _der as der
from ._sm2codec import CiphertextOrder
from .errors import DecryptionFailed
from .sm2 import SM2PrivateKey, SM2PublicKey
from .sm4 import SM4_BLOCK_SIZE, SM4_KEY_SIZE, sm4_cbc_decrypt, sm4_cbc_encrypt
from .x509 import Certificate

PKCS7_DATA: Final = "1.2.840.113549.1.7.1"
PKCS7_ENVELOPED_DATA: Final = "1.2.840.113549.1.7.3"
GM_DATA: Final = "1.2.156.10197.6.1.4.2.1"
GM_ENVELOPED_DATA: Final = "1.2.156.10197.6.1.4.2.3"
SM2_ENCRYPTION: Final = "1.2.156.10197.1.301.3"
SM2_ALGORITHM: Final = "1.2.156.10197.1.301"
EC_PUBLIC_KEY: Final = "1.2.840.10045.2.1"
SM4_CBC: Final = "1.2.156.10197.1.104.2"
SM2_KEY_ENCRYPTIONS: Final = frozenset({SM2_ENCRYPTION, SM2_ALGORITHM, EC_PUBLIC_KEY})

_ISSUER_AND_SERIAL_VERSION: Final = 0
_KEY_IDENTIFIER_VERSION: Final = 2
_RULE: Final = ("a DER ContentInfo holding an EnvelopedData with SM2 key transport "
                "(KeyTransRecipientInfo) and SM4-CBC content (RFC 5652, GM/T 0010)")


class CmsContentTypes(StrEnum):
    """Which OIDs name the content types: RFC 5652's (OpenSSL reads these) or GM/T 0010's."""

    RFC5652 = "rfc5652"
    GMT0010 = "gmt0010"


_CONTENT_TYPES: Final = {
    CmsContentTypes.RFC5652: (PKCS7_ENVELOPED_DATA, PKCS7_DATA),
    CmsContentTypes.GMT0010: (GM_ENVELOPED_DATA, GM_DATA),
}
_ENVELOPED_TYPES: Final = {enveloped: data for enveloped, data in _CONTENT_TYPES.values()}


@dataclass(frozen=True, slots=True)
class _Recipient:
    """One KeyTransRecipientInfo as read: how it names its key, and the encrypted key."""

    issuer_and_serial: tuple[bytes, int] | None
    key_identifier: bytes | None
    encrypted_key: bytes


def subject_key_identifier(key: SM2PublicKey) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bit string (04 ‖ x ‖ y)."""
    return hashlib.sha1(key.point, usedforsecurity=False).digest()


def seal_cms(recipient: Certificate | SM2PublicKey, payload: bytes, *,
             content_types: CmsContentTypes = CmsContentTypes.RFC5652) -> bytes:
    """`payload` as a DER ContentInfo of EnvelopedData for `recipient`: named by issuer and
    serial when it is a certificate (with an SM2 key), else by subject key identifier."""
    if isinstance(recipient, Certificate):
        key = recipient.public_key
        if not isinstance(key, SM2PublicKey):
            raise TypeError("a CMS envelope is sealed to a certificate with an SM2 key")
        rid = der.sequence(recipient.issuer_name_der, der.integer(recipient.serial))
        version = _ISSUER_AND_SERIAL_VERSION
    else:
        key = recipient
        rid = der.tlv(der.IMPLICIT_0, subject_key_identifier(key))
        version = _KEY_IDENTIFIER_VERSION
    enveloped_type, data_type = _CONTENT_TYPES[content_types]
    content_key = secrets.token_bytes(SM4_KEY_SIZE)
    iv = secrets.token_bytes(SM4_BLOCK_SIZE)
    recipient_info = der.sequence(
        der.integer(version), rid, der.sequence(der.oid(SM2_ENCRYPTION)),
        der.octet_string(key.encrypt(content_key, order=CiphertextOrder.ASN1)),
    )
    encrypted_content = der.sequence(
        der.oid(data_type), der.sequence(der.oid(SM4_CBC), der.octet_string(iv)),
        der.tlv(der.IMPLICIT_0, sm4_cbc_encrypt(content_key, iv, payload)),
    )
    enveloped = der.sequence(der.integer(version), der.tlv(der.SET, recipient_info),
                             encrypted_content)
    return der.sequence(der.oid(enveloped_type), der.tlv(der.CONTEXT_0, enveloped))


def open_cms(private_key: SM2PrivateKey, data: bytes,
             certificate: Certificate | None = None) -> bytes:
    """The payload of an EnvelopedData for `private_key` (DER ContentInfo). The recipient
    infos tried are those naming this key: by its subject key identifier, or by issuer and
    serial (those of `certificate` when given, any when not, as `openssl cms -decrypt`
    without `-recip`). DecryptionFailed when none opens or the container breaks a rule."""
    try:
        recipients, algorithm, iv, ciphertext = _read_enveloped(bytes(data))
    except (ValueError, IndexError):
        raise DecryptionFailed(f"CMS envelope: must be {_RULE}") from None
    if algorithm != SM4_CBC or len(iv) != SM4_BLOCK_SIZE:
        raise DecryptionFailed("CMS envelope: contentEncryptionAlgorithm must be sm4-cbc "
                               f"({SM4_CBC}) with a {SM4_BLOCK_SIZE}-byte IV")
    for recipient in _naming(recipients, private_key.public_key(), certificate):
        try:
            content_key = private_key.decrypt(recipient.encrypted_key,
                                              order=CiphertextOrder.ASN1)
        except DecryptionFailed:
            continue
        if len(content_key) == SM4_KEY_SIZE:
            return sm4_cbc_decrypt(content_key, iv, ciphertext)
    raise DecryptionFailed("CMS envelope: no recipient info opens with this key")


def _naming(recipients: list[_Recipient], key: SM2PublicKey,
            certificate: Certificate | None) -> Iterator[_Recipient]:
    identifier = subject_key_identifier(key)
    wanted = None if certificate is None else (certificate.issuer_name_der, certificate.serial)
    for recipient in recipients:
        if recipient.key_identifier is not None:
            if recipient.key_identifier == identifier:
                yield recipient
        elif wanted is None or recipient.issuer_and_serial == wanted:
            yield recipient


def _read_enveloped(data: bytes) -> tuple[list[_Recipient], str, bytes, bytes]:
    """The key-transport recipients, the content algorithm, IV and ciphertext."""
    content_type, content = der.read_children(der.read_single(data, der.SEQUENCE))
    data_type = _ENVELOPED_TYPES.get(der.read_oid(der.expect(content_type, der.OID)))
    if data_type is None:
        raise ValueError("not an envelopedData content type")
    enveloped = der.read_single(der.expect(content, der.CONTEXT_0), der.SEQUENCE)
    version, infos, encrypted = der.read_children(enveloped)
    if der.read_integer(der.expect(version, der.INTEGER)) not in (0, 2):
        raise ValueError("EnvelopedData version must be 0 or 2")
    recipients = [_read_recipient(info) for info in der.read_children(der.expect(infos, der.SET))]
    if not recipients:
        raise ValueError("no recipient info")
    inner_type, algorithm, body = der.read_children(der.expect(encrypted, der.SEQUENCE))
    if der.read_oid(der.expect(inner_type, der.OID)) != data_type:
        raise ValueError("the encrypted content type must be data")
    algorithm_oid, iv = der.read_children(der.expect(algorithm, der.SEQUENCE))
    return (recipients, der.read_oid(der.expect(algorithm_oid, der.OID)),
            der.expect(iv, der.OCTET_STRING), der.expect(body, der.IMPLICIT_0))


def _read_recipient(info: der.Element) -> _Recipient:
    version, rid, algorithm, encrypted_key = der.read_children(der.expect(info, der.SEQUENCE))
    number = der.read_integer(der.expect(version, der.INTEGER))
    identifier = der.read_children(der.expect(algorithm, der.SEQUENCE))
    if der.read_oid(der.expect(identifier[0], der.OID)) not in SM2_KEY_ENCRYPTIONS:
        raise ValueError("keyEncryptionAlgorithm must be SM2")
    key = der.expect(encrypted_key, der.OCTET_STRING)
    if number == _ISSUER_AND_SERIAL_VERSION:
        issuer, serial = der.read_children(der.expect(rid, der.SEQUENCE))
        name = der.tlv(issuer.tag, der.expect(issuer, der.SEQUENCE))
        return _Recipient((name, der.read_integer(der.expect(serial, der.INTEGER))), None, key)
    if number == _KEY_IDENTIFIER_VERSION:
        return _Recipient(None, der.expect(rid, der.IMPLICIT_0), key)
    raise ValueError("KeyTransRecipientInfo version must be 0 or 2")
