"""HTML made safe by construction: every value put into a template is escaped unless it is
`Markup` already (what another template made). Templates are `string.Template` files shipped
in this package (`templates/`), loaded once per console."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from importlib import resources
from string import Template
from types import MappingProxyType


class Markup(str):
    """Text that is HTML already: put into a template as it is."""

    __slots__ = ()


def escape(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def fill(template: Template, **values: object) -> Markup:
    """The template with each value escaped (a Markup value as it is); KeyError for a name
    the template has and `values` lacks."""
    return Markup(template.substitute({name: escape(value) for name, value in values.items()}))


def join(parts: Iterable[Markup]) -> Markup:
    return Markup("".join(parts))


def load_templates(package: str = "gateway.console", folder: str = "templates"
                   ) -> Mapping[str, Template]:
    """Every `*.html` of the package's folder, by its name without the suffix."""
    found = resources.files(package).joinpath(folder)
    return MappingProxyType({entry.name.removesuffix(".html"): Template(entry.read_text("utf-8"))
                             for entry in found.iterdir() if entry.name.endswith(".html")})
