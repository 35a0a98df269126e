"""A submission that names no format: the DetectFormat stage finds the format from the
content as `portgw adapters parse FILE` does (in the parse worker; the gateway's own stage
reads nothing), and the worker then checks the document as one of that format."""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters import AdapterRegistry, FormatDetector
from crypto import SM2PrivateKey
from gateway.decide.ahead import (
    ANSWER,
    DETECTED,
    NOT_VERIFIED,
    NOTHING_AHEAD,
    PARSED,
    REFUSED,
    Checker,
    ParseUnavailable,
    item_of,
    pack_certificates,
)
from gateway.decide.pipeline import (
    DXP_FORMAT,
    Context,
    DetectFormat,
    Refusal,
    Submission,
    new_context,
)
from gateway.home.config import GatewayConfig
from gateway.home.create import create_home
from gateway.parts import GatewayParts
from gateway.service import Gateway
from message_formats import AvroSchemas, CodedError, SafeXmlParser
from message_formats.dxp import DxpEnvelope, DxpTransInfo, render_dxp_msg

ARRIVAL = (Path(__file__).parents[1] / "data" / "fal1" / "valid_arrival.xml").read_bytes()
ADAPTERS = AdapterRegistry.default(AvroSchemas())
SENDER = "cn.port.sh"
SIGNER = SM2PrivateKey.generate()
UNKNOWN_ROOT = b"<Declaration xmlns='urn:example:nobody'><Id>1</Id></Declaration>"
AT = datetime(2026, 5, 1, tzinfo=UTC)


def unnamed(document: bytes, format_id: str = "") -> Context:
    return new_context(Submission("s", SENDER, format_id, document,
                                  SIGNER.sign(document), AT), "e")


def detecting() -> DetectFormat:
    parser = SafeXmlParser()
    return DetectFormat(FormatDetector(ADAPTERS, parser=parser), parser)


def envelope(business: bytes) -> bytes:
    info = DxpTransInfo("COP-D", SENDER, ("cn.customs.sh",), "2026-05-01T08:00:00", "")
    return render_dxp_msg(DxpEnvelope(info, business))


def test_the_format_is_the_one_installed_format_that_declares_the_root() -> None:
    ctx = detecting()(unnamed(ARRIVAL))
    assert ctx.submission.format_id == "fal1-xml"
    assert ctx.format_id == "fal1-xml"


def test_an_envelope_is_format_dxp_whatever_it_holds() -> None:
    """OpenEnvelope then finds the business message's format (MsgType, or detected)."""
    assert detecting()(unnamed(envelope(UNKNOWN_ROOT))).submission.format_id == DXP_FORMAT


@pytest.mark.parametrize(("document", "code"), [
    (UNKNOWN_ROOT, "FORMAT_UNKNOWN"),
    (b"<Manifest xmlns='urn:Declaration:datamodel:standard:CN:MT4101:1'/>", "FORMAT_NO_ADAPTER"),
    (b"not xml at all", "FORMAT_UNSUPPORTED"),
    (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>", "XML_DTD_FORBIDDEN"),
])
def test_what_cannot_be_told_is_refused_with_the_detectors_code(document: bytes,
                                                                 code: str) -> None:
    with pytest.raises(CodedError) as raised:
        detecting()(unnamed(document))
    assert raised.value.code == code


def test_a_named_format_is_not_read() -> None:
    ctx = unnamed(b"not xml at all", "fal1-xml")
    assert detecting()(ctx) is ctx


def test_the_gateways_stage_reads_nothing_and_raises_what_the_worker_found() -> None:
    stage = DetectFormat()
    ctx = unnamed(ARRIVAL)
    assert stage(ctx) is ctx  # not sent to the worker: the authenticate stage says why
    refused = replace(ctx, refused=Refusal("FORMAT_UNKNOWN", "root is declared by no format"))
    with pytest.raises(CodedError) as raised:
        stage(refused)
    assert raised.value.code == "FORMAT_UNKNOWN"
    assert pickle.loads(pickle.dumps(stage)) == stage


def detected_answer(document: bytes, keys: list[bytes]) -> tuple[str, int, object]:
    """The worker's answer to an item naming no format: the format it found, then the
    outcome and payload of the item checked as that format."""
    s = replace(unnamed(document).submission, submission_id="")
    answer, out_of_memory = Checker(ADAPTERS).check(item_of(s, pack_certificates(keys)))
    assert not out_of_memory
    assert answer[4:5] == ANSWER and answer[5] == DETECTED
    payload = answer[6:]
    (length,) = struct.unpack_from(">I", payload)
    format_id = payload[4 : 4 + length].decode()
    outcome, rest = payload[4 + length], payload[5 + length :]
    return format_id, outcome, pickle.loads(rest) if rest else None


def test_the_worker_detects_then_verifies_and_parses_as_that_format() -> None:
    key = SIGNER.public_key().to_der()
    format_id, outcome, parsed = detected_answer(ARRIVAL, [key])
    assert (format_id, outcome) == ("fal1-xml", PARSED)
    assert parsed == ADAPTERS.get("fal1-xml").parse(ARRIVAL)
    other = SM2PrivateKey.generate().public_key().to_der()
    assert detected_answer(ARRIVAL, [other])[:2] == ("fal1-xml", NOT_VERIFIED)
    # no key of the sender's: not verified, so not parsed either
    assert detected_answer(ARRIVAL, [b""])[:2] == ("fal1-xml", NOT_VERIFIED)
    # an envelope from a sender without certificates: not opened
    assert detected_answer(envelope(ARRIVAL), [key])[:2] == (DXP_FORMAT, NOT_VERIFIED)


def test_the_worker_refuses_what_it_cannot_tell_before_verifying_anything() -> None:
    format_id, outcome, refusal = detected_answer(UNKNOWN_ROOT, [SIGNER.public_key().to_der()])
    assert (format_id, outcome) == ("", REFUSED)
    assert isinstance(refusal, Refusal) and refusal.code == "FORMAT_UNKNOWN"


def test_what_only_the_worker_reads_is_left_for_the_next_worker_when_it_did_not_answer(
    tmp_path: Path
) -> None:
    """The checks closed (the gateway stopping) before the worker answered: an envelope, or
    a submission naming no format, is not decided unread (nor sent to the worker again
    from `begin`): ParseUnavailable, and the ingress loop takes it again later."""
    home = create_home(tmp_path / "home")
    config = GatewayConfig.load(home.config_file, env={})
    gateway = Gateway(config, GatewayParts.load(config), "127.0.0.1:9")

    async def run() -> list[str]:
        await gateway.stop()
        codes = []
        for format_id in (DXP_FORMAT, ""):
            with pytest.raises(ParseUnavailable) as raised:
                await gateway.begin(Submission("s", SENDER, format_id, envelope(ARRIVAL),
                                               b"", AT), NOTHING_AHEAD)
            codes.append(raised.value.code)
        return codes

    assert asyncio.run(run()) == ["PARSE_UNAVAILABLE"] * 2
