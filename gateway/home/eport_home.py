"""A home's China E-Port parties, for `portgw demo`: a CA and the SM2 certificates it issues
(made with the `openssl` command line, as an operator makes test certificates), a carrier's
certificate entry in the keyring, and the `[dxp]` section naming the gateway's own
certificate and the recipients that take envelopes (docs/eport.md, "Egress in envelopes").

An operator writes the same files by hand, with certificates from the E-Port's CA.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError

# OpenSSL 3 signs SM2 with an empty ID unless told (DESIGN §6): always give GM/T 0009's.
DISTID = "distid:1234567812345678"
_LEAF_EXTENSIONS = ("basicConstraints = critical, CA:FALSE\n"
                    "keyUsage = critical, digitalSignature, nonRepudiation\n"
                    "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
OPENSSL_FAILED = "CONFIG_OPENSSL_FAILED"


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def _openssl(directory: Path, *args: str) -> None:
    command = shutil.which("openssl")
    if command is None:
        raise ConfigError("the openssl command line is not installed", code=OPENSSL_FAILED)
    done = subprocess.run([command, *args], cwd=directory, capture_output=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"openssl {args[0]} failed (exit {done.returncode})",
                          code=OPENSSL_FAILED)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate (PEM) and its SM2 key (PEM), files of the home."""

    certificate: Path
    key: Path


def make_ca(directory: Path, subject: str) -> Path:
    """A self-signed SM2 CA, `ca.pem` (its key `ca.key`) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(directory, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
             "-out", "ca.key")
    _openssl(directory, "req", "-new", "-x509", "-key", "ca.key", "-sm3", "-sigopt", DISTID,
             "-utf8", "-subj", subject, "-days", "3650", "-set_serial", "1",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash", "-out", "ca.pem")
    return directory / "ca.pem"


def issue(ca: Path, name: str, serial: int, subject: str) -> Issued:
    """`<name>.pem` (its key `<name>.key`), issued by the CA `ca` with this serial, valid for
    a year."""
    directory = ca.parent
    (directory / "leaf.ext").write_text(_LEAF_EXTENSIONS, encoding="utf-8")
    _openssl(directory, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
             "-out", f"{name}.key")
    _openssl(directory, "req", "-new", "-key", f"{name}.key", "-sm3", "-sigopt", DISTID,
             "-utf8", "-subj", subject, "-out", f"{name}.csr")
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", ca.name, "-CAkey",
             "ca.key", "-set_serial", hex(serial), "-days", "365", "-sm3", "-sigopt", DISTID,
             "-vfyopt", DISTID, "-extfile", "leaf.ext", "-out", f"{name}.pem")
    return Issued(directory / f"{name}.pem", directory / f"{name}.key")


@dataclass(frozen=True, slots=True)
class DxpPeer:
    """A recipient that takes envelopes: its DXP ReceiverId and signing convention."""

    agency: str
    receiver_id: str
    convention: str


def add_certificate_entries(home: Path, ca: Path, entries: Mapping[str, Path]) -> None:
    """The keyring trusts `ca` and lists each agency's certificate entry."""
    keyring = home / "keyring.toml"
    tables = "".join(f'\n[[key]]\nagency = "{agency}"\ncertificate = '
                     f'"{certificate.relative_to(home)}"\n'
                     for agency, certificate in entries.items())
    keyring.write_text(f'trust = ["{ca.relative_to(home)}"]\n'
                       + keyring.read_text(encoding="utf-8") + tables, encoding="utf-8")


def add_dxp_section(home: Path, sender_id: str, gateway: Issued, peers: tuple[DxpPeer, ...],
                    *, rsa: Issued | None = None) -> None:
    """gateway.toml's `[dxp]`: the gateway's SenderId, key and certificate (and RSA ones for
    rsa-sha1 peers), and each peer."""
    config = home / "gateway.toml"
    text = (f'\n[dxp]\nsender_id = "{sender_id}"\nkey_file = "{gateway.key.relative_to(home)}"\n'
            f'certificate_file = "{gateway.certificate.relative_to(home)}"\n')
    if rsa is not None:
        text += (f'rsa_key_file = "{rsa.key.relative_to(home)}"\n'
                 f'rsa_certificate_file = "{rsa.certificate.relative_to(home)}"\n')
    for peer in peers:
        text += (f'\n[dxp.recipients."{peer.agency}"]\nreceiver_id = "{peer.receiver_id}"\n'
                 f'convention = "{peer.convention}"\n')
    config.write_text(config.read_text(encoding="utf-8") + text, encoding="utf-8")


@dataclass(frozen=True, slots=True)
class EportParties:
    """What the demo's E-Port parties hold: the carrier's certificate and key (it signs its
    envelopes), and the gateway's certificate (which recipients verify its envelopes with)."""

    carrier: Issued
    gateway: Issued


def add_eport_parties(home: Path, *, carrier: str, carrier_serial: int, gateway_serial: int,
                      sender_id: str, peers: tuple[DxpPeer, ...]) -> EportParties:
    """A CA in `<home>/eport-pki` issuing the carrier's and the gateway's certificates; the
    carrier's certificate entry in the keyring; `[dxp]` with `peers`."""
    ca = make_ca(home / "eport-pki", "/C=CN/O=Demo E-Port CA/CN=Demo SM2 CA")
    parties = EportParties(
        carrier=issue(ca, "carrier", carrier_serial, "/C=CN/O=Demo Carrier/CN=carrier"),
        gateway=issue(ca, "gateway", gateway_serial, "/C=CN/O=Port Exchange/CN=gateway"))
    add_certificate_entries(home, ca, {carrier: parties.carrier.certificate})
    add_dxp_section(home, sender_id, parties.gateway, peers)
    return parties
