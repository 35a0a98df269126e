"""Hostile XML, built in code from the valid FAL 1 arrival (nothing large is kept in the
repository): every class of document a parser of untrusted XML must refuse, each with the
small set of stable error codes the gateway may answer it with.

`hostile_corpus` makes the documents (and, under `scratch`, the files some of them point
at: a 64 MiB file, an external DTD); `fifo_corpus` makes documents whose external entity,
parameter entity or external DTD is a named pipe, so that a parser that ever opens it
blocks (and the test can tell, see `fifo_has_reader`)."""

from __future__ import annotations

import errno
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

FAL1_SAMPLES = Path(__file__).parents[1] / "data" / "fal1"
BASE = (FAL1_SAMPLES / "valid_arrival.xml").read_bytes()
ROOT = b"GeneralDeclaration"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
SHIP_NAME = b"<Name>PX HARMONY</Name>"
REMARKS = re.compile(rb"<Remarks>.*?</Remarks>", re.S)

MIB = 1024 * 1024
BIG_FILE_BYTES = 64 * MIB
OVERSIZE_BYTES = 64 * MIB
NOWHERE = "http://127.0.0.1:1"  # nothing listens there: a fetch fails, it never hangs

# The codes each class may be refused with.
DTD = frozenset({"XML_DTD_FORBIDDEN"})
SIZE = frozenset({"DOCUMENT_TOO_LARGE", "XML_TOO_LARGE"})
MISMATCH = frozenset({"XML_ENCODING_MISMATCH"})
BAD_ENCODING = frozenset({"XML_ENCODING_INVALID", "XML_ENCODING_UNSUPPORTED"})
MALFORMED = frozenset({"XML_MALFORMED"})
RANDOM = MALFORMED | BAD_ENCODING | MISMATCH
EMPTY = frozenset({"DOCUMENT_EMPTY"})
EXPENSIVE = frozenset({"XML_LIMIT_EXCEEDED", "PARSE_TIME_EXCEEDED", "PARSE_MEMORY_EXCEEDED"})
OUTSIDE = frozenset({"XML_EXTERNAL_REFERENCE"})

STABLE_CODE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\Z")


@dataclass(frozen=True, slots=True)
class Hostile:
    """One hostile document and the codes it may be refused with."""

    name: str
    document: bytes
    expected: frozenset[str]


def is_stable_code(code: str | None) -> bool:
    """An UPPER_SNAKE code, not the catch-all of an unexpected failure."""
    return code is not None and code != "INTERNAL_ERROR" and bool(STABLE_CODE.match(code))


# -- building blocks ---------------------------------------------------------------------------


def with_doctype(doctype: bytes, *, ship_name: bytes | None = None,
                 base: bytes = BASE) -> bytes:
    """`base` with `doctype` right after its XML declaration and, when given, `ship_name`
    (an entity reference, say) as the ship's name."""
    assert base.startswith(DECLARATION)
    document = DECLARATION + doctype + b"\n" + base[len(DECLARATION):]
    if ship_name is not None:
        document = with_ship_name(ship_name, document)
    return document


def with_ship_name(name: bytes, base: bytes = BASE) -> bytes:
    assert SHIP_NAME in base
    return base.replace(SHIP_NAME, b"<Name>" + name + b"</Name>", 1)


def with_remarks(content: bytes, base: bytes = BASE, *, attributes: bytes = b"") -> bytes:
    """`base` with `content` (any bytes) as the inside of its <Remarks>."""
    remarks = b"<Remarks" + attributes + b">" + content + b"</Remarks>"
    document, count = REMARKS.subn(lambda _: remarks, base, count=1)
    assert count == 1
    return document


def entity_doctype(system_id: str) -> bytes:
    """An internal subset declaring the general entity `e` as external."""
    return b'<!DOCTYPE %s [<!ENTITY e SYSTEM "%s">]>' % (ROOT, system_id.encode())


def parameter_entity_doctype(system_id: str) -> bytes:
    """An internal subset declaring the external parameter entity `p` and referring to it."""
    return b'<!DOCTYPE %s [<!ENTITY %% p SYSTEM "%s"> %%p;]>' % (ROOT, system_id.encode())


def billion_laughs() -> bytes:
    levels = [b'<!ENTITY lol0 "lol">']
    levels += [b'<!ENTITY lol%d "%s">' % (n, b"&lol%d;" % (n - 1) * 10) for n in range(1, 10)]
    return with_doctype(b"<!DOCTYPE %s [\n%s\n]>" % (ROOT, b"\n".join(levels)),
                        ship_name=b"&lol9;")


def quadratic_blowup(entity_bytes: int = 100_000, references: int = 10_000) -> bytes:
    """One entity of `entity_bytes` referred to `references` times: about 1 GB expanded,
    not even 200 KB sent."""
    doctype = b'<!DOCTYPE %s [<!ENTITY a "%s">]>' % (ROOT, b"A" * entity_bytes)
    document = with_remarks(b"&a;" * references, with_doctype(doctype))
    assert len(document) < 4 * MIB
    return document


def deep_nesting(depth: int = 200_000) -> bytes:
    return with_remarks(b"<x>" * depth + b"</x>" * depth)


def many_attributes(count: int = 200_000) -> bytes:
    attributes = b"".join(b' a%d="x"' % n for n in range(count))
    return with_remarks(b"Pilot boarding at Wusongkou anchorage.", attributes=attributes)


def oversize(size: int = OVERSIZE_BYTES) -> bytes:
    return with_remarks(b"A" * size)


def lying_encoding(declared: bytes) -> bytes:
    """UTF-8 bytes (accented Latin in the ship's name, the sample's Chinese elsewhere)
    under a declaration of another encoding."""
    document = with_ship_name("ÉTOILE DU NORD".encode())
    return document.replace(b'encoding="UTF-8"', b'encoding="%s"' % declared, 1)


def utf16_without_bom() -> bytes:
    text = BASE.decode("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"', 1)
    return text.encode("utf-16-le")  # no byte order mark


def truncated() -> bytes:
    return BASE[: len(BASE) // 2]


def random_bytes(size: int = 8192, seed: int = 20260315) -> bytes:
    return random.Random(seed).randbytes(size)


def with_processing_instruction(pi: bytes) -> bytes:
    return DECLARATION + pi + b"\n" + BASE[len(DECLARATION):]


def xinclude() -> bytes:
    return with_ship_name(b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                          b'href="file:///etc/passwd" parse="text"/>')


def remote_schema_location(remote: str = NOWHERE) -> bytes:
    root = b'<GeneralDeclaration xmlns="urn:px:fal:1"'
    assert root in BASE
    return BASE.replace(root, root + b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
                        b' xsi:schemaLocation="urn:px:fal:1 %s/evil.xsd"' % remote.encode(), 1)


# -- files the documents point at --------------------------------------------------------------


def write_big_file(path: Path, size: int = BIG_FILE_BYTES) -> Path:
    """`size` bytes of text a parser would have to read to the end (one long comment), written
    for real rather than sparse."""
    head, tail = b"<!-- ", b" -->\n"
    block = b"0123456789abcdef" * 4096
    with open(path, "wb") as out:
        out.write(head)
        left = size - len(head) - len(tail)
        while left > 0:
            out.write(block[:left])
            left -= len(block)
        out.write(tail)
    return path


def write_external_dtd(path: Path) -> Path:
    """A DTD defining the entity `e`: honoured, it would fill the ship's name."""
    path.write_bytes(b'<!ENTITY e "from an external DTD">\n')
    return path


# -- the corpora -------------------------------------------------------------------------------


def hostile_corpus(scratch: Path, *, remote: str = NOWHERE, fifo: Path | None = None
                   ) -> list[Hostile]:
    """Every class of hostile document, in the order they are best sent: those that would
    make a careless parser open a named pipe (`fifo_corpus`, when `fifo` is given), read a
    large file or a device come last, the pipe's first (a parser blocked on it spins
    nothing, and `fifo_has_reader` tells). Writes the files some of them name under
    `scratch`; `remote` is the http://host:port the network ones name."""
    big = write_big_file(scratch / "big-64MiB.txt").as_uri()
    dtd = write_external_dtd(scratch / "evil.dtd").as_uri()
    return [
        Hostile("entity_file", with_doctype(entity_doctype("file:///etc/passwd"),
                                            ship_name=b"&e;"), DTD),
        Hostile("entity_http", with_doctype(entity_doctype(f"{remote}/x"), ship_name=b"&e;"),
                DTD),
        Hostile("parameter_entity_file",
                with_doctype(parameter_entity_doctype("file:///etc/hostname")), DTD),
        Hostile("external_dtd_system",
                with_doctype(b'<!DOCTYPE %s SYSTEM "%s">' % (ROOT, dtd.encode()),
                             ship_name=b"&e;"), DTD),
        Hostile("external_dtd_public_http",
                with_doctype(b'<!DOCTYPE %s PUBLIC "-//PX//EVIL//EN" "%s/evil.dtd">'
                             % (ROOT, remote.encode()), ship_name=b"&e;"), DTD),
        Hostile("billion_laughs", billion_laughs(), DTD),
        Hostile("quadratic_blowup", quadratic_blowup(), DTD),
        Hostile("xinclude", xinclude(), OUTSIDE),
        Hostile("remote_schema_location", remote_schema_location(remote), OUTSIDE),
        Hostile("deep_nesting_200k", deep_nesting(), MALFORMED),
        Hostile("oversize_64MiB", oversize(), SIZE),
        Hostile("attributes_200k", many_attributes(), EXPENSIVE),
        Hostile("utf8_declared_iso_8859_1", lying_encoding(b"ISO-8859-1"), MISMATCH),
        Hostile("utf8_declared_gbk", lying_encoding(b"GBK"), MISMATCH),
        Hostile("utf16_without_bom", utf16_without_bom(), BAD_ENCODING),
        Hostile("invalid_utf8", with_ship_name(b"PX \xff\xfe\xc0\xaf HARMONY"), BAD_ENCODING),
        Hostile("nul_bytes", with_ship_name(b"PX \x00HARMONY\x00"), MALFORMED),
        Hostile("empty", b"", EMPTY),
        Hostile("random_bytes", random_bytes(), RANDOM),
        Hostile("truncated", truncated(), MALFORMED),
        Hostile("pi_stylesheet_http", with_processing_instruction(
            b'<?xml-stylesheet type="text/xsl" href="%s/x.xsl"?>' % remote.encode()),
            OUTSIDE),
        Hostile("pi_file", with_processing_instruction(
            b'<?xml-stylesheet type="text/xsl" href="file:///etc/passwd"?>'), OUTSIDE),
        *(fifo_corpus(fifo) if fifo is not None else ()),
        Hostile("parameter_entity_big_file", with_doctype(parameter_entity_doctype(big)), DTD),
        Hostile("parameter_entity_dev_urandom",
                with_doctype(parameter_entity_doctype("file:///dev/urandom")), DTD),
        Hostile("parameter_entity_dev_zero",
                with_doctype(parameter_entity_doctype("file:///dev/zero")), DTD),
    ]


def fifo_corpus(fifo: Path) -> list[Hostile]:
    """Documents naming the named pipe `fifo` as an external entity, a parameter entity and
    an external DTD."""
    uri = fifo.as_uri()
    return [
        Hostile("fifo_entity", with_doctype(entity_doctype(uri), ship_name=b"&e;"), DTD),
        Hostile("fifo_parameter_entity", with_doctype(parameter_entity_doctype(uri)), DTD),
        Hostile("fifo_external_dtd",
                with_doctype(b'<!DOCTYPE %s SYSTEM "%s">' % (ROOT, uri.encode()),
                             ship_name=b"&e;"), DTD),
    ]


def fifo_has_reader(fifo: Path) -> bool:
    """Whether some process has the named pipe open for reading (or is blocked opening it):
    a non-blocking open for writing then succeeds, and otherwise fails with ENXIO. Closing
    the write end at once hands such a reader end-of-file, which unblocks it."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return False
        raise
    os.close(fd)
    return True
