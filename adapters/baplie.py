"""SMDG BAPLIE bay plans (UN/EDIFACT) to px.canonical.StowagePlan and back ("baplie-edifact").

Two layouts, chosen by the message identifier (UNH S009), docs/edifact-research.md §6:

- SMDG 2.x on directory D.95B (association codes SMDG20 ... SMDG22): the operator is NAD+CA,
  weights are MEA+WT (gross) and MEA+VGM, dates format 201 (YYMMDDHHMM);
- SMDG 3.x on directory D.13B (SMDG31, SMDG311): the operator is NAD+CF, weights are MEA+AAE+G
  and MEA+AAE+VGM, dates format 203 (CCYYMMDDHHMM).

Each occupied cell is the group of segments from one LOC+147 to the next. Inside a group the
reader goes by tag and qualifier, not by position, so the two layouts' different segment orders
read alike and either qualifier set is understood in either version; `render` writes each
layout's own. What the record has no field for (over-dimensions DIM, temperature ranges RNG,
handling instructions HAN, free text FTX) is not kept: a render writes a bay plan without it.

Where dangerous goods are on board, `fal7_manifest` turns the record into what a FAL 7
dangerous goods manifest can honestly take from a bay plan (docs/adapters.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from message_formats.edifact import Message, Segment
from message_formats.edifact import segment as make_segment

from .base import DerivedDocument, ParseResult
from .fal7 import Fal7Adapter
from .fal7 import business_key as fal7_business_key
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
    missing,
    one_message_interchange,
    optional,
    optional_time,
    party,
    party_segment,
    read_vessel,
    reference,
    reference_segments,
    ship_key,
    stowage_cell,
    temperature_segment,
    temperature_setting,
    time_segment,
    unknown_un_numbers,
    vessel_segment,
)

MESSAGE_TYPE = "BAPLIE"


# ---------------------------------------------------------------- the two SMDG layouts


@dataclass(frozen=True, slots=True)
class Layout:
    """What differs between the SMDG 2.x and 3.x bay plans, as far as the record goes."""

    release: str  # UN/EDIFACT directory release of the message
    operator_party: str  # NAD 3035 of the container operator
    gross_mass: tuple[str, str]  # MEA 6311 and C502 6313 of the gross mass
    verified_gross_mass: tuple[str, str]  # the same of the VGM
    date_format: str  # DTM 2379
    unoa_syntax: str  # UNB S001 0002 with UNOA ("always 2" for SMDG 2.x)


SMDG2 = Layout("95B", "CA", ("WT", ""), ("VGM", ""), "201", "2")
SMDG3 = Layout("13B", "CF", ("AAE", "G"), ("AAE", "VGM"), "203", "3")
LAYOUTS = {layout.release: layout for layout in (SMDG2, SMDG3)}
OPERATOR_PARTIES = tuple(layout.operator_party for layout in LAYOUTS.values())


def layout_of(message_version: str) -> Layout:
    """The layout of a record's `message_version` ("D:95B:SMDG22"), by its directory."""
    release = message_version.split(":")[1] if message_version.count(":") == 2 else ""
    layout = LAYOUTS.get(release)
    if layout is None:
        raise ValueError("message_version names no SMDG BAPLIE directory (D:95B, D:13B)")
    return layout


def _is_cell(segment: Segment) -> bool:
    return segment.tag == "LOC" and segment.value(0) == "147"


# ---------------------------------------------------------------- EDIFACT -> record


def _read_plan(message: Message) -> dict[str, Any]:
    head, groups = groups_from(message.body(), _is_cell)
    bgm, tdt = header_segments(head, message.segments[0])
    identifier = message.identifier
    return {
        "document_number": bgm.value(1),
        "message_function": optional(bgm.value(2)),
        "message_version": f"{identifier.version}:{identifier.release}:{identifier.association}",
        "prepared_at": optional_time(head, "137"),
        "vessel": read_vessel(tdt),
        "voyage_number": tdt.value(1),
        "carrier": optional(tdt.value(4, 0)),
        "port_of_departure": location(head, "5"),
        "next_port_of_call": location(head, "61"),
        "containers": [_read_container(group) for group in groups],
    }


def _read_container(group: Sequence[Segment]) -> dict[str, Any]:
    cell = stowage_cell(group[0])
    eqd = first(group, "EQD")
    if eqd is None:
        raise missing("EQD with a container number (C237 8260)", group[0])
    gross, verified = masses(group)
    return {
        "stowage_position": cell,
        "container_number": container_number(eqd),
        "size_type": optional(eqd.value(2)),
        "full_or_empty": full_or_empty(eqd),
        "gross_mass_kg": gross,
        "verified_gross_mass_kg": verified,
        "temperature_setting_celsius": temperature_setting(group),
        "operator": party(group, OPERATOR_PARTIES),
        "port_of_loading": location(group, "9"),
        "port_of_discharge": location(group, "11"),
        "place_of_delivery": location(group, "83"),
        "booking_reference": reference(group, "BN"),
        "bill_of_lading_number": reference(group, "BM"),
        "dangerous_goods": dangerous_goods_of(group),
    }


def _check_plan(record: Mapping[str, Any], message: Message) -> None:
    """The rules across containers: each cell and container once, CNT+16 (when sent) the
    number of containers."""
    containers = record["containers"]
    _, groups = groups_from(message.body(), _is_cell)
    check_cells_and_containers_once(containers, groups)
    check_equipment_count(message.body(), len(containers))


def business_key(record: Mapping[str, Any]) -> str:
    """The ship (IMO number, else call sign), the voyage and the port the ship leaves: the
    versions of one port call's bay plan share it."""
    return f"{ship_key(record)}:{record['voyage_number']}:{record['port_of_departure'] or ''}"


# ---------------------------------------------------------------- record -> EDIFACT


def _plan_segments(record: Mapping[str, Any], layout: Layout) -> Iterator[Segment]:
    yield make_segment("BGM", "", record["document_number"], record["message_function"] or "")
    yield from time_segment("137", record["prepared_at"], layout.date_format)
    yield vessel_segment(record)
    yield from location_segment("5", record["port_of_departure"])
    yield from location_segment("61", record["next_port_of_call"])
    for container in record["containers"]:
        yield from _container_segments(container, layout)


def _container_segments(container: Mapping[str, Any], layout: Layout) -> Iterator[Segment]:
    """A cell's group in the layout's order: SMDG 2.x puts weights, places and references
    before EQD and the operator after it; 3.x puts EQD and the operator first."""
    yield from cell_segment(container["stowage_position"])
    equipment = [equipment_segment(container),
                 *party_segment(layout.operator_party, container["operator"])]
    if layout is SMDG3:
        yield from equipment
    yield from mass_segment(layout.gross_mass, container["gross_mass_kg"])
    yield from mass_segment(layout.verified_gross_mass, container["verified_gross_mass_kg"])
    yield from temperature_segment(container["temperature_setting_celsius"])
    yield from location_segment("9", container["port_of_loading"])
    yield from location_segment("11", container["port_of_discharge"])
    yield from location_segment("83", container["place_of_delivery"])
    yield from reference_segments(container)
    if layout is SMDG2:
        yield from equipment
    yield from dangerous_goods_segments(container)


# ---------------------------------------------------------------- the adapter


class BayPlanAdapter(SmdgAdapter):
    """SMDG BAPLIE 2.x and 3.x <-> px.canonical.StowagePlan."""

    format_id: ClassVar[str] = "baplie-edifact"
    document_type: ClassVar[str] = "stowage-plan"
    schema_name: ClassVar[str] = "px.canonical.StowagePlan"
    message_type: ClassVar[str] = MESSAGE_TYPE
    releases: ClassVar[frozenset[str]] = frozenset(LAYOUTS)

    __slots__ = ()

    def read(self, message: Message) -> dict[str, Any]:
        return _read_plan(message)

    def business_key(self, record: Mapping[str, Any]) -> str:
        return business_key(record)

    def check(self, record: Mapping[str, Any], message: Message) -> tuple[str, ...]:
        _check_plan(record, message)
        return unknown_un_numbers(record["containers"])

    def write(self, record: Mapping[str, Any], version: int) -> bytes:
        """The record as a BAPLIE of its own SMDG version (CNT is not written: that BAPLIE
        carries CNT+16 is confirmed for COPRAR/COARRI only)."""
        layout = layout_of(record["message_version"])
        return one_message_interchange(
            MESSAGE_TYPE, record["message_version"], [*_plan_segments(record, layout)],
            prepared_at=record["prepared_at"], version=version, unoa_syntax=layout.unoa_syntax)

    def derived(self, parsed: ParseResult) -> Iterable[DerivedDocument]:
        """The FAL 7 dangerous goods manifest the plan holds, if any (`fal7_manifest`), under
        the FAL 7 adapter's document type, schema and business key, as the same version."""
        manifest = fal7_manifest(parsed.record)
        if manifest is None:
            return ()
        return (DerivedDocument(Fal7Adapter.document_type, Fal7Adapter.schema_name,
                                ParseResult(manifest, fal7_business_key(manifest),
                                            parsed.document_version)),)


# ---------------------------------------------------------------- FAL 7 from a bay plan


def fal7_manifest(plan: Mapping[str, Any]) -> dict[str, Any] | None:
    """The px.canonical.Fal7DangerousGoodsManifest body (without "header") a bay plan holds:
    one line per dangerous goods entry of each container, None when there is none, or when the
    plan lacks what FAL 7 cannot do without (the ship's IMO number and name, and the next port
    of call, whose authorities the plan is sent ahead to: the port of report).

    Only what the plan states is filled in. A bay plan describes containers, not
    consignments: marks, packages, proper shipping name, the goods' masses, marine pollutant,
    master and agent are null, and subsidiary risks are empty (none stated)."""
    vessel = plan["vessel"]
    if vessel["imo_number"] is None or vessel["name"] is None or plan["next_port_of_call"] is None:
        return None
    goods = [_fal7_item(container, entry)
             for container in plan["containers"] for entry in container["dangerous_goods"]]
    if not goods:
        return None
    return {
        "document_number": plan["document_number"],
        "ship": {**vessel, "gross_tonnage": None, "net_tonnage": None},
        "voyage_number": plan["voyage_number"],
        "port_of_report": plan["next_port_of_call"],
        "port_of_loading": None,
        "port_of_discharge": None,
        "master_name": None,
        "shipping_agent": None,
        "dangerous_goods": goods,
        "additional_information": None,
    }


def _fal7_item(container: Mapping[str, Any], goods: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "booking_reference": container["booking_reference"],
        "marks_and_numbers": None,
        "container_number": container["container_number"],
        "vehicle_registration_number": None,
        "stowage_position": container["stowage_position"],
        "number_of_packages": None,
        "kind_of_packages": None,
        "proper_shipping_name": None,
        "imdg_class": goods["imdg_class"],
        "un_number": goods["un_number"],
        "packing_group": goods["packing_group"],
        "subsidiary_risks": [],
        "flash_point_celsius": goods["flash_point_celsius"],
        "marine_pollutant": None,
        "gross_mass_kg": None,
        "net_mass_kg": None,
        "ems": goods["ems"],
    }
