"""Reloading contracts while the gateway runs: all or nothing, a bad file keeps the old set."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.home.config import GatewayConfig
from gateway.home.create import Home, create_home
from gateway.parts import GatewayParts

AT = datetime(2026, 6, 1, tzinfo=UTC)
FAL1 = Path(__file__).parents[1] / "data" / "fal1" / "valid_arrival.xml"

TO_BORDER = """\
id = "fal1-to-border"
version = 1
provider = "cn.port.sh"
consumers = ["cn.border.sh"]
document_types = ["fal1"]
scope = "cross-department"
purpose = "arrival clearance by the border inspection"
legal_basis = "出境入境管理法 第六十六条"
valid_from = 2026-01-01T00:00:00Z
fields = ["*"]
"""


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return create_home(tmp_path / "home")


def recipients(parts: GatewayParts) -> tuple[str, ...]:
    record = parts.adapters.get("fal1-xml").parse(FAL1.read_bytes()).record
    return parts.router.index.decide("cn.port.sh", "fal1", record, AT).recipients


def test_a_reload_puts_a_new_contract_in_force(home: Home) -> None:
    parts = GatewayParts.load(GatewayConfig.load(home.config_file))
    assert recipients(parts) == ("cn.customs.sh", "cn.msa.sh")
    (home.path / "contracts" / "fal1-to-border.toml").write_text(TO_BORDER, encoding="utf-8")
    assert parts.router.reload()
    assert recipients(parts) == ("cn.customs.sh", "cn.msa.sh", "cn.border.sh")


def test_a_bad_file_keeps_the_old_set_in_force_and_says_why(home: Home) -> None:
    parts = GatewayParts.load(GatewayConfig.load(home.config_file))
    before = parts.router.index
    contracts = home.path / "contracts"
    (contracts / "fal1-to-border.toml").write_text(TO_BORDER, encoding="utf-8")
    (contracts / "typo.toml").write_text(TO_BORDER.replace('"fal1-to-border"', '"typo"')
                                         .replace("fields", "feilds"), encoding="utf-8")
    with capture_logs() as logs:
        assert not parts.router.reload()
    assert parts.router.index is before  # not even the good new file is taken
    assert recipients(parts) == ("cn.customs.sh", "cn.msa.sh")
    [refusal] = logs
    assert refusal["event"] == "contracts.reload_refused"
    assert refusal["code"] == "CONTRACT_MISSING_FIELD"
    assert "typo.toml:1" in refusal["error"]


def test_the_watcher_reloads_when_a_file_changes(home: Home) -> None:
    parts = GatewayParts.load(GatewayConfig.load(home.config_file))

    async def scenario() -> tuple[str, ...]:
        stop = asyncio.Event()
        watching = asyncio.create_task(parts.router.watch(stop, 0.05))
        await asyncio.sleep(0.1)
        path = home.path / "contracts" / "fal1-to-border.toml"
        path.write_text(TO_BORDER, encoding="utf-8")
        os.utime(path)
        for _ in range(100):
            if "cn.border.sh" in recipients(parts):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await watching
        return recipients(parts)

    assert asyncio.run(scenario()) == ("cn.customs.sh", "cn.msa.sh", "cn.border.sh")
