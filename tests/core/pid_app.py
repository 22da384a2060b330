"""A minimal ASGI app for the server-process tests: answers with the serving process's id, after
`?delay` seconds; its start-up fails when ACCORD_TEST_FAIL_STARTUP is set."""

from __future__ import annotations

import asyncio
import os
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.environ.get("ACCORD_TEST_FAIL_STARTUP"):
                    await send({"type": "lifespan.startup.failed", "message": "asked to fail"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    query = scope.get("query_string", b"").decode()
    if query:
        await asyncio.sleep(float(query))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
