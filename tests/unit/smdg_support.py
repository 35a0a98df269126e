"""What the tests of the SMDG container message adapters (BAPLIE, COPRAR, COARRI) share:
interchanges around a few segments, refusals caught, and hypothesis strategies for the values
their records carry."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import strategies as st

from adapters import Adapter, AdapterError, BayPlanAdapter
from adapters.fal7 import DANGEROUS_GOODS_LIST
from adapters.iso6346 import with_check_digit
from message_formats import FormatError
from tests.unit.adapter_strategies import imo_with_check_digit, optional, pattern


def interchange_around(header: str, body: str) -> bytes:
    """An interchange of UNB and UNH (`header`, message reference M1, interchange REF1),
    `body` (segments, each ending in ') and true control counts."""
    segments = body.count("'") + 2
    return f"{header}{body}UNT+{segments}+M1'UNZ+1+REF1'".encode()


def without_dangerous_goods(plan: bytes) -> bytes:
    """The bay plan rendered again with no dangerous goods in any container."""
    adapter = BayPlanAdapter()
    record = adapter.parse(plan).record
    containers = [{**c, "dangerous_goods": []} for c in record["containers"]]
    return adapter.render({**record, "containers": containers})


def refused(adapter: Adapter, data: bytes) -> AdapterError | FormatError:
    with pytest.raises((AdapterError, FormatError)) as caught:
        adapter.parse(data)
    assert isinstance(caught.value, (AdapterError, FormatError))
    return caught.value


# Any text a message may carry: EDIFACT service characters included (they are released),
# line and paragraph separators and controls not (no repertoire holds them as data).
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Zl", "Zp")),
               min_size=1, max_size=20)
CODE = pattern(r"[A-Z0-9]{1,12}")
LOCODE = pattern(r"[A-Z]{2}[A-Z2-9]{3}")
CELL = pattern(r"[0-9]{7}")
MASS = st.decimals(Decimal("0.001"), Decimal("999999999999.999"), places=3)
CELSIUS = st.decimals(Decimal("-999.9"), Decimal("999.9"), places=1)
CONTAINER_NUMBER = pattern(r"[A-Z]{3}[UJZ][0-9]{6}").map(with_check_digit)
SIZE_TYPE = pattern(r"[0-9L][0-9][A-Z][0-9]")
FULL_OR_EMPTY = st.sampled_from([None, "Full", "Empty"])
MESSAGE_FUNCTIONS = st.sampled_from([None, "9", "5", "4", "3", "22"])
# Local times a two-digit-year date (format 201) can hold too.
LOCAL_TIMES = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59)).map(
    lambda moment: moment.strftime("%Y%m%d%H%M"))


@st.composite
def dangerous_goods(draw: st.DrawFn) -> dict[str, Any]:
    """An entry the rules accept: of the Dangerous Goods List excerpt with a class and
    packing group it allows, or a UN number outside it with any class."""
    if draw(st.booleans()):
        entry = draw(st.sampled_from(sorted(DANGEROUS_GOODS_LIST.values(),
                                            key=lambda e: e.un_number)))
        un_number, imdg_class = entry.un_number, draw(st.sampled_from(sorted(entry.classes)))
        groups = sorted(entry.packing_groups)
        packing_group = draw(optional(st.sampled_from(groups))) if groups else None
    else:
        un_number = draw(pattern(r"[0-9]{4}").filter(lambda n: n not in DANGEROUS_GOODS_LIST))
        imdg_class = draw(pattern(r"[1-9](\.[1-6])?[A-S]?"))
        packing_group = draw(optional(st.sampled_from(["I", "II", "III"])))
    return {
        "imdg_class": imdg_class,
        "un_number": un_number,
        "packing_group": packing_group,
        "flash_point_celsius": draw(optional(CELSIUS)),
        "ems": draw(optional(TEXT)),
    }


@st.composite
def vessels(draw: st.DrawFn) -> dict[str, Any]:
    """A ship as TDT names it: by IMO number or by call sign, never both."""
    by_imo = draw(st.booleans())
    return {
        "name": draw(optional(TEXT)),
        "imo_number": imo_with_check_digit(draw(st.integers(100000, 999999)))
        if by_imo else None,
        "call_sign": None if by_imo else draw(pattern(r"[A-Z0-9]{3,7}")),
        "flag_state": draw(optional(pattern(r"[A-Z]{2}"))),
    }
