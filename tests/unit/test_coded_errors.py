"""One coded error base for every package: each package's base is a CodedError, and every
one crosses a process boundary (pickle, as to and from the parse worker) with its fields."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from adapters import AdapterError, RuleViolationError
from contracts import ContractError, RouteDenied
from contracts.expr import ConditionError
from crypto import CryptoError, UnknownSigner
from gateway.errors import ArchiveIOError, GatewayError
from message_formats import CodedError, FormatError, XsdInvalidError

BASES = {
    FormatError: "FORMAT_ERROR",
    CryptoError: "CRYPTO_ERROR",
    ContractError: "CONTRACT_ERROR",
    AdapterError: "ADAPTER_ERROR",
    GatewayError: "GATEWAY_ERROR",
}


@pytest.mark.parametrize(("base", "code"), BASES.items(), ids=lambda v: getattr(v, "__name__", v))
def test_every_package_base_is_a_coded_error_with_its_own_default_code(
    base: type[CodedError], code: str
) -> None:
    assert issubclass(base, CodedError)
    error = base("field 'x' breaks rule y")
    assert (error.code, error.message, error.line, error.path) == (
        code, "field 'x' breaks rule y", None, None)


@pytest.mark.parametrize("error", [
    FormatError("element 'a' is not allowed", code="XSD_INVALID", line=7),
    XsdInvalidError("element 'a' is not allowed", line=3),
    CryptoError("signature does not verify", code="CRYPTO_SIGNATURE_INVALID"),
    UnknownSigner("no key of the agency"),
    ContractError("unknown field", code="CONTRACT_INVALID", path=Path("c/fal1.toml"), line=4),
    RouteDenied("no contract shares fal1", code="ROUTE_NO_CONTRACT"),
    AdapterError("bad check digit", code="RULE_IMO_CHECK_DIGIT", line=12),
    RuleViolationError("eta before etd", line=2),
    GatewayError("document is empty", code="DOCUMENT_EMPTY", line=1),
    ArchiveIOError("cannot write the batch", code="TRAIL_ARCHIVE_IO"),
], ids=lambda error: type(error).__name__)
def test_a_coded_error_pickles_with_code_message_and_where(error: CodedError) -> None:
    again = pickle.loads(pickle.dumps(error, pickle.HIGHEST_PROTOCOL))
    assert type(again) is type(error)
    assert (again.code, again.message, again.line, again.path) == (
        error.code, error.message, error.line, error.path)
    assert str(again) == str(error) and again.args == error.args


def test_an_error_with_its_own_required_arguments_pickles_whole() -> None:
    error = ConditionError("unexpected character", source="a == ?", position=5).located(
        Path("contracts/fal1.toml"), 12)
    again = pickle.loads(pickle.dumps(error))
    assert (again.reason, again.source, again.position) == ("unexpected character", "a == ?", 5)
    assert (again.code, again.path, again.line, str(again)) == (
        "CONDITION_SYNTAX", Path("contracts/fal1.toml"), 12, str(error))


def test_each_family_keeps_its_text() -> None:
    assert str(FormatError("m", code="XSD_INVALID", line=3)) == "XSD_INVALID: m (line 3)"
    assert str(AdapterError("m", code="RULE_X")) == "RULE_X: m"
    assert str(ContractError("m", path=Path("c.toml"), line=2)) == "c.toml:2: CONTRACT_ERROR: m"
    assert str(CryptoError("m")) == "m"
    assert str(GatewayError("m", code="DOCUMENT_EMPTY")) == "m"
