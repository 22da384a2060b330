"""Shared by the web benchmarks: per-call timings in milliseconds and a signed-in test client."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    """Milliseconds of each of `n` calls."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def ensure_customers(customers: int, seed: int) -> None:
    """Migrate, then generate the demo customer base once (the domain data goes next to it)."""
    from accord.core.db import get_engine
    from accord.core.migrate import upgrade
    from accord.demo.generator import Progress, demo_exists, generate

    upgrade()
    if not demo_exists(get_engine()):
        print(f"generating {customers:,} customers ...", flush=True)
        generate(customers, seed, progress=Progress())


def login(client: Any, email: str, password: str) -> None:
    """Sign in through the login form (its one-time token first)."""
    page = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token, "no login token on the login page"
    r = client.post("/login", data={"email": email, "password": password,
                                    "login_token": token.group(1)}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
