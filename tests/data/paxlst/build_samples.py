"""Writes the synthetic PAXLST samples of fal5/ (crew lists) and fal6/ (passenger lists) and
their expected.json, from the structures in docs/edifact-research.md §4 (SOURCES.md).

    python tests/data/paxlst/build_samples.py

Every person, ship and voyage here is invented; the persons are numbered, not named after
anyone."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
CREW_ADAPTER = {"format_id": "paxlst-crew", "document_type": "fal5",
                "media_type": "application/EDIFACT", "schema_name": "px.canonical.Fal5CrewList",
                "schema_version": 1}
PASSENGER_ADAPTER = {**CREW_ADAPTER, "format_id": "paxlst-passengers", "document_type": "fal6",
                     "schema_name": "px.canonical.Fal6PassengerList"}
FAMILY = ("CHEN", "SANTOS", "NGUYEN", "OKAFOR", "IVANOV", "GARCIA", "KOWALSKI", "SATO",
          "HASSAN", "MÜLLER")
NATIONALITIES = ("CHN", "PHL", "VNM", "NGA", "UKR", "ESP", "POL", "JPN", "EGY", "DEU")
RANKS = ("MASTER", "CHIEF OFFICER", "CHIEF ENGINEER", "BOSUN", "AB SEAMAN", "COOK")


@dataclass(frozen=True)
class Syntax:
    """How an interchange is written: its UNA (or none), UNB S001 and line breaks."""

    una: str = "UNA:+.? '"
    charset: str = "UNOC"
    version: str = "3"
    newline: str = "\r\n"

    @property
    def element(self) -> str:
        return self.una[4] if self.una else "+"

    @property
    def terminator(self) -> str:
        return self.una[8] if self.una else "'"

    def write(self, messages: Sequence[list[str]], reference: str = "PX0001",
              groups: bool = False) -> bytes:
        """Segments written with '+' and "'" are turned into this syntax's separators."""
        date = "20260314:2210" if self.version == "4" else "260314:2210"
        lines = [f"UNB+{self.charset}:{self.version}+PXLINE:ZZZ+PORTGW:ZZZ+{date}+{reference}"]
        if groups:
            lines.append(f"UNG+PAXLST+PXLINE+PORTGW+{date}+G1+UN+D:05B")
        for number, body in enumerate(messages, start=1):
            s010 = f"+PX{reference}+{number:02d}:{'F' if number == len(messages) else 'C'}" \
                if len(messages) > 1 else ""
            lines += [f"UNH+M{number}+PAXLST:D:05B:UN:IATA{s010}", *body,
                      f"UNT+{len(body) + 2}+M{number}"]
        if groups:
            lines.append(f"UNE+{len(messages)}+G1")
        lines.append(f"UNZ+{1 if groups else len(messages)}+{reference}")
        text = self.newline.join(self._own(line) for line in lines)
        return ((self.una + self.newline) if self.una else "").encode() + text.encode(
            "utf-8" if self.charset == "UNOY" else "latin-1")

    def _own(self, line: str) -> str:
        return line.replace("+", self.element) + self.terminator


def voyage(list_code: str, *, version: str = "", mode: str = "1",
           vessel: str = "9456783:146::PX EASTERN DAWN:HK", arrival: str = "CNSHA",
           time: str = "DTM+232:2603150630:201") -> list[str]:
    return [f"BGM+{list_code}" + (f"+:{version}" if version else ""),
            f"TDT+20+0312E+{mode}+++++{vessel}", "RFF+VM:VRQD4", "LOC+125+KRPUS",
            f"LOC+87+{arrival}", time]


def crew_member(n: int, *, nationality: str = "", birth: str = "",
                expiry: str = "DTM+36:310218") -> list[str]:
    out = [f"NAD+FM+++{FAMILY[n % 10]}:CREW:{n}", "ATT+2++M",
           birth or f"DTM+329:{70 + n % 20:02d}0{1 + n % 9}1{n % 10}",
           f"LOC+180+:::PORT TOWN {n}"] if n % 3 else [
        f"NAD+FM+++{FAMILY[n % 10]}:CREW {n}", birth or f"DTM+329:19{70 + n % 20}0514:102"]
    if n < len(RANKS):
        out.append(f"EMP+1++:::{RANKS[n]}")
    out += [f"NAT+2+{nationality or NATIONALITIES[n % 10]}",
            f"DOC+{'P' if n % 4 else 'I'}:110:111+E{n:08d}"]
    if n % 2 == 0:
        out += [expiry, f"LOC+91+{NATIONALITIES[n % 10]}"]
    return out


def passenger(n: int, *, nationality: str = "", transit: bool = False) -> list[str]:
    return [f"NAD+{'DDU' if transit else 'FL'}+++{FAMILY[n % 10]}:PASSENGER:{n}",
            f"ATT+2++{'F' if n % 2 else 'M'}", f"DTM+329:{1950 + n % 60}0{1 + n % 9}2{n % 8}:102",
            "LOC+178+KRPUS", "LOC+179+CNSHA", f"NAT+2+{nationality or NATIONALITIES[n % 10]}",
            f"RFF+AVF:BK{n:05d}", f"DOC+P:110:111+P{n:08d}", f"DTM+36:20{30 + n % 9}0101:102",
            f"LOC+91+{NATIONALITIES[n % 10]}"]


def crew_list(count: int, member: Callable[[int], list[str]] = crew_member,
              **voyage_args: str) -> list[str]:
    body = voyage("250", **voyage_args)
    for n in range(count):
        body += member(n)
    return [*body, f"CNT+41:{count}"]


def passenger_list(count: int, member: Callable[[int], list[str]] = passenger,
                   transit: Sequence[int] = ()) -> list[str]:
    body = voyage("745")
    for n in range(count):
        body += passenger(n, transit=n in transit) if member is passenger else member(n)
    return [*body, f"CNT+42:{count}"]


def lying_unt(data: bytes) -> bytes:
    return data.replace(b"UNT+", b"UNT+1", 1)


def with_empty_segment(data: bytes) -> bytes:
    return data.replace(b"ATT+2++M'", b"ATT+2++M''", 1)


def crew_samples() -> dict[str, tuple[bytes, dict[str, object]]]:
    plain = Syntax()
    key = "9456783:0312E:A:CNSHA"
    split = crew_list(7)
    head, members = split[:6], split[6:-1]
    halfway = next(i for i, s in enumerate(members) if s.startswith("NAD") and i > 20)
    return {
        "crew_list.edi": (plain.write([crew_list(6)]), _valid(key, 1)),
        "crew_list_one_line.edi": (
            Syntax(una="", charset="UNOA", version="4", newline="").write(
                [crew_list(2, version="2", vessel="VRQD4:103::PX EASTERN DAWN")]),
            _valid("VRQD4:0312E:A:CNSHA", 2)),
        "crew_list_split_over_two_messages.edi": (
            plain.write([[*head, *members[:halfway], "CNT+41:7"],
                         [*head, *members[halfway:], "CNT+41:7"]], groups=True),
            _valid(key, 1)),
        "crew_list_expired_document.edi": (
            plain.write([crew_list(3, member=lambda n: crew_member(
                n, expiry="DTM+36:20260301:102"))]),
            _valid(key, 1, ["RULE_DOCUMENT_EXPIRED", "RULE_DOCUMENT_EXPIRED"])),
        "crew_unt_count_lies.edi": (lying_unt(plain.write([crew_list(3)])),
                                    {"code": "EDI_UNT_SEGMENT_COUNT", "line": None}),
        "crew_empty_segment.edi": (with_empty_segment(plain.write([crew_list(3)])),
                                   {"code": "EDI_EMPTY_SEGMENT", "line": None}),
        "crew_bad_birth_date.edi": (
            plain.write([crew_list(3, member=lambda n: crew_member(
                n, birth="DTM+329:19710231:102" if n == 2 else ""))]),
            {"code": "RULE_DATE_INVALID", "line": 24}),
        "crew_bad_nationality.edi": (
            plain.write([crew_list(3, member=lambda n: crew_member(
                n, nationality="XYZ" if n == 1 else ""))]),
            {"code": "RULE_NATIONALITY", "line": 20}),
        "crew_count_lies.edi": (
            plain.write([[*crew_list(3)[:-1], "CNT+41:4"]]),
            {"code": "RULE_CREW_COUNT", "line": 31}),
        "crew_bad_imo_check_digit.edi": (
            plain.write([crew_list(2, vessel="9456784:146::PX EASTERN DAWN:HK")]),
            {"code": "RULE_IMO_CHECK_DIGIT", "line": 3}),
        "crew_air_flight.edi": (
            plain.write([crew_list(2, mode="4", vessel="")]),
            {"code": "RULE_TRANSPORT_MODE", "line": 3}),
        "passenger_list_sent_as_crew.edi": (
            plain.write([passenger_list(2)]), {"code": "RULE_LIST_TYPE", "line": 2}),
    }


def passenger_samples() -> dict[str, tuple[bytes, dict[str, object]]]:
    plain = Syntax()
    key = "9456783:0312E:A:CNSHA"
    custom = Syntax(una="UNA:*.? $", charset="UNOB")
    released = passenger_list(2)
    released[released.index("NAD+FL+++CHEN:PASSENGER:0")] = "NAD+FL+++O?'NEILL?*SMITH:ANN?:MARIE"
    repeated = [s.replace("ATT+2++M", "ATT+2++M*M") for s in passenger_list(3)]
    return {
        "passengers_2.edi": (plain.write([passenger_list(2)]), _valid(key, 1)),
        "passengers_10_with_transit.edi": (plain.write([passenger_list(10, transit=(3, 7))]),
                                           _valid(key, 1)),
        "passengers_100.edi": (plain.write([passenger_list(100)]), _valid(key, 1)),
        "passengers_custom_separators_and_release.edi": (custom.write([released]),
                                                         _valid(key, 1)),
        "passengers_syntax4_repetitions.edi": (
            Syntax(una="UNA:+.?*'", charset="UNOY", version="4").write([repeated]),
            _valid(key, 1)),
        "passengers_unt_count_lies.edi": (lying_unt(plain.write([passenger_list(2)])),
                                          {"code": "EDI_UNT_SEGMENT_COUNT", "line": None}),
        "passengers_empty_segment.edi": (with_empty_segment(plain.write([passenger_list(2)])),
                                         {"code": "EDI_EMPTY_SEGMENT", "line": None}),
        "passengers_bad_arrival_date.edi": (
            plain.write([passenger_list(2)]).replace(b"DTM+232:2603150630:201",
                                                     b"DTM+232:2602300630:201"),
            {"code": "RULE_DATE_INVALID", "line": 7}),
        "passengers_bad_nationality.edi": (
            plain.write([passenger_list(2)]).replace(b"NAT+2+PHL", b"NAT+2+PH"),
            {"code": "RULE_NATIONALITY", "line": 23}),
    }


def _valid(key: str, version: int, warnings: Sequence[str] = ()) -> dict[str, object]:
    outcome: dict[str, object] = {"business_key": key, "document_version": version}
    if warnings:
        outcome["warnings"] = list(warnings)
    return outcome


def write(directory: Path, adapter: dict[str, object],
          samples: dict[str, tuple[bytes, dict[str, object]]]) -> None:
    directory.mkdir(exist_ok=True)
    expected: dict[str, object] = {"_adapter": adapter}
    for name, (data, outcome) in samples.items():
        (directory / name).write_bytes(data)
        expected[name] = outcome
    (directory / "expected.json").write_text(json.dumps(expected, indent=2) + "\n",
                                             encoding="utf-8")


if __name__ == "__main__":
    write(HERE / "fal5", CREW_ADAPTER, crew_samples())
    write(HERE / "fal6", PASSENGER_ADAPTER, passenger_samples())
