"""Creating and editing a customer and logging an interaction, in a real browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import Tab

pytestmark = pytest.mark.browser

FORM_SCREENSHOT = "/tmp/accord-customer-form.png"
DETAIL_SCREENSHOT = "/tmp/accord-customer-edited.png"


@pytest.fixture
def tab(browser: Any, live_server: Any) -> Iterator[Tab]:
    t = Tab(browser, live_server.url)
    yield t
    t.close()


def test_admin_creates_edits_and_logs_an_interaction(tab: Tab, live_server: Any) -> None:
    tab.login(live_server.seeded.emails["admin"])
    page = tab.page
    page.get_by_role("link", name="New customer").click()
    page.wait_for_url(live_server.url + "/customers/new")
    page.get_by_label("First name").fill("Dorothy")
    page.get_by_label("Last name").fill("Vaughan")
    page.get_by_label("Primary e-mail").fill("dorothy@example.com")
    page.get_by_label("Primary phone").fill("+1 757 555 0100")
    page.get_by_label("Country").select_option("US")
    page.get_by_label("Lifecycle stage").select_option("discovery")
    page.get_by_label("Date of birth").fill("1910-09-20")
    page.get_by_label("Segment").select_option("SMB")
    page.screenshot(path=FORM_SCREENSHOT, full_page=True)
    page.get_by_role("button", name="Create customer").click()

    page.wait_for_url(re.compile(r".*/customers/\d+\?done=created$"))
    customer_url = page.url.split("?")[0]
    expect(page.get_by_role("heading", level=1)).to_have_text("Dorothy Vaughan")
    expect(page.get_by_role("status")).to_have_text("Customer created.")
    expect(page.locator('[data-field="lifecycle_stage"]')).to_have_text("Discovery")

    page.get_by_role("link", name="Edit").click()
    page.wait_for_url(customer_url + "/edit")
    expect(page.get_by_label("Primary e-mail")).to_have_value("dorothy@example.com")
    page.get_by_label("Lifecycle stage").select_option("purchase")
    page.get_by_label("Reason for a stage change").fill("signed the first order")
    page.get_by_role("button", name="Save changes").click()

    page.wait_for_url(customer_url + "?done=updated")
    badge = page.locator('[data-field="lifecycle_stage"] .badge')
    expect(badge).to_have_text("Purchase")
    expect(badge).to_have_class(re.compile(r"\bstage-purchase\b"))
    expect(page.locator('.journey [aria-current="step"]')).to_have_text("Purchase")
    expect(page.locator(".history")).to_contain_text("signed the first order")

    # Logging an interaction swaps only the activity section (no page load).
    page.evaluate("window.accordMarker = 'same page'")
    activity = page.get_by_role("region", name="Activity across channels")
    activity.locator(".log-interaction > summary").click()
    activity.get_by_label("Channel", exact=True).select_option("phone")
    activity.get_by_label("Subject").fill("Welcome call")
    page.locator(".log-form").get_by_role("button", name="Log interaction").click()
    expect(page.locator(".timeline .tl-title").first).to_have_text("Welcome call")
    expect(page.locator("#activity")).to_contain_text("Interaction logged.")
    assert page.evaluate("window.accordMarker") == "same page"
    page.screenshot(path=DETAIL_SCREENSHOT, full_page=True)
    assert tab.errors == [], tab.errors  # CSP violations are reported as console errors
