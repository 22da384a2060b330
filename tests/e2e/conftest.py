"""A real Accord server (uvicorn, temp SQLite) and Debian's headless Chromium via Playwright.

Without /usr/bin/chromium the browser tests skip with the reason, except under CI=true, where
they fail: CI must prove the UI in a real browser.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from accord.core import db as dbmod
from accord.core.settings import reset_settings

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class LiveServer:
    url: str
    seeded: Any


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    import uvicorn

    from accord.app import create_app
    from accord.core.migrate import upgrade
    from tests.web.seed import seed_showcase

    previous = os.environ.get("ACCORD_DATABASE_URL")
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'accord.db'}"
    os.environ["ACCORD_DATABASE_URL"] = url
    reset_settings()
    dbmod.dispose_all()
    upgrade(url)
    with dbmod.session_scope(url) as session:
        seeded = seed_showcase(session)
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=_free_port(),
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="accord-e2e-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the Accord test server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", seeded)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        dbmod.dispose_all()
        if previous is None:
            os.environ.pop("ACCORD_DATABASE_URL", None)
        else:
            os.environ["ACCORD_DATABASE_URL"] = previous
        reset_settings()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " — CI=true: the browser tests must run", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
