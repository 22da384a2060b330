"""Tickets from e-mail: parsing inbound mail, threading it to tickets, and the SMTP endpoint.

`accord mail-in` runs an aiosmtpd server that accepts mail only for the configured support
addresses (no open relay) and no larger than `ACCORD_MAIL_IN_MAX_BYTES`. Each message is parsed
with the standard library's `email` package, defensively: a malformed header, a missing MIME
boundary, an unknown charset or undecodable bytes never crash ingestion, and a message with a
usable sender and some text always lands. Only truly unusable mail (no sender, nothing at all
in it, unparseable) is refused with a 5xx code and recorded as a `mail_in.rejected` event.

Threading: `In-Reply-To`/`References` matched against stored Message-IDs, else a `[T-123]`
reference in the subject, but only when the sender is the ticket's requester (a stranger who
guesses a reference opens a new ticket of their own). Automatic mail (RFC 3834 auto-replies,
bounces, mailing lists, our own mail coming back) is recorded on the ticket it belongs to with
`is_auto_reply`, never answered and never reopens a ticket; one that would open a new ticket is
dropped. A per-sender hourly limit defers (4xx) further mail from a looping sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.core.contact import InvalidValue, normalize_email
from accord.core.errors import Problem
from accord.core.events import emit
from accord.core.ratelimit import SlidingWindow
from accord.core.settings import Settings, get_settings
from accord.models import Ticket, TicketMessage
from accord.models.customer import CustomerEmail

log = logging.getLogger("accord.service.mail_in")


SUBJECT_MAX = 300
NAME_MAX = 200
ADDRESS_MAX = 320
MSGID_MAX = 998
FILENAME_MAX = 255
CONTENT_TYPE_MAX = 120
BODY_MAX = 190_000  # characters kept of a body (tickets refuse > 200,000); the rest is cut
MAX_THREAD_IDS = 50
CLOSED = "closed"

REFERENCE_RE = re.compile(r"\[T-(\d{1,15})\]", re.IGNORECASE)
MSGID_RE = re.compile(r"<[^<>\s]{1,996}>")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
LINE_BREAKS_RE = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")
AUTO_SENDERS = frozenset({"mailer-daemon", "postmaster"})
BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})

Outcome = Literal["created", "appended", "duplicate", "dropped", "deferred", "rejected"]


class UnusableMail(ValueError):
    """Mail that cannot become a ticket message; `code` is the SMTP reply to give."""

    def __init__(self, reason: str, code: str = "554 5.6.0") -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedMail:
    """What ingestion needs from one message, already cleaned for storage."""

    message_id: str
    sender: str
    sender_name: str | None
    subject: str
    body_text: str
    body_html: str | None
    in_reply_to: str | None
    references: list[str]
    attachments: list[Attachment] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # for agents: skipped attachments, cuts
    auto_reason: str | None = None
    defects: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    smtp_reply: str
    ticket_id: int | None = None
    message_id: int | None = None  # the TicketMessage
    reason: str = ""


# --- settings -------------------------------------------------------------------------------

def support_addresses(settings: Settings | None = None) -> frozenset[str] | None:
    """The addresses mail is accepted for (lower-case); None means any ("*")."""
    settings = settings or get_settings()
    raw = [a.strip().lower() for a in settings.mail_in_addresses.split(",") if a.strip()]
    if "*" in raw:
        return None
    if not raw:
        raw = [parseaddr(settings.smtp_from)[1].lower()]
    return frozenset(a for a in raw if a)


def own_addresses(settings: Settings | None = None) -> frozenset[str]:
    """Addresses that are ours: mail from them is our own mail coming back."""
    settings = settings or get_settings()
    ours = {a.strip().lower() for a in settings.mail_in_addresses.split(",")
            if "@" in a and a.strip() != "*"}
    sender = parseaddr(settings.smtp_from)[1].lower()
    if sender:
        ours.add(sender)
    return frozenset(ours)


def message_id_domain(settings: Settings | None = None) -> str:
    """The domain of the Message-IDs we generate (ACCORD_SMTP_FROM's, as `accord.core.mail`)."""
    settings = settings or get_settings()
    return parseaddr(settings.smtp_from)[1].rpartition("@")[2].lower() or "localhost"


def attachment_limits() -> tuple[int, int]:
    """(bytes per attachment, attachments per message): the tickets' own limits
    (ACCORD_ATTACHMENT_MAX_BYTES), checked here so that an oversized file is noted, not fatal."""
    from accord.service import attachments

    return attachments.max_bytes(), attachments.MAX_FILES


# --- cleaning -------------------------------------------------------------------------------

def _clean_text(value: str) -> str:
    """Valid Unicode without NUL and other control characters (PostgreSQL refuses NUL)."""
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace") \
        if _has_surrogates(value) else value
    return CONTROL_RE.sub("", value)


def _has_surrogates(value: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in value)


def _one_line(value: str, limit: int) -> str:
    """A header value safe to store and to echo in a header: no line breaks, capped."""
    return " ".join(LINE_BREAKS_RE.sub(" ", _clean_text(value)).split())[:limit]


def _raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            try:
                return str(make_header(decode_header(str(value))))
            except Exception:  # noqa: BLE001 - a header we cannot decode stays as sent
                return str(value)
    return None


def header(msg: Message, name: str, limit: int = 998) -> str:
    """A header as one clean line; a header the policy cannot parse is read raw instead."""
    try:
        value = msg.get(name)
        text = None if value is None else str(value)
    except Exception:  # noqa: BLE001 - malformed headers must not stop ingestion
        text = _raw_header(msg, name)
    return _one_line(text or "", limit)


def _has_header(msg: Message, name: str) -> bool:
    return any(key.lower() == name.lower() for key, _ in msg.raw_items())


def message_ids(value: str) -> list[str]:
    """The `<id>` tokens of a Message-ID, In-Reply-To or References header."""
    return [m for m in MSGID_RE.findall(value) if len(m) <= MSGID_MAX]


def _address(value: str) -> tuple[str | None, str | None]:
    """(normalised address, display name) of the first valid address in a header value."""
    try:
        pairs = getaddresses([value])
    except Exception:  # noqa: BLE001
        pairs = [parseaddr(value)]
    for name, addr in pairs:
        if not addr or "@" not in addr or len(addr) > ADDRESS_MAX:
            continue
        try:
            return normalize_email(addr), _one_line(name, NAME_MAX) or None
        except InvalidValue:
            continue
    return None, None


def sanitize_html(html: str) -> str | None:
    """The tickets' allow-list (nh3): scripts, styles, event handlers and `javascript:` links
    removed, links rel="noopener noreferrer"; one allow-list for every channel."""
    from accord.service.tickets import sanitise_html

    return sanitise_html(html)


def html_to_text(html: str) -> str:
    """Plain text of sanitised HTML, for search, sentiment and the timeline."""
    from accord.service.tickets import html_to_text as to_text

    return to_text(html)


def _part_text(part: Message) -> str:
    """A text part's content, whatever its charset or transfer encoding claims."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return _clean_text(content)
    except Exception:  # noqa: BLE001 - unknown charset, bad base64: decode by hand below
        pass
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        payload = None
    if isinstance(payload, bytes):
        charset = "utf-8"
        try:
            charset = part.get_content_charset() or "utf-8"
            return _clean_text(payload.decode(charset, "replace"))
        except (LookupError, ValueError):
            return _clean_text(payload.decode("utf-8", "replace"))
    raw = part.get_payload()
    return _clean_text(raw) if isinstance(raw, str) else ""


def _filename(part: Message, index: int) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001
        name = ""
    name = _one_line(str(name), 1000).replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    return (name or f"attachment-{index}")[-FILENAME_MAX:]


def _is_attachment(part: Message) -> bool:
    maintype = part.get_content_maintype()
    try:
        disposition = (part.get_content_disposition() or "").lower()
        has_name = bool(part.get_filename())
    except Exception:  # noqa: BLE001
        disposition, has_name = "", False
    if disposition == "attachment":
        return True
    return maintype not in ("text", "multipart", "message") or (
        has_name and maintype != "multipart" and disposition != "inline")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


# --- parsing --------------------------------------------------------------------------------

def parse_message(raw: bytes, *, envelope_from: str | None = None,
                  settings: Settings | None = None) -> ParsedMail:
    """Parse one message for ingestion; raises `UnusableMail` only when nothing can land."""
    settings = settings or get_settings()
    try:
        msg = message_from_bytes(raw, policy=email_policy.default)
    except Exception as exc:  # noqa: BLE001 - the parser is lenient; this is truly broken input
        raise UnusableMail(f"unparseable message: {type(exc).__name__}") from None
    defects = [type(d).__name__ for d in getattr(msg, "defects", [])]

    sender, name = _address(header(msg, "From"))
    if sender is None and envelope_from:
        sender, name = _address(envelope_from)
    if sender is None:
        raise UnusableMail("no usable sender address (From)", "550 5.1.7")

    message_id = next(iter(message_ids(header(msg, "Message-ID"))), None)
    if message_id is None:  # no id: one derived from the content makes redelivery idempotent
        message_id = f"<{_digest(raw)}@mail-in.accord.invalid>"
    in_reply_to = next(iter(message_ids(header(msg, "In-Reply-To"))), None)
    references = message_ids(header(msg, "References", 20_000))[-MAX_THREAD_IDS:]
    subject = header(msg, "Subject", SUBJECT_MAX)

    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    notices: list[str] = []
    per_attachment, max_files = attachment_limits()
    total_limit = settings.mail_in_max_bytes
    total = 0
    try:
        parts = list(msg.walk())
    except Exception:  # noqa: BLE001 - a broken structure: read the top level as text
        parts = [msg]
        defects.append("UnwalkableStructure")
    for part in parts:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if _is_attachment(part):
            fname = _filename(part, len(attachments) + 1)
            try:
                data = part.get_payload(decode=True) or b""
            except Exception:  # noqa: BLE001
                data = b""
            if not isinstance(data, bytes):
                data = str(data).encode("utf-8", "replace")
            size = len(data)
            if size > per_attachment or total + size > total_limit:
                notices.append(f"attachment {fname} ({_megabytes(size)}) exceeded the limit of "
                               f"{_megabytes(per_attachment)} and was not stored")
            elif len(attachments) >= max_files:
                notices.append(f"attachment {fname} was not stored: more than "
                               f"{max_files} attachments")
            else:
                total += size
                attachments.append(Attachment(fname, ctype[:CONTENT_TYPE_MAX], data))
        elif ctype == "text/plain" and text is None:
            text = _part_text(part)
        elif ctype == "text/html" and html is None:
            html = _part_text(part)
        elif part.get_content_maintype() == "multipart" and text is None:
            # a multipart whose boundary is missing arrives as one text blob: keep it as text
            text = _part_text(part)

    body_html: str | None = None
    if text is not None and text.strip():
        body_text = text
    elif html is not None:
        body_html = sanitize_html(html)
        body_text = html_to_text(body_html) if body_html else ""
    else:
        body_text = text or ""
    body_text = body_text.strip()
    if len(body_text) > BODY_MAX:
        body_text = body_text[:BODY_MAX] + "\n[message truncated]"
        notices.append(f"the message text was cut at {BODY_MAX} characters")
    if body_html is not None and len(body_html) > BODY_MAX:
        body_html = None  # the plain text (cut) is kept; half an HTML document is not
    if not body_text and not subject and not attachments and not notices:
        raise UnusableMail("empty message: no subject, text or attachment")
    return ParsedMail(
        message_id=message_id, sender=sender, sender_name=name,
        subject=subject or "(no subject)", body_text=body_text, body_html=body_html,
        in_reply_to=in_reply_to, references=references, attachments=attachments,
        notices=notices, auto_reason=auto_reply_reason(msg, sender, envelope_from, settings),
        defects=defects)


def auto_reply_reason(msg: Message, sender: str, envelope_from: str | None,
                      settings: Settings | None = None) -> str | None:
    """Why this message is automatic (RFC 3834 and common practice), or None for a person's."""
    auto = header(msg, "Auto-Submitted").lower().split(";")[0].strip()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"[:100]
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated"):
        if _has_header(msg, name):
            return name
    if header(msg, "Precedence").lower().strip() in BULK_PRECEDENCE:
        return "Precedence: " + header(msg, "Precedence").lower()[:40]
    for name in ("List-Id", "List-Unsubscribe"):
        if _has_header(msg, name):
            return f"mailing list ({name})"
    if msg.get_content_type() == "multipart/report":
        return "delivery or read report"
    return_path = header(msg, "Return-Path")
    if return_path.replace(" ", "") == "<>" or envelope_from == "":
        return "null return path"
    if sender.partition("@")[0] in AUTO_SENDERS:
        return "mailer daemon sender"
    ours = own_addresses(settings)
    if sender in ours:
        return "sent from our own address"
    loop = header(msg, "X-Loop").lower()
    if loop and any(address in loop for address in ours):
        return "X-Loop names us"
    return None


# --- ingestion ------------------------------------------------------------------------------

def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _record(session: Session, kind: str, message_id: str, reason: str) -> None:
    """Rejections and drops become outbox events with the Message-ID and reason only (the
    sender's address is personal data and stays out of the outbox)."""
    emit(session, f"mail_in.{kind}", "mail_in", message_id[:64],
         {"message_id": message_id, "reason": reason})


def _sender_matches(session: Session, ticket: Ticket, sender: str) -> bool:
    """Is `sender` the ticket's requester (its address or any of its customer's)?"""
    requester = (ticket.requester_email or "").strip().lower()
    if requester:
        with contextlib.suppress(InvalidValue):
            requester = normalize_email(requester)
        if requester == sender:
            return True
    if ticket.customer_id is None:
        return False
    return session.execute(
        select(CustomerEmail.id).where(CustomerEmail.customer_id == ticket.customer_id,
                                       CustomerEmail.email_normalized == sender).limit(1)
    ).first() is not None


def find_ticket(session: Session, mail: ParsedMail) -> Ticket | None:
    """The ticket this mail continues: by the Message-IDs it replies to, else by the `[T-n]`
    subject reference when the sender is the requester. (A closed ticket's reply opens a
    follow-up ticket in `tickets.add_customer_message`.)"""
    ids = [i for i in [mail.in_reply_to, *reversed(mail.references)] if i][:MAX_THREAD_IDS]
    if ids:
        rows = session.execute(
            select(TicketMessage.ticket_id, TicketMessage.direction)
            .where(TicketMessage.mail_message_id.in_(ids))
            .order_by(TicketMessage.id.desc()).limit(MAX_THREAD_IDS)
        ).all()
        for ticket_id, direction in rows:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None:
                continue
            # our own Message-IDs are random; a customer's could be known to others
            if direction == "outbound" or _sender_matches(session, ticket, mail.sender):
                return ticket
    match = REFERENCE_RE.search(mail.subject)
    if match:
        ticket = session.get(Ticket, int(match.group(1)))
        if ticket is not None and _sender_matches(session, ticket, mail.sender):
            return ticket
    return None


def _is_duplicate(session: Session, mail: ParsedMail) -> TicketMessage | None:
    rows = session.execute(
        select(TicketMessage, Ticket.requester_email).join(Ticket)
        .where(TicketMessage.mail_message_id == mail.message_id,
               TicketMessage.direction == "inbound")
    ).all()
    for message, requester in rows:
        if (message.from_address or requester or "").strip().lower() == mail.sender:
            return message
    return None


def ingest(session: Session, raw: bytes, *, envelope_from: str | None = None,
           guard: SlidingWindow | None = None, settings: Settings | None = None) -> IngestResult:
    """Turn one raw message into a new ticket or a message on an existing one.

    Never raises for bad mail (the result says what happened and which SMTP reply to give);
    database errors propagate so that the SMTP layer answers 4xx and the sender retries."""
    settings = settings or get_settings()
    if len(raw) > settings.mail_in_max_bytes:
        reason = f"message of {len(raw)} bytes exceeds ACCORD_MAIL_IN_MAX_BYTES"
        _record(session, "rejected", _digest(raw), reason)
        return IngestResult("rejected", "552 5.3.4 message too big", reason=reason)
    try:
        mail = parse_message(raw, envelope_from=envelope_from, settings=settings)
    except UnusableMail as exc:
        log.warning("mail rejected: %s", exc.reason)
        _record(session, "rejected", _digest(raw), exc.reason)
        return IngestResult("rejected", f"{exc.code} {exc.reason}", reason=exc.reason)
    if mail.defects:
        log.info("mail %s parsed with defects: %s", mail.message_id, ", ".join(mail.defects))

    existing = _is_duplicate(session, mail)
    if existing is not None:
        return IngestResult("duplicate", "250 2.0.0 OK (already received)",
                            existing.ticket_id, existing.id, "duplicate Message-ID")
    if guard is not None:
        wait = guard.retry_after(mail.sender)
        if wait is not None:
            reason = "too many messages from this sender in the last hour"
            log.warning("mail %s deferred: %s (loop guard)", mail.message_id, reason)
            _record(session, "deferred", mail.message_id, reason)
            return IngestResult("deferred", f"451 4.7.1 {reason}, try again later",
                                reason=reason)
        guard.hit(mail.sender)

    ticket = find_ticket(session, mail)
    if mail.auto_reason and (ticket is None or ticket.status == CLOSED):
        log.info("automatic mail %s dropped: %s", mail.message_id, mail.auto_reason)
        _record(session, "dropped", mail.message_id, mail.auto_reason)
        return IngestResult("dropped", "250 2.0.0 OK (automatic mail, not ticketed)",
                            reason=mail.auto_reason)
    try:
        with session.begin_nested():
            return _store(session, mail, ticket)
    except Problem as exc:  # a safety net: parsing already keeps input within the limits
        reason = f"refused by the tickets service: {exc.detail}"[:300]
        log.warning("mail %s rejected: %s", mail.message_id, reason)
        _record(session, "rejected", mail.message_id, reason)
        return IngestResult("rejected", "554 5.6.0 message refused", reason=reason)


def _store(session: Session, mail: ParsedMail, ticket: Ticket | None) -> IngestResult:
    from accord.service import tickets

    principal = tickets.system_principal("email")
    files = [tickets.NewAttachment(filename=a.filename, content_type=a.content_type,
                                   data=a.data) for a in mail.attachments]
    if ticket is not None:
        message = tickets.add_customer_message(
            session, ticket, body_text=mail.body_text, channel="email",
            body_html=mail.body_html, from_address=mail.sender, subject=mail.subject,
            mail_message_id=mail.message_id, in_reply_to=mail.in_reply_to,
            is_auto_reply=mail.auto_reason is not None, attachments=files)
        # a reply to a closed ticket lands on a follow-up ticket
        outcome: Outcome = "appended" if message.ticket_id == ticket.id else "created"
    else:
        created = tickets.create_ticket(
            session, principal, subject=mail.subject, channel="email",
            body_text=mail.body_text, body_html=mail.body_html, requester_email=mail.sender,
            requester_name=mail.sender_name, mail_message_id=mail.message_id,
            attachments=files)
        message = _first_message(session, created.id)
        outcome = "created"
    ticket = session.get(Ticket, message.ticket_id)
    assert ticket is not None
    for notice in mail.notices:
        tickets.reply(session, principal, ticket.id, body_text=f"E-mail: {notice}.",
                      internal=True)
    log.info("mail %s %s ticket %s", mail.message_id, outcome, ticket.reference)
    return IngestResult(outcome, f"250 2.0.0 OK {ticket.reference}", ticket.id, message.id,
                        mail.auto_reason or "")


def _first_message(session: Session, ticket_id: int) -> TicketMessage:
    return session.execute(
        select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
        .order_by(TicketMessage.id).limit(1)).scalar_one()


# --- the SMTP endpoint ----------------------------------------------------------------------

class MailInHandler:
    """aiosmtpd handler: recipients checked against the support addresses, each message
    ingested in its own transaction on a worker thread (the event loop never blocks on the
    database)."""

    def __init__(self, url: str | None = None, settings: Settings | None = None) -> None:
        self.url = url
        self.settings = settings or get_settings()
        self.accepted = support_addresses(self.settings)
        self.guard = SlidingWindow(self.settings.mail_in_sender_hourly_limit, 3600.0)

    def accepts(self, address: str) -> bool:
        return self.accepted is None or address.strip().lower() in self.accepted

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if not self.accepts(address):
            return "550 5.7.1 relaying denied: not a support address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(None, self.ingest, raw, envelope.mail_from)
        except Exception:  # noqa: BLE001 - database down, lock timeout: the sender retries
            log.exception("mail could not be stored; answered 451")
            return "451 4.3.0 temporary failure, please try again later"
        return result.smtp_reply

    def ingest(self, raw: bytes, envelope_from: str | None) -> IngestResult:
        from accord.core.db import session_scope

        with session_scope(self.url) as session:
            return ingest(session, raw, envelope_from=envelope_from, guard=self.guard,
                          settings=self.settings)


def make_controller(host: str, port: int, *, url: str | None = None,
                    settings: Settings | None = None) -> Any:
    """An aiosmtpd Controller (not yet started) enforcing ACCORD_MAIL_IN_MAX_BYTES as SIZE."""
    from aiosmtpd.controller import Controller

    settings = settings or get_settings()
    return Controller(MailInHandler(url, settings), hostname=host, port=port,
                      data_size_limit=settings.mail_in_max_bytes, enable_SMTPUTF8=True,
                      ident="Accord mail-in")


def serve(host: str, port: int, stop: threading.Event, *, url: str | None = None) -> None:
    """Run the SMTP endpoint until `stop` is set."""
    controller = make_controller(host, port, url=url)
    controller.start()
    try:
        stop.wait()
    finally:
        controller.stop()
