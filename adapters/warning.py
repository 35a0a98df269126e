"""Port safety early warning (口岸检验检疫安全事件预警), as XML in namespace urn:px:warning:1
("warning-xml").

Each submission is one version of one warning and performs one step of the warning's
lifecycle (draft, reviews, terrorism check, publication, return, change of level, release,
filing). The steps before it may travel with it as its history; the gateway fills that in on
a filing. The lifecycle itself (which step may follow which) is the gateway's business
(gateway/warnings/lifecycle.py), not the adapter's: the adapter checks that each step is well
formed. The constants below name the levels, colours, subcategories and actions
for that other code."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .toolkit import (
    Children,
    XmlAdapter,
    add_optional_text,
    add_text,
    field_path,
    format_instant,
    format_int,
    list_field,
    new_root,
    nth,
    optional_token,
    read_instant,
    require_int,
    token,
    violation,
)

NAMESPACE = "urn:px:warning:1"
XSD_NAME = "warning"

LEVELS = ("I", "II", "III", "IV")
LEVEL_COLOURS: Mapping[str, str] = MappingProxyType(
    {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}
)
LEVEL_NAMES_ZH: Mapping[str, str] = MappingProxyType(
    {"I": "特别重大", "II": "重大", "III": "较大", "IV": "一般"}
)
SUBCATEGORIES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "HAZARDOUS_CHEMICALS": frozenset(
            {"CHEMICAL_LEAK", "CHEMICAL_FIRE", "CHEMICAL_EXPLOSION", "CHEMICAL_OTHER"}
        ),
        "NUCLEAR_RADIATION": frozenset(
            {
                "RADIATION_SOLID_WASTE",
                "RADIATION_GOODS",
                "RADIATION_PASSENGER_BELONGINGS",
                "RADIATION_OTHER",
            }
        ),
        "PUBLIC_HEALTH_FOOD_SAFETY": frozenset(
            {
                "PUBLIC_HEALTH_EMERGENCY",
                "MAJOR_EPIDEMIC",
                "UNEXPLAINED_CLUSTER",
                "MAJOR_FOOD_POISONING",
                "HEALTH_FOOD_OTHER",
            }
        ),
        "ECOLOGICAL_ENVIRONMENT": frozenset({"ANIMAL_DISEASE", "PLANT_PEST"}),
        "CLEARANCE_MASS_INCIDENT": frozenset(
            {"POLITICAL_INCIDENT", "FORCED_PASSAGE", "CONGESTION"}
        ),
        "NATURAL_DISASTER": frozenset({"WATER_OR_POWER_OUTAGE", "DISASTER_FIRE"}),
        "TERRORISM": frozenset({"TERROR_ATTACK", "HOSTAGE_TAKING"}),
    }
)
ACTIONS_ZH: Mapping[str, str] = MappingProxyType(
    {
        "DRAFT": "起草",
        "CONTENT_REVIEW": "内容审核",
        "CATEGORY_REVIEW": "类别审核",
        "LEVEL_REVIEW": "级别审核",
        "RE_REVIEW": "复核",
        "TERROR_CHECK": "涉恐排查",
        "PUBLISH": "发布",
        "RETURN": "退回",
        "CHANGE_LEVEL": "级别调整",
        "RELEASE": "解除",
        "FILE": "备案",
    }
)

_UNLOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("SafetyWarning")
WARNING_ID = _tag("WarningId")
ISSUING_AUTHORITY = _tag("IssuingAuthority")
ISSUED_AT = _tag("IssuedAt")
CATEGORY = _tag("Category")
SUBCATEGORY = _tag("Subcategory")
LEVEL = _tag("Level")
START_TIME = _tag("StartTime")
AFFECTED_AREA = _tag("AffectedArea")
DESCRIPTION = _tag("Description")
PORT_CODE = _tag("PortCode")
POLYGON = _tag("Polygon")
POINT = _tag("Point")
WARNING_ITEM = _tag("WarningItem")
SITUATION = _tag("Situation")
CONTROL_MEASURE = _tag("ControlMeasure")
CONTACT = _tag("Contact")
NAME = _tag("Name")
ORGANISATION = _tag("Organisation")
TELEPHONE = _tag("Telephone")
EMAIL = _tag("Email")
STEP = _tag("Step")
ACTION = _tag("Action")
ACTOR = _tag("Actor")
POSITION = _tag("Position")
AT = _tag("At")
COMMENT = _tag("Comment")
TERROR_RELEVANCE = _tag("TerrorRelevance")
FILED_TO = _tag("FiledTo")
HISTORY = _tag("History")

# Unqualified attribute names.
COLOUR = "colour"
URGENCY = "urgency"
LATITUDE = "latitude"
LONGITUDE = "longitude"


def business_key(record: Mapping[str, Any]) -> str:
    """The warning number: every step of a warning is a new version of it."""
    return str(record["warning_id"])


class SafetyWarningAdapter(XmlAdapter):
    format_id = "warning-xml"
    document_type = "warning"
    schema_name = "px.canonical.SafetyWarning"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "safety warning"
    __slots__ = ()

    business_key = staticmethod(business_key)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        return _build_warning(record, version)

    @staticmethod
    def read(root: etree._Element) -> dict[str, Any]:
        return _read_warning(root)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        _check_rules(record, root)
        return ()


# ---------------------------------------------------------------- XML -> canonical record

def _read_warning(root: etree._Element) -> dict[str, Any]:
    children = Children(root)
    warning_id = children.text()
    issuing_authority = token(children.text())
    issued_at, offset = read_instant(children.text())
    return {
        "warning_id": warning_id,
        "issuing_authority": issuing_authority,
        "issued_at": issued_at,
        "utc_offset_minutes": offset,
        "category": children.text(),
        "subcategory": children.text(),
        "level": children.text(),
        "start_time": read_instant(children.text())[0],
        "affected_area": _read_area(children.next()),
        "warning_items": [_read_item(e) for e in children.repeated(WARNING_ITEM)],
        "situation": token(children.text()),
        "control_measures": [token(t) for t in children.repeated_text(CONTROL_MEASURE)],
        "contact": _read_contact(children.next()),
        "step": _read_step(children.next()),
        "history": _read_history(children.optional(HISTORY)),
    }


def _read_area(area: etree._Element) -> dict[str, Any]:
    children = Children(area)
    return {
        "description": token(children.text()),
        "port_codes": children.repeated_text(PORT_CODE),
        "polygon": _read_polygon(children.optional(POLYGON)),
    }


def _read_polygon(polygon: etree._Element | None) -> list[dict[str, float]]:
    """No Polygon element is no polygon; the XSD gives an element at least one point."""
    return [] if polygon is None else [_read_point(point) for point in polygon]


def _read_point(point: etree._Element) -> dict[str, float]:
    """The XSD has made both attributes xs:double, which float() reads (INF and NaN
    included; the rules refuse those)."""
    return {
        "latitude": float(point.get(LATITUDE, "")),
        "longitude": float(point.get(LONGITUDE, "")),
    }


def _read_item(item: etree._Element) -> dict[str, Any]:
    return {"urgency": int(item.get(URGENCY, "")), "text": token(item.text or "")}


def _read_contact(contact: etree._Element) -> dict[str, Any]:
    children = Children(contact)
    return {
        "name": token(children.text()),
        "organisation": optional_token(children.optional_text(ORGANISATION)),
        "telephone": children.text(),
        "email": children.optional_text(EMAIL),
    }


def _read_step(step: etree._Element) -> dict[str, Any]:
    children = Children(step)
    return {
        "action": children.text(),
        "actor": _read_actor(children.next()),
        "at": read_instant(children.text())[0],
        "comment": optional_token(children.optional_text(COMMENT)),
        "terror_relevance": children.optional_text(TERROR_RELEVANCE),
        "filed_to": optional_token(children.optional_text(FILED_TO)),
    }


def _read_history(history: etree._Element | None) -> list[dict[str, Any]]:
    return [] if history is None else [_read_step(step) for step in history]


def _read_actor(actor: etree._Element) -> dict[str, Any]:
    children = Children(actor)
    return {
        "name": token(children.text()),
        "position": token(children.text()),
        "organisation": token(children.text()),
    }


# ---------------------------------------------------------------- business rules


@dataclass(frozen=True, slots=True)
class _StepElement:
    """An element of a step that one action requires and every other action forbids."""

    field: str
    tag: str
    action: str
    code: str
    label: str


_CONDITIONAL_STEP_ELEMENTS = (
    _StepElement(
        "terror_relevance",
        TERROR_RELEVANCE,
        "TERROR_CHECK",
        "RULE_WARNING_TERROR_RESULT",
        "the result of the terrorism check",
    ),
    _StepElement("filed_to", FILED_TO, "FILE", "RULE_WARNING_FILED_TO", "the system filed to"),
)


def _check_rules(record: Mapping[str, Any], root: etree._Element) -> None:
    _check_times(record, root)
    _check_subcategory(record, root)
    _check_colour(record, root)
    _check_area(record["affected_area"], root)
    _check_items(record["warning_items"], root)
    for path, step in _steps(record):
        _check_step(step, root, path)


def _steps(record: Mapping[str, Any]) -> list[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Each step with the ElementPath of its element: the current one, then the history."""
    return [
        ((STEP,), record["step"]),
        *(((HISTORY, nth(STEP, i)), step) for i, step in enumerate(record["history"])),
    ]


def _check_times(record: Mapping[str, Any], root: etree._Element) -> None:
    """Every time of a warning is to the minute. Offsets are whole minutes, so the seconds
    of the UTC instant are the seconds the sender wrote."""
    times: list[tuple[str, datetime, tuple[str, ...]]] = [
        ("issue time", record["issued_at"], (ISSUED_AT,)),
        ("start time", record["start_time"], (START_TIME,)),
    ]
    for path, step in _steps(record):
        times.append(("time of the step", step["at"], (*path, AT)))
    for label, instant, path in times:
        if instant.second or instant.microsecond:
            raise violation(
                "RULE_WARNING_TIME_NOT_MINUTE",
                f"the {label} is not a whole minute: seconds must be zero",
                root,
                *path,
            )


def _check_subcategory(record: Mapping[str, Any], root: etree._Element) -> None:
    category, subcategory = record["category"], record["subcategory"]
    if subcategory not in SUBCATEGORIES[category]:
        raise violation(
            "RULE_WARNING_SUBCATEGORY_MISMATCH",
            f"is not one of the subcategories of the {field_path(CATEGORY)} given",
            root,
            SUBCATEGORY,
        )


def _check_colour(record: Mapping[str, Any], root: etree._Element) -> None:
    """The colour attribute is optional; when given it names the level's colour."""
    element = root.find(LEVEL)
    colour = None if element is None else element.get(COLOUR)
    level = record["level"]
    if colour is not None and colour != LEVEL_COLOURS[level]:
        colours = ", ".join(f"{name} {LEVEL_COLOURS[name]}" for name in LEVELS)
        raise RuleViolationError(
            f"{field_path(LEVEL, f'@{COLOUR}')}: is not the colour of the level ({colours})",
            code="RULE_WARNING_LEVEL_COLOUR",
            line=None if element is None else element.sourceline,
        )


def _check_area(area: Mapping[str, Any], root: etree._Element) -> None:
    for i, code in enumerate(area["port_codes"]):
        if _UNLOCODE.fullmatch(code) is None:
            raise violation(
                "RULE_UNLOCODE",
                "is not a UN/LOCODE ([A-Z]{2}[A-Z2-9]{3})",
                root,
                AFFECTED_AREA,
                nth(PORT_CODE, i),
            )
    polygon = area["polygon"]
    if 0 < len(polygon) < 3:
        raise violation(
            "RULE_WARNING_POLYGON",
            "a polygon has at least three points",
            root,
            AFFECTED_AREA,
            POLYGON,
        )
    for i, point in enumerate(polygon):
        # Written so that NaN fails too.
        if not (-90.0 <= point["latitude"] <= 90.0 and -180.0 <= point["longitude"] <= 180.0):
            raise violation(
                "RULE_WARNING_POLYGON",
                "is out of range: latitude -90 to 90, longitude -180 to 180",
                root,
                AFFECTED_AREA,
                POLYGON,
                nth(POINT, i),
            )


def _check_items(items: Sequence[Mapping[str, Any]], root: etree._Element) -> None:
    for i in range(1, len(items)):
        if items[i]["urgency"] < items[i - 1]["urgency"]:
            raise violation(
                "RULE_WARNING_ITEMS_ORDER",
                f"is more urgent than {field_path(nth(WARNING_ITEM, i - 1))}: items go most "
                f"urgent first (by @{URGENCY})",
                root,
                nth(WARNING_ITEM, i),
            )


def _check_step(step: Mapping[str, Any], root: etree._Element, path: tuple[str, ...]) -> None:
    action = step["action"]
    for element in _CONDITIONAL_STEP_ELEMENTS:
        present = step.get(element.field) is not None
        if action == element.action and not present:
            raise violation(
                element.code,
                f"a {element.action} step must give {element.label}",
                root,
                *path,
                ACTION,
            )
        if action != element.action and present:
            raise violation(
                element.code,
                f"only a {element.action} step gives {element.label}",
                root,
                *path,
                element.tag,
            )


# ---------------------------------------------------------------- canonical record -> XML


def _build_warning(record: Mapping[str, Any], version: int) -> etree._Element:
    offset = require_int(record["utc_offset_minutes"])
    root = new_root(ROOT, NAMESPACE, version)
    add_text(root, WARNING_ID, record["warning_id"])
    add_text(root, ISSUING_AUTHORITY, record["issuing_authority"])
    add_text(root, ISSUED_AT, format_instant(record["issued_at"], offset, "issued_at"))
    add_text(root, CATEGORY, record["category"])
    add_text(root, SUBCATEGORY, record["subcategory"])
    level = record["level"]
    add_text(root, LEVEL, level)
    root[-1].set(COLOUR, LEVEL_COLOURS[level])
    add_text(root, START_TIME, format_instant(record["start_time"], offset, "start_time"))
    _build_area(etree.SubElement(root, AFFECTED_AREA), record["affected_area"])
    for item in list_field(record["warning_items"]):
        add_text(root, WARNING_ITEM, item["text"])
        root[-1].set(URGENCY, format_int(item["urgency"]))
    add_text(root, SITUATION, record["situation"])
    for measure in list_field(record["control_measures"]):
        add_text(root, CONTROL_MEASURE, measure)
    _build_contact(etree.SubElement(root, CONTACT), record["contact"])
    _build_step(etree.SubElement(root, STEP), record["step"], offset)
    history = list_field(record["history"])
    if history:
        history_element = etree.SubElement(root, HISTORY)
        for step in history:
            _build_step(etree.SubElement(history_element, STEP), step, offset)
    _refuse_rule_violations(record, root)
    return root


def _refuse_rule_violations(record: Mapping[str, Any], root: etree._Element) -> None:
    """The business rules too, so that render never writes what parse refuses."""
    try:
        _check_rules(record, root)
    except RuleViolationError as exc:
        raise ValueError(f"{exc.code}: {exc.message}") from None


def _build_area(element: etree._Element, area: Mapping[str, Any]) -> None:
    add_text(element, DESCRIPTION, area["description"])
    for code in list_field(area["port_codes"]):
        add_text(element, PORT_CODE, code)
    polygon = list_field(area["polygon"])
    if polygon:
        polygon_element = etree.SubElement(element, POLYGON)
        for point in polygon:
            point_element = etree.SubElement(polygon_element, POINT)
            point_element.set(LATITUDE, _format_double(point["latitude"]))
            point_element.set(LONGITUDE, _format_double(point["longitude"]))


def _format_double(value: float) -> str:
    """The shortest text that reads back as the same double."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"expected a float, not {type(value).__name__}")
    return repr(float(value))


def _build_contact(element: etree._Element, contact: Mapping[str, Any]) -> None:
    add_text(element, NAME, contact["name"])
    add_optional_text(element, ORGANISATION, contact.get("organisation"))
    add_text(element, TELEPHONE, contact["telephone"])
    add_optional_text(element, EMAIL, contact.get("email"))


def _build_step(element: etree._Element, step: Mapping[str, Any], offset: int) -> None:
    add_text(element, ACTION, step["action"])
    actor = step["actor"]
    actor_element = etree.SubElement(element, ACTOR)
    add_text(actor_element, NAME, actor["name"])
    add_text(actor_element, POSITION, actor["position"])
    add_text(actor_element, ORGANISATION, actor["organisation"])
    add_text(element, AT, format_instant(step["at"], offset, "at"))
    add_optional_text(element, COMMENT, step.get("comment"))
    add_optional_text(element, TERROR_RELEVANCE, step.get("terror_relevance"))
    add_optional_text(element, FILED_TO, step.get("filed_to"))
