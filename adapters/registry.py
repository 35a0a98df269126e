"""Adapters by format id: the built-ins plus those installed under the entry-point group
`port_exchange_gateway.adapters` (each entry point a zero-argument factory or class)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import cast

from message_formats import AvroSchemas, SafeXmlParser, XsdStore

from ._xml import XmlAdapter
from .base import (
    ENTRY_POINT_GROUP,
    Adapter,
    AdapterRegistrationError,
    UnknownFormatError,
)
from .fal1 import Fal1Adapter
from .fal2 import Fal2Adapter
from .fal3 import Fal3Adapter
from .fal4 import Fal4Adapter
from .fal5 import Fal5Adapter
from .fal6 import Fal6Adapter
from .fal7 import Fal7Adapter
from .manifest import CustomsManifestAdapter
from .warning import SafetyWarningAdapter
from .waybill import MultimodalWaybillAdapter

BUILTIN: tuple[type[XmlAdapter], ...] = (
    Fal1Adapter, Fal2Adapter, Fal3Adapter, Fal4Adapter, Fal5Adapter, Fal6Adapter, Fal7Adapter,
    CustomsManifestAdapter, MultimodalWaybillAdapter, SafetyWarningAdapter,
)


def builtin_adapters(xsd_store: XsdStore, xml_parser: SafeXmlParser) -> tuple[Adapter, ...]:
    return tuple(kind(xsd_store=xsd_store, xml_parser=xml_parser)
                 for kind in BUILTIN)


class AdapterRegistry:
    """Holds one adapter per format id. The adapters of `default()` share one XML parser,
    which is not thread-safe: build one registry per thread that parses."""

    __slots__ = ("_adapters", "_schemas")

    def __init__(
        self, adapters: Iterable[Adapter] = (), *, schemas: AvroSchemas | None = None
    ) -> None:
        self._adapters: dict[str, Adapter] = {}
        self._schemas = schemas
        for adapter in adapters:
            self.register(adapter)

    @classmethod
    def default(
        cls,
        schemas: AvroSchemas | None = None,
        *,
        xsd_store: XsdStore | None = None,
        xml_parser: SafeXmlParser | None = None,
        group: str = ENTRY_POINT_GROUP,
    ) -> AdapterRegistry:
        """Built-ins, then installed plug-ins. With `schemas`, every adapter's canonical
        schema must be among them."""
        registry = cls(schemas=schemas)
        shared_xsd = xsd_store if xsd_store is not None else XsdStore()
        shared_parser = xml_parser if xml_parser is not None else SafeXmlParser()
        for adapter in builtin_adapters(shared_xsd, shared_parser):
            registry.register(adapter)
        for entry_point in entry_points(group=group):
            registry.register(_load_plugin(entry_point))
        return registry

    def register(self, adapter: Adapter) -> None:
        if not isinstance(adapter, Adapter):
            raise AdapterRegistrationError(f"{adapter!r} does not implement the Adapter protocol")
        if adapter.format_id in self._adapters:
            raise AdapterRegistrationError(f"format {adapter.format_id!r} registered twice")
        if self._schemas is not None and adapter.schema_name not in self._schemas:
            raise AdapterRegistrationError(
                f"format {adapter.format_id!r} maps to unknown Avro schema {adapter.schema_name!r}"
            )
        self._adapters[adapter.format_id] = adapter

    def get(self, format_id: str) -> Adapter:
        try:
            return self._adapters[format_id]
        except KeyError:
            raise UnknownFormatError(f"no adapter for format {format_id!r}") from None

    def formats(self) -> tuple[str, ...]:
        return tuple(sorted(self._adapters))

    def __contains__(self, format_id: object) -> bool:
        return format_id in self._adapters

    def __iter__(self) -> Iterator[Adapter]:
        return iter(tuple(self._adapters.values()))

    def __len__(self) -> int:
        return len(self._adapters)


def _load_plugin(entry_point: EntryPoint) -> Adapter:
    try:
        factory = entry_point.load()
        return cast(Adapter, factory())  # third-party code: register() checks it
    except Exception as exc:
        # Any failure of third-party code at start-up is reported under one code.
        raise AdapterRegistrationError(
            f"adapter plug-in {entry_point.name!r} ({entry_point.value}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
