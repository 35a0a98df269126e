"""The pipeline keeps what its stages found as far as they got: a document a later stage
refuses (or a bug stops) keeps its type, business key and version."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters import AdapterError, AdapterRegistry
from contracts import ContractError, RouteDenied
from crypto import CryptoError, UnknownSigner
from gateway.decide.pipeline import (
    Context,
    Pipeline,
    Submission,
    adapt,
    choose_adapter,
    new_context,
)
from gateway.errors import GatewayError
from gateway.service import run_stages
from message_formats import AvroSchemas, CodedError, FormatError, XsdInvalidError

FAL1 = Path(__file__).parents[1] / "data" / "fal1"
ADAPTERS = AdapterRegistry.default(AvroSchemas())


def context_of(sample: str) -> Context:
    document = (FAL1 / sample).read_bytes()
    return new_context(Submission("sub-1", "cn.port.sh", "fal1-xml", document, b"",
                                  datetime(2026, 5, 1, tzinfo=UTC)), "event-1")


def crash(ctx: Context) -> Context:
    raise ZeroDivisionError("a bug")


def test_a_stage_that_refuses_keeps_what_the_stages_before_it_found() -> None:
    observed: list[str] = []
    pipeline = Pipeline([("adapter", choose_adapter(ADAPTERS)), ("adapt", adapt)],
                        observe=lambda name, _: observed.append(name))
    ctx, why = run_stages(pipeline, context_of("bad_imo_check_digit.xml"))
    assert why is not None and (why.code, why.kind) == ("RULE_IMO_CHECK_DIGIT", "REJECTED")
    assert (ctx.document_type, ctx.parsed) == ("fal1", None)
    assert observed == ["adapter"]  # a stage that raised is not timed


def test_a_bug_is_an_internal_error_that_keeps_the_context_reached() -> None:
    pipeline = Pipeline([("adapter", choose_adapter(ADAPTERS)), ("adapt", adapt),
                         ("crash", crash)])
    ctx, why = run_stages(pipeline, context_of("valid_arrival.xml"))
    assert why is not None and why.code == "INTERNAL_ERROR"
    assert "a bug" not in why.message  # kept texts never carry an error's own words
    assert ctx.parsed is not None
    assert (ctx.document_type, ctx.parsed.business_key, ctx.parsed.document_version) == (
        "fal1", "9074729:V2611:A:CNSHA", 1)


def test_a_document_that_passes_every_stage_has_no_refusal() -> None:
    pipeline = Pipeline([("adapter", choose_adapter(ADAPTERS)), ("adapt", adapt)])
    ctx, why = run_stages(pipeline, context_of("valid_arrival.xml"))
    assert why is None and ctx.parsed is not None and ctx.document_type == "fal1"


class LibraryError(Exception):
    """An exception of someone else's that happens to carry a code: still a bug here."""

    code = "LIBRARY_CODE"
    message = "a library's own words"


@pytest.mark.parametrize(("error", "kind"), [
    (FormatError("element 'a' is not allowed", code="XML_MALFORMED", line=4), "REJECTED"),
    (XsdInvalidError("element 'a' is not allowed", line=9), "REJECTED"),
    (CryptoError("signature does not verify", code="CRYPTO_SIGNATURE_INVALID"), "REJECTED"),
    (UnknownSigner("no key of the agency"), "REJECTED"),
    (ContractError("unknown field", code="CONTRACT_INVALID"), "REJECTED"),
    (RouteDenied("no contract shares fal1", code="ROUTE_NO_CONTRACT"), "DENIED"),
    (AdapterError("bad check digit", code="RULE_IMO_CHECK_DIGIT", line=12), "REJECTED"),
    (GatewayError("document is empty", code="DOCUMENT_EMPTY"), "REJECTED"),
], ids=lambda value: value if isinstance(value, str) else type(value).__name__)
def test_each_package_s_refusal_keeps_its_code_message_and_line(
    error: CodedError, kind: str
) -> None:
    def refuse(ctx: Context) -> Context:
        raise error

    pipeline = Pipeline([("adapter", choose_adapter(ADAPTERS)), ("refuse", refuse)])
    ctx, why = run_stages(pipeline, context_of("valid_arrival.xml"))
    assert why is not None
    assert (why.code, why.message, why.line, why.kind) == (
        error.code, error.message, error.line, kind)
    assert ctx.document_type == "fal1"


def test_an_error_that_is_not_a_coded_error_is_a_bug_whatever_it_carries() -> None:
    def fail(ctx: Context) -> Context:
        raise LibraryError("a library's own words")

    _, why = run_stages(Pipeline([("fail", fail)]), context_of("valid_arrival.xml"))
    assert why is not None and (why.code, why.kind) == ("INTERNAL_ERROR", "REJECTED")
    assert "own words" not in why.message and "LibraryError" in why.message
