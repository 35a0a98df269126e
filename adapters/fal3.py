"""IMO FAL Form 3, Ship's Stores Declaration, as XML in namespace urn:px:fal:3 ("fal3-xml").

Besides the FAL 3 adapter this module holds the quantity helpers the crew's effects
declaration (fal4) shares with it: quantities are decimals at one canonical scale (three
places), as the Avro decimal stores them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .fal1 import business_key
from .fal5 import SharedElements
from .toolkit import (
    Children,
    ItemLines,
    XmlAdapter,
    add_optional_text,
    add_text,
    field_path,
    format_decimal,
    format_int,
    format_optional_int,
    new_root,
    nth,
    optional_int,
    optional_token,
    read_decimal,
    token,
)

NAMESPACE = "urn:px:fal:3"
XSD_NAME = "fal3"

QUANTITY_QUANTUM = Decimal("0.001")


# ---------------------------------------------------------------- shared with FAL 4


def read_quantity(text: str) -> Decimal:
    """An xs:decimal the XSD has limited to three fraction digits, at the canonical scale:
    "12.5" and "12.500" give the same record and the same Avro bytes."""
    return read_decimal(text, QUANTITY_QUANTUM)


def format_quantity(value: Decimal) -> str:
    return format_decimal(value, QUANTITY_QUANTUM)


def first_non_positive(items: Sequence[Mapping[str, Any]]) -> int | None:
    """Index of the first item whose quantity is zero or negative, if any."""
    for index, item in enumerate(items):
        if item["quantity"] <= 0:
            return index
    return None


# ---------------------------------------------------------------- FAL 3


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("ShipStoresDeclaration")
PERSONS_ON_BOARD = _tag("NumberOfPersonsOnBoard")
PERIOD_OF_STAY = _tag("PeriodOfStayDays")
STORES_ARTICLE = _tag("StoresArticle")
ARTICLE_NAME = _tag("ArticleName")
QUANTITY = _tag("Quantity")
UNIT_OF_MEASURE = _tag("UnitOfMeasure")
LOCATION_ON_BOARD = _tag("LocationOnBoard")
OFFICIAL_USE = _tag("OfficialUse")
SHARED = SharedElements.in_namespace(NAMESPACE)


class Fal3Adapter(XmlAdapter):
    format_id = "fal3-xml"
    document_type = "fal3"
    schema_name = "px.canonical.Fal3ShipStoresDeclaration"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "FAL 3"
    __slots__ = ()

    business_key = staticmethod(business_key)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        return _build_declaration(record, version)

    @staticmethod
    def read(root: etree._Element) -> dict[str, Any]:
        return _read_declaration(root)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        _check_rules(record, root)
        return ()


# ---------------------------------------------------------------- XML -> canonical record


def _read_declaration(root: etree._Element) -> dict[str, Any]:
    children = Children(root)
    return {
        **SHARED.read_voyage(children),
        "last_port_of_call": children.optional_text(SHARED.last_port_of_call),
        "next_port_of_call": children.optional_text(SHARED.next_port_of_call),
        "number_of_persons_on_board": int(children.text()),
        "period_of_stay_days": optional_int(children.optional_text(PERIOD_OF_STAY)),
        "articles": [_read_article(article) for article in children.rest()],
    }


def _read_article(article: etree._Element) -> dict[str, Any]:
    children = Children(article)
    return {
        "name": token(children.text()),
        "quantity": read_quantity(children.text()),
        "unit_of_measure": children.text(),
        "location_on_board": token(children.text()),
        "official_use": optional_token(children.optional_text(OFFICIAL_USE)),
    }


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    SHARED.check_imo_number(record, root)
    index = first_non_positive(record["articles"])
    if index is not None:
        raise RuleViolationError(
            f"{field_path(nth(STORES_ARTICLE, index), QUANTITY)}: must be positive",
            code="RULE_STORES_QUANTITY",
            line=ItemLines(root, STORES_ARTICLE).line(index, QUANTITY),
        )


# ---------------------------------------------------------------- canonical record -> XML


def _build_declaration(record: Mapping[str, Any], version: int) -> etree._Element:
    root = new_root(ROOT, NAMESPACE, version)
    SHARED.build_voyage(root, record)
    add_optional_text(root, SHARED.last_port_of_call, record.get("last_port_of_call"))
    add_optional_text(root, SHARED.next_port_of_call, record.get("next_port_of_call"))
    add_text(root, PERSONS_ON_BOARD, format_int(record["number_of_persons_on_board"]))
    add_optional_text(root, PERIOD_OF_STAY, format_optional_int(record.get("period_of_stay_days")))
    for article in record["articles"]:
        _build_article(etree.SubElement(root, STORES_ARTICLE), article)
    return root


def _build_article(element: etree._Element, article: Mapping[str, Any]) -> None:
    add_text(element, ARTICLE_NAME, article["name"])
    add_text(element, QUANTITY, format_quantity(article["quantity"]))
    add_text(element, UNIT_OF_MEASURE, article["unit_of_measure"])
    add_text(element, LOCATION_ON_BOARD, article["location_on_board"])
    add_optional_text(element, OFFICIAL_USE, article.get("official_use"))
