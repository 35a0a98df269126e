from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import pytest

from gateway.cli.support import link_of
from gateway.errors import ConfigError, GatewayError, crash_site
from gateway.home.config import GatewayConfig
from gateway.ids import Uuid7Generator


def test_uuid7_ids_are_unique_time_ordered_and_version_7() -> None:
    ids = Uuid7Generator()
    made = [ids.new() for _ in range(20_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(uuid.UUID(i).version == 7 for i in made[:100])


def test_config_paths_are_relative_to_the_file_and_env_overrides_the_broker(tmp_path: Path
                                                                            ) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\nbootstrap_servers = "kafka:9092"\ncontracts_dir = "c"\n'
                    "[trail]\nseal_every = 10\n[http]\ntls = \"off\"\n", encoding="utf-8")
    config = GatewayConfig.load(path, env={})
    assert config.bootstrap_servers == "kafka:9092"
    assert config.contracts_dir == tmp_path / "c"
    assert config.keyring_file == tmp_path / "keyring.toml"
    assert config.trail.seal_every == 10
    overridden = GatewayConfig.load(path, env={"PORTGW_BOOTSTRAP_SERVERS": "other:9092"})
    assert overridden.bootstrap_servers == "other:9092"


def test_the_receipt_index_is_below_the_home_unless_kept_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\n[http]\ntls = "off"\n', encoding="utf-8")
    assert GatewayConfig.load(path, env={}).receipt_index_path == tmp_path / "receipt-index"
    in_memory = GatewayConfig.load(path, env={"PORTGW__GATEWAY__RECEIPT_INDEX_DIR": '""'})
    assert in_memory.receipt_index_path is None


@pytest.mark.parametrize("text", ['[gateway]\nbootstrap = "x"\n', "[trail]\nseal_evry = 1\n",
                                  "[gateway\n"])
def test_a_bad_config_says_what_is_wrong(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        GatewayConfig.load(path, env={})


def test_the_broker_comes_from_the_flag_the_config_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTGW_BOOTSTRAP_SERVERS", raising=False)
    no_file = argparse.Namespace(bootstrap_servers="", config=tmp_path / "absent.toml")
    with pytest.raises(GatewayError) as caught:
        link_of(no_file)
    assert caught.value.code == "CONFIG_NO_BROKER"
    monkeypatch.setenv("PORTGW_BOOTSTRAP_SERVERS", "kafka-1:9092")
    assert link_of(no_file).bootstrap_servers == "kafka-1:9092"
    flagged = argparse.Namespace(bootstrap_servers="kafka-2:9092", config=no_file.config)
    assert link_of(flagged).bootstrap_servers == "kafka-2:9092"


def test_a_crash_is_described_by_its_type_and_place_never_its_message() -> None:
    def parse_passport(number: str) -> None:
        raise ValueError(f"bad passport {number}")

    try:
        parse_passport("E12345678")
    except ValueError as exc:
        described = crash_site(exc)
    assert described.startswith("ValueError at test_gateway_basics.py:")
    assert described.endswith("in parse_passport")
    assert "E12345678" not in described
