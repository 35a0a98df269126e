"""Bytes to raw segments: the BOM, UNA (or the default separators), the character set of
UNB S001, and one pass that splits segments, data elements, repetitions and components
with the release character honoured.

The split is done by str.split (C speed), not character by character: released service
characters are first swapped for private-use characters that do not occur in the text,
and swapped back in the few components that hold one. Every step is linear in the input
and bounded by `Limits`."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from itertools import islice, repeat
from typing import NamedTuple

from .errors import EdifactError, Level, Where
from .model import Components, Separators

UTF8_BOM = b"\xef\xbb\xbf"
_LEADING_SPACE = b" \t\r\n"
_BETWEEN_SEGMENTS = " \t\r\n"
# Level B may use the information separators instead of printable ones (ISO 9735, level B
# defaults: IS1 component, IS3 data element, IS4 segment terminator, IS2 repetition).
_LEVEL_B = Separators(component="\x1f", element="\x1d", decimal=".", release="",
                      repetition="\x1e", terminator="\x1c")
# UNB S001 0001 -> the Python codec of its repertoire (docs/edifact.md, "Character sets").
CODECS = {
    "UNOA": "ascii", "UNOB": "ascii", "UNOC": "latin-1", "UNOD": "iso8859-2",
    "UNOE": "iso8859-5", "UNOF": "iso8859-7", "UNOG": "iso8859-3", "UNOH": "iso8859-4",
    "UNOI": "iso8859-6", "UNOJ": "iso8859-8", "UNOK": "iso8859-9",
    "UNOX": "iso2022_jp_2", "UNOY": "utf-8", "UNOW": "utf-8",
}
SYNTAX_VERSIONS = frozenset({"1", "2", "3", "4"})
# C0 controls and DEL have no place in any repertoire's data (but as level B separators);
# CR, LF and TAB are let through (partners put line breaks between segments and, rarely,
# inside free text).
_CONTROLS = "".join(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
# Private-use characters: the BMP's area, then planes 15 and 16.
_PRIVATE_USE = (range(0xE000, 0xF900), range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE))
_ANY_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U0010ffff]")
_UNB_PROBE = 4096  # bytes enough for any UNB


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one interchange may hold: beyond them it is refused before (or
    while) it is split, so hostile input costs at most linear time in max_bytes."""

    max_bytes: int = 16 * 1024 * 1024
    max_segments: int = 500_000
    max_elements: int = 99  # data elements in one segment
    max_components: int = 512  # component separators in one segment
    max_repetitions: int = 512  # repetition separators in one segment (syntax 4)


DEFAULT_LIMITS = Limits()


class RawSegment(NamedTuple):
    """A segment as split, before the envelopes are read. A NamedTuple, not a dataclass:
    one is made per segment on the hot path, and a tuple is made several times faster."""

    tag: str
    elements: tuple[Components, ...]
    repetitions: tuple[tuple[Components, ...], ...]  # per element, only when repeated
    position: int  # 1-based position in the interchange, UNB = 1


@dataclass(frozen=True, slots=True)
class Tokens:
    separators: Separators
    syntax_id: str
    syntax_version: str
    segments: list[RawSegment]
    trailing: str  # what followed the last terminator, spaces and line breaks removed


def interchange_error(message: str, code: str, syntax_error: int, *,
                      service_segment: str = "", element: int = 0,
                      component: int = 0) -> EdifactError:
    return EdifactError(message, code=code, where=Where(
        Level.INTERCHANGE, syntax_error, service_segment=service_segment,
        element=element, component=component))


def tokenise(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Tokens:
    if len(data) > limits.max_bytes:
        raise interchange_error("the interchange is larger than the size limit",
                                "EDI_TOO_LARGE", 18)
    body = strip_leading(data)
    separators, body, advised = service_string_advice(body)
    syntax_id, syntax_version = syntax_identifier(body, separators)
    separators = for_version(separators, syntax_version, advised)
    text = decoded(body, syntax_id, separators)
    segments, trailing = split_segments(text, separators, limits)
    return Tokens(separators, syntax_id, syntax_version, segments, trailing)


def unb_probe(data: bytes) -> tuple[RawSegment, str, str] | None:
    """UNB alone, split as tokenise would, with the syntax identifier and version: for
    addressing the CONTRL of an interchange refused before its segments were read. None
    when even UNB cannot be read."""
    try:
        separators, body, _ = service_string_advice(strip_leading(data))
        syntax_id, syntax_version = syntax_identifier(body, separators)
        text = body[:_UNB_PROBE].decode("latin-1")
        end = first_terminator(text, separators)
        if end < 0:
            return None
        segments, _ = split_segments(text[:end + 1], separators, DEFAULT_LIMITS)
    except EdifactError:
        return None
    return segments[0], syntax_id, syntax_version


def first_terminator(text: str, separators: Separators) -> int:
    """Where the first segment ends (its terminator not released), -1 if it does not."""
    if not separators.release:
        return text.find(separators.terminator)
    release, terminator = re.escape(separators.release), re.escape(separators.terminator)
    found = re.match(f"(?:[^{release}{terminator}]|{release}.)*{terminator}", text, re.DOTALL)
    return found.end() - 1 if found is not None else -1


def strip_leading(data: bytes) -> bytes:
    """Without a UTF-8 byte order mark and the spaces or line breaks before UNA/UNB."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    return data.lstrip(_LEADING_SPACE)


def for_version(separators: Separators, syntax_version: str, advised: bool) -> Separators:
    """Repetitions exist from syntax 4 on: there UNA's fifth character (or, without UNA,
    "*") separates them; below 4 that character is reserved and means nothing."""
    if syntax_version == "4":
        if advised or separators.repetition:
            return separators
        repetition = "*"
    else:
        repetition = ""
    return Separators(separators.component, separators.element, separators.decimal,
                      separators.release, repetition, separators.terminator)


def service_string_advice(body: bytes) -> tuple[Separators, bytes, bool]:
    """The separators UNA declares (and the bytes after it), or the defaults; and whether
    UNA declared them."""
    if not body.startswith(b"UNA"):
        if body.startswith(b"UNB\x1d"):
            return _LEVEL_B, body, False
        return Separators(), body, False
    if len(body) < 9:
        raise interchange_error("UNA must hold six service characters", "EDI_UNA_INVALID",
                                20, service_segment="UNA")
    chars = body[3:9].decode("latin-1")
    component, element, decimal, release, repetition, terminator = tuple(chars)
    separators = Separators(component, element, decimal, "" if release == " " else release,
                            "" if repetition == " " else repetition, terminator)
    check_service_characters(separators)
    return separators, body[9:].lstrip(_LEADING_SPACE), True


def check_service_characters(separators: Separators) -> None:
    used = separators.service_characters()
    if (len(set(used)) != len(used) or any(c.isalnum() or ord(c) > 0x7F for c in used)
            or separators.decimal not in ".,"):
        raise interchange_error(
            "UNA service characters must be distinct, neither letters nor digits, and the "
            "decimal mark a full stop or a comma", "EDI_UNA_INVALID", 20, service_segment="UNA")


def syntax_identifier(body: bytes, separators: Separators) -> tuple[str, str]:
    """UNB S001 (syntax identifier and version), read before the text is decoded."""
    probe = body[:_UNB_PROBE].decode("latin-1")
    if not probe.startswith("UNB"):
        raise interchange_error("the interchange must begin with UNB (after UNA)",
                                "EDI_UNB_MISSING", 13, service_segment="UNB")
    unb = probe.split(separators.terminator, 1)[0].split(separators.element)
    s001 = unb[1].split(separators.component) if len(unb) > 1 else [""]
    syntax_id, version = s001[0], (s001[1] if len(s001) > 1 else "")
    if syntax_id not in CODECS:
        raise interchange_error("UNB S001 0001 must be a known syntax identifier (UNOA..UNOY)",
                                "EDI_SYNTAX_UNSUPPORTED", 2, service_segment="UNB",
                                element=1, component=1)
    if version not in SYNTAX_VERSIONS:
        raise interchange_error("UNB S001 0002 must be syntax version 1, 2, 3 or 4",
                                "EDI_SYNTAX_UNSUPPORTED", 2, service_segment="UNB",
                                element=1, component=2)
    return syntax_id, version


def decoded(body: bytes, syntax_id: str, separators: Separators) -> str:
    """The text in the declared repertoire. UNOA and UNOB are read as printable ASCII,
    lower case in UNOA included ("tuned to reality", docs/edifact.md)."""
    try:
        text = codecs.decode(body, CODECS[syntax_id])
    except UnicodeDecodeError as error:
        before = body[:error.start].count(separators.terminator.encode("latin-1"))
        raise charset_error(before) from None
    controls = "".join(c for c in _CONTROLS if c not in separators.service_characters())
    found = re.search(f"[{re.escape(controls)}]", text)
    if found is not None:
        raise charset_error(text.count(separators.terminator, 0, found.start()))
    return text


def charset_error(segments_before: int) -> EdifactError:
    return interchange_error(
        f"a character outside the declared repertoire (UNB S001) in segment "
        f"{segments_before + 1} of the interchange", "EDI_CHARSET", 21)


def split_segments(text: str, separators: Separators,
                   limits: Limits) -> tuple[list[RawSegment], str]:
    terminator = separators.terminator
    if text.count(terminator) > limits.max_segments:
        raise interchange_error("the interchange holds more segments than the limit",
                                "EDI_TOO_MANY_SEGMENTS", 18)
    released = Released.of(text, separators)
    if released is not None:
        text = released.protected(text)
    pieces = [piece.lstrip(_BETWEEN_SEGMENTS) for piece in text.split(terminator)]
    trailing = pieces.pop().rstrip(_BETWEEN_SEGMENTS)
    split = [piece.split(separators.element) for piece in pieces]
    check_bounds(pieces, split, separators, limits)
    component = separators.component
    special = Special(separators.repetition, released)
    if special.occurs_in(text):
        return [special.segment(parts, index, separators) if special.occurs_in(piece)
                else plain_segment(parts, component, index)
                for index, (piece, parts) in enumerate(zip(pieces, split, strict=True), 1)
                ], trailing
    # The usual case, written out: one RawSegment per segment, made by tuple.__new__ (a
    # NamedTuple's own constructor is a Python function, three times slower).
    new = tuple.__new__
    return [new(RawSegment, (parts[0], tuple([tuple(p.split(component)) for p in parts[1:]]),
                             (), index))
            for index, parts in enumerate(split, 1)], trailing


def plain_segment(parts: list[str], component: str, index: int) -> RawSegment:
    """A segment without repetitions or released characters."""
    return RawSegment(parts[0], tuple(tuple(p.split(component)) for p in parts[1:]), (), index)


def check_bounds(pieces: list[str], split: list[list[str]], separators: Separators,
                 limits: Limits) -> None:
    """Each segment has a tag and no more elements and components than the limits allow:
    checked over all segments at once, the offending one looked for only when there is one."""
    if not all(pieces):
        index = pieces.index("") + 1
        raise interchange_error(f"segment {index} of the interchange is empty",
                                "EDI_EMPTY_SEGMENT", 13)
    if split and max(map(len, split)) > limits.max_elements + 1:
        index = next(i for i, parts in enumerate(split, 1)
                     if len(parts) > limits.max_elements + 1)
        raise interchange_error(f"segment {index} holds more data elements than the limit",
                                "EDI_TOO_MANY_ELEMENTS", 16)
    check_separators(pieces, separators.component, limits.max_components,
                "components", "EDI_TOO_MANY_COMPONENTS", 16)
    if separators.repetition:  # each repetition is a tuple: 60 bytes held per byte read
        check_separators(pieces, separators.repetition, limits.max_repetitions,
                    "repetitions", "EDI_TOO_MANY_REPETITIONS", 35)


def check_separators(pieces: list[str], separator: str, most: int, what: str, code: str,
                syntax_error: int) -> None:
    """No segment holds more than `most` of `separator`."""
    counts = list(map(str.count, pieces, repeat(separator)))
    if counts and max(counts) > most:
        index = next(i for i, count in enumerate(counts, 1) if count > most)
        raise interchange_error(f"segment {index} holds more {what} than the limit", code,
                                syntax_error)


@dataclass(frozen=True, slots=True)
class Special:
    """What sends a segment down the slower path: repetitions, released characters."""

    repetition: str
    released: Released | None

    def occurs_in(self, piece: str) -> bool:
        return bool(self.repetition and self.repetition in piece) or (
            self.released is not None and self.released.occurs_in(piece))

    def segment(self, parts: list[str], index: int, separators: Separators) -> RawSegment:
        component, repetition = separators.component, self.repetition
        tag = parts[0]
        repetitions: tuple[tuple[Components, ...], ...] = ()
        if repetition:
            repetitions = tuple(tuple(tuple(r.split(component)) for r in part.split(repetition))
                                for part in parts[1:])
            elements = tuple(reps[0] for reps in repetitions)
            if all(len(reps) == 1 for reps in repetitions):
                repetitions = ()
        else:
            elements = tuple(tuple(part.split(component)) for part in parts[1:])
        if self.released is not None:
            tag = self.released.restored(tag)
            elements = self.released.restored_elements(elements)
            repetitions = tuple(self.released.restored_elements(r) for r in repetitions)
        return RawSegment(tag, elements, repetitions, index)


def unused_characters(text: str, count: int) -> list[str]:
    """`count` private-use characters that do not occur in `text`, found in linear time:
    text without any (nearly all) is searched once, ASCII not at all. An interchange
    that uses every private-use character (137 000 of them) is refused."""
    if text.isascii() or _ANY_PRIVATE_USE.search(text) is None:
        return [chr(_PRIVATE_USE[0].start + n) for n in range(count)]
    present = set(text)
    free = (c for area in _PRIVATE_USE for code in area if (c := chr(code)) not in present)
    found = list(islice(free, count))
    if len(found) < count:
        raise interchange_error("the interchange uses every private-use character",
                                "EDI_CHARSET", 21)
    return found


@dataclass(frozen=True, slots=True)
class Released:
    """Released characters swapped for private-use characters absent from the text."""

    release: str
    swaps: dict[str, str]  # "?+" -> placeholder, in the order they must be replaced
    table: dict[int, str]  # placeholder -> the literal character
    pattern: re.Pattern[str]  # any placeholder

    @classmethod
    def of(cls, text: str, separators: Separators) -> Released | None:
        release = separators.release
        if not release or release not in text:
            return None
        literals = (release, *(c for c in separators.service_characters() if c != release))
        placeholders = unused_characters(text, len(literals))
        swaps = {release + literal: placeholder
                 for literal, placeholder in zip(literals, placeholders, strict=True)}
        table = {ord(p): literal for literal, p in zip(literals, placeholders, strict=True)}
        return cls(release, swaps, table, re.compile(f"[{''.join(placeholders)}]"))

    def protected(self, text: str) -> str:
        for released, placeholder in self.swaps.items():
            text = text.replace(released, placeholder)
        if self.release in text:  # a release before an ordinary character: just that one
            if text.endswith(self.release):
                raise interchange_error("the interchange ends with a release character "
                                        "that releases nothing", "EDI_RELEASE_UNTERMINATED", 22)
            text = re.sub(f"{re.escape(self.release)}(.)", r"\1", text, flags=re.DOTALL)
        return text

    def occurs_in(self, piece: str) -> bool:
        return self.pattern.search(piece) is not None

    def restored(self, value: str) -> str:
        return value.translate(self.table)

    def restored_elements(self, elements: tuple[Components, ...]) -> tuple[Components, ...]:
        return tuple(tuple(c.translate(self.table) for c in components)
                     for components in elements)

