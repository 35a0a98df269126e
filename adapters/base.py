"""The adapter protocol: one format in, one canonical record out, and back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from message_formats import CodedError
from message_formats.edifact import Group

ENTRY_POINT_GROUP = "port_exchange_gateway.adapters"


class AdapterError(CodedError):
    """A document that is well-formed and schema-valid but breaks a business rule, or a
    misuse of the adapter machinery. Format problems arrive as message_formats.FormatError."""

    code = "ADAPTER_ERROR"
    # Of a document refused after it was read (a broken business rule): its business key and
    # version, so that the refusal can still be filed under them (XmlAdapter.parse sets them).
    business_key: str | None = None
    document_version: int | None = None


class RuleViolationError(AdapterError):
    """A business rule failed; `code` names the rule (RULE_...)."""

    code = "RULE_VIOLATION"


class RenderError(AdapterError):
    code = "RENDER_RECORD_INVALID"


class UnknownFormatError(AdapterError):
    code = "ADAPTER_UNKNOWN_FORMAT"


class AdapterRegistrationError(AdapterError):
    code = "ADAPTER_REGISTRATION_FAILED"


@dataclass(frozen=True, slots=True)
class ParseResult:
    """A parsed document: the canonical body (every field of the canonical record except
    "header"), the key and version the header needs, and non-fatal findings."""

    record: dict[str, Any]
    business_key: str
    document_version: int
    warnings: tuple[str, ...] = ()
    # Of a document that holds several documents of its type (a UN/EDIFACT interchange of
    # several messages, docs/adapters.md "Several messages per interchange"): every one of
    # them, in order; this result is the first one read, the part marked `own`. Empty for
    # a document that is one document.
    parts: tuple[DocumentPart, ...] = ()


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """One document of a submission that holds several (one message of an EDIFACT
    interchange): its place (1, 2, …), its reference and S009 identifier as written (what a
    CONTRL's UCM names it by), the functional group it is in (UNG: a CONTRL's UCF names it;
    None outside one), and its parse or its refusal. The part whose parse is the
    submission's own ParseResult is marked `own` and holds neither (no copy of it)."""

    number: int
    reference: str
    identifier: tuple[str, ...]
    parsed: ParseResult | None = None
    refusal: CodedError | None = None
    own: bool = False
    group: Group | None = None


@runtime_checkable
class Adapter(Protocol):
    # Read-only: an adapter may hold these as class attributes (the built-ins do) or as
    # instance attributes; a protocol's plain `name: str` would admit only the latter.
    @property
    def format_id(self) -> str: ...
    @property
    def document_type(self) -> str: ...
    @property
    def schema_name(self) -> str: ...
    @property
    def media_type(self) -> str: ...

    def parse(self, data: bytes) -> ParseResult:
        """Raise FormatError (XML_*, XSD_*) or AdapterError (RULE_*) on rejection."""
        ...

    def render(self, record: Mapping[str, Any]) -> bytes:
        """The canonical record (a "header" key, if present, only supplies the document
        version) as a document of this format, valid against the format's schema."""
        ...


@runtime_checkable
class RecognisesRoot(Protocol):
    """What an adapter may add to the protocol so that format detection finds it: the root
    elements of its documents, in Clark notation ``{namespace}LocalName`` (``LocalName``
    alone for a document without a namespace). Optional: an adapter without it still
    parses what it is named for, it is only never detected (docs/adapters.md)."""

    @property
    def root_elements(self) -> tuple[str, ...]: ...


def declared_roots(adapter: Adapter) -> tuple[str, ...]:
    """The root elements an adapter declares, none when it declares none."""
    return tuple(adapter.root_elements) if isinstance(adapter, RecognisesRoot) else ()


@runtime_checkable
class RecognisesEdifact(Protocol):
    """What an adapter of UN/EDIFACT messages adds so that format detection finds it: the
    message types (UNH S009 0065, e.g. "PAXLST") it reads. An interchange is this adapter's
    when every message in it is of one of these types (docs/edifact.md, "Detection")."""

    @property
    def edifact_message_types(self) -> frozenset[str]: ...


def declared_edifact_types(adapter: Adapter) -> frozenset[str]:
    """The EDIFACT message types an adapter declares, none when it declares none."""
    return (frozenset(adapter.edifact_message_types)
            if isinstance(adapter, RecognisesEdifact) else frozenset())


@runtime_checkable
class RecognisesJson(Protocol):
    """What an adapter of a JSON format adds so that format detection finds it: the
    top-level members every document of the format has (a document is that format when its
    top-level object has all of them). Optional, as RecognisesRoot is."""

    @property
    def json_keys(self) -> frozenset[str]: ...


def declared_json_keys(adapter: Adapter) -> frozenset[str]:
    """The top-level members an adapter declares, none when it declares none."""
    return frozenset(adapter.json_keys) if isinstance(adapter, RecognisesJson) else frozenset()


@runtime_checkable
class NamesEdifactDocuments(Protocol):
    """What an adapter of UN/EDIFACT messages may add when its message type carries several
    kinds of document that different adapters read: the document name codes (BGM C002 1001)
    of those it reads, e.g. {"250"} for a PAXLST crew list. Detection gives an interchange
    that several adapters' message types take to the one that names its documents."""

    @property
    def edifact_document_names(self) -> frozenset[str]: ...


def declared_edifact_documents(adapter: Adapter) -> frozenset[str]:
    """The EDIFACT document name codes an adapter declares, none when it declares none."""
    return (frozenset(adapter.edifact_document_names)
            if isinstance(adapter, NamesEdifactDocuments) else frozenset())


@dataclass(frozen=True, slots=True)
class DerivedDocument:
    """A canonical document that follows from another's record alone (a bay plan's FAL 7
    dangerous goods manifest): its document type and canonical schema, and what a parse of
    it would give (its body without "header", its business key and version, as the adapter
    of its own document type would make them)."""

    document_type: str
    schema_name: str
    parsed: ParseResult


@runtime_checkable
class DerivesDocuments(Protocol):
    """What an adapter may add when its documents hold other canonical documents: the
    gateway publishes each one it derives from an accepted document as a canonical event of
    its own, routed by the contracts of its document type (docs/adapters.md, "Derived
    documents"). Optional: an adapter without it derives nothing, at no cost."""

    def derived(self, parsed: ParseResult) -> Iterable[DerivedDocument]: ...


def document_derivers(adapters: Iterable[Adapter]) -> dict[str, DerivesDocuments]:
    """The adapters that derive documents, by format id."""
    return {adapter.format_id: adapter for adapter in adapters
            if isinstance(adapter, DerivesDocuments)}
