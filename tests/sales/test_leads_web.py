"""The lead pages: list (filters, search, SLA badge, score), detail (BANT, engagements, score
factors, status change with CSRF and version), the create and edit forms, reassignment and
conversion through the page."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update

from accord.core import db as dbmod
from accord.core.clock import utcnow
from accord.customers import service as customers
from accord.customers.schemas import CustomerCreate
from accord.models import Account, Contact, Customer, Deal, User
from accord.models.sales import Lead
from accord.sales import leads
from accord.sales.leads_schemas import LeadCreate, LeadStatusIn
from accord.sales.pipelines import ensure_default_pipelines
from tests.access.helpers import as_admin


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def user_of(db, browser_role: str) -> User:
    with dbmod.session_scope(db, write=False) as s:
        user = s.scalars(select(User).where(User.role == browser_role).order_by(User.id.desc())
                         ).first()
        s.expunge(user)
        return user


def seed(db, user: User, **fields) -> int:
    with dbmod.session_scope(db) as s:
        return leads.create_lead(s, as_admin(user.id, user.team_id), LeadCreate(**fields)).id


def test_list_filters_search_and_sla_badge(db, signed_in_as):
    browser = signed_in_as("sales")
    me = user_of(db, "sales")
    late = seed(db, me, last_name="Zebedee", company="Late Ltd", email="late@example.com")
    fresh = seed(db, me, last_name="Quimby", company="Early plc")
    with dbmod.session_scope(db) as s:
        s.execute(update(Lead).where(Lead.id == late)
                  .values(first_touch_due_at=utcnow() - timedelta(hours=2), score=77))
    page = browser.get("/sales/leads")
    assert page.status_code == 200 and "Zebedee" in page.text and "Quimby" in page.text
    assert 'data-sla="breached"' in page.text and 'data-sla="due"' in page.text
    assert ">77<" in page.text
    only = browser.get("/sales/leads", params={"sla": "overdue", "owner_id": "me"})
    assert "Zebedee" in only.text and "Quimby" not in only.text
    found = browser.get("/sales/leads", params={"q": "early"})
    assert "Quimby" in found.text and "Zebedee" not in found.text
    partial = browser.get("/sales/leads", params={"status": "new"},
                          headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text
    bad = browser.get("/sales/leads", params={"status": "<b>bogus</b>"})
    assert bad.status_code == 422 and "<b>bogus</b>" not in bad.text
    assert fresh != late


def test_detail_and_status_change(db, signed_in_as):
    browser = signed_in_as("sales")
    me = user_of(db, "sales")
    lid = seed(db, me, last_name="Detail", budget="1000", budget_currency="EUR",
               authority="influencer", need="A CRM <b>now</b>", timeline="quarter")
    page = browser.get(f"/sales/leads/{lid}")
    assert page.status_code == 200
    assert "A CRM &lt;b&gt;now&lt;/b&gt;" in page.text and "Influencer" in page.text
    assert "Score factors" in page.text and "Engagement" in page.text
    token = csrf_of(page.text)
    # no CSRF token: refused, nothing changes
    r = browser.post(f"/sales/leads/{lid}/status", data={"status": "working", "version": "1"})
    assert r.status_code == 403
    # disqualifying without a reason: 422 with the message on the page
    r = browser.post(f"/sales/leads/{lid}/status",
                     data={"status": "disqualified", "version": "1", "csrf_token": token})
    assert r.status_code == 422 and "needs a reason" in r.text
    # a stale version: 412
    r = browser.post(f"/sales/leads/{lid}/status",
                     data={"status": "working", "version": "9", "csrf_token": token})
    assert r.status_code == 412
    r = browser.post(f"/sales/leads/{lid}/status", follow_redirects=False,
                     data={"status": "working", "version": "1", "csrf_token": token})
    assert r.status_code == 303
    with dbmod.session_scope(db, write=False) as s:
        lead = s.get(Lead, lid)
        assert lead.status == "working" and lead.first_touched_at is not None


def test_other_teams_lead_is_not_found(db, signed_in_as, make_actor):
    browser = signed_in_as("sales")
    outsider = make_actor("sales", team="beta")
    with dbmod.session_scope(db, write=False) as s:
        other = s.get(User, outsider.id)
        s.expunge(other)
    lid = seed(db, other, last_name="Hidden")
    assert browser.get(f"/sales/leads/{lid}").status_code == 404
    assert "Hidden" not in browser.get("/sales/leads").text


def test_create_form(db, signed_in_as):
    browser = signed_in_as("sales")
    form = browser.get("/sales/leads/new")
    assert form.status_code == 200
    token = csrf_of(form.text)
    r = browser.post("/sales/leads", data={"csrf_token": token, "last_name": "Web",
                                           "email": "broken"})
    assert r.status_code == 422 and "e-mail" in r.text
    r = browser.post("/sales/leads", follow_redirects=False,
                     data={"csrf_token": token, "last_name": "Web", "email": "web@example.com",
                           "budget": "500", "budget_currency": "GBP"})
    assert r.status_code == 303
    with dbmod.session_scope(db, write=False) as s:
        lead = s.scalars(select(Lead)).one()
        assert (lead.source, lead.email_normalized, lead.budget_currency) == \
            ("manual", "web@example.com", "GBP")
    support = signed_in_as("support")
    assert support.get("/sales/leads/new").status_code == 403


# --- edit, reassign, convert (the lead's page as the salesperson's whole workspace) -------------

def team_browser(app, db, role: str, team: str, name: str) -> tuple[Any, User]:
    """A signed-in browser for a user in a team (the team scope needs one)."""
    from fastapi.testclient import TestClient

    from tests.web.conftest import login
    from tests.web.seed import make_user

    email = f"{name.lower()}@example.com"
    with dbmod.session_scope(db) as s:
        make_user(s, role, email, name, team=team)
        user = s.scalars(select(User).where(User.email == email)).one()
        s.expunge(user)
    client = TestClient(app)
    assert login(client, email).status_code == 303
    return client, user


def qualified(db, user: User, **fields) -> int:
    with dbmod.session_scope(db) as s:
        ensure_default_pipelines(s)
        principal = as_admin(user.id, user.team_id)
        lead = leads.create_lead(s, principal, LeadCreate(**fields))
        leads.change_status(s, principal, lead, LeadStatusIn(status="qualified"))
        return lead.id


def lead_row(db, lead_id: int) -> dict[str, Any]:
    with dbmod.session_scope(db, write=False) as s:
        lead = s.get(Lead, lead_id)
        return {k: getattr(lead, k) for k in ("status", "version", "company", "budget",
                                              "budget_currency", "authority", "need",
                                              "timeline", "email", "owner_id", "team_id",
                                              "customer_id", "account_id", "contact_id")}


EDIT = {"first_name": "Ines", "last_name": "Okafor", "email": "ines@trailworks.example",
        "phone": "", "company": "Trailworks Ltd", "job_title": "Buyer", "website": "",
        "industry": "Retail", "employees": "120", "country": "GB", "notes": "",
        "budget": "12000.00", "budget_currency": "GBP", "authority": "decision_maker",
        "need": "A CRM", "timeline": "quarter"}


def test_edit_lead_saves_refuses_stale_and_shows_field_errors(db, signed_in_as):
    browser = signed_in_as("sales")
    me = user_of(db, "sales")
    lid = seed(db, me, last_name="Okafor", company="Old name")
    page = browser.get(f"/sales/leads/{lid}")
    assert f'href="/sales/leads/{lid}/edit"' in page.text
    form = browser.get(f"/sales/leads/{lid}/edit")
    assert form.status_code == 200
    assert 'value="Old name"' in form.text and 'name="version" value="1"' in form.text
    token = csrf_of(form.text)
    # a field error: shown next to the field, 422, nothing saved
    r = browser.post(f"/sales/leads/{lid}/edit",
                     data={**EDIT, "email": "not-an-address", "version": "1",
                           "csrf_token": token})
    assert r.status_code == 422
    assert 'id="err-email"' in r.text and 'value="not-an-address"' in r.text
    r = browser.post(f"/sales/leads/{lid}/edit",
                     data={**EDIT, "employees": "lots", "budget_currency": "", "version": "1",
                           "csrf_token": token})
    assert r.status_code == 422 and 'id="err-employees"' in r.text
    r = browser.post(f"/sales/leads/{lid}/edit",
                     data={**EDIT, "budget_currency": "", "version": "1", "csrf_token": token})
    assert r.status_code == 422 and 'id="err-budget_currency"' in r.text
    assert lead_row(db, lid)["company"] == "Old name" and lead_row(db, lid)["version"] == 1
    # the happy path
    r = browser.post(f"/sales/leads/{lid}/edit", follow_redirects=False,
                     data={**EDIT, "version": "1", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/sales/leads/{lid}?done=updated"
    row = lead_row(db, lid)
    assert (row["company"], row["budget"], row["budget_currency"], row["authority"],
            row["timeline"], row["email"], row["version"]) == \
        ("Trailworks Ltd", Decimal("12000.00"), "GBP", "decision_maker", "quarter",
         "ines@trailworks.example", 2)
    # the same form again (version 1): stale, 412, the message, nothing changes
    r = browser.post(f"/sales/leads/{lid}/edit",
                     data={**EDIT, "company": "Lost update", "version": "1",
                           "csrf_token": token})
    assert r.status_code == 412 and "Someone else changed this lead" in r.text
    assert 'value="Lost update"' in r.text  # the user's typing is kept to copy from
    assert lead_row(db, lid)["company"] == "Trailworks Ltd"
    # no version at all: refused
    r = browser.post(f"/sales/leads/{lid}/edit", data={**EDIT, "csrf_token": token})
    assert r.status_code == 428 and lead_row(db, lid)["version"] == 2


def test_edit_is_offered_only_to_who_may_update(app, db):
    owner, owner_user = team_browser(app, db, "sales", "north", "Olive")
    colleague, _ = team_browser(app, db, "sales", "north", "Colin")
    lid = seed(db, owner_user, last_name="Shared")
    page = colleague.get(f"/sales/leads/{lid}")
    assert page.status_code == 200 and f"/sales/leads/{lid}/edit" not in page.text
    assert colleague.get(f"/sales/leads/{lid}/edit").status_code == 403
    token = csrf_of(page.text)
    r = colleague.post(f"/sales/leads/{lid}/edit",
                       data={**EDIT, "version": "1", "csrf_token": token})
    assert r.status_code == 403 and lead_row(db, lid)["company"] is None
    assert owner.get(f"/sales/leads/{lid}/edit").status_code == 200
    owner.close()
    colleague.close()


def test_reassign_by_manager_and_refused_for_sales(app, db):
    manager, _ = team_browser(app, db, "manager", "north", "Mona")
    seller, seller_user = team_browser(app, db, "sales", "north", "Sid")
    other, other_user = team_browser(app, db, "sales", "north", "Oda")
    outsider, outsider_user = team_browser(app, db, "sales", "south", "Sven")
    lid = seed(db, other_user, last_name="Moving")
    # a sales user sees a team-mate's lead but no reassign form, and is refused
    page = seller.get(f"/sales/leads/{lid}")
    assert page.status_code == 200 and "/assign" not in page.text
    before = lead_row(db, lid)
    r = seller.post(f"/sales/leads/{lid}/assign",
                    data={"owner_id": str(seller_user.id), "version": "1",
                          "csrf_token": csrf_of(page.text)})
    assert r.status_code == 403 and lead_row(db, lid) == before
    # ... even on their own lead (assigning is a manager's action)
    own = seed(db, seller_user, last_name="Mine")
    page = seller.get(f"/sales/leads/{own}")
    r = seller.post(f"/sales/leads/{own}/assign",
                    data={"owner_id": str(other_user.id), "version": "1",
                          "csrf_token": csrf_of(page.text)})
    assert r.status_code == 403 and lead_row(db, own)["owner_id"] == seller_user.id
    # the manager: the select lists the team, not the other team
    page = manager.get(f"/sales/leads/{lid}")
    assert f'action="/sales/leads/{lid}/assign"' in page.text
    assert f'value="{seller_user.id}"' in page.text and "Sven" not in page.text
    token = csrf_of(page.text)
    r = manager.post(f"/sales/leads/{lid}/assign",
                     data={"owner_id": str(outsider_user.id), "version": "1",
                           "csrf_token": token})
    assert r.status_code == 422 and "Choose one of the people listed" in r.text
    assert lead_row(db, lid) == before
    r = manager.post(f"/sales/leads/{lid}/assign",
                     data={"owner_id": str(seller_user.id), "version": "7",
                           "csrf_token": token})
    assert r.status_code == 412 and lead_row(db, lid) == before
    r = manager.post(f"/sales/leads/{lid}/assign", follow_redirects=False,
                     data={"owner_id": str(seller_user.id), "version": "1",
                           "csrf_token": token})
    assert r.status_code == 303
    after = lead_row(db, lid)
    assert (after["owner_id"], after["team_id"], after["version"]) == \
        (seller_user.id, seller_user.team_id, 2)
    for c in (manager, seller, other, outsider):
        c.close()


def _convert_form(html: str) -> dict[str, str]:
    block = html.split('action="/sales/leads/', 1)[1]
    block = block.split("/convert", 1)[1].split("</form>", 1)[0]
    fields = dict(re.findall(r'name="([a-z_]+)"[^>]*? value="([^"]*)"', block))
    selected = re.search(r'name="pipeline_id".*?<option value="(\d+)" selected', block, re.S)
    assert selected, "no pipeline preselected"
    fields["pipeline_id"] = selected.group(1)
    return fields


def test_convert_through_the_page(db, signed_in_as):
    browser = signed_in_as("sales")
    me = user_of(db, "sales")
    lid = qualified(db, me, first_name="Ines", last_name="Okafor",
                    email="ines.okafor@trailworks.example", company="Trailworks Ltd",
                    budget="12000.00", budget_currency="GBP", timeline="quarter")
    page = browser.get(f"/sales/leads/{lid}")
    assert page.status_code == 200 and f'action="/sales/leads/{lid}/convert"' in page.text
    form = _convert_form(page.text)
    assert form["deal_name"] == "Trailworks Ltd – new business"
    assert (form["amount"], form["currency"], form["create_deal"]) == ("12000.00", "GBP", "yes")
    assert 'name="expected_close_date"' in page.text and 'name="customer_id"' in page.text
    r = browser.post(f"/sales/leads/{lid}/convert", follow_redirects=False,
                     data={**form, "deal_name": "Trailworks CRM", "amount": "9500"})
    assert r.status_code == 303
    with dbmod.session_scope(db, write=False) as s:
        deal = s.scalars(select(Deal).where(Deal.lead_id == lid)).one()
        assert (deal.name, deal.amount, deal.currency) == \
            ("Trailworks CRM", Decimal("9500.00"), "GBP")
    assert r.headers["location"] == f"/sales/deals/{deal.id}"
    deal_page = browser.get(r.headers["location"])
    assert deal_page.status_code == 200 and "Trailworks CRM" in deal_page.text
    row = lead_row(db, lid)
    assert row["status"] == "converted" and row["customer_id"] and row["account_id"]
    # the converted lead links to what it became, and offers no edit or convert any more
    page = browser.get(f"/sales/leads/{lid}")
    assert f'href="/sales/deals/{deal.id}"' in page.text
    assert f'href="/customers/{row["customer_id"]}"' in page.text
    assert f"Contact #{row['contact_id']}" in page.text and "Trailworks Ltd (#" in page.text
    assert "/convert" not in page.text and f"/sales/leads/{lid}/edit" not in page.text
    assert browser.get(f"/sales/leads/{lid}/edit").status_code == 409


def test_convert_failure_shows_the_error_and_changes_nothing(db, signed_in_as):
    browser = signed_in_as("sales")
    me = user_of(db, "sales")
    lid = qualified(db, me, last_name="Atomic", email="a@atomic.example", company="Atomic plc",
                    budget="100.00", budget_currency="EUR")

    def counts() -> tuple[int, ...]:
        with dbmod.session_scope(db, write=False) as s:
            return tuple(s.scalar(select(func.count()).select_from(m))
                         for m in (Customer, Account, Contact, Deal))

    before, lead_before = counts(), lead_row(db, lid)
    page = browser.get(f"/sales/leads/{lid}")
    form = _convert_form(page.text)
    # the account is created first; the unknown customer then fails the whole conversion
    r = browser.post(f"/sales/leads/{lid}/convert", data={**form, "customer_id": "999999"})
    assert r.status_code == 422
    assert "not converted" in r.text and 'id="err-customer_id"' in r.text, r.text[-6000:]
    assert counts() == before and lead_row(db, lid) == lead_before
    # a currency that is not ISO 4217 (checked deep in the deal service)
    r = browser.post(f"/sales/leads/{lid}/convert", data={**form, "currency": "ZZZ"})
    assert r.status_code == 422 and 'id="err-currency"' in r.text
    assert 'value="ZZZ"' in r.text  # the form keeps what was typed
    assert counts() == before and lead_row(db, lid)["status"] == "qualified"
    # a stale form
    r = browser.post(f"/sales/leads/{lid}/convert", data={**form, "version": "99"})
    assert r.status_code == 412 and "Someone else changed this lead" in r.text
    assert counts() == before
    # without a deal: to the customer's page
    r = browser.post(f"/sales/leads/{lid}/convert", follow_redirects=False,
                     data={k: v for k, v in form.items() if k != "create_deal"})
    assert r.status_code == 303
    row = lead_row(db, lid)
    assert r.headers["location"] == f"/customers/{row['customer_id']}"
    assert row["status"] == "converted" and counts()[3] == before[3]


def test_matched_customer_is_shown_on_the_convert_form(db, signed_in_as):
    browser = signed_in_as("sales")
    me = user_of(db, "sales")
    with dbmod.session_scope(db) as s:
        known = customers.create_customer(s, as_admin(me.id, me.team_id), CustomerCreate(
            first_name="Known", last_name="Person",
            emails=[{"email": "known@example.com", "is_primary": True}])).id
    lid = qualified(db, me, last_name="Person", email="known@example.com",
                    budget="10.00", budget_currency="EUR")
    assert lead_row(db, lid)["customer_id"] == known
    page = browser.get(f"/sales/leads/{lid}")
    assert 'data-field="matched_customer"' in page.text
    assert f'href="/customers/{known}"' in page.text and 'name="customer_id"' not in page.text
    r = browser.post(f"/sales/leads/{lid}/convert", follow_redirects=False,
                     data=_convert_form(page.text))
    assert r.status_code == 303 and lead_row(db, lid)["customer_id"] == known


def test_hostile_company_is_escaped_on_edit_form_and_page(db, signed_in_as):
    browser = signed_in_as("sales")
    me = user_of(db, "sales")
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    lid = qualified(db, me, last_name="Evil", company=evil, budget="1.00",
                    budget_currency="EUR")
    for url in (f"/sales/leads/{lid}", f"/sales/leads/{lid}/edit"):
        page = browser.get(url)
        assert page.status_code == 200
        assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    # the deal name prefilled from the company is escaped inside its attribute too
    assert 'value="&lt;script&gt;' in browser.get(f"/sales/leads/{lid}").text


def test_activities_panel_is_included(db, signed_in_as):
    browser = signed_in_as("sales")
    lid = seed(db, user_of(db, "sales"), last_name="Busy")
    page = browser.get(f"/sales/leads/{lid}")
    assert f'hx-get="/sales/activities/panel?lead_id={lid}"' in page.text
    panel = browser.get(f"/sales/activities/panel?lead_id={lid}", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and 'id="sales-activities"' in panel.text
