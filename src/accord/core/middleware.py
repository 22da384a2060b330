"""ASGI middleware: request body limit and security headers."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accord.core.errors import PROBLEM_JSON, problem_body

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, whether or not Content-Length is honest.

    `larger` lifts the limit for path prefixes that take file uploads (ticket attachments),
    which check each file's own size limit themselves."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 larger: tuple[tuple[str, int], ...] = ()) -> None:
        self.app, self.default_max, self.larger = app, max_bytes, larger

    def _limit(self, path: str) -> int:
        for prefix, limit in self.larger:
            if path.startswith(prefix):
                return max(limit, self.default_max)
        return self.default_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if (length is None and b"transfer-encoding" not in headers
                and scope.get("http_version") in ("1.1", "1.0")):
            # HTTP/1.x: without either header a request has no body (RFC 9112 §6.3), so there
            # is nothing to count: no wrapped receive and send for every GET.
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope.get("path", ""))
        if length is not None:
            try:
                too_big = int(length) > max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._reject(scope, send, max_bytes)
                return
        received = 0
        exceeded = False
        sent_response = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal sent_response
            if exceeded:
                # The app caught the overflow while reading (FastAPI turns any error during body
                # parsing into a 400): whatever it answers is replaced by the 413.
                if message["type"] == "http.response.start" and not sent_response:
                    sent_response = True
                    await self._reject(scope, send, max_bytes)
                return
            if message["type"] == "http.response.start":
                sent_response = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not sent_response:
                await self._reject(scope, send, max_bytes)

    async def _reject(self, scope: Scope, send: Send, max_bytes: int) -> None:
        body = json.dumps(
            problem_body(
                413,
                "Payload too large",
                f"the request body is larger than {max_bytes} bytes",
                instance=scope.get("path"),
                field="body",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


_SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _SECURITY_HEADERS if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add_headers)
