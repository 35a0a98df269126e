"""One early warning's whole lifecycle, scripted: for `portgw demo` and the integration tests.

A chemical leak at a Shanghai container terminal: drafted and reviewed inside Shanghai
Customs, checked for terror relevance, published at level II, escalated to level I as the
leak spreads, released by the General Administration of Customs (the owner of level I) and
filed with it. Each step is the warning document with the step it performs, rendered by the
`warning-xml` adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from adapters import AdapterRegistry

FORMAT_ID = "warning-xml"
ISSUER = "cn.customs.sh"
NATIONAL = "cn.customs.gacc"
ISSUING_AUTHORITY = "中华人民共和国上海海关"
BEIJING = timezone(timedelta(hours=8))
DRAFTED_AT = datetime(2026, 11, 21, 9, 0, tzinfo=BEIJING)
FILING_SYSTEM = "海关总署口岸安全预警管理系统"


@dataclass(frozen=True, slots=True)
class Step:
    label: str
    sender: str
    record: dict[str, Any]
    version: int

    def render(self, adapters: AdapterRegistry) -> bytes:
        header = {"document_version": self.version}
        return adapters.get(FORMAT_ID).render({"header": header, **self.record})


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    position: str
    organisation: str = ISSUING_AUTHORITY

    def actor(self) -> dict[str, str]:
        return {"name": self.name, "position": self.position, "organisation": self.organisation}


DRAFTER = Person("张伟", "口岸监管处科员")
CONTENT_REVIEWER = Person("李娜", "口岸监管处科长")
CATEGORY_REVIEWER = Person("王芳", "卫生检疫处副处长")
LEVEL_REVIEWER = Person("刘洋", "应急办处长")
RE_REVIEWER = Person("陈静", "副关长")
SECURITY_OFFICER = Person("孙强", "缉私局侦查科科长")
PUBLISHER = Person("赵磊", "关长")
NATIONAL_OFFICER = Person("周敏", "口岸监管司副司长", "中华人民共和国海关总署")


def content(warning_id: str, level: str, *, escalated: bool = False) -> dict[str, Any]:
    """The warning's content at a level; escalated, the situation has grown."""
    situation = ("洋山港区 C3 泊位一只装载甲苯的罐式集装箱阀门破损，约 2 吨甲苯泄漏，"
                 "已形成可燃蒸气区域。")
    if escalated:
        situation += "泄漏已扩散至相邻堆场，周边两艘在泊船舶需紧急撤离。"
    return {
        "warning_id": warning_id,
        "issuing_authority": ISSUING_AUTHORITY,
        "issued_at": DRAFTED_AT.astimezone(BEIJING),
        "utc_offset_minutes": 480,
        "category": "HAZARDOUS_CHEMICALS",
        "subcategory": "CHEMICAL_LEAK",
        "level": level,
        "start_time": DRAFTED_AT - timedelta(minutes=40),
        "affected_area": {
            "description": "洋山深水港四期 C3 泊位及周边 500 米水域和堆场",
            "port_codes": ["CNSHA", "CNYSA"],
            "polygon": [{"latitude": 30.6285, "longitude": 122.0611},
                        {"latitude": 30.6341, "longitude": 122.0702},
                        {"latitude": 30.6263, "longitude": 122.0768}],
        },
        "warning_items": [
            {"urgency": 1, "text": "立即疏散 C3 泊位及下风向 500 米内人员"},
            {"urgency": 2, "text": "暂停该区域船舶靠离泊和集装箱装卸作业"},
            {"urgency": 3, "text": "口岸查验人员佩戴防毒面具后方可进入"},
        ],
        "situation": situation,
        "control_measures": ["设置警戒区并实施交通管制", "使用泡沫覆盖泄漏区域，防止蒸气扩散",
                             "对周边空气持续监测"],
        "contact": {"name": "吴婷", "organisation": "上海海关口岸监管处",
                    "telephone": "+86-21-6811-0000", "email": None},
    }


def step_record(body: dict[str, Any], action: str, person: Person, minutes: int,
                **extra: Any) -> dict[str, Any]:
    step = {"action": action, "actor": person.actor(),
            "at": DRAFTED_AT + timedelta(minutes=minutes), "comment": None,
            "terror_relevance": None, "filed_to": None, **extra}
    return {**body, "step": step, "history": []}


def full_lifecycle(warning_id: str) -> list[Step]:
    """Draft, four reviews, the terror-relevance check, publication at level II, escalation
    to level I, release by the owner of level I, filing."""
    at_two = content(warning_id, "II")
    at_one = content(warning_id, "I", escalated=True)
    script = [
        ("draft", ISSUER, step_record(at_two, "DRAFT", DRAFTER, 0)),
        ("content review", ISSUER, step_record(at_two, "CONTENT_REVIEW", CONTENT_REVIEWER, 5)),
        ("category review", ISSUER, step_record(at_two, "CATEGORY_REVIEW", CATEGORY_REVIEWER,
                                                8)),
        ("level review", ISSUER, step_record(at_two, "LEVEL_REVIEW", LEVEL_REVIEWER, 10)),
        ("re-review", ISSUER, step_record(at_two, "RE_REVIEW", RE_REVIEWER, 12)),
        ("terror-relevance check", ISSUER,
         step_record(at_two, "TERROR_CHECK", SECURITY_OFFICER, 13,
                     terror_relevance="NOT_EXCLUDED",
                     comment="泄漏原因尚未查明，不能排除人为破坏")),
        ("publication at level II", ISSUER, step_record(at_two, "PUBLISH", PUBLISHER, 15)),
        ("escalation to level I", ISSUER, step_record(at_one, "CHANGE_LEVEL", PUBLISHER, 50)),
        ("release by the owner of level I", NATIONAL,
         step_record(at_one, "RELEASE", NATIONAL_OFFICER, 240, comment="泄漏已控制，监测达标")),
        ("filing", ISSUER, step_record(at_one, "FILE", PUBLISHER, 300, filed_to=FILING_SYSTEM)),
    ]
    return [Step(label, sender, record, version)
            for version, (label, sender, record) in enumerate(script, start=1)]
