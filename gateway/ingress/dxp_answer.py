"""The door's answer to a DXP envelope (POST /v1/dxp): a `DxpRep` transport receipt echoing
the envelope's TransInfo, in the E-Port's conventions (docs/eport.md, "Ingress of
envelopes").

The E-Port publishes its error codes (4 digits, by class: 0xxx format, 1xxx security, 2xxx
business logic, 3xxx system; docs/eport-research.md §1) but no success code. Ours: `0000`
accepted. A refusal's ResponseCode is the class of the gateway's stable code; the stable code
itself leads ResponseInfo (`CODE: message`), since a Result/Code holds at most 9 characters.
Note names the submission, whose signed receipt the door keeps at
/v1/submissions/{id}/receipt."""

from __future__ import annotations

from gateway.ingress.desk import SubmitOutcome
from message_formats.dxp import (
    DxpReceipt,
    DxpResponse,
    DxpTransInfo,
    format_creat_time,
    render_dxp_rep,
)

ACCEPTED_CODE = "0000"
_MOST_INFO = 300
_MOST_NOTE = 500
# The stable code's class, by exact code first, then by prefix; anything else is a business
# logic refusal (2999: rules, routing).
_BY_CODE = {
    "XMLDSIG_DIGEST_MISMATCH": "1004",  # 签名与数据不符: the signature does not match the data
    "CERT_EXPIRED": "1002",  # 数字签名过期
    "CERT_NOT_YET_VALID": "1002",
    "XSD_INVALID": "0002",  # 数据包不能通过 schema 验证
    "DXP_SENDER_MISMATCH": "1999",
    "INTERNAL_ERROR": "3999",
}
_BY_PREFIX = (
    ("XMLDSIG_", "1001"),  # 数字签名无效
    ("CERT_", "1001"),
    ("AUTH_", "1001"),
    ("DXP_", "0001"),  # 报文格式错误
    ("XML_", "0001"),
    ("FORMAT_", "0001"),
    ("PARSE_", "3999"),
)


def response_code(error_code: str | None) -> str:
    """The DxpRep ResponseCode of a decision: ACCEPTED_CODE, or the refusal's class."""
    if error_code is None:
        return ACCEPTED_CODE
    found = _BY_CODE.get(error_code)
    if found is not None:
        return found
    return next((code for prefix, code in _BY_PREFIX if error_code.startswith(prefix)), "2999")


def transport_receipt(outcome: SubmitOutcome, trans_info: DxpTransInfo) -> bytes:
    """The DxpRep of a decided submission whose envelope the gateway read."""
    assert outcome.receipt is not None
    receipt = outcome.receipt.receipt
    info = None
    if receipt.error_code is not None:
        info = f"{receipt.error_code}: {receipt.error_message or ''}"[:_MOST_INFO]
    elif outcome.duplicate_of is not None:
        info = "accepted before (the same CopMsgId): not delivered again"
    note = f"submission {outcome.submission_id}"[:_MOST_NOTE]
    return render_dxp_rep(DxpReceipt(
        receiver_id=trans_info.sender_id,
        responses=(DxpResponse(
            response_code=response_code(receipt.error_code),
            notice_time_text=format_creat_time(receipt.time),
            original=trans_info,
            response_info=info,
            note=note,
        ),),
    ))
