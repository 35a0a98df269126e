"""The [kafka] section: what it accepts and refuses, and that its TLS and SASL settings reach
every kind of aiokafka client exactly (SASL cannot be tried end to end: the local broker has
none; TLS is tried through a proxy in tests/integration/test_kafka_tls.py)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest

from gateway.cli.config import main as config_main
from gateway.errors import ConfigError
from gateway.home.config import GatewayConfig, KafkaSettings
from gateway.home.create import create_home
from gateway.kafka.names import Topics
from gateway.kafka.wire import (
    KafkaLink,
    kafka_link,
    new_admin,
    new_producer,
    new_reader,
    secured_link,
)

SCRAM = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
         "sasl_username": "px-gateway", "sasl_password_env": "PX_KAFKA_PASSWORD"}
PASSWORD = "s3cret-Passw0rd"


LOCAL_HTTP = {"tls": "off"}  # the door's own TLS is not what these tests are about


def loaded(kafka: dict[str, Any], home: Path = Path("/etc/portgw")) -> KafkaSettings:
    return GatewayConfig.from_mapping({"kafka": kafka, "http": LOCAL_HTTP}, home=home).kafka


def test_sasl_ssl_with_scram_and_mutual_tls_loads_with_its_files_under_the_home() -> None:
    settings = loaded({**SCRAM, "ssl_ca_file": "tls/ca.pem", "ssl_cert_file": "tls/gw.pem",
                       "ssl_key_file": "/secure/gw.key", "ssl_check_hostname": False})
    assert settings.ssl_ca_file == "/etc/portgw/tls/ca.pem"
    assert settings.ssl_cert_file == "/etc/portgw/tls/gw.pem"
    assert settings.ssl_key_file == "/secure/gw.key"
    assert (settings.uses_tls, settings.uses_sasl, settings.ssl_check_hostname) == (
        True, True, False)


def test_by_default_the_broker_is_reached_in_plain_kafka() -> None:
    settings = loaded({})
    assert settings.security_protocol == "PLAINTEXT"
    assert secured_link("kafka:9092", settings) == KafkaLink("kafka:9092")


@pytest.mark.parametrize(("kafka", "rule"), [
    ({"security_protocol": "TLS"}, "security_protocol must be one of"),
    ({"security_protocol": "PLAINTEXT", "ssl_ca_file": "ca.pem"}, "need security_protocol SSL"),
    ({"security_protocol": "SSL", "ssl_cert_file": "gw.pem"}, "go together"),
    ({"security_protocol": "SSL", "sasl_username": "gw"}, "need security_protocol SASL"),
    ({**SCRAM, "sasl_mechanism": "GSSAPI"}, "sasl_mechanism must be one of"),
    ({**SCRAM, "sasl_username": ""}, "sasl_username is required"),
    ({**SCRAM, "sasl_password_file": "pw"}, "exactly one of"),
    ({**SCRAM, "sasl_password_env": ""}, "exactly one of"),
    ({**SCRAM, "sasl_password": PASSWORD}, "is not read from the configuration"),
    ({"security_protocol": "SSL", "ssl_check_hostname": "no"}, "true or false"),
])
def test_unsound_kafka_settings_are_refused_by_rule_without_their_values(
    kafka: dict[str, Any], rule: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        loaded(kafka)
    assert caught.value.code == "CONFIG_KAFKA_INVALID"
    assert caught.value.message.startswith("[kafka] ") and rule in caught.value.message
    assert PASSWORD not in caught.value.message


def test_the_topics_are_the_production_names_unless_a_prefix_is_configured() -> None:
    plain, staging = Topics.of(loaded({})), Topics.of(loaded({"topic_prefix": "staging."}))
    assert [plain.ingress, plain.trail, plain.checkpoint, plain.dlq, plain.receipt,
            plain.canonical("fal1"), plain.delivery("cn.customs.sh"), plain.status("cn.port.sh"),
            plain.consumer_group] == [
        "px.ingress.v1", "px.trail.v1", "px.checkpoint.v1", "px.dlq.v1", "px.receipt.v1",
        "px.canonical.fal1.v1", "px.deliver.cn.customs.sh.v1", "px.status.cn.port.sh.v1",
        "px-gateway"]
    assert [staging.ingress, staging.delivery("cn.customs.sh"), staging.consumer_group] == [
        "staging.px.ingress.v1", "staging.px.deliver.cn.customs.sh.v1", "staging.px-gateway"]


@pytest.mark.parametrize("prefix", ["staging/", "t 1.", "测试.", "x" * 101, 7])
def test_a_topic_prefix_kafka_would_not_take_is_refused_with_its_code(prefix: object) -> None:
    with pytest.raises(ConfigError) as caught:
        loaded({"topic_prefix": prefix})
    assert caught.value.code == "CONFIG_TOPIC_PREFIX_INVALID"
    assert caught.value.message.startswith("[kafka] topic_prefix must be")
    with pytest.raises(ConfigError):
        Topics(prefix)  # type: ignore[arg-type]  # whatever a TOML file may give


def test_kafka_settings_come_from_the_environment_too(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[http]\ntls = "off"\n', encoding="utf-8")
    config = GatewayConfig.load(path, env={"PORTGW__KAFKA__SECURITY_PROTOCOL": "SSL",
                                           "PORTGW__KAFKA__SSL_CHECK_HOSTNAME": "false"})
    assert (config.kafka.security_protocol, config.kafka.ssl_check_hostname) == ("SSL", False)
    context = secured_link("kafka:9093", config.kafka).ssl_context
    assert context is not None and not context.check_hostname


def test_the_password_comes_from_its_variable_or_its_file_and_is_never_shown(
    tmp_path: Path
) -> None:
    from_env = secured_link("kafka:9093", loaded(SCRAM), env={"PX_KAFKA_PASSWORD": PASSWORD})
    (tmp_path / "kafka.password").write_text(PASSWORD + "\n", encoding="utf-8")
    from_file = secured_link("kafka:9093", loaded(
        {**SCRAM, "sasl_password_env": "", "sasl_password_file": "kafka.password"},
        home=tmp_path), env={})
    for link in (from_env, from_file):
        assert link.sasl_password == PASSWORD
        assert PASSWORD not in repr(link) and PASSWORD not in str(link)


@pytest.mark.parametrize("source", [
    {"sasl_password_env": "PX_KAFKA_PASSWORD"},
    {"sasl_password_env": "", "sasl_password_file": "absent.password"},
    {"sasl_password_env": "", "sasl_password_file": "empty.password"},
])
def test_a_password_that_cannot_be_had_is_named_with_its_source(
    tmp_path: Path, source: dict[str, str]
) -> None:
    (tmp_path / "empty.password").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        secured_link("kafka:9093", loaded({**SCRAM, **source}, home=tmp_path), env={})
    assert caught.value.code == "CONFIG_KAFKA_PASSWORD_MISSING"


@pytest.mark.parametrize("garbage", [None, b"not a certificate\n"])
def test_a_ca_file_that_cannot_be_loaded_is_named(tmp_path: Path, garbage: bytes | None) -> None:
    if garbage is not None:
        (tmp_path / "ca.pem").write_bytes(garbage)
    settings = loaded({"security_protocol": "SSL", "ssl_ca_file": "ca.pem"}, home=tmp_path)
    with pytest.raises(ConfigError) as caught:
        secured_link("kafka:9093", settings)
    assert caught.value.code == "CONFIG_KAFKA_TLS_FILE_INVALID"
    assert caught.value.message.startswith("[kafka] ssl_ca_file: cannot be loaded")


def _clients(link: KafkaLink) -> dict[str, Any]:
    """aiokafka's own client object inside each kind of client the gateway makes."""
    async def made() -> dict[str, Any]:
        producer, reader, admin = new_producer(link), new_reader(link), new_admin(link)
        return {"producer": producer.client, "reader": reader._client, "admin": admin._client}
    return asyncio.run(made())


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_tls_and_sasl_settings_reach_every_kind_of_client_exactly(mechanism: str) -> None:
    link = secured_link("kafka-1:9093,kafka-2:9093",
                        loaded({**SCRAM, "sasl_mechanism": mechanism}),
                        env={"PX_KAFKA_PASSWORD": PASSWORD})
    assert isinstance(link.ssl_context, ssl.SSLContext)
    assert link.ssl_context.verify_mode == ssl.CERT_REQUIRED and link.ssl_context.check_hostname
    for kind, client in _clients(link).items():
        seen = (client._bootstrap_servers, client._security_protocol, client._ssl_context,
                client._sasl_mechanism, client._sasl_plain_username,
                client._sasl_plain_password)
        assert seen == ("kafka-1:9093,kafka-2:9093", "SASL_SSL", link.ssl_context, mechanism,
                        "px-gateway", PASSWORD), kind


def test_a_plain_string_is_a_broker_reached_without_tls_or_sasl() -> None:
    assert kafka_link("127.0.0.1:9092") == KafkaLink("127.0.0.1:9092")
    for kind, client in _clients(kafka_link("127.0.0.1:9092")).items():
        assert (client._security_protocol, client._ssl_context) == ("PLAINTEXT", None), kind


def test_config_check_names_what_the_kafka_settings_lack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTGW_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("PX_KAFKA_PASSWORD", raising=False)
    home = create_home(tmp_path / "home")
    with home.config_file.open("a", encoding="utf-8") as config:
        config.write('\n[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\n'
                     'sasl_username = "px-gateway"\nsasl_password_env = "PX_KAFKA_PASSWORD"\n')

    assert config_main(["config", "check", "--config", str(home.config_file)]) == 1
    [needs_broker] = capsys.readouterr().out.splitlines()
    assert needs_broker.startswith("CONFIG_KAFKA_NEEDS_BROKER: ")

    assert config_main(["config", "check", "--config", str(home.config_file),
                        "--bootstrap-servers", "kafka:9093"]) == 1
    [no_password] = capsys.readouterr().out.splitlines()
    assert no_password.startswith("CONFIG_KAFKA_PASSWORD_MISSING: [kafka] the environment "
                                  "variable PX_KAFKA_PASSWORD")
