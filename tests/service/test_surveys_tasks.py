"""Survey jobs: the `ticket.solved` subscription through the real worker loop, and the periodic
schedule sweep (registered, interval from the settings, runs due schedules once)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.core import jobs, mail
from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.core.events import emit
from accord.core.settings import reset_settings
from accord.models import Job, SurveyInvitation
from accord.service import surveys, surveys_tasks
from accord.service.surveys_schemas import ScheduleCreate
from tests.access.helpers import seed_customer
from tests.service.test_surveys import make_ticket, rows, world


@pytest.fixture(autouse=True)
def _settings():
    yield
    reset_settings()


def test_registration():
    assert surveys_tasks.ON_SOLVED in jobs.SUBSCRIBERS["ticket.solved"]
    assert jobs.HANDLERS[surveys_tasks.ON_SOLVED] is surveys_tasks.on_ticket_solved
    assert jobs.PERIODIC[surveys_tasks.SCHEDULES] is surveys_tasks.schedule_interval
    assert mail.MAIL_SEND in jobs.HANDLERS


def test_interval_follows_the_setting(monkeypatch):
    monkeypatch.setenv("ACCORD_SURVEY_SCHEDULE_MINUTES", "15")
    reset_settings()
    assert surveys_tasks.schedule_interval() == timedelta(minutes=15)
    monkeypatch.setenv("ACCORD_SURVEY_SCHEDULE_MINUTES", "0")
    reset_settings()
    assert surveys_tasks.schedule_interval() is None


def test_worker_sends_the_survey_for_a_solved_ticket(db):
    w = world(db)
    tid = make_ticket(db, w.customer_id, team_id=w.team_id, assignee_id=w.agent_id)
    with session_scope(db) as s:
        emit(s, "ticket.solved", "ticket", tid, {"ticket_id": tid})
    jobs.work(db, once=True)
    (inv,) = rows(db, SurveyInvitation)
    assert (inv.ticket_id, inv.kind, inv.agent_id) == (tid, "csat", w.agent_id)
    with session_scope(db, write=False) as s:
        job = s.scalar(select(Job).where(Job.kind == surveys_tasks.ON_SOLVED))
        assert job is not None and job.status == "done"
        sent = s.scalar(select(Job).where(Job.dedupe_key == f"survey:{inv.id}"))
        assert sent is not None and sent.kind == mail.MAIL_SEND


def test_an_event_without_a_ticket_id_is_ignored(db):
    with session_scope(db) as s:
        surveys_tasks.on_ticket_solved(s, {"event_id": "e1", "payload": {}, "aggregate_id": "x"})
    assert rows(db, SurveyInvitation) == []


def test_periodic_job_runs_due_schedules_once(db):
    seed_customer(db, first_name="Loyal", emails=[{"email": "loyal@example.com"}])
    with session_scope(db) as s:
        surveys.create_schedule(s, SYSTEM, ScheduleCreate(
            name="Yearly NPS", every_days=365, next_run_at=utcnow() - timedelta(minutes=1)))
    with session_scope(db) as s:
        assert jobs.schedule_periodic(s) >= 1
        assert s.scalar(select(Job).where(Job.kind == surveys_tasks.SCHEDULES)) is not None
    for _ in range(2):  # a second sweep in the same period sends nothing
        with session_scope(db) as s:
            jobs.HANDLERS[surveys_tasks.SCHEDULES](s, {"slot": 1})
    (inv,) = rows(db, SurveyInvitation)
    assert (inv.trigger, inv.kind) == ("schedule", "nps")
