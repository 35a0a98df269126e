"""Every format's samples against its adapter, driven by data alone. Each tests/data/<format>/
holds documents and an expected.json that describes the adapter (`_adapter`) and gives, for a
valid sample, its business key, version and the codes of its warnings, and for a refused one
the code and line it is refused with. A new format needs a directory here, not a test."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters import Adapter, AdapterError, AdapterRegistry, builtin_adapters
from adapters.kit import NOTES_SUFFIX, check_adapter
from message_formats import AvroSchemas, FormatError, SafeXmlParser, XsdStore
from tests.unit.adapter_strategies import VersionedAdapter, event_header, warning_codes

DATA = Path(__file__).parents[1] / "data"
AVRO = Path(__file__).parents[2] / "message_formats" / "avro"
RENDERED_DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>"
# How a rendered document begins, by the adapter's media type.
RENDERED_START = {"application/xml": RENDERED_DECLARATION, "application/EDIFACT": b"UNA"}
UTF8_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
# Encodings that hold every character, so each sample can be written in them.
ENCODINGS = ("GB18030", "UTF-16")
SHARED_HEADER_FIELD = {
    "name": "header",
    "type": "px.canonical.Header",
    "doc": "Event header shared by all canonical documents.",
}


@dataclass(frozen=True, slots=True)
class FormatSamples:
    """One directory of samples and what expected.json says of them."""

    directory: Path
    adapter: dict[str, Any]
    outcomes: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, directory: Path) -> FormatSamples:
        expected = json.loads((directory / "expected.json").read_text(encoding="utf-8"))
        outcomes = {name: o for name, o in expected.items() if not name.startswith("_")}
        return cls(directory, expected["_adapter"], outcomes)

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def valid(self) -> list[str]:
        return sorted(name for name, outcome in self.outcomes.items() if "code" not in outcome)

    @property
    def refused(self) -> list[str]:
        return sorted(name for name, outcome in self.outcomes.items() if "code" in outcome)

    def sample(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()


def _describes_an_adapter(directory: Path) -> bool:
    """tests/data also holds samples of what is no adapter's format (dxp/: envelopes)."""
    expected = directory / "expected.json"
    return expected.is_file() and "_adapter" in json.loads(expected.read_text(encoding="utf-8"))


FORMATS = tuple(FormatSamples.read(d) for d in sorted(DATA.iterdir()) if _describes_an_adapter(d))
EACH_FORMAT = [pytest.param(f, id=f.name) for f in FORMATS]
VALID = [pytest.param(f, name, id=f"{f.name}/{name}") for f in FORMATS for name in f.valid]
REFUSED = [pytest.param(f, name, id=f"{f.name}/{name}") for f in FORMATS for name in f.refused]
VALID_IN_UTF8 = [
    pytest.param(f, name, encoding, id=f"{f.name}/{name}/{encoding}")
    for f in FORMATS
    for name in f.valid
    if f.sample(name).startswith(UTF8_DECLARATION)
    for encoding in ENCODINGS
]


@pytest.fixture(scope="module")
def registry(schemas: AvroSchemas) -> AdapterRegistry:
    return AdapterRegistry.default(schemas)


def adapter_for(registry: AdapterRegistry, samples: FormatSamples) -> VersionedAdapter:
    adapter = registry.get(samples.adapter["format_id"])
    assert isinstance(adapter, VersionedAdapter)
    return adapter


# ---------------------------------------------------------------- each format


def test_every_builtin_format_has_samples() -> None:
    builtins = builtin_adapters(XsdStore(), SafeXmlParser())
    assert {a.format_id for a in builtins} == {f.adapter["format_id"] for f in FORMATS}


@pytest.mark.parametrize("samples", EACH_FORMAT)
def test_adapter_identity(registry: AdapterRegistry, samples: FormatSamples) -> None:
    adapter = adapter_for(registry, samples)
    assert isinstance(adapter, Adapter)
    assert adapter.document_type == samples.name
    assert {
        "format_id": adapter.format_id,
        "document_type": adapter.document_type,
        "media_type": adapter.media_type,
        "schema_name": adapter.schema_name,
        "schema_version": adapter.schema_version,
    } == samples.adapter


@pytest.mark.parametrize("samples", EACH_FORMAT)
def test_every_sample_has_an_expected_outcome(samples: FormatSamples) -> None:
    documents = {p.name for p in samples.directory.iterdir() if p.is_file()
                 and p.name != "expected.json" and p.suffix != NOTES_SUFFIX}
    assert documents == set(samples.outcomes)


@pytest.mark.parametrize("samples", EACH_FORMAT)
def test_canonical_schema_starts_with_the_shared_header(samples: FormatSamples) -> None:
    schema_file = AVRO / f"{samples.adapter['schema_name']}.avsc"
    fields = json.loads(schema_file.read_text(encoding="utf-8"))["fields"]
    assert fields[0] == SHARED_HEADER_FIELD


@pytest.mark.parametrize("samples", EACH_FORMAT)
def test_the_adapter_passes_the_kit(
    registry: AdapterRegistry, schemas: AvroSchemas, samples: FormatSamples
) -> None:
    """Determinism, bounded time, no network, a refusal (never a crash) for garbage, and each
    valid sample's record fits the schema and survives render then parse."""
    report = check_adapter(adapter_for(registry, samples), samples_dir=samples.directory,
                           schemas=schemas)
    assert report.ok, report.describe()


# ---------------------------------------------------------------- each sample


@pytest.mark.parametrize(("samples", "name"), VALID)
def test_valid_sample(registry: AdapterRegistry, samples: FormatSamples, name: str) -> None:
    result = adapter_for(registry, samples).parse(samples.sample(name))
    expected = samples.outcomes[name]
    assert result.business_key == expected["business_key"]
    assert result.document_version == expected["document_version"]
    assert warning_codes(result.warnings) == expected.get("warnings", [])


@pytest.mark.parametrize(("samples", "name"), REFUSED)
def test_refused_sample_gives_its_code_and_line(
    registry: AdapterRegistry, samples: FormatSamples, name: str
) -> None:
    with pytest.raises((FormatError, AdapterError)) as caught:
        adapter_for(registry, samples).parse(samples.sample(name))
    assert isinstance(caught.value, (FormatError, AdapterError))  # pytest says Exception
    assert caught.value.code == samples.outcomes[name]["code"]
    assert caught.value.line == samples.outcomes[name]["line"]


@pytest.mark.parametrize(("samples", "name"), VALID)
def test_render_parses_back_with_the_version_of_a_header(
    registry: AdapterRegistry, samples: FormatSamples, name: str
) -> None:
    adapter = adapter_for(registry, samples)
    record = adapter.parse(samples.sample(name)).record
    bare = adapter.render(record)
    assert bare.startswith(RENDERED_START[adapter.media_type])
    assert adapter.parse(bare).record == record
    assert adapter.parse(bare).document_version == 1
    version = samples.outcomes[name]["document_version"] + 1
    result = adapter.parse(adapter.render({"header": {"document_version": version}, **record}))
    assert (result.record, result.document_version) == (record, version)


@pytest.mark.parametrize(("samples", "name"), VALID)
def test_record_survives_avro(
    registry: AdapterRegistry, schemas: AvroSchemas, samples: FormatSamples, name: str
) -> None:
    adapter = adapter_for(registry, samples)
    version = samples.outcomes[name]["document_version"]
    event = {"header": event_header(adapter, version), **adapter.parse(samples.sample(name)).record}
    assert schemas.decode(schemas.encode(adapter.schema_name, event)) == (
        adapter.schema_name,
        event,
    )


@pytest.mark.parametrize(("samples", "name", "encoding"), VALID_IN_UTF8)
def test_declared_encodings_are_honoured(
    registry: AdapterRegistry, samples: FormatSamples, name: str, encoding: str
) -> None:
    adapter = adapter_for(registry, samples)
    utf8 = samples.sample(name)
    declared = utf8.decode("utf-8").replace('encoding="UTF-8"', f'encoding="{encoding}"', 1)
    assert adapter.parse(declared.encode(encoding)) == adapter.parse(utf8)
