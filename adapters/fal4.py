"""IMO FAL Form 4, Crew's Effects Declaration, as XML in namespace urn:px:fal:4 ("fal4-xml").

The voyage block is that of fal5.SharedElements; quantities are read and checked as in the
ship's stores declaration (fal3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .fal1 import business_key
from .fal3 import first_non_positive, format_quantity, read_quantity
from .fal5 import SharedElements
from .toolkit import (
    Children,
    ItemLines,
    XmlAdapter,
    add_optional_text,
    add_text,
    field_path,
    new_root,
    optional_token,
    token,
)

NAMESPACE = "urn:px:fal:4"
XSD_NAME = "fal4"


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("CrewEffectsDeclaration")
CREW_MEMBER = _tag("CrewMember")
EFFECT = _tag("Effect")
DESCRIPTION = _tag("Description")
QUANTITY = _tag("Quantity")
UNIT_OF_MEASURE = _tag("UnitOfMeasure")
SHARED = SharedElements.in_namespace(NAMESPACE)


class Fal4Adapter(XmlAdapter):
    format_id = "fal4-xml"
    document_type = "fal4"
    schema_name = "px.canonical.Fal4CrewEffectsDeclaration"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "FAL 4"
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
        "crew": [_read_crew_member(member) for member in children.rest()],
    }


def _read_crew_member(member: etree._Element) -> dict[str, Any]:
    children = Children(member)
    return {
        "family_name": token(children.text()),
        "given_names": optional_token(children.optional_text(SHARED.given_names)),
        "rank_or_rating": token(children.text()),
        "effects": [_read_effect(effect) for effect in children.rest()],
    }


def _read_effect(effect: etree._Element) -> dict[str, Any]:
    description, quantity, unit = effect
    return {
        "description": token(description.text or ""),
        "quantity": read_quantity(quantity.text or ""),
        "unit_of_measure": unit.text,
    }


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    SHARED.check_imo_number(record, root)
    for member_index, member in enumerate(record["crew"]):
        index = first_non_positive(member["effects"])
        if index is not None:
            where = ItemLines(root, CREW_MEMBER)
            path = (f"{CREW_MEMBER}[{member_index + 1}]", f"{EFFECT}[{index + 1}]", QUANTITY)
            raise RuleViolationError(
                f"{field_path(*path)}: must be positive",
                code="RULE_EFFECTS_QUANTITY",
                line=where.line(member_index, f"{EFFECT}[{index + 1}]", QUANTITY),
            )


# ---------------------------------------------------------------- canonical record -> XML


def _build_declaration(record: Mapping[str, Any], version: int) -> etree._Element:
    root = new_root(ROOT, NAMESPACE, version)
    SHARED.build_voyage(root, record)
    for member in record["crew"]:
        _build_crew_member(etree.SubElement(root, CREW_MEMBER), member)
    return root


def _build_crew_member(element: etree._Element, member: Mapping[str, Any]) -> None:
    add_text(element, SHARED.family_name, member["family_name"])
    add_optional_text(element, SHARED.given_names, member.get("given_names"))
    add_text(element, SHARED.rank_or_rating, member["rank_or_rating"])
    for effect in member["effects"]:
        _build_effect(etree.SubElement(element, EFFECT), effect)


def _build_effect(element: etree._Element, effect: Mapping[str, Any]) -> None:
    add_text(element, DESCRIPTION, effect["description"])
    add_text(element, QUANTITY, format_quantity(effect["quantity"]))
    add_text(element, UNIT_OF_MEASURE, effect["unit_of_measure"])
