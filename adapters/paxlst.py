"""UN/EDIFACT PAXLST (passenger and crew lists: D.02B, D.05B and the other directories, with
the IATA association code or none) to the canonical FAL 5 crew list and FAL 6 passenger list,
and back ("paxlst-crew", "paxlst-passengers"; docs/adapters.md, "PAXLST").

One interchange is one list: a list too large for one message is sent as several (UNH S010
numbers them, the last one marked F) that repeat the voyage and carry the persons in order.
The message says what it has and nothing more: a field it lacks stays null in the record,
never a default. The segments read, by the WCO/IATA/ICAO guide's groups:

- BGM 1001 the list (250 crew, 745 passengers), C106 1056 the list's version (1 without);
- TDT 8028 voyage, C220 8067 mode (1 maritime), C222 ship (8213 with 1131 146 = IMO number,
  103 = call sign; 8212 name; 8453 flag, alpha-2), RFF+VM the call sign when C222 holds the
  IMO number; LOC+87 / DTM+232 arrival, LOC+125 / DTM+189 departure (the last port of call
  of an arrival list); DTM formats 201, 203 and 204, port-local time without an offset;
- per person NAD (FM crew, FL passenger, DDT / DDU in transit) C080 family:given names,
  DTM+329 birth, LOC+180 place of birth, LOC+178 / 179 embarkation / disembarkation, NAT+2
  nationality (ISO 3166 alpha-3), EMP C951 9014 rank; DOC 1001 type and 1004 number with
  DTM+36 expiry and LOC+91 issuing State (alpha-3);
- CNT+41 / 42 the number of crew / passengers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, ClassVar

from message_formats import FormatError
from message_formats.countries import ALPHA2_BY_ALPHA3, ALPHA3_BY_ALPHA2
from message_formats.edifact import (
    Interchange,
    InterchangeHeader,
    Level,
    Message,
    MessageId,
    Segment,
    Separators,
    Where,
    read_interchange,
    whole_number,
)
from message_formats.edifact.writer import OutgoingMessage, render_interchange, segment

from .base import ParseResult, RenderError, RuleViolationError
from .fal1 import IMO_CHECK_DIGIT_RULE, is_valid_imo_number
from .fal5 import expired_before_voyage, voyage_day
from .toolkit import RENDER_ERRORS, format_date, require_int, token

MESSAGE_TYPE = "PAXLST"
CREW_LIST, PASSENGER_LIST = "250", "745"
CREW_COUNT_QUALIFIER, PASSENGER_COUNT_QUALIFIER = "41", "42"
CREW, CREW_IN_TRANSIT, PASSENGER, PASSENGER_IN_TRANSIT = "FM", "DDT", "FL", "DDU"
IMO_NUMBER_QUALIFIER, CALL_SIGN_QUALIFIER = "146", "103"
CALL_SIGN_REFERENCE = "VM"
MARITIME = "1"
ARRIVAL_PLACE, DEPARTURE_PLACE = "87", "125"
ARRIVAL_TIME, DEPARTURE_TIME = "232", "189"
EMBARKATION, DISEMBARKATION, BIRTH_PLACE, ISSUING_STATE = "178", "179", "180", "91"
BIRTH, EXPIRY = "329", "36"
# DTM 2379 of a date and time: the length of its value, how it reads, what century it needs
# (201 YYMMDDHHMM, 203 CCYYMMDDHHMM, 204 CCYYMMDDHHMMSS). A voyage's two-digit year is this
# century's: lists are sent for voyages of now.
LOCAL_TIME_FORMATS = MappingProxyType({"201": (10, "%Y%m%d%H%M", "20"),
                                       "203": (12, "%Y%m%d%H%M", ""),
                                       "204": (14, "%Y%m%d%H%M%S", "")})
DATE_FORMAT = "102"  # CCYYMMDD
DOCUMENT_TYPES = MappingProxyType({"P": "Passport", "I": "IdentityCard", "C": "ResidencePermit",
                                   "F": "TravelDocument"})
DOCUMENT_CODES = MappingProxyType({kind: code for code, kind in DOCUMENT_TYPES.items()})
VISA = "V"  # a DOC of its own, not an identity document: passed over
_LOCODE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
_WRITTEN_AS = MessageId(MESSAGE_TYPE, "D", "05B", "UN", "IATA")
_INTERCHANGE_PARTIES = ("PORTGW", "RECIPIENT")
_SEPARATORS = Separators(repetition="*")  # syntax 4 declares its repetition separator
# ISO 9735-4 syntax errors (0085) a CONTRL reports a broken rule with: a value the rule
# refuses, or something the list must give and does not.
INVALID_VALUE, MISSING = 12, 13
_ABSENCES = frozenset({"RULE_BGM_MISSING", "RULE_TDT_MISSING", "RULE_PORT_MISSING",
                       "RULE_TIME_MISSING", "RULE_PERSON_INCOMPLETE"})


class PaxlstRuleViolation(RuleViolationError):
    """A business rule broken inside a PAXLST message; `where` places it for a CONTRL
    (the message, the segment position from UNH = 1 and its tag). `line` is that position."""

    def __init__(self, message: str, *, code: str, where: Where) -> None:
        super().__init__(message, code=code, line=where.segment_number or None)
        self.where = where


# ---------------------------------------------------------------- reading a list


@dataclass(frozen=True, slots=True)
class _Place:
    """Where in the interchange a rule looks: the message and its segment."""

    message: Message
    ordinal: int  # of the message in the interchange, from 1

    def refusal(self, code: str, rule: str, at: Segment | None = None) -> PaxlstRuleViolation:
        unh = self.message.segments[0]
        at = at or unh
        syntax_error = MISSING if code in _ABSENCES else INVALID_VALUE
        where = Where(Level.SEGMENT if at is not unh else Level.MESSAGE, syntax_error,
                      message_reference=self.message.reference,
                      message_type=self.message.identifier.components(),
                      segment_number=at.number, segment_tag=at.tag)
        return PaxlstRuleViolation(
            f"PAXLST message {self.ordinal}, segment {at.number} ({at.tag}): {rule}",
            code=code, where=where)


# The first segment of each tag, and of each tag and qualifier (its first component): what
# a rule looks up, once per person and document rather than by a search each time.
Found = dict[tuple[str, str], Segment]


def _keep_first(found: Found, item: Segment) -> None:
    tag, elements = item.tag, item.elements
    found.setdefault((tag, ""), item)
    found.setdefault((tag, elements[0][0] if elements and elements[0] else ""), item)


@dataclass(slots=True)
class _Person:
    name: Segment
    segments: Found = field(default_factory=dict)
    documents: list[tuple[Segment, Found]] = field(default_factory=list)

    def add(self, item: Segment) -> None:
        if item.tag == "DOC":
            self.documents.append((item, {}))
        elif self.documents and item.tag in ("DTM", "LOC"):
            _keep_first(self.documents[-1][1], item)
        else:
            _keep_first(self.segments, item)


@dataclass(frozen=True, slots=True)
class _ListMessage:
    """One message split into the list's header segments, its persons and its CNT."""

    place: _Place
    bgm: Segment
    header: list[Segment]
    persons: list[_Person]
    counts: list[Segment]


class PaxlstAdapter:
    """What the crew and the passenger list share; a subclass names its list."""

    document_type: ClassVar[str]
    schema_name: ClassVar[str]
    format_id: ClassVar[str]
    list_code: ClassVar[str]  # BGM C002 1001
    count_qualifier: ClassVar[str]
    person_qualifiers: ClassVar[Mapping[str, bool]]  # NAD 3035 -> in transit
    count_field: ClassVar[str]
    list_field: ClassVar[str]
    count_rule: ClassVar[str]
    schema_version: ClassVar[int] = 1
    media_type: ClassVar[str] = "application/EDIFACT"
    edifact_message_types: ClassVar[frozenset[str]] = frozenset({MESSAGE_TYPE})
    label: ClassVar[str]

    __slots__ = ()

    @property
    def edifact_document_names(self) -> frozenset[str]:
        """How detection tells a crew list from a passenger list (NamesEdifactDocuments)."""
        return frozenset({self.list_code})

    # ------------------------------------------------------------ parse

    def parse(self, data: bytes) -> ParseResult:
        interchange = read_interchange(data)
        messages = [self._split(_Place(m, n), m) for n, m in
                    enumerate(self._ordered(interchange), start=1)]
        first = messages[0]
        record = self._voyage(first)
        for later in messages[1:]:
            _check_same_voyage(first, later)
        version = _document_version(first)
        people = [(m.place, p) for m in messages for p in m.persons]
        day = voyage_day(record)
        persons = [self._person(place, person, day) for place, person in people]
        record[self.count_field] = self._count(messages, len(persons))
        record[self.list_field] = persons
        key = business_key(record)
        try:
            self._check_dates(record, people, day)
        except RuleViolationError as exc:
            exc.business_key, exc.document_version = key, version
            raise
        warnings = tuple(
            f"RULE_DOCUMENT_EXPIRED: person {index + 1} (DOC, DTM+36): the identity document "
            "expired before the date of "
            f"{'arrival' if record['arrival_or_departure'] == 'Arrival' else 'departure'}"
            for index in expired_before_voyage(record, persons))
        return ParseResult(record=record, business_key=key, document_version=version,
                           warnings=warnings)

    def _ordered(self, interchange: Interchange) -> list[Message]:
        """The messages of the list in order (the reader refuses an interchange without
        one); a list split over several says so in UNH S010 (0070 sequence 1, 2, ...; 0073
        C, then F on the last)."""
        messages = list(interchange.messages)
        for number, message in enumerate(messages, start=1):
            place = _Place(message, number)
            if message.identifier.type != MESSAGE_TYPE:
                raise place.refusal("RULE_MESSAGE_TYPE", "UNH S009 0065 is not PAXLST: one "
                                    "interchange holds one list")
            unh = message.segments[0]
            sequence, mark = unh.value(3, 0), unh.value(3, 1)
            last = number == len(messages)
            if len(messages) > 1 and (not whole_number(sequence) or int(sequence) != number
                                      or (mark == "F") != last):
                raise place.refusal("RULE_SPLIT_LIST", "UNH S010 must number the messages of "
                                    "a split list 1, 2, ... in order and mark the last F", unh)
        return messages

    def _split(self, place: _Place, message: Message) -> _ListMessage:
        body = message.body()
        if not body or body[0].tag != "BGM":
            raise place.refusal("RULE_BGM_MISSING", "BGM must follow UNH")
        bgm = body[0]
        if bgm.value(0) != self.list_code:
            raise place.refusal("RULE_LIST_TYPE", f"BGM 1001 must be {self.list_code} for a "
                                f"{self.label}", bgm)
        header: list[Segment] = []
        persons: list[_Person] = []
        counts: list[Segment] = []
        for item in body[1:]:
            if item.tag == "CNT":
                counts.append(item)
            elif item.tag == "NAD" and item.value(0) in self.person_qualifiers:
                persons.append(_Person(item))
            elif item.tag == "NAD" and item.value(0) in _PERSON_QUALIFIERS:
                raise place.refusal("RULE_PERSON_QUALIFIER", "NAD 3035 names a person of "
                                    f"another list than a {self.label}", item)
            elif persons:
                persons[-1].add(item)
            else:
                header.append(item)
        return _ListMessage(place, bgm, header, persons, counts)

    # ------------------------------------------------------------ the voyage

    def _voyage(self, message: _ListMessage) -> dict[str, Any]:
        place = message.place
        tdt = _first(message.header, "TDT")
        if tdt is None:
            raise place.refusal("RULE_TDT_MISSING", "the list must name its voyage in TDT")
        mode = tdt.value(2)
        if mode and mode != MARITIME:
            raise place.refusal("RULE_TRANSPORT_MODE", "TDT C220 8067 must be 1 (maritime "
                                "transport): FAL 5 and 6 are ship's lists", tdt)
        ship = _ship(place, tdt, message.header)
        arrival = _qualified(message.header, "LOC", ARRIVAL_PLACE)
        departure = _qualified(message.header, "LOC", DEPARTURE_PLACE)
        if arrival is not None:
            port, time_qualifier, last_port = arrival, ARRIVAL_TIME, departure
        elif departure is not None:
            port, time_qualifier, last_port = departure, DEPARTURE_TIME, None
        else:
            raise place.refusal("RULE_PORT_MISSING", "the list must name the port of arrival "
                                "(LOC+87) or departure (LOC+125)", tdt)
        time = _qualified(message.header, "DTM", time_qualifier)
        if time is None:
            raise place.refusal("RULE_TIME_MISSING", f"the list must give DTM+{time_qualifier} "
                                "with its port", port)
        record: dict[str, Any] = {
            "arrival_or_departure": "Arrival" if port is arrival else "Departure",
            "ship": ship,
            "voyage_number": tdt.value(1) or None,
            "port_of_arrival_departure": _locode(place, port),
            "date_time_of_arrival_departure": None,
            "utc_offset_minutes": None,
            "local_date_time_of_arrival_departure": _local_time(place, time),
        }
        return record | self.voyage_fields(place, last_port)

    def voyage_fields(self, place: _Place, last_port: Segment | None) -> dict[str, Any]:
        """The list's own fields of the voyage; `last_port` is LOC+125 of an arrival list."""
        return {}

    # ------------------------------------------------------------ persons

    def _person(self, place: _Place, person: _Person, day: date) -> dict[str, Any]:
        """A person of the list; `day` is the port-local date of arrival or departure, which
        two-digit years are read against."""
        names = [token(n) for n in person.name.components(3)[:5] if n.strip()]
        if not names:
            raise place.refusal("RULE_PERSON_INCOMPLETE", "NAD C080 3036 must give the "
                                "person's family name", person.name)
        segments = person.segments
        birth = segments.get(("DTM", BIRTH))
        nationality = segments.get(("NAT", ""))
        if birth is None or nationality is None or not person.documents:
            missing = "DTM+329" if birth is None else "NAT" if nationality is None else "DOC"
            raise place.refusal("RULE_PERSON_INCOMPLETE", f"the person has no {missing}",
                                person.name)
        born = _person_date(place, birth, day, latest=True)
        return {
            "family_name": names[0],
            "given_names": " ".join(names[1:]) or None,
            "nationality": _country(place, nationality, nationality.value(1), "RULE_NATIONALITY",
                                    "NAT 3293"),
            "date_of_birth": born,
            "place_of_birth": _place_name(segments.get(("LOC", BIRTH_PLACE))),
            "identity_document": _identity_document(place, person.documents, day),
            **self.person_fields(place, person),
        }

    def person_fields(self, place: _Place, person: _Person) -> dict[str, Any]:
        """A crew member's or passenger's own fields."""
        return {}

    def _count(self, messages: Sequence[_ListMessage], listed: int) -> int:
        """The number of persons: every CNT of the list's kind must give the whole list's
        number (a split list repeats it); without one, the number listed."""
        for message in messages:
            for cnt in message.counts:
                given = cnt.value(0, 1)
                if cnt.value(0) == self.count_qualifier and not (
                        whole_number(given) and int(given) == listed):
                    raise message.place.refusal(
                        self.count_rule, f"CNT+{self.count_qualifier} differs from the number "
                        "of persons listed", cnt)
        return listed

    def _check_dates(self, record: Mapping[str, Any],
                     people: Sequence[tuple[_Place, _Person]], day: date) -> None:
        for (place, person), entry in zip(people, record[self.list_field], strict=True):
            if entry["date_of_birth"] > day:
                raise place.refusal("RULE_BIRTH_AFTER_VOYAGE", "DTM+329 is after the date of "
                                    "arrival or departure", person.name)

    # ------------------------------------------------------------ render

    def render(self, record: Mapping[str, Any]) -> bytes:
        try:
            body = self._body(record)
            version = 1 if record.get("header") is None else int(
                record["header"]["document_version"])
            bgm = segment("BGM", self.list_code, ("", str(version)) if version != 1 else "")
            prepared = _prepared(record)
        except RENDER_ERRORS as exc:
            raise RenderError(f"cannot render {self.label} record: {type(exc).__name__}: "
                              f"{exc}") from None
        header = InterchangeHeader(
            syntax_id="UNOY", syntax_version="4", sender=_INTERCHANGE_PARTIES[0],
            sender_qualifier="ZZZ", recipient=_INTERCHANGE_PARTIES[1],
            recipient_qualifier="ZZZ", prepared=prepared, control_reference="1",
            acknowledgement_requested=False, test=False)
        try:
            return render_interchange(header, [OutgoingMessage("1", _WRITTEN_AS, [bgm, *body])],
                                      _SEPARATORS, line_breaks=True)
        except FormatError as exc:
            raise RenderError(f"rendered {self.label} is not valid: {exc.message}") from None

    def _body(self, record: Mapping[str, Any]) -> list[Segment]:
        people = record[self.list_field]
        if not isinstance(people, list | tuple):
            raise TypeError(f"{self.list_field} must be a list")
        if require_int(record[self.count_field]) != len(people):
            raise ValueError(f"{self.count_field} differs from the number of persons")
        out = _voyage_body(record)
        for person in people:
            out += self._person_body(person)
        out.append(segment("CNT", (self.count_qualifier, str(len(people)))))
        return out

    def _person_body(self, person: Mapping[str, Any]) -> list[Segment]:
        given = person.get("given_names")
        qualifier = self._person_qualifier(person)
        out = [segment("NAD", qualifier, "", "", (_name_text(person["family_name"]),
                                                   *([_name_text(given)] if given is not None
                                                     else [])))]
        out.append(segment("DTM", (BIRTH, _date_text(person["date_of_birth"]), DATE_FORMAT)))
        out += _optional_segment(person.get("place_of_birth"),
                                 lambda p: segment("LOC", BIRTH_PLACE, ("", "", "", p)))
        out += self.person_segments(person)
        out.append(segment("NAT", "2", ALPHA3_BY_ALPHA2[person["nationality"]]))
        return out + _document_body(person["identity_document"])

    def person_segments(self, person: Mapping[str, Any]) -> list[Segment]:
        """The segments of a crew member's or passenger's own fields (before NAT)."""
        return []

    def _person_qualifier(self, person: Mapping[str, Any]) -> str:
        transit = person.get("transit", False)
        if not isinstance(transit, bool):
            raise ValueError("transit must be known (true or false) to choose NAD 3035")
        return next(q for q, in_transit in self.person_qualifiers.items()
                    if in_transit == transit)


class PaxlstCrewListAdapter(PaxlstAdapter):
    format_id = "paxlst-crew"
    document_type = "fal5"
    schema_name = "px.canonical.Fal5CrewList"
    label = "crew list"
    list_code = CREW_LIST
    count_qualifier = CREW_COUNT_QUALIFIER
    person_qualifiers = MappingProxyType({CREW: False, CREW_IN_TRANSIT: True})
    count_field, list_field, count_rule = "crew_count", "crew", "RULE_CREW_COUNT"
    __slots__ = ()

    def voyage_fields(self, place: _Place, last_port: Segment | None) -> dict[str, Any]:
        return {"last_port_of_call": _optional_locode(place, last_port)}

    def person_fields(self, place: _Place, person: _Person) -> dict[str, Any]:
        emp = person.segments.get(("EMP", ""))
        return {"rank_or_rating": None if emp is None else _text(emp.value(2, 3))}

    def person_segments(self, person: Mapping[str, Any]) -> list[Segment]:
        return _optional_segment(person.get("rank_or_rating"),
                                 lambda rank: segment("EMP", "1", "", ("", "", "", rank)))


class PaxlstPassengerListAdapter(PaxlstAdapter):
    format_id = "paxlst-passengers"
    document_type = "fal6"
    schema_name = "px.canonical.Fal6PassengerList"
    label = "passenger list"
    list_code = PASSENGER_LIST
    count_qualifier = PASSENGER_COUNT_QUALIFIER
    person_qualifiers = MappingProxyType({PASSENGER: False, PASSENGER_IN_TRANSIT: True})
    count_field, list_field, count_rule = (
        "passenger_count", "passengers", "RULE_PASSENGER_COUNT")
    __slots__ = ()

    def person_fields(self, place: _Place, person: _Person) -> dict[str, Any]:
        found = person.segments
        return {
            "port_of_embarkation": _optional_locode(place, found.get(("LOC", EMBARKATION))),
            "port_of_disembarkation": _optional_locode(place,
                                                       found.get(("LOC", DISEMBARKATION))),
            "transit": self.person_qualifiers[person.name.value(0)],
        }

    def person_segments(self, person: Mapping[str, Any]) -> list[Segment]:
        return [*_optional_segment(person.get("port_of_embarkation"),
                                   lambda port: segment("LOC", EMBARKATION, port)),
                *_optional_segment(person.get("port_of_disembarkation"),
                                   lambda port: segment("LOC", DISEMBARKATION, port))]


_PERSON_QUALIFIERS = frozenset({CREW, CREW_IN_TRANSIT, PASSENGER, PASSENGER_IN_TRANSIT})


def business_key(record: Mapping[str, Any]) -> str:
    """As the FAL forms' (IMO number, voyage, A/D, port), the ship's call sign or name
    standing in for an IMO number the list does not give."""
    ship = record["ship"]
    return ":".join((ship["imo_number"] or ship["call_sign"] or ship["name"],
                     record["voyage_number"] or "", record["arrival_or_departure"][0],
                     record["port_of_arrival_departure"]))


# ---------------------------------------------------------------- readers of segments


def _first(segments: Iterable[Segment], tag: str) -> Segment | None:
    return next((s for s in segments if s.tag == tag), None)


def _qualified(segments: Iterable[Segment], tag: str, qualifier: str) -> Segment | None:
    """The first `tag` segment whose first component is `qualifier` (LOC 3227, DTM 2005)."""
    return next((s for s in segments if s.tag == tag and s.value(0) == qualifier), None)


def _check_same_voyage(first: _ListMessage, later: _ListMessage) -> None:
    if later.bgm.elements[:2] != first.bgm.elements[:2] or \
            _voyage_segments(later.header) != _voyage_segments(first.header):
        raise later.place.refusal("RULE_SPLIT_LIST", "every message of a split list must "
                                  "repeat the first one's BGM, TDT, RFF, LOC and DTM")


def _voyage_segments(header: Sequence[Segment]) -> list[tuple[str, tuple[tuple[str, ...], ...]]]:
    return [(s.tag, s.elements) for s in header if s.tag in ("TDT", "LOC", "DTM", "RFF")]


def _document_version(message: _ListMessage) -> int:
    version = message.bgm.value(1, 1)
    if not version:
        return 1
    if not whole_number(version) or int(version) < 1:
        raise message.place.refusal("RULE_DOCUMENT_VERSION", "BGM C106 1056 must be a "
                                    "positive whole number", message.bgm)
    return int(version)


def _ship(place: _Place, tdt: Segment, header: Sequence[Segment]) -> dict[str, Any]:
    identifier, qualifier = tdt.value(7, 0), tdt.value(7, 1)
    name, flag = _text(tdt.value(7, 3)), tdt.value(7, 4)
    if name is None:
        raise place.refusal("RULE_SHIP_NAME", "TDT C222 8212 must name the ship", tdt)
    imo = identifier if identifier and qualifier == IMO_NUMBER_QUALIFIER else None
    call_sign = identifier if identifier and qualifier == CALL_SIGN_QUALIFIER else None
    reference = _qualified(header, "RFF", CALL_SIGN_REFERENCE)
    if reference is not None and call_sign is None:
        call_sign = reference.value(0, 1) or None
    if imo is not None and not is_valid_imo_number(imo):
        raise place.refusal("RULE_IMO_CHECK_DIGIT", f"TDT C222 8213: {IMO_CHECK_DIGIT_RULE}",
                            tdt)
    if flag and flag not in ALPHA3_BY_ALPHA2:
        raise place.refusal("RULE_FLAG_STATE", "TDT C222 8453 is not an ISO 3166-1 alpha-2 "
                            "country code", tdt)
    return {"name": name, "imo_number": imo, "call_sign": call_sign, "flag_state": flag or None,
            "gross_tonnage": None, "net_tonnage": None}


def _locode(place: _Place, loc: Segment) -> str:
    code = loc.value(1)
    if _LOCODE.fullmatch(code) is None:
        raise place.refusal("RULE_UNLOCODE", f"LOC+{loc.value(0)} C517 3225 is not a "
                            "UN/LOCODE ([A-Z]{2}[A-Z2-9]{3})", loc)
    return code


def _optional_locode(place: _Place, loc: Segment | None) -> str | None:
    return None if loc is None else _locode(place, loc)


def _place_name(loc: Segment | None) -> str | None:
    return None if loc is None else _text(loc.value(1, 3))


def _text(value: str) -> str | None:
    return token(value) or None


def _country(place: _Place, at: Segment, code: str, rule: str, name: str) -> str:
    alpha2 = ALPHA2_BY_ALPHA3.get(code)
    if alpha2 is None:
        raise place.refusal(rule, f"{name} is not an ISO 3166-1 alpha-3 country code", at)
    return alpha2


def _identity_document(place: _Place, documents: Sequence[tuple[Segment, Found]],
                       day: date) -> dict[str, Any]:
    """The person's first identity document; visas (DOC+V) are not identity documents."""
    group = next((g for g in documents if g[0].value(0) != VISA), None)
    if group is None:
        raise place.refusal("RULE_PERSON_INCOMPLETE", "the person has no identity document "
                            "(DOC other than a visa)", documents[0][0])
    doc, found = group
    kind = DOCUMENT_TYPES.get(doc.value(0))
    if kind is None:
        raise place.refusal("RULE_DOCUMENT_TYPE", "DOC C002 1001 is not a supported document "
                            f"type ({', '.join(DOCUMENT_TYPES)})", doc)
    number = doc.value(1)
    if not number:
        raise place.refusal("RULE_PERSON_INCOMPLETE", "DOC C503 1004 must give the "
                            "document's number", doc)
    expiry = found.get(("DTM", EXPIRY))
    issuing = found.get(("LOC", ISSUING_STATE))
    return {
        "document_type": kind,
        "number": number,
        "issuing_state": None if issuing is None else _country(
            place, issuing, issuing.value(1), "RULE_ISSUING_STATE", "LOC+91 C517 3225"),
        "expiry_date": None if expiry is None else _person_date(
            place, expiry, day, latest=False),
    }


def _local_time(place: _Place, dtm: Segment) -> str:
    value, form = dtm.value(0, 1), dtm.value(0, 2)
    form = form or next((f for f, (n, _, _) in LOCAL_TIME_FORMATS.items() if n == len(value)),
                        "")
    length, pattern, century = LOCAL_TIME_FORMATS.get(form, (0, "", ""))
    if length != len(value) or not value.isascii() or not value.isdigit():
        raise place.refusal("RULE_DATE_INVALID", f"DTM+{dtm.value(0)} C507 2380 must be a "
                            "date and time in format 201, 203 or 204", dtm)
    try:
        moment = datetime.strptime(century + value, pattern)
    except ValueError:
        raise place.refusal("RULE_DATE_INVALID", f"DTM+{dtm.value(0)} C507 2380 is not a "
                            "calendar date and time", dtm) from None
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")


def _person_date(place: _Place, dtm: Segment, voyage: date, *, latest: bool) -> date:
    """A date of birth (latest=True: the latest century that puts it on or before the
    voyage) or expiry (the century nearest the voyage), written CCYYMMDD (format 102) or,
    as many lists do, YYMMDD."""
    value, form = dtm.value(0, 1), dtm.value(0, 2)
    fits = value.isascii() and value.isdigit() and (
        len(value) == 8 if form == DATE_FORMAT else len(value) in (6, 8) and not form)
    try:
        if not fits:
            raise ValueError
        if len(value) == 8:
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        return _two_digit_year(int(value[:2]), int(value[2:4]), int(value[4:]), voyage, latest)
    except ValueError:
        raise place.refusal("RULE_DATE_INVALID", f"DTM+{dtm.value(0)} C507 2380 is not a "
                            "date (CCYYMMDD, format 102, or YYMMDD)", dtm) from None


def _two_digit_year(year: int, month: int, day: int, voyage: date, latest: bool) -> date:
    candidates = [date(century + year, month, day)
                  for century in range((voyage.year // 100 - 1) * 100,
                                       (voyage.year // 100 + 2) * 100, 100)]
    if latest:
        before = [d for d in candidates if d <= voyage]
        return before[-1] if before else candidates[0]
    return min(candidates, key=lambda d: abs((d - voyage).days))


# ---------------------------------------------------------------- writers of segments


def _voyage_body(record: Mapping[str, Any]) -> list[Segment]:
    ship = record["ship"]
    imo, call_sign = ship.get("imo_number"), ship.get("call_sign")
    identifier = (imo, IMO_NUMBER_QUALIFIER) if imo is not None else (
        (call_sign, CALL_SIGN_QUALIFIER) if call_sign is not None else ("", ""))
    flag = ship.get("flag_state")
    if flag is not None and flag not in ALPHA3_BY_ALPHA2:
        raise ValueError("flag_state is not an ISO 3166-1 alpha-2 country code")
    c222 = (*identifier, "", _required_text(ship["name"]), flag or "")
    out = [segment("TDT", "20", record.get("voyage_number") or "", MARITIME, "", "", "", "",
                   c222)]
    if imo is not None and call_sign is not None:
        out.append(segment("RFF", (CALL_SIGN_REFERENCE, call_sign)))
    time = _dtm_time(_local_moment(record))
    last_port = record.get("last_port_of_call")
    if record["arrival_or_departure"] == "Arrival":
        out += _optional_segment(last_port, lambda p: segment("LOC", DEPARTURE_PLACE, p))
        out += [segment("LOC", ARRIVAL_PLACE, record["port_of_arrival_departure"]),
                segment("DTM", (ARRIVAL_TIME, *time))]
    elif record["arrival_or_departure"] == "Departure":
        if last_port is not None:
            raise ValueError("a departure list's previous port of call has no place in PAXLST")
        out += [segment("LOC", DEPARTURE_PLACE, record["port_of_arrival_departure"]),
                segment("DTM", (DEPARTURE_TIME, *time))]
    else:
        raise ValueError("arrival_or_departure must be Arrival or Departure")
    return out


def _local_moment(record: Mapping[str, Any]) -> datetime:
    """The port-local time of arrival or departure: as the sender gave it, or the instant at
    the sender's offset (DTM carries no offset, so the offset is not written)."""
    instant = record.get("date_time_of_arrival_departure")
    if instant is None:
        local = datetime.fromisoformat(record["local_date_time_of_arrival_departure"])
        if local.tzinfo is not None:
            raise ValueError("local_date_time_of_arrival_departure must have no UTC offset")
        return local
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise ValueError("date_time_of_arrival_departure must be a timezone-aware datetime")
    offset = require_int(record["utc_offset_minutes"])
    return instant.astimezone(timezone(timedelta(minutes=offset))).replace(tzinfo=None)


def _dtm_time(moment: datetime) -> tuple[str, str]:
    """DTM C507 2380 and 2379 of a time: format 203, or 204 when it has seconds."""
    if moment.microsecond:
        raise ValueError("the time of arrival or departure has fractions of a second, which "
                         "DTM cannot hold")
    if moment.second:
        return moment.strftime("%Y%m%d%H%M%S"), "204"
    return moment.strftime("%Y%m%d%H%M"), "203"


def _document_body(document: Mapping[str, Any]) -> list[Segment]:
    code = DOCUMENT_CODES.get(document["document_type"])
    if code is None:
        raise ValueError("document_type has no PAXLST document code")
    out = [segment("DOC", (code, "110", "111"), _required_text(document["number"]))]
    expiry = document.get("expiry_date")
    out += _optional_segment(expiry, lambda d: segment("DTM", (EXPIRY, _date_text(d),
                                                               DATE_FORMAT)))
    issuing = document.get("issuing_state")
    out += _optional_segment(issuing, lambda s: segment("LOC", ISSUING_STATE,
                                                        ALPHA3_BY_ALPHA2[s]))
    return out


def _optional_segment(value: Any, build: Callable[[Any], Segment]) -> list[Segment]:
    return [] if value is None else [build(value)]


def _required_text(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a required text is empty or not a string")
    return value


def _name_text(value: str) -> str:
    """A name component as PAXLST carries it; a blank one would read back as no name."""
    if not _required_text(value).strip():
        raise ValueError("a name is blank")
    return value


def _date_text(value: date) -> str:
    return format_date(value).replace("-", "")


def _prepared(record: Mapping[str, Any]) -> str:
    """UNB S004 (syntax 4: CCYYMMDD:HHMM): when the gateway received the document, from the
    event header; a bare record has none, and the list's own time stands in."""
    header = record.get("header")
    received = None if header is None else header.get("received_at")
    moment = received.astimezone(UTC) if isinstance(received, datetime) else _local_moment(
        record)
    return moment.strftime("%Y%m%d:%H%M")

