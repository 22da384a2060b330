"""Agent replies by e-mail: the `service.mail_reply` job, run once per `ticket.replied` event.

A public outbound message on a ticket with a requester e-mail is sent with the subject
"Re: <subject> [T-123]" (so replies thread back even when a mail client drops the headers), a
fresh Message-ID in our domain stored on the message, `In-Reply-To` the customer's last mail and
`References` the thread. The send itself is a `mail.send` job (`accord.core.mail`) enqueued in
the same transaction that stores the Message-ID, with the message's id as dedupe key: a
redelivered event or a retried job never sends twice. Agent replies carry no `Auto-Submitted`
header (they are written by a person); replies without an author are `auto-replied`. Nothing is
sent to our own addresses or to mailer daemons (loop guard).
"""

from __future__ import annotations

import logging
import re
from email.utils import make_msgid, parseaddr
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.core import jobs
from accord.core import mail as core_mail
from accord.core.events import emit
from accord.core.settings import get_settings
from accord.models import Ticket, TicketMessage

log = logging.getLogger("accord.service.mail_out")

MAIL_REPLY = "service.mail_reply"
SUBJECT_MAX = 300
MAX_REFERENCES = 20
NO_REPLY_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply",
                                  "donotreply", "do-not-reply"})
REPLY_PREFIX_RE = re.compile(r"^\s*((re|aw|sv|fw|fwd)\s*:\s*)+", re.IGNORECASE)
REFERENCE_TAG_RE = re.compile(r"\s*\[T-\d+\]", re.IGNORECASE)

Outcome = Literal["queued", "already_sent", "not_public", "not_email", "no_recipient",
                  "suppressed", "missing"]


def reply_subject(ticket: Ticket) -> str:
    """"Re: <subject> [T-123]": earlier prefixes and references are not repeated."""
    suffix = f" [{ticket.reference}]"
    base = REPLY_PREFIX_RE.sub("", REFERENCE_TAG_RE.sub("", ticket.subject or "")).strip()
    base = " ".join(base.split()) or "Your request"
    return f"Re: {base[:SUBJECT_MAX - len(suffix) - 4]}{suffix}"


def unsafe_recipient(address: str) -> str | None:
    """Why mail to `address` could start or feed a loop, or None when it is safe."""
    from accord.service.mail_in import own_addresses

    _, addr = parseaddr(address)
    addr = addr.strip().lower()
    if not addr or "@" not in addr:
        return "not an e-mail address"
    if addr in own_addresses():
        return "one of our own addresses"
    if addr.partition("@")[0] in NO_REPLY_LOCAL_PARTS:
        return "an automatic mailbox"
    return None


def _thread(session: Session, message: TicketMessage) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References): the customer's last mail and the thread's Message-IDs."""
    rows = session.execute(
        select(TicketMessage.mail_message_id, TicketMessage.direction)
        .where(TicketMessage.ticket_id == message.ticket_id,
               TicketMessage.mail_message_id.is_not(None),
               TicketMessage.id != message.id)
        .order_by(TicketMessage.created_at, TicketMessage.id)
    ).all()
    ids = [str(mid) for mid, _ in rows if mid]
    inbound = [str(mid) for mid, direction in rows if mid and direction == "inbound"]
    in_reply_to = inbound[-1] if inbound else (ids[-1] if ids else None)
    if len(ids) > MAX_REFERENCES:  # RFC 5322: keep the first and the most recent
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1):]]
    return in_reply_to, ids


def send_reply(session: Session, message_id: int) -> Outcome:
    """Queue the e-mail for one ticket message (see the module docstring); idempotent."""
    from accord.service.mail_in import own_addresses, support_addresses

    message = session.get(TicketMessage, message_id)
    if message is None:
        return "missing"
    if message.visibility != "public" or message.direction != "outbound":
        return "not_public"
    if message.channel != "email":  # e.g. a phone ticket's reply: the agent called back
        return "not_email"
    if message.mail_message_id:
        return "already_sent"
    ticket = session.get(Ticket, message.ticket_id)
    if ticket is None or not ticket.requester_email:
        return "no_recipient"
    reason = unsafe_recipient(ticket.requester_email)
    if reason:
        log.warning("reply %s on %s not mailed: recipient is %s", message.id, ticket.reference,
                    reason)
        emit(session, "mail_out.suppressed", "ticket", ticket.id,
             {"message_id": message.id, "reason": reason})
        return "suppressed"
    settings = get_settings()
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "localhost"
    new_id = make_msgid(domain=domain)
    in_reply_to, references = _thread(session, message)
    support = sorted(support_addresses(settings) or own_addresses(settings))
    headers = {"In-Reply-To": in_reply_to or "", "References": " ".join(references)}
    if support:
        headers["Reply-To"] = support[0]
        headers["X-Loop"] = support[0]
    body = message.body_text or ""
    if not body.strip() and message.body_html:
        from accord.service.mail_in import html_to_text

        body = html_to_text(message.body_html)
    payload: dict[str, Any] = {
        "to": parseaddr(ticket.requester_email)[1],
        "subject": reply_subject(ticket),
        "body": f"{body}\n\n--\nReference {ticket.reference}: reply to this e-mail to add to it.",
        "message_id": new_id,
        "tag": "ticket.reply",
        "auto_submitted": "auto-replied" if message.author_id is None else None,
        "headers": headers,
    }
    message.mail_message_id = new_id
    message.in_reply_to = in_reply_to
    jobs.enqueue(session, core_mail.MAIL_SEND, payload, dedupe_key=f"ticket-reply:{message.id}")
    return "queued"


@jobs.handler(MAIL_REPLY)
def mail_reply_job(session: Session, payload: dict[str, Any]) -> None:
    """The job the outbox relay runs for each `ticket.replied` event."""
    data = payload.get("payload") or {}
    try:
        message_id = int(data["message_id"])
    except (KeyError, TypeError, ValueError):
        log.warning("ticket.replied event %s without a message id", payload.get("event_id"))
        return
    outcome = send_reply(session, message_id)
    log.info("reply %s: %s", message_id, outcome)


jobs.subscribe("ticket.replied", MAIL_REPLY)
