"""Documents through their adapters, against raw lxml on the same bytes, on one core.

FAL 5 crew lists: what is timed for the adapter is the safe parse, XSD validation, mapping to
the canonical record, business rules and the Avro single-object encoding of the event (header
included). The reference is lxml alone parsing and validating the same document with the
same XSD, in the same run, timed in turns with the adapter.

A 50-consignment sea pre-manifest (MT2101, cn-manifest-xml) in a China E-Port DXP envelope
signed the 2022 E-Port way (SM2 over SM3, SM3 digest): the envelope safely parsed and read,
its enveloped signature checked whole (canonical form, digest, SM2 signature), the manifest
safely parsed, its structure checked and mapped, its rules held, the event Avro-encoded. The
reference is lxml alone parsing the same bytes (the envelope, and the manifest it carries).
A second figure, "floor", is that reference plus the signature check's own cost (canonical
form, SM3 digest, SM2 verification, base64): what no adapter can go below. Then the cost of
each stage of the adapter's path, timed alone in the same turns: where a document's time goes.

A UN/EDIFACT PAXLST passenger list of 100 passengers (tests/data/paxlst/fal6/
passengers_100.edi, paxlst-passengers): the interchange read (UNA, UNB..UNZ, control counts),
the list mapped to the FAL 6 record, its rules held, the event Avro-encoded. The references
are the EDIFACT layer's bare tokenising of the same bytes (`tokenise`: separators, character
set, segments split, nothing checked) and `read_interchange` (the envelopes and their control
counts on top), in the same run.

Prints the figures, then one JSON line.

Run: .venv/bin/python bench/adapters.py [--tiny]

`--tiny` times each side for 0.2 s in slices of 0.05 s: a check that the bench still runs,
not a measurement.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

# This file shares its name with the package it measures: import the package, not itself.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from lxml import etree  # noqa: E402

from adapters import AdapterRegistry  # noqa: E402
from adapters.base import Adapter  # noqa: E402
from adapters.toolkit import XmlAdapter  # noqa: E402
from crypto import SM2PrivateKey, SM2PublicKey, signature_from_raw, sm3  # noqa: E402
from crypto.xmldsig import KeyHint, sign_enveloped, verify_enveloped  # noqa: E402
from message_formats import AvroSchemas, SafeXmlParser, XsdStore  # noqa: E402
from message_formats.dxp import (  # noqa: E402
    DxpEnvelope,
    DxpTransInfo,
    build_dxp_msg,
    read_dxp_msg,
    serialise,
)
from message_formats.edifact import read_interchange  # noqa: E402
from message_formats.edifact.tokens import tokenise  # noqa: E402

DATA = Path(__file__).parents[1] / "tests" / "data"
SAMPLE = DATA / "fal5" / "valid_arrival.xml"
MANIFEST_SAMPLE = DATA / "cn-manifest" / "mt2101_sea_pre_manifest.xml"
PAXLST_SAMPLE = DATA / "paxlst" / "fal6" / "passengers_100.edi"
CONSIGNMENTS = 50
SERIAL = 0x5A17
SECONDS = 3.0
SLICE = 0.25
TINY_SECONDS, TINY_SLICE = 0.2, 0.05


def rates(*works: Callable[[], object], seconds: float = SECONDS,
          slice_s: float = SLICE, batch: int = 50) -> list[float]:
    """Documents per second of each of `works`, timed in turns of `slice_s` (calls made
    `batch` at a time) until each has had `seconds`: a load that comes and goes while the
    bench runs weighs on all of them alike, so their ratio holds better than with one timed
    after the other."""
    for work in works:
        warm_until = time.perf_counter() + slice_s
        for _ in range(200):  # warm up
            work()
            if time.perf_counter() > warm_until:
                break
    done, spent = [0] * len(works), [0.0] * len(works)
    while min(spent) < seconds:
        for index, work in enumerate(works):
            count, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < slice_s:
                for _ in range(batch):
                    work()
                count += batch
            done[index] += count
            spent[index] += elapsed
    return [count / elapsed for count, elapsed in zip(done, spent, strict=True)]


def header(document_type: str, format_id: str) -> dict[str, object]:
    return {
        "event_id": "01a1fd64-09f3-709e-bad0-6223bca3693d", "document_type": document_type,
        "format_id": format_id, "schema_version": 1, "sender": "cn.port.sh",
        "business_key": "", "document_version": 1,
        "received_at": datetime(2026, 3, 15, tzinfo=UTC), "digest_sm3": "0" * 64,
        "signature_key_id": None,
    }


def adapted(schemas: AvroSchemas, adapter: Adapter, document: bytes) -> Callable[[], bytes]:
    """What an adapter costs a document: parse (with its rules), then the Avro single-object
    encoding of the event, header included."""
    event_header = header(adapter.document_type, adapter.format_id)

    def through_adapter() -> bytes:
        parsed = adapter.parse(document)
        return schemas.encode(adapter.schema_name, {"header": event_header, **parsed.record})

    return through_adapter


def lxml_parser() -> etree.XMLParser:
    """The parser settings SafeXmlParser uses, without the gateway's checks around them."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           collect_ids=False, remove_comments=True, remove_pis=True)


def pre_manifest(adapter: Adapter, consignments: int) -> bytes:
    """The sample sea pre-manifest with its consignment repeated, each under its own bill."""
    record = adapter.parse(MANIFEST_SAMPLE.read_bytes()).record
    first = record["declaration"]["consignments"][0]
    many = []
    for index in range(consignments):
        consignment = copy.deepcopy(first)
        consignment["transport_contract_document"]["id"] = f"EXCA2603{index:06d}"
        many.append(consignment)
    record["declaration"]["consignments"] = many
    return adapter.render(record)


def signed_envelope(manifest: bytes, key: SM2PrivateKey) -> bytes:
    info = DxpTransInfo("7f1c2a3e-0b6d-4f1e-9a55-3c2d1e0f9a10", "3100900000001", ("EPORT",),
                        "2026-03-01T09:30:15.123+08:00", "cn-manifest-xml")
    root = build_dxp_msg(DxpEnvelope(info, manifest))
    sign_enveloped(root, key, convention="eport-sm2-sm3", serial=SERIAL)
    return serialise(root)


def bench_fal5(schemas: AvroSchemas, registry: AdapterRegistry, seconds: float,
               slice_s: float) -> dict[str, object]:
    document = SAMPLE.read_bytes()
    adapter = registry.get("fal5-xml")
    through_adapter = adapted(schemas, adapter, document)
    parser = lxml_parser()
    schema = XsdStore().schema("fal5")

    def lxml_alone() -> bool:
        valid: bool = schema.validate(etree.fromstring(document, parser))
        return valid

    crew = len(adapter.parse(document).record["crew"])
    print(f"FAL 5 crew list: {crew} crew, {len(document):,} bytes")
    lxml_rate, adapter_rate = rates(lxml_alone, through_adapter, seconds=seconds,
                                    slice_s=slice_s)
    print(f"reference  lxml parse + XSD validate   {lxml_rate:10,.0f} docs/s")
    print(f"adapter    parse+validate+map+Avro     {adapter_rate:10,.0f} docs/s "
          f"({adapter_rate / lxml_rate:.2f} of lxml alone; target 5,000)")
    return {"fal5_docs_per_s": round(adapter_rate), "lxml_docs_per_s": round(lxml_rate),
            "ratio_to_lxml": round(adapter_rate / lxml_rate, 3), "crew": crew,
            "document_bytes": len(document)}


def bench_dxp_manifest(schemas: AvroSchemas, registry: AdapterRegistry, seconds: float,
                       slice_s: float) -> dict[str, object]:
    adapter = registry.get("cn-manifest-xml")
    key = SM2PrivateKey.generate()
    public_key = key.public_key()
    manifest = pre_manifest(adapter, CONSIGNMENTS)
    envelope = signed_envelope(manifest, key)
    safe = SafeXmlParser()
    manifest_header = header("cn-manifest", "cn-manifest-xml")

    def signer(hint: KeyHint) -> SM2PublicKey | None:
        return public_key if hint.serial == SERIAL else None

    def through_adapter() -> bytes:
        opened = read_dxp_msg(safe.parse(envelope))
        verify_enveloped(opened.root, signer)
        parsed = adapter.parse(opened.envelope.data)
        return schemas.encode(adapter.schema_name, {"header": manifest_header, **parsed.record})

    parser = lxml_parser()

    def lxml_alone() -> object:
        etree.fromstring(envelope, parser)
        return etree.fromstring(manifest, parser)

    floor = crypto_floor(envelope, public_key, parser)
    through_adapter()  # it must pass before it is timed
    stages = dxp_stages(envelope, signer, adapter, schemas, manifest_header)
    print(f"MT2101 sea pre-manifest in a signed DXP envelope: {CONSIGNMENTS} consignments, "
          f"manifest {len(manifest):,} bytes, envelope {len(envelope):,} bytes")
    lxml_rate, floor_rate, adapter_rate, *stage_rates = rates(
        lxml_alone, floor, through_adapter, *stages.values(), seconds=seconds,
        slice_s=slice_s, batch=1)
    print(f"reference  lxml parse (envelope, manifest) {lxml_rate:8,.0f} docs/s")
    print(f"floor      + canonical form, SM3, SM2, b64 {floor_rate:8,.0f} docs/s "
          f"({floor_rate / lxml_rate:.2f} of lxml alone)")
    print(f"adapter    open+verify+parse+map+Avro     {adapter_rate:8,.0f} docs/s "
          f"({adapter_rate / lxml_rate:.2f} of lxml alone; target 0.33)")
    costs = {name: 1000 / rate for name, rate in zip(stages, stage_rates, strict=True)}
    print(f"per stage, ms a document (lxml's parse of both: {1000 / lxml_rate:.2f}):")
    for name, cost in costs.items():
        print(f"  {name:38s} {cost:6.2f} ms  ({cost * lxml_rate / 1000:4.2f}x lxml)")
    return {"dxp_manifest_docs_per_s": round(adapter_rate),
            "dxp_manifest_lxml_docs_per_s": round(lxml_rate),
            "dxp_manifest_ratio_to_lxml": round(adapter_rate / lxml_rate, 3),
            "dxp_manifest_floor_docs_per_s": round(floor_rate),
            "dxp_manifest_stage_ms": {name: round(cost, 3) for name, cost in costs.items()},
            "consignments": CONSIGNMENTS, "envelope_bytes": len(envelope)}


def dxp_stages(envelope: bytes, signer: Callable[[KeyHint], SM2PublicKey | None],
               adapter: Adapter, schemas: AvroSchemas, event_header: dict[str, object]
               ) -> dict[str, Callable[[], object]]:
    """The adapter's path cut into its stages, each timed alone on what the stage before
    gave: where the time of a document goes."""
    assert isinstance(adapter, XmlAdapter)
    safe = SafeXmlParser()
    opened = read_dxp_msg(safe.parse(envelope))
    manifest_root = safe.parse(opened.envelope.data)
    record = adapter.read(manifest_root)
    event = {"header": event_header, **record}
    return {
        "envelope: safe parse, read, base64": lambda: read_dxp_msg(safe.parse(envelope)),
        "signature: C14N, SM3, SM2": lambda: verify_enveloped(opened.root, signer),
        "manifest: safe parse": lambda: safe.parse(opened.envelope.data),
        "manifest: structure checked and mapped": lambda: adapter.read(manifest_root),
        "manifest: business key and rules": lambda: (adapter.business_key(record),
                                                     adapter.check(record, manifest_root)),
        "event: Avro single-object encoding": lambda: schemas.encode(adapter.schema_name,
                                                                     event),
    }


def bench_paxlst(schemas: AvroSchemas, registry: AdapterRegistry, seconds: float,
                 slice_s: float) -> dict[str, object]:
    document = PAXLST_SAMPLE.read_bytes()
    adapter = registry.get("paxlst-passengers")
    through_adapter = adapted(schemas, adapter, document)

    def tokenising() -> object:
        return tokenise(document)

    def reading() -> object:
        return read_interchange(document)

    passengers = len(adapter.parse(document).record["passengers"])
    print(f"PAXLST passenger list: {passengers} passengers, {len(document):,} bytes")
    token_rate, read_rate, adapter_rate = rates(tokenising, reading, through_adapter,
                                                seconds=seconds, slice_s=slice_s, batch=5)
    print(f"reference  tokenise (segments split)   {token_rate:10,.0f} docs/s")
    print(f"reference  read_interchange            {read_rate:10,.0f} docs/s "
          f"({read_rate / token_rate:.2f} of tokenising)")
    print(f"adapter    read+map+rules+Avro         {adapter_rate:10,.0f} docs/s "
          f"({adapter_rate / token_rate:.2f} of tokenising)")
    return {"paxlst_docs_per_s": round(adapter_rate),
            "paxlst_tokenise_docs_per_s": round(token_rate),
            "paxlst_read_interchange_docs_per_s": round(read_rate),
            "paxlst_ratio_to_tokenise": round(adapter_rate / token_rate, 3),
            "paxlst_passengers": passengers, "paxlst_bytes": len(document)}


def crypto_floor(envelope: bytes, public_key: SM2PublicKey,
                 parser: etree.XMLParser) -> Callable[[], object]:
    """lxml's parse of the envelope and of the manifest, with what checking the signature
    costs at the least: the canonical form of the envelope without its signature and its
    SM3 digest, the canonical form of SignedInfo and its SM2 verification, the Data's
    base64. No check of structure, nothing mapped."""
    dsig = "{http://www.w3.org/2000/09/xmldsig#}"
    template = etree.fromstring(envelope, parser)
    signature = template[-1]
    value = base64.b64decode(signature.findtext(f"{dsig}SignatureValue") or "")
    der = signature_from_raw(value)

    def floor() -> object:
        root = etree.fromstring(envelope, parser)
        signed = root[-1]
        public_key.verify(der, etree.tostring(signed[0], method="c14n"))
        root.remove(signed)
        sm3(etree.tostring(root, method="c14n"))
        data = base64.b64decode(root[1].text or "", validate=True)
        return etree.fromstring(data, parser)

    return floor


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="very short timings, same code: checks that the bench runs")
    args = parser.parse_args(argv)
    seconds, slice_s = (TINY_SECONDS, TINY_SLICE) if args.tiny else (SECONDS, SLICE)
    os.sched_setaffinity(0, {0})
    schemas = AvroSchemas()
    registry = AdapterRegistry.default(schemas)
    print("one core (CPU 0)")
    figures = bench_fal5(schemas, registry, seconds, slice_s)
    figures |= bench_dxp_manifest(schemas, registry, seconds, slice_s)
    figures |= bench_paxlst(schemas, registry, seconds, slice_s)
    print(json.dumps(figures))

if __name__ == "__main__":
    main()
