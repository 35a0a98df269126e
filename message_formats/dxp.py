"""The China E-Port data-exchange envelope ``DxpMsg`` and its transport receipt ``DxpRep``
(docs/eport.md; the facts, from the official XSD and real traffic, in docs/eport-research.md §1).

Parsing holds an envelope to the XSD's element order, lengths and cardinalities (1 to 5
``ReceiverId``, ``CopMsgId`` at most 255 characters…) and refuses with stable ``DXP_*`` codes
whose messages name the field and the rule, never the value. ``Data`` is base64 with
whitespace allowed; when the decoded bytes are a zip archive (they start ``PK\\x03\\x04``) its
one member is taken out within budgets (sizes and ratio); several members, encryption and
an archive inside the archive are refused. The business message inside is returned as bytes:
the caller reads it with a SafeXmlParser like any other document.

An envelope's own ``ds:Signature`` is not checked here (this package imports nothing of
``crypto``): ``ParsedDxpMsg.root`` is the parsed tree, which the caller hands to
``crypto.xmldsig.verify_enveloped``. ``build_dxp_msg`` returns a tree for the same reason, so
that a caller can sign it (``sign_enveloped``) before serialising.

The format's misspellings (``CreatTime``, ``RecevierId``) are kept: they are its names."""

from __future__ import annotations

import base64
import binascii
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TypeVar, cast

from lxml import etree

from .errors import FormatError
from .safe_xml import SafeXmlParser

DXP_NS = "http://www.chinaport.gov.cn/dxp"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DXP_VERSION = "1.0"
DXP_MSG = f"{{{DXP_NS}}}DxpMsg"
DXP_REP = f"{{{DXP_NS}}}DxpRep"
ZIP_MAGIC = b"PK\x03\x04"
MAX_RECEIVERS = 5
MAX_BIZ_KEYS = 5
# A CreatTime written without an offset is read as the E-Port's clock, Beijing time.
EPORT_TIMEZONE = timezone(timedelta(hours=8))

DXP_NOT_AN_ENVELOPE = "DXP_NOT_AN_ENVELOPE"
DXP_VERSION_UNSUPPORTED = "DXP_VERSION_UNSUPPORTED"
DXP_MISSING_FIELD = "DXP_MISSING_FIELD"
DXP_FIELD_EMPTY = "DXP_FIELD_EMPTY"
DXP_FIELD_TOO_LONG = "DXP_FIELD_TOO_LONG"
DXP_TOO_MANY_RECEIVERS = "DXP_TOO_MANY_RECEIVERS"
DXP_TOO_MANY_KEYS = "DXP_TOO_MANY_KEYS"
DXP_UNEXPECTED_CONTENT = "DXP_UNEXPECTED_CONTENT"
DXP_BAD_DATETIME = "DXP_BAD_DATETIME"
DXP_BAD_ID = "DXP_BAD_ID"
DXP_BAD_BASE64 = "DXP_BAD_BASE64"
DXP_DATA_TOO_LARGE = "DXP_DATA_TOO_LARGE"
DXP_ZIP_REFUSED = "DXP_ZIP_REFUSED"
DXP_RENDER_INVALID = "DXP_RENDER_INVALID"

_XML_WHITESPACE = " \t\r\n"
_XML_WHITESPACE_BYTES = _XML_WHITESPACE.encode("ascii")
_DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_OFFSET = r"(Z|[+-][0-9]{2}:[0-9]{2})?"
_DATETIME = re.compile(_DATE + r"T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?" + _OFFSET)
_DATE_ONLY = re.compile(_DATE + _OFFSET)
# xs:ID is an NCName; the spec adds "not empty, not all digits" (an NCName never starts with
# a digit). Its "an..6" is not held to: published templates write Id="dxpEport".
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")

T = TypeVar("T")


def _dxp(name: str) -> str:
    return f"{{{DXP_NS}}}{name}"


_SIGNATURE = f"{{{DS_NS}}}Signature"


def _refuse(code: str, message: str, element: etree._Element | None = None) -> FormatError:
    return FormatError(message, code=code,
                       line=element.sourceline if element is not None else None)


# -- the values -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DxpLimits:
    """What an envelope may hold: the decoded ``Data``, a zip's one member and how much it
    may grow when inflated (zip bombs inflate a thousandfold)."""

    max_data_bytes: int = 4 * 1024 * 1024
    max_unzipped_bytes: int = 16 * 1024 * 1024
    max_zip_ratio: int = 100


DEFAULT_LIMITS = DxpLimits()


@dataclass(frozen=True, slots=True)
class DxpTransInfo:
    """``TransInfo`` (and a receipt's ``OriHead``): who sends what to whom. ``CopMsgId`` is the
    sender's own id, opaque (a UUID or not), on which receivers de-duplicate."""

    cop_msg_id: str
    sender_id: str
    receiver_ids: tuple[str, ...]
    created_text: str  # CreatTime as written: with or without milliseconds and offset
    msg_type: str

    @property
    def created(self) -> datetime:
        """CreatTime as an instant; written without an offset it is Beijing time."""
        return parse_xs_datetime(self.created_text)


@dataclass(frozen=True, slots=True)
class DxpBizKey:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class DxpAddInfo:
    """``AddInfo``, every part optional. ``biz_keys`` empty means no ``BizKey``;
    ``text_encoding`` is ``IsText/@Encode``: the payload is text in that character set."""

    file_name: str | None = None
    ic_card: str | None = None
    biz_keys: tuple[DxpBizKey, ...] = ()
    text_encoding: str | None = None
    rec_map_id: str | None = None


@dataclass(frozen=True, slots=True)
class DxpEnvelope:
    """A ``DxpMsg`` without its signature: ``data`` is the business message, decoded (and
    taken out of its zip when ``zipped``)."""

    trans_info: DxpTransInfo
    data: bytes
    zipped: bool = False
    add_info: DxpAddInfo | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ParsedDxpMsg:
    """A parsed envelope and its tree, which ``crypto.xmldsig.verify_enveloped`` checks when
    ``signature_present``. The tree must not be shared between threads while verified."""

    envelope: DxpEnvelope
    root: etree._Element = field(repr=False)
    signature_present: bool


@dataclass(frozen=True, slots=True)
class DxpResult:
    """One receiver's result in a ``DxpRep``."""

    rec_id: str
    code: str
    info: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DxpResponse:
    """One ``Response`` of a ``DxpRep``; ``original`` echoes the envelope's TransInfo
    (``OriHead``). ``notice_time_text`` is an xs:date by the XSD, often a dateTime."""

    response_code: str
    notice_time_text: str
    original: DxpTransInfo
    node_id: str | None = None
    response_info: str | None = None
    results: tuple[DxpResult, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DxpReceipt:
    """The exchange platform's transport receipt ``DxpRep`` (``RecevierId`` sic)."""

    receiver_id: str
    responses: tuple[DxpResponse, ...]
    ad_node_id: str | None = None


# -- dates ------------------------------------------------------------------------------------


def parse_xs_datetime(text: str) -> datetime:
    """An xs:dateTime (fraction and offset optional), as an aware instant; without an offset
    it is Beijing time. ValueError when it is none."""
    found = _DATETIME.fullmatch(text)
    if found is None:
        raise ValueError("not an xs:dateTime")
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                    micro, tzinfo=_zone(offset))


def _parse_xs_date_or_datetime(text: str) -> date:
    found = _DATE_ONLY.fullmatch(text)
    if found is None:
        return parse_xs_datetime(text).date()
    year, month, day, offset = found.groups()
    _zone(offset)
    return date(int(year), int(month), int(day))


def _zone(offset: str | None) -> timezone:
    if offset is None:
        return EPORT_TIMEZONE
    if offset == "Z":
        return UTC
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError("offset out of range")
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def format_creat_time(moment: datetime) -> str:
    """CreatTime as the E-Port writes it: milliseconds and the offset (naive: Beijing time)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=EPORT_TIMEZONE)
    return moment.isoformat(timespec="milliseconds")


# -- the rules both parsing and rendering hold values to ---------------------------------------


def _check_length(path: str, value: str, lowest: int, highest: int,
                  element: etree._Element | None = None) -> str:
    if len(value) < lowest:
        raise _refuse(DXP_FIELD_EMPTY, f"{path} must not be empty", element)
    if len(value) > highest:
        raise _refuse(DXP_FIELD_TOO_LONG, f"{path} is longer than {highest} characters",
                      element)
    return value


def _check_trans_info(info: DxpTransInfo, path: str) -> None:
    _check_length(f"{path}/CopMsgId", info.cop_msg_id, 1, 255)
    _check_length(f"{path}/SenderId", info.sender_id, 1, 16)
    _check_receiver_count(len(info.receiver_ids), path)
    for receiver in info.receiver_ids:
        _check_length(f"{path}/ReceiverIds/ReceiverId", receiver, 1, 16)
    _check_datetime(f"{path}/CreatTime", info.created_text)
    _check_length(f"{path}/MsgType", info.msg_type, 0, 30)


def _check_receiver_count(count: int, path: str, element: etree._Element | None = None) -> None:
    if count == 0:
        raise _refuse(DXP_MISSING_FIELD, f"{path}/ReceiverIds needs at least one ReceiverId",
                      element)
    if count > MAX_RECEIVERS:
        raise _refuse(DXP_TOO_MANY_RECEIVERS,
                      f"{path}/ReceiverIds holds at most {MAX_RECEIVERS} ReceiverId", element)


def _check_datetime(path: str, text: str, element: etree._Element | None = None) -> None:
    try:
        parse_xs_datetime(text)
    except ValueError:
        raise _refuse(DXP_BAD_DATETIME, f"{path} is not an xs:dateTime "
                      "(yyyy-mm-ddThh:mm:ss, optional fraction and offset)", element) from None


def _check_add_info(info: DxpAddInfo) -> None:
    path = "DxpMsg/AddInfo"
    _check_optional(f"{path}/FileName", info.file_name, 1, 255)
    _check_optional(f"{path}/IcCard", info.ic_card, 1, 13)
    if len(info.biz_keys) > MAX_BIZ_KEYS:
        raise _refuse(DXP_TOO_MANY_KEYS, f"{path}/BizKey holds at most {MAX_BIZ_KEYS} Key")
    for key in info.biz_keys:
        _check_length(f"{path}/BizKey/Key/@name", key.name, 1, 32)
        _check_length(f"{path}/BizKey/Key", key.value, 1, 64)
    _check_optional(f"{path}/IsText/@Encode", info.text_encoding, 0, 50)


def _check_optional(path: str, value: str | None, lowest: int, highest: int) -> None:
    if value is not None:
        _check_length(path, value, lowest, highest)


def _check_id(value: str | None) -> None:
    if value is not None and _NCNAME.fullmatch(value) is None:
        raise _refuse(DXP_BAD_ID, "DxpMsg/@Id must be an XML name (not empty, not starting "
                      "with a digit)")


def _check_response(response: DxpResponse, path: str) -> None:
    _check_optional(f"{path}/NodeId", response.node_id, 1, 8)
    _check_length(f"{path}/ResponseCode", response.response_code, 1, 9)
    _check_optional(f"{path}/ResponseInfo", response.response_info, 0, 300)
    for result in response.results:
        _check_length(f"{path}/Results/Result/RecId", result.rec_id, 1, 16)
        _check_length(f"{path}/Results/Result/Code", result.code, 1, 9)
        _check_optional(f"{path}/Results/Result/Info", result.info, 0, 300)
        _check_optional(f"{path}/Results/Result/Note", result.note, 0, 500)
    _check_notice_time(f"{path}/NoticeTime", response.notice_time_text)
    _check_optional(f"{path}/Note", response.note, 0, 500)
    _check_trans_info(response.original, f"{path}/OriHead")


def _check_notice_time(path: str, text: str, element: etree._Element | None = None) -> None:
    try:
        _parse_xs_date_or_datetime(text)
    except ValueError:
        raise _refuse(DXP_BAD_DATETIME, f"{path} is not an xs:date or xs:dateTime",
                      element) from None


_NO_RESPONSE = "DxpRep needs at least one Response"


def _check_receipt(receipt: DxpReceipt) -> None:
    """What rendering holds a receipt to; reading checks each value as it reads it."""
    _check_length("DxpRep/RecevierId", receipt.receiver_id, 1, 16)
    _check_optional("DxpRep/AdNodeId", receipt.ad_node_id, 1, 8)
    if not receipt.responses:
        raise _refuse(DXP_MISSING_FIELD, _NO_RESPONSE)
    for response in receipt.responses:
        _check_response(response, "DxpRep/Response")


# -- reading ----------------------------------------------------------------------------------


class _Children:
    """An element's children in the XSD's sequence: each must be the next one expected."""

    __slots__ = ("_elements", "_parent", "_position", "path")

    def __init__(self, parent: etree._Element, path: str) -> None:
        _refuse_text_between(parent, path)
        self._elements = [child for child in parent if isinstance(child.tag, str)]
        self._parent = parent
        self.path = path
        self._position = 0

    def _next_is(self, tag: str) -> bool:
        return self._position < len(self._elements) and self._elements[self._position].tag == tag

    def optional(self, name: str, namespace: str = DXP_NS) -> etree._Element | None:
        if not self._next_is(f"{{{namespace}}}{name}"):
            return None
        self._position += 1
        return self._elements[self._position - 1]

    def required(self, name: str) -> etree._Element:
        found = self.optional(name)
        if found is None:
            raise _refuse(DXP_MISSING_FIELD, f"{self.path}/{name} is required (in the "
                          "XSD's order)", self._here())
        return found

    def repeated(self, name: str) -> list[etree._Element]:
        run: list[etree._Element] = []
        while (found := self.optional(name)) is not None:
            run.append(found)
        return run

    def end(self) -> None:
        if self._position < len(self._elements):
            unexpected = self._elements[self._position]
            raise _refuse(DXP_UNEXPECTED_CONTENT, f"{self.path} holds an element the XSD "
                          f"does not allow here ({etree.QName(unexpected).localname})",
                          unexpected)

    def _here(self) -> etree._Element:
        if self._position < len(self._elements):
            return self._elements[self._position]
        return self._parent


def _refuse_text_between(parent: etree._Element, path: str) -> None:
    texts = [parent.text, *(child.tail for child in parent)]
    if any(text and text.strip(_XML_WHITESPACE) for text in texts):
        raise _refuse(DXP_UNEXPECTED_CONTENT, f"{path} holds text between its elements",
                      parent)


def _text(element: etree._Element, path: str) -> str:
    if len(element):
        raise _refuse(DXP_UNEXPECTED_CONTENT, f"{path} must hold text only", element)
    return element.text or ""


def _leaf(children: _Children, name: str, lowest: int, highest: int) -> str:
    return _bounded_text(children.required(name), f"{children.path}/{name}", lowest, highest)


def _optional_leaf(children: _Children, name: str, lowest: int, highest: int) -> str | None:
    element = children.optional(name)
    if element is None:
        return None
    return _bounded_text(element, f"{children.path}/{name}", lowest, highest)


def _bounded_text(element: etree._Element, path: str, lowest: int, highest: int) -> str:
    return _check_length(path, _text(element, path), lowest, highest, element)


def _check_root(root: etree._Element, tag: str, what: str, version_attribute: str) -> None:
    if root.tag != tag:
        raise _refuse(DXP_NOT_AN_ENVELOPE, f"the root is not {what} in the namespace {DXP_NS}",
                      root)
    version = root.get(version_attribute)
    if version is None:
        raise _refuse(DXP_MISSING_FIELD, f"{what}/@{version_attribute} is required", root)
    if version != DXP_VERSION:
        raise _refuse(DXP_VERSION_UNSUPPORTED,
                      f"{what}/@{version_attribute} must be {DXP_VERSION}", root)


def _read_trans_info(element: etree._Element, path: str) -> DxpTransInfo:
    children = _Children(element, path)
    cop_msg_id = _leaf(children, "CopMsgId", 1, 255)
    sender_id = _leaf(children, "SenderId", 1, 16)
    receivers = children.required("ReceiverIds")
    receiver_ids = _read_receivers(receivers, f"{path}/ReceiverIds")
    created = children.required("CreatTime")
    created_text = _text(created, f"{path}/CreatTime")
    _check_datetime(f"{path}/CreatTime", created_text, created)
    msg_type = _leaf(children, "MsgType", 0, 30)
    children.end()
    return DxpTransInfo(cop_msg_id, sender_id, receiver_ids, created_text, msg_type)


def _read_receivers(element: etree._Element, path: str) -> tuple[str, ...]:
    found = _repeated(element, path, "ReceiverId", MAX_RECEIVERS, DXP_TOO_MANY_RECEIVERS)
    return tuple(_bounded_text(receiver, f"{path}/ReceiverId", 1, 16) for receiver in found)


def _repeated(element: etree._Element, path: str, name: str, most: int | None,
              too_many: str = DXP_UNEXPECTED_CONTENT) -> list[etree._Element]:
    """The children of an element that holds only a run of `name`, at least one."""
    children = _Children(element, path)
    found = children.repeated(name)
    children.end()
    if not found:
        raise _refuse(DXP_MISSING_FIELD, f"{path} needs at least one {name}", element)
    if most is not None and len(found) > most:
        raise _refuse(too_many, f"{path} holds at most {most} {name}", element)
    return found


def _read_add_info(element: etree._Element) -> DxpAddInfo:
    path = "DxpMsg/AddInfo"
    children = _Children(element, path)
    file_name = _optional_leaf(children, "FileName", 1, 255)
    ic_card = _optional_leaf(children, "IcCard", 1, 13)
    biz_key = children.optional("BizKey")
    biz_keys = () if biz_key is None else _read_biz_keys(biz_key, f"{path}/BizKey")
    is_text = children.optional("IsText")
    encoding = None if is_text is None else _read_is_text(is_text, f"{path}/IsText")
    rec_map = children.optional("RecMapId")
    rec_map_id = None if rec_map is None else _text(rec_map, f"{path}/RecMapId")
    children.end()
    return DxpAddInfo(file_name, ic_card, biz_keys, encoding, rec_map_id)


def _read_biz_keys(element: etree._Element, path: str) -> tuple[DxpBizKey, ...]:
    keys = _repeated(element, path, "Key", MAX_BIZ_KEYS, DXP_TOO_MANY_KEYS)
    return tuple(_read_biz_key(key, f"{path}/Key") for key in keys)


def _read_biz_key(key: etree._Element, path: str) -> DxpBizKey:
    name = key.get("name")
    if name is None:
        raise _refuse(DXP_MISSING_FIELD, f"{path}/@name is required", key)
    return DxpBizKey(_check_length(f"{path}/@name", name, 1, 32, key),
                     _bounded_text(key, path, 1, 64))


def _read_is_text(element: etree._Element, path: str) -> str:
    if len(element) or (element.text or "").strip(_XML_WHITESPACE):
        raise _refuse(DXP_UNEXPECTED_CONTENT, f"{path} must be empty", element)
    encoding = element.get("Encode")
    if encoding is None:
        raise _refuse(DXP_MISSING_FIELD, f"{path}/@Encode is required", element)
    return _check_length(f"{path}/@Encode", encoding, 0, 50, element)


def _read_data(element: etree._Element, limits: DxpLimits) -> tuple[bytes, bool]:
    try:  # the text is within the parser's size budget already
        encoded = _text(element, "DxpMsg/Data").encode("ascii")
    except UnicodeEncodeError:
        raise _refuse(DXP_BAD_BASE64, "DxpMsg/Data is not base64", element) from None
    # Line breaks taken out only where there are any: translate costs a third of the decoding
    # itself even when it removes nothing, and most senders write the base64 on one line.
    if any(space in encoded for space in _XML_WHITESPACE_BYTES):
        encoded = encoded.translate(None, _XML_WHITESPACE_BYTES)
    if len(encoded) // 4 * 3 > limits.max_data_bytes:
        raise _refuse(DXP_DATA_TOO_LARGE, "DxpMsg/Data decodes to more than "
                      f"{limits.max_data_bytes} bytes", element)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(DXP_BAD_BASE64, "DxpMsg/Data is not base64", element) from None
    if not data:
        raise _refuse(DXP_FIELD_EMPTY, "DxpMsg/Data must not be empty", element)
    if not data.startswith(ZIP_MAGIC):
        return data, False
    try:
        return _unzip_one(data, limits), True
    except FormatError as exc:
        exc.line = element.sourceline
        raise


_ZIP_FAILURES = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error,
                 NotImplementedError, RuntimeError, ValueError, OSError)


def _unzip_one(data: bytes, limits: DxpLimits) -> bytes:
    """The one member of a zip archive, within the budgets: refused before inflating when
    its declared size or ratio is beyond them, and read no further than the declared size
    (zipfile checks the CRC at the end, so a size that lies is caught)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            member = _the_one_member(archive.infolist(), limits)
            with archive.open(member) as stream:
                content = stream.read(member.file_size + 1)
    except _ZIP_FAILURES:
        raise _refuse(DXP_ZIP_REFUSED, "DxpMsg/Data is a zip archive that cannot be read "
                      "(damaged, or a method other than stored or deflate)") from None
    if len(content) != member.file_size:
        raise _refuse(DXP_ZIP_REFUSED, "DxpMsg/Data's zip member is not its declared size")
    if content.startswith(ZIP_MAGIC):
        raise _refuse(DXP_ZIP_REFUSED, "DxpMsg/Data's zip member is itself a zip archive")
    return content


def _the_one_member(members: list[zipfile.ZipInfo], limits: DxpLimits) -> zipfile.ZipInfo:
    if len(members) != 1:
        raise _refuse(DXP_ZIP_REFUSED, "DxpMsg/Data's zip archive must hold exactly one file")
    member = members[0]
    if member.flag_bits & 0x1:
        raise _refuse(DXP_ZIP_REFUSED, "DxpMsg/Data's zip member is encrypted")
    if member.is_dir() or member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _refuse(DXP_ZIP_REFUSED, "DxpMsg/Data's zip member must be a file, stored or "
                      "deflated")
    if member.file_size > limits.max_unzipped_bytes:
        raise _refuse(DXP_ZIP_REFUSED, "DxpMsg/Data's zip member inflates to more than "
                      f"{limits.max_unzipped_bytes} bytes")
    if member.file_size > max(member.compress_size, 1) * limits.max_zip_ratio:
        raise _refuse(DXP_ZIP_REFUSED, "DxpMsg/Data's zip member inflates more than "
                      f"{limits.max_zip_ratio} times")
    return member


def read_dxp_msg(root: etree._Element, limits: DxpLimits = DEFAULT_LIMITS) -> ParsedDxpMsg:
    """The envelope whose root a SafeXmlParser has parsed."""
    _check_root(root, DXP_MSG, "DxpMsg", "ver")
    envelope_id = root.get("Id")
    try:
        _check_id(envelope_id)
    except FormatError as exc:
        exc.line = root.sourceline
        raise
    children = _Children(root, "DxpMsg")
    trans_info = _read_trans_info(children.required("TransInfo"), "DxpMsg/TransInfo")
    data, zipped = _read_data(children.required("Data"), limits)
    add_info_element = children.optional("AddInfo")
    add_info = None if add_info_element is None else _read_add_info(add_info_element)
    signature = children.optional("Signature", DS_NS)
    children.end()
    envelope = DxpEnvelope(trans_info, data, zipped, add_info, envelope_id)
    return ParsedDxpMsg(envelope, root, signature_present=signature is not None)


def parse_dxp_msg(data: bytes, parser: SafeXmlParser,
                  limits: DxpLimits = DEFAULT_LIMITS) -> ParsedDxpMsg:
    """An envelope from its bytes: SafeXmlParser's refusals (XML_*) or DXP_* ones."""
    return read_dxp_msg(parser.parse(data), limits)


def _read_response(element: etree._Element, path: str) -> DxpResponse:
    children = _Children(element, path)
    node_id = _optional_leaf(children, "NodeId", 1, 8)
    code = _leaf(children, "ResponseCode", 1, 9)
    info = _optional_leaf(children, "ResponseInfo", 0, 300)
    results_element = children.optional("Results")
    results = () if results_element is None else _read_results(results_element,
                                                                f"{path}/Results")
    notice_element = children.required("NoticeTime")
    notice = _text(notice_element, f"{path}/NoticeTime")
    _check_notice_time(f"{path}/NoticeTime", notice, notice_element)
    note = _optional_leaf(children, "Note", 0, 500)
    original = _read_trans_info(children.required("OriHead"), f"{path}/OriHead")
    children.end()
    return DxpResponse(code, notice, original, node_id, info, results, note)


def _read_results(element: etree._Element, path: str) -> tuple[DxpResult, ...]:
    return tuple(_read_result(result, f"{path}/Result")
                 for result in _repeated(element, path, "Result", None))


def _read_result(element: etree._Element, path: str) -> DxpResult:
    children = _Children(element, path)
    result = DxpResult(_leaf(children, "RecId", 1, 16),
                       _leaf(children, "Code", 1, 9),
                       _optional_leaf(children, "Info", 0, 300),
                       _optional_leaf(children, "Note", 0, 500))
    children.end()
    return result


def read_dxp_rep(root: etree._Element) -> DxpReceipt:
    """The transport receipt whose root a SafeXmlParser has parsed (its signature, if any,
    is the caller's to check, as for an envelope)."""
    _check_root(root, DXP_REP, "DxpRep", "ver")
    children = _Children(root, "DxpRep")
    receiver_id = _leaf(children, "RecevierId", 1, 16)
    ad_node_id = _optional_leaf(children, "AdNodeId", 1, 8)
    responses = tuple(_read_response(response, "DxpRep/Response")
                      for response in children.repeated("Response"))
    children.optional("Signature", DS_NS)
    children.end()
    if not responses:
        raise _refuse(DXP_MISSING_FIELD, _NO_RESPONSE, root)
    return DxpReceipt(receiver_id, responses, ad_node_id)


def parse_dxp_rep(data: bytes, parser: SafeXmlParser) -> DxpReceipt:
    return read_dxp_rep(parser.parse(data))


# -- rendering --------------------------------------------------------------------------------


def _rendering(build: Callable[[], T]) -> T:
    try:
        return build()
    except ValueError:  # lxml refuses characters XML cannot hold
        raise _refuse(DXP_RENDER_INVALID, "a field holds characters XML cannot carry"
                      ) from None


def _add(parent: etree._Element, name: str, text: str | None) -> etree._Element | None:
    if text is None:
        return None
    child = etree.SubElement(parent, _dxp(name))
    child.text = text
    return child


def _add_all(parent: etree._Element, fields: Iterable[tuple[str, str | None]]) -> None:
    for name, text in fields:
        _add(parent, name, text)


def _build_trans_info(parent: etree._Element, name: str, info: DxpTransInfo) -> None:
    element = etree.SubElement(parent, _dxp(name))
    _add_all(element, (("CopMsgId", info.cop_msg_id), ("SenderId", info.sender_id)))
    receivers = etree.SubElement(element, _dxp("ReceiverIds"))
    _add_all(receivers, (("ReceiverId", receiver) for receiver in info.receiver_ids))
    _add_all(element, (("CreatTime", info.created_text), ("MsgType", info.msg_type)))


def _build_add_info(parent: etree._Element, info: DxpAddInfo) -> None:
    element = etree.SubElement(parent, _dxp("AddInfo"))
    _add_all(element, (("FileName", info.file_name), ("IcCard", info.ic_card)))
    if info.biz_keys:
        biz_key = etree.SubElement(element, _dxp("BizKey"))
        for key in info.biz_keys:
            etree.SubElement(biz_key, _dxp("Key"), name=key.name).text = key.value
    if info.text_encoding is not None:
        etree.SubElement(element, _dxp("IsText"), Encode=info.text_encoding)
    _add(element, "RecMapId", info.rec_map_id)


def _zipped(data: bytes) -> bytes:
    """One deflated member named "data", dated 1980-01-01: the same bytes every time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("data"), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def build_dxp_msg(envelope: DxpEnvelope) -> etree._Element:
    """The envelope as a tree, unsigned: a caller signs it with ``sign_enveloped`` (which
    appends ``ds:Signature`` last, where the XSD puts it), then serialises it."""
    _check_trans_info(envelope.trans_info, "DxpMsg/TransInfo")
    _check_id(envelope.id)
    if envelope.add_info is not None:
        _check_add_info(envelope.add_info)
    if not envelope.data:
        raise _refuse(DXP_FIELD_EMPTY, "DxpMsg/Data must not be empty")
    if envelope.data.startswith(ZIP_MAGIC):  # what a reader takes for, or refuses in, a zip
        raise _refuse(DXP_RENDER_INVALID, "DxpMsg/Data must not start as a zip archive does: "
                      "a reader unzips such data, and refuses a zip inside the zip")
    data = _zipped(envelope.data) if envelope.zipped else envelope.data
    return _rendering(lambda: _build_msg_tree(envelope, data))


def _build_msg_tree(envelope: DxpEnvelope, data: bytes) -> etree._Element:
    root = etree.Element(DXP_MSG, nsmap={None: DXP_NS})
    root.set("ver", DXP_VERSION)
    if envelope.id is not None:
        root.set("Id", envelope.id)
    _build_trans_info(root, "TransInfo", envelope.trans_info)
    _add(root, "Data", base64.b64encode(data).decode("ascii"))
    if envelope.add_info is not None:
        _build_add_info(root, envelope.add_info)
    return root


def serialise(root: etree._Element) -> bytes:
    """UTF-8 with an XML declaration, as the E-Port sends."""
    return cast(bytes, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def render_dxp_msg(envelope: DxpEnvelope) -> bytes:
    """An unsigned ``DxpMsg`` in the XSD's element order, ``Data`` in base64."""
    return serialise(build_dxp_msg(envelope))


def build_dxp_rep(receipt: DxpReceipt) -> etree._Element:
    _check_receipt(receipt)
    return _rendering(lambda: _build_rep_tree(receipt))


def _build_rep_tree(receipt: DxpReceipt) -> etree._Element:
    root = etree.Element(DXP_REP, nsmap={None: DXP_NS})
    root.set("ver", DXP_VERSION)
    _add_all(root, (("RecevierId", receipt.receiver_id), ("AdNodeId", receipt.ad_node_id)))
    for response in receipt.responses:
        element = etree.SubElement(root, _dxp("Response"))
        _add_all(element, (("NodeId", response.node_id),
                           ("ResponseCode", response.response_code),
                           ("ResponseInfo", response.response_info)))
        if response.results:
            results = etree.SubElement(element, _dxp("Results"))
            for result in response.results:
                _add_all(etree.SubElement(results, _dxp("Result")),
                         (("RecId", result.rec_id), ("Code", result.code),
                          ("Info", result.info), ("Note", result.note)))
        _add_all(element, (("NoticeTime", response.notice_time_text), ("Note", response.note)))
        _build_trans_info(element, "OriHead", response.original)
    return root


def render_dxp_rep(receipt: DxpReceipt) -> bytes:
    """An unsigned ``DxpRep``: ``RecevierId`` (sic), ``AdNodeId``, then each ``Response`` with
    its code, results, ``NoticeTime`` and the original TransInfo echoed as ``OriHead``."""
    return serialise(build_dxp_rep(receipt))
