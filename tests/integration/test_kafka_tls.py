"""Every Kafka client of the gateway and its tools through TLS: the local broker speaks plain
Kafka only, so a TLS-terminating proxy (stunnel) stands in front of it, requiring client
certificates, and the broker names the proxy as its address in metadata, so that clients are
sent back through it, never around it. (SASL cannot be tried here: the local broker has none;
tests/unit/test_kafka_link.py shows the SASL settings reach aiokafka's clients.)"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli import config as config_cli
from gateway.cli import dlq as dlq_cli
from gateway.deliveries.dedup import DedupReader
from gateway.deliveries.proof import DeliveryVerifier
from gateway.errors import BrokerUnavailable
from gateway.home.config import GatewayConfig
from gateway.home.create import Home, create_home
from gateway.ingress.client import submit
from gateway.kafka.local_broker import LocalBroker, free_loopback_port
from gateway.kafka.names import StoredMessage
from gateway.kafka.wire import BROKER_TLS_FAILED, KafkaLink, secured_link
from gateway.parts import GatewayParts
from gateway.receipts.receipt import SignedReceipt
from gateway.service import Gateway
from tests.integration.support import FAL1_SAMPLES
from tests.integration.tls_proxy import (
    TlsFiles,
    TlsProxy,
    connected_ports,
    make_tls_files,
    stunnel_or_skip,
)

ARRIVAL = (FAL1_SAMPLES / "valid_arrival.xml").read_bytes()
SENDER, RECIPIENT = "cn.port.sh", "cn.customs.sh"


@dataclass(frozen=True, slots=True)
class BehindTls:
    broker: LocalBroker
    proxy_port: int
    files: TlsFiles

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"


@pytest.fixture
def behind_tls(tmp_path: Path) -> Iterator[BehindTls]:
    stunnel = stunnel_or_skip()
    files = make_tls_files(tmp_path / "tls")
    proxy_port = free_loopback_port()
    with LocalBroker(advertised=f"127.0.0.1:{proxy_port}", log_path=tmp_path / "broker.log"
                     ) as broker, \
            TlsProxy(stunnel, files, port=proxy_port, target=broker.port,
                     directory=tmp_path / "tls"):
        yield BehindTls(broker, proxy_port, files)


def tls_home(path: Path, behind: BehindTls, *, ca: Path) -> Home:
    """A gateway home whose configuration reaches the broker through the proxy only."""
    home = create_home(path, bootstrap_servers=behind.address, seal_every=4,
                       seal_interval_ms=100)
    files = behind.files
    with home.config_file.open("a", encoding="utf-8") as config:
        config.write(f'\n[kafka]\nsecurity_protocol = "SSL"\nssl_ca_file = "{ca}"\n'
                     f'ssl_cert_file = "{files.client_cert}"\n'
                     f'ssl_key_file = "{files.client_key}"\n')
    return home


def configured(home: Home) -> tuple[GatewayConfig, GatewayParts, KafkaLink]:
    config = GatewayConfig.load(home.config_file, env={})
    return config, GatewayParts.load(config), secured_link(config.bootstrap_servers,
                                                           config.kafka)


def test_a_document_goes_in_and_out_through_tls_and_no_client_goes_around_the_proxy(
    behind_tls: BehindTls, tmp_path: Path
) -> None:
    home = tls_home(tmp_path / "home", behind_tls, ca=behind_tls.files.ca)
    config, parts, link = configured(home)
    assert link.security_protocol == "SSL" and link.ssl_context is not None

    signed, [delivery], ports = asyncio.run(
        _submit_and_receive(home, config, parts, link, tmp_path / "seen.sqlite"))

    assert signed.receipt.accepted, signed.receipt
    signed.check(parts.keyring)
    _, decoded = parts.schemas.decode(delivery.value)
    assert decoded["event_id"] == signed.receipt.event_id
    assert decoded["recipient"] == RECIPIENT
    # The gateway (producers, its consumer group, receipt and warning books), the agency's
    # client and the recipient's reader, all in this process, were connected to the proxy
    # and none of them to the broker's own port.
    assert behind_tls.proxy_port in ports
    assert behind_tls.broker.port not in ports

    # The operator's tools take the [kafka] settings from the same configuration file.
    assert dlq_cli.main(["dlq", "list", "--config", str(home.config_file)]) == 0


async def _submit_and_receive(home: Home, config: GatewayConfig, parts: GatewayParts,
                              link: KafkaLink, store: Path
                              ) -> tuple[SignedReceipt, list[StoredMessage], set[int]]:
    async with Gateway(config, parts, link) as gateway, gateway.serving() as serving:
        signed = await serving.alongside(submit(
            link, sender=SENDER, format_id="fal1-xml", document=ARRIVAL,
            signature=home.agency_keys[SENDER].sign(ARRIVAL), schemas=parts.schemas,
            topics=parts.topics, timeout_s=60))
        async with DedupReader(link, [parts.topics.delivery(RECIPIENT)], store,
                               verifier=DeliveryVerifier(parts.keyring, RECIPIENT)) as reader:
            deliveries = await _first_messages(reader)
            ports = connected_ports(os.getpid())
    return signed, deliveries, ports


async def _first_messages(reader: DedupReader, *, timeout_s: float = 60.0
                          ) -> list[StoredMessage]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if batch := await reader.poll(timeout_ms=500):
            return batch
    raise AssertionError(f"no delivery on {reader.topics} within {timeout_s:g} s")


def test_a_client_whose_ca_does_not_trust_the_proxy_is_refused_with_a_code(
    behind_tls: BehindTls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tls_home(tmp_path / "home", behind_tls, ca=behind_tls.files.other_ca)
    _, parts, link = configured(home)

    async def read_deliveries() -> None:
        async with DedupReader(link, [parts.topics.delivery(RECIPIENT)], tmp_path / "seen.sqlite",
                               verifier=DeliveryVerifier(parts.keyring, RECIPIENT)):
            pass

    with pytest.raises(BrokerUnavailable) as caught:
        asyncio.run(asyncio.wait_for(read_deliveries(), 120))  # a guard: it must not hang
    assert caught.value.code == BROKER_TLS_FAILED
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message

    checked = config_cli.main(["config", "check", "--config", str(home.config_file),
                               "--connect", "--timeout", "60"])
    out = capsys.readouterr().out
    assert checked == config_cli.EXIT_PROBLEMS
    assert "CONFIG_BROKER_TLS_FAILED" in out and "CERTIFICATE_VERIFY_FAILED" in out
