"""The transactional outbox and the jobs queue: events and jobs exist exactly when their change
committed; workers run jobs, retry with exponential backoff, dead-letter after max_attempts,
never run one job twice at once, and re-claim jobs whose worker died."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from accord.core import jobs
from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.core.events import emit
from accord.customers import service as customers
from accord.customers.schemas import CustomerCreate
from accord.models import Customer, Job, OutboxEvent
from tests.access.helpers import count


@pytest.fixture
def registry():
    """Isolated handler/subscriber registries for one test."""
    saved = dict(jobs.HANDLERS), {k: list(v) for k, v in jobs.SUBSCRIBERS.items()}
    jobs.HANDLERS.clear()
    jobs.SUBSCRIBERS.clear()
    yield jobs
    jobs.HANDLERS.clear()
    jobs.HANDLERS.update(saved[0])
    jobs.SUBSCRIBERS.clear()
    jobs.SUBSCRIBERS.update(saved[1])


def _add(db, kind: str, payload: dict | None = None, **kw) -> int:
    with session_scope(db) as s:
        job = jobs.enqueue(s, kind, payload, **kw)
        s.flush()
        return job.id


def _job(db, job_id: int) -> Job:
    with session_scope(db) as s:
        job = s.get(Job, job_id)
        s.expunge(job)
        return job


def test_event_commits_with_the_change(db, admin):
    with session_scope(db) as s:
        c = customers.create_customer(s, admin.principal, CustomerCreate(first_name="Ev"))
        cid = c.id
    with session_scope(db) as s:
        events = (
            s.execute(select(OutboxEvent).where(OutboxEvent.aggregate == "customer"))
            .scalars()
            .all()
        )
        assert [(e.type, e.aggregate_id) for e in events] == [("customer.created", str(cid))]
        assert events[0].actor_id == admin.id and events[0].published_at is None


def test_no_event_after_rollback(db, admin):
    events = count(db, "outbox_events")
    with pytest.raises(RuntimeError), session_scope(db) as s:
        customers.create_customer(s, admin.principal, CustomerCreate(first_name="Gone"))
        s.flush()
        raise RuntimeError("boom")
    assert count(db, "outbox_events") == events
    assert count(db, "customers") == 0
    assert count(db, "audit_log", "WHERE resource = 'customers'") == 0


def test_enqueue_commits_with_the_caller(db, registry):
    with pytest.raises(RuntimeError), session_scope(db) as s:
        jobs.enqueue(s, "noop", {"x": 1})
        raise RuntimeError("rolled back")
    assert count(db, "jobs") == 0
    with session_scope(db) as s:
        jobs.enqueue(s, "noop", {"x": 1})
    assert count(db, "jobs") == 1


def test_worker_runs_a_job(db, registry):
    seen: list[dict] = []
    registry.handler("record")(lambda session, payload: seen.append(payload))
    job_id = _add(db, "record", {"n": 7})
    assert jobs.run_one(db) is True
    assert seen == [{"n": 7}]
    job = _job(db, job_id)
    assert job.status == "done" and job.attempts == 1 and job.finished_at is not None
    assert job.locked_by is None
    assert jobs.run_one(db) is False


def test_handler_writes_commit_with_the_job(db, registry, admin):
    def rename(session, payload):
        session.get(Customer, payload["id"]).first_name = "Renamed"

    registry.handler("rename")(rename)
    with session_scope(db) as s:
        cid = customers.create_customer(s, admin.principal, CustomerCreate(first_name="Old")).id
        jobs.enqueue(s, "rename", {"id": cid})
    jobs.run_one(db)
    with session_scope(db) as s:
        assert s.get(Customer, cid).first_name == "Renamed"


def test_failures_back_off_then_dead_letter(db, registry):
    calls = Counter()

    def flaky(session, payload):
        calls["n"] += 1
        raise ValueError("downstream is down")

    registry.handler("flaky")(flaky)
    job_id = _add(db, "flaky", max_attempts=3)
    delays = []
    for attempt in (1, 2):
        t0 = utcnow()
        assert jobs.run_one(db)
        job = _job(db, job_id)
        assert job.status == "queued" and job.attempts == attempt
        assert "downstream is down" in job.last_error
        delays.append(job.run_at - t0)
        # not ready before its backoff has passed
        assert jobs.run_one(db) is False
        with session_scope(db) as s:
            s.execute(
                update(Job).where(Job.id == job_id).values(run_at=utcnow() - timedelta(seconds=1))
            )
    # exponential: the second wait is about twice the first
    assert timedelta(seconds=1.5) <= delays[0] <= timedelta(seconds=3)
    assert timedelta(seconds=3.5) <= delays[1] <= timedelta(seconds=5)
    assert jobs.run_one(db)
    job = _job(db, job_id)
    assert job.status == "dead" and job.attempts == 3 and job.finished_at is not None
    assert calls["n"] == 3
    assert jobs.run_one(db) is False


def test_backoff_is_exponential_and_capped():
    assert [jobs.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert jobs.backoff(50).total_seconds() == jobs.BACKOFF_MAX_SECONDS


def test_unknown_kind_is_a_failure_not_a_crash(db, registry):
    job_id = _add(db, "nobody-handles-this", max_attempts=1)
    assert jobs.run_one(db)
    job = _job(db, job_id)
    assert job.status == "dead" and "no handler" in job.last_error


def test_relay_fans_out_once(db, registry):
    seen: list[str] = []
    registry.handler("on_created")(lambda session, p: seen.append(p["event_id"]))
    registry.handler("on_any")(lambda session, p: seen.append("any:" + p["type"]))
    registry.subscribe("thing.created", "on_created")
    registry.subscribe("*", "on_any")
    with session_scope(db) as s:
        event_id = emit(s, "thing.created", "thing", 1, {"a": 1}).event_id
        emit(s, "thing.other", "thing", 2)
    with session_scope(db) as s:
        assert jobs.relay_outbox(s) == 2
    with session_scope(db) as s:
        assert jobs.relay_outbox(s) == 0  # already published
    assert count(db, "jobs") == 3
    # A relay that crashed after enqueueing but before marking published re-relays: de-duplicated.
    with session_scope(db) as s:
        s.execute(update(OutboxEvent).values(published_at=None))
    with session_scope(db) as s:
        assert jobs.relay_outbox(s) == 2
    assert count(db, "jobs") == 3
    while jobs.run_one(db):
        pass
    assert sorted(seen) == sorted([event_id, "any:thing.created", "any:thing.other"])


def test_dedupe_key(db, registry):
    with session_scope(db) as s:
        first = jobs.enqueue(s, "noop", dedupe_key="daily:2024-01-01")
        second = jobs.enqueue(s, "noop", dedupe_key="daily:2024-01-01")
        other = jobs.enqueue(s, "noop", dedupe_key="daily:2024-01-02")
    assert first is not None and second is None and other is not None
    with session_scope(db) as s:
        assert jobs.enqueue(s, "noop", dedupe_key="daily:2024-01-01") is None
    assert count(db, "jobs") == 2


def test_dedupe_conflict_keeps_the_rest_of_the_transaction(db, registry, admin):
    with session_scope(db) as s:
        jobs.enqueue(s, "noop", dedupe_key="once")
    with session_scope(db) as s:
        cid = customers.create_customer(s, admin.principal, CustomerCreate(first_name="Kept")).id
        assert jobs.enqueue(s, "noop", dedupe_key="once") is None
    with session_scope(db) as s:
        assert s.get(Customer, cid) is not None


def test_two_workers_never_run_the_same_job(db, registry):
    """Threads claim concurrently (SKIP LOCKED on PostgreSQL, a guarded UPDATE on SQLite)."""
    runs = Counter()
    lock = threading.Lock()

    def work(session, payload):
        with lock:
            runs[payload["n"]] += 1

    registry.handler("count")(work)
    n_jobs = 30
    with session_scope(db) as s:
        for i in range(n_jobs):
            jobs.enqueue(s, "count", {"n": i})
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            while jobs.run_one(db, worker_id=name):
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert runs == Counter({i: 1 for i in range(n_jobs)})
    with session_scope(db) as s:
        statuses = Counter(s.execute(select(Job.status)).scalars())
    assert statuses == Counter({"done": n_jobs})


def test_stale_lock_is_reclaimed(db, registry):
    seen = []
    registry.handler("again")(lambda s, p: seen.append(1))
    with session_scope(db) as s:
        job = jobs.enqueue(s, "again")
        s.flush()
        job.status, job.locked_by, job.attempts = "running", "dead-worker", 1
        job.locked_at = utcnow() - jobs.LOCK_TIMEOUT - timedelta(seconds=5)
        job_id = job.id
    assert jobs.run_one(db, worker_id="alive")
    job = _job(db, job_id)
    assert seen == [1] and job.status == "done" and job.attempts == 2


def test_fresh_lock_is_not_stolen(db, registry):
    registry.handler("busy")(lambda s, p: None)
    with session_scope(db) as s:
        job = jobs.enqueue(s, "busy")
        s.flush()
        job.status, job.locked_by, job.locked_at = "running", "other", utcnow()
    assert jobs.run_one(db) is False


def test_work_once_relays_and_runs(db, registry):
    seen = []
    registry.handler("h")(lambda s, p: seen.append(p["type"]))
    registry.subscribe("a.b", "h")
    with session_scope(db) as s:
        emit(s, "a.b", "a", 1)
    assert jobs.work(db, once=True) == 1
    assert seen == ["a.b"]
