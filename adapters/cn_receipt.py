"""The MT9999 business receipt (回执) of the customs manifest family, as this project writes
and reads it.

No MT9999 layout is public (docs/eport-research.md §4.6, §8 item 3): what is known is its
name, that receipts are keyed on the original MessageID, voyage and transport means, and
that they carry a 2-character response code and a text that begins with a detail code
(`01`, `21301 预配舱单主要数据传输成功。`). This module is the project's own reconstruction
from those facts and the family's published `Head` (docs/eport.md, "MT9999 business
receipts"): the manifest `Head` with MessageType MT9999, then a `Response` that names the
message answered (`Declaration`) and the result (`ResponseType`: code and text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from lxml import etree

from message_formats import FormatError, SafeXmlParser

from .cn_manifest import NAMESPACE_PREFIX, ROOT_NAME
from .xml_tree import CHINA_STANDARD_TIME, digits_of, read_time_digits

MESSAGE_TYPE = "MT9999"
NAMESPACE = f"{NAMESPACE_PREFIX}CN:{MESSAGE_TYPE}:1"
VERSION = "1.0"
# The project's response codes (none is published but `01` for a success, research §4.6).
ACCEPTED_CODE = "01"
DUPLICATE_CODE = "02"
REFUSED_CODE = "03"
TEXT_MAX_LENGTH = 512
ID_MAX_LENGTH = 100
RECEIPT_INVALID = "MT9999_INVALID"


@dataclass(frozen=True, slots=True)
class Answered:
    """The message a receipt answers: its MessageID (the envelope's CopMsgId when the
    manifest could not be read), type and function code, and where known the journey and
    the transport means (the keys receipts are filed under)."""

    message_id: str
    message_type: str | None = None
    function_code: str | None = None
    journey_id: str | None = None
    transport_means_id: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestReceipt:
    """One MT9999: who answers whom, when (`sent`: an instant, written in China Standard
    Time to the millisecond), what it answers, and the result."""

    sender_id: str
    receiver_id: str
    sent: datetime
    answered: Answered
    code: str
    text: str

    @property
    def message_id(self) -> str:
        """`CN_MT9999_1p0_<sender>_<yyyyMMddHHmmssSSS>`, the family's published form."""
        return f"CN_{MESSAGE_TYPE}_1p0_{self.sender_id}_{send_time(self.sent)}"


def send_time(moment: datetime) -> str:
    """17 digits, yyyyMMddHHmmssSSS, in China Standard Time (the messages carry no offset)."""
    return digits_of(moment.astimezone(CHINA_STANDARD_TIME), 17)


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _leaf(parent: etree._Element, name: str, text: str | None) -> None:
    if text is not None:
        etree.SubElement(parent, _tag(name)).text = text


def render_receipt(receipt: ManifestReceipt) -> bytes:
    """The receipt as UTF-8 XML. The text is cut to TEXT_MAX_LENGTH characters."""
    root = etree.Element(_tag(ROOT_NAME), nsmap={None: NAMESPACE})
    head = etree.SubElement(root, _tag("Head"))
    answered = receipt.answered
    for name, text in (("MessageID", receipt.message_id),
                       ("FunctionCode", answered.function_code or "2"),
                       ("MessageType", MESSAGE_TYPE), ("SenderID", receipt.sender_id),
                       ("ReceiverID", receipt.receiver_id),
                       ("SendTime", send_time(receipt.sent)), ("Version", VERSION)):
        _leaf(head, name, text)
    response = etree.SubElement(root, _tag("Response"))
    declaration = etree.SubElement(response, _tag("Declaration"))
    _leaf(declaration, "MessageID", answered.message_id[:ID_MAX_LENGTH])
    _leaf(declaration, "MessageType", answered.message_type)
    _leaf(declaration, "FunctionCode", answered.function_code)
    if answered.journey_id is not None or answered.transport_means_id is not None:
        means = etree.SubElement(declaration, _tag("BorderTransportMeans"))
        _leaf(means, "JourneyID", answered.journey_id)
        _leaf(means, "ID", answered.transport_means_id)
    result = etree.SubElement(response, _tag("ResponseType"))
    _leaf(result, "Code", receipt.code)
    _leaf(result, "Text", receipt.text[:TEXT_MAX_LENGTH])
    return cast(bytes, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def parse_receipt(data: bytes, parser: SafeXmlParser) -> ManifestReceipt:
    """A receipt `render_receipt` wrote, read back; FormatError (MT9999_INVALID) naming the
    element for anything else."""
    root = parser.parse(data)
    if root.tag != _tag(ROOT_NAME):
        raise FormatError(f"the root must be {ROOT_NAME} in {NAMESPACE}", code=RECEIPT_INVALID)
    means = root.find(f"{_tag('Response')}/{_tag('Declaration')}/{_tag('BorderTransportMeans')}")
    answered = Answered(
        message_id=_text(root, "Response/Declaration/MessageID"),
        message_type=_optional(root, "Response/Declaration/MessageType"),
        function_code=_optional(root, "Response/Declaration/FunctionCode"),
        journey_id=None if means is None else _optional(means, "JourneyID"),
        transport_means_id=None if means is None else _optional(means, "ID"),
    )
    return ManifestReceipt(
        sender_id=_text(root, "Head/SenderID"), receiver_id=_text(root, "Head/ReceiverID"),
        sent=_send_time(_text(root, "Head/SendTime")), answered=answered,
        code=_text(root, "Response/ResponseType/Code"),
        text=_text(root, "Response/ResponseType/Text"))


def _send_time(text: str) -> datetime:
    moment = read_time_digits(text) if len(text) == 17 else None
    if moment is None:
        raise FormatError(f"{ROOT_NAME}/Head/SendTime must be 17 digits, yyyyMMddHHmmssSSS",
                          code=RECEIPT_INVALID)
    return moment


def _optional(parent: etree._Element, path: str) -> str | None:
    found = parent.find("/".join(_tag(part) for part in path.split("/")))
    return None if found is None else (found.text or "")


def _text(parent: etree._Element, path: str) -> str:
    text = _optional(parent, path)
    if text is None:
        raise FormatError(f"{ROOT_NAME}/{path} is required", code=RECEIPT_INVALID)
    return text
