"""Creating a gateway home directory: keys, keyring, agencies, contracts, gateway.toml.

Used by `portgw demo` and by the tests; an operator writes the same files by hand.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from contracts import Agency
from crypto import SM2PrivateKey

GATEWAY_ID = "px.gateway"


@dataclass(frozen=True, slots=True)
class ContractSpec:
    id: str
    provider: str
    consumers: tuple[str, ...]
    document_types: tuple[str, ...]
    scope: str
    purpose: str
    legal_basis: str
    version: int = 1
    valid_from: str = "2026-01-01T00:00:00Z"
    fields: tuple[str, ...] = ("*",)
    extra: str = ""  # further TOML lines: condition, masks table, delivery options
    kind: str = "sharing"  # or "subscription", with `events` instead of provider and scope
    events: tuple[str, ...] = ()


DEMO_AGENCIES = (
    Agency("cn.port.sh", "Shanghai International Port Group", "port-operator", "310000", "CN",
           "上海国际港务集团"),
    Agency("cn.customs.sh", "Shanghai Customs", "customs", "310000", "CN", "上海海关"),
    Agency("cn.msa.sh", "Shanghai Maritime Safety Administration", "maritime", "310000", "CN",
           "上海海事局"),
    Agency("cn.border.sh", "Shanghai General Station of Exit and Entry Frontier Inspection",
           "border", "310000", "CN", "上海出入境边防检查总站"),
)

DEMO_CONTRACTS = (
    ContractSpec(
        id="fal1-port-to-clearance",
        provider="cn.port.sh",
        consumers=("cn.customs.sh", "cn.msa.sh"),
        document_types=("fal1",),
        scope="cross-department",
        purpose="arrival and departure clearance of international ships",
        legal_basis="国际航行船舶进出中华人民共和国口岸检查办法; IMO FAL Convention Std 2.1",
    ),
)


@dataclass(frozen=True, slots=True)
class Home:
    path: Path
    agency_keys: dict[str, SM2PrivateKey]
    gateway_key: SM2PrivateKey

    @property
    def config_file(self) -> Path:
        return self.path / "gateway.toml"


def create_home(
    path: Path,
    *,
    agencies: Sequence[Agency] = DEMO_AGENCIES,
    contracts: Sequence[ContractSpec] = DEMO_CONTRACTS,
    bootstrap_servers: str = "",
    seal_every: int = 256,
    seal_interval_ms: int = 500,
    session_timeout_ms: int = 3000,
    http_listen: str = "127.0.0.1:0",
) -> Home:
    (path / "keys").mkdir(parents=True, exist_ok=True)
    (path / "contracts").mkdir(exist_ok=True)
    mask_key = path / "mask.key"
    mask_key.write_bytes(secrets.token_bytes(32))
    mask_key.chmod(0o600)
    gateway_key = SM2PrivateKey.generate()
    _write_key_pair(path, "gateway", gateway_key)
    agency_keys = {a.id: SM2PrivateKey.generate() for a in agencies}
    for agency_id, key in agency_keys.items():
        _write_key_pair(path / "keys", agency_id, key)
    keyring = [_key_table(GATEWAY_ID, "gateway.pub")]
    keyring += [_key_table(a.id, f"keys/{a.id}.pub") for a in agencies]
    (path / "keyring.toml").write_text("\n".join(keyring), encoding="utf-8")
    (path / "agencies.toml").write_text("\n".join(_agency_table(a) for a in agencies),
                                        encoding="utf-8")
    for spec in contracts:
        (path / "contracts" / f"{spec.id}.toml").write_text(_contract_toml(spec), encoding="utf-8")
    (path / "gateway.toml").write_text(
        f'[gateway]\nid = "{GATEWAY_ID}"\nbootstrap_servers = "{bootstrap_servers}"\n'
        'key_file = "gateway.key"\nkeyring_file = "keyring.toml"\n'
        'agencies_file = "agencies.toml"\ncontracts_dir = "contracts"\n'
        f"session_timeout_ms = {session_timeout_ms}\n\n"
        f'[http]\nlisten = "{http_listen}"\n\n'
        f"[trail]\nseal_every = {seal_every}\nseal_interval_ms = {seal_interval_ms}\n",
        encoding="utf-8",
    )
    return Home(path=path, agency_keys=agency_keys, gateway_key=gateway_key)


def _write_key_pair(directory: Path, name: str, key: SM2PrivateKey) -> None:
    private = directory / f"{name}.key"
    private.write_bytes(key.to_pem())
    private.chmod(0o600)
    (directory / f"{name}.pub").write_bytes(key.public_key().to_pem())


def _key_table(agency_id: str, public_key: str) -> str:
    return (f'[[key]]\nagency = "{agency_id}"\npublic_key = "{public_key}"\n'
            "valid_from = 2026-01-01T00:00:00Z\n")


def _agency_table(a: Agency) -> str:
    return (f'[[agency]]\nid = "{a.id}"\nname = "{a.name}"\nname_zh = "{a.name_zh}"\n'
            f'kind = "{a.kind}"\nregion = "{a.region}"\njurisdiction = "{a.jurisdiction}"\n'
            f'delivery_format = "{a.delivery_format}"\n'
            + (f'delivery_topic = "{a.delivery_topic}"\n' if a.delivery_topic else ""))


def _contract_toml(spec: ContractSpec) -> str:
    def strings(values: Sequence[str]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    sharing = spec.kind == "sharing"
    lines = [
        f'id = "{spec.id}"',
        f"version = {spec.version}",
        f'provider = "{spec.provider}"' if sharing else 'kind = "subscription"',
        f"consumers = {strings(spec.consumers)}",
        f"document_types = {strings(spec.document_types)}",
        f'scope = "{spec.scope}"' if sharing else f"events = {strings(spec.events)}",
        f'purpose = "{spec.purpose}"',
        f'legal_basis = "{spec.legal_basis}"',
        f"valid_from = {spec.valid_from}",
    ]
    if sharing:
        lines.append(f"fields = {strings(spec.fields)}")
    return "\n".join(lines) + "\n" + spec.extra
