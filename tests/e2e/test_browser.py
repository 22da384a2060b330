"""The UI in a real browser: login, live search, the 360° page, field masking, and a clean CSP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.seed import PASSWORD

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/accord-360.png"


class Tab:
    """One browser context (its own cookies) that records console errors and page errors."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1360, "height": 900},
                                           locale="en-GB")
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def login(self, email: str) -> None:
        self.page.goto(self.base + "/customers")
        assert "/login" in self.page.url  # logged out: sent to the login page
        self.page.get_by_label("E-mail address").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(self.base + "/customers")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, live_server: Any) -> Iterator[Tab]:
    t = Tab(browser, live_server.url)
    yield t
    t.close()


def test_support_searches_by_email_and_sees_masked_birth_date(tab: Tab, live_server: Any) -> None:
    tab.login(live_server.seeded.emails["support"])
    page = tab.page
    assert page.get_by_role("link", name="Admin").count() == 0  # support has no admin pages
    rows = page.locator("#results tbody tr")
    assert rows.count() >= 6
    # Typing runs the HTMX search (keyup, debounced) and swaps only the results.
    page.get_by_label("Search customers").press_sequentially("grace.hopper@example.com")
    expect(rows).to_have_count(1)
    assert "q=grace.hopper%40example.com" in page.url  # the search is in the address bar
    page.locator("#results").get_by_role("link", name="Grace Hopper").click()
    page.wait_for_url(f"{live_server.url}/customers/{live_server.seeded.grace_id}")
    assert page.get_by_role("heading", level=1).inner_text().endswith("Grace Hopper")
    dob = page.locator('[data-field="date_of_birth"]')
    assert "Restricted" in dob.inner_text()
    assert "1906" not in page.content()
    assert page.locator('[data-field="national_id"]').inner_text().strip().startswith("Restricted")
    assert "Renewal call" in page.locator(".timeline").inner_text()
    assert tab.errors == []


def test_privacy_officer_sees_birth_date_and_page_is_csp_clean(tab: Tab, live_server: Any) -> None:
    tab.login(live_server.seeded.emails["privacy_officer"])
    page = tab.page
    page.goto(f"{live_server.url}/customers/{live_server.seeded.grace_id}")
    page.wait_for_load_state("networkidle")
    assert page.locator('[data-field="date_of_birth"]').inner_text().strip() == "9 Dec 1906"
    assert "US-123-45-6789" in page.locator('[data-field="national_id"]').inner_text()
    # The vendored htmx loaded under the strict CSP, configured not to inject inline styles.
    assert page.evaluate("typeof window.htmx === 'object' && htmx.config.includeIndicatorStyles")\
        is False
    assert page.evaluate("document.querySelectorAll('head style').length") == 0
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert tab.errors == [], tab.errors  # CSP violations are reported as console errors


def test_api_docs_render_from_vendored_swagger_ui(tab: Tab, live_server: Any) -> None:
    page = tab.page
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.goto(live_server.url + "/api/docs")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "Accord" in page.locator(".swagger-ui .info .title").inner_text()
    assert all(url.startswith(live_server.url) for url in requests), requests  # works offline
    assert tab.errors == [], tab.errors


def test_logout_ends_the_session(tab: Tab, live_server: Any) -> None:
    tab.login(live_server.seeded.emails["admin"])
    page = tab.page
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(live_server.url + "/login")
    page.goto(live_server.url + "/admin/users")
    assert "/login?next=/admin/users" in page.url
    assert tab.errors == []
