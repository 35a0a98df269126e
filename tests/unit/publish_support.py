"""Decided documents for the unit tests of publishing: a home with the demo's FAL 1 contract
and a subscription of the port to its documents' status events, and the real stages run on
a real document (the gateway's own pipeline, without a broker)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.decide import pipeline as stages
from gateway.decide.pipeline import Context, Rejection, Submission
from gateway.home.config import GatewayConfig
from gateway.home.create import DEMO_CONTRACTS, ContractSpec, Home, create_home
from gateway.parts import GatewayParts
from gateway.publish.deliveries import BuildDeliveries
from gateway.publish.dxp_egress import NO_DXP, DxpEgress
from gateway.service import run_stages

FAL1 = Path(__file__).parents[1] / "data" / "fal1"
SENDER = "cn.port.sh"
AT = datetime(2026, 6, 1, tzinfo=UTC)
PORT_FOLLOWS_ITS_FAL1 = ContractSpec(
    id="port-status", provider="", consumers=(SENDER,), document_types=("fal1",), scope="",
    purpose="the port follows what it files", legal_basis="单一窗口 service agreement",
    kind="subscription", events=("accepted", "rejected", "delivered"))


def publishing_home(path: Path) -> tuple[Home, GatewayParts]:
    home = create_home(path, contracts=(*DEMO_CONTRACTS, PORT_FOLLOWS_ITS_FAL1))
    config = GatewayConfig.load(home.config_file)
    return home, GatewayParts.load(config)


def decided(home: Home, parts: GatewayParts, sample: str, *, number: int = 1,
            partition: int = 0, ingress_offset: int | None = None, dxp: DxpEgress = NO_DXP
            ) -> tuple[Context, Rejection | None]:
    """The sample as the gateway's stages decide on it, sent by the port (to the China
    E-Port recipients of `dxp` in envelopes)."""
    document = (FAL1 / sample).read_bytes()
    config = GatewayConfig.load(home.config_file)
    submission = Submission(f"sub-{number}", SENDER, "fal1-xml", document,
                            home.agency_keys[SENDER].sign(document), AT, partition,
                            ingress_offset=ingress_offset)
    pipeline = stages.Pipeline([
        ("size", stages.CheckSize(config.limits_for)),
        ("authenticate", stages.Authenticate(parts.live_keyring)),
        ("adapter", stages.ChooseAdapter(parts.adapters)),
        ("adapt", stages.Adapt()),
        ("event", stages.BuildEvent(parts.schemas, parts.topics)),
        ("route", stages.Route(parts.router)),
        ("deliveries", BuildDeliveries(parts.payloads, parts.schemas, dxp)),
    ])
    event_id = f"0190c0de-0000-7000-8000-{number:012d}"
    return run_stages(pipeline, stages.new_context(submission, event_id))
