"""The deal pages over HTTP: the board (cards, totals, filters, "more"), the list, a deal's page
with its edit and move forms, and the fragments the board's script asks for."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.models import Deal, User
from accord.sales import deals
from accord.sales.deals_schemas import DealCreate
from tests.access.helpers import as_admin, seed_customer
from tests.sales.test_deals_fixtures import new_business, snapshot
from tests.web.seed import csrf_of


def _seed(url: str, owner_id: int | None, team_id: int | None, pipeline_id: int,
          **fields: Any) -> int:
    with dbmod.session_scope(url) as s:
        principal = as_admin(owner_id, team_id) if owner_id else as_admin(1, None)
        return deals.create_deal(s, principal, DealCreate(
            pipeline_id=pipeline_id, currency=fields.pop("currency", "EUR"), **fields)).id


def _browser(signed_in_as: Any, role: str = "admin") -> tuple[Any, str]:
    b = signed_in_as(role)
    return b, csrf_of(b.get("/sales/pipeline").text)


def _card_ids(html: str, stage_id: int) -> list[int]:
    block = html.split(f'<ol class="kcol-cards" data-stage-id="{stage_id}"', 1)[1]
    block = block.split("</ol>", 1)[0]
    return [int(i) for i in re.findall(r'data-deal-id="(\d+)"', block)]


def test_board_page_shows_cards_totals_and_filters(db, signed_in_as):
    nb = new_business(db)
    q = nb["stages"]["Qualification"]
    b, _ = _browser(signed_in_as)
    older = _seed(db, None, None, nb["id"], name="Older", amount="100.00",
                  expected_close_date="2026-12-03")
    xss = _seed(db, None, None, nb["id"], name="<script>alert(1)</script>", amount="250.50",
                expected_close_date="2027-01-10")
    r = b.get("/sales/pipeline")
    assert r.status_code == 200, r.text
    assert _card_ids(r.text, q) == [xss, older]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "<script>alert(1)" not in r.text
    totals = r.text.split(f'data-totals-for="{q}"', 1)[1].split("</dl>", 1)[0]
    assert "2 deals" in totals and "€350.50" in totals and "€35.05" in totals  # 10 % weighted
    # server-side filters
    r = b.get("/sales/pipeline", params={"pipeline": nb["id"], "close_month": "2026-12"})
    assert _card_ids(r.text, q) == [older]
    r = b.get("/sales/pipeline", params={"close_month": "December"})
    assert r.status_code == 422 and "close_month" in r.text
    # the totals the script refreshes, formatted for the viewer
    r = b.get(f"/sales/pipeline/{nb['id']}/totals")
    assert r.status_code == 200
    assert r.json()[str(q)] == {"count": 2, "count_text": "2 deals",
                                "amount_text": "€350.50", "weighted_text": "€35.05"}


def test_more_cards_pages_by_keyset(db, signed_in_as):
    nb = new_business(db)
    q = nb["stages"]["Qualification"]
    b, _ = _browser(signed_in_as)
    ids = [_seed(db, None, None, nb["id"], name=f"D{i}") for i in range(deals.BOARD_PAGE + 2)]
    r = b.get("/sales/pipeline")
    shown = _card_ids(r.text, q)
    assert shown == list(reversed(ids))[:deals.BOARD_PAGE]
    more = re.search(rf'hx-get="(/sales/pipeline/{nb["id"]}/stages/{q}/cards\?before=\d+)"',
                     r.text)
    assert more, "no 'More deals' link"
    r = b.get(more.group(1), headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert [int(i) for i in re.findall(r'data-deal-id="(\d+)"', r.text)] == [ids[1], ids[0]]
    assert "More deals" not in r.text


def test_card_form_moves_without_javascript_and_checks_version(db, signed_in_as):
    nb = new_business(db)
    st = nb["stages"]
    b, csrf = _browser(signed_in_as)
    did = _seed(db, None, None, nb["id"], name="Form move")
    form = {"csrf_token": csrf, "version": "1", "stage_id": str(st["Proposal"]),
            "next": f"/sales/pipeline?pipeline={nb['id']}"}
    r = b.post(f"/sales/deals/{did}/move", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/sales/pipeline?pipeline={nb['id']}"
    assert _card_ids(b.get("/sales/pipeline").text, st["Proposal"]) == [did]
    before = snapshot(db, skip=("denied", "read"))
    r = b.post(f"/sales/deals/{did}/move", data={**form, "stage_id": str(st["Negotiation"])})
    assert r.status_code == 412 and "Someone else changed this deal" in r.text  # stale version
    r = b.post(f"/sales/deals/{did}/move",
               data={**form, "version": "2", "stage_id": str(st["Closed lost"])})
    assert r.status_code == 422 and "lost_reason" in r.text
    r = b.post(f"/sales/deals/{did}/move", data={**form, "csrf_token": "forged", "version": "2"})
    assert r.status_code == 403
    assert snapshot(db, skip=("denied", "read")) == before
    r = b.post(f"/sales/deals/{did}/move", data={**form, "version": "2", "next": "",
                                                  "stage_id": str(st["Closed lost"]),
                                                  "lost_reason": "timing"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/sales/deals/{did}?done=moved"
    page = b.get(r.headers["location"]).text
    assert "Deal moved." in page and 'data-field="lost_reason">Timing' in page
    assert page.count("<li>\n        <time") == 3  # created, → Proposal, → Closed lost


def test_deal_page_edit_form(db, signed_in_as):
    nb = new_business(db)
    b, csrf = _browser(signed_in_as)
    did = _seed(db, None, None, nb["id"], name="Editable", amount="10.00")
    page = b.get(f"/sales/deals/{did}")
    assert page.status_code == 200 and "Stage history" in page.text
    form = {"csrf_token": csrf, "version": "1", "name": "Edited", "amount": "99.90",
            "currency": "usd", "probability": "35", "expected_close_date": "2027-02-01",
            "forecast_category": "commit", "competitors": "Globex, Initech", "lost_note": ""}
    r = b.post(f"/sales/deals/{did}/edit", data={**form, "amount": "-5"})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    r = b.post(f"/sales/deals/{did}/edit", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = b.get(r.headers["location"]).text
    assert "Changes saved." in page and "Edited" in page and "US$99.90" in page
    assert 'data-field="probability">35 %' in page and "Globex, Initech" in page
    r = b.post(f"/sales/deals/{did}/edit", data={**form, "name": "Stale"})
    assert r.status_code == 412 and 'value="Stale"' not in r.text and 'value="Edited"' in r.text


def test_list_page_filters_and_card_fragment(db, signed_in_as):
    nb = new_business(db)
    b, _ = _browser(signed_in_as)
    a = _seed(db, None, None, nb["id"], name="Alpha deal", amount="500.00",
              expected_close_date="2026-12-09")
    z = _seed(db, None, None, nb["id"], name="Zulu deal", amount="20.00")
    r = b.get("/sales/deals")
    assert r.status_code == 200 and "Alpha deal" in r.text and "Zulu deal" in r.text
    r = b.get("/sales/deals", params={"close_month": "2026-12"})
    assert "Alpha deal" in r.text and "Zulu deal" not in r.text
    r = b.get("/sales/deals", params={"q": "Zul", "status": "open"})
    assert "Zulu deal" in r.text and "Alpha deal" not in r.text
    r = b.get("/sales/deals", params={"status": "maybe"})
    assert r.status_code == 422
    r = b.get(f"/sales/deals/{a}/card", params={"next": "/sales/pipeline"})
    assert r.status_code == 200 and r.text.strip().startswith(f'<li class="kcard kcard-movable" '
                                                              f'id="deal-{a}"')
    assert z != a


def test_pages_follow_the_record_scope(db, signed_in_as, make_actor):
    nb = new_business(db)
    outsider = make_actor("sales", team="beta")
    theirs = _seed(db, outsider.id, outsider.team_id, nb["id"], name="Secret deal")
    b, _ = _browser(signed_in_as, "sales")
    assert "Secret deal" not in b.get("/sales/pipeline").text
    assert "Secret deal" not in b.get("/sales/deals").text
    assert b.get(f"/sales/deals/{theirs}").status_code == 404
    assert b.get(f"/sales/deals/{theirs}/card").status_code == 404
    marketing, _ = _browser(signed_in_as, "marketing")  # reads every deal, changes none
    page = marketing.get("/sales/pipeline").text
    assert "Secret deal" in page and "kcard-move" not in page
    assert "Edit deal" not in marketing.get(f"/sales/deals/{theirs}").text


# --- a new deal, reassigning ---------------------------------------------------------------------

def _user_id(db: str, role: str) -> tuple[int, int | None]:
    """The newest web user of `role` (what `signed_in_as(role)` just made)."""
    with dbmod.session_scope(db, write=False) as s:
        user = s.execute(select(User).where(User.email.like(f"{role}-%-web@example.com"))
                         .order_by(User.id.desc())).scalars().first()
        return user.id, user.team_id


def _deal_row(db: str, deal_id: int) -> Deal:
    with dbmod.session_scope(db, write=False) as s:
        deal = s.get(Deal, deal_id)
        s.expunge(deal)
        return deal


def _deal_count(db: str) -> int:
    with dbmod.session_scope(db, write=False) as s:
        return s.execute(select(func.count()).select_from(Deal)).scalar_one()


def test_new_deal_form_creates_a_deal(db, signed_in_as):
    nb = new_business(db)
    st = nb["stages"]
    b, csrf = _browser(signed_in_as, "sales")
    me, team = _user_id(db, "sales")
    cid = seed_customer(db, me, team, first_name="Ada", last_name="Lovelace")
    board = b.get("/sales/pipeline").text
    assert f'href="/sales/deals/new?pipeline_id={nb["id"]}"' in board
    assert 'href="/sales/deals/new"' in b.get("/sales/deals").text
    page = b.get("/sales/deals/new", params={"customer_id": cid})
    assert page.status_code == 200, page.text
    assert f'name="customer_id" type="text" value="{cid}"' in page.text
    assert "Ada Lovelace" in page.text and 'name="currency" type="text" value="EUR"' in page.text
    assert f'<option value="{st["Qualification"]}" selected>New business › Qualification' \
        in page.text  # the first open stage
    assert f'value="{st["Closed won"]}"' not in page.text  # deals start in an open stage
    form = {"csrf_token": csrf, "name": "Big order", "stage_id": str(st["Proposal"]),
            "amount": "1200.50", "currency": "usd", "expected_close_date": "2027-03-31",
            "forecast_category": "commit", "customer_id": str(cid), "account_id": "",
            "competitors": "Globex, Initech, globex"}
    r = b.post("/sales/deals/new", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    did = int(re.fullmatch(r"/sales/deals/(\d+)\?done=created", r.headers["location"]).group(1))
    deal = _deal_row(db, did)
    assert (deal.name, deal.pipeline_id, deal.stage_id, deal.amount, deal.currency) == (
        "Big order", nb["id"], st["Proposal"], Decimal("1200.50"), "USD")
    assert (deal.customer_id, deal.owner_id, deal.forecast_category, deal.source) == (
        cid, me, "commit", "manual")
    assert deal.competitors == ["Globex", "Initech"] and str(deal.expected_close_date) == \
        "2027-03-31"
    assert "Deal created." in b.get(r.headers["location"]).text


def test_new_deal_form_errors_keep_the_values(db, signed_in_as, make_actor):
    nb = new_business(db)
    st = nb["stages"]
    b, csrf = _browser(signed_in_as, "sales")
    form = {"csrf_token": csrf, "name": "Kept name", "stage_id": str(st["Negotiation"]),
            "amount": "-5", "currency": "EUR", "expected_close_date": "", "customer_id": "",
            "forecast_category": "best_case", "account_id": "", "competitors": "Globex"}
    r = b.post("/sales/deals/new", data=form)
    assert r.status_code == 422
    assert 'id="n-amount" name="amount" type="text" value="-5"' in r.text
    assert 'aria-describedby="err-amount"' in r.text and 'id="err-amount"' in r.text
    assert 'value="Kept name"' in r.text and 'value="Globex"' in r.text
    assert f'<option value="{st["Negotiation"]}" selected>' in r.text
    assert '<option value="best_case" selected>' in r.text
    r = b.post("/sales/deals/new", data={**form, "amount": "10", "currency": "XXQ"})
    assert r.status_code == 422 and 'id="err-currency"' in r.text
    r = b.post("/sales/deals/new", data={**form, "amount": "10", "stage_id": str(st["Closed won"])})
    assert r.status_code == 422 and 'id="err-stage_id"' in r.text
    # a customer the viewer may not read reads like one that does not exist
    outsider = make_actor("sales", team="beta")
    theirs = seed_customer(db, outsider.id, outsider.team_id, first_name="Hidden",
                           last_name="Person")
    r = b.post("/sales/deals/new", data={**form, "amount": "10", "customer_id": str(theirs)})
    assert r.status_code == 422 and 'id="err-customer_id"' in r.text
    assert f"customer {theirs} does not exist" in r.text and "Hidden" not in r.text
    page = b.get("/sales/deals/new", params={"customer_id": theirs})
    assert f"customer {theirs} does not exist" in page.text and "Hidden" not in page.text
    assert _deal_count(db) == 0


def test_new_deal_needs_the_create_right(db, signed_in_as):
    nb = new_business(db)
    b, csrf = _browser(signed_in_as, "marketing")  # reads deals, creates none
    assert "/sales/deals/new" not in b.get("/sales/pipeline").text
    assert "/sales/deals/new" not in b.get("/sales/deals").text
    assert b.get("/sales/deals/new").status_code == 403
    r = b.post("/sales/deals/new", data={"csrf_token": csrf, "name": "Nope", "currency": "EUR",
                                         "stage_id": str(nb["stages"]["Qualification"])})
    assert r.status_code == 403 and _deal_count(db) == 0


def test_reassign_a_deal(db, signed_in_as, make_actor):
    nb = new_business(db)
    b, csrf = _browser(signed_in_as, "admin")
    new_owner = make_actor("sales")
    did = _seed(db, None, None, nb["id"], name="To hand over")
    page = b.get(f"/sales/deals/{did}").text
    assert f'action="/sales/deals/{did}/assign"' in page
    assert f'<option value="{new_owner.id}"' in page
    form = {"csrf_token": csrf, "version": "1", "owner_id": str(new_owner.id)}
    r = b.post(f"/sales/deals/{did}/assign", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/sales/deals/{did}?done=assigned"
    deal = _deal_row(db, did)
    assert (deal.owner_id, deal.version) == (new_owner.id, 2)
    assert "Owner changed." in b.get(r.headers["location"]).text
    # a stale form (version 1 again) changes nothing and says why
    admin_id, _ = _user_id(db, "admin")
    r = b.post(f"/sales/deals/{did}/assign", data={**form, "owner_id": str(admin_id)})
    assert r.status_code == 412 and "Someone else changed this deal" in r.text
    assert _deal_row(db, did).owner_id == new_owner.id
    r = b.post(f"/sales/deals/{did}/assign", data={**form, "version": "2", "owner_id": "x"})
    assert r.status_code == 422 and 'id="err-owner_id"' in r.text


def test_reassign_is_refused_to_a_salesperson(db, signed_in_as, make_actor):
    nb = new_business(db)
    b, csrf = _browser(signed_in_as, "sales")
    me, team = _user_id(db, "sales")
    other = make_actor("sales")
    did = _seed(db, me, team, nb["id"], name="Mine")
    page = b.get(f"/sales/deals/{did}").text
    assert "Edit deal" in page and "/assign" not in page  # may edit, may not reassign
    before = snapshot(db)
    r = b.post(f"/sales/deals/{did}/assign",
               data={"csrf_token": csrf, "version": "1", "owner_id": str(other.id)})
    assert r.status_code == 403
    assert snapshot(db) == before and _deal_row(db, did).owner_id == me


def test_hostile_deal_name_is_escaped_everywhere(db, signed_in_as):
    nb = new_business(db)
    b, csrf = _browser(signed_in_as, "admin")
    r = b.post("/sales/deals/new", data={
        "csrf_token": csrf, "name": "<script>alert(1)</script>", "currency": "EUR",
        "stage_id": str(nb["stages"]["Qualification"]), "forecast_category": "pipeline"},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    did = int(r.headers["location"].split("/")[-1].split("?")[0])
    for url in ("/sales/pipeline", "/sales/deals", f"/sales/deals/{did}"):
        html = b.get(url).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
        assert "<script>alert(1)" not in html, url
