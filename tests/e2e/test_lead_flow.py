"""A salesperson's lead in a real browser: open a qualified lead, check the prefilled convert
form, convert it and land on the new deal's page. CSP-clean throughout (no console errors)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from accord.core import db as dbmod
from accord.models import Deal, Lead
from accord.sales import leads
from accord.sales.leads_schemas import LeadCreate, LeadStatusIn
from accord.sales.pipelines import ensure_default_pipelines
from tests.e2e.test_browser import Tab
from tests.web.seed import make_user

pytestmark = pytest.mark.browser

SELLER = "seller@example.com"
SCREENSHOT = "/tmp/accord-lead.png"
DEAL_SCREENSHOT = "/tmp/accord-lead-deal.png"


@pytest.fixture(scope="module")
def lead_data(live_server: Any) -> dict[str, Any]:
    """A sales user in EMEA and a qualified B2B lead of theirs."""
    url = os.environ["ACCORD_DATABASE_URL"]
    with dbmod.session_scope(url) as s:
        ensure_default_pipelines(s)
        seller = make_user(s, "sales", SELLER, "Sasha Seller", team="EMEA")
        lead = leads.create_lead(s, seller, LeadCreate(
            first_name="Ines", last_name="Okafor", email="ines.okafor@trailworks.example",
            company="Trailworks Ltd", budget="12000.00", budget_currency="GBP",
            authority="decision_maker", timeline="quarter"))
        leads.change_status(s, seller, lead, LeadStatusIn(status="qualified"))
        return {"url": url, "lead": lead.id}


@pytest.fixture
def tab(browser: Any, live_server: Any) -> Iterator[Tab]:
    t = Tab(browser, live_server.url)
    yield t
    t.close()


def test_convert_a_qualified_lead_and_land_on_the_deal(tab: Tab, live_server: Any,
                                                       lead_data: dict[str, Any]) -> None:
    tab.login(SELLER)
    page = tab.page
    lead_id = lead_data["lead"]
    page.goto(f"{live_server.url}/sales/leads/{lead_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ines Okafor")
    expect(page.locator('[data-field="status"]')).to_have_text("Qualified")
    convert = page.locator("#convert")
    expect(convert.get_by_label("Deal name")).to_have_value("Trailworks Ltd – new business")
    expect(convert.get_by_label("Amount")).to_have_value("12000.00")
    expect(convert.get_by_label("Currency")).to_have_value("GBP")
    expect(convert.get_by_label("Pipeline")).to_have_value(re.compile(r"^\d+$"))
    expect(convert.get_by_label("Create a deal")).to_be_checked()
    expect(page.locator("#sales-activities")).to_be_visible()  # the panel loaded (HTMX)
    page.screenshot(path=SCREENSHOT, full_page=True)
    convert.get_by_label("Deal name").fill("Trailworks CRM rollout")
    convert.get_by_role("button", name="Convert lead").click()
    page.wait_for_url(re.compile(r".*/sales/deals/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Trailworks CRM rollout")
    expect(page.locator('[data-field="amount"]').first).to_have_text("£12,000.00")
    page.screenshot(path=DEAL_SCREENSHOT, full_page=True)
    with dbmod.session_scope(lead_data["url"], write=False) as s:
        lead = s.get(Lead, lead_id)
        deal_id = s.scalar(select(Deal.id).where(Deal.lead_id == lead_id))
        assert lead is not None and lead.status == "converted"
    assert page.url.endswith(f"/sales/deals/{deal_id}")
    # back on the lead: it links to what it became
    page.goto(f"{live_server.url}/sales/leads/{lead_id}")
    expect(page.locator('[data-field="converted_deal"] a')).to_have_attribute(
        "href", f"/sales/deals/{deal_id}")
    expect(page.locator("#convert")).to_have_count(0)
    assert tab.errors == [], tab.errors
