"""The "My day" page of a salesperson: their overdue and today's activities by due time (with
working "Complete" buttons), their new leads waiting for a first touch, their open deals
closing this week and their unread notifications; nobody else's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from accord.access import service as access
from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.models import User
from accord.models.sales import Activity, Lead
from accord.sales import activities, notifications
from accord.sales.activities_schemas import ActivityCreate
from tests.access.helpers import seed_customer
from tests.sales.test_activities import get_row, seed_deal, seed_lead
from tests.web.seed import csrf_of


def _me(db: str, role: str = "sales"):
    with session_scope(db, write=False) as s:
        user = s.execute(select(User).where(User.email.like(f"{role}-%-web@example.com"))
                         .order_by(User.id.desc())).scalars().first()
        return access.principal_for(user)


def _activity(db: str, principal, customer_id: int, subject: str, due: datetime | None,
              **kw) -> int:
    with session_scope(db) as s:
        return activities.create_activity(s, principal, ActivityCreate(
            kind=kw.pop("kind", "task"), subject=subject, due_at=due, customer_id=customer_id,
            **kw)).id


def _section(html: str, section_id: str) -> str:
    found = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
    assert found, section_id
    return found.group(0)


def test_my_day_for_a_salesperson(db, signed_in_as, make_actor):
    browser = signed_in_as("sales")
    me = _me(db)
    other = make_actor("sales")
    now = utcnow()
    start = datetime.combine(now.date(), time.min, tzinfo=UTC)
    cid = seed_customer(db, me.user_id, me.team_id)
    other_cid = seed_customer(db, other.id, other.team_id)
    overdue = _activity(db, me, cid, "Overdue follow-up", start - timedelta(hours=3))
    late_today = _activity(db, me, cid, "Late call", start + timedelta(hours=23), kind="call")
    early_today = _activity(db, me, cid, "Early meeting", start + timedelta(minutes=1),
                            kind="meeting")
    _activity(db, me, cid, "Tomorrow's task", start + timedelta(days=1, hours=1))
    _activity(db, me, cid, "Already done", start + timedelta(hours=2), status="done")
    _activity(db, me, cid, "No due date", None)
    _activity(db, other.principal, other_cid, "Someone else's task", start + timedelta(hours=2))

    waiting = seed_lead(db, me.user_id, me.team_id, first_name="Wanda", last_name="Waiting",
                        company="Waiting GmbH", first_touch_due_at=now + timedelta(hours=2))
    seed_lead(db, me.user_id, me.team_id, first_name="Walter", last_name="Working",
              status="working")
    seed_lead(db, other.id, other.team_id, first_name="Olga", last_name="Others")
    today = now.date()
    closing = seed_deal(db, me.user_id, me.team_id, name="Closing deal",
                        expected_close_date=today)
    seed_deal(db, me.user_id, me.team_id, name="Next week deal",
              expected_close_date=today + timedelta(days=7))
    seed_deal(db, me.user_id, me.team_id, name="Won deal", status="won",
              expected_close_date=today)
    seed_deal(db, other.id, other.team_id, name="Their deal", expected_close_date=today)
    with session_scope(db) as s:
        notifications.notify(s, me.user_id, "reminder", "Mine unread")
        read = notifications.notify(s, me.user_id, "reminder", "Mine read")
        read.read_at = now
        notifications.notify(s, other.id, "reminder", "Their notification")

    r = browser.get("/sales/my-day")
    assert r.status_code == 200, r.text
    html = r.text
    overdue_html, today_html = _section(html, "overdue"), _section(html, "today")
    assert f'id="activity-{overdue}"' in overdue_html and "Late call" not in overdue_html
    order = [today_html.index(f'id="activity-{i}"') for i in (early_today, late_today)]
    assert order == sorted(order)  # by due time
    for absent in ("Tomorrow", "Already done", "No due date", "Someone else"):
        assert absent not in html, absent
    leads_html = _section(html, "new-leads")
    assert "Wanda Waiting" in leads_html and f'/sales/leads/{waiting}"' in leads_html
    assert "Walter" not in html and "Olga" not in html
    deals_html = _section(html, "closing")
    assert "Closing deal" in deals_html and f"/sales/deals/{closing}" in deals_html
    for absent in ("Next week deal", "Won deal", "Their deal"):
        assert absent not in html, absent
    notes_html = _section(html, "my-notifications")
    assert "Mine unread" in notes_html and 'data-unread="1"' in notes_html
    assert "Mine read" not in html and "Their notification" not in html

    # "Complete" via HTMX: needs the CSRF token; then the row comes back done
    url = f"/sales/activities/{overdue}/complete"
    assert browser.post(url, headers={"HX-Request": "true"}).status_code == 403
    assert get_row(db, Activity, overdue).status == "open"
    r = browser.post(url, headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(html)})
    assert r.status_code == 200, r.text
    assert 'data-status="done"' in r.text and r.text.lstrip().startswith("<tr")
    assert get_row(db, Activity, overdue).status == "done"
    assert f'id="activity-{overdue}"' not in _section(browser.get("/sales/my-day").text,
                                                      "overdue")


def test_completing_someone_elses_activity_is_refused(db, signed_in_as, make_actor):
    browser = signed_in_as("sales")
    html = browser.get("/sales/my-day").text
    outsider = make_actor("sales", team="beta")
    cid = seed_customer(db, outsider.id, outsider.team_id)
    theirs = _activity(db, outsider.principal, cid, "Theirs", utcnow())
    r = browser.post(f"/sales/activities/{theirs}/complete",
                     headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(html)})
    assert r.status_code == 404
    assert get_row(db, Activity, theirs).status == "open"


def test_quick_log_from_the_customer_panel(db, signed_in_as):
    """The 360 page's quick form logs a call (done now) and lists the customer's activities."""
    browser = signed_in_as("sales")
    me = _me(db)
    cid = seed_customer(db, me.user_id, me.team_id)
    panel = browser.get(f"/sales/activities/panel?customer_id={cid}",
                        headers={"HX-Request": "true"})
    assert panel.status_code == 200 and 'name="customer_id"' in panel.text
    csrf = csrf_of(browser.get("/sales/my-day").text)
    form = {"csrf_token": csrf, "customer_id": str(cid), "kind": "call", "subject": "Intro",
            "direction": "inbound", "duration_minutes": "7", "due_at": "", "body": "",
            "outcome": "reached"}
    r = browser.post("/sales/activities", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    assert "Saved." in r.text and "Intro" in r.text
    with session_scope(db, write=False) as s:
        a = s.execute(select(Activity)).scalar_one()
        assert (a.kind, a.status, a.direction, a.duration_minutes, a.owner_id) == (
            "call", "done", "inbound", 7, me.user_id)
        assert a.interaction_id is not None
    bad = {**form, "subject": "", "due_at": "tomorrow"}
    r = browser.post("/sales/activities", data=bad, headers={"HX-Request": "true"})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    other = seed_customer(db, None)  # nobody's: out of a salesperson's scope
    r = browser.post("/sales/activities", data={**form, "customer_id": str(other)},
                     headers={"HX-Request": "true"})
    assert r.status_code == 404
    assert browser.get(f"/sales/activities/panel?customer_id={other}").status_code == 404
    with session_scope(db, write=False) as s:
        assert len(s.execute(select(Activity)).all()) == 1
        assert s.execute(select(Lead)).first() is None


def test_plain_complete_goes_back_to_a_same_site_page_only(db, signed_in_as):
    """Without JavaScript "Complete" returns to the form's `next` (the panel's record page),
    else to My day; an address on another site is never followed."""
    browser = signed_in_as("sales")
    me = _me(db)
    cid = seed_customer(db, me.user_id, me.team_id)
    first = _activity(db, me, cid, "First", utcnow())
    second = _activity(db, me, cid, "Second", utcnow())
    third = _activity(db, me, cid, "Third", utcnow())
    csrf = csrf_of(browser.get("/sales/my-day").text)
    r = browser.post(f"/sales/activities/{first}/complete", data={"csrf_token": csrf},
                     follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sales/my-day"
    r = browser.post(f"/sales/activities/{second}/complete",
                     data={"csrf_token": csrf, "next": f"/customers/{cid}#sales-activities"},
                     follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{cid}#sales-activities"
    r = browser.post(f"/sales/activities/{third}/complete",
                     data={"csrf_token": csrf, "next": "https://evil.example/phish"},
                     follow_redirects=False)
    assert r.status_code == 303 and "evil" not in r.headers["location"]
    assert r.headers["location"].startswith("/")
    assert {get_row(db, Activity, i).status for i in (first, second, third)} == {"done"}
