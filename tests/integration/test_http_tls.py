"""The HTTP door over real TLS: client certificates made here (cryptography), bound to their
holders in keyring.toml, a real gateway on the local broker, aiohttp clients over TCP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crypto import sm3_hex
from gateway.cli.dlq import main as portgw
from gateway.home.config import GatewayConfig
from gateway.home.create import Home
from gateway.ingress.client import submit
from gateway.ingress.http_api import start_http
from gateway.kafka.local_broker import LocalBroker
from gateway.kafka.names import H_DIGEST
from gateway.kafka.wire import read_topics
from gateway.parts import GatewayParts
from gateway.publish.plan import H_ORIGINAL_SIZE, KEPT_PREFIX_BYTES
from gateway.service import Gateway
from tests.integration.service_support import ARRIVAL, PROVIDER, signed

OTHER = "cn.customs.sh"
CLIENTS = ("agency-a", "agency-b", "operator", "proxy", "unbound")


@dataclass(frozen=True, slots=True)
class Pki:
    directory: Path
    fingerprints: dict[str, str]  # client name -> SHA-256 of its certificate's DER

    def client(self, name: str | None) -> ssl.SSLContext:
        """A client's TLS context trusting the gateway's CA; `name` None: no certificate."""
        context = ssl.create_default_context(cafile=self.directory / "ca.pem")
        if name is not None:
            context.load_cert_chain(self.directory / f"{name}.pem",
                                    self.directory / f"{name}.key")
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _issue(ca_key: ec.EllipticCurvePrivateKey, subject: str, key: ec.EllipticCurvePrivateKey,
           usage: x509.ObjectIdentifier, *, ca: bool = False,
           ip: str | None = None) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(_name("px test CA")).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1))
               .not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """A CA, the gateway's server certificate for 127.0.0.1 and one certificate per client."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(ca_key, "px test CA", ca_key, ExtendedKeyUsageOID.SERVER_AUTH, ca=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    fingerprints = {}
    for name in ("server", *CLIENTS):
        key = ec.generate_private_key(ec.SECP256R1())
        usage = (ExtendedKeyUsageOID.SERVER_AUTH if name == "server"
                 else ExtendedKeyUsageOID.CLIENT_AUTH)
        cert = _issue(ca_key, name, key, usage, ip="127.0.0.1" if name == "server" else None)
        _write_key(directory / f"{name}.key", key)
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fingerprints[name] = hashlib.sha256(
            cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return Pki(directory, fingerprints)


def bindings(pki: Pki, *, revoked_a: bool = False) -> str:
    """[[client]] tables: A and B to their agencies, an operator, a proxy; "unbound" none."""
    revoked = "revoked_at = 2026-01-01T00:00:00Z\n" if revoked_a else ""
    fp = pki.fingerprints
    return (f'\n[[client]]\nsha256 = "{fp["agency-a"]}"\nagency = "{PROVIDER}"\n{revoked}'
            f'\n[[client]]\nsha256 = "{fp["agency-b"]}"\nagency = "{OTHER}"\n'
            f'\n[[client]]\nsha256 = "{fp["operator"]}"\nrole = "operator"\nname = "ops"\n'
            f'\n[[client]]\nsha256 = "{fp["proxy"]}"\nrole = "proxy"\nname = "tlcp-1"\n')


def tls_home(home: Home, pki: Pki, **http: Any) -> tuple[GatewayConfig, GatewayParts, str]:
    keyring = home.path / "keyring.toml"
    plain_keyring = keyring.read_text(encoding="utf-8")
    keyring.write_text(plain_keyring + bindings(pki), encoding="utf-8")
    env = {"PORTGW__HTTP__TLS": '"on"',
           "PORTGW__HTTP__CERT_FILE": f'"{pki.directory / "server.pem"}"',
           "PORTGW__HTTP__KEY_FILE": f'"{pki.directory / "server.key"}"',
           "PORTGW__HTTP__CLIENT_CA_FILE": f'"{pki.directory / "ca.pem"}"',
           **{f"PORTGW__HTTP__{name.upper()}": str(value) for name, value in http.items()}}
    config = GatewayConfig.load(home.config_file, env=env)
    return config, GatewayParts.load(config), plain_keyring


@asynccontextmanager
async def tls_gateway(config: GatewayConfig, parts: GatewayParts, bootstrap: str
                      ) -> AsyncIterator[str]:
    """A gateway serving the ingress topic, its TLS door on a free port; yields its URL."""
    async with Gateway(config, parts, bootstrap) as gateway, gateway.serving():
        door = await start_http(gateway.http_app(), "127.0.0.1:0")
        try:
            yield f"https://127.0.0.1:{door.port}"
        finally:
            await door.close()


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


async def ask(pki: Pki, client: str | None, method: str, url: str,
              **kwargs: Any) -> Answer:
    connector = aiohttp.TCPConnector(ssl=pki.client(client))
    async with aiohttp.ClientSession(connector=connector) as session, \
            session.request(method, url, timeout=aiohttp.ClientTimeout(total=60),
                            **kwargs) as response:
        text = await response.text()
        is_json = response.content_type == "application/json"
        return Answer(response.status, await response.json() if is_json else text)


def submission(document: bytes, signature: bytes, sender: str, key: str,
               **extra: str) -> dict[str, Any]:
    return {"data": document, "headers": {
        "Px-Sender": sender, "Px-Format": "fal1-xml", "Idempotency-Key": key,
        "Px-Signature": base64.b64encode(signature).decode(), **extra}}


# -- who may submit, who may read ---------------------------------------------------------------


def test_each_client_certificate_speaks_for_its_agency_alone(
    broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    config, parts, plain_keyring = tls_home(home, pki)
    asyncio.run(_bound_clients(broker.bootstrap_servers, home, pki, config, parts,
                               plain_keyring))


async def _bound_clients(bootstrap: str, home: Home, pki: Pki, config: GatewayConfig,
                         parts: GatewayParts, plain_keyring: str) -> None:
    doc = signed(home, ARRIVAL, "tls-1")
    mine = submission(doc.document, doc.signature, PROVIDER, "tls-1")
    async with tls_gateway(config, parts, bootstrap) as url:
        with pytest.raises(aiohttp.ClientConnectionError):  # no certificate: no handshake
            await ask(pki, None, "GET", f"{url}/healthz")
        as_other = await ask(pki, "agency-b", "POST", f"{url}/v1/submissions", **mine)
        unbound = await ask(pki, "unbound", "POST", f"{url}/v1/submissions", **mine)
        accepted = await ask(pki, "agency-a", "POST", f"{url}/v1/submissions", **mine)

        status = f"{url}/v1/submissions/{PROVIDER}~tls-1"
        reads = {(who, path): await ask(pki, who, "GET", status + path)
                 for who in ("agency-a", "agency-b", "operator") for path in ("", "/receipt")}
        unknown = await ask(pki, "agency-b", "GET", f"{url}/v1/submissions/{OTHER}~nothing")
        metrics = {who: await ask(pki, who, "GET", f"{url}/metrics")
                   for who in ("operator", "agency-a")}

        # A TLCP proxy passes its client's fingerprint; nobody else may.
        b_doc = signed(home, ARRIVAL, "tls-b", sender=OTHER)
        via_proxy = await ask(pki, "proxy", "POST", f"{url}/v1/submissions", **submission(
            b_doc.document, b_doc.signature, OTHER, "tls-b",
            **{"Px-Client-Cert-SHA256": pki.fingerprints["agency-b"]}))
        proxy_as_itself = await ask(pki, "proxy", "GET", status)
        forged = await ask(pki, "agency-a", "GET", status,
                           headers={"Px-Client-Cert-SHA256": pki.fingerprints["operator"]})

        # Revoke A's binding: refused from the reload on.
        (home.path / "keyring.toml").write_text(plain_keyring + bindings(pki, revoked_a=True),
                                                encoding="utf-8")
        assert parts.live_keyring.reload()
        after_revoke = await ask(pki, "agency-a", "GET", status)
        b_still = await ask(pki, "agency-b", "GET", f"{url}/v1/submissions/{OTHER}~tls-b")

    assert (as_other.status, as_other.body["code"]) == (403, "HTTP_SENDER_MISMATCH")
    assert (unbound.status, unbound.body["code"]) == (403, "HTTP_CLIENT_UNBOUND")
    assert accepted.status == 200, accepted.body
    assert accepted.body["status"] == "accepted"
    for path in ("", "/receipt"):
        assert reads[("agency-a", path)].status == 200
        assert reads[("operator", path)].status == 200
        other = reads[("agency-b", path)]
        assert (other.status, other.body["code"]) == (404, "SUBMISSION_UNKNOWN")
        assert other.body.keys() == unknown.body.keys()  # as if it did not exist
    assert reads[("agency-a", "/receipt")].body == reads[("operator", "/receipt")].body
    assert metrics["operator"].status == 200
    assert "portgw_documents_accepted_total" in metrics["operator"].body
    assert (metrics["agency-a"].status, metrics["agency-a"].body["code"]) == (
        403, "HTTP_OPERATOR_ONLY")
    assert via_proxy.status in (200, 422), via_proxy.body  # decided: past the door as B
    assert via_proxy.body["receipt"]["sender"] == OTHER
    assert (proxy_as_itself.status, proxy_as_itself.body["code"]) == (
        403, "HTTP_CLIENT_UNBOUND")
    assert (forged.status, forged.body["code"]) == (403, "HTTP_PROXY_HEADER_REFUSED")
    assert (after_revoke.status, after_revoke.body["code"]) == (403, "HTTP_CLIENT_UNBOUND")
    assert b_still.status in (200, 422)


# -- limits per address, before anyone is authenticated ----------------------------------------


def test_an_address_past_its_requests_or_connections_is_refused_first(
    broker: LocalBroker, home: Home, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    config, parts, _ = tls_home(home, pki, address_rate_per_s=0.001, address_burst=2,
                                max_connections_per_address=2)
    asyncio.run(_address_limits(broker.bootstrap_servers, pki, config, parts))


async def exchange(stream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                   request: bytes) -> int:
    """Sends one request on a kept-alive connection; the answer's status (its body read)."""
    reader, writer = stream
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines
                  if line.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _address_limits(bootstrap: str, pki: Pki, config: GatewayConfig,
                          parts: GatewayParts) -> None:
    probe = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
    # A large body announced and never sent, under a certificate bound to nobody: the
    # address limit answers before either is looked at.
    post = (b"POST /v1/submissions HTTP/1.1\r\nHost: gateway\r\nPx-Sender: cn.port.sh\r\n"
            b"Px-Format: fal1-xml\r\nPx-Signature: AAAA\r\nContent-Length: 100000\r\n\r\n")
    async with tls_gateway(config, parts, bootstrap) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [await asyncio.open_connection("127.0.0.1", port, ssl=pki.client(name))
                for name in ("agency-a", "unbound")]
        first = [await exchange(held[0], probe), await exchange(held[1], probe)]
        over = await exchange(held[1], post)
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       ssl=pki.client("agency-a"))
        writer.write(probe)
        third = await asyncio.wait_for(reader.read(), 60)  # closed without an answer
        for _, stream_writer in [*held, (reader, writer)]:
            stream_writer.close()
        for _, stream_writer in [*held, (reader, writer)]:
            with contextlib.suppress(OSError):
                await asyncio.wait_for(stream_writer.wait_closed(), 60)

    assert first == [200, 200]
    assert over == 429
    assert third == b""


# -- what is kept of a document never authenticated ---------------------------------------------


def test_a_body_never_authenticated_is_kept_as_its_digest_and_first_bytes(
    broker: LocalBroker, home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = make_pki(tmp_path / "pki")
    config, parts, _ = tls_home(home, pki)
    bootstrap = broker.bootstrap_servers
    cut, whole = asyncio.run(_cut_dead_letters(bootstrap, home, pki, config, parts))
    assert portgw(["dlq", "retry", cut, "--bootstrap-servers", bootstrap]) == 2
    assert "DLQ_ORIGINAL_CUT" in capsys.readouterr().err
    assert portgw(["dlq", "retry", whole, "--dry-run", "--bootstrap-servers", bootstrap]) == 0
    assert portgw(["dlq", "show", cut, "--bootstrap-servers", bootstrap]) == 0
    shown = capsys.readouterr().out
    assert "size: 10240 bytes (cut: only the first 4096 kept" in shown


async def _cut_dead_letters(bootstrap: str, home: Home, pki: Pki, config: GatewayConfig,
                            parts: GatewayParts) -> tuple[str, str]:
    """The locations of a cut dead letter and of one kept whole."""
    junk = bytes(range(256)) * 40  # 10 KiB
    authentic_but_bad = b"<not-a-fal1/>" * 800  # signed by its agency, refused later
    good_signature = home.agency_keys[PROVIDER].sign(authentic_but_bad)
    async with tls_gateway(config, parts, bootstrap) as url:
        bad_signature = await ask(pki, "agency-a", "POST", f"{url}/v1/submissions",
                                  **submission(junk, good_signature, PROVIDER, "junk-1"))
        refused_later = await ask(pki, "agency-a", "POST", f"{url}/v1/submissions",
                                  **submission(authentic_but_bad, good_signature, PROVIDER,
                                               "bad-1"))
        unknown = await submit(bootstrap, sender="cn.nobody.xx", format_id="fal1-xml",
                               document=junk, signature=b"0" * 70, schemas=parts.schemas,
                               submission_id="nobody-1", topics=parts.topics, timeout_s=60)
    letters = {}
    for message in await read_topics(bootstrap, [parts.topics.dlq]):
        _, value = parts.schemas.decode(message.value)
        letters[value["submission_id"]] = (value, message)

    assert bad_signature.status == 422
    assert bad_signature.body["receipt"]["error_code"] == "AUTH_SIGNATURE_INVALID"
    assert refused_later.status == 422
    assert unknown.receipt.error_code == "AUTH_UNKNOWN_SENDER"
    for submission_id in (f"{PROVIDER}~junk-1", "nobody-1"):
        value, message = letters[submission_id]
        assert value["original"] == junk[:KEPT_PREFIX_BYTES]
        assert message.header(H_ORIGINAL_SIZE) == str(len(junk)).encode()
        assert message.header(H_DIGEST) == sm3_hex(junk).encode()
    whole, message = letters[f"{PROVIDER}~bad-1"]
    assert whole["original"] == authentic_but_bad
    assert message.header(H_ORIGINAL_SIZE) is None
    _, cut = letters["nobody-1"]
    return f"{cut.partition}:{cut.offset}", f"{message.partition}:{message.offset}"
