"""UN/EDIFACT CUSCAR, the customs cargo report a carrier or its agent sends a customs
administration (directories D.95B, D.96B and later, association codes such as LOT10), read
into px.canonical.CustomsManifest and rendered back ("cuscar-edifact"; docs/adapters.md,
"CUSCAR").

The canonical record is the WCO-data-model manifest the China E-Port manifests also map to:
its Declaration / Consignment / ConsignmentItem / TransportEquipment tree is the one the WCO
model took from the EDIFACT customs messages, and its codes (message function 1225, transport
mode 8067, package kinds of UN/ECE Rec. 21, units of Rec. 20) are EDIFACT's, so a CUSCAR maps
into it field by field without inventing a value. What CUSCAR does not carry stays null.

The message, as read (segment groups by their trigger segment; others are passed by):
  BGM 1004 document number [C106 1056 version] 1225 function
  TDT+20 voyage, mode, carrier, vessel (C222: IMO number 146, or call sign 103; name)
    LOC+9 port of loading, DTM+133;  LOC+11 port of discharge, DTM+132
  CNI+n+transport document: RFF+BM master / RFF+BH house, CNT+7 gross weight, CNT+11
    packages, LOC+9/11/13 places, NAD+CZ/CN/N1 parties
    EQD+CN container, SEL seals;  GID+n goods item: FTX+AAA, PIA+5 HS code, MEA+AAE+G
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar

from message_formats.edifact import Interchange, Message, Segment, segment

from .base import ParseResult, RuleViolationError
from .cn_manifest import business_key as manifest_business_key
from .cn_manifest import sender_code
from .cn_manifest_tree import MANIFEST
from .edi_text import (
    REQUIRED,
    EdifactAdapter,
    Envelope,
    bgm_version,
    date_time_segment,
    decimal,
    first,
    format_number,
    interchange_bytes,
    interchange_time,
    joined,
    lines,
    local_moment,
    location,
    places,
    qualified,
    refused,
    required_decimal,
    split_groups,
    text_or_none,
    time_of,
)
from .fal1 import IMO_CHECK_DIGIT_RULE, is_valid_imo_number
from .fal2 import CONTAINER_CHECK_DIGIT_RULE
from .iso6346 import is_valid_container_number
from .xml_tree import Node

MESSAGE_TYPE = "CUSCAR"
MODES = {"1": "SEA", "3": "ROAD", "4": "AIR"}
MAIN_CARRIAGE = "20"
IMO_LIST, CALL_SIGN_LIST = "146", "103"
CONTAINER = "CN"
LOADING, DISCHARGE, TRANSHIPMENT = "9", "11", "13"
DEPARTURE_ESTIMATED, ARRIVAL_ESTIMATED = "133", "132"
PARTIES = {"CZ": "consignor", "CN": "consignee", "N1": "notify_party"}
GROSS_WEIGHT_TOTAL, PACKAGES_TOTAL = "7", "11"
DOCUMENT_NAME = "85"  # customs manifest (UNCL 1001), what render writes in BGM

TRANSPORT_MODE = "RULE_TRANSPORT_MODE"
SEQUENCE = "RULE_SEQUENCE"
TOTALS = "RULE_TOTALS"
WARN_CALL_SIGN = "WARN_CUSCAR_CALL_SIGN_NOT_KEPT"


@dataclass(frozen=True, slots=True)
class Blank:
    """A record of the table's fields at their defaults, made fresh for each use: None for
    each field, a new [] for each repeated one (read once from the table, not per record)."""

    defaults: Mapping[str, None]
    repeated: tuple[str, ...]

    @classmethod
    def of(cls, nodes: Sequence[Node]) -> Blank:
        return cls(MappingProxyType({n.field: None for n in nodes}),
                   tuple(n.field for n in nodes if n.repeats))

    def __call__(self) -> dict[str, Any]:
        record: dict[str, Any] = dict(self.defaults)
        for field in self.repeated:
            record[field] = []
        return record


def _blank(*path: str) -> Blank:
    nodes: Sequence[Node] = MANIFEST
    for name in path:
        nodes = next(node for node in nodes if node.field == name).children
    return Blank.of(nodes)


DECLARATION = _blank("declaration")
MEANS = _blank("declaration", "transport_means")
CONSIGNMENT = _blank("declaration", "consignments")
CONTRACT = _blank("declaration", "consignments", "transport_contract_document")
EQUIPMENT = _blank("declaration", "consignments", "transport_equipment")
ITEM = _blank("declaration", "consignments", "items")
COMMODITY = _blank("declaration", "consignments", "items", "commodity")
PARTY = _blank("declaration", "consignments", "consignee")
ADDRESS = _blank("declaration", "consignments", "consignee", "address")


class CuscarAdapter(EdifactAdapter):
    format_id = "cuscar-edifact"
    document_type = "cn-manifest"  # the customs manifest, as the E-Port family
    schema_name = "px.canonical.CustomsManifest"
    edifact_message_types: ClassVar[frozenset[str]] = frozenset({MESSAGE_TYPE})
    label = MESSAGE_TYPE
    cannot_carry = "an E-Port manifest's own fields"
    __slots__ = ()

    @staticmethod
    def read(interchange: Interchange, message: Message) -> ParseResult:
        reading = _Reading(interchange, message)
        try:
            record = reading.record()
        except RuleViolationError as exc:
            # Refused after the header was read: filed under the report's key and version.
            exc.business_key, exc.document_version = reading.key, reading.version
            raise
        return ParseResult(record, manifest_business_key(record), reading.version,
                           tuple(reading.warnings))

    @staticmethod
    def write(record: Mapping[str, Any], version: int) -> bytes:
        return _render(record, version)


# ---------------------------------------------------------------- CUSCAR -> canonical record


class _Reading:
    """One pass over the message body: the header, then one group per CNI, each with its
    EQD and GID groups. Rules are checked where the segment is at hand."""

    def __init__(self, interchange: Interchange, message: Message) -> None:
        self.interchange = interchange
        self.message = message
        self.version = 1
        self.key: str | None = None
        self.warnings: list[str] = []

    def record(self) -> dict[str, Any]:
        body = self.message.body()
        header, groups = split_groups(body, "CNI")
        declaration = DECLARATION()
        head, mode = self._header(header, declaration)
        record = {"mode": mode, "stage": None, "sender_code": sender_code(head["sender_id"]),
                  "head": head, "declaration": declaration}
        if declaration["transport_means"]["journey_id"] or declaration["id"]:
            self.key = manifest_business_key(record)  # else named by the first consignment
        if not groups:
            raise refused(REQUIRED, self.message.segments[-1], "CNI", "a cargo report holds "
                          "at least one consignment (CNI group)")
        declaration["consignments"] = [self._consignment(number, group)
                                       for number, group in enumerate(groups, start=1)]
        return record

    def _header(self, segments: Sequence[Segment], declaration: dict[str, Any]
                ) -> tuple[dict[str, Any], str]:
        bgm = first(segments, "BGM")
        if bgm is None:
            raise refused(REQUIRED, self.message.segments[0], "BGM", "the message needs its "
                          "beginning (BGM)")
        function = bgm.value(2)
        if not function:
            raise refused(REQUIRED, bgm, "1225", "the message function is required")
        self.version = bgm_version(bgm)
        declaration["id"] = text_or_none(bgm.value(1))
        unb = self.message.segments[0]
        head = {
            "message_id": self.message.reference,
            "function_code": function,
            "message_type": self.message.identifier.type,
            "sender_id": self.interchange.sender,
            "receiver_id": self.interchange.recipient,
            "send_time": interchange_time(self.interchange, unb),
            "version": _message_version(self.message),
        }
        tdt = _main_carriage(segments)
        if tdt is None:
            raise refused(REQUIRED, bgm, "TDT", "the main carriage (TDT+20) is required")
        mode = MODES.get(tdt.value(2))
        if mode is None:
            raise refused(TRANSPORT_MODE, tdt, "C220 8067", "the mode of transport must be 1 "
                          "(maritime), 3 (road) or 4 (air)")
        declaration["carrier_id"] = text_or_none(tdt.value(4))
        declaration["transport_means"] = self._means(tdt)
        for place, times in places(segments[segments.index(tdt) + 1:]):
            self._header_place(place, times, declaration)
        return head, mode

    def _means(self, tdt: Segment) -> dict[str, Any]:
        means = MEANS()
        means["journey_id"] = text_or_none(tdt.value(1))
        means["type_code"] = tdt.value(2)
        means["name"] = text_or_none(tdt.value(7, 3))
        identifier, code_list = tdt.value(7), tdt.value(7, 1)
        if code_list == IMO_LIST and not is_valid_imo_number(identifier):
            raise refused("RULE_IMO_CHECK_DIGIT", tdt, "C222 8213", IMO_CHECK_DIGIT_RULE)
        if code_list == CALL_SIGN_LIST:
            self.warnings.append(f"{WARN_CALL_SIGN}: TDT C222 8213 (segment {tdt.number}): "
                                 "a call sign is not kept (the record's means id is the IMO "
                                 "number)")
        else:
            means["id"] = text_or_none(identifier)
        return means

    def _header_place(self, place: Segment, times: Sequence[Segment],
                      declaration: dict[str, Any]) -> None:
        qualifier = place.value(0)
        if qualifier == LOADING:
            declaration["loading_location"] = {
                "id": location(place), "loading_date": None,
                "loading_date_time": time_of(times, DEPARTURE_ESTIMATED)}
        elif qualifier == DISCHARGE:
            declaration["unloading_location"] = {
                "id": location(place), "arrival_date": None,
                "arrival_date_time": time_of(times, ARRIVAL_ESTIMATED)}

    def _consignment(self, number: int, segments: Sequence[Segment]) -> dict[str, Any]:
        cni = segments[0]
        if cni.value(0) != str(number):
            raise refused(SEQUENCE, cni, "1490", f"must be {number}: the consignments are "
                          "numbered 1, 2, 3 and on, in message order")
        own, groups = split_groups(segments[1:], "EQD", "GID")
        consignment = CONSIGNMENT()
        master, house = _documents(cni, own)
        consignment["transport_contract_document"] = {**CONTRACT(), "id": master}
        consignment["associated_transport_document_id"] = house
        for qualifier, role in PARTIES.items():
            nad = qualified(own, "NAD", qualifier)
            consignment[role] = None if nad is None else _party(nad)
        for place, _ in places(own):
            _consignment_place(place, consignment)
        for group in groups:
            if group[0].tag == "EQD":
                consignment["transport_equipment"].append(_equipment(group))
            else:
                consignment["items"].append(
                    _item(len(consignment["items"]) + 1, group))
        _totals(own, consignment)
        return consignment


def _message_version(message: Message) -> str:
    identifier = message.identifier
    parts = [identifier.version, identifier.release, identifier.agency]
    if identifier.association:
        parts.append(identifier.association)
    return ":".join(parts)


def _main_carriage(segments: Sequence[Segment]) -> Segment | None:
    return qualified(segments, "TDT", MAIN_CARRIAGE)


def _consignment_place(place: Segment, consignment: dict[str, Any]) -> None:
    qualifier = place.value(0)
    if qualifier == LOADING:
        consignment["loading_location"] = {"id": location(place), "loading_date": None,
                                           "loading_date_time": None}
    elif qualifier == DISCHARGE:
        consignment["unloading_location"] = {"id": location(place), "arrival_date": None,
                                             "arrival_date_time": None}
    elif qualifier == TRANSHIPMENT:
        consignment["transhipment_location_id"] = location(place)


def _documents(cni: Segment, own: Sequence[Segment]) -> tuple[str, str | None]:
    """The master transport document (RFF+BM, else the CNI's document number) and the house
    one (RFF+BH, else the CNI's document number when it is not the master's)."""
    number = cni.value(1)
    master_rff, house_rff = qualified(own, "RFF", "BM"), qualified(own, "RFF", "BH")
    master = master_rff.value(0, 1) if master_rff is not None else number
    if not master:
        raise refused(REQUIRED, cni, "C503 1004", "the transport document number is required")
    if house_rff is not None:
        return master, text_or_none(house_rff.value(0, 1))
    return master, number if number and number != master else None


def _party(nad: Segment) -> dict[str, Any]:
    party = PARTY()
    party["id"] = text_or_none(nad.value(1))
    party["name"] = joined(nad, 3)
    address = {**ADDRESS(), "line": joined(nad, 4), "city_name": text_or_none(nad.value(5)),
               "country_sub_entity_id": text_or_none(nad.value(6)),
               "postcode_id": text_or_none(nad.value(7)),
               "country_code": text_or_none(nad.value(8))}
    party["address"] = address if any(v is not None for v in address.values()) else None
    return party


def _equipment(group: Sequence[Segment]) -> dict[str, Any]:
    eqd = group[0]
    number = eqd.value(1)
    if not number:
        raise refused(REQUIRED, eqd, "C237 8260", "the equipment identification is required")
    if eqd.value(0) == CONTAINER and not is_valid_container_number(number):
        raise refused("RULE_CONTAINER_CHECK_DIGIT", eqd, "C237 8260",
                      CONTAINER_CHECK_DIGIT_RULE)
    seals = [{"value": sel.value(0), "agency_code": text_or_none(sel.value(1))}
             for sel in group[1:] if sel.tag == "SEL" and sel.value(0)]
    return {**EQUIPMENT(), "id": number, "characteristic_code": text_or_none(eqd.value(2)),
            "fullness_code": text_or_none(eqd.value(5)), "seals": seals}


def _item(number: int, group: Sequence[Segment]) -> dict[str, Any]:
    gid = group[0]
    if gid.value(0) != str(number):
        raise refused(SEQUENCE, gid, "1496", f"must be {number}: the goods items of a "
                      "consignment are numbered 1, 2, 3 and on")
    item = ITEM()
    item["sequence_numeric"] = gid.value(0)
    count = decimal(gid, 1, 0, "C213 7224")
    item["package_quantity"] = None if count is None else {
        "value": count, "unit_code": text_or_none(gid.value(1, 1))}
    commodity = {**COMMODITY(), "cargo_description": _description(group),
                 "classification_id": _hs_code(group)}
    item["commodity"] = commodity if any(v is not None for v in commodity.values()) else None
    weight = _qualified_measure(group)
    item["gross_mass"] = None if weight is None else {
        "value": required_decimal(weight, 2, 1, "C174 6314"),
        "unit_code": text_or_none(weight.value(2))}
    return item


def _description(group: Sequence[Segment]) -> str | None:
    ftx = qualified(group, "FTX", "AAA")
    return None if ftx is None else joined(ftx, 3)


def _hs_code(group: Sequence[Segment]) -> str | None:
    pia = next((p for p in group if p.tag == "PIA" and p.value(1, 1) == "HS"), None)
    return None if pia is None else text_or_none(pia.value(1))


def _qualified_measure(group: Sequence[Segment]) -> Segment | None:
    return next((m for m in group if m.tag == "MEA" and m.value(0) == "AAE"
                 and m.value(1) == "G"), None)


def _totals(own: Sequence[Segment], consignment: dict[str, Any]) -> None:
    """CNT+7 (gross weight) and CNT+11 (packages) are kept, and must be the sums over the
    goods items when every item states its own."""
    items = consignment["items"]
    for qualifier, field, item_field in (
        (GROSS_WEIGHT_TOTAL, "total_gross_mass", "gross_mass"),
        (PACKAGES_TOTAL, "total_package_quantity", "package_quantity"),
    ):
        cnt = qualified(own, "CNT", qualifier)
        if cnt is None:
            continue
        total = required_decimal(cnt, 0, 1, "C270 6066")
        consignment[field] = {"value": total, "unit_code": text_or_none(cnt.value(0, 2))}
        measures = [item[item_field] for item in items]
        stated = bool(items) and all(m is not None for m in measures)
        if stated and sum((m["value"] for m in measures), Decimal(0)) != total:
            raise refused(TOTALS, cnt, "C270 6066", "is not the sum over the goods items "
                          f"({'MEA+AAE+G' if qualifier == GROSS_WEIGHT_TOTAL else 'GID'})")


# ---------------------------------------------------------------- canonical record -> CUSCAR


def _render(record: Mapping[str, Any], version: int) -> bytes:
    head, declaration = record["head"], record["declaration"]
    if head["message_type"] != MESSAGE_TYPE:
        raise ValueError("head.message_type is not CUSCAR")
    if head["send_time"]["digits"] != 12:
        raise ValueError("head.send_time is not a local time to the minute")
    envelope = Envelope(head["sender_id"], head["receiver_id"], local_moment(head["send_time"]),
                        head["message_id"], MESSAGE_TYPE, head["version"])
    return interchange_bytes(envelope, _body(declaration, head["function_code"], version))


def _body(declaration: Mapping[str, Any], function: str, version: int) -> Iterator[Segment]:
    document = (declaration["id"], str(version) if version != 1 else None)
    yield segment("BGM", DOCUMENT_NAME, document, function)
    yield from _transport(declaration)
    for number, consignment in enumerate(declaration["consignments"], start=1):
        yield from _consignment_segments(number, consignment)


def _transport(declaration: Mapping[str, Any]) -> Iterator[Segment]:
    means = declaration["transport_means"]
    vessel = (means["id"], IMO_LIST if _is_imo(means["id"]) else None, None, means["name"])
    yield segment("TDT", MAIN_CARRIAGE, means["journey_id"], means["type_code"], None,
                  declaration["carrier_id"], None, None, vessel)
    loading, unloading = declaration["loading_location"], declaration["unloading_location"]
    if loading is not None:
        yield from _place_segments(LOADING, loading["id"], DEPARTURE_ESTIMATED,
                                   loading["loading_date_time"])
    if unloading is not None:
        yield from _place_segments(DISCHARGE, unloading["id"], ARRIVAL_ESTIMATED,
                                   unloading["arrival_date_time"])


def _is_imo(identifier: str | None) -> bool:
    return identifier is not None and is_valid_imo_number(identifier)


def _place_segments(qualifier: str, code: str, time_qualifier: str,
                    time: Mapping[str, Any] | None) -> Iterator[Segment]:
    yield segment("LOC", qualifier, (code, "139", "6"))
    if time is not None:
        yield date_time_segment(time_qualifier, time)


def _consignment_segments(number: int, consignment: Mapping[str, Any]) -> Iterator[Segment]:
    master = consignment["transport_contract_document"]["id"]
    house = consignment["associated_transport_document_id"]
    yield segment("CNI", str(number), master)
    if house is not None:
        yield segment("RFF", ("BM", master))
        yield segment("RFF", ("BH", house))
    for qualifier, field in ((GROSS_WEIGHT_TOTAL, "total_gross_mass"),
                             (PACKAGES_TOTAL, "total_package_quantity")):
        measure = consignment[field]
        if measure is not None:
            yield segment("CNT", (qualifier, format_number(measure["value"]),
                                  measure["unit_code"]))
    for qualifier, field in ((LOADING, "loading_location"), (DISCHARGE, "unloading_location")):
        place = consignment[field]
        if place is not None:
            yield segment("LOC", qualifier, (place["id"], "139", "6"))
    if consignment["transhipment_location_id"] is not None:
        yield segment("LOC", TRANSHIPMENT, (consignment["transhipment_location_id"], "139", "6"))
    for qualifier, role in PARTIES.items():
        if consignment[role] is not None:
            yield _party_segment(qualifier, consignment[role])
    for equipment in consignment["transport_equipment"]:
        yield from _equipment_segments(equipment)
    for item in consignment["items"]:
        yield from _item_segments(item)


def _party_segment(qualifier: str, party: Mapping[str, Any]) -> Segment:
    address = party["address"] or {}
    return segment("NAD", qualifier, party["id"], None, lines(party["name"], 35, 5),
                   lines(address.get("line"), 35, 4), address.get("city_name"),
                   address.get("country_sub_entity_id"), address.get("postcode_id"),
                   address.get("country_code"))


def _equipment_segments(equipment: Mapping[str, Any]) -> Iterator[Segment]:
    yield segment("EQD", CONTAINER, equipment["id"], equipment["characteristic_code"], None,
                  None, equipment["fullness_code"])
    for seal in equipment["seals"]:
        yield segment("SEL", seal["value"], seal["agency_code"])


def _item_segments(item: Mapping[str, Any]) -> Iterator[Segment]:
    packages = item["package_quantity"]
    count = None if packages is None else (format_number(packages["value"]),
                                           packages["unit_code"])
    yield segment("GID", item["sequence_numeric"], count)
    commodity = item["commodity"] or {}
    if commodity.get("cargo_description") is not None:
        yield segment("FTX", "AAA", None, None, lines(commodity["cargo_description"], 70, 5))
    if commodity.get("classification_id") is not None:
        yield segment("PIA", "5", (commodity["classification_id"], "HS"))
    weight = item["gross_mass"]
    if weight is not None:
        yield segment("MEA", "AAE", "G", (weight["unit_code"], format_number(weight["value"])))

