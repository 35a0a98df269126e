"""Creating a gateway home directory: keys, keyring, agencies, contracts, gateway.toml.

Used by `portgw demo` and by the tests; an operator writes the same files by hand.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from contracts import Agency
from crypto import SM2PrivateKey, token_digest

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
    Agency("cn.customs.sh", "Shanghai Customs", "customs", "310000", "CN",
           "中华人民共和国上海海关"),
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


# Early warnings (口岸检验检疫安全事件预警): the national departments, the local government,
# the port's emergency working group and public security, besides the port agencies above.
WARNING_AGENCIES = (
    Agency("cn.customs.gacc", "General Administration of Customs", "customs", "100000", "CN",
           "中华人民共和国海关总署"),
    Agency("cn.mem", "Ministry of Emergency Management", "emergency", "100000", "CN",
           "中华人民共和国应急管理部"),
    Agency("cn.gov.sh", "Shanghai Municipal People's Government", "government", "310000", "CN",
           "上海市人民政府"),
    Agency("cn.port.sh.emergency", "Shanghai Port Emergency Working Group", "emergency",
           "310000", "CN", "上海口岸突发事件应急工作组"),
    Agency("cn.police.sh", "Shanghai Public Security Bureau", "public-security", "310000",
           "CN", "上海市公安局"),
)
# Level I warnings belong to the national authority, level II to the customs district.
WARNING_LEVEL_OWNERS = {"I": "cn.customs.gacc", "II": "cn.customs.sh"}

_WARNING_BASIS = "口岸检验检疫安全事件预警规范; 中华人民共和国突发事件应对法"
_SHARED_STEPS = '["PUBLISH", "CHANGE_LEVEL", "RELEASE"]'


def _warning_contract(id: str, provider: str, consumers: tuple[str, ...], scope: str,
                      purpose: str, condition: str) -> ContractSpec:
    return ContractSpec(id=id, provider=provider, consumers=consumers,
                        document_types=("warning",), scope=scope, purpose=purpose,
                        legal_basis=_WARNING_BASIS,
                        extra=f"condition = '{condition}'\nmax_classification = \"important\"\n")


WARNING_CONTRACTS = (
    _warning_contract(
        "warning-major-national", "cn.customs.sh", ("cn.customs.gacc", "cn.mem"),
        "cross-region", "levels I and II notify the national departments",
        f'level in ["I", "II"] and step.action in {_SHARED_STEPS}'),
    _warning_contract(
        "warning-major-local-government", "cn.customs.sh", ("cn.gov.sh",), "cross-department",
        "levels I and II notify the local government",
        f'level in ["I", "II"] and step.action in {_SHARED_STEPS}'),
    _warning_contract(
        "warning-port-emergency-group", "cn.customs.sh", ("cn.port.sh.emergency",),
        "cross-department", "levels III and IV go to the port's emergency working group",
        f'level in ["III", "IV"] and step.action in {_SHARED_STEPS}'),
    _warning_contract(
        "warning-port-agencies", "cn.customs.sh", ("cn.port.sh", "cn.msa.sh", "cn.border.sh"),
        "cross-department", "the port agencies subscribe to the port's warnings",
        f"step.action in {_SHARED_STEPS}"),
    _warning_contract(
        "warning-terror-public-security", "cn.customs.sh", ("cn.police.sh",),
        "cross-department",
        "a warning whose terror relevance cannot be excluded goes to public security at once",
        'step.action == "TERROR_CHECK" and step.terror_relevance == "NOT_EXCLUDED"'),
    _warning_contract(
        "warning-filing", "cn.customs.sh", ("cn.customs.gacc",), "cross-region",
        "filing (备案) of a released warning with the higher-level system",
        'step.action == "FILE"'),
    _warning_contract(
        "warning-national-to-port", "cn.customs.gacc",
        ("cn.customs.sh", "cn.gov.sh", "cn.port.sh", "cn.msa.sh", "cn.border.sh"),
        "cross-region", "the national authority's level changes and releases reach the port",
        f"step.action in {_SHARED_STEPS}"),
    _warning_contract(
        "warning-national-to-departments", "cn.customs.gacc", ("cn.mem",), "cross-department",
        "the national authority's level changes and releases reach the national departments",
        f"step.action in {_SHARED_STEPS}"),
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
    # The local broker makes a joining member wait two thirds of it, a second at least,
    # and above 1000 ms a member joining after another left waits about 2.7 times it.
    session_timeout_ms: int = 1000,
    topic_prefix: str = "",
    http_listen: str = "127.0.0.1:0",
    warning_level_owners: Mapping[str, str] | None = None,
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
    (path / "keyring.toml").write_text(_keyring_toml(agencies), encoding="utf-8")
    (path / "agencies.toml").write_text("\n".join(_agency_table(a) for a in agencies),
                                        encoding="utf-8")
    for spec in contracts:
        (path / "contracts" / f"{spec.id}.toml").write_text(_contract_toml(spec), encoding="utf-8")
    (path / "gateway.toml").write_text(
        f'[gateway]\nid = "{GATEWAY_ID}"\nbootstrap_servers = "{bootstrap_servers}"\n'
        'key_file = "gateway.key"\nkeyring_file = "keyring.toml"\n'
        'agencies_file = "agencies.toml"\ncontracts_dir = "contracts"\n'
        f"session_timeout_ms = {session_timeout_ms}\n\n"
        # Plain HTTP on loopback, said explicitly: a home for the demo and the tests. A
        # production home sets [http] cert_file, key_file and client_ca_file instead.
        f'[http]\nlisten = "{http_listen}"\ntls = "off"\noperator_listen = "127.0.0.1:0"\n\n'
        f"[trail]\nseal_every = {seal_every}\nseal_interval_ms = {seal_interval_ms}\n"
        + _owners_table(warning_level_owners or {})
        + (f'\n[kafka]\ntopic_prefix = "{topic_prefix}"\n' if topic_prefix else ""),
        encoding="utf-8",
    )
    return Home(path=path, agency_keys=agency_keys, gateway_key=gateway_key)


def _owners_table(owners: Mapping[str, str]) -> str:
    if not owners:
        return ""
    return "\n[warnings.level_owners]\n" + "".join(f'{level} = "{agency}"\n'
                                                   for level, agency in owners.items())


def _write_key_pair(directory: Path, name: str, key: SM2PrivateKey) -> None:
    private = directory / f"{name}.key"
    private.write_bytes(key.to_pem())
    private.chmod(0o600)
    (directory / f"{name}.pub").write_bytes(key.public_key().to_pem())


def console_binding(token: str, role: str, name: str) -> str:
    """The keyring's [[client]] table that binds a console token (by its SHA-256, never the
    token itself) to its holder's name and role (docs/console.md)."""
    return (f'[[client]]\ntoken_sha256 = "{token_digest(token)}"\nrole = "{role}"\n'
            f'name = "{name}"\n')


def add_console_token(home: Path, role: str, name: str) -> str:
    """A new console token, bound in the home's keyring (read again by its next reload)."""
    token = secrets.token_urlsafe(32)
    with (home / "keyring.toml").open("a", encoding="utf-8") as keyring:
        keyring.write("\n" + console_binding(token, role, name))
    return token


def _keyring_toml(agencies: Sequence[Agency]) -> str:
    """The gateway identity, its sealing key, and each agency's key for its documents and
    acknowledgements (crypto.keyring: the roles each owner may have)."""
    tables = [_key_table(GATEWAY_ID, "gateway.pub", ("seal",))]
    tables += [_key_table(a.id, f"keys/{a.id}.pub", ("document", "ack")) for a in agencies]
    return f'gateway = "{GATEWAY_ID}"\n\n' + "\n".join(tables)


def _key_table(agency_id: str, public_key: str, roles: Sequence[str]) -> str:
    listed = ", ".join(f'"{role}"' for role in roles)
    return (f'[[key]]\nagency = "{agency_id}"\npublic_key = "{public_key}"\n'
            f"roles = [{listed}]\nvalid_from = 2026-01-01T00:00:00Z\n")


def _agency_table(a: Agency) -> str:
    return (f'[[agency]]\nid = "{a.id}"\nname = "{a.name}"\nname_zh = "{a.name_zh}"\n'
            f'kind = "{a.kind}"\nregion = "{a.region}"\njurisdiction = "{a.jurisdiction}"\n'
            f'delivery_format = "{a.delivery_format}"\n'
            + (f'delivery_topic = "{a.delivery_topic}"\n' if a.delivery_topic else "")
            + f'envelope_format = "{a.envelope_format}"\n')


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
