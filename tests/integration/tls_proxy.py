"""A TLS-terminating proxy (stunnel, Debian package stunnel4) in front of the local broker,
which speaks plain Kafka only, and the certificates it and its clients use, made afresh for
each test: a CA, the proxy's certificate for 127.0.0.1, a client certificate (the proxy
requires one: mutual TLS), and a second CA that trusts none of them."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.children import end_with_parent
from gateway.kafka.local_broker import accepts_connections

Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def stunnel_or_skip() -> str:
    """The stunnel binary; without it the test is skipped, except in CI (CI=true), where it
    fails: CI must never skip the TLS tests silently."""
    found = shutil.which("stunnel")
    if found:
        return found
    why = ("stunnel is not installed (Debian: apt-get install stunnel4); the Kafka TLS tests "
           "need it as the TLS-terminating proxy in front of the local broker")
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def make_tls_files(directory: Path) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _authority("px test CA")
    server = _issued(ca, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH,
                     [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    client = _issued(ca, "px.gateway", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    files = TlsFiles(*(directory / name for name in (
        "ca.pem", "server.pem", "server.key", "client.pem", "client.key", "other-ca.pem")))
    _write_cert(files.ca, ca[0])
    _write_cert(files.server_cert, server[0])
    _write_key(files.server_key, server[1])
    _write_cert(files.client_cert, client[0])
    _write_key(files.client_key, client[1])
    _write_cert(files.other_ca, _authority("px untrusted CA")[0])
    return files


def _authority(name: str) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False)
    cert = (_builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _issued(issuer: Issuer, name: str, purpose: x509.ObjectIdentifier,
            names: list[x509.GeneralName]) -> Issuer:
    ca_cert, ca_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (_builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
                        ca_cert.subject, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
             ) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


class TlsProxy:
    """stunnel accepting TLS on 127.0.0.1:`port`, requiring a client certificate issued by
    the CA, and passing the plain bytes on to 127.0.0.1:`target`."""

    def __init__(self, stunnel: str, files: TlsFiles, *, port: int, target: int,
                 directory: Path, start_timeout_s: float = 20.0) -> None:
        self.port = port
        self._command = [stunnel, str(self._write_config(files, port, target, directory))]
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _write_config(files: TlsFiles, port: int, target: int, directory: Path) -> Path:
        config = directory / "stunnel.conf"
        config.write_text(
            f"foreground = yes\npid =\noutput = {directory / 'stunnel.log'}\n\n[kafka]\n"
            f"accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{target}\n"
            f"cert = {files.server_cert}\nkey = {files.server_key}\nCAfile = {files.ca}\n"
            "verifyChain = yes\nrequireCert = yes\n",
            encoding="utf-8")
        return config

    def __enter__(self) -> TlsProxy:
        self._process = subprocess.Popen(
            self._command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, preexec_fn=lambda: end_with_parent(signal.SIGTERM))
        deadline = time.monotonic() + self._start_timeout_s
        while not accepts_connections("127.0.0.1", self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(f"stunnel did not start: {' '.join(self._command)}")
            time.sleep(0.05)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(10)


def connected_ports(pid: int) -> set[int]:
    """The remote ports of the process's established TCP connections (from /proc)."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:["):-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            columns = line.split()
            if columns[3] == "01" and columns[9] in sockets:  # 01: ESTABLISHED
                ports.add(int(columns[2].rsplit(":", 1)[1], 16))
    return ports
