"""Outbound e-mail: a `mail.send` job delivers to a real SMTP server (aiosmtpd, started here on
127.0.0.1), is retried by the jobs mechanism when the server refuses the connection, and is
recorded as skipped when no SMTP host is configured."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from accord.core import jobs, mail
from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.core.settings import reset_settings
from accord.models import Job, OutboxEvent


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Point Accord's SMTP settings at a local port (no server listening there yet)."""
    port = free_port()
    monkeypatch.setenv("ACCORD_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ACCORD_SMTP_PORT", str(port))
    monkeypatch.setenv("ACCORD_SMTP_STARTTLS", "false")
    monkeypatch.setenv("ACCORD_SMTP_FROM", "Accord <crm@example.com>")
    reset_settings()
    yield port
    monkeypatch.undo()
    reset_settings()


def start_server(port: int) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


def enqueue(db: str, **kw: Any) -> int:
    with session_scope(db) as s:
        job = mail.enqueue_mail(s, kw.pop("to", "ada@example.com"),
                                kw.pop("subject", "Reminder: call Grace"),
                                kw.pop("body", "Due at 10:00 UTC."), **kw)
        assert job is not None
        s.flush()
        return job.id


def job_of(db: str, job_id: int) -> Job:
    with session_scope(db, write=False) as s:
        job = s.get(Job, job_id)
        s.expunge(job)
        return job


def mail_events(db: str) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(db, write=False) as s:
        rows = s.execute(select(OutboxEvent).where(OutboxEvent.aggregate == "mail")
                         .order_by(OutboxEvent.id)).scalars()
        return [(e.type, dict(e.payload)) for e in rows]


def test_job_delivers_to_a_real_smtp_server(db, smtp_env):
    controller, inbox = start_server(smtp_env)
    try:
        job_id = enqueue(db, tag="test")
        assert jobs.run_one(db) is True
    finally:
        controller.stop()
    job = job_of(db, job_id)
    assert job.status == "done", job.last_error
    assert len(inbox.messages) == 1
    sender, rcpts, msg = inbox.messages[0]
    assert sender == "crm@example.com" and rcpts == ["ada@example.com"]
    assert msg["To"] == "ada@example.com" and msg["Subject"] == "Reminder: call Grace"
    assert msg["Message-ID"] == job.payload["message_id"] and msg["Message-ID"].endswith(
        "@example.com>")
    assert msg["Date"] and msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_payload(decode=True).decode().strip() == "Due at 10:00 UTC."
    # the outcome is recorded without the recipient's address
    assert mail_events(db) == [("mail.sent", {"message_id": msg["Message-ID"], "tag": "test"})]


def test_refused_connection_is_retried_then_delivered(db, smtp_env):
    job_id = enqueue(db)
    assert jobs.run_one(db) is True  # nobody listens on the port yet
    job = job_of(db, job_id)
    assert (job.status, job.attempts) == ("queued", 1)
    assert "ConnectionRefusedError" in (job.last_error or "")
    assert job.run_at > utcnow()  # backed off
    assert mail_events(db) == []
    assert jobs.run_one(db) is False  # not due again yet

    with session_scope(db) as s:  # time passes
        s.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
    controller, inbox = start_server(smtp_env)
    try:
        assert jobs.run_one(db) is True
    finally:
        controller.stop()
    job = job_of(db, job_id)
    assert (job.status, job.attempts, job.last_error) == ("done", 2, None)
    assert [m[1] for m in inbox.messages] == [["ada@example.com"]]


def test_retries_end_in_the_dead_letter(db, smtp_env):
    with session_scope(db) as s:
        job = mail.enqueue_mail(s, "ada@example.com", "s", "b")
        job.max_attempts = 2
        s.flush()
        job_id = job.id
    for _ in range(2):
        with session_scope(db) as s:
            s.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
        assert jobs.run_one(db) is True
    assert job_of(db, job_id).status == "dead"


def test_without_smtp_host_the_job_records_a_skip(db, monkeypatch):
    monkeypatch.delenv("ACCORD_SMTP_HOST", raising=False)
    reset_settings()
    job_id = enqueue(db, tag="sales.reminder")
    assert jobs.run_one(db) is True
    assert job_of(db, job_id).status == "done"
    (kind, payload), = mail_events(db)
    assert kind == "mail.skipped" and payload["tag"] == "sales.reminder"
    assert "ada@example.com" not in str(payload)


@pytest.mark.parametrize("to", ["", "not-an-address", "a@example.com, b@example.com",
                                "a@example.com\r\nBcc: x@example.com"])
def test_bad_recipients_are_refused_at_enqueue(db, to):
    with session_scope(db) as s, pytest.raises(mail.InvalidMail):
        mail.enqueue_mail(s, to, "s", "b")


def test_header_injection_in_subject_is_refused(db):
    with session_scope(db) as s, pytest.raises(mail.InvalidMail):
        mail.enqueue_mail(s, "a@example.com", "hi\r\nBcc: x@example.com", "b")


def test_dedupe_key_enqueues_once(db):
    with session_scope(db) as s:
        assert mail.enqueue_mail(s, "a@example.com", "s", "b", dedupe_key="k1") is not None
        assert mail.enqueue_mail(s, "a@example.com", "s", "b", dedupe_key="k1") is None
    with session_scope(db, write=False) as s:
        assert len(s.execute(select(Job).where(Job.kind == mail.MAIL_SEND)).all()) == 1
