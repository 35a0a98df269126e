"""UN/EDIFACT IFTMIN, the instruction a shipper or forwarder gives a carrier (booking and
shipping instructions; directories D.99B, D.00B and later, association codes such as 2.1),
read into px.canonical.MultimodalWaybill and rendered back ("iftmin-edifact";
docs/adapters.md, "IFTMIN").

An instruction is given before the carriage: the waybill it describes is booked, or cancelled
when the message function (BGM 1225) is 1. Its times are the sender's wall clock (EDIFACT
writes no zone), kept as the legs' planned_*_date (a date alone) or planned_*_local_time;
what IFTMIN does not carry (the operator's Chinese credit code, the actual times, charges, the
fields DCSA eBL and Cargo-XML bring) stays null or empty.

The message, as read (groups by their trigger segment; others are passed by):
  BGM 1004 waybill number [C106 1056 version] 1225 function;  FTX+AAI remarks
  TDT leg: 8067 mode, C040 carrier;  LOC+9 origin + DTM+133, LOC+11 destination + DTM+132
  NAD+CZ consignor, +CN consignee, +CA operator (the carrier instructed); CTA contact
  GID+n cargo item: packages C213, FTX+AAA description, MEA gross weight (KGM) and volume (MTQ)
  EQD+CN container, size-type;  SEL seals
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from message_formats.edifact import Interchange, Message, Segment, segment

from .base import ParseResult
from .edi_text import (
    NUMBER,
    REQUIRED,
    UNDATED,
    EdifactAdapter,
    Envelope,
    bgm_version,
    date_time_segment,
    first,
    format_number,
    interchange_bytes,
    joined,
    lines,
    local_value,
    location,
    places,
    qualified,
    refused,
    required_decimal,
    split_groups,
    text_or_none,
    time_of,
)
from .fal2 import CONTAINER_CHECK_DIGIT_RULE, CUBIC_METRES, KILOGRAMS
from .iso6346 import is_valid_container_number
from .waybill import business_key, with_defaults

MESSAGE_TYPE = "IFTMIN"
MODES = {"1": "sea", "2": "rail", "3": "road", "4": "air", "8": "inland_water"}
MODE_CODES = {mode: code for code, mode in MODES.items()}
CANCELLATION, ORIGINAL = "1", "9"
SHIPPING_INSTRUCTIONS = "340"  # UNCL 1001, what render writes in BGM
LOADING, DISCHARGE = "9", "11"
DEPARTURE_ESTIMATED, ARRIVAL_ESTIMATED = "133", "132"
CONTAINER = "CN"
GROUPS = ("TDT", "NAD", "GID", "EQD")
GROSS_WEIGHTS, VOLUMES = frozenset({"G", "AAB"}), frozenset({"AAW"})
KILOGRAM, CUBIC_METRE = "KGM", "MTQ"
MAIN_CARRIAGE = "20"  # TDT 8051, written for every leg: the record keeps no stage
# The record keeps no interchange envelope: render addresses it from the gateway, undated;
# the delivery that sends it knows its recipient and time.
GATEWAY_ID = "PORTGW"

TRANSPORT_MODE = "RULE_TRANSPORT_MODE"
SEQUENCE = "RULE_SEQUENCE"
UNIT = "RULE_UNIT_OF_MEASURE"


class IftminAdapter(EdifactAdapter):
    format_id = "iftmin-edifact"
    document_type = "waybill"
    schema_name = "px.canonical.MultimodalWaybill"
    edifact_message_types: ClassVar[frozenset[str]] = frozenset({MESSAGE_TYPE})
    label = MESSAGE_TYPE
    cannot_carry = ("actual times, instants, charges, a credit code, or an in-transit or "
                    "delivered status")
    __slots__ = ()

    @staticmethod
    def read(interchange: Interchange, message: Message) -> ParseResult:
        record, version = _read(message)
        return ParseResult(record, business_key(record), version)

    @staticmethod
    def write(record: Mapping[str, Any], version: int) -> bytes:
        return _render(record, version)


# ---------------------------------------------------------------- IFTMIN -> canonical record


def _read(message: Message) -> tuple[dict[str, Any], int]:
    header, groups = split_groups(message.body(), *GROUPS)
    bgm = first(header, "BGM")
    if bgm is None or not bgm.value(1):
        raise refused(REQUIRED, bgm or message.segments[0], "BGM 1004", "the waybill "
                      "(document) number is required")
    version = bgm_version(bgm)
    by_tag = {tag: [g for g in groups if g[0].tag == tag] for tag in GROUPS}
    parties = {g[0].value(0): g for g in by_tag["NAD"]}
    remarks = qualified(header, "FTX", "AAI")
    record = {
        "waybill_number": bgm.value(1),
        "status": "cancelled" if bgm.value(2) == CANCELLATION else "booked",
        "operator": {"name": _party_name(parties, "CA", message),
                     "unified_social_credit_code": None},
        "consignor": _party(parties, "CZ", message),
        "consignee": _party(parties, "CN", message),
        "legs": [_leg(n, g) for n, g in enumerate(by_tag["TDT"], start=1)],
        "containers": [_container(g) for g in by_tag["EQD"]],
        "cargo_items": [_cargo(n, g) for n, g in enumerate(by_tag["GID"], start=1)],
        "charges": [],
        "remarks": None if remarks is None else joined(remarks, 3),
    }
    for field, tag in (("legs", "TDT"), ("containers", "EQD"), ("cargo_items", "GID")):
        if not record[field]:
            raise refused(REQUIRED, message.segments[-1], tag, f"a waybill has at least one "
                          f"{field.replace('_', ' ')[:-1]} ({tag} group)")
    return with_defaults(record), version


def _party_group(parties: Mapping[str, Sequence[Segment]], qualifier: str,
                 message: Message) -> Sequence[Segment]:
    group = parties.get(qualifier)
    if group is None:
        raise refused(REQUIRED, message.segments[-1], f"NAD+{qualifier}", "the party is "
                      "required")
    return group


def _party_name(parties: Mapping[str, Sequence[Segment]], qualifier: str,
                message: Message) -> str:
    nad = _party_group(parties, qualifier, message)[0]
    name = joined(nad, 3)
    if name is None:
        raise refused(REQUIRED, nad, "C080 3036", "the party's name is required")
    return name


def _party(parties: Mapping[str, Sequence[Segment]], qualifier: str,
           message: Message) -> dict[str, Any]:
    contact = first(_party_group(parties, qualifier, message), "CTA")
    return {"name": _party_name(parties, qualifier, message),
            "contact": None if contact is None else text_or_none(contact.value(1, 1))}


def _leg(number: int, group: Sequence[Segment]) -> dict[str, Any]:
    tdt = group[0]
    mode = MODES.get(tdt.value(2))
    if mode is None:
        raise refused(TRANSPORT_MODE, tdt, "C220 8067", "the mode of transport must be 1 "
                      "(maritime), 2 (rail), 3 (road), 4 (air) or 8 (inland water)")
    carrier = tdt.value(4, 3) or tdt.value(4)
    if not carrier:
        raise refused(REQUIRED, tdt, "C040", "the carrier of the leg is required")
    ends = {place.value(0): (place, times) for place, times in places(group)}
    origin, departure = _end(ends, LOADING, DEPARTURE_ESTIMATED, tdt)
    destination, arrival = _end(ends, DISCHARGE, ARRIVAL_ESTIMATED, tdt)
    return {
        "sequence_number": number, "mode": mode, "carrier": carrier,
        "origin": origin, "destination": destination,
        "planned_departure": None, "planned_departure_utc_offset_minutes": None,
        "planned_arrival": None, "planned_arrival_utc_offset_minutes": None,
        **_local("planned_departure", departure), **_local("planned_arrival", arrival),
        "actual_departure": None, "actual_departure_utc_offset_minutes": None,
        "actual_arrival": None, "actual_arrival_utc_offset_minutes": None,
    }


def _local(field: str, text: str | None) -> dict[str, Any]:
    """A zone-less DTM as the waybill keeps it: a date alone as `<field>_date`, a date and
    time as `<field>_local_time` (ISO 8601 text, to the minute or second as written)."""
    is_date = text is not None and "T" not in text
    return {f"{field}_date": date.fromisoformat(text) if is_date and text else None,
            f"{field}_local_time": None if is_date else text}


def _local_text(leg: Mapping[str, Any], field: str) -> str | None:
    """The zone-less time of a leg's `field` as DTM writes it, None when it has none; a leg
    that has it as an instant cannot be written (EDIFACT times carry no zone)."""
    if leg[field] is not None:
        raise ValueError(f"{field} is an instant; IFTMIN writes local times only")
    day: date | None = leg[f"{field}_date"]
    local: str | None = leg[f"{field}_local_time"]
    if day is not None and local is not None:
        raise ValueError(f"{field} is given both as a date and as a local time")
    return day.isoformat() if day is not None else local


def _end(ends: Mapping[str, tuple[Segment, tuple[Segment, ...]]], qualifier: str,
         time_qualifier: str, tdt: Segment) -> tuple[dict[str, Any], str | None]:
    found = ends.get(qualifier)
    if found is None:
        raise refused(REQUIRED, tdt, f"LOC+{qualifier}", "each leg names where it starts "
                      "(LOC+9) and ends (LOC+11)")
    place, times = found
    time = time_of(times, time_qualifier)
    return ({"un_locode": location(place), "station_code": None,
             "name": text_or_none(place.value(1, 3))},
            None if time is None else time["local_date_time"])


def _container(group: Sequence[Segment]) -> dict[str, Any]:
    eqd = group[0]
    number = eqd.value(1)
    if not number:
        raise refused(REQUIRED, eqd, "C237 8260", "the container number is required")
    if not is_valid_container_number(number):
        raise refused("RULE_CONTAINER_CHECK_DIGIT", eqd, "C237 8260",
                      CONTAINER_CHECK_DIGIT_RULE)
    return {"container_number": number, "size_type": text_or_none(eqd.value(2)),
            "seal_numbers": [s.value(0) for s in group[1:] if s.tag == "SEL" and s.value(0)]}


def _cargo(number: int, group: Sequence[Segment]) -> dict[str, Any]:
    gid = group[0]
    if gid.value(0) != str(number):
        raise refused(SEQUENCE, gid, "1496", f"must be {number}: the goods items are "
                      "numbered 1, 2, 3 and on")
    packages = required_decimal(gid, 1, 0, "C213 7224")
    if packages != packages.to_integral_value() or not gid.value(1, 1):
        raise refused(REQUIRED, gid, "C213", "the number (a whole number) and kind of "
                      "packages are required")
    description = qualified(group, "FTX", "AAA")
    text = None if description is None else joined(description, 3)
    if text is None:
        raise refused(REQUIRED, gid, "FTX+AAA", "the description of the goods is required")
    weight = _measure(group, GROSS_WEIGHTS, KILOGRAM, KILOGRAMS)
    if weight is None:
        raise refused(REQUIRED, gid, "MEA gross weight", "the gross weight is required")
    return {"description": text, "number_of_packages": int(packages),
            "kind_of_packages": gid.value(1, 1), "gross_weight_kg": weight,
            "volume_m3": _measure(group, VOLUMES, CUBIC_METRE, CUBIC_METRES)}


def _measure(group: Sequence[Segment], kinds: frozenset[str], unit: str,
             quantum: Decimal) -> Decimal | None:
    """A MEA of the item whose measured attribute (C502 6313) is one of `kinds`, in `unit`
    and at most three decimal places."""
    mea = next((m for m in group if m.tag == "MEA" and m.value(1) in kinds), None)
    if mea is None:
        return None
    if mea.value(2) != unit:
        raise refused(UNIT, mea, "C174 6411", f"the unit must be {unit}")
    value = required_decimal(mea, 2, 1, "C174 6314")
    if value != value.quantize(quantum):
        raise refused(NUMBER, mea, "C174 6314", "has more than three decimal places")
    return value.quantize(quantum)


# ---------------------------------------------------------------- canonical record -> IFTMIN


def _render(record: Mapping[str, Any], version: int) -> bytes:
    if record["status"] not in ("booked", "cancelled"):
        raise ValueError("an instruction is booked or cancelled")
    envelope = Envelope(GATEWAY_ID, GATEWAY_ID, UNDATED, "1", MESSAGE_TYPE, "D:99B:UN")
    return interchange_bytes(envelope, _body(record, version))


def _body(record: Mapping[str, Any], version: int) -> Iterator[Segment]:
    function = CANCELLATION if record["status"] == "cancelled" else ORIGINAL
    yield segment("BGM", SHIPPING_INSTRUCTIONS,
                  (record["waybill_number"], str(version) if version != 1 else None), function)
    if record["remarks"] is not None:
        yield segment("FTX", "AAI", None, None, lines(record["remarks"], 70, 5))
    for leg in record["legs"]:
        yield from _leg_segments(leg)
    yield _party_segment("CZ", record["consignor"]["name"])
    yield from _contact(record["consignor"]["contact"])
    yield _party_segment("CN", record["consignee"]["name"])
    yield from _contact(record["consignee"]["contact"])
    yield _party_segment("CA", record["operator"]["name"])
    for number, item in enumerate(record["cargo_items"], start=1):
        yield from _cargo_segments(number, item)
    for container in record["containers"]:
        yield segment("EQD", CONTAINER, container["container_number"], container["size_type"])
        for seal in container["seal_numbers"]:
            yield segment("SEL", seal)


def _leg_segments(leg: Mapping[str, Any]) -> Iterator[Segment]:
    yield segment("TDT", MAIN_CARRIAGE, None, MODE_CODES[leg["mode"]], None,
                  (None, None, None, leg["carrier"]))
    for qualifier, place, time_qualifier, time in (
        (LOADING, leg["origin"], DEPARTURE_ESTIMATED, _local_text(leg, "planned_departure")),
        (DISCHARGE, leg["destination"], ARRIVAL_ESTIMATED, _local_text(leg, "planned_arrival")),
    ):
        if place["station_code"] is not None:
            raise ValueError("a station code is not a UN/LOCODE")
        yield segment("LOC", qualifier, (place["un_locode"], "139", "6", place["name"]))
        if time is not None:
            yield date_time_segment(time_qualifier, local_value(time))


def _party_segment(qualifier: str, name: str) -> Segment:
    return segment("NAD", qualifier, None, None, lines(name, 35, 5))


def _contact(name: str | None) -> Iterator[Segment]:
    if name is not None:
        yield segment("CTA", "IC", (None, name))


def _cargo_segments(number: int, item: Mapping[str, Any]) -> Iterator[Segment]:
    yield segment("GID", str(number), (str(item["number_of_packages"]),
                                       item["kind_of_packages"]))
    yield segment("FTX", "AAA", None, None, lines(item["description"], 70, 5))
    yield segment("MEA", "WT", "G", (KILOGRAM, format_number(item["gross_weight_kg"])))
    if item["volume_m3"] is not None:
        yield segment("MEA", "VOL", "AAW", (CUBIC_METRE, format_number(item["volume_m3"])))
