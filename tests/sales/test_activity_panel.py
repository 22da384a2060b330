"""The activities panel of one customer, lead, deal or account: it lists the record's activities
(open ones on top, then newest first, with working "Complete" buttons) and its quick form logs
an activity linked to that record, going back to the record's page; records the viewer may not
read are a 404, as if they did not exist."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.core.db import session_scope
from accord.models.sales import Activity, Lead
from accord.sales import activities
from accord.sales.activities_schemas import LINKS, ActivityCreate
from tests.access.helpers import seed_customer
from tests.sales.test_activities import get_row, seed_account, seed_deal, seed_lead
from tests.sales.test_my_day import _me
from tests.web.seed import csrf_of

KINDS = ("customer_id", "lead_id", "deal_id", "account_id")
BACK = {"customer_id": "/customers/{}#sales-activities",
        "lead_id": "/sales/leads/{}#sales-activities",
        "deal_id": "/sales/deals/{}#sales-activities",
        "account_id": "/sales/activities/panel?account_id={}#sales-activities"}
HX = {"HX-Request": "true"}


def _record(db: str, kind: str, owner_id: int, team_id: int | None) -> int:
    if kind == "customer_id":
        return seed_customer(db, owner_id, team_id)
    if kind == "lead_id":
        return seed_lead(db, owner_id, team_id)
    if kind == "deal_id":
        return seed_deal(db, owner_id, team_id, name="Panel deal")
    return seed_account(db, owner_id, team_id)


def _log(db: str, principal: Any, kind: str, record_id: int, subject: str, **kw: Any) -> int:
    with session_scope(db) as s:
        return activities.create_activity(s, principal, ActivityCreate(
            kind=kw.pop("activity_kind", "task"), subject=subject, **{kind: record_id}, **kw)).id


def _row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="activity-(\d+)"', html)]


def _count(db: str) -> int:
    with session_scope(db, write=False) as s:
        return s.execute(select(func.count()).select_from(Activity)).scalar_one()


@pytest.mark.parametrize("kind", KINDS)
def test_panel_lists_and_logs_on_each_kind_of_record(db, signed_in_as, kind):
    browser = signed_in_as("sales")
    me = _me(db)
    rid = _record(db, kind, me.user_id, me.team_id)
    done_old = _log(db, me, kind, rid, "Old call", activity_kind="call", status="done")
    open_task = _log(db, me, kind, rid, "<script>alert(1)</script>")
    done_new = _log(db, me, kind, rid, "New note", activity_kind="note", status="done")
    other = _record(db, kind, me.user_id, me.team_id)
    _log(db, me, kind, other, "About another record")

    r = browser.get("/sales/activities/panel", params={kind: rid}, headers=HX)
    assert r.status_code == 200, r.text
    assert 'id="sales-activities"' in r.text and "<html" not in r.text  # a fragment
    assert f'name="{kind}" value="{rid}"' in r.text
    assert _row_ids(r.text) == [open_task, done_new, done_old]  # open on top, then newest
    assert "About another record" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "<script>alert" not in r.text
    back = BACK[kind].format(rid)
    complete = r.text.split(f"/sales/activities/{open_task}/complete", 1)[1].split("</form>")[0]
    assert f'name="next" value="{back}"' in complete.replace("&amp;", "&")

    csrf = csrf_of(browser.get("/sales/my-day").text)
    form = {"csrf_token": csrf, kind: str(rid), "kind": "call", "subject": "Logged here",
            "direction": "outbound", "duration_minutes": "5", "due_at": "", "body": "",
            "outcome": ""}
    r = browser.post("/sales/activities", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == back
    with session_scope(db, write=False) as s:
        a = s.execute(select(Activity).where(Activity.subject == "Logged here")).scalar_one()
        assert {k: getattr(a, k) for k in LINKS} == {k: rid if k == kind else None for k in LINKS}
        assert (a.kind, a.status, a.owner_id) == ("call", "done", me.user_id)

    # the HTMX path swaps the panel, with errors next to their fields and the link kept
    r = browser.post("/sales/activities", data={**form, "subject": ""}, headers=HX)
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    assert f'name="{kind}" value="{rid}"' in r.text
    r = browser.post("/sales/activities", data={**form, "subject": "Via HTMX"}, headers=HX)
    assert r.status_code == 200 and "Saved." in r.text and "Via HTMX" in r.text

    # a plain "Complete" from the panel goes back to the record's page
    r = browser.post(f"/sales/activities/{open_task}/complete",
                     data={"csrf_token": csrf, "next": back}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == back
    assert get_row(db, Activity, open_task).status == "done"
    # without JavaScript the panel is a page of its own (where an account's post lands)
    page = browser.get("/sales/activities/panel", params={kind: rid})
    assert page.status_code == 200 and "<html" in page.text and "Logged here" in page.text


def test_deal_page_shows_its_panel(db, signed_in_as):
    browser = signed_in_as("sales")
    me = _me(db)
    did = seed_deal(db, me.user_id, me.team_id, name="With activities")
    _log(db, me, "deal_id", did, "Send the offer")
    page = browser.get(f"/sales/deals/{did}")
    assert page.status_code == 200
    panel = page.text.split('id="sales-activities"', 1)[1]
    assert "Send the offer" in panel and f'name="deal_id" value="{did}"' in panel
    marketing = signed_in_as("marketing")  # reads deals, no activities at all
    page = marketing.get(f"/sales/deals/{did}")
    assert page.status_code == 200 and 'id="sales-activities"' not in page.text


@pytest.mark.parametrize("kind", KINDS)
def test_panel_refuses_records_the_viewer_cannot_read(db, signed_in_as, make_actor, kind):
    browser = signed_in_as("sales")
    outsider = make_actor("sales", team="beta")
    theirs = _record(db, kind, outsider.id, outsider.team_id)
    _log(db, outsider.principal, kind, theirs, "Their secret task")
    before = _count(db)
    r = browser.get("/sales/activities/panel", params={kind: theirs}, headers=HX)
    assert r.status_code == 404 and "Their secret task" not in r.text
    csrf = csrf_of(browser.get("/sales/my-day").text)
    r = browser.post("/sales/activities", data={"csrf_token": csrf, kind: str(theirs),
                                                "kind": "call", "subject": "Sneaky"},
                     headers=HX)
    assert r.status_code == 404
    assert browser.get("/sales/activities/panel", params={kind: 2**62}).status_code == 404
    assert _count(db) == before


def test_panel_needs_exactly_one_record(db, signed_in_as):
    browser = signed_in_as("sales")
    me = _me(db)
    cid = seed_customer(db, me.user_id, me.team_id)
    lid = seed_lead(db, me.user_id, me.team_id)
    assert browser.get("/sales/activities/panel", headers=HX).status_code == 422
    r = browser.get("/sales/activities/panel", params={"customer_id": cid, "lead_id": lid},
                    headers=HX)
    assert r.status_code == 422
    csrf = csrf_of(browser.get("/sales/my-day").text)
    r = browser.post("/sales/activities", data={"csrf_token": csrf, "customer_id": str(cid),
                                                "lead_id": str(lid), "kind": "call",
                                                "subject": "Two records"})
    assert r.status_code == 404 and _count(db) == 0


def test_a_call_logged_on_a_lead_is_its_first_touch(db, signed_in_as):
    browser = signed_in_as("sales")
    me = _me(db)
    lid = seed_lead(db, me.user_id, me.team_id)
    csrf = csrf_of(browser.get("/sales/my-day").text)
    form = {"csrf_token": csrf, "lead_id": str(lid), "kind": "task", "subject": "Plan a call",
            "due_at": "2030-01-02T09:00"}
    assert browser.post("/sales/activities", data=form, headers=HX).status_code == 200
    lead = get_row(db, Lead, lid)
    assert (lead.status, lead.first_touched_at) == ("new", None)  # planning is not touching
    r = browser.post("/sales/activities", data={**form, "kind": "call", "subject": "Reached",
                                                "due_at": ""}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/sales/leads/{lid}#sales-activities"
    lead = get_row(db, Lead, lid)
    assert lead.status == "working" and lead.first_touched_at is not None


def test_complete_buttons_only_on_activities_the_viewer_may_change(db, signed_in_as, make_actor):
    """Support reads every activity but changes only its own: the panel offers "Complete" on
    those alone, and the service refuses the others anyway."""
    browser = signed_in_as("support")
    me = _me(db, "support")
    seller = make_actor("sales", team="beta")
    cid = seed_customer(db, seller.id, seller.team_id)
    theirs = _log(db, seller.principal, "customer_id", cid, "Seller's task")
    mine = _log(db, me, "customer_id", cid, "Support's task")
    r = browser.get("/sales/activities/panel", params={"customer_id": cid}, headers=HX)
    assert r.status_code == 200 and _row_ids(r.text) == [mine, theirs]
    assert f"/sales/activities/{mine}/complete" in r.text
    assert f"/sales/activities/{theirs}/complete" not in r.text
    csrf = csrf_of(browser.get("/sales/my-day").text)
    r = browser.post(f"/sales/activities/{theirs}/complete", data={"csrf_token": csrf})
    assert r.status_code == 403 and get_row(db, Activity, theirs).status == "open"
