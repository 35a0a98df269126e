"""The pipeline keeps what its stages found as far as they got: a document a later stage
refuses (or a bug stops) keeps its type, business key and version. The parse worker runs the
same stage objects and refuses a document as the gateway does."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters import AdapterError, AdapterRegistry, ParseResult
from contracts import ContractError, RouteDenied
from crypto import CryptoError, KeyEntry, Keyring, SM2PrivateKey, UnknownSigner
from gateway.decide.ahead import ANSWER, NOT_VERIFIED, PARSED, REFUSED, Checker, item_of
from gateway.decide.pipeline import (
    Adapt,
    Authenticate,
    ChooseAdapter,
    Context,
    Pipeline,
    Refusal,
    Submission,
    new_context,
)
from gateway.errors import GatewayError
from gateway.publish.plan import document_facts, trail_fields
from gateway.service import run_stages
from message_formats import CodedError, FormatError, XsdInvalidError
from tests.built_in_schemas import built_in_schemas

FAL1 = Path(__file__).parents[1] / "data" / "fal1"
ADAPTERS = AdapterRegistry.default(built_in_schemas())


def context_of(sample: str, format_id: str = "fal1-xml") -> Context:
    document = (FAL1 / sample).read_bytes()
    return new_context(Submission("sub-1", "cn.port.sh", format_id, document, b"",
                                  datetime(2026, 5, 1, tzinfo=UTC)), "event-1")


def crash(ctx: Context) -> Context:
    raise ZeroDivisionError("a bug")


def test_a_stage_that_refuses_keeps_what_the_stages_before_it_found() -> None:
    observed: list[str] = []
    pipeline = Pipeline([("adapter", ChooseAdapter(ADAPTERS)), ("adapt", Adapt())],
                        observe=lambda name, _: observed.append(name))
    ctx, why = run_stages(pipeline, context_of("bad_imo_check_digit.xml"))
    assert why is not None and (why.code, why.kind) == ("RULE_IMO_CHECK_DIGIT", "REJECTED")
    assert (ctx.document_type, ctx.parsed) == ("fal1", None)
    assert observed == ["adapter"]  # a stage that raised is not timed


def test_a_bug_is_an_internal_error_that_keeps_the_context_reached() -> None:
    pipeline = Pipeline([("adapter", ChooseAdapter(ADAPTERS)), ("adapt", Adapt()),
                         ("crash", crash)])
    ctx, why = run_stages(pipeline, context_of("valid_arrival.xml"))
    assert why is not None and why.code == "INTERNAL_ERROR"
    assert "a bug" not in why.message  # kept texts never carry an error's own words
    assert ctx.parsed is not None
    assert (ctx.document_type, ctx.parsed.business_key, ctx.parsed.document_version) == (
        "fal1", "9074729:V2611:A:CNSHA", 1)


def test_a_document_that_passes_every_stage_has_no_refusal() -> None:
    pipeline = Pipeline([("adapter", ChooseAdapter(ADAPTERS)), ("adapt", Adapt())])
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

    pipeline = Pipeline([("adapter", ChooseAdapter(ADAPTERS)), ("refuse", refuse)])
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


BAD_IMO_KEY = "9074728:V2611:A:CNSHA"


def test_a_rule_refusal_keeps_the_business_key_and_version_read_before_the_rules() -> None:
    pipeline = Pipeline([("adapter", ChooseAdapter(ADAPTERS)), ("adapt", Adapt())])
    ctx, why = run_stages(pipeline, context_of("bad_imo_check_digit.xml"))
    assert why is not None and why.code == "RULE_IMO_CHECK_DIGIT" and ctx.parsed is None
    assert ctx.refused == Refusal(why.code, why.message, why.line, BAD_IMO_KEY, 1)
    assert document_facts(ctx) == {"document_type": "fal1", "business_key": BAD_IMO_KEY,
                                   "document_version": 1}
    assert trail_fields(ctx)["business_key"] == BAD_IMO_KEY


def test_the_parse_worker_s_refusal_is_the_document_s_with_what_it_read() -> None:
    found = Refusal("RULE_IMO_CHECK_DIGIT", "IMO number: check digit", 7, BAD_IMO_KEY, 3)
    ctx = replace(context_of("bad_imo_check_digit.xml"), refused=found)
    ctx, why = run_stages(Pipeline([("adapter", ChooseAdapter(ADAPTERS)), ("adapt", Adapt())]),
                          ctx)
    assert why is not None and (why.code, why.message, why.line) == (
        found.code, found.message, found.line)
    assert ctx.refused == found and (ctx.business_key, ctx.document_version) == (BAD_IMO_KEY, 3)


# ------------------------------------------------- the parse worker runs the same stages

SIGNER = SM2PrivateKey.generate()


def worker_answer(checker: Checker, ctx: Context, *, key: bytes = b"") -> tuple[int, object]:
    """What the worker answers for the context's submission: the outcome and its payload."""
    answer, _ = checker.check(item_of(ctx.submission, key))
    assert answer[4:5] == ANSWER
    payload = answer[6:]
    return answer[5], pickle.loads(payload) if payload else None


def signed_context(sample: str, signer: SM2PrivateKey = SIGNER) -> Context:
    ctx = context_of(sample)
    s = ctx.submission
    return replace(ctx, submission=replace(s, signature=signer.sign(s.document)))


def test_the_worker_verifies_and_parses_with_the_gateway_s_stages() -> None:
    checker = Checker(ADAPTERS)
    key = SIGNER.public_key().to_der()
    outcome, parsed = worker_answer(checker, signed_context("valid_arrival.xml"), key=key)
    assert (outcome, parsed) == (PARSED, ADAPTERS.get("fal1-xml").parse(
        (FAL1 / "valid_arrival.xml").read_bytes()))
    other = signed_context("valid_arrival.xml", SM2PrivateKey.generate())
    assert worker_answer(checker, other, key=key) == (NOT_VERIFIED, None)
    assert worker_answer(checker, other)[0] == PARSED  # no key: verified by the gateway
    outcome, refusal = worker_answer(checker, signed_context("bad_imo_check_digit.xml"),
                                     key=key)
    assert outcome == REFUSED and isinstance(refusal, Refusal)
    assert (refusal.code, refusal.business_key, refusal.document_version) == (
        "RULE_IMO_CHECK_DIGIT", BAD_IMO_KEY, 1)


@dataclass(frozen=True)
class RefusingAdapter:
    """A format whose every document raises `error` (a pure unit: no parsing)."""

    error: Exception
    format_id: str = "refusing"
    document_type: str = "refusing"
    schema_name: str = "px.canonical.Refusing"
    media_type: str = "application/xml"

    def parse(self, data: bytes) -> ParseResult:
        raise self.error

    def render(self, record: Mapping[str, Any]) -> bytes:
        raise self.error


@pytest.mark.parametrize("error", [
    GatewayError("document is empty", code="DOCUMENT_EMPTY"),
    ContractError("unknown field", code="CONTRACT_INVALID"),
    CryptoError("signature does not verify", code="CRYPTO_SIGNATURE_INVALID"),
    AdapterError("bad check digit", code="RULE_IMO_CHECK_DIGIT", line=12),
    XsdInvalidError("element 'a' is not allowed", line=9),
], ids=lambda error: type(error).__name__)
def test_the_worker_refuses_with_any_coded_error_as_the_gateway_does(error: CodedError) -> None:
    checker = Checker(AdapterRegistry([RefusingAdapter(error)]))
    outcome, refusal = worker_answer(checker, context_of("valid_arrival.xml", "refusing"))
    assert (outcome, refusal) == (REFUSED, Refusal(error.code, error.message, error.line))


def test_the_worker_refuses_a_bug_as_an_internal_error_naming_only_its_place() -> None:
    checker = Checker(AdapterRegistry([RefusingAdapter(LibraryError("a library's own words"))]))
    outcome, refusal = worker_answer(checker, context_of("valid_arrival.xml", "refusing"))
    assert outcome == REFUSED and isinstance(refusal, Refusal)
    assert refusal.code == "INTERNAL_ERROR" and "own words" not in refusal.message
    assert "LibraryError" in refusal.message


def test_the_stages_the_worker_runs_pickle_and_still_judge() -> None:
    keyring = Keyring([KeyEntry("cn.port.sh", SIGNER.public_key())])
    ctx = replace(signed_context("valid_arrival.xml"), keyring=keyring)
    authenticate, adapt = pickle.loads(pickle.dumps((Authenticate(), Adapt())))
    assert authenticate == Authenticate() and adapt == Adapt()
    ctx = adapt(ChooseAdapter(ADAPTERS)(authenticate(ctx)))
    assert ctx.signer is not None and ctx.signer.key_id == SIGNER.public_key().key_id
    assert ctx.business_key == "9074729:V2611:A:CNSHA"
