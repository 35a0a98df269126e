"""The China E-Port envelope DxpMsg and transport receipt DxpRep: the quirks of real traffic
are read, the XSD's rules refused with their codes, zips taken out within budgets, render and
parse agree, and an envelope's enveloped signature is checked by composing crypto.xmldsig."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from crypto import SM2PrivateKey
from crypto.xmldsig import (
    EPORT_SM2_SM3_CONVENTION,
    XmlSignatureError,
    sign_enveloped,
    verify_enveloped,
)
from message_formats import FormatError, SafeXmlParser
from message_formats.dxp import (
    DEFAULT_LIMITS,
    DXP_NS,
    DXP_RENDER_INVALID,
    ZIP_MAGIC,
    DxpAddInfo,
    DxpBizKey,
    DxpEnvelope,
    DxpLimits,
    DxpReceipt,
    DxpResponse,
    DxpResult,
    DxpTransInfo,
    build_dxp_msg,
    format_creat_time,
    parse_dxp_msg,
    parse_dxp_rep,
    render_dxp_msg,
    render_dxp_rep,
    serialise,
)

DATA = Path(__file__).parents[1] / "data"
DXP = DATA / "dxp"
FAL1 = (DATA / "fal1" / "valid_arrival.xml").read_bytes()
EXPECTED: dict[str, dict[str, str]] = json.loads(
    (DXP / "expected.json").read_text(encoding="utf-8"))
PARSER = SafeXmlParser()
TRANS = DxpTransInfo("COP-1", "DXPENT0000099001", ("DXPEDCDEC0000001",),
                     "2026-03-15T06:31:02.417+08:00", "FAL1")


def parsed(name: str, limits: DxpLimits = DEFAULT_LIMITS) -> DxpEnvelope:
    return parse_dxp_msg((DXP / name).read_bytes(), PARSER, limits).envelope


def refusal(data: bytes, limits: DxpLimits = DEFAULT_LIMITS) -> FormatError:
    with pytest.raises(FormatError) as caught:
        parse_dxp_msg(data, PARSER, limits)
    return caught.value


def envelope_with_data(data: bytes) -> bytes:
    return render_dxp_msg(DxpEnvelope(TRANS, b"x")).replace(
        b"<Data>eA==</Data>", b"<Data>" + base64.b64encode(data) + b"</Data>")


def zipped(content: bytes, *, encrypted: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("a.xml"), content, compress_type=zipfile.ZIP_DEFLATED)
    data = bytearray(buffer.getvalue())
    if encrypted:  # the general-purpose flag's bit 0, in the local and the central header
        data[6] |= 1
        central = data.rfind(b"PK\x01\x02")
        data[central + 8] |= 1
    return bytes(data)


# -- what real traffic looks like --------------------------------------------------------------


def test_the_default_namespace_layout_with_wrapped_base64_and_milliseconds_is_read() -> None:
    envelope = parsed("valid_fal1_in_envelope.xml")
    info = envelope.trans_info
    assert info.cop_msg_id == "DXPENT0000099001202603150631024170"  # 34 characters, no UUID
    assert (info.sender_id, info.receiver_ids, info.msg_type) == (
        "DXPENT0000099001", ("DXPEDCDEC0000001",), "FAL1")
    assert info.created_text == "2026-03-15T06:31:02.417+08:00"
    assert info.created == datetime(2026, 3, 14, 22, 31, 2, 417000, tzinfo=UTC)
    assert envelope.data == FAL1
    assert (envelope.id, envelope.zipped) == ("CL01", False)
    assert envelope.add_info == DxpAddInfo(
        file_name="FAL1_DXPENT0000099001202603150631024170.xml", text_encoding="UTF-8")


def test_the_prefixed_layout_without_offset_with_bizkeys_and_two_receivers_is_read() -> None:
    envelope = parsed("valid_prefixed_mt2101.xml")
    info = envelope.trans_info
    assert info.receiver_ids == ("DXPEDCDEC0000001", "DXPEDCDEC0000002")
    assert info.created_text == "2026-03-15T08:00:00"
    assert info.created == datetime(2026, 3, 15, 8, tzinfo=timezone(timedelta(hours=8)))
    assert envelope.add_info == DxpAddInfo(
        ic_card="1", biz_keys=(DxpBizKey("DealFlag", "1"), DxpBizKey("RetType", "1")))
    assert envelope.id is None
    assert envelope.data == (DATA / "cn-manifest" / "mt2101_sea_pre_manifest.xml").read_bytes()


def test_a_zipped_data_is_taken_out_of_its_one_member() -> None:
    envelope = parsed("valid_zipped_fal1.xml")
    assert (envelope.data, envelope.zipped) == (FAL1, True)


def test_creat_time_of_every_published_form_is_an_instant() -> None:
    for text, expected in (
        ("2018-02-26T09:52:14.670+08:00", datetime(2018, 2, 26, 1, 52, 14, 670000, tzinfo=UTC)),
        ("2018-02-26T09:52:14", datetime(2018, 2, 26, 1, 52, 14, tzinfo=UTC)),
        ("2018-02-26T01:52:14Z", datetime(2018, 2, 26, 1, 52, 14, tzinfo=UTC)),
        ("2018-02-26T09:52:14.6701234+08:00",
         datetime(2018, 2, 26, 1, 52, 14, 670123, tzinfo=UTC)),
    ):
        info = DxpTransInfo("c", "s", ("r",), text, "T")
        assert info.created == expected
        assert parse_dxp_msg(render_dxp_msg(DxpEnvelope(info, b"x")),
                             PARSER).envelope.trans_info == info


# -- what the XSD refuses ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_or_broken_sample_is_refused_with_its_code(name: str) -> None:
    expected = EXPECTED[name]
    data = (DXP / name).read_bytes()
    if expected["refused_by"] == "envelope":
        assert refusal(data).code == expected["code"]
    else:  # the envelope is sound; what it carries is refused by the safe parser in turn
        inner = parse_dxp_msg(data, PARSER).envelope.data
        with pytest.raises(FormatError) as caught:
            PARSER.parse(inner)
        assert caught.value.code == expected["code"]


def test_refusals_name_the_field_and_rule_never_the_value() -> None:
    long_sender = "DXPENT00000990011"
    error = refusal(render_dxp_msg(DxpEnvelope(TRANS, b"x")).replace(
        b"DXPENT0000099001", long_sender.encode()))
    assert error.code == "DXP_FIELD_TOO_LONG"
    assert "SenderId" in error.message and "16" in error.message
    assert long_sender not in str(error)
    assert error.line == 2  # after the XML declaration


@pytest.mark.parametrize(("edit", "code"), [
    ((b"<MsgType>FAL1</MsgType>", b"<MsgType>" + b"M" * 31 + b"</MsgType>"),
     "DXP_FIELD_TOO_LONG"),
    ((b"<CopMsgId>COP-1</CopMsgId>", b"<CopMsgId></CopMsgId>"), "DXP_FIELD_EMPTY"),
    ((b"<CopMsgId>COP-1</CopMsgId>", b"<CopMsgId>" + b"c" * 256 + b"</CopMsgId>"),
     "DXP_FIELD_TOO_LONG"),
    ((b"<ReceiverIds><ReceiverId>DXPEDCDEC0000001</ReceiverId></ReceiverIds>",
      b"<ReceiverIds/>"), "DXP_MISSING_FIELD"),
    ((b"<SenderId>DXPENT0000099001</SenderId>", b""), "DXP_MISSING_FIELD"),
    ((b' ver="1.0"', b""), "DXP_MISSING_FIELD"),
    ((b' ver="1.0"', b' ver="1.0" Id="123"'), "DXP_BAD_ID"),
    ((b"<MsgType>FAL1</MsgType>", b"<MsgType>FAL1</MsgType><Extra/>"),
     "DXP_UNEXPECTED_CONTENT"),
    ((b"<TransInfo>", b"<TransInfo>loose text"), "DXP_UNEXPECTED_CONTENT"),
    ((b"<MsgType>FAL1</MsgType>", b"<MsgType><b>FAL1</b></MsgType>"),
     "DXP_UNEXPECTED_CONTENT"),
    ((b"<Data>eA==</Data>", b"<Data></Data>"), "DXP_FIELD_EMPTY"),
    ((b"<Data>eA==</Data>", "<Data>eA==　</Data>".encode()), "DXP_BAD_BASE64"),
    ((b"<Data>eA==</Data>", b"<Data>eA=</Data>"), "DXP_BAD_BASE64"),
    ((b"<Data>eA==</Data>", b"<Data>eA==</Data><AddInfo><BizKey/></AddInfo>"),
     "DXP_MISSING_FIELD"),
    ((b"<Data>eA==</Data>", b"<Data>eA==</Data><AddInfo><IsText/></AddInfo>"),
     "DXP_MISSING_FIELD"),
    ((b"<Data>eA==</Data>", b"<Data>eA==</Data><AddInfo><BizKey>"
      + b'<Key name="k">v</Key>' * 6 + b"</BizKey></AddInfo>"), "DXP_TOO_MANY_KEYS"),
    ((b"<Data>eA==</Data>", b"<Data>eA==</Data><AddInfo><IcCard>12345678901234</IcCard>"
      b"</AddInfo>"), "DXP_FIELD_TOO_LONG"),
    ((b"<CreatTime>2026-03-15T06:31:02.417+08:00</CreatTime>",
      b"<CreatTime>2026-03-15T06:31:02+15:00</CreatTime>"), "DXP_BAD_DATETIME"),
    ((b"<CreatTime>2026-03-15T06:31:02.417+08:00</CreatTime>",
      "<CreatTime>２０２６-03-15T06:31:02</CreatTime>".encode()), "DXP_BAD_DATETIME"),
])
def test_the_xsd_rules_are_held_with_stable_codes(edit: tuple[bytes, bytes], code: str) -> None:
    document = render_dxp_msg(DxpEnvelope(TRANS, b"x"))
    assert document.count(edit[0]) == 1
    assert refusal(document.replace(*edit)).code == code


def test_another_root_is_not_an_envelope() -> None:
    assert refusal(FAL1).code == "DXP_NOT_AN_ENVELOPE"
    assert refusal(b'<DxpMsg xmlns="urn:other" ver="1.0"/>').code == "DXP_NOT_AN_ENVELOPE"


def test_base64_beyond_the_data_budget_is_refused_before_decoding() -> None:
    huge = envelope_with_data(b"\0" * 3_000_000)
    assert refusal(huge, DxpLimits(max_data_bytes=2_000_000)).code == "DXP_DATA_TOO_LARGE"


def test_an_envelope_beyond_the_parser_budget_is_refused_by_size() -> None:
    huge = envelope_with_data(b"\0" * 4 * 1024 * 1024)
    assert refusal(huge).code == "XML_TOO_LARGE"


def test_a_zip_inflating_beyond_the_ratio_is_refused_before_inflating() -> None:
    bomb = zipped(b"<a>" + b" " * 2_000_000 + b"</a>")
    assert len(bomb) * 100 < 2_000_000  # within the size budget, beyond the ratio
    error = refusal(envelope_with_data(bomb))
    assert error.code == "DXP_ZIP_REFUSED" and "100 times" in error.message


def test_a_zip_member_beyond_the_inflated_budget_is_refused() -> None:
    member = bytes(range(256)) * 400  # compresses little
    error = refusal(envelope_with_data(zipped(member)), DxpLimits(max_unzipped_bytes=50_000))
    assert error.code == "DXP_ZIP_REFUSED" and "50000 bytes" in error.message


def test_an_encrypted_or_damaged_zip_is_refused() -> None:
    assert refusal(envelope_with_data(zipped(FAL1, encrypted=True))).code == "DXP_ZIP_REFUSED"
    damaged = bytearray(zipped(FAL1))
    damaged[40] ^= 0xFF
    assert refusal(envelope_with_data(bytes(damaged))).code == "DXP_ZIP_REFUSED"


def test_a_zip_member_that_lies_about_its_size_is_refused() -> None:
    archive = bytearray(zipped(FAL1))
    for header in (0, archive.rfind(b"PK\x01\x02") + 2):  # uncompressed size, both headers
        at = header + 22
        archive[at:at + 4] = (len(FAL1) - 100).to_bytes(4, "little")
    assert refusal(envelope_with_data(bytes(archive))).code == "DXP_ZIP_REFUSED"


# -- rendering ---------------------------------------------------------------------------------


def test_render_writes_the_xsd_order_and_the_format_spelling() -> None:
    envelope = DxpEnvelope(TRANS, FAL1, add_info=DxpAddInfo(file_name="f.xml", ic_card="1"),
                           id="CL01")
    root = etree.fromstring(render_dxp_msg(envelope))
    assert root.get("ver") == "1.0" and root.nsmap == {None: DXP_NS}
    assert [etree.QName(child).localname for child in root] == ["TransInfo", "Data", "AddInfo"]
    assert [etree.QName(child).localname for child in root[0]] == [
        "CopMsgId", "SenderId", "ReceiverIds", "CreatTime", "MsgType"]
    assert base64.b64decode(root[1].text) == FAL1


def test_render_refuses_what_parse_would_refuse() -> None:
    too_many = DxpTransInfo("c", "s", tuple(f"r{n}" for n in range(6)),
                            "2026-03-15T06:31:02", "T")
    for envelope, code in (
        (DxpEnvelope(too_many, b"x"), "DXP_TOO_MANY_RECEIVERS"),
        (DxpEnvelope(TRANS, b""), "DXP_FIELD_EMPTY"),
        (DxpEnvelope(TRANS, b"x", id="1a"), "DXP_BAD_ID"),
        (DxpEnvelope(DxpTransInfo("c", "s", ("r",), "today", "T"), b"x"), "DXP_BAD_DATETIME"),
        (DxpEnvelope(DxpTransInfo("c\x01", "s", ("r",), "2026-03-15T06:31:02", "T"), b"x"),
         "DXP_RENDER_INVALID"),
    ):
        with pytest.raises(FormatError) as caught:
            render_dxp_msg(envelope)
        assert caught.value.code == code


def test_format_creat_time_writes_milliseconds_and_the_offset() -> None:
    moment = datetime(2026, 3, 15, 6, 31, 2, 417000)
    assert format_creat_time(moment) == "2026-03-15T06:31:02.417+08:00"
    assert DxpTransInfo("c", "s", ("r",), format_creat_time(moment), "T").created == moment.replace(
        tzinfo=timezone(timedelta(hours=8)))


XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


def bounded(highest: int, lowest: int = 1) -> st.SearchStrategy[str]:
    return st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=lowest,
                   max_size=highest)


trans_infos = st.builds(
    DxpTransInfo,
    cop_msg_id=bounded(255), sender_id=bounded(16),
    receiver_ids=st.lists(bounded(16), min_size=1, max_size=5).map(tuple),
    created_text=st.datetimes(timezones=st.none() | st.just(UTC)).map(format_creat_time),
    msg_type=bounded(30, 0),
)
add_infos = st.builds(
    DxpAddInfo,
    file_name=st.none() | bounded(255), ic_card=st.none() | bounded(13),
    biz_keys=st.lists(st.builds(DxpBizKey, bounded(32), bounded(64)), max_size=5).map(tuple),
    text_encoding=st.none() | st.sampled_from(["UTF-8", "GB18030", ""]),
    rec_map_id=st.none() | XML_TEXT,
)
# Data that starts as a zip archive does cannot be rendered (next test).
envelopes = st.builds(
    DxpEnvelope, trans_info=trans_infos,
    data=st.binary(min_size=1, max_size=300).filter(lambda d: not d.startswith(ZIP_MAGIC)),
    zipped=st.booleans(), add_info=st.none() | add_infos,
    id=st.none() | st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,7}", fullmatch=True),
)
responses = st.builds(
    DxpResponse, response_code=bounded(9), notice_time_text=st.sampled_from(
        ["2026-03-15", "2026-03-15+08:00", "2026-03-15T06:31:02.417+08:00"]),
    original=trans_infos, node_id=st.none() | bounded(8),
    response_info=st.none() | bounded(300, 0),
    results=st.lists(st.builds(DxpResult, bounded(16), bounded(9),
                               st.none() | bounded(300, 0), st.none() | bounded(500, 0)),
                     max_size=3).map(tuple),
    note=st.none() | bounded(500, 0),
)
receipts = st.builds(DxpReceipt, receiver_id=bounded(16),
                     responses=st.lists(responses, min_size=1, max_size=3).map(tuple),
                     ad_node_id=st.none() | bounded(8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes)
def test_parse_of_render_gives_back_the_envelope(envelope: DxpEnvelope) -> None:
    again = parse_dxp_msg(render_dxp_msg(envelope), PARSER)
    assert again.envelope == envelope
    assert not again.signature_present


@pytest.mark.parametrize("zipped", [False, True])
def test_data_that_starts_as_a_zip_does_is_not_rendered(zipped: bool) -> None:
    """A reader would take it for a zip (unzipped), or find a zip inside the zip (zipped),
    and refuse it: the renderer refuses it first, naming the field."""
    envelope = DxpEnvelope(DxpTransInfo("0", "0", ("0",), "2000-01-01T00:00:00.000+08:00", ""),
                           data=ZIP_MAGIC + b"rest", zipped=zipped)
    with pytest.raises(FormatError) as raised:
        render_dxp_msg(envelope)
    assert raised.value.code == DXP_RENDER_INVALID
    assert "DxpMsg/Data" in str(raised.value)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(receipts)
def test_parse_of_render_gives_back_the_transport_receipt(receipt: DxpReceipt) -> None:
    assert parse_dxp_rep(render_dxp_rep(receipt), PARSER) == receipt


def test_the_transport_receipt_echoes_the_trans_info_under_its_own_spelling() -> None:
    receipt = DxpReceipt("DXPENT0000099001", (DxpResponse(
        "2001", "2026-03-15", TRANS, response_info="receiver unknown",
        results=(DxpResult("DXPEDCDEC0000001", "2001"),)),), ad_node_id="53000001")
    root = etree.fromstring(render_dxp_rep(receipt))
    assert [etree.QName(child).localname for child in root] == [
        "RecevierId", "AdNodeId", "Response"]
    assert [etree.QName(child).localname for child in root[2]] == [
        "ResponseCode", "ResponseInfo", "Results", "NoticeTime", "OriHead"]
    ori_head = root[2][4]
    assert ori_head[0].text == TRANS.cop_msg_id and ori_head[3].text == TRANS.created_text



@pytest.mark.parametrize(("edit", "code", "line"), [
    (lambda rep: rep.replace(b"2026-03-15</", b"15.03.2026</"), "DXP_BAD_DATETIME", 5),
    (lambda rep: re.sub(rb"<Response>.*</Response>", b"", rep, flags=re.DOTALL),
     "DXP_MISSING_FIELD", 1),
])
def test_a_transport_receipt_is_refused_once_at_the_line_of_what_breaks_the_rule(
        edit: Callable[[bytes], bytes], code: str, line: int) -> None:
    receipt = DxpReceipt("DXPENT0000099001", (DxpResponse("2001", "2026-03-15", TRANS),))
    rendered = etree.tostring(etree.fromstring(render_dxp_rep(receipt)), pretty_print=True)
    with pytest.raises(FormatError) as refused:
        parse_dxp_rep(edit(rendered), PARSER)
    assert (refused.value.code, refused.value.line) == (code, line)

# -- the envelope's own signature, checked by the caller ---------------------------------------


def test_a_signed_envelope_verifies_through_xmldsig_and_a_tampered_one_is_refused() -> None:
    key = SM2PrivateKey.generate()
    root = build_dxp_msg(DxpEnvelope(TRANS, FAL1, add_info=DxpAddInfo(file_name="f.xml")))
    sign_enveloped(root, key, convention=EPORT_SM2_SM3_CONVENTION, serial=0x1234)
    signed = serialise(root)

    parsed = parse_dxp_msg(signed, PARSER)
    assert parsed.signature_present and parsed.envelope.data == FAL1
    keys = {0x1234: key.public_key()}
    verified = verify_enveloped(parsed.root, lambda hint: keys.get(hint.serial or 0))
    assert verified.convention is EPORT_SM2_SM3_CONVENTION

    tampered = parse_dxp_msg(signed.replace(b"<CopMsgId>COP-1<", b"<CopMsgId>COP-2<"), PARSER)
    with pytest.raises(XmlSignatureError) as caught:
        verify_enveloped(tampered.root, lambda hint: keys.get(hint.serial or 0))
    assert caught.value.code == "XMLDSIG_DIGEST_MISMATCH"


def test_a_signature_anywhere_but_last_is_unexpected() -> None:
    key = SM2PrivateKey.generate()
    root = build_dxp_msg(DxpEnvelope(TRANS, b"x", add_info=DxpAddInfo(file_name="f")))
    sign_enveloped(root, key, convention=EPORT_SM2_SM3_CONVENTION, serial=1)
    root.append(root[2])  # AddInfo after the signature
    assert refusal(serialise(root)).code == "DXP_UNEXPECTED_CONTENT"
