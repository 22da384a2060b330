"""Fixtures for the web UI tests: seeded data and browsers (TestClients) signed in as a user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from accord.core import db as dbmod
from tests.web.seed import PASSWORD, Seeded, login_token_of, seed_showcase


def login(client: TestClient, email: str, password: str = PASSWORD,
          next_path: str | None = None) -> Any:
    """Sign in through the login form, as a browser does (login token included)."""
    page = client.get("/login" + (f"?next={quote(next_path, safe='')}" if next_path else ""))
    assert page.status_code == 200, page.text
    data = {"email": email, "password": password, "login_token": login_token_of(page.text)}
    if next_path is not None:
        data["next"] = next_path
    return client.post("/login", data=data, follow_redirects=False)


@pytest.fixture(autouse=True)
def _fresh_login_throttle() -> Iterator[None]:
    """Login failure counters live in the process; each test starts with none."""
    from accord.web.auth import FAILURES_PER_ACCOUNT, FAILURES_PER_CLIENT

    FAILURES_PER_ACCOUNT.clear()
    FAILURES_PER_CLIENT.clear()
    yield


@pytest.fixture
def seeded(db: str) -> Seeded:
    with dbmod.session_scope(db) as session:
        return seed_showcase(session)


@pytest.fixture
def signed_in(app: Any) -> Iterator[Callable[[str], TestClient]]:
    """`signed_in(email)` → a separate browser (own cookie jar) with a live session."""
    clients: list[TestClient] = []

    def make(email: str) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        response = login(client, email)
        assert response.status_code == 303, response.text
        return client

    yield make
    for client in clients:
        client.close()


class InlineCode(HTMLParser):
    """Finds what the CSP would block: inline scripts/styles, style and on* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower() for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        self.found += [f"{tag}[{n}]" for n in names if n == "style" or n.startswith("on")]
        for name, value in attrs:
            if name in ("href", "src", "action") and value and value.strip().lower().startswith(
                    ("javascript:", "http:", "https:", "//")):
                self.found.append(f"{tag}[{name}]={value}")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found
