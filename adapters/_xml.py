"""Rendering shared by the XML adapters: build, hold to the format's own XSD, serialise."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from message_formats import FormatError, XsdStore

from .base import RenderError

# What a builder raises when a record does not have the shape its schema promises.
RENDER_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, IndexError)

Builder = Callable[[Mapping[str, Any], int], etree._Element]


def document_version(record: Mapping[str, Any]) -> int:
    """The version to write: the event header's, or 1 for a bare record."""
    header = record.get("header")
    return 1 if header is None else int(header["document_version"])


def render_checked(
    xsd: XsdStore, xsd_name: str, label: str, build: Builder, record: Mapping[str, Any]
) -> bytes:
    """Builds the document, then holds it to its own XSD, so that render never emits what
    parse would refuse. UTF-8 with an XML declaration."""
    try:
        root = build(record, document_version(record))
    except RENDER_ERRORS as exc:
        raise RenderError(f"cannot render {label} record: {type(exc).__name__}: {exc}") from None
    try:
        xsd.validate(xsd_name, root)
    except FormatError as exc:
        raise RenderError(f"rendered {label} is not valid: {exc.message}") from None
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
