"""A jobs queue in the operational store.

Jobs are enqueued inside the caller's transaction, so a job exists exactly when the change that
caused it committed. Workers claim jobs with `FOR UPDATE SKIP LOCKED` on PostgreSQL (many
`accord worker` processes) and with a single guarded UPDATE on SQLite. A failed job is retried
with exponential backoff and dead-lettered after `max_attempts`. The outbox relay turns each
domain event into one job per subscribed handler (at-least-once; handlers get the event id to
de-duplicate).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accord.core.clock import utcnow
from accord.core.db import is_postgres, session_scope
from accord.models import Job, OutboxEvent

log = logging.getLogger("accord.jobs")

Handler = Callable[[Session, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}
SUBSCRIBERS: dict[str, list[str]] = {}  # event type ("*" for all) -> job kinds
# job kind -> its interval (read at each check, so settings apply without a restart; None: off)
PERIODIC: dict[str, Callable[[], timedelta | None]] = {}
PERIODIC_CHECK_SECONDS = 60.0
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 3600.0
LOCK_TIMEOUT = timedelta(minutes=10)


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def subscribe(event_type: str, kind: str) -> None:
    kinds = SUBSCRIBERS.setdefault(event_type, [])
    if kind not in kinds:
        kinds.append(kind)


def periodic(kind: str, every: Callable[[], timedelta | None]) -> None:
    """Run job `kind` once per interval, whatever the number of workers."""
    PERIODIC[kind] = every


def schedule_periodic(session: Session, now: datetime | None = None) -> int:
    """Enqueue each periodic job for the next interval boundary; returns how many were new.

    Slots are aligned to the epoch (a 1440-minute interval runs at 00:00 UTC). The slot number
    is part of the dedupe key, so many workers checking at once enqueue one job per slot."""
    now = now or utcnow()
    added = 0
    for kind, every in PERIODIC.items():
        interval = every()
        if not interval or interval.total_seconds() <= 0:
            continue
        seconds = interval.total_seconds()
        slot = int(now.timestamp() // seconds) + 1
        job = enqueue(session, kind, {"slot": slot}, dedupe_key=f"{kind}@{slot}")
        if job is not None:
            job.run_at = datetime.fromtimestamp(slot * seconds, tz=now.tzinfo)
            added += 1
    return added


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    delay: timedelta | None = None,
    max_attempts: int = 5,
    dedupe_key: str | None = None,
) -> Job | None:
    """Add a job in the caller's transaction. With `dedupe_key`, a second enqueue is a no-op."""
    job = Job(
        kind=kind,
        payload=payload or {},
        max_attempts=max_attempts,
        run_at=utcnow() + (delay or timedelta()),
        dedupe_key=dedupe_key,
    )
    if dedupe_key is None:
        session.add(job)
        return job
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        return None
    return job


def backoff(attempts: int) -> timedelta:
    return timedelta(
        seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    )


def relay_outbox(session: Session, limit: int = 500) -> int:
    """Fan unpublished events out to subscribed job kinds; returns how many events were relayed."""
    query = (
        select(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    events = session.execute(query).scalars().all()
    now = utcnow()
    for event in events:
        for kind in SUBSCRIBERS.get(event.type, []) + SUBSCRIBERS.get("*", []):
            enqueue(
                session,
                kind,
                {
                    "event_id": event.event_id,
                    "type": event.type,
                    "aggregate": event.aggregate,
                    "aggregate_id": event.aggregate_id,
                    "payload": event.payload,
                },
                dedupe_key=f"{kind}:{event.event_id}",
            )
        event.published_at = now
    return len(events)


def claim(session: Session, worker_id: str) -> Job | None:
    now = utcnow()
    ready = (Job.status == "queued") & (Job.run_at <= now)
    stale = (Job.status == "running") & (Job.locked_at < now - LOCK_TIMEOUT)
    if is_postgres(session):
        job = session.execute(
            select(Job)
            .where(ready | stale)
            .order_by(Job.run_at, Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).scalar()
        if job is None:
            return None
    else:
        job_id = session.execute(
            select(Job.id).where(ready | stale).order_by(Job.run_at, Job.id).limit(1)
        ).scalar()
        if job_id is None:
            return None
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, ready | stale)
            .values(status="running", locked_by=worker_id, locked_at=now)
        ).rowcount
        if not claimed:
            return None
        job = session.get(Job, job_id, populate_existing=True)
        assert job is not None
    job.status = "running"
    job.locked_by = worker_id
    job.locked_at = now
    job.attempts += 1
    return job


def run_one(url: str | None = None, worker_id: str | None = None) -> bool:
    """Claim and run one job; returns False when nothing was ready."""
    worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    with session_scope(url) as session:
        job = claim(session, worker_id)
        if job is None:
            return False
        job_id, kind, payload = job.id, job.kind, dict(job.payload)
    error: str | None = None
    fn = HANDLERS.get(kind)
    try:
        if fn is None:
            raise LookupError(f"no handler registered for job kind {kind!r}")
        with session_scope(url) as session:
            fn(session, payload)
    except Exception:
        error = traceback.format_exc(limit=5)
        log.warning("job %s (%s) failed: %s", job_id, kind, error.strip().splitlines()[-1])
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.locked_by = None
        job.locked_at = None
        if error is None:
            job.status, job.finished_at, job.last_error = "done", utcnow(), None
        elif job.attempts >= job.max_attempts:
            job.status, job.finished_at, job.last_error = "dead", utcnow(), error
        else:
            job.status, job.run_at, job.last_error = (
                "queued",
                utcnow() + backoff(job.attempts),
                error,
            )
    return True


def work(
    url: str | None = None,
    *,
    stop: threading.Event | None = None,
    poll: float = 1.0,
    once: bool = False,
) -> int:
    """The worker loop: relay the outbox, run ready jobs, sleep when idle."""
    stop = stop or threading.Event()
    done = 0
    checked = 0.0
    while not stop.is_set():
        with session_scope(url) as session:
            relay_outbox(session)
            if not once and PERIODIC and time.monotonic() - checked >= PERIODIC_CHECK_SECONDS:
                schedule_periodic(session)
                checked = time.monotonic()
        ran = False
        while not stop.is_set() and run_one(url):
            ran = True
            done += 1
        if once:
            return done
        if not ran:
            stop.wait(poll)
    return done


class EmbeddedWorker:
    """The in-process worker of the embedded default (`accord serve`/`accord demo`)."""

    def __init__(self, url: str | None = None, poll: float = 1.0) -> None:
        self.url, self.poll = url, poll
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="accord-worker", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                work(self.url, stop=self.stop, poll=self.poll)
            except Exception:
                log.exception("embedded worker error; retrying")
                self.stop.wait(self.poll)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
