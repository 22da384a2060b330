"""Data stewardship in a real browser: a possible match side by side, accepted; then the 360
page's sources panel explains why each record is linked (strict CSP, no console errors)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.integration.ingest import Incoming, ingest_batch
from accord.integration.resolution import resolve_pending
from accord.integration.sources import create_source
from accord.models import MatchReview, SourceProfile
from tests.e2e.test_browser import Tab

pytestmark = pytest.mark.browser

REVIEW_SCREENSHOT = "/tmp/accord-review-side-by-side.png"
SOURCES_SCREENSHOT = "/tmp/accord-360-sources.png"


def profile(ext: str, **fields: Any) -> Incoming:
    return Incoming("profile", {"id": ext, **fields}, dict(fields), ext)


@pytest.fixture(scope="module")
def pair(live_server: Any) -> dict[str, int]:
    """Two silos' records of one person that the rules only dare to propose: a review."""
    with dbmod.session_scope(os.environ["ACCORD_DATABASE_URL"]) as s:
        billing = create_source(s, SYSTEM, name="billing", kind="billing", trust_rank=10,
                                default_country="DE")
        shop = create_source(s, SYSTEM, name="webshop", kind="webshop", trust_rank=30,
                             default_country="DE")
        ingest_batch(s, SYSTEM, billing, [profile(
            "B-100", first_name="Katharina", last_name="Schäfer", email="k.schaefer@example.de",
            phone="+49 40 5550123", date_of_birth="1979-11-02")])
        ingest_batch(s, SYSTEM, shop, [
            profile("W-200", first_name="Katharina", last_name="Schaefer",
                    email="kathi@shop.example", phone="040 5550123", address_line1="Elbchaussee 9",
                    city="Hamburg", postcode="22763", country="DE"),
            profile("W-201", first_name="Katharina", last_name="Schaefer",
                    email="kathi@shop.example", address_line1="Elbchaussee 9", city="Hamburg",
                    postcode="22763", country="DE")])
        resolve_pending(s)
        s.flush()
        review = s.scalar(select(MatchReview).where(MatchReview.status == "pending"))
        assert review is not None
        shop_customer = s.scalar(select(SourceProfile.customer_id)
                                 .where(SourceProfile.external_id == "W-200"))
        return {"review": review.id, "survivor": shop_customer}


@pytest.fixture
def tab(browser: Any, live_server: Any) -> Iterator[Tab]:
    t = Tab(browser, live_server.url)
    t.page.on("dialog", lambda dialog: dialog.accept())  # data-confirm prompts
    yield t
    t.close()


def test_steward_compares_side_by_side_and_accepts(tab: Tab, live_server: Any,
                                                   pair: dict[str, int]) -> None:
    tab.login(live_server.seeded.emails["admin"])
    page = tab.page
    page.goto(live_server.url + "/identity/reviews")
    row = page.locator(f'tr[data-review-id="{pair["review"]}"]')
    expect(row).to_contain_text("billing")
    expect(row).to_contain_text("webshop")
    row.get_by_role("link", name="Compare").click()
    page.wait_for_url(f"{live_server.url}/identity/reviews/{pair['review']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Are these the same person?")
    header = page.locator("table.compare thead")
    expect(header).to_contain_text("trust rank 10")
    expect(header).to_contain_text("trust rank 30")
    phone = page.locator('tr[data-compare="phone"]')
    expect(phone.locator("td.side-value").first).to_have_text("+49405550123")
    expect(phone.locator(".weight")).to_have_text("same")
    expect(phone.locator(".weight")).to_have_class(re.compile(r"\bw-for\b"))
    surname = page.locator('tr[data-compare="last_name"] .weight')
    expect(surname).to_have_class(re.compile(r"\bw-against\b"))
    # the colour comes from the stylesheet (no inline style under the CSP)
    green = page.evaluate("getComputedStyle(document.querySelector("
                          "'tr[data-compare=\"phone\"] .weight')).color")
    assert green == "rgb(6, 118, 71)"
    page.screenshot(path=REVIEW_SCREENSHOT, full_page=True)

    page.get_by_label("Note for the audit trail").fill("same phone, umlaut spelling")
    page.get_by_role("button", name="Accept: same person").click()
    page.wait_for_url(live_server.url + "/identity/reviews?done=accepted")
    expect(page.get_by_role("status")).to_have_text(
        "Match accepted: the two records are now one customer.")
    expect(page.locator(f'tr[data-review-id="{pair["review"]}"]')).to_have_count(0)
    assert tab.errors == [], tab.errors


def test_the_360_page_shows_the_sources_and_why(tab: Tab, live_server: Any,
                                                pair: dict[str, int]) -> None:
    tab.login(live_server.seeded.emails["admin"])
    page = tab.page
    page.goto(f"{live_server.url}/customers/{pair['survivor']}")
    panel = page.locator("#sources")
    expect(panel.get_by_role("heading", name="Sources")).to_be_visible()
    items = panel.locator(".source-item")
    expect(items).to_have_count(3)
    billing = items.filter(has_text="billing")
    expect(billing).to_contain_text("trust rank 10")
    expect(billing.locator('[data-field="link_method"]')).to_have_text("Review")
    expect(billing.locator(".supplied")).to_contain_text("Date of birth")
    why = billing.locator("details.why")
    expect(why.locator("p").first).not_to_be_visible()
    why.locator("summary").click()
    expect(why).to_contain_text("Came with the merge of customer")
    expect(why).to_contain_text("same phone, umlaut spelling")
    surname = why.locator("tbody tr", has_text="Last name")
    expect(surname.locator("td").first).to_have_text("Schäfer")  # this record's own value
    expect(surname.locator(".weight")).to_have_text("differs")
    shop = items.filter(has=page.locator(".source-head", has_text="record W-201"))
    shop.locator("details.why summary").click()
    expect(shop.locator("details.why")).to_contain_text("same e-mail and surname")
    page.screenshot(path=SOURCES_SCREENSHOT, full_page=True)

    # undo the steward's decision from the same panel
    change = panel.locator(".changes li").first
    change.get_by_label(re.compile("Why undo the merge")).fill("checked again: two people")
    change.get_by_role("button", name=re.compile("Unmerge")).click()
    page.wait_for_url(re.compile(r".*\?identity=unmerged#sources$"))
    expect(page.locator("#sources .alert-ok")).to_contain_text("Merge undone")
    expect(page.locator("#sources .source-item")).to_have_count(2)
    assert tab.errors == [], tab.errors
