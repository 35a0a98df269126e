"""SMDG container discharge/loading orders (COPRAR, "coprar-edifact") and, through the shared
`ContainerHandlingAdapter`, the reports that answer them (COARRI, adapters/coarri.py), to
px.canonical.ContainerHandling and back (docs/adapters.md, "SMDG container messages").

Directories D.95B (SMDG COPRAR/COARRI 1.x) and D.00B (2.0); association codes (ITG10, ITG12,
ITG13...) are kept in `message_version`. Each container is the group from one EQD to the next.
BGM 1001 is kept as sent (`document_name_code`): which code means loading and which discharge
could not be confirmed from the manuals (docs/edifact-research.md §7, §14), so the record does
not claim it; EQD 8249 (`equipment_status`: 2 export, 3 import, 6 transhipment) is kept the
same way. Seals keep their numbers, not their issuers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from message_formats.edifact import Message, Segment
from message_formats.edifact import segment as make_segment

from .smdg import (
    SmdgAdapter,
    cell_segment,
    check_cells_and_containers_once,
    check_equipment_count,
    container_number,
    dangerous_goods_of,
    dangerous_goods_segments,
    equipment_segment,
    first,
    full_or_empty,
    groups_from,
    header_segments,
    location,
    location_segment,
    mass_segment,
    masses,
    one_message_interchange,
    optional,
    optional_time,
    party,
    party_segment,
    read_vessel,
    reference,
    reference_segments,
    refusal,
    ship_key,
    stowage_cell,
    temperature_segment,
    temperature_setting,
    time_segment,
    unknown_un_numbers,
    vessel_segment,
)

RELEASES = frozenset({"95B", "00B"})
DATE_FORMAT = "203"
MARITIME = "1"  # TDT C220 8067, mode of transport: maritime
_GROSS_MASS, _VGM = ("AAE", "G"), ("AAE", "VGM")
_OPERATOR = "CF"


def _is_equipment(segment: Segment) -> bool:
    return segment.tag == "EQD"


# ---------------------------------------------------------------- EDIFACT -> record


def read_handling(message: Message, kind: str) -> dict[str, Any]:
    head, groups = groups_from(message.body(), _is_equipment)
    bgm, tdt = header_segments(head, message.segments[0])
    identifier = message.identifier
    return {
        "kind": kind,
        "document_number": bgm.value(1),
        "document_name_code": optional(bgm.value(0)),
        "message_function": optional(bgm.value(2)),
        "message_version": f"{identifier.version}:{identifier.release}:{identifier.association}",
        "prepared_at": optional_time(head, "137"),
        "vessel": read_vessel(tdt),
        "voyage_number": tdt.value(1),
        "carrier": optional(tdt.value(4, 0)),
        "port_of_loading": location(head, "9"),
        "port_of_discharge": location(head, "11"),
        "containers": [_read_container(group) for group in groups],
    }


def _read_container(group: Sequence[Segment]) -> dict[str, Any]:
    eqd = group[0]
    status = eqd.value(4)
    if status and not (status.isdigit() and len(status) <= 2):
        raise refusal("RULE_EQUIPMENT_STATUS", "is not a UN/EDIFACT 8249 code", eqd, "8249")
    cell = first(group, "LOC", "147")
    gross, verified = masses(group)
    return {
        "container_number": container_number(eqd),
        "size_type": optional(eqd.value(2)),
        "equipment_status": optional(status),
        "full_or_empty": full_or_empty(eqd),
        "stowage_position": None if cell is None else stowage_cell(cell),
        "gross_mass_kg": gross,
        "verified_gross_mass_kg": verified,
        "temperature_setting_celsius": temperature_setting(group),
        "port_of_loading": location(group, "9"),
        "port_of_discharge": location(group, "11"),
        "place_of_delivery": location(group, "7"),
        "handled_at": optional_time(group, "203"),
        "booking_reference": reference(group, "BN"),
        "bill_of_lading_number": reference(group, "BM"),
        "operator": party(group, (_OPERATOR,)),
        "seals": [s.value(0) for s in group if s.tag == "SEL" and s.value(0)],
        "dangerous_goods": dangerous_goods_of(group),
    }


def check_handling(record: Mapping[str, Any], message: Message) -> tuple[str, ...]:
    """Each container once, CNT+16 (when sent) their number; the warnings."""
    containers = record["containers"]
    _, groups = groups_from(message.body(), _is_equipment)
    check_cells_and_containers_once(containers, groups)
    check_equipment_count(message.body(), len(containers))
    return unknown_un_numbers(containers)


def business_key(record: Mapping[str, Any]) -> str:
    """The ship, the voyage and the document number: the versions of one order (or report)
    share it, and a discharge and a loading order of one call do not."""
    return f"{ship_key(record)}:{record['voyage_number']}:{record['document_number']}"


# ---------------------------------------------------------------- record -> EDIFACT


def _handling_segments(record: Mapping[str, Any]) -> Iterator[Segment]:
    yield make_segment("BGM", record["document_name_code"] or "", record["document_number"],
                       record["message_function"] or "")
    yield from time_segment("137", record["prepared_at"], DATE_FORMAT)
    yield vessel_segment(record, MARITIME)
    yield from location_segment("9", record["port_of_loading"])
    yield from location_segment("11", record["port_of_discharge"])
    for container in record["containers"]:
        yield from _container_segments(container)
    yield make_segment("CNT", ["16", str(len(record["containers"]))])


def _container_segments(container: Mapping[str, Any]) -> Iterator[Segment]:
    """The EQD group in the D.95B order: EQD, RFF, DTM, LOC, MEA, SEL, DGS, NAD."""
    yield equipment_segment(container, container["equipment_status"] or "")
    yield from reference_segments(container)
    yield from time_segment("203", container["handled_at"], DATE_FORMAT)
    yield from cell_segment(container["stowage_position"])
    yield from location_segment("9", container["port_of_loading"])
    yield from location_segment("11", container["port_of_discharge"])
    yield from location_segment("7", container["place_of_delivery"])
    yield from mass_segment(_GROSS_MASS, container["gross_mass_kg"])
    yield from mass_segment(_VGM, container["verified_gross_mass_kg"])
    yield from temperature_segment(container["temperature_setting_celsius"])
    for seal in container["seals"]:
        yield make_segment("SEL", seal)
    yield from dangerous_goods_segments(container)
    yield from party_segment(_OPERATOR, container["operator"])


# ---------------------------------------------------------------- the adapters


class ContainerHandlingAdapter(SmdgAdapter):
    """COPRAR and COARRI share their layout; `kind` says which a record is."""

    schema_name: ClassVar[str] = "px.canonical.ContainerHandling"
    releases: ClassVar[frozenset[str]] = RELEASES
    kind: ClassVar[str]

    __slots__ = ()

    def read(self, message: Message) -> dict[str, Any]:
        return read_handling(message, self.kind)

    def business_key(self, record: Mapping[str, Any]) -> str:
        return business_key(record)

    def check(self, record: Mapping[str, Any], message: Message) -> tuple[str, ...]:
        return check_handling(record, message)

    def write(self, record: Mapping[str, Any], version: int) -> bytes:
        if record["kind"] != self.kind:
            raise ValueError(f"a {self.message_type} carries kind {self.kind}")
        return one_message_interchange(
            self.message_type, record["message_version"], [*_handling_segments(record)],
            prepared_at=record["prepared_at"], version=version, unoa_syntax="2")


class ContainerOrderAdapter(ContainerHandlingAdapter):
    """SMDG COPRAR, container discharge/loading order <-> px.canonical.ContainerHandling."""

    format_id: ClassVar[str] = "coprar-edifact"
    document_type: ClassVar[str] = "container-order"
    message_type: ClassVar[str] = "COPRAR"
    kind: ClassVar[str] = "Order"

    __slots__ = ()
