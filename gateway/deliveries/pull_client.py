"""The recipient's side of HTTP pull: pages of its deliveries from the gateway's door, and its
signed acknowledgements sent back (gateway.ingress.deliveries_api). Used by `portgw receive
--pull` and by an agency's own Python code.

The client trusts nothing a page says: each delivery comes back as the record it was on the
topic (`StoredMessage`), for the recipient's `DeliveryVerifier` to check before anything is
done with it.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from gateway.deliveries.acknowledgements import Acknowledgement
from gateway.deliveries.pull import delivery_from_json
from gateway.errors import GatewayError
from gateway.kafka.names import StoredMessage

PULL_FAILED: Final = "PULL_FAILED"
PULL_ANSWER_MALFORMED: Final = "PULL_ANSWER_MALFORMED"
DELIVERIES_PATH: Final = "/v1/deliveries"
ACKNOWLEDGEMENTS_PATH: Final = "/v1/deliveries/acknowledgements"


class PullFailed(GatewayError):
    """The door refused or did not answer; `problem` is its problem code when it gave one."""

    code = PULL_FAILED

    def __init__(self, message: str, *, status: int = 0, problem: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.problem = problem


@dataclass(frozen=True, slots=True)
class PulledPage:
    topic: str
    deliveries: tuple[StoredMessage, ...]
    cursor: str
    pending: int


class PullClient:
    """Talks to one gateway door as one agency (its client certificate in `tls`; `sender`
    names the agency on a local door without TLS)."""

    def __init__(self, base_url: str, *, tls: ssl.SSLContext | None = None,
                 sender: str | None = None, timeout_s: float = 60.0) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Px-Sender": sender} if sender else {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=tls if tls is not None else False, limit=2),
            timeout=aiohttp.ClientTimeout(total=timeout_s), headers=self._headers)

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> PullClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def page(self, cursor: str | None, *, limit: int = 100,
                   wait_s: float = 0.0) -> PulledPage:
        params: dict[str, str] = {"limit": str(limit), "wait": f"{wait_s:g}"}
        if cursor:
            params["cursor"] = cursor
        body = await self._ask("GET", DELIVERIES_PATH, params=params)
        try:
            topic = str(body["topic"])
            return PulledPage(topic, tuple(delivery_from_json(topic, item)
                                           for item in body["deliveries"]),
                              str(body["cursor"]), int(body["pending"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise PullFailed("the page of deliveries is not one the door gives",
                             code=PULL_ANSWER_MALFORMED) from exc

    async def acknowledge(self, ack: Acknowledgement,
                          places: Sequence[StoredMessage]) -> Mapping[str, Any]:
        """Sends `ack`, with the place of each delivery it names (`places`, the records as
        pulled, in any order); the gateway's signed receipt."""
        body = {
            "acknowledgement": json.loads(ack.to_json()),
            "places": [{"delivery_id": taken.delivery_id, "partition": m.partition,
                        "offset": m.offset} for taken, m in zip(ack.taken, places, strict=True)],
        }
        return await self._ask("POST", ACKNOWLEDGEMENTS_PATH, json=body)

    async def _ask(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._session.request(method, self._base + path, **kwargs) as response:
                body = await response.json(content_type=None)
                if response.status != 200:
                    code = body.get("code") if isinstance(body, dict) else None
                    raise PullFailed(f"{method} {path} answered {response.status} "
                                     f"({code or 'no code'})", status=response.status,
                                     problem=code)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PullFailed(f"{method} {path} failed: {type(exc).__name__}") from exc
        if not isinstance(body, dict):
            raise PullFailed(f"{method} {path} answered with no object",
                             code=PULL_ANSWER_MALFORMED)
        return body

