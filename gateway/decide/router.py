"""The router: the contracts in force, how a grant becomes a delivery payload, and reloading.

The set of contracts is swapped as a whole: `Router.reload` builds a complete new index from
the directory and only then replaces the old one (one attribute assignment), so a document
is routed either entirely under the old set or entirely under the new one. A directory that
does not lint clean leaves the old set in force and logs why.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from adapters import AdapterRegistry
from contracts import (
    AVRO,
    CMS_ENVELOPE,
    JSON,
    AgencyRegistry,
    Contract,
    ContractError,
    ContractIndex,
    DocumentCatalog,
    Grant,
    load_contract_dir,
)
from crypto import CryptoError, seal_cms, seal_envelope
from gateway.deliveries.envelopes import CMS_ENVELOPE_PREFIX, SM4_ENVELOPE_PREFIX
from gateway.errors import GatewayError
from gateway.home.live_keyring import LiveKeyring
from gateway.home.watching import reload_on_change
from gateway.kafka.names import Topics
from message_formats import AvroSchemas
from message_formats.json_view import to_json

log = structlog.get_logger(__name__)

AVRO_ENCODING = "avro-single-object"
JSON_ENCODING = "json"
CONTRACT_DXP_NOT_XML = "CONTRACT_DXP_NOT_XML"


def document_catalog(adapters: AdapterRegistry, schemas: AvroSchemas) -> DocumentCatalog:
    return DocumentCatalog.from_schemas(
        schemas, {a.document_type: a.schema_name for a in adapters}
    )


def format_table(adapters: AdapterRegistry) -> dict[str, str]:
    """Adapter format id → the document type it carries."""
    return {a.format_id: a.document_type for a in adapters}


def envelope_format_problems(contracts: Iterable[Contract], agencies: AgencyRegistry,
                             envelope_recipients: frozenset[str]) -> Iterator[ContractError]:
    """A sharing contract that gives a recipient taking China E-Port envelopes Avro or JSON:
    only a document in an XML format can carry their signature (gateway.publish.dxp_egress)."""
    for contract in contracts:
        if contract.kind != "sharing":
            continue
        for consumer in sorted(envelope_recipients.intersection(contract.consumers)):
            chosen = contract.delivery_format or agencies.get(consumer).delivery_format
            if chosen in (AVRO, JSON):
                yield ContractError(
                    f"{contract.label} delivers {chosen} to {consumer}, which takes China "
                    "E-Port envelopes: name a document format (delivery_format)",
                    code=CONTRACT_DXP_NOT_XML, path=contract.source)


@dataclass(frozen=True, slots=True)
class RouterSources:
    """Where contracts come from and what they are checked against (recipients' keys: in
    the keyring in force when they are loaded)."""

    contracts_dir: Path
    agencies: AgencyRegistry
    adapters: AdapterRegistry
    schemas: AvroSchemas
    keyring: LiveKeyring
    mask_key: bytes
    # Recipients that take China E-Port envelopes ([dxp.recipients]): what they are given
    # must be a document in an XML format (gateway.publish.dxp_egress).
    envelope_recipients: frozenset[str] = frozenset()

    def build_index(self) -> ContractIndex:
        """Lint, load and compile the directory; ContractError if anything is wrong."""
        catalog = document_catalog(self.adapters, self.schemas)
        contracts = load_contract_dir(self.contracts_dir, self.agencies, catalog,
                                      format_table(self.adapters))
        index = ContractIndex(contracts, self.agencies, catalog, mask_key=self.mask_key)
        self._check_encryption_keys(index)
        for problem in envelope_format_problems(index.contracts, self.agencies,
                                                self.envelope_recipients):
            raise problem
        for plan in index.plans():
            if plan.avro_schema is not None:
                self.schemas.add(plan.avro_schema)
        return index

    def _check_encryption_keys(self, index: ContractIndex) -> None:
        keyring = self.keyring.current
        for contract in index.contracts:
            if contract.encrypt:
                for consumer in contract.consumers:
                    if not keyring.keys_for(consumer):
                        raise ContractError(
                            f"{contract.label} requires SM4 envelopes but {consumer} has no "
                            "SM2 key in the keyring", code="CONTRACT_NO_RECIPIENT_KEY",
                            path=contract.source)


class Router:
    __slots__ = ("_sources", "index")

    def __init__(self, sources: RouterSources) -> None:
        self._sources = sources
        self.index = sources.build_index()

    def reload(self) -> bool:
        """True if the directory's contracts are now in force; False (old set kept) if not."""
        try:
            index = self._sources.build_index()
        except ContractError as exc:
            log.warning("contracts.reload_refused", code=exc.code, error=str(exc),
                        kept=len(self.index.contracts))
            return False
        self.index = index
        log.info("contracts.reloaded", contracts=len(index.contracts))
        return True

    async def watch(self, stop: asyncio.Event, interval_s: float) -> None:
        """Reloads whenever the directory's files change (names, sizes, modification times),
        polling every `interval_s` seconds until `stop` is set."""
        await reload_on_change(stop, interval_s,
                               lambda: contracts_fingerprint(self._sources.contracts_dir),
                               self.reload)


def contracts_fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """The contract files of `directory` by name, size and modification time: what a change
    to them changes."""
    try:
        return tuple(sorted((p.name, (st := p.stat()).st_size, st.st_mtime_ns)
                            for p in directory.glob("*.toml")))
    except OSError:
        return ()


# A payload's bytes and encoding → the same, wrapped.
Envelope = Callable[[bytes, str], tuple[bytes, str]]


@dataclass(frozen=True, slots=True)
class Payload:
    data: bytes
    encoding: str
    schema: str


@dataclass(frozen=True, slots=True)
class PayloadBuilder:
    """Turns a grant into the bytes its recipient gets: the canonical event as it is, the
    projected and masked record in Avro or JSON, or the document rendered in an adapter's
    format; then, where the contract says so, an SM4 envelope to the recipient's newest key
    in the keyring in force: the gateway's own, or CMS EnvelopedData for an agency whose
    `envelope_format` is "cms" (to the key's certificate when it has one)."""

    schemas: AvroSchemas
    adapters: AdapterRegistry
    keyring: LiveKeyring
    agencies: AgencyRegistry
    topics: Topics

    def topic_of(self, recipient: str) -> str:
        """The agency's own delivery topic if it named one, else px.deliver.<id>.v1."""
        return self.agencies.get(recipient).delivery_topic or self.topics.delivery(recipient)

    def build(
        self, grant: Grant, record: Mapping[str, Any], event_value: bytes, at: datetime, *,
        envelope: Envelope | None = None,
    ) -> Payload:
        """`envelope`, when given, wraps the payload before it is encrypted (a China E-Port
        recipient's DxpMsg: gateway.publish.dxp_egress)."""
        plan = grant.plan
        if plan is None:
            raise GatewayError(f"grant to {grant.recipient} has no delivery plan",
                               code="INTERNAL_ERROR")
        value = record if plan.projection is None else plan.projection(record)
        if plan.format == AVRO:
            data = event_value if plan.projection is None else \
                self.schemas.encode(plan.payload_schema, value)
            encoding = AVRO_ENCODING
        elif plan.format == JSON:
            data = json.dumps(to_json(value), ensure_ascii=False, separators=(",", ":"),
                              sort_keys=False).encode("utf-8")
            encoding = JSON_ENCODING
        else:
            body = {name: item for name, item in record.items() if name != "header"}
            data = self.adapters.get(plan.format).render(body)
            encoding = plan.format
        if envelope is not None:
            data, encoding = envelope(data, encoding)
        if plan.encrypt:
            data = self._seal(grant.recipient, data, at)
            encoding = self._envelope_prefix(grant.recipient) + encoding
        return Payload(data, encoding, plan.payload_schema)

    def _envelope_prefix(self, recipient: str) -> str:
        if self.agencies.get(recipient).envelope_format == CMS_ENVELOPE:
            return CMS_ENVELOPE_PREFIX
        return SM4_ENVELOPE_PREFIX

    def _seal(self, recipient: str, data: bytes, at: datetime) -> bytes:
        try:
            entry = self.keyring.current.current_key(recipient, at)
        except CryptoError as exc:
            raise GatewayError(f"cannot encrypt for {recipient}: {exc}",
                               code="DELIVERY_NO_RECIPIENT_KEY") from exc
        if self._envelope_prefix(recipient) == CMS_ENVELOPE_PREFIX:
            return seal_cms(entry.certificate or entry.public_key, data)
        return seal_envelope(entry.public_key, data)
