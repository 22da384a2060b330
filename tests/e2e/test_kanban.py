"""The pipeline board in a real browser: drag a deal to the next stage and see the totals
change; the keyboard path (the card's stage select + Move); a lost stage asks for the reason;
a stale card (changed elsewhere) is refused with a message and reloaded. CSP-clean throughout."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from accord.access import service as access
from accord.core import db as dbmod
from accord.models import DealStageChange, User
from accord.sales import deals
from accord.sales.deals_schemas import DealCreate, DealUpdate
from accord.sales.pipelines import ensure_default_pipelines
from tests.e2e.test_browser import Tab

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/accord-kanban.png"
DETAIL_SCREENSHOT = "/tmp/accord-deal.png"


@pytest.fixture(scope="module")
def board_data(live_server: Any) -> dict[str, Any]:
    """The default pipelines and three deals of the admin's, in Qualification."""
    url = os.environ["ACCORD_DATABASE_URL"]
    with dbmod.session_scope(url) as s:
        pipes = ensure_default_pipelines(s)
        nb = pipes[0]
        admin = s.execute(select(User).where(User.email == live_server.seeded.emails["admin"])
                          ).scalar_one()
        principal = access.principal_for(admin)
        made = {}
        for name, amount in (("Drag me", "1000.00"), ("Keyboard deal", "200.00"),
                             ("Stale deal", "50.00"), ("Losing deal", "70.00")):
            made[name] = deals.create_deal(s, principal, DealCreate(
                name=name, pipeline_id=nb.id, currency="EUR", amount=amount)).id
        return {"url": url, "pipeline": nb.id, "deals": made, "principal": principal,
                "stages": {st.name: st.id for st in nb.stages}}


@pytest.fixture
def tab(browser: Any, live_server: Any) -> Iterator[Tab]:
    t = Tab(browser, live_server.url)
    yield t
    t.close()


def _column(page: Any, stage_id: int) -> Any:
    return page.locator(f'.kcol[data-stage-id="{stage_id}"]')


def _open_board(tab: Tab, live_server: Any, data: dict[str, Any]) -> Any:
    tab.login(live_server.seeded.emails["admin"])
    page = tab.page
    page.goto(f"{live_server.url}/sales/pipeline?pipeline={data['pipeline']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Pipeline: New business")
    return page


def test_drag_to_next_stage_updates_totals(tab: Tab, live_server: Any,
                                           board_data: dict[str, Any]) -> None:
    page = _open_board(tab, live_server, board_data)
    st, deal_id = board_data["stages"], board_data["deals"]["Drag me"]
    qual, needs = _column(page, st["Qualification"]), _column(page, st["Needs analysis"])
    expect(needs.locator('[data-total="count_text"]')).to_have_text("0 deals")
    qual_before = qual.locator('[data-total="count_text"]').inner_text()
    page.drag_and_drop(f"#deal-{deal_id}", f'.kcol[data-stage-id="{st["Needs analysis"]}"] '
                                          ".kcol-cards")
    expect(needs.locator(f"#deal-{deal_id}")).to_be_visible()
    expect(needs.locator('[data-total="count_text"]')).to_have_text("1 deal")
    expect(needs.locator('[data-total="amount_text"]')).to_have_text("€1,000.00")
    expect(needs.locator('[data-total="weighted_text"]')).to_have_text("€250.00")  # 25 %
    expect(qual.locator('[data-total="count_text"]')).not_to_have_text(qual_before)
    expect(page.locator("#board-status")).to_have_text("Moved Drag me to Needs analysis.")
    expect(page.locator(f"#deal-{deal_id}")).to_have_attribute("data-version", "2")
    expect(page.locator(f"#deal-{deal_id} .kcard-facts")).to_contain_text("25 %")
    page.screenshot(path=SCREENSHOT, full_page=True)
    # it stuck: the server has the move and its history
    page.reload()
    expect(_column(page, st["Needs analysis"]).locator(f"#deal-{deal_id}")).to_be_visible()
    with dbmod.session_scope(board_data["url"], write=False) as s:
        moves = s.execute(select(DealStageChange.to_stage_id).where(
            DealStageChange.deal_id == deal_id).order_by(DealStageChange.id)).scalars().all()
    assert moves == [st["Qualification"], st["Needs analysis"]]
    assert tab.errors == [], tab.errors


def test_keyboard_moves_a_card_and_announces_it(tab: Tab, live_server: Any,
                                                board_data: dict[str, Any]) -> None:
    page = _open_board(tab, live_server, board_data)
    st, deal_id = board_data["stages"], board_data["deals"]["Keyboard deal"]
    card = page.locator(f"#deal-{deal_id}")
    card.focus()
    expect(card).to_be_focused()
    # Tab from the card: its name link, then the stage select; choose, Tab to Move, Enter.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    select = page.get_by_label("Stage of Keyboard deal")
    expect(select).to_be_focused()
    select.select_option(label="Proposal")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Move Keyboard deal")).to_be_focused()
    page.keyboard.press("Enter")
    proposal = _column(page, st["Proposal"])
    expect(proposal.locator(f"#deal-{deal_id}")).to_be_visible()
    expect(page.locator("#board-status")).to_have_text("Moved Keyboard deal to Proposal.")
    expect(card).to_be_focused()  # the focus stays on the moved card
    expect(proposal.locator('[data-total="count_text"]')).to_have_text("1 deal")
    expect(proposal.locator('[data-total="amount_text"]')).to_have_text("€200.00")
    # the deal's page lists both stages it has been in
    page.get_by_role("link", name="Keyboard deal").click()
    page.wait_for_url(f"{live_server.url}/sales/deals/{deal_id}")
    expect(page.locator(".stage-history li")).to_have_count(2)
    expect(page.locator(".stage-history li").last).to_contain_text("Qualification → Proposal")
    page.screenshot(path=DETAIL_SCREENSHOT, full_page=True)
    assert tab.errors == [], tab.errors


def test_lost_stage_asks_for_the_reason(tab: Tab, live_server: Any,
                                        board_data: dict[str, Any]) -> None:
    page = _open_board(tab, live_server, board_data)
    st, deal_id = board_data["stages"], board_data["deals"]["Losing deal"]
    page.get_by_label("Stage of Losing deal").select_option(label="Closed lost")
    page.get_by_role("button", name="Move Losing deal").click()
    dialog = page.locator("#lost-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Lost reason").select_option("competitor")
    dialog.get_by_role("button", name="Mark as lost").click()
    lost = _column(page, st["Closed lost"])
    expect(lost.locator(f"#deal-{deal_id}")).to_be_visible()
    expect(lost.locator('[data-total="count_text"]')).to_have_text("1 deal")
    with dbmod.session_scope(board_data["url"], write=False) as s:
        deal = deals.get_deal(s, board_data["principal"], deal_id)
        assert (deal.status, deal.lost_reason) == ("lost", "competitor")
    assert tab.errors == [], tab.errors


def test_stale_card_is_refused_and_reloaded(tab: Tab, live_server: Any,
                                            board_data: dict[str, Any]) -> None:
    page = _open_board(tab, live_server, board_data)
    st, deal_id = board_data["stages"], board_data["deals"]["Stale deal"]
    expect(page.locator(f"#deal-{deal_id}")).to_have_attribute("data-version", "1")
    with dbmod.session_scope(board_data["url"]) as s:  # someone else edits it meanwhile
        deal = deals.get_deal(s, board_data["principal"], deal_id, "update")
        deals.update_deal(s, board_data["principal"], deal, DealUpdate(amount="75.00"))
    page.drag_and_drop(f"#deal-{deal_id}", f'.kcol[data-stage-id="{st["Negotiation"]}"] '
                                          ".kcol-cards")
    alert = page.locator("#board-alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Someone else changed Stale deal")
    card = page.locator(f"#deal-{deal_id}")
    expect(card).to_have_attribute("data-version", "2")  # reloaded as it is now
    expect(card.locator('[data-field="amount"]')).to_have_text("€75.00")
    expect(_column(page, st["Qualification"]).locator(f"#deal-{deal_id}")).to_be_visible()
    expect(_column(page, st["Negotiation"]).locator(".kcard")).to_have_count(0)
    # the reloaded card moves fine
    page.drag_and_drop(f"#deal-{deal_id}", f'.kcol[data-stage-id="{st["Negotiation"]}"] '
                                          ".kcol-cards")
    expect(_column(page, st["Negotiation"]).locator(f"#deal-{deal_id}")).to_be_visible()
    expect(page.locator("#board-alert")).to_be_hidden()
    expect(page.locator("#board-status")).to_have_text(re.compile("Moved Stale deal"))
    # Chromium logs the refused request itself; nothing else (no CSP or script error)
    others = [e for e in tab.errors if "status of 412" not in e]
    assert others == [] and len(tab.errors) == 1, tab.errors
