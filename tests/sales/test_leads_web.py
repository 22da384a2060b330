"""The lead pages: list (filters, search, SLA badge, score), detail (BANT, engagements, score
factors, status change with CSRF and version), and the create form."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from accord.core import db as dbmod
from accord.core.clock import utcnow
from accord.models import User
from accord.models.sales import Lead
from accord.sales import leads
from accord.sales.leads_schemas import LeadCreate
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
