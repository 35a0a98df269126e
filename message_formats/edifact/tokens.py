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
_PRIVATE_USE = range(0xE000, 0xF900)
_UNB_PROBE = 4096  # bytes enough for any UNB


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one interchange may hold: beyond them it is refused before (or
    while) it is split, so hostile input costs at most linear time in max_bytes."""

    max_bytes: int = 16 * 1024 * 1024
    max_segments: int = 500_000
    max_elements: int = 99  # data elements in one segment
    max_components: int = 512  # component separators in one segment


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
    pieces = text.split(terminator)
    trailing = pieces.pop().strip(_BETWEEN_SEGMENTS)
    element, component = separators.element, separators.component
    special = Special(separators.repetition, released)
    max_elements, max_components = limits.max_elements + 1, limits.max_components
    segments = []
    for index, piece in enumerate(pieces, start=1):
        piece = piece.lstrip(_BETWEEN_SEGMENTS)
        parts = piece.split(element)
        if (not piece or len(parts) > max_elements
                or piece.count(component) > max_components):
            raise segment_refused(piece, index, separators, limits)
        if special.occurs_in(piece):
            segments.append(special.segment(parts, index, separators))
        else:
            segments.append(RawSegment(
                parts[0], tuple([tuple(part.split(component)) for part in parts[1:]]), (),
                index))
    return segments, trailing


def segment_refused(piece: str, index: int, separators: Separators,
                    limits: Limits) -> EdifactError:
    if not piece:
        return interchange_error(f"segment {index} of the interchange is empty",
                                 "EDI_EMPTY_SEGMENT", 13)
    if piece.count(separators.element) > limits.max_elements:
        return interchange_error(f"segment {index} holds more data elements than the limit",
                                 "EDI_TOO_MANY_ELEMENTS", 16)
    return interchange_error(f"segment {index} holds more components than the limit",
                             "EDI_TOO_MANY_COMPONENTS", 16)


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
        free = (chr(c) for c in _PRIVATE_USE if chr(c) not in text)
        placeholders = [next(free) for _ in literals]
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

