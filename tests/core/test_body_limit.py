"""The body limit skips requests that carry no body (HTTP/1.x without Content-Length or
Transfer-Encoding) and still refuses any oversized body, whatever the method."""

from __future__ import annotations

import anyio

from accord.core.middleware import BodyLimit
from accord.core.settings import get_settings
from tests.access.helpers import assert_problem


def test_a_get_with_an_oversized_body_is_refused(db, client, admin):
    body = b"x" * (get_settings().max_body_bytes + 1)
    r = client.request("GET", "/api/v1/customers", content=body, headers=admin.headers)
    assert_problem(r, 413, field="body")


def _call(http_version: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, list[dict]]:
    """Run BodyLimit (limit 10 bytes) over an app that reads a 20-byte body."""
    read: list[bytes] = []
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:
        message = await receive()
        read.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict:
        return {"type": "http.request", "body": b"y" * 20, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "http_version": http_version, "method": "POST", "path": "/x",
             "headers": headers}
    anyio.run(BodyLimit(app, max_bytes=10), scope, receive, send)
    return bool(read), sent


def test_a_body_without_length_headers_is_still_counted_beyond_http1() -> None:
    # HTTP/2 carries a body without either header: the limit must still apply
    _, sent = _call("2", [])
    assert sent[0]["status"] == 413


def test_a_chunked_body_is_counted() -> None:
    _, sent = _call("1.1", [(b"transfer-encoding", b"chunked")])
    assert sent[0]["status"] == 413
