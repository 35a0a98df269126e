"""IMO FAL Form 5, Crew List, as XML in namespace urn:px:fal:5 ("fal5-xml").

FAL forms 3 to 6 share the voyage block (arrival or departure, ship, voyage, port, instant)
and the rules on persons' dates. Those readers, builders and rules are in `SharedElements`
below, bound to one form's namespace; fal3, fal4 and fal6 import it from here.

FAL 5 and FAL 6 write each person (crew member, passenger) as one empty element whose data
elements are attributes, identity document included (see fal5.xsd): the attribute names and
the readers and builders of persons below serve both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any

from lxml import etree

from .base import RuleViolationError
from .fal1 import (
    IMO_CHECK_DIGIT_RULE,
    business_key,
    format_voyage_instant,
    is_valid_imo_number,
    voyage_instant,
)
from .toolkit import (
    Children,
    ItemLines,
    XmlAdapter,
    add_optional_text,
    add_text,
    field_path,
    format_date,
    format_int,
    format_optional_int,
    line_of,
    new_root,
    token,
)

NAMESPACE = "urn:px:fal:5"
XSD_NAME = "fal5"


# ---------------------------------------------------------------- shared by FAL 3 to 6


def _camel_case(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


@dataclass(frozen=True, slots=True)
class SharedElements:
    """The elements FAL forms 3 to 6 have in common, read and built in one form's namespace.
    Each field holds the qualified name of the element whose local name is the field name in
    CamelCase (`imo_number` -> `{urn:px:fal:5}ImoNumber`). The names of persons are elements
    only in FAL 4's crew members; FAL 5 and 6 write persons as attributes (see below)."""

    arrival_or_departure: str
    ship: str
    name: str
    imo_number: str
    call_sign: str
    flag_state: str
    gross_tonnage: str
    net_tonnage: str
    voyage_number: str
    port_of_arrival_departure: str
    date_time_of_arrival_departure: str
    last_port_of_call: str
    next_port_of_call: str
    family_name: str
    given_names: str
    rank_or_rating: str

    @classmethod
    def in_namespace(cls, namespace: str) -> SharedElements:
        return cls(*(f"{{{namespace}}}{_camel_case(field.name)}" for field in fields(cls)))

    @property
    def voyage_date_field(self) -> str:
        """How messages name the element the voyage's date is taken from."""
        return field_path(self.date_time_of_arrival_departure)

    # ------------------------------------------------------------ XML -> canonical record

    def read_voyage(self, children: Children) -> dict[str, Any]:
        """ArrivalOrDeparture, Ship, VoyageNumber, PortOfArrivalDeparture and
        DateTimeOfArrivalDeparture, which open every form of the family."""
        arrival_or_departure, ship, voyage, port, instant = children.take(5)
        return {
            "arrival_or_departure": arrival_or_departure.text or "",
            "ship": self.read_ship(ship),
            "voyage_number": voyage.text or "",
            "port_of_arrival_departure": port.text or "",
            **voyage_instant(instant.text or ""),
        }

    def read_ship(self, ship: etree._Element) -> dict[str, Any]:
        name, imo_number, call_sign, flag_state, *tonnages = ship
        # The XSD allows GrossTonnage, then NetTonnage, each optional: 0 to 2 elements.
        gross = tonnages[0] if tonnages and tonnages[0].tag == self.gross_tonnage else None
        net = tonnages[-1] if tonnages and tonnages[-1].tag == self.net_tonnage else None
        return {
            "name": token(name.text or ""),
            "imo_number": imo_number.text or "",
            "call_sign": call_sign.text or "",
            "flag_state": flag_state.text or "",
            "gross_tonnage": None if gross is None else int(gross.text or ""),
            "net_tonnage": None if net is None else int(net.text or ""),
        }

    # ------------------------------------------------------------ canonical record -> XML

    def build_voyage(self, root: etree._Element, record: Mapping[str, Any]) -> None:
        add_text(root, self.arrival_or_departure, record["arrival_or_departure"])
        self.build_ship(etree.SubElement(root, self.ship), record["ship"])
        add_text(root, self.voyage_number, record["voyage_number"])
        add_text(root, self.port_of_arrival_departure, record["port_of_arrival_departure"])
        add_text(root, self.date_time_of_arrival_departure, format_voyage_instant(record))

    def build_ship(self, element: etree._Element, ship: Mapping[str, Any]) -> None:
        add_text(element, self.name, ship["name"])
        add_text(element, self.imo_number, ship["imo_number"])
        add_text(element, self.call_sign, ship["call_sign"])
        add_text(element, self.flag_state, ship["flag_state"])
        gross, net = ship.get("gross_tonnage"), ship.get("net_tonnage")
        add_optional_text(element, self.gross_tonnage, format_optional_int(gross))
        add_optional_text(element, self.net_tonnage, format_optional_int(net))

    # ------------------------------------------------------------ rules

    def check_imo_number(self, record: Mapping[str, Any], root: etree._Element) -> None:
        if not is_valid_imo_number(record["ship"]["imo_number"]):
            raise RuleViolationError(
                f"{field_path(self.ship, self.imo_number)}: {IMO_CHECK_DIGIT_RULE}",
                code="RULE_IMO_CHECK_DIGIT",
                line=line_of(root, self.ship, self.imo_number),
            )

    def check_births(
        self, record: Mapping[str, Any], people: Sequence[Mapping[str, Any]], where: ItemLines
    ) -> None:
        """Nobody on board is born after the arrival or departure date. A birth on that very
        day is accepted: a child born on board is on the list of the port call. The error
        gives the line of the person's element, which carries the date as an attribute, and
        names neither date."""
        day = voyage_day(record)
        if not people or max(map(_DATE_OF_BIRTH, people)) <= day:
            return  # the usual case, found without a Python loop
        for index, person in enumerate(people):
            if person["date_of_birth"] > day:
                raise RuleViolationError(
                    f"{where.field(index, DATE_OF_BIRTH)}: is after the date of "
                    f"{_event(record)} ({self.voyage_date_field})",
                    code="RULE_BIRTH_AFTER_VOYAGE",
                    line=where.line(index),
                )

    def expired_documents(
        self, record: Mapping[str, Any], people: Sequence[Mapping[str, Any]], where: ItemLines
    ) -> tuple[str, ...]:
        """One warning per identity document that expired before the arrival or departure
        date. Not an error: the border authority decides, and the list must still reach it.
        The text names the person by position and no date, since warnings reach receipts
        and the trail."""
        return tuple(
            f"RULE_DOCUMENT_EXPIRED: {where.field(index, EXPIRY_DATE)} (line "
            f"{where.line(index)}): the identity document expired before the date of "
            f"{_event(record)} ({self.voyage_date_field})"
            for index in expired_before_voyage(record, people)
        )


def expired_before_voyage(record: Mapping[str, Any], people: Sequence[Mapping[str, Any]]
                          ) -> list[int]:
    """The positions of the persons whose identity document expired before the arrival or
    departure date; a document without an expiry date never has."""
    day = voyage_day(record)
    expiries = list(map(_EXPIRY_DATE, map(_IDENTITY_DOCUMENT, people)))
    if None not in expiries and (not expiries or min(expiries) >= day):
        return []  # the usual case, found without a Python loop
    return [index for index, expiry in enumerate(expiries)
            if expiry is not None and expiry < day]


def voyage_day(record: Mapping[str, Any]) -> date:
    """The port-local calendar date of arrival or departure: the instant shifted by the UTC
    offset the sender gave with it or, for a list that gave the port-local time without an
    offset (FAL 5 and 6 from UN/EDIFACT), the date of that local time."""
    instant: datetime | None = record["date_time_of_arrival_departure"]
    if instant is None:
        return date.fromisoformat(record["local_date_time_of_arrival_departure"][:10])
    return (instant + timedelta(minutes=record["utc_offset_minutes"])).date()


_DATE_OF_BIRTH = itemgetter("date_of_birth")
_IDENTITY_DOCUMENT = itemgetter("identity_document")
_EXPIRY_DATE = itemgetter("expiry_date")


def _event(record: Mapping[str, Any]) -> str:
    return "arrival" if record["arrival_or_departure"] == "Arrival" else "departure"


# ---------------------------------------------------------------- persons, shared by FAL 5 and 6

# Attribute names (unqualified) of a person's data elements, identity document included.
FAMILY_NAME = "familyName"
GIVEN_NAMES = "givenNames"  # the only optional one
RANK_OR_RATING = "rankOrRating"
NATIONALITY = "nationality"
DATE_OF_BIRTH = "dateOfBirth"
PLACE_OF_BIRTH = "placeOfBirth"
DOCUMENT_TYPE = "documentType"
DOCUMENT_NUMBER = "documentNumber"
ISSUING_STATE = "issuingState"
EXPIRY_DATE = "expiryDate"
IDENTITY_DOCUMENT_ATTRIBUTES = (DOCUMENT_TYPE, DOCUMENT_NUMBER, ISSUING_STATE, EXPIRY_DATE)


def attribute_rows(
    elements: Sequence[etree._Element], names: list[str]
) -> list[Sequence[str | None]]:
    """The values of the attributes `names` of each person's element, in that order, None for
    an absent one, with XML whitespace collapsed as in an xs:token: runs of tab, CR, LF and
    space made one space, ends trimmed. That gives every person attribute its value, since
    the XSD has made each an xs:token, a code whose pattern admits no whitespace, or an
    xs:date or xs:boolean, which admit whitespace around the value only.

    This is the bulk of a list (thousands of persons on a cruise ship), so the usual case is
    made cheap: an element whose attributes are exactly `names`, in that order (as render
    writes them), is read with one call for all its values, and the values of all persons
    are checked for whitespace at once. Attribute order is free in XML: any other element is
    read one attribute at a time. `names` is a list, as element.keys() is."""
    absent: list[list[str | None]] = []
    rows: list[Sequence[str | None]] = [
        element.values() if element.keys() == names else _by_name(element, names, absent)
        for element in elements
    ]
    collapse = _needs_collapsing(rows)
    for row in absent:
        row[:] = [None if value is _ABSENT else value for value in row]
    if collapse:
        return [[None if value is None else token(value) for value in row] for row in rows]
    return rows


# Stands for an absent attribute until the whitespace check has run: a word without white
# space, as a value joined in would be, that no attribute value can be (XML has no U+0000).
_ABSENT = "\x00"


def _by_name(
    element: etree._Element, names: list[str], absent: list[list[str | None]]
) -> list[str | None]:
    """The element's values of `names` read one by one; kept in `absent`, to have _ABSENT
    made None once the values are checked."""
    row: list[str | None] = [element.get(name, _ABSENT) for name in names]
    absent.append(row)
    return row


def _needs_collapsing(rows: list[Sequence[str | None]]) -> bool:
    """Whether any value holds a tab, CR or LF, a run of spaces, or a space at either end.
    Joined by single spaces, values without any of these give a text whose only whitespace
    is single spaces between words; a space at the end of a value becomes a run of two.

    Each row is joined, then the rows: two steps in C. An empty value gives a run of two
    spaces there, a "yes" that costs only the collapsing, which leaves xs:token values as
    they are. A row holding None (an absent attribute) cannot be joined: then None and
    empty values are left out, one value at a time."""
    try:
        joined = " ".join(map(" ".join, rows))  # type: ignore[arg-type]  # a None: see except
    except TypeError:
        joined = " ".join(filter(None, chain.from_iterable(rows)))
    return (
        "  " in joined
        or "\n" in joined
        or "\t" in joined
        or "\r" in joined
        or joined[:1] == " "
        or joined[-1:] == " "
    )


def add_person(parent: etree._Element, tag: str, attributes: Mapping[str, Any]) -> None:
    """A person as one empty element with attributes, written in the order given. Only
    givenNames may be None, and is then left out."""
    element = etree.SubElement(parent, tag)
    for name, value in attributes.items():
        if isinstance(value, str):
            element.set(name, value)
        elif value is not None or name != GIVEN_NAMES:
            raise TypeError(f"{name} must be a string, not {type(value).__name__}")


def identity_document_attributes(document: Mapping[str, Any]) -> dict[str, str]:
    return {
        DOCUMENT_TYPE: document["document_type"],
        DOCUMENT_NUMBER: document["number"],
        ISSUING_STATE: document["issuing_state"],
        EXPIRY_DATE: format_date(document["expiry_date"]),
    }


# ---------------------------------------------------------------- FAL 5


def _tag(local_name: str) -> str:
    return f"{{{NAMESPACE}}}{local_name}"


ROOT = _tag("CrewList")
CREW_COUNT = _tag("CrewCount")
CREW_MEMBER = _tag("CrewMember")
SHARED = SharedElements.in_namespace(NAMESPACE)
# A crew member's attributes in the order the XSD declares them and render writes them.
_CREW_MEMBER_ATTRIBUTES = [
    FAMILY_NAME,
    GIVEN_NAMES,
    RANK_OR_RATING,
    NATIONALITY,
    DATE_OF_BIRTH,
    PLACE_OF_BIRTH,
    *IDENTITY_DOCUMENT_ATTRIBUTES,
]


class Fal5Adapter(XmlAdapter):
    format_id = "fal5-xml"
    document_type = "fal5"
    schema_name = "px.canonical.Fal5CrewList"
    xsd_name = XSD_NAME
    root_elements = (ROOT,)
    label = "FAL 5"
    __slots__ = ()

    business_key = staticmethod(business_key)

    @staticmethod
    def build(record: Mapping[str, Any], version: int) -> etree._Element:
        return _build_crew_list(record, version)

    @staticmethod
    def read(root: etree._Element) -> dict[str, Any]:
        return _read_crew_list(root)

    @staticmethod
    def check(record: Mapping[str, Any], root: etree._Element) -> tuple[str, ...]:
        where = ItemLines(root, CREW_MEMBER)
        _check_rules(record, root, where)
        return SHARED.expired_documents(record, record["crew"], where)


# ---------------------------------------------------------------- XML -> canonical record


def _read_crew_list(root: etree._Element) -> dict[str, Any]:
    children = Children(root)
    return {
        **SHARED.read_voyage(children),
        "local_date_time_of_arrival_departure": None,  # XML gives the instant with its offset
        "last_port_of_call": children.optional_text(SHARED.last_port_of_call),
        "crew_count": int(children.text()),
        "crew": _read_crew(children.rest()),
    }


_date_from_iso = date.fromisoformat


def _read_crew(members: list[etree._Element]) -> list[dict[str, Any]]:
    """The crew members from the attributes of their elements, whitespace collapsed. The XSD
    has checked every value and that only givenNames may be absent."""
    return [
        {
            "family_name": family,
            "given_names": given,
            "rank_or_rating": rank,
            "nationality": nationality,
            "date_of_birth": _date_from_iso(birth),  # type: ignore[arg-type]  # the XSD requires it
            "place_of_birth": place,
            "identity_document": {
                "document_type": kind,
                "number": number,
                "issuing_state": issuing_state,
                "expiry_date": _date_from_iso(expiry),  # type: ignore[arg-type]  # the XSD requires it
            },
        }
        for family, given, rank, nationality, birth, place, kind, number, issuing_state, expiry
        in attribute_rows(members, _CREW_MEMBER_ATTRIBUTES)
    ]


# ---------------------------------------------------------------- business rules


def _check_rules(record: Mapping[str, Any], root: etree._Element, where: ItemLines) -> None:
    SHARED.check_imo_number(record, root)
    listed = len(record["crew"])
    if record["crew_count"] != listed:
        raise RuleViolationError(
            f"{field_path(CREW_COUNT)}: differs from the number of {field_path(CREW_MEMBER)} "
            "elements",
            code="RULE_CREW_COUNT",
            line=line_of(root, CREW_COUNT),
        )
    SHARED.check_births(record, record["crew"], where)


# ---------------------------------------------------------------- canonical record -> XML


def _build_crew_list(record: Mapping[str, Any], version: int) -> etree._Element:
    root = new_root(ROOT, NAMESPACE, version)
    SHARED.build_voyage(root, record)
    add_optional_text(root, SHARED.last_port_of_call, record.get("last_port_of_call"))
    add_text(root, CREW_COUNT, format_int(record["crew_count"]))
    for member in record["crew"]:
        _build_crew_member(root, member)
    return root


def _build_crew_member(root: etree._Element, member: Mapping[str, Any]) -> None:
    add_person(
        root,
        CREW_MEMBER,
        {
            FAMILY_NAME: member["family_name"],
            GIVEN_NAMES: member.get("given_names"),
            RANK_OR_RATING: member["rank_or_rating"],
            NATIONALITY: member["nationality"],
            DATE_OF_BIRTH: format_date(member["date_of_birth"]),
            PLACE_OF_BIRTH: member["place_of_birth"],
            **identity_document_attributes(member["identity_document"]),
        },
    )
