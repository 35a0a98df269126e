"""What the HTTP door does before it knows who is asking: TLS with client certificates, and
the limits per client address.

The server's TLS context requires a client certificate issued by the configured client CA, so
a client without one is refused in the handshake. Which agency a certificate speaks for is
the keyring's business (crypto.client_certs), decided per request in gateway.ingress.http_api.

Each client address may hold `max_connections_per_address` connections: one more is closed
as soon as it is made, before any request on it is read. Its requests per second are limited
by `AddressLimit` (a 429 before any handler runs, so before any body is read or signature
checked).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from yarl import URL

from gateway.errors import ConfigError
from gateway.home.config import HttpSettings

HTTP_TLS_UNREADABLE = "CONFIG_HTTP_TLS_UNREADABLE"


def server_tls_context(settings: HttpSettings, home: Path) -> ssl.SSLContext | None:
    """The door's TLS context (mutual TLS: a client certificate from the client CA is
    required); None when `[http] tls = "off"`. ConfigError when a file does not load."""
    if settings.tls == "off":
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(home / settings.cert_file, home / settings.key_file)
        context.load_verify_locations(cafile=home / settings.client_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"[http] cert_file, key_file or client_ca_file does not load: "
                          f"{type(exc).__name__}", code=HTTP_TLS_UNREADABLE) from exc
    return context


def peer_certificate(request: web.Request) -> bytes | None:
    """The DER bytes of the client's certificate; None on a plain connection."""
    transport = request.transport
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    if tls is None:
        return None
    der: bytes | None = tls.getpeercert(binary_form=True)
    return der


class ConnectionGuard:
    """Counts open connections per client address; refuses one past `limit` (0: none)."""

    __slots__ = ("_limit", "_on_refused", "_open")

    def __init__(self, limit: int, on_refused: Callable[[], None] = lambda: None) -> None:
        self._limit = limit
        self._on_refused = on_refused
        self._open: dict[str, int] = {}

    def admit(self, address: str) -> bool:
        count = self._open.get(address, 0)
        if self._limit and count >= self._limit:
            self._on_refused()
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.pop(address, 0) - 1
        if count > 0:
            self._open[address] = count

    def open_from(self, address: str) -> int:
        return self._open.get(address, 0)


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, admitted by the guard first."""

    __slots__ = ("_address", "_guard", "_inner")

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not self._guard.admit(address):
            # A stream server's transport: asyncio types the argument as BaseTransport.
            cast(asyncio.Transport, transport).abort()
            return
        self._address = address
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is not None:
            self._guard.release(self._address)
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP site (TLS when given a context) whose connections pass `guard` first."""

    __slots__ = ("_bound_port", "_guard", "_host", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 ssl_context: ssl.SSLContext | None, guard: ConnectionGuard) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._guard = guard
        self._bound_port = port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return str(URL.build(scheme=scheme, host=self._host, port=self._bound_port))

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None

        def protocol() -> Any:
            return _Guarded(server(), self._guard)

        self._server = await asyncio.get_running_loop().create_server(
            protocol, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=True)
        sockets = self._server.sockets
        if sockets:
            self._bound_port = int(sockets[0].getsockname()[1])
