"""Whether the broker answers: what readiness reports and what makes the HTTP door say 503
before taking a document it could not put on the ingress topic."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from aiokafka.errors import KafkaError

log = structlog.get_logger(__name__)


class BrokerHealth:
    """Down as soon as a send fails; up again when a metadata request is answered. A probe
    asks every `interval_s` (more often while down)."""

    def __init__(self, *, interval_s: float = 2.0, timeout_s: float = 2.0) -> None:
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._up = True
        self._probe: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return self._up

    def watch(self, producer: Any) -> None:
        self._probe = asyncio.create_task(self._probe_forever(producer.client),
                                          name="broker-health")

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None

    def failed(self, error: object) -> None:
        if self._up:
            log.warning("broker.down", error=str(error))
        self._up = False

    def _answered(self) -> None:
        if not self._up:
            log.info("broker.up")
        self._up = True

    async def _probe_forever(self, client: Any) -> None:
        while True:
            await asyncio.sleep(self._interval_s if self._up else self._interval_s / 4)
            try:
                answered = await asyncio.wait_for(client.fetch_all_metadata(), self._timeout_s)
            except (KafkaError, TimeoutError, OSError) as exc:
                self.failed(exc)
            else:
                if answered is not None and answered.brokers():
                    self._answered()
                else:
                    self.failed("no broker in the metadata")
