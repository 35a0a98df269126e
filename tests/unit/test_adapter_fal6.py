"""FAL 6 Passenger List adapter."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from adapters import AdapterError, ParseResult
from adapters.fal6 import Fal6Adapter
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import broken, optional, tokens
from tests.unit.test_adapter_fal5 import (
    BIRTH_DATE,
    COUNTRY,
    IDENTITY_DOCUMENT,
    LOCODE,
    PROPERTY,
    RECEIVED,
    VOYAGE,
    event,
    with_count,
)

DATA = Path(__file__).parent.parent / "data" / "fal6"


@pytest.fixture(scope="module")
def adapter() -> Fal6Adapter:
    return Fal6Adapter(xsd_store=XsdStore(), xml_parser=SafeXmlParser())


def _sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- samples


def test_valid_arrival_maps_the_list(adapter: Fal6Adapter) -> None:
    result = adapter.parse(_sample("valid_arrival.xml"))
    record = result.record
    assert {k: v for k, v in record.items() if k != "passengers"} == {
        "arrival_or_departure": "Arrival",
        "ship": {
            "name": "PX SEA LOTUS",
            "imo_number": "9702352",
            "call_sign": "C6XY7",
            "flag_state": "BS",
            "gross_tonnage": 114261,
            "net_tonnage": 81302,
        },
        "voyage_number": "LT2611",
        "port_of_arrival_departure": "CNSHA",
        "date_time_of_arrival_departure": datetime(2026, 3, 19, 23, 0, tzinfo=UTC),
        "utc_offset_minutes": 480,
        "local_date_time_of_arrival_departure": None,
        "passenger_count": 9,
    }
    passengers = record["passengers"]
    assert len(passengers) == 9
    assert passengers[2] == {
        "family_name": "CHAN",
        "given_names": "Tai Man",
        "nationality": "CN",
        "date_of_birth": date(1979, 12, 5),
        "place_of_birth": "Hong Kong 香港",
        "identity_document": {
            "document_type": "TravelDocument",
            "number": "H60318842",
            "issuing_state": "CN",
            "expiry_date": date(2032, 1, 9),
        },
        "port_of_embarkation": "KRPUS",
        "port_of_disembarkation": "CNSHA",
        "transit": False,
    }
    assert passengers[5]["family_name"] == "MÜLLER"
    assert passengers[5]["transit"] is True
    assert passengers[8]["given_names"] is None
    assert [p["transit"] for p in passengers].count(True) == 2


def test_valid_departure_maps_every_field(adapter: Fal6Adapter) -> None:
    assert adapter.parse(_sample("valid_departure.xml")) == ParseResult(
        record={
            "arrival_or_departure": "Departure",
            "ship": {
                "name": "PX BAY FERRY",
                "imo_number": "9074729",
                "call_sign": "VRAB7",
                "flag_state": "HK",
                "gross_tonnage": None,
                "net_tonnage": None,
            },
            "voyage_number": "HK-SK/0320",
            "port_of_arrival_departure": "CNSHK",
            "date_time_of_arrival_departure": datetime(2026, 3, 20, 10, 45, 0, 500_000, tzinfo=UTC),
            "utc_offset_minutes": 480,
            "local_date_time_of_arrival_departure": None,
            "passenger_count": 1,
            "passengers": [
                {
                    "family_name": "WONG",
                    "given_names": "Ka Yan",
                    "nationality": "CN",
                    "date_of_birth": date(1995, 10, 1),
                    "place_of_birth": "Hong Kong 香港",
                    "identity_document": {
                        "document_type": "TravelDocument",
                        "number": "H71120458",
                        "issuing_state": "CN",
                        "expiry_date": date(2033, 4, 30),
                    },
                    "port_of_embarkation": "CNSHK",
                    "port_of_disembarkation": "HKHKG",
                    "transit": False,
                }
            ],
        },
        business_key="9074729:HK-SK/0320:D:CNSHK",
        document_version=3,
        warnings=(),
    )


def test_expired_document_warning_names_no_one(adapter: Fal6Adapter) -> None:
    (warning,) = adapter.parse(_sample("valid_expired_document.xml")).warnings
    assert warning == (
        "RULE_DOCUMENT_EXPIRED: Passenger[6]/@expiryDate (line 22): the identity document "
        "expired before the date of arrival (DateTimeOfArrivalDeparture)"
    )


@pytest.mark.parametrize("flag", [b"1", b"0", b"True", b""])
def test_transit_is_true_or_false_only(adapter: Fal6Adapter, flag: bytes) -> None:
    sample = _sample("valid_departure.xml")
    assert b'transitPassenger=" false "' in sample
    data = sample.replace(b'transitPassenger=" false "', b'transitPassenger="' + flag + b'"')
    with pytest.raises(FormatError) as caught:
        adapter.parse(data)
    assert caught.value.code == "XSD_INVALID"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b' portOfDisembarkation="JPFUK"', b""),  # a required attribute missing
        (b'portOfEmbarkation="KRPUS"', b'portOfEmbarkation="krpus"'),
        (b' transitPassenger="true"', b' transitPassenger="true" cabin="7012"'),  # not declared
        (b'transitPassenger="true"/>', b'transitPassenger="true"> </Passenger>'),  # content
    ],
)
def test_malformed_passengers_are_schema_invalid(
    adapter: Fal6Adapter, old: bytes, new: bytes
) -> None:
    data = _sample("valid_arrival.xml")
    assert old in data
    with pytest.raises(FormatError) as caught:
        adapter.parse(data.replace(old, new, 1))
    assert caught.value.code == "XSD_INVALID"


def test_crew_list_root_is_invalid(adapter: Fal6Adapter) -> None:
    with pytest.raises(FormatError) as caught:
        adapter.parse(b'<CrewList xmlns="urn:px:fal:5" version="1"/>')
    assert caught.value.code == "XSD_INVALID"


# ---------------------------------------------------------------- render


def test_render_writes_transit_as_true_or_false(adapter: Fal6Adapter) -> None:
    record = adapter.parse(_sample("valid_arrival.xml")).record
    rendered = adapter.render(record)
    assert rendered.count(b' transitPassenger="true"/>') == 2
    assert rendered.count(b' transitPassenger="false"/>') == 7
    assert '<Passenger familyName="MÜLLER" givenNames="Anna Katharina"'.encode() in rendered


def test_render_writes_each_passenger_as_one_line(adapter: Fal6Adapter) -> None:
    rendered = adapter.render(adapter.parse(_sample("valid_arrival.xml")).record)
    passengers = etree.fromstring(rendered).findall("{urn:px:fal:6}Passenger")
    assert all(len(passenger) == 0 for passenger in passengers)
    assert passengers[0].keys() == [
        "familyName",
        "givenNames",
        "nationality",
        "dateOfBirth",
        "placeOfBirth",
        "documentType",
        "documentNumber",
        "issuingState",
        "expiryDate",
        "portOfEmbarkation",
        "portOfDisembarkation",
        "transitPassenger",
    ]
    assert [passenger.sourceline for passenger in passengers] == list(range(16, 25))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("passengers",), KeyError),
        (("passenger_count",), None),
        (("passengers", 0, "transit"), 1),
        (("passengers", 0, "transit"), "false"),
        (("passengers", 0, "port_of_embarkation"), "Hong Kong"),
        (("passengers", 0, "date_of_birth"), "1995-10-01"),
        (("passengers", 0, "identity_document"), None),
        (("passengers", 0, "identity_document", "number"), "h71120458"),
    ],
)
def test_render_refuses_records_it_cannot_express(
    adapter: Fal6Adapter, path: tuple[str | int, ...], value: Any
) -> None:
    record = adapter.parse(_sample("valid_departure.xml")).record
    with pytest.raises(AdapterError) as caught:
        adapter.render(broken(record, path, value))
    assert caught.value.code == "RENDER_RECORD_INVALID"


# ---------------------------------------------------------------- property: round trips

PASSENGER = st.fixed_dictionaries(
    {
        "family_name": tokens(70),
        "given_names": optional(tokens(70)),
        "nationality": COUNTRY,
        "date_of_birth": BIRTH_DATE,
        "place_of_birth": tokens(70),
        "identity_document": IDENTITY_DOCUMENT,
        "port_of_embarkation": LOCODE,
        "port_of_disembarkation": LOCODE,
        "transit": st.booleans(),
    }
)

CANONICAL_FAL6 = with_count(
    st.fixed_dictionaries({**VOYAGE, "local_date_time_of_arrival_departure": st.none(),
                          "passengers": st.lists(PASSENGER, min_size=1, max_size=8)}),
    "passengers",
    "passenger_count",
)


@PROPERTY
@given(record=CANONICAL_FAL6)
def test_parse_inverts_render(adapter: Fal6Adapter, record: dict[str, Any]) -> None:
    result = adapter.parse(adapter.render(record))
    assert result.record == record
    assert result.business_key.startswith(record["ship"]["imo_number"] + ":")


@PROPERTY
@given(record=CANONICAL_FAL6, received=RECEIVED, version=st.integers(1, 2**31 - 1))
def test_canonical_record_survives_avro(
    schemas: AvroSchemas,
    adapter: Fal6Adapter,
    record: dict[str, Any],
    received: datetime,
    version: int,
) -> None:
    full = event(adapter, record, received, version)
    name, decoded = schemas.decode(schemas.encode(adapter.schema_name, full))
    assert name == adapter.schema_name
    assert decoded == full
    assert adapter.parse(adapter.render(decoded)).document_version == version
