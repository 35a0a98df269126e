"""Adapters by format id: the built-ins plus those installed under the entry-point group
`port_exchange_gateway.adapters` (each entry point a class or factory), with the schemas
their packages bring (docs/adapters.md, "Install it without touching the gateway")."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Collection, Container, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import EntryPoint, entry_points
from importlib.resources.abc import Traversable
from typing import Any, TypeVar

from message_formats import (
    AvroSchemas,
    FormatError,
    LoadedSchema,
    SafeXmlParser,
    SchemaRedefinedError,
    XsdStore,
)

from .baplie import BayPlanAdapter
from .base import (
    ENTRY_POINT_GROUP,
    Adapter,
    AdapterRegistrationError,
    RecognisesEdifact,
    RecognisesRoot,
    UnknownFormatError,
    declared_edifact_types,
    declared_json_keys,
    declared_roots,
)
from .cargo_xml import CargoXmlAdapter
from .cn_manifest import CnManifestAdapter
from .coarri import ContainerReportAdapter
from .coprar import ContainerOrderAdapter
from .cuscar import CuscarAdapter
from .dcsa_ebl import DcsaEblAdapter
from .dcsa_si import DcsaShippingInstructionsAdapter
from .fal1 import Fal1Adapter
from .fal2 import Fal2Adapter
from .fal3 import Fal3Adapter
from .fal4 import Fal4Adapter
from .fal5 import Fal5Adapter
from .fal6 import Fal6Adapter
from .fal7 import Fal7Adapter
from .iftmin import IftminAdapter
from .iftsta import IftstaAdapter
from .manifest import CustomsManifestAdapter
from .paxlst import PaxlstCrewListAdapter, PaxlstPassengerListAdapter
from .warning import SafetyWarningAdapter
from .waybill import MultimodalWaybillAdapter

# Each built-in is a class: an XmlAdapter is made with the registry's shared XSD store and XML
# parser, any other adapter (EDIFACT, JSON) with no arguments (_build).
BUILTIN: tuple[type[Adapter], ...] = (
    Fal1Adapter, Fal2Adapter, Fal3Adapter, Fal4Adapter, Fal5Adapter, Fal6Adapter, Fal7Adapter,
    CustomsManifestAdapter, MultimodalWaybillAdapter, SafetyWarningAdapter, CnManifestAdapter,
    DcsaEblAdapter, DcsaShippingInstructionsAdapter, CargoXmlAdapter,
    BayPlanAdapter, ContainerOrderAdapter, ContainerReportAdapter,
    PaxlstCrewListAdapter, PaxlstPassengerListAdapter,
    CuscarAdapter, IftminAdapter, IftstaAdapter,
)


T = TypeVar("T")

PLUGIN_AVRO_DIR, PLUGIN_XSD_DIR = "avro", "xsd"
PLUGIN_LOAD_FAILED = "ADAPTER_PLUGIN_LOAD_FAILED"
PLUGIN_NOT_AN_ADAPTER = "ADAPTER_PLUGIN_NOT_AN_ADAPTER"
PLUGIN_FORMAT_TAKEN = "ADAPTER_PLUGIN_FORMAT_TAKEN"
PLUGIN_SCHEMA_INVALID = "ADAPTER_PLUGIN_SCHEMA_INVALID"
PLUGIN_SCHEMA_REDEFINED = "ADAPTER_PLUGIN_SCHEMA_REDEFINED"
PLUGIN_SCHEMA_MISSING = "ADAPTER_PLUGIN_SCHEMA_MISSING"
PLUGIN_ROOTS_INVALID = "ADAPTER_PLUGIN_ROOTS_INVALID"
PLUGIN_EDIFACT_TYPES_INVALID = "ADAPTER_PLUGIN_EDIFACT_TYPES_INVALID"
_ROOT_ELEMENT = re.compile(r"(?:\{[^{}\s]+\})?[^{}\s:]+")
_EDIFACT_TYPE = re.compile(r"[A-Z0-9]{1,6}")  # UNH S009 0065: an..6


@dataclass(frozen=True, slots=True)
class PluginProblem:
    """An adapter plug-in the registry skipped: its entry point, the code and why."""

    plugin: str
    target: str
    code: str
    message: str

    @property
    def summary(self) -> str:
        return f"adapter plug-in {self.plugin} ({self.target}) skipped: {self.message}"

    def __str__(self) -> str:
        return f"{self.code}: {self.summary}"


def builtin_adapters(xsd_store: XsdStore, xml_parser: SafeXmlParser) -> tuple[Adapter, ...]:
    return tuple(_build(kind, xsd_store, xml_parser) for kind in BUILTIN)


class AdapterRegistry:
    """Holds one adapter per format id. The adapters of `default()` share one XML parser,
    which is not thread-safe: build one registry per thread that parses."""

    __slots__ = ("_adapters", "_by_edifact_type", "_by_json_keys", "_by_root", "_problems",
                 "_schemas")

    def __init__(
        self, adapters: Iterable[Adapter] = (), *, schemas: AvroSchemas | None = None
    ) -> None:
        self._adapters: dict[str, Adapter] = {}
        self._by_root: dict[str, list[str]] = {}
        self._by_edifact_type: dict[str, list[str]] = {}
        self._by_json_keys: dict[frozenset[str], list[str]] = {}
        self._problems: list[PluginProblem] = []
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
        """Built-ins, then installed plug-ins, in the order of their entry-point names. With
        `schemas`, every adapter's canonical schema must be among them or its package's, which
        are then added to `schemas`. A plug-in that fails is skipped and kept in `problems`."""
        registry = cls(schemas=schemas)
        shared_xsd = xsd_store if xsd_store is not None else XsdStore()
        shared_parser = xml_parser if xml_parser is not None else SafeXmlParser()
        for adapter in builtin_adapters(shared_xsd, shared_parser):
            registry.register(adapter)
        for entry_point in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
            registry.add_plugin(entry_point, xsd_store=shared_xsd, xml_parser=shared_parser)
        return registry

    @property
    def problems(self) -> tuple[PluginProblem, ...]:
        """The plug-ins skipped, and why."""
        return tuple(self._problems)

    def register(self, adapter: Adapter) -> None:
        refusal = self._refusal(adapter)
        if refusal is not None:
            raise AdapterRegistrationError(refusal.message)
        self._keep(adapter)

    def _keep(self, adapter: Adapter) -> None:
        self._adapters[adapter.format_id] = adapter
        for root in declared_roots(adapter):
            self._by_root.setdefault(root, []).append(adapter.format_id)
        for message_type in sorted(declared_edifact_types(adapter)):
            self._by_edifact_type.setdefault(message_type, []).append(adapter.format_id)
        keys = declared_json_keys(adapter)
        if keys:
            self._by_json_keys.setdefault(keys, []).append(adapter.format_id)

    def add_plugin(self, entry_point: EntryPoint, *, xsd_store: XsdStore,
                   xml_parser: SafeXmlParser) -> None:
        """Registers the adapter of one entry point and the schemas of its package, or, if
        anything about it fails, nothing of it: the failure is kept in `problems`."""
        try:
            adapter, own_schemas = _load_plugin(entry_point, self._schemas, xsd_store,
                                                xml_parser)
            refusal = self._refusal(adapter, {s.full_name for s in own_schemas})
            if refusal is not None:
                raise refusal
        except AdapterRegistrationError as exc:
            self._problems.append(
                PluginProblem(entry_point.name, entry_point.value, exc.code, exc.message))
            return
        if self._schemas is not None:
            self._schemas.extend(own_schemas)
        self._keep(adapter)

    def _refusal(self, adapter: object, own_schemas: Container[str] = ()
                 ) -> AdapterRegistrationError | None:
        if not isinstance(adapter, Adapter):
            return AdapterRegistrationError(
                f"{type(adapter).__name__} does not implement the Adapter protocol",
                code=PLUGIN_NOT_AN_ADAPTER)
        if adapter.format_id in self._adapters:
            return AdapterRegistrationError(f"format {adapter.format_id!r} registered twice",
                                            code=PLUGIN_FORMAT_TAKEN)
        name = adapter.schema_name
        if self._schemas is not None and name not in self._schemas and name not in own_schemas:
            return AdapterRegistrationError(
                f"format {adapter.format_id!r} maps to unknown Avro schema {name!r}",
                code=PLUGIN_SCHEMA_MISSING)
        if isinstance(adapter, RecognisesRoot) and not _well_declared(adapter.root_elements):
            return AdapterRegistrationError(
                f"format {adapter.format_id!r} declares root_elements that are not a tuple of "
                "'{namespace}LocalName' names", code=PLUGIN_ROOTS_INVALID)
        if isinstance(adapter, RecognisesEdifact) and not _edifact_types_declared(
                adapter.edifact_message_types):
            return AdapterRegistrationError(
                f"format {adapter.format_id!r} declares edifact_message_types that are not a "
                "frozenset of message types (UNH S009 0065, e.g. 'PAXLST')",
                code=PLUGIN_EDIFACT_TYPES_INVALID)
        return None

    def get(self, format_id: str) -> Adapter:
        try:
            return self._adapters[format_id]
        except KeyError:
            raise UnknownFormatError(f"no adapter for format {format_id!r}") from None

    def formats_with_root(self, root_element: str) -> tuple[str, ...]:
        """The formats whose adapters declare `root_element` ("{namespace}LocalName") as
        theirs, in the order they were registered; none for an undeclared one."""
        return tuple(self._by_root.get(root_element, ()))

    def formats_with_edifact_type(self, message_type: str) -> tuple[str, ...]:
        """The formats whose adapters read EDIFACT messages of `message_type` ("PAXLST"), in
        the order they were registered."""
        return tuple(self._by_edifact_type.get(message_type, ()))

    def formats_with_json_keys(self, top_level: Collection[str]) -> tuple[str, ...]:
        """The formats whose adapters declare JSON members that are all among a document's
        `top_level` members, in the order they were registered."""
        present = frozenset(top_level)
        return tuple(format_id for keys, formats in self._by_json_keys.items()
                     if keys <= present for format_id in formats)

    def formats(self) -> tuple[str, ...]:
        return tuple(sorted(self._adapters))

    def __contains__(self, format_id: object) -> bool:
        return format_id in self._adapters

    def __iter__(self) -> Iterator[Adapter]:
        return iter(tuple(self._adapters.values()))

    def __len__(self) -> int:
        return len(self._adapters)


def _well_declared(roots: object) -> bool:
    return isinstance(roots, tuple | list | frozenset) and all(
        isinstance(root, str) and _ROOT_ELEMENT.fullmatch(root) for root in roots)


def _edifact_types_declared(types: object) -> bool:
    return isinstance(types, frozenset) and all(
        isinstance(name, str) and _EDIFACT_TYPE.fullmatch(name) for name in types)


def installed_schemas(group: str = ENTRY_POINT_GROUP) -> AvroSchemas:
    """The gateway's schemas and those of the installed adapter plug-ins: what a reader of
    the gateway's topics needs to decode the events of every format it serves."""
    schemas = AvroSchemas()
    AdapterRegistry.default(schemas, group=group)
    return schemas


def _load_plugin(entry_point: EntryPoint, schemas: AvroSchemas | None, xsd_store: XsdStore,
                 xml_parser: SafeXmlParser) -> tuple[Adapter, tuple[LoadedSchema, ...]]:
    factory = _running_plugin_code(entry_point.load)
    home = _running_plugin_code(lambda: _package_of(entry_point.module))
    own_schemas = () if schemas is None or home is None else _own_avro(home, schemas)
    own_xsd = None if home is None else _own_xsd(home)
    return _running_plugin_code(
        lambda: _build(factory, own_xsd or xsd_store, xml_parser)), own_schemas


def _running_plugin_code(call: Callable[[], T]) -> T:
    try:
        return call()
    except Exception as exc:
        # Any failure of third-party code at start-up is reported under one code.
        raise AdapterRegistrationError(f"failed to load: {type(exc).__name__}: {exc}",
                                       code=PLUGIN_LOAD_FAILED) from exc


def _package_of(module_name: str) -> Traversable | None:
    """The folder of the package the entry point's module is, or is in: where its `avro/` and
    `xsd/` are. A top-level single-file module has none (its folder is site-packages)."""
    module = importlib.import_module(module_name)  # already imported by the entry point
    package = module_name if hasattr(module, "__path__") else (module.__package__ or "")
    return resources.files(package) if package else None


def _own_avro(home: Traversable, schemas: AvroSchemas) -> tuple[LoadedSchema, ...]:
    directory = home.joinpath(PLUGIN_AVRO_DIR)
    if not directory.is_dir():
        return ()
    return _reading_plugin_schemas(lambda: schemas.read_extension(directory))


def _own_xsd(home: Traversable) -> XsdStore | None:
    directory = home.joinpath(PLUGIN_XSD_DIR)
    if not directory.is_dir():
        return None
    return _reading_plugin_schemas(lambda: XsdStore.with_extension(directory))


def _reading_plugin_schemas(read: Callable[[], T]) -> T:
    try:
        return read()
    except SchemaRedefinedError as exc:
        raise AdapterRegistrationError(exc.message, code=PLUGIN_SCHEMA_REDEFINED) from exc
    except (FormatError, OSError, ValueError) as exc:
        raise AdapterRegistrationError(str(exc), code=PLUGIN_SCHEMA_INVALID) from exc


def _build(factory: Callable[..., Any], xsd_store: XsdStore, xml_parser: SafeXmlParser) -> Any:
    """Passes the XSD store and the shared XML parser to a factory that takes them, as the
    built-in adapters do."""
    if _takes_stores(factory):
        return factory(xsd_store=xsd_store, xml_parser=xml_parser)
    return factory()


def _takes_stores(factory: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: called without arguments
        return False
    return {"xsd_store", "xml_parser"} <= parameters.keys()
