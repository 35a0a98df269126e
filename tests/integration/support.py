"""What the integration tests share: submitting documents through a running gateway."""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from gateway.cli.main import main as portgw_main
from gateway.home.config import GatewayConfig
from gateway.home.create import (
    DEMO_AGENCIES,
    DEMO_CONTRACTS,
    WARNING_AGENCIES,
    WARNING_CONTRACTS,
    WARNING_LEVEL_OWNERS,
    Home,
    create_home,
)
from gateway.ingress.client import submit
from gateway.kafka.wire import read_topics
from gateway.parts import GatewayParts
from gateway.receipts.receipt import Receipt
from gateway.service import Gateway

FAL1_SAMPLES = Path(__file__).parents[1] / "data" / "fal1"


@dataclass(frozen=True, slots=True)
class Sent:
    """One submission for `submit_all`: who sends what, and how it is signed."""

    sender: str
    document: bytes
    signature: bytes | None = None  # None: signed properly by the sender's key
    format_id: str = "fal1-xml"


@dataclass(frozen=True, slots=True)
class Ran:
    """What a `portgw` command did (as subprocess.CompletedProcess names it)."""

    returncode: int
    stdout: str
    stderr: str


def portgw(*args: str | Path) -> Ran:
    """`portgw ARGS` run through its `main` in this process, sparing a Python start and its
    imports: its output captured, and the logging it configures put back afterwards."""
    saved = structlog.get_config()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = portgw_main([str(arg) for arg in args])
            except SystemExit as exc:  # argparse, after --help or a usage error
                code = int(exc.code or 0)
    finally:
        structlog.configure(**saved)
    return Ran(code, out.getvalue(), err.getvalue())


def trail_entries(parts: GatewayParts, bootstrap: str) -> list[dict[str, Any]]:
    """The trail's records (its seals left out)."""
    values = [parts.schemas.decode(m.value)[1]
              for m in asyncio.run(read_topics(bootstrap, [parts.topics.trail]))]
    return [value["entry"] for value in values if "entry" in value]


def warning_home(path: Path, *, seal_every: int = 4) -> Home:
    """A home with the port's agencies and contracts and those of early warnings."""
    return create_home(path, agencies=(*DEMO_AGENCIES, *WARNING_AGENCIES),
                       contracts=(*DEMO_CONTRACTS, *WARNING_CONTRACTS), seal_every=seal_every,
                       seal_interval_ms=100, warning_level_owners=WARNING_LEVEL_OWNERS)


def gateway_parts(home: Home) -> tuple[GatewayConfig, GatewayParts]:
    config = GatewayConfig.load(home.config_file)
    return config, GatewayParts.load(config)


async def submit_all(home: Home, bootstrap_servers: str, sends: list[Sent]) -> list[Receipt]:
    """Runs a gateway on the ingress topic and submits each document as its agency would."""
    config, parts = gateway_parts(home)
    receipts = []
    async with Gateway(config, parts, bootstrap_servers) as gateway, gateway.serving() as serving:
        for sent in sends:
            signature = sent.signature
            if signature is None:
                signature = home.agency_keys[sent.sender].sign(sent.document)
            signed = await serving.alongside(submit(
                bootstrap_servers, sender=sent.sender, format_id=sent.format_id,
                document=sent.document, signature=signature, schemas=parts.schemas,
                topics=parts.topics, timeout_s=20,
            ))
            signed.check(parts.keyring)  # sealed by the gateway's sealing key
            receipts.append(signed.receipt)
    return receipts
