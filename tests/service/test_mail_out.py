"""Agent replies by e-mail: the `ticket.replied` event becomes one threaded SMTP message
(captured by a local aiosmtpd sink), sent once however often the event or job is retried; the
customer's answer threads back; internal notes and auto-replies are never mailed or answered."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.utils import make_msgid
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from accord.core import jobs
from accord.core.db import session_scope
from accord.core.settings import reset_settings
from accord.models import Job, OutboxEvent, Ticket, TicketMessage
from accord.service import mail_out, tickets
from accord.service.mail_in import ingest

SUPPORT = "support@example.com"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Inbox]:
    port = free_port()
    for key, value in {"ACCORD_SMTP_HOST": "127.0.0.1", "ACCORD_SMTP_PORT": str(port),
                       "ACCORD_SMTP_STARTTLS": "false", "ACCORD_SMTP_FROM": f"Support <{SUPPORT}>",
                       "ACCORD_MAIL_IN_ADDRESSES": SUPPORT,
                       "ACCORD_ATTACHMENTS_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box
    controller.stop()
    monkeypatch.undo()
    reset_settings()


def customer_mail(subject: str = "Printer on fire", msgid: str = "<c1@customer.example>",
                  headers: dict[str, str] | None = None, body: str = "Please help.") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ada Lovelace <ada@example.com>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = msgid
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def deliver(db: str, raw: bytes) -> Any:
    with session_scope(db) as s:
        return ingest(s, raw)


def run_worker(db: str) -> None:
    jobs.work(db, once=True)


def count(db: str, model: Any, *where: Any) -> int:
    with session_scope(db, write=False) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def agent_reply(db: str, principal: Any, ticket_id: int, text: str, **kw: Any) -> int:
    with session_scope(db) as s:
        return tickets.reply(s, principal, ticket_id, body_text=text, **kw).id


def test_agent_reply_is_mailed_threaded_and_the_answer_threads_back(db, inbox, make_actor):
    agent = make_actor("support")
    first = deliver(db, customer_mail())
    message_id = agent_reply(db, agent.principal, first.ticket_id, "We are on our way.")
    run_worker(db)
    assert len(inbox.messages) == 1
    sent = inbox.messages[0]
    with session_scope(db, write=False) as s:
        stored = s.get(TicketMessage, message_id)
        ref = s.get(Ticket, first.ticket_id).reference
        assert stored.mail_message_id == sent["Message-ID"]
        assert stored.mail_message_id.endswith("@example.com>")
    assert sent["To"] == "ada@example.com"
    assert sent["Subject"] == f"Re: Printer on fire [{ref}]"
    assert sent["In-Reply-To"] == "<c1@customer.example>"
    assert "<c1@customer.example>" in sent["References"]
    assert sent["Reply-To"] == SUPPORT and sent["X-Loop"] == SUPPORT
    assert sent["Auto-Submitted"] is None  # a person wrote it
    assert "We are on our way." in sent.get_payload(decode=True).decode()

    # the customer answers the mail: threaded by In-Reply-To to the same ticket
    answer = deliver(db, customer_mail(subject="Re: thanks", msgid="<c2@customer.example>",
                                       headers={"In-Reply-To": sent["Message-ID"],
                                                "References": sent["References"] + " "
                                                + sent["Message-ID"]}))
    assert answer.outcome == "appended" and answer.ticket_id == first.ticket_id

    # the second reply points at the customer's latest mail and carries the whole chain
    agent_reply(db, agent.principal, first.ticket_id, "Fixed now.")
    run_worker(db)
    assert len(inbox.messages) == 2
    second = inbox.messages[1]
    assert second["In-Reply-To"] == "<c2@customer.example>"
    assert second["References"].split() == ["<c1@customer.example>", sent["Message-ID"],
                                            "<c2@customer.example>"]
    assert second["Subject"] == f"Re: Printer on fire [{ref}]"


def test_retries_and_redelivered_events_send_once(db, inbox, make_actor):
    agent = make_actor("support")
    first = deliver(db, customer_mail())
    message_id = agent_reply(db, agent.principal, first.ticket_id, "On it.")
    run_worker(db)
    with session_scope(db) as s:  # the handler runs again (a redelivered event)
        assert mail_out.send_reply(s, message_id) == "already_sent"
        event = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "ticket.replied")).one()
        mail_out.mail_reply_job(s, {"event_id": "again", "payload": dict(event.payload)})
    run_worker(db)
    assert len(inbox.messages) == 1
    assert count(db, Job, Job.kind == "mail.send") == 1


def test_internal_note_is_not_mailed(db, inbox, make_actor):
    agent = make_actor("support")
    first = deliver(db, customer_mail())
    note = agent_reply(db, agent.principal, first.ticket_id, "Customer is grumpy.", internal=True)
    run_worker(db)
    with session_scope(db) as s:
        assert mail_out.send_reply(s, note) == "not_public"
    assert inbox.messages == [] and count(db, Job, Job.kind == "mail.send") == 0


def test_reply_without_an_author_is_marked_auto_replied(db, inbox):
    first = deliver(db, customer_mail())
    agent_reply(db, tickets.system_principal("email"), first.ticket_id, "Automatic answer.")
    run_worker(db)
    assert [m["Auto-Submitted"] for m in inbox.messages] == ["auto-replied"]


def test_auto_reply_is_never_answered(db, inbox, make_actor):
    agent = make_actor("support")
    first = deliver(db, customer_mail())
    agent_reply(db, agent.principal, first.ticket_id, "Which model is it?")
    run_worker(db)
    assert len(inbox.messages) == 1
    auto = deliver(db, customer_mail(subject="Automatic reply: away", msgid=make_msgid(),
                                     headers={"Auto-Submitted": "auto-replied",
                                              "In-Reply-To": inbox.messages[0]["Message-ID"]}))
    assert auto.outcome == "appended"
    run_worker(db)
    assert len(inbox.messages) == 1  # nothing went back to the auto-responder
    assert count(db, OutboxEvent, OutboxEvent.type == "ticket.replied") == 1
    assert count(db, Job, Job.kind == "mail.send") == 1


def test_automatic_mailboxes_are_never_mailed(db, inbox, make_actor):
    agent = make_actor("support")
    with session_scope(db) as s:
        ticket = tickets.create_ticket(s, agent.principal, subject="Bounce handling",
                                       channel="email", body_text="logged by hand",
                                       requester_email="postmaster@example.org",
                                       internal_author=True)
        ticket_id = ticket.id
    message_id = agent_reply(db, agent.principal, ticket_id, "Hello postmaster")
    run_worker(db)
    with session_scope(db) as s:
        assert s.get(TicketMessage, message_id).mail_message_id is None
    assert inbox.messages == []
    assert count(db, OutboxEvent, OutboxEvent.type == "mail_out.suppressed") == 1


def test_reply_subject_and_unsafe_recipients() -> None:
    ticket = Ticket(id=7, subject="RE: Fwd: Broken [T-7]")
    assert mail_out.reply_subject(ticket) == "Re: Broken [T-7]"
    long = Ticket(id=8, subject="x" * 300)
    assert mail_out.reply_subject(long).endswith("[T-8]")
    assert len(mail_out.reply_subject(long)) <= 300
    reset_settings()
    assert mail_out.unsafe_recipient("MAILER-DAEMON@example.com")
    assert mail_out.unsafe_recipient("no-reply@shop.example")
    assert mail_out.unsafe_recipient("accord@localhost")  # ourselves (ACCORD_SMTP_FROM)
    assert mail_out.unsafe_recipient("ada@example.com") is None
