"""Customs cargo manifest (舱单) as a carrier files it with China Customs, as XML in namespace
urn:px:customs:manifest:1 ("manifest-xml")."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from lxml import etree

from .fal1 import IMO_CHECK_DIGIT_RULE, is_valid_imo_number
from .fal2 import CONTAINER_CHECK_DIGIT_RULE, HS_CODE_RULE, KILOGRAMS, is_valid_hs_code
from .fal7 import DANGEROUS_GOODS_LIST, UN_NUMBER_CLASS_RULE, unknown_un_number_warning
from .iso6346 import is_valid_container_number
from .toolkit import (
    Children,
    XmlAdapter,
    add_optional_text,
    add_text,
    add_texts,
    field_path,
    format_decimal,
    format_instant_field,
    format_int,
    instant_fields,
    list_field,
    new_root,
    nth,
    read_decimal,
    token,
    violation,
)

NAMESPACE = "urn:px:customs:manifest:1"
XSD_NAME = "manifest"


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("CargoManifest")
DOCUMENT_NUMBER = _tag("DocumentNumber")
TRANSPORT_MEANS = _tag("TransportMeans")
VESSEL_NAME = _tag("VesselName")
IMO_NUMBER = _tag("ImoNumber")
CALL_SIGN = _tag("CallSign")
VOYAGE_NUMBER = _tag("VoyageNumber")
NATIONALITY = _tag("Nationality")
CUSTOMS_CODE = _tag("CustomsCode")
PORT_OF_LOADING = _tag("PortOfLoading")
LOADING_DATE_TIME = _tag("LoadingDateTime")
PORT_OF_DISCHARGE = _tag("PortOfDischarge")
DISCHARGE_DATE_TIME = _tag("DischargeDateTime")
BILL_OF_LADING = _tag("BillOfLading")
MASTER_BILL_NUMBER = _tag("MasterBillNumber")
HOUSE_BILL_NUMBER = _tag("HouseBillNumber")
CONSIGNOR = _tag("Consignor")
CONSIGNEE = _tag("Consignee")
NOTIFY_PARTY = _tag("NotifyParty")
NAME = _tag("Name")
ADDRESS = _tag("Address")
COUNTRY = _tag("Country")
ENTERPRISE_CODE = _tag("EnterpriseCode")
TOTAL_NUMBER_OF_PACKAGES = _tag("TotalNumberOfPackages")
KIND_OF_PACKAGES = _tag("KindOfPackages")
TOTAL_GROSS_WEIGHT = _tag("TotalGrossWeight")
CONTAINER = _tag("Container")
CONTAINER_NUMBER = _tag("ContainerNumber")
SIZE_TYPE = _tag("SizeType")
SEAL_NUMBER = _tag("SealNumber")
FULL_OR_EMPTY = _tag("FullOrEmpty")
GOODS_ITEM = _tag("GoodsItem")
SEQUENCE_NUMBER = _tag("SequenceNumber")
DESCRIPTION = _tag("Description")
HS_CODE = _tag("HsCode")
NUMBER_OF_PACKAGES = _tag("NumberOfPackages")
GROSS_WEIGHT = _tag("GrossWeight")
UN_NUMBER = _tag("UnNumber")
DANGEROUS_GOODS_CLASS = _tag("DangerousGoodsClass")


def business_key(record: Mapping[str, Any]) -> str:
    """IMO number, voyage and customs district: one manifest per voyage and district, stable
    across its amendments."""
    means = record["transport_means"]
    return f"{means['imo_number']}:{means['voyage_number']}:{record['customs_code']}"


class CustomsManifestAdapter(XmlAdapter):
    format_id = "manifest-xml"
    document_type = "manifest"
    schema_name = "px.canonical.CustomsCargoManifest"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "cargo manifest"
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
        "transport_means": _read_transport_means(children.next()),
        "customs_code": children.text(),
        "port_of_loading": children.text(),
        **instant_fields(children.text(), "loading_date_time"),
        "port_of_discharge": children.text(),
        **instant_fields(children.text(), "discharge_date_time"),
        "bills_of_lading": [_read_bill(e) for e in children.repeated(BILL_OF_LADING)],
    }


def _read_transport_means(means: etree._Element) -> dict[str, Any]:
    children = Children(means)
    return {
        "vessel_name": token(children.text()),
        "imo_number": children.text(),
        "call_sign": children.optional_text(CALL_SIGN),
        "voyage_number": children.text(),
        "nationality": children.text(),
    }


def _read_bill(bill: etree._Element) -> dict[str, Any]:
    children = Children(bill)
    return {
        "master_bill_number": children.text(),
        "house_bill_number": children.optional_text(HOUSE_BILL_NUMBER),
        "consignor": _read_party(children.next()),
        "consignee": _read_party(children.next()),
        "notify_party": _read_optional_party(children.optional(NOTIFY_PARTY)),
        "total_number_of_packages": int(children.text()),
        "kind_of_packages": children.text(),
        "total_gross_weight_kg": read_decimal(children.text(), KILOGRAMS),
        "containers": [_read_container(e) for e in children.repeated(CONTAINER)],
        "goods_items": [_read_goods_item(e) for e in children.repeated(GOODS_ITEM)],
    }


def _read_party(party: etree._Element) -> dict[str, Any]:
    children = Children(party)
    return {
        "name": token(children.text()),
        "address": token(children.text()),
        "country": children.text(),
        "enterprise_code": children.optional_text(ENTERPRISE_CODE),
    }


def _read_optional_party(party: etree._Element | None) -> dict[str, Any] | None:
    return None if party is None else _read_party(party)


def _read_container(container: etree._Element) -> dict[str, Any]:
    children = Children(container)
    return {
        "container_number": children.text(),
        "size_type": children.text(),
        "seal_numbers": children.repeated_text(SEAL_NUMBER),
        "full_or_empty": children.text(),
    }


def _read_goods_item(item: etree._Element) -> dict[str, Any]:
    children = Children(item)
    return {
        "sequence_number": int(children.text()),
        "description": token(children.text()),
        "hs_code": children.optional_text(HS_CODE),
        "number_of_packages": int(children.text()),
        "kind_of_packages": children.text(),
        "gross_weight_kg": read_decimal(children.text(), KILOGRAMS),
        "un_number": children.optional_text(UN_NUMBER),
        "imdg_class": children.optional_text(DANGEROUS_GOODS_CLASS),
        "container_numbers": children.repeated_text(CONTAINER_NUMBER),
    }


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    if not is_valid_imo_number(record["transport_means"]["imo_number"]):
        raise violation(
            "RULE_IMO_CHECK_DIGIT", IMO_CHECK_DIGIT_RULE, root, TRANSPORT_MEANS, IMO_NUMBER
        )
    bills = record["bills_of_lading"]
    _check_containers(bills, root)
    _check_hs_codes(bills, root)
    _check_sequence_numbers(bills, root)
    _check_totals(bills, root)
    if record["discharge_date_time"] <= record["loading_date_time"]:
        raise violation(
            "RULE_DATES_ORDER",
            f"the arrival at the port of discharge is not after the loading "
            f"({field_path(LOADING_DATE_TIME)})",
            root,
            DISCHARGE_DATE_TIME,
        )
    _check_dangerous_goods(bills, root)
    _check_container_references(bills, root)


def _check_containers(bills: list[dict[str, Any]], root: etree._Element) -> None:
    for i, bill in enumerate(bills):
        for j, container in enumerate(bill["containers"]):
            number = container["container_number"]
            if not is_valid_container_number(number):
                raise violation(
                    "RULE_CONTAINER_CHECK_DIGIT",
                    CONTAINER_CHECK_DIGIT_RULE,
                    root,
                    nth(BILL_OF_LADING, i),
                    nth(CONTAINER, j),
                    CONTAINER_NUMBER,
                )


def _check_hs_codes(bills: list[dict[str, Any]], root: etree._Element) -> None:
    for i, bill in enumerate(bills):
        for j, item in enumerate(bill["goods_items"]):
            code = item["hs_code"]
            if code is not None and not is_valid_hs_code(code):
                raise violation(
                    "RULE_HS_CODE",
                    HS_CODE_RULE,
                    root,
                    nth(BILL_OF_LADING, i),
                    nth(GOODS_ITEM, j),
                    HS_CODE,
                )


def _check_sequence_numbers(bills: list[dict[str, Any]], root: etree._Element) -> None:
    for i, bill in enumerate(bills):
        for j, item in enumerate(bill["goods_items"]):
            if item["sequence_number"] != j + 1:
                raise violation(
                    "RULE_SEQUENCE",
                    f"must be {j + 1}: the goods items of a bill are numbered 1, 2, 3 and on, "
                    "in document order",
                    root,
                    nth(BILL_OF_LADING, i),
                    nth(GOODS_ITEM, j),
                    SEQUENCE_NUMBER,
                )


def _check_totals(bills: list[dict[str, Any]], root: etree._Element) -> None:
    for i, bill in enumerate(bills):
        items = bill["goods_items"]
        packages = sum(item["number_of_packages"] for item in items)
        if bill["total_number_of_packages"] != packages:
            raise violation(
                "RULE_TOTALS",
                f"is not the sum of the goods items' {field_path(NUMBER_OF_PACKAGES)}",
                root,
                nth(BILL_OF_LADING, i),
                TOTAL_NUMBER_OF_PACKAGES,
            )
        weight = sum((item["gross_weight_kg"] for item in items), Decimal(0))
        if bill["total_gross_weight_kg"] != weight:
            raise violation(
                "RULE_TOTALS",
                f"is not the sum of the goods items' {field_path(GROSS_WEIGHT)}",
                root,
                nth(BILL_OF_LADING, i),
                TOTAL_GROSS_WEIGHT,
            )


def _check_dangerous_goods(bills: list[dict[str, Any]], root: etree._Element) -> None:
    """A dangerous goods item states both its UN number and its class, and they agree with
    the Dangerous Goods List where the UN number is in the built-in excerpt."""
    for i, bill in enumerate(bills):
        for j, item in enumerate(bill["goods_items"]):
            un_number, imdg_class = item["un_number"], item["imdg_class"]
            if (un_number is None) != (imdg_class is None):
                present = UN_NUMBER if un_number is not None else DANGEROUS_GOODS_CLASS
                raise violation(
                    "RULE_CONDITIONAL",
                    f"dangerous goods need both {field_path(UN_NUMBER)} and "
                    f"{field_path(DANGEROUS_GOODS_CLASS)}",
                    root,
                    nth(BILL_OF_LADING, i),
                    nth(GOODS_ITEM, j),
                    present,
                )
            entry = None if un_number is None else DANGEROUS_GOODS_LIST.get(un_number)
            if entry is not None and not entry.allows_class(imdg_class):
                raise violation(
                    "RULE_UN_NUMBER_CLASS",
                    UN_NUMBER_CLASS_RULE,
                    root,
                    nth(BILL_OF_LADING, i),
                    nth(GOODS_ITEM, j),
                    DANGEROUS_GOODS_CLASS,
                )


def _check_container_references(bills: list[dict[str, Any]], root: etree._Element) -> None:
    """Goods are in containers declared on the same bill, and not in an empty one."""
    for i, bill in enumerate(bills):
        fullness = {c["container_number"]: c["full_or_empty"] for c in bill["containers"]}
        for j, item in enumerate(bill["goods_items"]):
            for k, number in enumerate(item["container_numbers"]):
                state = fullness.get(number)
                if state == "Full":
                    continue
                code, problem = (
                    ("RULE_CONTAINER_REFERENCE", "names no container of the bill")
                    if state is None
                    else ("RULE_CONDITIONAL", "names a container the bill declares empty")
                )
                raise violation(
                    code,
                    problem,
                    root,
                    nth(BILL_OF_LADING, i),
                    nth(GOODS_ITEM, j),
                    nth(CONTAINER_NUMBER, k),
                )


def _warnings(record: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        unknown_un_number_warning(field_path(nth(BILL_OF_LADING, i), nth(GOODS_ITEM, j),
                                             UN_NUMBER))
        for i, bill in enumerate(record["bills_of_lading"])
        for j, item in enumerate(bill["goods_items"])
        if item["un_number"] is not None and item["un_number"] not in DANGEROUS_GOODS_LIST
    )


# ---------------------------------------------------------------- canonical record -> XML


def _build_manifest(record: Mapping[str, Any], version: int) -> etree._Element:
    root = new_root(ROOT, NAMESPACE, version)
    add_text(root, DOCUMENT_NUMBER, record["document_number"])
    _build_transport_means(etree.SubElement(root, TRANSPORT_MEANS), record["transport_means"])
    add_text(root, CUSTOMS_CODE, record["customs_code"])
    add_text(root, PORT_OF_LOADING, record["port_of_loading"])
    add_text(root, LOADING_DATE_TIME, format_instant_field(record, "loading_date_time"))
    add_text(root, PORT_OF_DISCHARGE, record["port_of_discharge"])
    add_text(root, DISCHARGE_DATE_TIME, format_instant_field(record, "discharge_date_time"))
    for bill in list_field(record["bills_of_lading"]):
        _build_bill(etree.SubElement(root, BILL_OF_LADING), bill)
    return root


def _build_transport_means(element: etree._Element, means: Mapping[str, Any]) -> None:
    add_text(element, VESSEL_NAME, means["vessel_name"])
    add_text(element, IMO_NUMBER, means["imo_number"])
    add_optional_text(element, CALL_SIGN, means.get("call_sign"))
    add_text(element, VOYAGE_NUMBER, means["voyage_number"])
    add_text(element, NATIONALITY, means["nationality"])


def _build_bill(element: etree._Element, bill: Mapping[str, Any]) -> None:
    add_text(element, MASTER_BILL_NUMBER, bill["master_bill_number"])
    add_optional_text(element, HOUSE_BILL_NUMBER, bill.get("house_bill_number"))
    _build_party(etree.SubElement(element, CONSIGNOR), bill["consignor"])
    _build_party(etree.SubElement(element, CONSIGNEE), bill["consignee"])
    notify_party = bill.get("notify_party")
    if notify_party is not None:
        _build_party(etree.SubElement(element, NOTIFY_PARTY), notify_party)
    add_text(element, TOTAL_NUMBER_OF_PACKAGES, format_int(bill["total_number_of_packages"]))
    add_text(element, KIND_OF_PACKAGES, bill["kind_of_packages"])
    add_text(element, TOTAL_GROSS_WEIGHT, format_decimal(bill["total_gross_weight_kg"], KILOGRAMS))
    for container in list_field(bill["containers"]):
        _build_container(etree.SubElement(element, CONTAINER), container)
    for item in list_field(bill["goods_items"]):
        _build_goods_item(etree.SubElement(element, GOODS_ITEM), item)


def _build_party(element: etree._Element, party: Mapping[str, Any]) -> None:
    add_text(element, NAME, party["name"])
    add_text(element, ADDRESS, party["address"])
    add_text(element, COUNTRY, party["country"])
    add_optional_text(element, ENTERPRISE_CODE, party.get("enterprise_code"))


def _build_container(element: etree._Element, container: Mapping[str, Any]) -> None:
    add_text(element, CONTAINER_NUMBER, container["container_number"])
    add_text(element, SIZE_TYPE, container["size_type"])
    add_texts(element, SEAL_NUMBER, container["seal_numbers"])
    add_text(element, FULL_OR_EMPTY, container["full_or_empty"])


def _build_goods_item(element: etree._Element, item: Mapping[str, Any]) -> None:
    add_text(element, SEQUENCE_NUMBER, format_int(item["sequence_number"]))
    add_text(element, DESCRIPTION, item["description"])
    add_optional_text(element, HS_CODE, item.get("hs_code"))
    add_text(element, NUMBER_OF_PACKAGES, format_int(item["number_of_packages"]))
    add_text(element, KIND_OF_PACKAGES, item["kind_of_packages"])
    add_text(element, GROSS_WEIGHT, format_decimal(item["gross_weight_kg"], KILOGRAMS))
    add_optional_text(element, UN_NUMBER, item.get("un_number"))
    add_optional_text(element, DANGEROUS_GOODS_CLASS, item.get("imdg_class"))
    add_texts(element, CONTAINER_NUMBER, item["container_numbers"])
