"""The parts the gateway is made of, loaded from its home: its sealing key, the keyring, the
agencies, the contracts (the router), the adapters and the schemas. Not the running service:
the auditor's tools load these too."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from adapters import AdapterRegistry
from contracts import AgencyRegistry
from crypto import Keyring, SM2PrivateKey, hmac_sm3
from gateway.decide.router import PayloadBuilder, Router, RouterSources
from gateway.errors import ConfigError
from gateway.home.config import GatewayConfig
from gateway.home.live_keyring import LiveKeyring
from gateway.kafka.names import Topics
from gateway.publish.dxp_egress import NO_DXP, DxpEgress
from message_formats import AvroSchemas, CodedError

log = structlog.get_logger(__name__)

# The door key is derived from the home's mask key under this label, so that one secret
# is not put to two uses.
DOOR_KEY_LABEL = b"px door stamp v1"


@dataclass(frozen=True, slots=True)
class GatewayParts:
    """Everything the pipeline needs, loaded from the gateway's home directory: once, but for
    the keyring and the contracts, which `reload` loads again (see `live_keyring` and
    `router`)."""

    key: SM2PrivateKey
    # The keyring in force, read at use time by everything in the gateway that needs a key.
    live_keyring: LiveKeyring
    agencies: AgencyRegistry
    router: Router
    adapters: AdapterRegistry
    schemas: AvroSchemas
    # Shared by the gateway processes of one home: the HTTP door stamps what it put on the
    # ingress topic with it (gateway/ingress/serving.py).
    door_key: bytes
    # The names of the topics, from `[kafka] topic_prefix`.
    topics: Topics
    # The recipients that take China E-Port envelopes, and the key that signs them.
    dxp: DxpEgress = NO_DXP

    @classmethod
    def load(cls, config: GatewayConfig) -> GatewayParts:
        """Raises ConfigError naming the file at fault, with the underlying error's code."""
        try:
            agencies = AgencyRegistry.from_toml(config.agencies_file)
            live_keyring = LiveKeyring.load(config.keyring_file)
            schemas = AvroSchemas()
            adapters = AdapterRegistry.default(schemas)
            for problem in adapters.problems:  # the gateway starts without it
                log.warning("adapter.plugin_skipped", plugin=problem.plugin,
                            target=problem.target, code=problem.code, error=problem.message)
            mask_key = config.mask_key_file.read_bytes()
            sources = RouterSources(
                contracts_dir=config.contracts_dir,
                agencies=agencies,
                adapters=adapters,
                schemas=schemas,
                keyring=live_keyring,
                mask_key=mask_key,
                envelope_recipients=frozenset(config.dxp.recipients),
            )
            return cls(
                key=SM2PrivateKey.from_pem(config.key_file.read_bytes()),
                live_keyring=live_keyring,
                agencies=agencies,
                router=Router(sources),
                adapters=adapters,
                schemas=schemas,
                door_key=hmac_sm3(mask_key, DOOR_KEY_LABEL),
                topics=Topics.of(config.kafka),
                dxp=DxpEgress.load(config.dxp),
            )
        except OSError as exc:
            raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        except CodedError as exc:
            raise ConfigError(f"{exc.code}: {exc}") from exc

    @property
    def keyring(self) -> Keyring:
        """The keyring in force now (what a reload last loaded)."""
        return self.live_keyring.current

    def reload(self) -> None:
        """What SIGHUP does: the keyring, then the contracts (checked against the new
        keyring's recipient keys). Each keeps what it had if its files do not load."""
        self.live_keyring.reload()
        self.router.reload()

    def agency_names(self, agency_id: str) -> frozenset[str]:
        """The names an agency is registered under (a warning's issuing authority is one)."""
        if agency_id not in self.agencies:
            return frozenset()
        agency = self.agencies.get(agency_id)
        return frozenset(name for name in (agency.name, agency.name_zh) if name)

    @property
    def payloads(self) -> PayloadBuilder:
        return PayloadBuilder(self.schemas, self.adapters, self.live_keyring, self.agencies,
                              self.topics)
