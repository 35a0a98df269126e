"""A real SM2 certificate authority run with the `openssl` command line (OpenSSL 3) in a
directory: a self-signed CA, leaf certificates issued with `openssl ca` (chosen serial and
validity), revocation and CRLs. Every signature is SM2-with-SM3 with the GM/T 0009 user ID
`1234567812345678` given explicitly (`-sigopt distid:`), as OpenSSL 3.0 signs with an empty
one otherwise. The same CA made with `rsa_bits` is an RSA one (the legacy E-Port CA):
RSA keys, its signatures sha256WithRSA or, with digest `sha1`, sha1WithRSA."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command line not installed")
DISTID = "distid:1234567812345678"

_CA_CONFIG = """\
[ca]
default_ca = this_ca
[this_ca]
database = index.txt
serial = serial
crlnumber = crlnumber
new_certs_dir = issued
default_md = sm3
default_crl_days = 30
policy = any
unique_subject = no
[any]
countryName = optional
organizationName = optional
commonName = supplied
[req]
distinguished_name = dn
x509_extensions = v3_ca
utf8 = yes
string_mask = utf8only
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl(*args: str, cwd: Path) -> bytes:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def stamp(at: datetime) -> str:
    """A time as `openssl ca -startdate/-enddate` takes it."""
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def sm2_key(path: Path) -> Path:
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out",
            str(path), cwd=path.parent)
    return path


def rsa_key(path: Path, bits: int) -> Path:
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}", "-out",
            str(path), cwd=path.parent)
    return path


@dataclass(frozen=True)
class OpensslCA:
    """A CA in `directory`: `cert` (PEM) and `key` (PEM), issuing with `openssl ca`. An SM2
    CA when `rsa_bits` is None, else an RSA one signing with `digest`."""

    directory: Path
    subject: str
    rsa_bits: int | None = None
    digest: str = "sm3"

    @classmethod
    def create(cls, directory: Path, subject: str = "/C=CN/O=Test Port CA/CN=Test SM2 CA",
               *, rsa_bits: int | None = None, digest: str | None = None) -> OpensslCA:
        directory.mkdir(parents=True)
        (directory / "issued").mkdir()
        (directory / "index.txt").write_text("")
        (directory / "serial").write_text("01\n")
        (directory / "crlnumber").write_text("01\n")
        (directory / "ca.cnf").write_text(_CA_CONFIG, encoding="utf-8")
        (directory / "leaf.ext").write_text(_LEAF_EXTENSIONS)
        ca = cls(directory, subject, rsa_bits, digest or ("sm3" if rsa_bits is None
                                                          else "sha256"))
        ca.new_key(ca.key)
        openssl("req", "-config", "ca.cnf", "-new", "-x509", "-key", "ca.key",
                f"-{ca.digest}", *ca.sign_options(), "-utf8", "-subj", subject, "-days",
                "3650", "-set_serial", "1", "-out", "ca.pem", cwd=directory)
        return ca

    def new_key(self, path: Path, rsa_bits: int | None = None) -> Path:
        """A key of this CA's kind (RSA of `rsa_bits`, default the CA's, for an RSA CA)."""
        if self.rsa_bits is None:
            return sm2_key(path)
        return rsa_key(path, rsa_bits or self.rsa_bits)

    def sign_options(self, distid: bool = True) -> list[str]:
        return ["-sigopt", DISTID] if self.rsa_bits is None and distid else []

    @property
    def cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key"

    def issue(self, name: str, serial: int, *, start: datetime | None = None,
              end: datetime | None = None, subject: str | None = None,
              distid: bool = True, rsa_bits: int | None = None) -> Path:
        """Issue `<name>.pem` (its key `<name>.key`, RSA of `rsa_bits` from an RSA CA) with
        this serial, valid from `start` (default: a day ago) to `end` (default: in 30
        days)."""
        now = datetime.now(UTC)
        key = self.new_key(self.directory / f"{name}.key", rsa_bits)
        openssl("req", "-config", "ca.cnf", "-new", "-key", key.name, f"-{self.digest}",
                *self.sign_options(), "-utf8", "-subj", subject or f"/C=CN/O=Carrier/CN={name}",
                "-out", f"{name}.csr", cwd=self.directory)
        digits = f"{serial:X}"
        (self.directory / "serial").write_text("0" * (len(digits) % 2) + digits + "\n")
        verify_options = ["-vfyopt", DISTID] if self.rsa_bits is None else []
        openssl("ca", "-config", "ca.cnf", "-batch", "-notext", "-utf8", "-in", f"{name}.csr",
                "-cert", "ca.pem", "-keyfile", "ca.key", "-md", self.digest, *verify_options,
                *self.sign_options(distid),
                "-startdate", stamp(start or now - timedelta(days=1)),
                "-enddate", stamp(end or now + timedelta(days=30)),
                "-extfile", "leaf.ext", "-out", f"{name}.pem", cwd=self.directory)
        return self.directory / f"{name}.pem"

    def revoke(self, certificate: Path) -> None:
        openssl("ca", "-config", "ca.cnf", "-revoke", str(certificate), "-cert", "ca.pem",
                "-keyfile", "ca.key", cwd=self.directory)

    def crl(self, name: str = "ca.crl", *, der: bool = False,
            next_update: datetime | None = None) -> Path:
        """A CRL of what this CA revoked so far, signed now (PEM, or DER when `der`), its
        nextUpdate in 30 days unless `next_update` (then thisUpdate is a day before it)."""
        pem = self.directory / f"{name}.pem"
        dates = ([] if next_update is None else
                 ["-crl_lastupdate", stamp(next_update - timedelta(days=1)),
                  "-crl_nextupdate", stamp(next_update)])
        openssl("ca", "-config", "ca.cnf", "-gencrl", "-cert", "ca.pem", "-keyfile", "ca.key",
                "-md", self.digest, *self.sign_options(), *dates, "-out", str(pem),
                cwd=self.directory)
        if not der:
            pem.rename(self.directory / name)
            return self.directory / name
        openssl("crl", "-in", str(pem), "-outform", "DER", "-out", name, cwd=self.directory)
        return self.directory / name

    def der(self, certificate: Path) -> bytes:
        return openssl("x509", "-in", str(certificate), "-outform", "DER", cwd=self.directory)


# E-Port's published SM2 certificate serial and its KeyName (docs/eport-research.md §2.3).
EPORT_SERIAL = 0x3000000000CDE6F
EPORT_KEY_NAME = "03000000000cde6f"
REVOKED_SERIAL = 0x13
# Personal data as E-Port names carry it: never in an error text, a log line or a repr.
PERSON = "张三"
COMPANY = "某某国际货运代理有限公司"


@dataclass(frozen=True)
class Pki:
    """A CA (with a Chinese name, as E-Port's) and what it issued: `good` (the E-Port serial,
    a person's name, valid 2026–2036), `expired`, `future` (not yet valid), `revoked` (in
    `crl`, DER); `other`, another CA, issued `stranger` and signed `other_crl`; `impostor`
    has `ca`'s name and another key."""

    ca: OpensslCA
    other: OpensslCA
    impostor: OpensslCA
    good: Path
    expired: Path
    future: Path
    revoked: Path
    stranger: Path
    crl: Path
    other_crl: Path


def make_pki(root: Path, now: datetime) -> Pki:
    ca = OpensslCA.create(root / "ca", "/C=CN/O=中国电子口岸/CN=测试证书管理中心")
    other = OpensslCA.create(root / "other", "/C=CN/O=Other CA/CN=Other SM2 CA")
    impostor = OpensslCA.create(root / "impostor", ca.subject)
    good = ca.issue("good", EPORT_SERIAL, start=datetime(2026, 1, 1, tzinfo=UTC),
                    end=datetime(2036, 1, 1, tzinfo=UTC), subject=f"/C=CN/O={COMPANY}/CN={PERSON}")
    expired = ca.issue("expired", 0x11, start=now - timedelta(days=60),
                       end=now - timedelta(days=30))
    future = ca.issue("future", 0x12, start=now + timedelta(days=30),
                      end=now + timedelta(days=60))
    revoked = ca.issue("revoked", REVOKED_SERIAL)
    ca.revoke(revoked)
    stranger = other.issue("stranger", 0x14)
    return Pki(ca, other, impostor, good, expired, future, revoked, stranger,
               ca.crl(der=True), other.crl())
