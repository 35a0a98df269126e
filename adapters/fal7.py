"""IMO FAL Form 7, Dangerous Goods Manifest, as XML in namespace urn:px:fal:7 ("fal7-xml").

Also home of the small excerpt of the IMDG Code's Dangerous Goods List that this adapter and
the customs manifest adapter check UN numbers against."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from lxml import etree

from .fal1 import IMO_CHECK_DIGIT_RULE, is_valid_imo_number
from .fal2 import CONTAINER_CHECK_DIGIT_RULE, KILOGRAMS, read_ship, refuse_tonnage
from .iso6346 import is_valid_container_number
from .toolkit import (
    Children,
    XmlAdapter,
    add_optional_text,
    add_text,
    add_texts,
    field_path,
    format_bool,
    format_decimal,
    format_int,
    format_optional_decimal,
    list_field,
    new_root,
    nth,
    optional_decimal,
    optional_token,
    read_bool,
    read_decimal,
    token,
    violation,
)

NAMESPACE = "urn:px:fal:7"
XSD_NAME = "fal7"

CELSIUS = Decimal("0.1")

# ---------------------------------------------------------------- the Dangerous Goods List

# Classes and divisions that sort substances into packing groups I-III. Classes 1, 2, 5.2,
# 6.2 and 7 never have one.
PACKING_GROUP_CLASSES = frozenset({"3", "4.1", "4.2", "4.3", "5.1", "6.1", "8", "9"})
# Self-reactive substances, types B to F (class 4.1), have no packing group either.
_SELF_REACTIVE_UN_NUMBERS = range(3221, 3241)


def division(imdg_class: str) -> str:
    """The class or division without a class 1 compatibility group: "1.4S" -> "1.4"."""
    return imdg_class.rstrip(string.ascii_uppercase)


@dataclass(frozen=True, slots=True)
class DangerousGoodsListEntry:
    """One UN entry of the IMDG Code's Dangerous Goods List, as far as the rules need it:
    the classes or divisions the entry may be shipped under, its packing groups (none for
    articles such as batteries) and whether it is by definition a marine pollutant."""

    un_number: str
    proper_shipping_name: str
    classes: frozenset[str]
    packing_groups: frozenset[str]
    marine_pollutant: bool = False

    def allows_class(self, imdg_class: str) -> bool:
        return division(imdg_class) in self.classes


def _entry(
    un_number: str,
    name: str,
    classes: Iterable[str],
    packing_groups: Iterable[str] = (),
    *,
    marine_pollutant: bool = False,
) -> DangerousGoodsListEntry:
    return DangerousGoodsListEntry(
        un_number, name, frozenset(classes), frozenset(packing_groups), marine_pollutant
    )


# A deliberately small excerpt: the entries most often seen on container manifests in
# Chinese ports. UN numbers outside it pass with a warning rather than an error.
DANGEROUS_GOODS_LIST: Mapping[str, DangerousGoodsListEntry] = MappingProxyType(
    {
        entry.un_number: entry
        for entry in (
            _entry("1005", "AMMONIA, ANHYDROUS", ["2.3"]),
            _entry("1017", "CHLORINE", ["2.3"]),
            _entry("1075", "PETROLEUM GASES, LIQUEFIED", ["2.1"]),
            _entry("1090", "ACETONE", ["3"], ["II"]),
            _entry("1203", "MOTOR SPIRIT (gasoline)", ["3"], ["II"]),
            _entry("1230", "METHANOL", ["3"], ["II"]),
            _entry("1263", "PAINT", ["3"], ["I", "II", "III"]),
            _entry("1402", "CALCIUM CARBIDE", ["4.3"], ["I", "II"]),
            _entry("1648", "ACETONITRILE", ["3"], ["II"]),
            _entry("1789", "HYDROCHLORIC ACID", ["8"], ["II", "III"]),
            _entry("1830", "SULPHURIC ACID", ["8"], ["II"]),
            _entry("1942", "AMMONIUM NITRATE", ["5.1"], ["III"]),
            _entry("1950", "AEROSOLS", ["2.1", "2.2"]),
            _entry("1993", "FLAMMABLE LIQUID, N.O.S.", ["3"], ["I", "II", "III"]),
            _entry("2067", "AMMONIUM NITRATE BASED FERTILIZER", ["5.1"], ["III"]),
            _entry("2211", "POLYMERIC BEADS, EXPANDABLE", ["9"], ["III"]),
            _entry("2794", "BATTERIES, WET, FILLED WITH ACID", ["8"]),
            _entry(
                "3077",
                "ENVIRONMENTALLY HAZARDOUS SUBSTANCE, SOLID, N.O.S.",
                ["9"],
                ["III"],
                marine_pollutant=True,
            ),
            _entry(
                "3082",
                "ENVIRONMENTALLY HAZARDOUS SUBSTANCE, LIQUID, N.O.S.",
                ["9"],
                ["III"],
                marine_pollutant=True,
            ),
            _entry("3090", "LITHIUM METAL BATTERIES", ["9"]),
            _entry("3091", "LITHIUM METAL BATTERIES CONTAINED IN EQUIPMENT", ["9"]),
            _entry("3166", "VEHICLE, FLAMMABLE GAS/LIQUID POWERED", ["9"]),
            _entry("3171", "BATTERY-POWERED VEHICLE", ["9"]),
            _entry("3480", "LITHIUM ION BATTERIES", ["9"]),
            _entry("3481", "LITHIUM ION BATTERIES CONTAINED IN EQUIPMENT", ["9"]),
        )
    }
)


UN_NUMBER_CLASS_RULE = "is not a class the Dangerous Goods List gives the UN number"


def packing_group_required(un_number: str, imdg_class: str) -> bool:
    """Whether an entry must state a packing group: its class sorts into packing groups and
    the entry is not one that has none (known articles, self-reactive substances)."""
    if division(imdg_class) not in PACKING_GROUP_CLASSES:
        return False
    entry = DANGEROUS_GOODS_LIST.get(un_number)
    if entry is not None:
        return bool(entry.packing_groups)
    return int(un_number) not in _SELF_REACTIVE_UN_NUMBERS


def unknown_un_number_warning(where: str) -> str:
    """The warning for a UN number the built-in list lacks; `where` names the field (its
    path), since the number itself is not repeated."""
    return (
        f"WARN_UN_NUMBER_UNKNOWN: {where}: the UN number is not in the built-in excerpt of "
        "the Dangerous Goods List; its class was not checked"
    )


# ---------------------------------------------------------------- format


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("DangerousGoodsManifest")
DOCUMENT_NUMBER = _tag("DocumentNumber")
SHIP = _tag("Ship")
NAME = _tag("Name")
IMO_NUMBER = _tag("ImoNumber")
CALL_SIGN = _tag("CallSign")
FLAG_STATE = _tag("FlagState")
VOYAGE_NUMBER = _tag("VoyageNumber")
PORT_OF_REPORT = _tag("PortOfReport")
PORT_OF_LOADING = _tag("PortOfLoading")
PORT_OF_DISCHARGE = _tag("PortOfDischarge")
MASTER_NAME = _tag("MasterName")
SHIPPING_AGENT = _tag("ShippingAgent")
CONTACT = _tag("Contact")
DANGEROUS_GOODS = _tag("DangerousGoods")
BOOKING_REFERENCE = _tag("BookingReference")
MARKS_AND_NUMBERS = _tag("MarksAndNumbers")
CONTAINER_NUMBER = _tag("ContainerNumber")
VEHICLE_REGISTRATION_NUMBER = _tag("VehicleRegistrationNumber")
STOWAGE_POSITION = _tag("StowagePosition")
NUMBER_OF_PACKAGES = _tag("NumberOfPackages")
KIND_OF_PACKAGES = _tag("KindOfPackages")
PROPER_SHIPPING_NAME = _tag("ProperShippingName")
CLASS = _tag("Class")
UN_NUMBER = _tag("UnNumber")
PACKING_GROUP = _tag("PackingGroup")
SUBSIDIARY_RISK = _tag("SubsidiaryRisk")
FLASH_POINT = _tag("FlashPoint")
MARINE_POLLUTANT = _tag("MarinePollutant")
GROSS_MASS = _tag("GrossMass")
NET_MASS = _tag("NetMass")
EMS = _tag("EmS")
ADDITIONAL_INFORMATION = _tag("AdditionalInformation")


def business_key(record: Mapping[str, Any]) -> str:
    """IMO number, voyage and port of report: stable across versions of one manifest."""
    return f"{record['ship']['imo_number']}:{record['voyage_number']}:{record['port_of_report']}"


class Fal7Adapter(XmlAdapter):
    format_id = "fal7-xml"
    document_type = "fal7"
    schema_name = "px.canonical.Fal7DangerousGoodsManifest"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "FAL 7"
    __slots__ = ()

    business_key = staticmethod(business_key)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        return _build_manifest(record, version)

    @staticmethod
    def read(root: etree._Element) -> dict[str, Any]:
        return _read_manifest(root)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        _check_rules(record, root)
        return _warnings(record)


# ---------------------------------------------------------------- XML -> canonical record

def _read_manifest(root: etree._Element) -> dict[str, Any]:
    children = Children(root)
    return {
        "document_number": token(children.text()),
        "ship": read_ship(children.next()),
        "voyage_number": children.text(),
        "port_of_report": children.text(),
        "port_of_loading": children.text(),
        "port_of_discharge": children.text(),
        "master_name": token(children.text()),
        "shipping_agent": _read_agent(children.next()),
        "dangerous_goods": [_read_goods(e) for e in children.repeated(DANGEROUS_GOODS)],
        "additional_information": optional_token(children.optional_text(ADDITIONAL_INFORMATION)),
    }


def _read_agent(agent: etree._Element) -> dict[str, Any]:
    children = Children(agent)
    return {
        "name": token(children.text()),
        "contact": optional_token(children.optional_text(CONTACT)),
    }


def _read_goods(goods: etree._Element) -> dict[str, Any]:
    children = Children(goods)
    return {
        "booking_reference": token(children.text()),
        "marks_and_numbers": token(children.text()),
        "container_number": children.optional_text(CONTAINER_NUMBER),
        "vehicle_registration_number": optional_token(
            children.optional_text(VEHICLE_REGISTRATION_NUMBER)
        ),
        "stowage_position": token(children.text()),
        "number_of_packages": int(children.text()),
        "kind_of_packages": children.text(),
        "proper_shipping_name": token(children.text()),
        "imdg_class": children.text(),
        "un_number": children.text(),
        "packing_group": children.optional_text(PACKING_GROUP),
        "subsidiary_risks": children.repeated_text(SUBSIDIARY_RISK),
        "flash_point_celsius": optional_decimal(children.optional_text(FLASH_POINT), CELSIUS),
        "marine_pollutant": read_bool(children.text()),
        "gross_mass_kg": read_decimal(children.text(), KILOGRAMS),
        "net_mass_kg": optional_decimal(children.optional_text(NET_MASS), KILOGRAMS),
        "ems": children.text(),
    }


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    if not is_valid_imo_number(record["ship"]["imo_number"]):
        raise violation("RULE_IMO_CHECK_DIGIT", IMO_CHECK_DIGIT_RULE, root, SHIP, IMO_NUMBER)
    goods = record["dangerous_goods"]
    _check_containers(goods, root)
    _check_dangerous_goods_list(goods, root)
    _check_packing_groups(goods, root)
    _check_marine_pollutants(goods, root)
    _check_masses(goods, root)


def _check_containers(goods: list[dict[str, Any]], root: etree._Element) -> None:
    for i, item in enumerate(goods):
        number = item["container_number"]
        if number is not None and not is_valid_container_number(number):
            raise violation(
                "RULE_CONTAINER_CHECK_DIGIT",
                CONTAINER_CHECK_DIGIT_RULE,
                root,
                nth(DANGEROUS_GOODS, i),
                CONTAINER_NUMBER,
            )


def _check_dangerous_goods_list(goods: list[dict[str, Any]], root: etree._Element) -> None:
    """The class, and a stated packing group, must be those the UN entry allows."""
    for i, item in enumerate(goods):
        un_number, imdg_class = item["un_number"], item["imdg_class"]
        entry = DANGEROUS_GOODS_LIST.get(un_number)
        if entry is None:
            continue
        if not entry.allows_class(imdg_class):
            raise violation(
                "RULE_UN_NUMBER_CLASS", UN_NUMBER_CLASS_RULE, root, nth(DANGEROUS_GOODS, i), CLASS
            )
        group = item["packing_group"]
        if group is not None and group not in entry.packing_groups:
            raise violation(
                "RULE_UN_NUMBER_CLASS",
                "is not a packing group the Dangerous Goods List assigns to the UnNumber",
                root,
                nth(DANGEROUS_GOODS, i),
                PACKING_GROUP,
            )


def _check_packing_groups(goods: list[dict[str, Any]], root: etree._Element) -> None:
    for i, item in enumerate(goods):
        un_number, imdg_class, group = item["un_number"], item["imdg_class"], item["packing_group"]
        if group is None and packing_group_required(un_number, imdg_class):
            raise violation(
                "RULE_CONDITIONAL",
                "needs a PackingGroup: the Class is one sorted into packing groups",
                root,
                nth(DANGEROUS_GOODS, i),
                UN_NUMBER,
            )
        if group is not None and division(imdg_class) not in PACKING_GROUP_CLASSES:
            raise violation(
                "RULE_CONDITIONAL",
                "is given, but the Class has no packing groups",
                root,
                nth(DANGEROUS_GOODS, i),
                PACKING_GROUP,
            )


def _check_marine_pollutants(goods: list[dict[str, Any]], root: etree._Element) -> None:
    for i, item in enumerate(goods):
        entry = DANGEROUS_GOODS_LIST.get(item["un_number"])
        if entry is not None and entry.marine_pollutant and not item["marine_pollutant"]:
            raise violation(
                "RULE_CONDITIONAL",
                "must be true: the Dangerous Goods List marks the UnNumber a marine pollutant",
                root,
                nth(DANGEROUS_GOODS, i),
                MARINE_POLLUTANT,
            )


def _check_masses(goods: list[dict[str, Any]], root: etree._Element) -> None:
    for i, item in enumerate(goods):
        net, gross = item["net_mass_kg"], item["gross_mass_kg"]
        if net is not None and net > gross:
            raise violation(
                "RULE_NET_MASS",
                f"is greater than {field_path(GROSS_MASS)}",
                root,
                nth(DANGEROUS_GOODS, i),
                NET_MASS,
            )


def _warnings(record: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        unknown_un_number_warning(field_path(nth(DANGEROUS_GOODS, i), UN_NUMBER))
        for i, item in enumerate(record["dangerous_goods"])
        if item["un_number"] not in DANGEROUS_GOODS_LIST
    )


# ---------------------------------------------------------------- canonical record -> XML


def _build_manifest(record: Mapping[str, Any], version: int) -> etree._Element:
    root = new_root(ROOT, NAMESPACE, version)
    add_text(root, DOCUMENT_NUMBER, record["document_number"])
    _build_ship(etree.SubElement(root, SHIP), record["ship"])
    add_text(root, VOYAGE_NUMBER, record["voyage_number"])
    add_text(root, PORT_OF_REPORT, record["port_of_report"])
    add_text(root, PORT_OF_LOADING, record["port_of_loading"])
    add_text(root, PORT_OF_DISCHARGE, record["port_of_discharge"])
    add_text(root, MASTER_NAME, record["master_name"])
    agent_element = etree.SubElement(root, SHIPPING_AGENT)
    add_text(agent_element, NAME, record["shipping_agent"]["name"])
    add_optional_text(agent_element, CONTACT, record["shipping_agent"].get("contact"))
    for item in list_field(record["dangerous_goods"]):
        _build_goods(etree.SubElement(root, DANGEROUS_GOODS), item)
    add_optional_text(root, ADDITIONAL_INFORMATION, record.get("additional_information"))
    return root


def _build_ship(ship_element: etree._Element, ship: Mapping[str, Any]) -> None:
    refuse_tonnage(ship)
    add_text(ship_element, NAME, ship["name"])
    add_text(ship_element, IMO_NUMBER, ship["imo_number"])
    add_text(ship_element, CALL_SIGN, ship["call_sign"])
    add_text(ship_element, FLAG_STATE, ship["flag_state"])


def _build_goods(element: etree._Element, item: Mapping[str, Any]) -> None:
    add_text(element, BOOKING_REFERENCE, item["booking_reference"])
    add_text(element, MARKS_AND_NUMBERS, item["marks_and_numbers"])
    add_optional_text(element, CONTAINER_NUMBER, item.get("container_number"))
    add_optional_text(element, VEHICLE_REGISTRATION_NUMBER, item.get("vehicle_registration_number"))
    add_text(element, STOWAGE_POSITION, item["stowage_position"])
    add_text(element, NUMBER_OF_PACKAGES, format_int(item["number_of_packages"]))
    add_text(element, KIND_OF_PACKAGES, item["kind_of_packages"])
    add_text(element, PROPER_SHIPPING_NAME, item["proper_shipping_name"])
    add_text(element, CLASS, item["imdg_class"])
    add_text(element, UN_NUMBER, item["un_number"])
    add_optional_text(element, PACKING_GROUP, item.get("packing_group"))
    add_texts(element, SUBSIDIARY_RISK, item["subsidiary_risks"])
    add_optional_text(
        element, FLASH_POINT, format_optional_decimal(item.get("flash_point_celsius"), CELSIUS)
    )
    add_text(element, MARINE_POLLUTANT, format_bool(item["marine_pollutant"]))
    add_text(element, GROSS_MASS, format_decimal(item["gross_mass_kg"], KILOGRAMS))
    add_optional_text(
        element, NET_MASS, format_optional_decimal(item.get("net_mass_kg"), KILOGRAMS)
    )
    add_text(element, EMS, item["ems"])
