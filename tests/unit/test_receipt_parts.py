"""The signed receipt of an interchange of several messages tells each message's outcome
(`Receipt.parts`, px.gateway.ReceiptPart; docs/service.md, "Receipts"): accepted with its
recipients, rejected with its code and where, or denied with the contracts' code; the seal
covers them. A receipt of one document keeps its encoding, one null byte longer, and a
receipt signed before the field existed is still read. Real adapters, stages, schemas and
SM2 seals; no broker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from crypto import BatchSigner, SignatureInvalid
from gateway.cli.main import EXIT_PARTLY, submit_exit_status
from gateway.console.documents import DocumentIndex, Search
from gateway.console.words import Lang, Words
from gateway.kafka.names import StoredMessage
from gateway.publish.plan import accepted_plan
from gateway.receipts.receipt import (
    ACCEPTED,
    DENIED,
    RECEIPT_SCHEMA,
    REJECTED,
    Receipt,
    ReceiptPart,
    SignedReceipt,
)
from message_formats import AvroSchemas
from tests.unit.seal_support import GATEWAY_KEY, KEYRING, SCHEMAS
from tests.unit.test_derived_documents import AT, CUSTOMS, EVENT_ID, WIRE, decided, home_with
from tests.unit.test_edifact_several_messages import (
    KEY,
    MANIFEST_TO_CUSTOMS,
    SECOND_REFUSED,
    THREE,
    condition_on_message,
)

RELEASED_0_3_0 = Path(__file__).parents[2] / "message_formats" / "released" / "0.3.0"


def sealed(receipt: Receipt) -> SignedReceipt:
    """`receipt` signed as the publisher signs it, and read back as a client reads it."""
    body = SCHEMAS.encode_body(RECEIPT_SCHEMA, receipt.to_avro())
    [signed] = SignedReceipt.of_batch([receipt], [body], BatchSigner(GATEWAY_KEY).sign([body]))
    return SignedReceipt.decode(SCHEMAS, signed.encode(SCHEMAS))


def test_the_receipt_names_each_message_s_outcome_and_its_seal_covers_them(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", MANIFEST_TO_CUSTOMS)
    ctx, why = decided(home, parts, SECOND_REFUSED, "cuscar-edifact")
    assert why is None
    receipt = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT).receipt
    assert receipt is not None
    assert (receipt.status, receipt.event_id, receipt.recipients) == (
        ACCEPTED, EVENT_ID, (CUSTOMS,))
    second, third = ctx.derived
    assert receipt.parts == (
        ReceiptPart(1, "MREF0001", "CUSCAR", ACCEPTED, EVENT_ID, KEY.format("0331E"),
                    (CUSTOMS,)),
        ReceiptPart(2, "MREF0002", "CUSCAR", REJECTED, second.event_id, KEY.format("0332E"),
                    error_code="RULE_CONTAINER_CHECK_DIGIT",
                    error_message=second.refused.message if second.refused else None,
                    error_line=17, error_segment=17),
        ReceiptPart(3, "MREF0003", "CUSCAR", ACCEPTED, third.event_id, KEY.format("0333E"),
                    (CUSTOMS,)))
    assert [p.number for p in receipt.parts_not_accepted] == [2]

    signed = sealed(receipt)
    assert signed.receipt == receipt
    assert signed.check(KEYRING).agency_id == "px.gateway"
    shown = signed.to_json()["receipt"]["parts"]
    assert [(p["status"], p.get("error_code"), p.get("error_segment")) for p in shown] == [
        (ACCEPTED, None, None), (REJECTED, "RULE_CONTAINER_CHECK_DIGIT", 17),
        (ACCEPTED, None, None)]

    # a part changed after signing (refused said accepted) no longer verifies
    told_accepted = replace(receipt, parts=(
        receipt.parts[0], replace(receipt.parts[1], status=ACCEPTED, error_code=None),
        receipt.parts[2]))
    forged_part = SCHEMAS.encode_body(RECEIPT_SCHEMA, told_accepted.to_avro())
    forged = SignedReceipt(Receipt.from_avro(SCHEMAS.decode_body(RECEIPT_SCHEMA, forged_part)),
                           forged_part, signed.seal, signed.proof)
    with pytest.raises(SignatureInvalid):
        forged.check(KEYRING)


def test_the_submission_s_own_message_denied_alone_is_a_denied_part(tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home",
                            condition_on_message('head.message_id != "MREF0001"'))
    ctx, why = decided(home, parts, THREE, "cuscar-edifact")
    assert why is None
    receipt = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT).receipt
    assert receipt is not None and receipt.parts is not None
    assert receipt.status == ACCEPTED and receipt.event_id == EVENT_ID
    assert [(p.status, p.business_key, p.error_code, p.recipients) for p in receipt.parts] == [
        (DENIED, KEY.format("0326E"), "ROUTE_CONDITION_FALSE", ()),
        (ACCEPTED, KEY.format("0327E"), None, (CUSTOMS,)),
        (ACCEPTED, KEY.format("0328E"), None, (CUSTOMS,))]
    assert receipt.parts[0].event_id == EVENT_ID
    assert sealed(receipt).receipt == receipt


def test_a_receipt_of_one_document_has_no_parts_and_keeps_its_encoding() -> None:
    one = Receipt(submission_id="cn.port.sh~1", event_id=EVENT_ID, sender="cn.port.sh",
                  format_id="fal1-xml", digest_sm3="ab" * 32, status=ACCEPTED, time=AT,
                  recipients=(CUSTOMS,), document_type="fal1", business_key="K-1")
    released = AvroSchemas.from_dirs(RELEASED_0_3_0, builtin=False)
    as_released = {k: v for k, v in one.to_avro().items() if k != "parts"}
    before = released.encode_body(RECEIPT_SCHEMA, as_released)
    body = SCHEMAS.encode_body(RECEIPT_SCHEMA, one.to_avro())
    assert body == before + b"\x00"  # the null of `parts`, nothing else changed
    assert "parts" not in one.to_json() and one.parts_not_accepted == ()
    # a receipt signed before `parts` existed (on px.receipt.v1, in the receipt book)
    [old] = SignedReceipt.of_batch([one], [before], BatchSigner(GATEWAY_KEY).sign([before]))
    read = SignedReceipt.decode(SCHEMAS, old.encode(SCHEMAS))
    assert read.receipt == one and read.body == before
    read.check(KEYRING)


def test_portgw_submit_exits_3_and_names_the_messages_not_accepted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home, parts = home_with(tmp_path / "home", MANIFEST_TO_CUSTOMS)
    ctx, _ = decided(home, parts, SECOND_REFUSED, "cuscar-edifact")
    partly = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT).receipt
    assert partly is not None and partly.parts is not None
    assert submit_exit_status(partly) == EXIT_PARTLY
    assert capsys.readouterr().err == (
        "message 2 (UNH MREF0002) rejected: RULE_CONTAINER_CHECK_DIGIT\n")
    assert submit_exit_status(replace(partly, parts=partly.parts[::2])) == 0
    assert submit_exit_status(replace(partly, status=REJECTED, parts=None)) == 1


def test_the_console_files_how_many_messages_of_an_interchange_were_accepted(
        tmp_path: Path) -> None:
    home, parts = home_with(tmp_path / "home", MANIFEST_TO_CUSTOMS)
    ctx, _ = decided(home, parts, SECOND_REFUSED, "cuscar-edifact")
    partly = accepted_plan(ctx, parts.router.index, parts.schemas, WIRE, AT).receipt
    assert partly is not None
    one = replace(partly, submission_id="cn.port.sh~one", parts=None)
    index = DocumentIndex(SCHEMAS)
    for offset, receipt in enumerate((partly, one)):
        index.file(StoredMessage("px.receipt.v1", 0, offset, receipt.submission_id.encode(),
                                 sealed(receipt).encode(SCHEMAS), (), 0))
    found = {f.submission_id: f for f in index.page(Search(), 1, 10).rows}
    assert (found[partly.submission_id].parts,
            found[partly.submission_id].parts_accepted) == (3, 2)
    assert (found["cn.port.sh~one"].parts, found["cn.port.sh~one"].parts_accepted) == (0, 0)
    assert Words(Lang.EN)("of_messages", state="accepted", accepted=2, parts=3) == (
        "accepted: 2 of 3 messages")
    index.close()


def test_the_openapi_spec_describes_every_field_of_a_receipt_and_of_its_parts() -> None:
    spec = yaml.safe_load((Path(__file__).parents[2] / "gateway" / "ingress" / "openapi.yaml"
                           ).read_text(encoding="utf-8"))["components"]["schemas"]
    part = ReceiptPart(1, "M1", "CUSCAR", DENIED, EVENT_ID)
    receipt = Receipt("s", EVENT_ID, "a", "cuscar-edifact", "ab" * 32, ACCEPTED, AT,
                      parts=(part,))
    assert set(spec["Receipt"]["properties"]) == set(receipt.to_avro())
    assert set(spec["ReceiptPart"]["properties"]) == set(part.to_avro())
    assert set(spec["ReceiptPart"]["properties"]["status"]["enum"]) == {
        ACCEPTED, REJECTED, DENIED}
