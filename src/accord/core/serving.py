"""uvicorn's HTTP protocol with TCP_NODELAY on every accepted connection.

With `--workers N` uvicorn binds the listening socket itself with `proto` 0; accepted sockets
inherit it and asyncio then skips TCP_NODELAY, so every keep-alive response after the first waits
~40 ms for the client's delayed ACK (uvicorn issue #3149). Setting the option here works for one
worker and many, on whichever implementation uvicorn's "auto" picks (httptools or h11)."""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


class NoDelayHTTP(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
