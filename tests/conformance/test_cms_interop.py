"""CMS EnvelopedData (crypto/cms.py) against the OpenSSL 3 command line, both ways.

`openssl cms -decrypt` opens what we seal, named by issuer and serial or by subject key
identifier, with `-recip` or without. The other way, OpenSSL 3.0 cannot seal to an SM2
recipient: `openssl cms -encrypt` leaves the KeyTransRecipientInfo's keyEncryptionAlgorithm
empty and fails writing it ("asn1_template_ex_i2d:illegal zero content"; `openssl smime
-encrypt` says "encryption not supported for this key type"). So the envelope we open is
made by OpenSSL piece by piece: the SM2-encrypted content key by `openssl pkeyutl`, the
content by `openssl enc -sm4-cbc`, the DER by `openssl asn1parse -genconf` from the
RFC 5652 / GM/T 0010 ASN.1 written out below."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from crypto import Certificate, SM2PrivateKey, open_cms, seal_cms
from crypto.cms import SM2_ENCRYPTION, SM4_CBC
from tests.unit.sm2_ca import OPENSSL, OpensslCA, needs_openssl, openssl

pytestmark = needs_openssl
PAYLOAD = "<Manifest voyage='V001'>船舶\x00</Manifest>".encode() + bytes(range(200))
SUBJECT_CN = "cms-recipient"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> OpensslCA:
    return OpensslCA.create(tmp_path_factory.mktemp("cms") / "ca", "/CN=CMS Test CA")


@pytest.fixture(scope="module")
def recipient(ca: OpensslCA) -> Path:
    return ca.issue(SUBJECT_CN, 0x5EA1ED, subject=f"/CN={SUBJECT_CN}")


def private_key(ca: OpensslCA) -> SM2PrivateKey:
    return SM2PrivateKey.from_pem((ca.directory / f"{SUBJECT_CN}.key").read_bytes())


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, check=False)


@pytest.mark.parametrize("by_certificate", [True, False], ids=["issuer-serial", "key-id"])
@pytest.mark.parametrize("with_recip", [True, False], ids=["recip", "inkey-only"])
def test_openssl_decrypts_ours(ca: OpensslCA, recipient: Path, by_certificate: bool,
                               with_recip: bool) -> None:
    certificate = Certificate.from_pem(recipient.read_bytes())
    sealed = seal_cms(certificate if by_certificate else private_key(ca).public_key(), PAYLOAD)
    (ca.directory / "ours.der").write_bytes(sealed)
    recip = ["-recip", recipient.name] if with_recip else []
    opened = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", "ours.der",
                     "-inkey", f"{SUBJECT_CN}.key", *recip, cwd=ca.directory)
    assert opened == PAYLOAD


def test_openssl_reads_our_structure(ca: OpensslCA, recipient: Path) -> None:
    (ca.directory / "print.der").write_bytes(
        seal_cms(Certificate.from_pem(recipient.read_bytes()), PAYLOAD))
    printed = openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", "print.der",
                      cwd=ca.directory).decode()
    assert "contentType: pkcs7-envelopedData (1.2.840.113549.1.7.3)" in printed
    assert ("d.issuerAndSerialNumber: \n          issuer: CN=CMS Test CA\n"
            f"          serialNumber: {0x5EA1ED}\n") in printed
    assert f"({SM2_ENCRYPTION})" in printed.split("keyEncryptionAlgorithm")[1][:80]
    assert f"algorithm: sm4-cbc ({SM4_CBC})" in printed


def test_openssl_cannot_seal_to_sm2_here(ca: OpensslCA, recipient: Path) -> None:
    """Why the next test builds the envelope from OpenSSL's parts: if this OpenSSL learns to
    seal to SM2 recipients, we must open what it makes."""
    (ca.directory / "plain.bin").write_bytes(PAYLOAD)
    done = run("cms", "-encrypt", "-sm4-cbc", "-binary", "-outform", "DER", "-in", "plain.bin",
               "-out", "theirs.der", recipient.name, cwd=ca.directory)
    if done.returncode == 0:
        theirs = (ca.directory / "theirs.der").read_bytes()
        assert open_cms(private_key(ca), theirs) == PAYLOAD
    else:
        assert b"illegal zero content" in done.stderr


def test_we_open_what_openssl_makes(ca: OpensslCA, recipient: Path) -> None:
    work = ca.directory
    content_key, iv = secrets.token_hex(16), secrets.token_hex(16)
    (work / "content.key").write_bytes(bytes.fromhex(content_key))
    (work / "plain.bin").write_bytes(PAYLOAD)
    openssl("x509", "-in", recipient.name, "-pubkey", "-noout", "-out", "recipient.pub",
            cwd=work)
    openssl("pkeyutl", "-encrypt", "-pubin", "-inkey", "recipient.pub", "-in", "content.key",
            "-out", "key.enc", cwd=work)
    openssl("enc", "-sm4-cbc", "-K", content_key, "-iv", iv, "-in", "plain.bin",
            "-out", "content.enc", cwd=work)
    serial = openssl("x509", "-in", recipient.name, "-noout", "-serial", cwd=work)
    (work / "envelope.cnf").write_text(GENCONF.format(
        serial=serial.decode().strip().split("=")[1],
        encrypted_key=(work / "key.enc").read_bytes().hex(),
        iv=iv, content=(work / "content.enc").read_bytes().hex()))
    openssl("asn1parse", "-genconf", "envelope.cnf", "-out", "theirs.der", "-noout", cwd=work)
    theirs = (work / "theirs.der").read_bytes()
    # OpenSSL agrees that what it assembled is the envelope it decrypts...
    assert openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", "theirs.der",
                   "-inkey", f"{SUBJECT_CN}.key", "-recip", recipient.name, cwd=work) == PAYLOAD
    # ...and so do we, with and without the certificate.
    key = private_key(ca)
    assert open_cms(key, theirs) == PAYLOAD
    assert open_cms(key, theirs, Certificate.from_pem(recipient.read_bytes())) == PAYLOAD


# RFC 5652 ContentInfo / EnvelopedData / KeyTransRecipientInfo (GM/T 0010-2012 §7), in the
# syntax of ASN1_generate_nconf(3); the issuer is the test CA's name, "/CN=CMS Test CA".
GENCONF = """\
asn1 = SEQUENCE:content_info
[content_info]
type = OID:1.2.840.113549.1.7.3
content = EXPLICIT:0,SEQUENCE:enveloped_data
[enveloped_data]
version = INTEGER:0
recipients = SET:recipients
encrypted = SEQUENCE:encrypted_content_info
[recipients]
recipient = SEQUENCE:key_trans
[key_trans]
version = INTEGER:0
rid = SEQUENCE:issuer_and_serial
algorithm = SEQUENCE:sm2_encryption
encrypted_key = FORMAT:HEX,OCTETSTRING:{encrypted_key}
[issuer_and_serial]
issuer = SEQUENCE:issuer
serial = INTEGER:0x{serial}
[issuer]
rdn = SET:common_name_rdn
[common_name_rdn]
attribute = SEQUENCE:common_name
[common_name]
type = OID:commonName
value = UTF8:CMS Test CA
[sm2_encryption]
algorithm = OID:1.2.156.10197.1.301.3
[encrypted_content_info]
type = OID:1.2.840.113549.1.7.1
algorithm = SEQUENCE:sm4_cbc
content = IMPLICIT:0,FORMAT:HEX,OCTETSTRING:{content}
[sm4_cbc]
algorithm = OID:1.2.156.10197.1.104.2
iv = FORMAT:HEX,OCTETSTRING:{iv}
"""
