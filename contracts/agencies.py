"""The agency registry: who takes part in the exchange, and where they stand."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import AgencyInvalid

_REGION = re.compile(r"[0-9]{6}\Z")
_JURISDICTION = re.compile(r"[A-Z]{2}\Z")

PX_ENVELOPE, CMS_ENVELOPE = "px", "cms"
ENVELOPE_FORMATS = (PX_ENVELOPE, CMS_ENVELOPE)

AGENCY_KINDS = frozenset(
    {
        "customs",
        "border",
        "maritime",
        "transport",
        "port-operator",
        "port-office",
        "emergency",
        "government",
        "public-security",
        "foreign-authority",
        "carrier",
        "agent",
    }
)


@dataclass(frozen=True, slots=True)
class Agency:
    id: str
    name: str
    kind: str
    region: str
    jurisdiction: str
    name_zh: str = ""
    delivery_format: str = "avro"  # "avro", "json" or an adapter format id
    delivery_topic: str | None = None  # None: the gateway's px.deliver.<id>.v1
    # How an SM4-encrypted delivery is wrapped: "px" (the gateway's own envelope) or "cms"
    # (CMS EnvelopedData, RFC 5652 / GM/T 0010, which `openssl cms -decrypt` opens).
    envelope_format: str = PX_ENVELOPE


class AgencyRegistry:
    __slots__ = ("_by_id",)

    def __init__(self, agencies: Iterable[Agency]) -> None:
        self._by_id: dict[str, Agency] = {}
        for agency in agencies:
            if agency.id in self._by_id:
                raise AgencyInvalid(f"agency {agency.id!r} is registered twice")
            self._by_id[agency.id] = agency

    def __contains__(self, agency_id: object) -> bool:
        return agency_id in self._by_id

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, agency_id: str) -> Agency:
        try:
            return self._by_id[agency_id]
        except KeyError:
            raise AgencyInvalid(f"unknown agency {agency_id!r}", code="AGENCY_UNKNOWN") from None

    @classmethod
    def from_toml(cls, path: Path) -> AgencyRegistry:
        """Reads `[[agency]]` tables: id, name, name_zh, kind, region (GB/T 2260 code, six
        digits), jurisdiction (ISO 3166-1 alpha-2, e.g. CN, HK, MO, SG), and optionally
        delivery_format, delivery_topic and envelope_format."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise AgencyInvalid(f"cannot read agency registry: {exc}", path=path) from exc
        return cls(_agency_from_table(table, path) for table in data.get("agency", []))


def _agency_from_table(table: dict[str, object], path: Path) -> Agency:
    missing = [k for k in ("id", "name", "kind", "region", "jurisdiction") if k not in table]
    if missing:
        agency_id = table.get("id", "?")
        raise AgencyInvalid(f"agency {agency_id!r} lacks {', '.join(missing)}", path=path)
    kind = str(table["kind"])
    if kind not in AGENCY_KINDS:
        raise AgencyInvalid(f"agency {table['id']!r} has unknown kind {kind!r}", path=path)
    region, jurisdiction = str(table["region"]), str(table["jurisdiction"])
    if not _REGION.match(region):
        raise AgencyInvalid(f"agency {table['id']!r}: region {region!r} is not a six-digit "
                            "GB/T 2260 code", path=path)
    if not _JURISDICTION.match(jurisdiction):
        raise AgencyInvalid(f"agency {table['id']!r}: jurisdiction {jurisdiction!r} is not an "
                            "ISO 3166-1 alpha-2 code", path=path)
    topic = table.get("delivery_topic")
    envelope_format = str(table.get("envelope_format", PX_ENVELOPE))
    if envelope_format not in ENVELOPE_FORMATS:
        raise AgencyInvalid(f"agency {table['id']!r}: envelope_format must be one of "
                            f"{', '.join(ENVELOPE_FORMATS)}", path=path)
    return Agency(
        id=str(table["id"]),
        name=str(table["name"]),
        name_zh=str(table.get("name_zh", "")),
        kind=kind,
        region=region,
        jurisdiction=jurisdiction,
        delivery_format=str(table.get("delivery_format", "avro")),
        delivery_topic=None if topic is None else str(topic),
        envelope_format=envelope_format,
    )
