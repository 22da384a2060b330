"""The reminder sweep: due reminders of open activities become one notification for the owner
and one e-mail job each; replays add nothing; a new reminder time fires again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from accord.core import jobs, mail
from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.models import Job, Notification
from accord.models.sales import Activity
from accord.sales import activity_tasks
from accord.sales.activities import send_due_reminders
from tests.access.helpers import count, seed_customer
from tests.sales.test_activities import API, create, get_row

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def _sweep(db: str, now: datetime = NOW) -> int:
    with session_scope(db) as s:
        return send_due_reminders(s, now)


def _notifications(db: str) -> list[Notification]:
    with session_scope(db, write=False) as s:
        rows = list(s.execute(select(Notification).order_by(Notification.id)).scalars())
        s.expunge_all()
        return rows


def _mail_jobs(db: str) -> list[Job]:
    with session_scope(db, write=False) as s:
        rows = list(s.execute(select(Job).where(Job.kind == mail.MAIL_SEND)
                              .order_by(Job.id)).scalars())
        s.expunge_all()
        return rows


def test_due_reminders_notify_the_owner_once(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    due = create(client, me, customer_id=cid, subject="Send the quote",
                 due_at="2030-06-01T13:00:00Z", remind_at="2030-06-01T11:55:00Z").json()["id"]
    later = create(client, me, customer_id=cid, remind_at="2030-06-01T12:30:00Z").json()["id"]
    done = create(client, me, customer_id=cid, remind_at="2030-06-01T11:00:00Z").json()["id"]
    client.post(f"{API}/{done}/complete", headers=me.headers)
    no_reminder = create(client, me, customer_id=cid).json()["id"]

    assert _sweep(db) == 1
    (n,) = _notifications(db)
    assert (n.user_id, n.kind, n.read_at) == (me.id, "reminder", None)
    assert "Send the quote" in n.title and "2030-06-01 13:00 UTC" in n.body
    assert n.link == f"/sales/my-day#activity-{due}"
    (job,) = _mail_jobs(db)
    assert job.payload["to"] == me.email and job.payload["subject"] == n.title
    assert job.payload["tag"] == "sales.reminder" and job.status == "queued"
    assert get_row(db, Activity, due).reminded_at == NOW
    assert get_row(db, Activity, later).reminded_at is None
    assert get_row(db, Activity, done).reminded_at is None
    assert get_row(db, Activity, no_reminder).reminded_at is None
    # the reminder bookkeeping does not make the owner's copy stale
    assert get_row(db, Activity, due).version == 1

    # replay: nothing new, even if the sweep saw the activity again
    assert _sweep(db) == 0
    with session_scope(db) as s:
        s.execute(update(Activity).where(Activity.id == due).values(reminded_at=None))
    assert _sweep(db) == 0
    assert len(_notifications(db)) == 1 and len(_mail_jobs(db)) == 1

    # half an hour later the second one is due
    assert _sweep(db, NOW + timedelta(minutes=31)) == 1
    assert len(_notifications(db)) == 2 and len(_mail_jobs(db)) == 2


def test_new_reminder_time_fires_again(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    aid = create(client, me, customer_id=cid, remind_at="2030-06-01T11:00:00Z").json()["id"]
    assert _sweep(db) == 1
    r = client.patch(f"{API}/{aid}", json={"remind_at": "2030-06-01T11:30:00Z"},
                     headers={**me.headers, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["reminded_at"] is None
    assert _sweep(db) == 1
    assert [n.title for n in _notifications(db)] == [_notifications(db)[0].title] * 2


def test_periodic_job_runs_the_sweep(db, client, make_actor, monkeypatch):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    create(client, me, customer_id=cid, remind_at=past)
    assert activity_tasks.reminder_interval() == timedelta(minutes=5)
    assert jobs.PERIODIC[activity_tasks.REMINDERS] is activity_tasks.reminder_interval
    with session_scope(db) as s:
        assert jobs.enqueue(s, activity_tasks.REMINDERS, {"slot": 1}) is not None
    assert jobs.run_one(db) is True
    with session_scope(db, write=False) as s:
        kinds = [j.kind for j in s.execute(select(Job).order_by(Job.id)).scalars()]
        statuses = {j.kind: j.status for j in s.execute(select(Job)).scalars()}
    assert kinds == [activity_tasks.REMINDERS, mail.MAIL_SEND]
    assert statuses[activity_tasks.REMINDERS] == "done"
    assert count(db, "notifications") == 1
    monkeypatch.setenv("ACCORD_SALES_REMINDER_MINUTES", "0")
    from accord.core.settings import reset_settings

    reset_settings()
    try:
        assert activity_tasks.reminder_interval() is None
    finally:
        monkeypatch.undo()
        reset_settings()


def test_inactive_or_missing_owner_gets_nothing(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    aid = create(client, me, customer_id=cid, remind_at="2030-06-01T11:00:00Z").json()["id"]
    with session_scope(db) as s:
        s.execute(update(Activity).where(Activity.id == aid).values(owner_id=None))
    assert _sweep(db) == 0
    assert count(db, "notifications") == 0 and _mail_jobs(db) == []
    assert get_row(db, Activity, aid).reminded_at == NOW  # not picked up again and again
