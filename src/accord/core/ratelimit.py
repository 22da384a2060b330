"""In-process sliding-window limits (per key): login failures, public endpoints.

Each `accord serve` process keeps its own counters; with N processes an attacker gets at most N
times the limit, which still stops online password guessing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from accord.core.errors import Problem

if TYPE_CHECKING:
    from starlette.requests import Request


class SlidingWindow:
    def __init__(self, limit: int, window_seconds: float, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window_seconds, max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:  # bounded memory under a flood of keys
                self._hits.pop(next(iter(self._hits)))
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may try again, or None when it is under the limit."""
        now = time.monotonic()
        with self._lock:
            hits = self._prune(key, now)
            if len(hits) < self.limit:
                return None
            return max(1, int(hits[0] + self.window - now) + 1)

    def hit(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._prune(key, now).append(now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()


def client_address(request: Request) -> str:
    """The peer address, the key of the per-client limits (a proxy in front must pass the real
    one with uvicorn's --proxy-headers; a client-sent X-Forwarded-For is not trusted)."""
    return request.client.host if request.client else "unknown"


def throttle(window: SlidingWindow, key: str, headers: dict[str, str] | None = None, *,
             message: str = "too many requests from this address; try again later") -> None:
    """Count one hit for `key`, or refuse with 429 and Retry-After when over the limit."""
    wait = window.retry_after(key)
    if wait is not None:
        raise Problem(message, status=429, title="Too many requests",
                      headers={"Retry-After": str(wait), **(headers or {})})
    window.hit(key)


def throttle_client(window: SlidingWindow, request: Request,
                    headers: dict[str, str] | None = None, *,
                    message: str = "too many requests from this address; try again later"
                    ) -> None:
    """Count one hit of this request's client against `window` (429 with Retry-After past it)."""
    throttle(window, client_address(request), headers, message=message)
