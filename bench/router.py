"""Routing decisions: 10,000 sharing contracts over 200 agencies, 1,000,000 decisions, one core.

Everything is built in memory with a seeded generator: the agencies (a mix of kinds, GB/T 2260
region codes, mostly CN with some HK, MO and SG), the document catalog from the real canonical
Avro schemas, and contracts consistent with both (scopes that fit the agencies, export
assessments and masked or justified personal fields across the border, conditions over fields
every named document type has, projections and masks, validity windows mostly in force). The
contracts go through the linter's checks before anything is timed: an invalid contract would
make the figure meaningless.

The decisions are over real canonical records (the valid sample documents of tests/data,
parsed by the adapters, without header: what the router sees), each with variants differing
in the fields conditions read, precomputed as (sender, document type, record, instant) so
that most hit a route with contracts. Timed: one pass of `ContractIndex.decide` over them,
after a warm-up, in wall-clock time (and CPU time, since the machine may be shared).
Reference from the same run: the bare dictionary lookup of the route over the same inputs.
Prints the figures, then one JSON line.

Run: .venv/bin/python bench/router.py [--tiny]

`--tiny` runs the same code on 300 contracts, 20,000 decisions and 2 variants per sample
(seconds, not minutes): a check that the bench still runs, not a measurement.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# This file shares its name with a module of the gateway: import the packages, not bench/.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from adapters import AdapterRegistry  # noqa: E402
from contracts import (  # noqa: E402
    Agency,
    AgencyRegistry,
    Contract,
    ContractIndex,
    DocumentCatalog,
    DocumentInfo,
    MaskRule,
)
from contracts.lint import lint_parsed  # noqa: E402
from contracts.loader import ParsedFile, SourceLines  # noqa: E402
from gateway.decide.router import document_catalog, format_table  # noqa: E402
from message_formats import AvroSchemas  # noqa: E402

SEED = 20260320
AGENCIES = 200
CONTRACTS = 10_000
DECISIONS = 1_000_000
WARM_UP = 20_000
TINY_CONTRACTS, TINY_DECISIONS, TINY_VARIANTS = 300, 20_000, 2
NO_ROUTE_SHARE = 0.05  # decisions from a sender no contract names for that type
AT = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)  # the decisions fall within a day of this
DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
MASK_KEY = b"bench-router-mask-key-0123456789"

# GB/T 2260 codes of port (and inland port) cities, with a short name for agency ids.
CN_REGIONS = (
    ("310000", "sh"), ("440300", "sz"), ("440100", "gz"), ("330200", "nb"), ("370200", "qd"),
    ("120000", "tj"), ("210200", "dl"), ("350200", "xm"), ("350100", "fz"), ("320600", "nt"),
    ("130200", "ts"), ("450500", "bh"), ("460100", "hk"), ("441900", "dg"), ("371000", "wh"),
    ("500000", "cq"), ("420100", "wuh"), ("410100", "zz"), ("320200", "wx"), ("440700", "jm"),
)
# CN agencies by kind (176 in all); abroad: HK and MO by their GB/T 2260 codes; Singapore has
# none, so its agencies carry 000000 (they are never compared by region: other jurisdiction).
CN_KINDS = (
    ("customs", 28), ("border", 18), ("maritime", 20), ("transport", 12),
    ("port-operator", 20), ("port-office", 12), ("emergency", 8), ("public-security", 10),
    ("carrier", 24), ("agent", 24),
)
ABROAD = (
    ("HK", "810000", (("foreign-authority", 5), ("customs", 2), ("border", 1), ("carrier", 2),
                      ("agent", 2))),
    ("MO", "820000", (("foreign-authority", 3), ("customs", 1))),
    ("SG", "000000", (("foreign-authority", 4), ("carrier", 2), ("agent", 2))),
)
# How often an agency of a kind sends documents (provider of a contract).
PROVIDER_WEIGHT = {
    "port-operator": 6.0, "agent": 6.0, "carrier": 4.0, "port-office": 3.0, "customs": 3.0,
    "maritime": 2.0, "border": 2.0, "transport": 1.5, "public-security": 0.5,
    "emergency": 0.5, "foreign-authority": 0.3,
}
# Document types that travel together in one contract.
FAMILIES = {
    "fal1": ("fal2", "fal3", "fal4", "fal5", "fal6", "fal7"),
    "fal2": ("fal1", "fal7", "manifest"),
    "fal3": ("fal1", "fal4"),
    "fal4": ("fal1", "fal3", "fal5"),
    "fal5": ("fal1", "fal4", "fal6"),
    "fal6": ("fal1", "fal5"),
    "fal7": ("fal1", "fal2", "manifest"),
    "manifest": ("fal2", "fal7", "waybill"),
    "waybill": ("manifest",),
    "cn-manifest": ("manifest", "fal2", "fal7", "waybill"),
    "warning": (),  # early warnings are shared alone, as the demo's contracts share them
    "stowage-plan": ("fal7", "container-order", "container-report"),
    "container-order": ("stowage-plan", "container-report"),
    "container-report": ("stowage-plan", "container-order"),
    "transport-status": ("waybill", "manifest"),
    "shipping-instructions": ("waybill", "manifest"),
}
# Conditions over canonical fields; a contract takes one whose paths all its types have.
CONDITIONS = (
    'ship.flag_state in ["HK", "PA", "LR", "MH"]',
    'ship.flag_state == "CN"',
    'ship.flag_state not in ["KP", "IR", "SY"]',
    'arrival_or_departure == "Arrival"',
    'arrival_or_departure == "Departure" and ship.flag_state != "CN"',
    "ship.gross_tonnage >= 10000",
    'ship.imo_number in ["9074729", "9321483", "9456783"]',
    "crew_count > 20",
    "crew_count > 20 or passenger_count > 0",
    "passenger_count > 0",
    'port_of_arrival_departure in ["CNSHA", "CNNGB", "CNYTN", "CNTAO"]',
    'last_port_of_call in ["KRPUS", "JPYOK", "SGSIN"]',
    'date_time_of_arrival_departure >= "2026-03-15"',
    "number_of_persons_on_board > 20",
    "master_name != null",
    'port_of_discharge in ["CNSHA", "CNYTN", "SGSIN"]',
    'port_of_loading == "CNNGB" or port_of_discharge == "SGSIN"',
    "total_gross_weight_kg > 100000",
    'customs_code in ["2248", "3100"]',
    'transport_means.nationality != "CN"',
    'discharge_date_time < "2026-04-01T00:00:00+08:00"',
    'status == "delivered"',
    'status in ["booked", "in_transit"] and remarks == null',
    'operator.unified_social_credit_code == "91310000607201753X"',
    'not (arrival_or_departure == "Departure")',
    # Early warnings: by level and lifecycle step, as docs/warnings.md routes them.
    'level in ["I", "II"] and step.action in ["PUBLISH", "CHANGE_LEVEL", "RELEASE"]',
    'level in ["III", "IV"] and step.action in ["PUBLISH", "CHANGE_LEVEL", "RELEASE"]',
    'step.action in ["PUBLISH", "CHANGE_LEVEL", "RELEASE"]',
    'step.action == "TERROR_CHECK" and step.terror_relevance == "NOT_EXCLUDED"',
    'step.action == "FILE"',
)
# How a personal field is masked, by its last name.
MASK_BY_LEAF = {
    "family_name": (MaskRule("pseudonym"),),
    "given_names": (MaskRule("drop"), MaskRule("pseudonym")),
    "date_of_birth": (MaskRule("year"), MaskRule("drop")),
    "place_of_birth": (MaskRule("drop"),),
    "number": (MaskRule("partial", 2, 2), MaskRule("pseudonym")),
    "master_name": (MaskRule("pseudonym"),),
    "contact": (MaskRule("partial", 3, 2), MaskRule("drop")),
    "name": (MaskRule("pseudonym"), MaskRule("drop")),
    "telephone": (MaskRule("partial", 3, 2), MaskRule("drop")),
    "phone": (MaskRule("partial", 3, 2), MaskRule("drop")),
    "email": (MaskRule("drop"), MaskRule("pseudonym")),
    "id": (MaskRule("partial", 2, 2), MaskRule("pseudonym")),
}
PURPOSES = ("crew clearance", "vessel arrival clearance", "dangerous goods supervision",
            "cargo risk screening", "port state control", "berth planning",
            "epidemic prevention at the border", "multimodal transit supervision")
LEGAL_BASES = ("Customs Law art. 8", "Exit and Entry Administration Law art. 51",
               "Maritime Traffic Safety Law art. 45", "Port Law art. 35",
               "Frontier Health and Quarantine Law art. 15", "Data Security Law art. 38")


@dataclass(frozen=True, slots=True)
class Inputs:
    agencies: AgencyRegistry
    catalog: DocumentCatalog
    formats: dict[str, str]
    records: dict[str, list[dict[str, Any]]]


# --- the world ----------------------------------------------------------------------------


def make_agencies(rng: random.Random) -> list[Agency]:
    agencies: list[Agency] = []
    for kind, count in CN_KINDS:
        for number in range(count):
            region, city = CN_REGIONS[(number + len(agencies)) % len(CN_REGIONS)]
            agencies.append(Agency(
                f"cn.{kind}.{city}.{number:02d}", f"{city.upper()} {kind} {number}", kind,
                region, "CN", delivery_format="json" if rng.random() < 0.2 else "avro"))
    for jurisdiction, region, kinds in ABROAD:
        for kind, count in kinds:
            for number in range(count):
                agencies.append(Agency(
                    f"{jurisdiction.lower()}.{kind}.{number:02d}",
                    f"{jurisdiction} {kind} {number}", kind, region, jurisdiction,
                    delivery_format="json" if rng.random() < 0.3 else "avro"))
    assert len(agencies) == AGENCIES, len(agencies)
    return agencies


def sample_records(adapters: AdapterRegistry) -> dict[str, list[dict[str, Any]]]:
    """The canonical records of the valid sample documents, by document type."""
    records: dict[str, list[dict[str, Any]]] = {}
    for adapter in adapters:
        # A type's samples are in its folder; a format of its own has its own (its format id).
        folder = next((DATA / name for name in (adapter.format_id, adapter.document_type)
                       if (DATA / name / "expected.json").is_file()), None)
        if folder is None:
            continue  # another format of the type (PAXLST): its samples are elsewhere
        expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
        if expected["_adapter"]["format_id"] != adapter.format_id:
            continue
        valid = sorted(name for name, outcome in expected.items()
                       if not name.startswith("_") and "code" not in outcome)
        records.setdefault(adapter.document_type, []).extend(
            adapters.get(adapter.format_id).parse((folder / name).read_bytes()).record
            for name in valid)
        assert records[adapter.document_type], adapter.document_type
    return records


# Values the variants of a sample record take, for fields free of cross-field rules.
VARIED = {
    ("arrival_or_departure",): ("Arrival", "Departure"),
    ("ship", "flag_state"): ("CN", "HK", "PA", "LR", "MH", "SG", "BS", "MT", "GR", "LR"),
    ("ship", "gross_tonnage"): (None, 4_820, 9_957, 40_541, 114_261, 151_559),
    ("port_of_arrival_departure",): ("CNSHA", "CNNGB", "CNYTN", "CNTAO", "CNTXG", "CNXMN"),
    ("last_port_of_call",): (None, "KRPUS", "JPYOK", "SGSIN", "HKHKG", "USLAX"),
    ("port_of_discharge",): ("CNSHA", "CNYTN", "SGSIN", "NLRTM", "CNNGB"),
    ("customs_code",): ("2248", "3100", "5300", "4200"),
    ("transport_means", "nationality"): ("CN", "PA", "LR", "HK", "SG"),
    ("level",): ("I", "II", "III", "IV"),
    ("step", "action"): ("DRAFT", "CONTENT_REVIEW", "TERROR_CHECK", "PUBLISH", "CHANGE_LEVEL",
                         "RELEASE", "FILE"),
}
VARIANTS = 24  # per sample document: ~450 distinct records in all


def with_variants(rng: random.Random, records: dict[str, list[dict[str, Any]]],
                  variants: int = VARIANTS) -> dict[str, list[dict[str, Any]]]:
    """Each sample record and variants of it differing in the fields conditions look at
    (flag state, tonnage, ports, direction; the counts that rules tie to lists stay), so
    that conditions come out differently across documents as they would in traffic."""
    varied: dict[str, list[dict[str, Any]]] = {}
    for document_type, samples in records.items():
        varied[document_type] = list(samples)
        for sample in samples:
            for _ in range(variants):
                record = copy.deepcopy(sample)
                for path, values in VARIED.items():
                    holder = record if len(path) == 1 else record.get(path[0])
                    if isinstance(holder, dict) and path[-1] in holder:
                        holder[path[-1]] = rng.choice(values)
                varied[document_type].append(record)
    return varied


class ContractMaker:
    def __init__(self, rng: random.Random, agencies: list[Agency],
                 catalog: DocumentCatalog) -> None:
        self.rng = rng
        self.agencies = agencies
        self.catalog = catalog
        self.types = sorted(catalog)
        # Some agencies are busier than others: a heavy-tailed activity on top of the kind.
        self.provider_weights = [PROVIDER_WEIGHT[a.kind] * rng.lognormvariate(0.0, 0.5)
                                 for a in agencies]

    def make(self, number: int) -> Contract:
        rng = self.rng
        provider = rng.choices(self.agencies, self.provider_weights)[0]
        scope, consumers = self.scope_and_consumers(provider)
        documents = [self.catalog[t] for t in self.document_types()]
        common = frozenset.intersection(*(d.field_paths for d in documents))
        fields = self.fields(common)
        masks, basis = self.masks(documents, common, fields, cross_border=scope == "cross-border")
        valid_from, valid_to = self.validity()
        important = any(d.classification == "important" for d in documents)
        return Contract(
            id=f"ct-{number:05d}",
            version=rng.randint(1, 3),
            provider=provider.id,
            consumers=tuple(c.id for c in consumers),
            document_types=tuple(d.document_type for d in documents),
            scope=scope,
            purpose=rng.choice(PURPOSES),
            legal_basis=rng.choice(LEGAL_BASES),
            valid_from=valid_from,
            valid_to=valid_to,
            fields=fields,
            masks=masks,
            condition=self.condition(common) if rng.random() < 0.5 else None,
            max_classification="important" if important or rng.random() < 0.1 else "general",
            delivery_format="json" if rng.random() < 0.05 else None,
            encrypt=scope == "cross-border" or rng.random() < 0.2,
            export_assessment=(f"CAC-SJCJ-{rng.randint(2023, 2026)}-{number:05d}"
                               if scope == "cross-border" else None),
            personal_data_basis=basis,
        )

    def scope_and_consumers(self, provider: Agency) -> tuple[str, list[Agency]]:
        rng = self.rng
        abroad = [a for a in self.agencies if a.jurisdiction != provider.jurisdiction]
        home = [a for a in self.agencies
                if a.jurisdiction == provider.jurisdiction and a.id != provider.id]
        roll = rng.random()
        if provider.jurisdiction != "CN" or roll < 0.06:
            scope, eligible = "cross-border", abroad
        elif roll < 0.33:
            scope, eligible = "cross-region", [a for a in home if a.region != provider.region]
        else:
            scope, eligible = "cross-department", [a for a in home if a.kind != provider.kind]
        count = min(len(eligible), rng.choices((1, 2, 3, 4), (4, 3, 2, 1))[0])
        return scope, rng.sample(eligible, count)

    def document_types(self) -> list[str]:
        rng = self.rng
        first = rng.choice(self.types)
        count = rng.choices((1, 2, 3), (6, 3, 1))[0]
        others = rng.sample(FAMILIES[first], min(count - 1, len(FAMILIES[first])))
        return [first, *others]

    def fields(self, common: frozenset[str]) -> tuple[str, ...]:
        """Half deliver the whole record; the others some fields every type has."""
        rng = self.rng
        if rng.random() < 0.5:
            return ("*",)
        candidates = sorted(p for p in common
                        if p != "header" and not p.startswith("header.") and not p.endswith("[]"))
        chosen = rng.sample(candidates, min(len(candidates), rng.randint(2, 6)))
        # Keep a path only when no other chosen path lies above it.
        kept = [p for p in chosen if not any(_above(q, p) for q in chosen if q != p)]
        return tuple(kept)

    def masks(self, documents: list[DocumentInfo], common: frozenset[str],
              fields: tuple[str, ...], *, cross_border: bool
              ) -> tuple[tuple[tuple[str, MaskRule], ...], str | None]:
        """Masks on delivered personal fields; across the border every delivered personal
        field is masked, or the contract cites a basis for them."""
        rng = self.rng
        exposed = sorted({p for d in documents for p in d.personal_paths
                          if fields == ("*",) or any(p == f or _above(f, p) for f in fields)})
        maskable = [p for p in exposed if p in common]
        if cross_border:
            if exposed and (maskable != exposed or rng.random() < 0.25):
                return (), "PIPL art. 13(1)(2): contract performance; art. 38 standard contract"
            chosen = maskable
        else:
            chosen = [p for p in maskable if rng.random() < 0.3]
        return tuple((p, rng.choice(MASK_BY_LEAF[p.rpartition(".")[2]])) for p in chosen), None

    def condition(self, common: frozenset[str]) -> str | None:
        fitting = [c for c in CONDITIONS if all(p in common for p in _condition_paths(c))]
        return self.rng.choice(fitting) if fitting else None

    def validity(self) -> tuple[datetime, datetime | None]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.09:  # expired
            start = AT - timedelta(days=rng.uniform(400, 1200))
            return start, AT - timedelta(days=rng.uniform(2, 300))
        if roll < 0.15:  # not yet in force
            return AT + timedelta(days=rng.uniform(5, 200)), None
        start = AT - timedelta(days=rng.uniform(10, 1100))
        return start, None if rng.random() < 0.6 else AT + timedelta(days=rng.uniform(30, 900))


def _above(upper: str, path: str) -> bool:
    """Whether `upper` is a field above `path` (ship above ship.name, crew above crew[].x)."""
    return path.startswith(upper + ".") or path.startswith(upper + "[]")


def _condition_paths(condition: str) -> list[str]:
    words = condition.replace("(", " ").replace(")", " ").split()
    keywords = {"and", "or", "not", "in", "null", "true", "false"}
    return [w for w in words if w[0].isalpha() and w not in keywords]


def lint(contracts: list[Contract], world: Inputs) -> None:
    parsed = [ParsedFile(Path(f"{c.id}.toml"), c, (), SourceLines("")) for c in contracts]
    report = lint_parsed(parsed, world.agencies, world.catalog, world.formats)
    if report.problems:
        for problem in report.problems[:10]:
            print(f"invalid generated contract: {problem}", file=sys.stderr)
        raise SystemExit(f"{len(report.problems)} problems in the generated contracts")
    assert len(report.contracts) == len(contracts)


def make_decisions(rng: random.Random, contracts: list[Contract], agencies: list[Agency],
                   world: Inputs, count: int) -> list[tuple[str, str, dict[str, Any], datetime]]:
    """Mostly a document of a type some contract names, from that contract's provider (so
    busy routes get more documents); some from a sender with no route for the type."""
    types = sorted(world.records)
    instants = [AT - timedelta(hours=12) + timedelta(minutes=17 * i) for i in range(85)]
    choice, random_ = rng.choice, rng.random
    decisions = []
    for _ in range(count):
        if random_() < NO_ROUTE_SHARE:
            sender, document_type = choice(agencies).id, choice(types)
        else:
            contract = choice(contracts)
            sender, document_type = contract.provider, choice(contract.document_types)
        decisions.append((sender, document_type, choice(world.records[document_type]),
                          choice(instants)))
    return decisions


# --- timing -------------------------------------------------------------------------------


def timed(loop: Callable[[], object]) -> float:
    return timed_both(loop)[0]


def timed_both(loop: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call: the machine may be shared, and CPU time says
    how much of the wall time the loop had the core."""
    started, cpu_started = time.perf_counter(), time.process_time()
    loop()
    return time.perf_counter() - started, time.process_time() - cpu_started


def check_tables(catalog: DocumentCatalog) -> None:
    """The tables above must describe every document type the adapters know: a type added to
    the gateway (as warnings were) fails here by name, not deep inside the generator."""
    missing = sorted(set(catalog) - FAMILIES.keys())
    leaves = {p.rpartition(".")[2] for t in catalog for p in catalog[t].personal_paths}
    unmasked = sorted(leaves - MASK_BY_LEAF.keys())
    if missing or unmasked:
        raise SystemExit(f"bench/router.py: document types without FAMILIES: {missing}; "
                         f"personal fields without MASK_BY_LEAF: {unmasked}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true",
                        help="very small sizes, same code: checks that the bench runs")
    args = parser.parse_args(argv)
    contract_count = TINY_CONTRACTS if args.tiny else CONTRACTS
    decision_count = TINY_DECISIONS if args.tiny else DECISIONS
    variants = TINY_VARIANTS if args.tiny else VARIANTS
    os.sched_setaffinity(0, {0})
    started = time.perf_counter()
    # One generator per part, so that changing one part leaves the others as they were.
    agency_rng, contract_rng, record_rng, decision_rng = (
        random.Random(f"{SEED}-{part}") for part in ("agencies", "contracts", "records",
                                                      "decisions"))
    schemas = AvroSchemas()
    adapters = AdapterRegistry.default(schemas)
    agency_list = make_agencies(agency_rng)
    catalog = document_catalog(adapters, schemas)
    check_tables(catalog)
    world = Inputs(AgencyRegistry(agency_list), catalog, format_table(adapters),
                   with_variants(record_rng, sample_records(adapters), variants))
    maker = ContractMaker(contract_rng, agency_list, world.catalog)
    contracts = [maker.make(number) for number in range(contract_count)]
    lint_s = timed(lambda: lint(contracts, world))

    index: ContractIndex | None = None

    def build() -> None:
        nonlocal index
        index = ContractIndex(contracts, world.agencies, world.catalog, mask_key=MASK_KEY)

    index_build_s = timed(build)
    assert index is not None
    decisions = make_decisions(decision_rng, contracts, agency_list, world, decision_count)
    routes: dict[tuple[str, str], tuple[Contract, ...]] = {}
    for contract in contracts:
        for document_type in contract.document_types:
            key = (contract.provider, document_type)
            routes[key] = (*routes.get(key, ()), contract)
    setup_s = time.perf_counter() - started

    decide, get = index.decide, routes.get

    def decide_all() -> None:
        for sender, document_type, record, at in decisions:
            decide(sender, document_type, record, at)

    def lookup_all() -> None:
        for sender, document_type, _record, _at in decisions:
            get((sender, document_type))

    for sender, document_type, record, at in decisions[:WARM_UP]:  # warm up
        decide(sender, document_type, record, at)
    decide_s, decide_cpu_s = timed_both(decide_all)
    lookup_s = timed(lookup_all)

    # Untimed: what the decisions were.
    granted = evaluated = routed = recipients = 0
    for sender, document_type, record, at in decisions:
        decision = decide(sender, document_type, record, at)
        granted += bool(decision.grants)
        recipients += len(decision.grants)
        on_route = len(index.routes_from(sender, document_type))
        evaluated += on_route
        routed += on_route > 0
    conditions = sum(c.condition is not None for c in contracts)
    projected = sum(not c.whole_record for c in contracts)
    cross_border = sum(c.scope == "cross-border" for c in contracts)
    in_force = sum(c.in_force_at(AT) for c in contracts)

    decisions_per_s = decision_count / decide_s
    lookup_per_s = decision_count / lookup_s
    print(f"contracts            {contract_count} over {AGENCIES} agencies, {len(routes)} "
          f"routes (provider, type); {in_force} in force at {AT:%Y-%m-%d}, {conditions} with a "
          f"condition, {projected} projected or masked, {cross_border} cross-border")
    print(f"lint                 {lint_s:.2f} s, no problems")
    print(f"index build          {index_build_s:.2f} s")
    records = sum(len(found) for found in world.records.values())
    print(f"decisions            {decision_count} over {records} records of "
          f"{len(world.records)} types: {routed / decision_count:.1%} on a route, "
          f"{granted / decision_count:.1%} with a grant, "
          f"{recipients / decision_count:.2f} recipients and "
          f"{evaluated / decision_count:.2f} contracts on the route per decision")
    print(f"decide               {decisions_per_s:12,.0f} decisions/s "
          f"({decide_s / decision_count * 1e9:,.0f} ns each); per CPU second "
          f"{decision_count / decide_cpu_s:,.0f} (the loop had the core "
          f"{decide_cpu_s / decide_s:.0%} of the time)")
    print(f"route lookup alone   {lookup_per_s:12,.0f} lookups/s "
          f"({lookup_s / decision_count * 1e9:,.0f} ns each)")
    print(f"total run            {time.perf_counter() - started:.1f} s (setup {setup_s:.1f} s)")
    print(json.dumps({
        "decisions_per_s": round(decisions_per_s),
        "contracts": contract_count,
        "agencies": AGENCIES,
        "decisions": decision_count,
        "granted_share": round(granted / decision_count, 4),
        "contracts_per_decision": round(evaluated / decision_count, 2),
        "decisions_per_cpu_s": round(decision_count / decide_cpu_s),
        "lookup_only_per_s": round(lookup_per_s),
        "index_build_s": round(index_build_s, 2),
    }))


if __name__ == "__main__":
    main()
