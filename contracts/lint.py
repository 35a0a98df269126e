"""The contract linter: each file read on its own (`contracts.loader`), then checked against
the agency registry, the document catalog and the other contracts.

Consistency rules:

* the agencies, document types, field paths and delivery formats a contract names exist;
* its scope agrees with the agencies: ``cross-border`` needs every consumer in another
  jurisdiction than the provider, and every contract with such a consumer must say
  ``cross-border`` (data must not leave under a domestic label); ``cross-department`` needs
  different agency kinds, ``cross-region`` different region codes;
* a ``cross-border`` contract cites its export security assessment (数据出境安全评估);
* personal fields cross the border only masked, unless the contract cites consent or a
  legal basis for them (``personal_data_basis``);
* no document type it names is classified above the contract's ``max_classification``;
* a delivery in an adapter's own format carries the whole record, unmasked (an XML form
  cannot be rendered from a part of it);
* the condition compiles against the fields of every document type named;
* no two files hold the same contract id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.agencies import Agency, AgencyRegistry
from contracts.catalog import DocumentCatalog, DocumentInfo, classification_rank
from contracts.errors import ContractInvalid
from contracts.expr import ConditionError, compile_condition
from contracts.index import delivered_fields
from contracts.loader import ParsedFile, Problem, read_contract_file
from contracts.model import AVRO, JSON, WHOLE_RECORD, Contract
from contracts.projection import compile_projection, split_path

# Masks are compiled here only to be checked; the gateway compiles them with its real key.
_CHECKING_KEY = b"contract-lint"


@dataclass(frozen=True, slots=True)
class LintReport:
    contracts: tuple[Contract, ...]
    problems: tuple[Problem, ...]
    files: int

    @property
    def ok(self) -> bool:
        return not self.problems


def lint_contract_dir(
    directory: Path, agencies: AgencyRegistry, catalog: DocumentCatalog,
    formats: Mapping[str, str],
) -> LintReport:
    """Every `*.toml` file of `directory`, in name order. `formats` maps each adapter format
    id to its document type."""
    if not directory.is_dir():
        problem = Problem(directory, None, "CONTRACT_INVALID", "no contract directory here")
        return LintReport((), (problem,), 0)
    parsed = [read_contract_file(path) for path in sorted(directory.glob("*.toml"))]
    return lint_parsed(parsed, agencies, catalog, formats)


def lint_parsed(
    parsed: Iterable[ParsedFile], agencies: AgencyRegistry, catalog: DocumentCatalog,
    formats: Mapping[str, str],
) -> LintReport:
    parsed = list(parsed)
    problems = [problem for file in parsed for problem in file.problems]
    contracts: list[Contract] = []
    seen: dict[str, Path] = {}
    for file in parsed:
        contract = file.contract
        if contract is None:
            continue
        checker = _Checker(file, agencies, catalog, formats)
        checker.check(contract)
        if contract.id in seen:
            checker.fail("id", "CONTRACT_DUPLICATE", f"contract {contract.id!r} is also "
                         f"defined in {seen[contract.id]}")
        seen.setdefault(contract.id, file.path)
        problems += checker.problems
        if not checker.problems:
            contracts.append(contract)
    return LintReport(tuple(contracts), tuple(problems), len(parsed))


def load_contract_dir(
    directory: Path, agencies: AgencyRegistry, catalog: DocumentCatalog,
    formats: Mapping[str, str],
) -> tuple[Contract, ...]:
    """The contracts of a directory that lints clean; else ContractInvalid with the first
    problem's code and place, and the count of the others."""
    report = lint_contract_dir(directory, agencies, catalog, formats)
    if report.problems:
        first = report.problems[0]
        more = len(report.problems) - 1
        suffix = f" (and {more} more problem{'s' * (more > 1)}; run portgw contracts lint)" \
            if more else ""
        raise ContractInvalid(first.message + suffix, code=first.code, path=first.path,
                              line=first.line)
    return report.contracts


class _Checker:
    def __init__(self, file: ParsedFile, agencies: AgencyRegistry, catalog: DocumentCatalog,
                 formats: Mapping[str, str]) -> None:
        self.file = file
        self.agencies = agencies
        self.catalog = catalog
        self.formats = formats
        self.problems: list[Problem] = []

    def fail(self, key: str, code: str, message: str, *, value: str | None = None) -> None:
        lines = self.file.lines
        line = lines.of_value(key, value) if value is not None else lines.of_key(key)
        self.problems.append(Problem(self.file.path, line, code, message))

    def check(self, contract: Contract) -> None:
        consumers = self.known_agencies("consumers", contract.consumers)
        documents = self.known_documents(contract.document_types)
        if contract.kind == "subscription":
            return
        provider = self.known_agencies("provider", (contract.provider,))
        if contract.provider in contract.consumers:
            self.fail("consumers", "CONTRACT_INVALID", "the provider is also a consumer",
                      value=contract.provider)
        if contract.scope == "cross-border" and not contract.export_assessment:
            self.fail("scope", "CONTRACT_NO_EXPORT_ASSESSMENT",
                      "a cross-border contract must cite its export security assessment "
                      "(数据出境安全评估) in export_assessment")
        if provider and len(consumers) == len(contract.consumers):
            self.check_scope(contract, provider[0], consumers)
        if documents and len(documents) == len(contract.document_types):
            self.check_fields(contract, documents)
            self.check_condition(contract, documents)
            self.check_classification(contract, documents)
            self.check_format(contract, documents, consumers)
            if contract.scope == "cross-border":
                self.check_personal_data(contract, documents)

    def known_agencies(self, key: str, ids: Iterable[str]) -> list[Agency]:
        found = []
        for agency_id in ids:
            if agency_id in self.agencies:
                found.append(self.agencies.get(agency_id))
            else:
                self.fail(key, "CONTRACT_UNKNOWN_AGENCY", f"unknown agency {agency_id!r}",
                          value=agency_id)
        return found

    def known_documents(self, document_types: Iterable[str]) -> list[DocumentInfo]:
        found = []
        for document_type in document_types:
            info = self.catalog.get(document_type)
            if info is None:
                self.fail("document_types", "CONTRACT_UNKNOWN_DOCUMENT_TYPE",
                          f"unknown document type {document_type!r}; known: "
                          f"{', '.join(sorted(self.catalog))}", value=document_type)
            else:
                found.append(info)
        return found

    def check_scope(self, contract: Contract, provider: Agency, consumers: list[Agency]) -> None:
        for consumer in consumers:
            reason = _scope_mismatch(contract.scope, provider, consumer)
            if reason:
                self.fail("consumers", "CONTRACT_SCOPE_MISMATCH",
                          f"{contract.scope} does not fit {consumer.id}: {reason}",
                          value=consumer.id)

    def check_fields(self, contract: Contract, documents: list[DocumentInfo]) -> None:
        delivered = [] if contract.fields == (WHOLE_RECORD,) else list(contract.fields)
        for path in [*delivered, *(path for path, _ in contract.masks)]:
            key = "fields" if path in delivered else path
            try:
                split_path(path)
            except ContractInvalid as exc:
                self.fail(key, exc.code, exc.message, value=path)
                continue
            lacking = [d.document_type for d in documents if path not in d.field_paths]
            if lacking:
                self.fail(key, "CONTRACT_UNKNOWN_FIELD",
                          f"{path!r} is not a field of {', '.join(lacking)}", value=path)
        if self.problems:
            return
        try:
            for document in documents:
                compile_projection(delivered_fields(contract, document), dict(contract.masks),
                                   key=_CHECKING_KEY)
        except ContractInvalid as exc:
            self.fail("masks", exc.code, exc.message)

    def check_condition(self, contract: Contract, documents: list[DocumentInfo]) -> None:
        if contract.condition is None:
            return
        known = frozenset.intersection(*(d.field_paths for d in documents))
        try:
            compile_condition(contract.condition, known_paths=known)
        except ConditionError as exc:
            line = self.file.lines.of_key("condition")
            if line is not None:
                line += exc.source[: exc.position].count("\n")
            self.problems.append(Problem(self.file.path, line, exc.code, exc.message))

    def check_classification(self, contract: Contract, documents: list[DocumentInfo]) -> None:
        ceiling = classification_rank(contract.max_classification)
        for document in documents:
            if classification_rank(document.classification) > ceiling:
                self.fail("document_types", "CONTRACT_CLASSIFICATION",
                          f"{document.document_type} is {document.classification} data, above "
                          f"this contract's max_classification {contract.max_classification}",
                          value=document.document_type)

    def check_format(self, contract: Contract, documents: list[DocumentInfo],
                     consumers: list[Agency]) -> None:
        wanted = contract.delivery_format
        formats = [wanted] if wanted else list(dict.fromkeys(c.delivery_format
                                                              for c in consumers))
        for name in formats:
            if name in (AVRO, JSON):
                continue
            key = "delivery_format" if wanted else "consumers"
            if name not in self.formats:
                self.fail(key, "CONTRACT_BAD_FORMAT", f"unknown delivery format {name!r}")
                continue
            wrong = [d.document_type for d in documents if self.formats[name] != d.document_type]
            if wrong:
                self.fail(key, "CONTRACT_BAD_FORMAT",
                          f"format {name} carries {self.formats[name]}, not {', '.join(wrong)}")
            if not contract.whole_record:
                self.fail(key, "CONTRACT_FORMAT_NEEDS_WHOLE_RECORD",
                          f"format {name} renders the whole document: deliver fields = "
                          '["*"] without masks, or choose "avro" or "json"')

    def check_personal_data(self, contract: Contract, documents: list[DocumentInfo]) -> None:
        if contract.personal_data_basis:
            return
        masked = [path for path, _ in contract.masks]
        for document in documents:
            exposed = [
                path for path in sorted(document.personal_paths)
                if _delivers(contract.fields, path) and not _covered(masked, path)
            ]
            if exposed:
                self.fail("fields", "CONTRACT_PERSONAL_UNMASKED",
                          f"personal fields of {document.document_type} would cross the border "
                          f"unmasked: {', '.join(exposed)}; mask them, or cite consent or a "
                          "legal basis in personal_data_basis")


def _scope_mismatch(scope: str, provider: Agency, consumer: Agency) -> str | None:
    abroad = consumer.jurisdiction != provider.jurisdiction
    if scope == "cross-border":
        if not abroad:
            return f"both are in jurisdiction {provider.jurisdiction}"
        return None
    if abroad:
        return (f"{consumer.id} is in jurisdiction {consumer.jurisdiction}, "
                f"{provider.id} in {provider.jurisdiction}: that is cross-border")
    if scope == "cross-department" and consumer.kind == provider.kind:
        return f"both are {provider.kind} agencies"
    if scope == "cross-region" and consumer.region == provider.region:
        return f"both are in region {provider.region}"
    return None


def _plain(path: str) -> str:
    return path.replace("[]", "")


def _covered(prefixes: Iterable[str], path: str) -> bool:
    """Whether one of `prefixes` is `path` or a field above it."""
    target = _plain(path)
    return any(target == _plain(p) or target.startswith(_plain(p) + ".") for p in prefixes)


def _delivers(fields: tuple[str, ...], path: str) -> bool:
    return fields == (WHOLE_RECORD,) or _covered(fields, path)
