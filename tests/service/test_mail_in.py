"""Inbound e-mail: parsing that survives malformed MIME, tickets opened or threaded (by
Message-ID and by `[T-n]` reference, never into a stranger's ticket), automatic mail recorded
but never ticketed or answered, attachment limits, and the real SMTP endpoint (aiosmtpd)."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.core.db import session_scope
from accord.core.ratelimit import SlidingWindow
from accord.core.settings import Settings, reset_settings
from accord.models import Job, OutboxEvent, Ticket, TicketAttachment, TicketMessage
from accord.models.customer import CustomerEmail
from accord.service import mail_in
from accord.service.mail_in import IngestResult, UnusableMail, ingest, parse_message

SUPPORT = "support@example.com"


@pytest.fixture(autouse=True)
def mail_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    monkeypatch.setenv("ACCORD_MAIL_IN_ADDRESSES", SUPPORT)
    monkeypatch.setenv("ACCORD_SMTP_FROM", f"Support <{SUPPORT}>")
    monkeypatch.setenv("ACCORD_ATTACHMENTS_DIR", str(tmp_path / "files"))
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


def mail(sender: str = "Ada Lovelace <ada@example.com>", subject: str = "Printer on fire",
         body: str = "It is on fire since this morning.", msgid: str | None = None,
         headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = msgid or make_msgid(domain="customer.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def deliver(db: str, raw: bytes, **kw: Any) -> IngestResult:
    with session_scope(db) as s:
        return ingest(s, raw, **kw)


def count(db: str, model: Any, *where: Any) -> int:
    with session_scope(db, write=False) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def ticket_of(db: str, ticket_id: int) -> Ticket:
    with session_scope(db, write=False) as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        s.expunge(ticket)
        return ticket


def messages(db: str, ticket_id: int) -> list[TicketMessage]:
    with session_scope(db, write=False) as s:
        rows = list(s.scalars(select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
                              .order_by(TicketMessage.id)))
        s.expunge_all()
        return rows


def events(db: str, type_: str) -> list[dict[str, Any]]:
    with session_scope(db, write=False) as s:
        return [dict(e.payload) for e in s.scalars(
            select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.id))]


# --- parsing (no database) ------------------------------------------------------------------

MALFORMED = {
    "missing boundary": (
        b"From: Ada <ada@example.com>\r\nSubject: no boundary\r\n"
        b"Content-Type: multipart/mixed\r\n\r\nThe printer is still broken.\r\n",
        "printer is still broken"),
    "unknown charset": (
        b"From: ada@example.com\r\nSubject: =?x-bogus?q?caf=E9?=\r\n"
        b"Content-Type: text/plain; charset=x-bogus\r\n\r\ncaf\xe9 au lait \xff\r\n",
        "au lait"),
    "undecodable bytes and NUL": (
        b"From: ada@example.com\r\nSubject: Gr\xfc\xdfe\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nbroken \xc3\x28 text\x00 here\r\n",
        "text here"),
    "bad base64": (
        b"From: ada@example.com\r\nSubject: b64\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29ybGQ=!!!*\r\n",
        "Hello world"),
    "unterminated multipart": (
        b"From: ada@example.com\r\nSubject: cut\r\nContent-Type: multipart/mixed; boundary=XX"
        b"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nfirst part only\r\n",
        "first part only"),
    "garbage From with envelope fallback": (
        b"From: <<<>>>\r\nSubject: who\r\n\r\nsome text\r\n", "some text"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_mime_parses_to_text(name: str) -> None:
    raw, expected = MALFORMED[name]
    parsed = parse_message(raw, envelope_from="ada@example.com")
    assert parsed.sender == "ada@example.com"
    assert expected in parsed.body_text
    assert "\x00" not in parsed.body_text and "\x00" not in parsed.subject
    assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")


def test_header_injection_stays_one_line() -> None:
    raw = (b"From: ada@example.com\r\nSubject: hello\r\n Bcc: victim@example.com\r\n"
           b"Message-ID: <a@b>\r\n\r\nbody\r\n")
    parsed = parse_message(raw)
    assert "\n" not in parsed.subject and "\r" not in parsed.subject
    assert parsed.subject.startswith("hello")


def test_html_only_mail_is_sanitised_with_text_derived() -> None:
    html = ('<p>Hello <b>team</b><script>alert("x")</script></p>'
            '<img src="https://evil.example/x.png" onerror="alert(1)">'
            '<a href="javascript:alert(2)">click</a> <a href="https://ok.example/">docs</a>'
            '<style>p {color: red}</style>')
    msg = EmailMessage()
    msg["From"] = "ada@example.com"
    msg["Subject"] = "html"
    msg.set_content(html, subtype="html")
    parsed = parse_message(msg.as_bytes())
    assert parsed.body_html is not None
    for bad in ("<script", "alert", "onerror", "javascript:", "<style", "color: red"):
        assert bad not in parsed.body_html
    assert 'href="https://ok.example/"' in parsed.body_html
    assert "noopener noreferrer" in parsed.body_html
    assert "Hello" in parsed.body_text and "team" in parsed.body_text
    assert "alert" not in parsed.body_text


def test_plain_text_is_preferred_over_html() -> None:
    msg = EmailMessage()
    msg["From"] = "ada@example.com"
    msg["Subject"] = "both"
    msg.set_content("plain version")
    msg.add_alternative("<p>html version</p>", subtype="html")
    parsed = parse_message(msg.as_bytes())
    assert parsed.body_text == "plain version" and parsed.body_html is None


@pytest.mark.parametrize(("raw", "code"), [
    (b"Subject: nobody\r\n\r\ntext\r\n", "550"),
    (b"From: ada@example.com\r\n\r\n", "554"),
])
def test_unusable_mail_raises_with_smtp_code(raw: bytes, code: str) -> None:
    with pytest.raises(UnusableMail) as info:
        parse_message(raw)
    assert info.value.code.startswith(code)


AUTO = {
    "auto-submitted": {"Auto-Submitted": "auto-replied"},
    "x-autoreply": {"X-Autoreply": "yes"},
    "x-autorespond": {"X-Autorespond": "vacation"},
    "precedence bulk": {"Precedence": "bulk"},
    "precedence junk": {"Precedence": "junk"},
    "list-id": {"List-Id": "<news.example.com>"},
    "list-unsubscribe": {"List-Unsubscribe": "<mailto:leave@example.com>"},
    "return-path null": {"Return-Path": "<>"},
    "x-loop": {"X-Loop": SUPPORT},
}


@pytest.mark.parametrize("name", list(AUTO))
def test_auto_reply_headers_are_detected(name: str) -> None:
    assert parse_message(mail(headers=AUTO[name])).auto_reason


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.com", "postmaster@example.org",
                                    SUPPORT])
def test_daemon_and_own_senders_are_automatic(sender: str) -> None:
    assert parse_message(mail(sender=sender)).auto_reason


def test_a_person_is_not_automatic() -> None:
    assert parse_message(mail(headers={"Auto-Submitted": "no"})).auto_reason is None
    assert parse_message(mail(), envelope_from="ada@example.com").auto_reason is None
    assert parse_message(mail(), envelope_from="").auto_reason == "null return path"


# --- ingestion (both engines) ---------------------------------------------------------------

def test_unknown_sender_opens_a_ticket_and_a_customer(db: str) -> None:
    result = deliver(db, mail(msgid="<first@customer.example>"))
    assert (result.outcome, result.smtp_reply[:3]) == ("created", "250")
    ticket = ticket_of(db, result.ticket_id)
    assert ticket.channel == "email" and ticket.subject == "Printer on fire"
    assert ticket.requester_email == "ada@example.com"
    assert ticket.requester_name == "Ada Lovelace"
    assert ticket.customer_id is not None
    assert count(db, CustomerEmail, CustomerEmail.customer_id == ticket.customer_id,
                 CustomerEmail.email_normalized == "ada@example.com") == 1
    [message] = messages(db, ticket.id)
    assert message.direction == "inbound" and message.mail_message_id == "<first@customer.example>"
    assert "on fire" in message.body_text and not message.is_auto_reply
    assert result.smtp_reply.endswith(ticket.reference)


def test_known_sender_is_matched_to_the_same_customer(db: str) -> None:
    first = deliver(db, mail(subject="First problem"))
    second = deliver(db, mail(sender="ADA@Example.com", subject="Another problem"))
    assert (first.outcome, second.outcome) == ("created", "created")
    assert first.ticket_id != second.ticket_id
    assert ticket_of(db, first.ticket_id).customer_id == ticket_of(db, second.ticket_id).customer_id
    assert count(db, CustomerEmail, CustomerEmail.email_normalized == "ada@example.com") == 1


def test_reply_threads_by_in_reply_to(db: str) -> None:
    first = deliver(db, mail(msgid="<q1@customer.example>"))
    reply = deliver(db, mail(subject="more details", msgid="<q2@customer.example>",
                             body="Also the toner is empty.",
                             headers={"In-Reply-To": "<q1@customer.example>",
                                      "References": "<q1@customer.example>"}))
    assert reply.outcome == "appended" and reply.ticket_id == first.ticket_id
    msgs = messages(db, first.ticket_id)
    assert [m.mail_message_id for m in msgs] == ["<q1@customer.example>", "<q2@customer.example>"]
    assert msgs[1].in_reply_to == "<q1@customer.example>"
    assert count(db, Ticket) == 1


def test_reply_threads_by_subject_reference(db: str) -> None:
    first = deliver(db, mail())
    ref = ticket_of(db, first.ticket_id).reference
    reply = deliver(db, mail(subject=f"Re: Printer on fire [{ref}]", body="Still burning."))
    assert reply.outcome == "appended" and reply.ticket_id == first.ticket_id
    assert len(messages(db, first.ticket_id)) == 2


def test_stranger_guessing_a_reference_gets_a_new_ticket(db: str) -> None:
    first = deliver(db, mail(msgid="<secret@customer.example>"))
    ref = ticket_of(db, first.ticket_id).reference
    by_subject = deliver(db, mail(sender="eve@example.net", subject=f"Re: [{ref}] hello"))
    by_header = deliver(db, mail(sender="eve@example.net", subject="hi",
                                 headers={"In-Reply-To": "<secret@customer.example>"}))
    assert by_subject.outcome == by_header.outcome == "created"
    assert len({first.ticket_id, by_subject.ticket_id, by_header.ticket_id}) == 3
    assert len(messages(db, first.ticket_id)) == 1  # nothing injected into Ada's ticket
    assert ticket_of(db, by_subject.ticket_id).requester_email == "eve@example.net"


def test_duplicate_delivery_is_idempotent(db: str) -> None:
    raw = mail(msgid="<dup@customer.example>")
    first = deliver(db, raw)
    again = deliver(db, raw)
    assert (first.outcome, again.outcome) == ("created", "duplicate")
    assert again.smtp_reply.startswith("250") and again.message_id == first.message_id
    assert count(db, TicketMessage) == 1 and count(db, Ticket) == 1
    # a mail without Message-ID is de-duplicated by its content
    bare = b"From: ada@example.com\r\nSubject: no id\r\n\r\nplease help\r\n"
    assert [deliver(db, bare).outcome, deliver(db, bare).outcome] == ["created", "duplicate"]


def test_same_message_id_from_someone_else_is_not_suppressed(db: str) -> None:
    deliver(db, mail(msgid="<shared@x.example>"))
    other = deliver(db, mail(sender="bob@example.org", msgid="<shared@x.example>"))
    assert other.outcome == "created"


def test_auto_reply_is_recorded_on_its_ticket_without_reopening(db: str) -> None:
    from accord.service import tickets

    first = deliver(db, mail())
    with session_scope(db) as s:
        tickets.reply(s, tickets.system_principal("email"), first.ticket_id,
                      body_text="Fixed, closing.", status="solved")
    replied = len(events(db, "ticket.replied"))
    ref = ticket_of(db, first.ticket_id).reference
    auto = deliver(db, mail(subject=f"Out of office: Re: Printer on fire [{ref}]",
                            body="I am away until Monday.",
                            headers={"Auto-Submitted": "auto-replied"}))
    assert auto.outcome == "appended" and auto.ticket_id == first.ticket_id
    last = messages(db, first.ticket_id)[-1]
    assert last.is_auto_reply and last.direction == "inbound"
    assert ticket_of(db, first.ticket_id).status == "solved"  # not reopened
    assert len(events(db, "ticket.replied")) == replied  # nothing answers it
    assert count(db, Job, Job.kind == "mail.send") == 0


@pytest.mark.parametrize("name", ["auto-submitted", "precedence bulk", "list-id", "x-loop"])
def test_auto_reply_that_would_open_a_ticket_is_dropped(db: str, name: str) -> None:
    result = deliver(db, mail(headers=AUTO[name], msgid="<auto@x.example>"))
    assert result.outcome == "dropped" and result.smtp_reply.startswith("250")
    assert count(db, Ticket) == 0
    assert events(db, "mail_in.dropped")[0]["message_id"] == "<auto@x.example>"


def test_bounce_from_mailer_daemon_is_dropped(db: str) -> None:
    result = deliver(db, mail(sender="MAILER-DAEMON@mx.example.com", subject="Undeliverable"),
                     envelope_from="")
    assert result.outcome == "dropped" and count(db, Ticket) == 0


def test_html_mail_lands_sanitised(db: str) -> None:
    msg = EmailMessage()
    msg["From"] = "ada@example.com"
    msg["Subject"] = "html only"
    msg.set_content('<p>Help<script>steal()</script><img src=x onerror="steal()"></p>',
                    subtype="html")
    result = deliver(db, msg.as_bytes())
    [message] = messages(db, result.ticket_id)
    assert message.body_html and "Help" in message.body_html
    assert "script" not in message.body_html and "onerror" not in message.body_html
    assert message.body_text == "Help"


def test_oversized_attachment_is_noted_and_the_mail_lands(db: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_ATTACHMENT_MAX_BYTES", "2000")
    reset_settings()
    msg = EmailMessage()
    msg["From"] = "ada@example.com"
    msg["Subject"] = "logs attached"
    msg.set_content("See the attached files.")
    msg.add_attachment(b"x" * 500, maintype="text", subtype="plain", filename="small.log")
    msg.add_attachment(b"\x00" * 50_000, maintype="application", subtype="octet-stream",
                       filename="../../huge.bin")
    result = deliver(db, msg.as_bytes())
    assert result.outcome == "created"
    with session_scope(db, write=False) as s:
        files = s.scalars(select(TicketAttachment)
                          .where(TicketAttachment.ticket_id == result.ticket_id)).all()
        assert [(f.filename, f.size_bytes) for f in files] == [("small.log", 500)]
    msgs = messages(db, result.ticket_id)
    assert "attached files" in msgs[0].body_text
    notes = [m for m in msgs if m.visibility == "internal"]
    assert len(notes) == 1 and "huge.bin" in notes[0].body_text
    assert "exceeded the limit" in notes[0].body_text
    assert count(db, Job, Job.kind == "mail.send") == 0  # internal notes are never mailed


@pytest.mark.parametrize("name", ["missing boundary", "unknown charset",
                                  "undecodable bytes and NUL", "bad base64"])
def test_malformed_mail_lands_as_a_ticket(db: str, name: str) -> None:
    raw, expected = MALFORMED[name]
    result = deliver(db, raw)
    assert result.outcome == "created"
    assert expected in messages(db, result.ticket_id)[0].body_text


def test_unusable_mail_is_rejected_and_recorded(db: str) -> None:
    result = deliver(db, b"Subject: anonymous\r\n\r\nwho am I\r\n")
    assert result.outcome == "rejected" and result.smtp_reply.startswith("550")
    assert count(db, Ticket) == 0
    [event] = events(db, "mail_in.rejected")
    assert "sender" in event["reason"]


def test_sender_rate_guard_defers_a_loop(db: str) -> None:
    guard = SlidingWindow(2, 3600)
    outcomes = [deliver(db, mail(subject=f"loop {i}"), guard=guard).outcome for i in range(3)]
    assert outcomes == ["created", "created", "deferred"]
    assert count(db, Ticket) == 2
    assert deliver(db, mail(sender="bob@example.org"), guard=guard).outcome == "created"


# --- the SMTP endpoint ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_server(url: str, **settings: Any) -> Any:
    controller = mail_in.make_controller(
        "127.0.0.1", free_port(), url=url,
        settings=Settings(mail_in_addresses=SUPPORT, **settings))
    controller.start()
    return controller


def test_smtp_end_to_end(db: str) -> None:
    controller = smtp_server(db, mail_in_max_bytes=64 * 1024)
    try:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as client:
            refused = client.sendmail("ada@example.com", [SUPPORT],
                                      mail(msgid="<smtp@customer.example>"))
            assert refused == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):  # no open relay
                client.sendmail("ada@example.com", ["someone@elsewhere.example"], mail())
            with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused,
                                smtplib.SMTPServerDisconnected)):  # over the size limit
                client.sendmail("ada@example.com", [SUPPORT], mail(body="x" * 100_000))
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as client:
            client.sendmail("", [SUPPORT], mail(sender="MAILER-DAEMON@mx.example",
                                                subject="Delivery failure"))
            with pytest.raises(smtplib.SMTPDataError) as info:
                client.sendmail("x@example.com", [SUPPORT], b"X-Empty: yes\r\n\r\n")
            assert info.value.smtp_code == 554
    finally:
        controller.stop()
    with session_scope(db, write=False) as s:
        tickets = s.scalars(select(Ticket)).all()
        assert [t.requester_email for t in tickets] == ["ada@example.com"]
        assert s.scalar(select(TicketMessage.mail_message_id)) == "<smtp@customer.example>"


def test_smtp_answers_451_when_the_database_is_unavailable(tmp_path: Any) -> None:
    controller = smtp_server(f"sqlite:///{tmp_path}/missing-dir/nowhere.db")
    try:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as client, \
                pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("ada@example.com", [SUPPORT], mail())
        assert info.value.smtp_code == 451  # the sender keeps the mail and retries
    finally:
        controller.stop()
