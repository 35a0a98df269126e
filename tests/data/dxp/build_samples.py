"""Writes the synthetic DXP samples of this folder (SOURCES.md): run it from the repository
root with `python tests/data/dxp/build_samples.py`. Every value is made up; the layouts follow
the public facts in docs/eport-research.md §1."""

from __future__ import annotations

import base64
import io
import json
import textwrap
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE.parents[0]
SENDER, CUSTOMS = "DXPENT0000099001", "DXPEDCDEC0000001"
DXP_NS = "http://www.chinaport.gov.cn/dxp"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def business(name: str) -> bytes:
    return (DATA / name).read_bytes()


def wrapped_base64(payload: bytes) -> str:
    """Base64 over lines of 76 with the indentation and newlines real envelopes carry."""
    lines = textwrap.wrap(base64.b64encode(payload).decode("ascii"), 76)
    return "\n" + "".join(f"      {line}\n" for line in lines) + "    "


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members:
            archive.writestr(zipfile.ZipInfo(name), payload, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def envelope(data: str, *, receivers: int = 1, creat_time: str = "2026-03-15T06:31:02.417+08:00",
             sender: str = SENDER, ver: str = "1.0", add_info: str | None = None,
             cop_msg_id: str = "DXPENT0000099001202603150631024170") -> str:
    receiver_ids = "".join(f"<ReceiverId>{CUSTOMS[:-1]}{n}</ReceiverId>"
                           for n in range(1, receivers + 1))
    add = add_info if add_info is not None else (
        '<AddInfo>\n    <FileName>FAL1_DXPENT0000099001202603150631024170.xml</FileName>\n'
        '    <IsText Encode="UTF-8"/>\n  </AddInfo>')
    return f'''<?xml version="1.0" encoding="UTF-8" ?>
<DxpMsg ver="{ver}" Id="CL01" xmlns="{DXP_NS}" xmlns:ds="{DS_NS}" xmlns:xsi="{XSI_NS}">
  <TransInfo>
    <CopMsgId>{cop_msg_id}</CopMsgId>
    <SenderId>{sender}</SenderId>
    <ReceiverIds>{receiver_ids}</ReceiverIds>
    <CreatTime>{creat_time}</CreatTime>
    <MsgType>FAL1</MsgType>
  </TransInfo>
  <Data>{data}</Data>
  {add}
</DxpMsg>
'''


PREFIXED = '''<?xml version='1.0' encoding='UTF-8'?>
<dxp:DxpMsg xmlns:dxp="{DXP_NS}" xmlns:ds="{DS_NS}" xmlns:xsi="{XSI_NS}" ver='1.0'>
  <dxp:TransInfo>
    <dxp:CopMsgId>6F0C2B1E-0D7A-4C33-9E55-3A2B8F1D7C10</dxp:CopMsgId>
    <dxp:SenderId>DXPENT0000099002</dxp:SenderId>
    <dxp:ReceiverIds>
      <dxp:ReceiverId>DXPEDCDEC0000001</dxp:ReceiverId>
      <dxp:ReceiverId>DXPEDCDEC0000002</dxp:ReceiverId>
    </dxp:ReceiverIds>
    <dxp:CreatTime>2026-03-15T08:00:00</dxp:CreatTime>
    <dxp:MsgType>MT2101</dxp:MsgType>
  </dxp:TransInfo>
  <dxp:Data>{data}</dxp:Data>
  <dxp:AddInfo>
    <dxp:IcCard>1</dxp:IcCard>
    <dxp:BizKey><dxp:Key name="DealFlag">1</dxp:Key><dxp:Key name="RetType">1</dxp:Key></dxp:BizKey>
  </dxp:AddInfo>
</dxp:DxpMsg>
'''

DTD_ENVELOPE = '''<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE DxpMsg [<!ENTITY id "DXPENT0000099001">]>
<DxpMsg ver="1.0" xmlns="http://www.chinaport.gov.cn/dxp">
  <TransInfo><CopMsgId>&id;</CopMsgId><SenderId>&id;</SenderId>
    <ReceiverIds><ReceiverId>DXPEDCDEC0000001</ReceiverId></ReceiverIds>
    <CreatTime>2026-03-15T06:31:02</CreatTime><MsgType>FAL1</MsgType></TransInfo>
  <Data>PGEvPg==</Data>
</DxpMsg>
'''

WRONG_ORDER = '''<?xml version="1.0" encoding="UTF-8"?>
<DxpMsg ver="1.0" xmlns="http://www.chinaport.gov.cn/dxp">
  <Data>PGEvPg==</Data>
  <TransInfo><CopMsgId>A1</CopMsgId><SenderId>DXPENT0000099001</SenderId>
    <ReceiverIds><ReceiverId>DXPEDCDEC0000001</ReceiverId></ReceiverIds>
    <CreatTime>2026-03-15T06:31:02</CreatTime><MsgType>FAL1</MsgType></TransInfo>
</DxpMsg>
'''


def main() -> None:
    fal1 = business("fal1/valid_arrival.xml")
    samples: dict[str, tuple[str, str | None]] = {
        "valid_fal1_in_envelope.xml": (envelope(wrapped_base64(fal1)), None),
        "valid_zipped_fal1.xml": (envelope(wrapped_base64(zipped(("fal1.xml", fal1)))), None),
        "valid_prefixed_mt2101.xml": (PREFIXED.format(
            data=wrapped_base64(business("cn-manifest/mt2101_sea_pre_manifest.xml")),
            DXP_NS=DXP_NS, DS_NS=DS_NS, XSI_NS=XSI_NS), None),
        "six_receivers.xml": (envelope(wrapped_base64(fal1), receivers=6),
                              "DXP_TOO_MANY_RECEIVERS"),
        "sender_too_long.xml": (envelope(wrapped_base64(fal1), sender="DXPENT00000990011"),
                                "DXP_FIELD_TOO_LONG"),
        "version_2.xml": (envelope(wrapped_base64(fal1), ver="2.0"), "DXP_VERSION_UNSUPPORTED"),
        "bad_creat_time.xml": (envelope(wrapped_base64(fal1), creat_time="2026/03/15 06:31"),
                               "DXP_BAD_DATETIME"),
        "bad_base64.xml": (envelope("PGEvPg=*"), "DXP_BAD_BASE64"),
        "wrong_order.xml": (WRONG_ORDER, "DXP_MISSING_FIELD"),
        "dtd_in_envelope.xml": (DTD_ENVELOPE, "XML_DTD_FORBIDDEN"),
        "dtd_inside_data.xml": (envelope(wrapped_base64(business("fal1/billion_laughs.xml"))),
                                "XML_DTD_FORBIDDEN"),
        "zip_bomb.xml": (envelope(wrapped_base64(zipped(("a.xml", b"<a>" + b" " * 50_000_000
                                                         + b"</a>")))), "DXP_ZIP_REFUSED"),
        "zip_two_members.xml": (envelope(wrapped_base64(zipped(("a.xml", fal1),
                                                               ("b.xml", fal1)))),
                                "DXP_ZIP_REFUSED"),
        "zip_in_zip.xml": (envelope(wrapped_base64(zipped(("in.zip", zipped(("a.xml",
                                                                            fal1)))))),
                           "DXP_ZIP_REFUSED"),
    }
    expected = {}
    for name, (text, code) in samples.items():
        (HERE / name).write_text(text, encoding="utf-8")
        if code is not None:
            refused_by = "business message" if name == "dtd_inside_data.xml" else "envelope"
            expected[name] = {"code": code, "refused_by": refused_by}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n",
                                        encoding="utf-8")


if __name__ == "__main__":
    main()
