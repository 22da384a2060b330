"""Notifications belong to one user: the API and the bell's panel list, read and clear only the
caller's own, whatever ids or parameters are sent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.models import Notification
from accord.sales import notifications
from tests.access.helpers import assert_problem

API = "/api/v1/notifications"


def _notify(db: str, user_id: int, title: str, **kw) -> int:
    with session_scope(db) as s:
        row = notifications.notify(s, user_id, "test", title, **kw)
        assert row is not None
        s.flush()
        return row.id


def _read_at(db: str, nid: int):
    with session_scope(db, write=False) as s:
        return s.get(Notification, nid).read_at


def test_each_user_sees_only_their_own_unread_first(db, client, make_actor):
    ada, bob = make_actor("sales", team="alpha"), make_actor("sales", team="alpha")
    a1 = _notify(db, ada.id, "first")
    a2 = _notify(db, ada.id, "second")
    a3 = _notify(db, ada.id, "third")
    b1 = _notify(db, bob.id, "bob's")
    with session_scope(db) as s:
        s.execute(update(Notification).where(Notification.id == a2)
                  .values(read_at=utcnow() - timedelta(hours=1)))
    r = client.get(API, headers=ada.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [n["id"] for n in body["items"]] == [a3, a1, a2]  # unread (newest first), then read
    assert body["unread_count"] == 2
    assert b1 not in {n["id"] for n in body["items"]}
    # paging walks the same order
    page1 = client.get(API, params={"limit": 2}, headers=ada.headers).json()
    page2 = client.get(API, params={"limit": 2, "cursor": page1["next_cursor"]},
                       headers=ada.headers).json()
    assert [n["id"] for n in page1["items"] + page2["items"]] == [a3, a1, a2]
    assert [n["id"] for n in client.get(API, params={"unread": "false"},
                                        headers=ada.headers).json()["items"]] == [a2]
    # identity comes from the token only
    for params in ({"user_id": bob.id}, {"as_user": bob.id}):
        assert_problem(client.get(API, params=params, headers=ada.headers), 422)


def test_reading_someone_elses_notification_is_a_404(db, client, make_actor):
    ada, bob = make_actor("sales", team="alpha"), make_actor("admin", team="alpha")
    theirs = _notify(db, ada.id, "ada's")
    r = client.post(f"{API}/{theirs}/read", headers=bob.headers)
    assert_problem(r, 404)
    assert _read_at(db, theirs) is None
    assert_problem(client.post(f"{API}/999999/read", headers=bob.headers), 404)
    r = client.post(f"{API}/{theirs}/read", headers=ada.headers)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    first = _read_at(db, theirs)
    assert client.post(f"{API}/{theirs}/read", headers=ada.headers).json()["read_at"] is not None
    assert _read_at(db, theirs) == first  # reading twice keeps the first time


def test_mark_all_read_touches_only_mine(db, client, make_actor):
    ada, bob = make_actor("sales", team="alpha"), make_actor("sales", team="alpha")
    for i in range(3):
        _notify(db, ada.id, f"a{i}")
    bobs = _notify(db, bob.id, "b")
    r = client.post(f"{API}/read-all", headers=ada.headers)
    assert r.status_code == 200 and r.json() == {"marked": 3}
    assert client.post(f"{API}/read-all", headers=ada.headers).json() == {"marked": 0}
    assert _read_at(db, bobs) is None
    assert client.get(API, headers=bob.headers).json()["unread_count"] == 1
    with session_scope(db, write=False) as s:
        unread = s.execute(select(Notification.user_id).where(
            Notification.read_at.is_(None))).scalars().all()
    assert unread == [bob.id]


def test_dedupe_key_makes_notify_idempotent(db, make_actor):
    ada = make_actor("sales")
    with session_scope(db) as s:
        assert notifications.notify(s, ada.id, "k", "t", dedupe_key="once") is not None
        assert notifications.notify(s, ada.id, "k", "t", dedupe_key="once") is None
    with session_scope(db, write=False) as s:
        assert len(s.execute(select(Notification)).all()) == 1


def test_bell_panel_shows_and_clears_only_mine(db, signed_in_as, make_actor):
    from accord.models import User
    from tests.web.seed import csrf_of

    browser = signed_in_as("sales")
    with session_scope(db, write=False) as s:
        me = s.execute(select(User).where(User.email.like("sales-%-web@example.com"))).scalar()
        my_id = me.id
    other = make_actor("sales")
    mine = _notify(db, my_id, "Reminder: <b>call</b> Grace", link="/sales/my-day")
    _notify(db, other.id, "Not yours")
    r = browser.get("/notifications/panel", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert 'data-unread="1"' in r.text and "Not yours" not in r.text
    assert "Reminder: &lt;b&gt;call&lt;/b&gt; Grace" in r.text  # escaped
    page = browser.get("/sales/my-day")
    csrf = csrf_of(page.text)
    # without the CSRF token the post is refused and nothing changes
    assert browser.post(f"/notifications/{mine}/read", headers={"HX-Request": "true"}
                        ).status_code == 403
    assert _read_at(db, mine) is None
    r = browser.post(f"/notifications/{mine}/read",
                     headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert r.status_code == 200 and 'data-unread="0"' in r.text
    assert _read_at(db, mine) is not None
    theirs = _notify(db, other.id, "Still not yours")
    r = browser.post(f"/notifications/{theirs}/read",
                     headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert r.status_code == 404 and _read_at(db, theirs) is None


def test_links_stay_inside_accord(db, make_actor):
    import pytest

    ada = make_actor("sales")
    with session_scope(db) as s:
        for bad in ("javascript:alert(1)", "https://evil.example", "//evil.example/x"):
            with pytest.raises(ValueError):
                notifications.notify(s, ada.id, "k", "t", link=bad)


def test_assignment_events_notify_the_new_owner_once(db, make_actor):
    from accord.core import jobs
    from accord.core.events import emit
    from accord.models import Job
    from accord.models.sales import Lead
    from accord.sales import activity_tasks
    from tests.sales.test_activities import seed_deal, seed_lead

    manager, ada = make_actor("manager", team="alpha"), make_actor("sales", team="alpha")
    lead = seed_lead(db, ada.id, ada.team_id, first_name="Nia", last_name="New",
                     first_touch_due_at=utcnow() + timedelta(hours=1))
    deal = seed_deal(db, ada.id, ada.team_id, name="Big deal")
    mine = seed_lead(db, manager.id, manager.team_id)
    moved_on = seed_lead(db, manager.id, manager.team_id)
    with session_scope(db) as s:
        emit(s, "lead.assigned", "lead", lead, {"owner_id": ada.id}, manager.id)
        emit(s, "deal.assigned", "deal", deal, {"owner_id": ada.id}, manager.id)
        emit(s, "lead.assigned", "lead", mine, {"owner_id": manager.id}, manager.id)  # self
        emit(s, "lead.assigned", "lead", moved_on, {"owner_id": ada.id}, manager.id)  # stale
        emit(s, "lead.updated", "lead", lead, {"fields": ["notes"]}, manager.id)
    with session_scope(db) as s:
        assert jobs.relay_outbox(s) >= 5
    # the subscription made one job per assignment event (other parts may subscribe too)
    with session_scope(db) as s:
        mine_jobs = s.execute(select(Job).where(Job.kind == activity_tasks.NOTIFY_ASSIGNMENT)
                              .order_by(Job.id)).scalars().all()
        assert [j.payload["type"] for j in mine_jobs] == ["lead.assigned", "deal.assigned",
                                                         "lead.assigned", "lead.assigned"]
        for job in mine_jobs:
            jobs.HANDLERS[job.kind](s, dict(job.payload))
    with session_scope(db, write=False) as s:
        rows = s.execute(select(Notification).order_by(Notification.id)).scalars().all()
        got = [(n.user_id, n.kind, n.title, n.link) for n in rows]
        assert "First touch due" in rows[0].body
    assert got == [(ada.id, "assignment", "New lead for you: Nia New", f"/sales/leads/{lead}"),
                   (ada.id, "assignment", "Deal assigned to you: Big deal",
                    f"/sales/deals/{deal}")]
    # a redelivered event adds nothing
    with session_scope(db) as s:
        event = {"event_id": "x-1", "type": "lead.assigned", "aggregate": "lead",
                 "aggregate_id": str(lead), "payload": {"owner_id": ada.id}}
        assert notifications.notify_assigned(s, event) is not None
        assert notifications.notify_assigned(s, event) is None
        assert s.get(Lead, lead).owner_id == ada.id
