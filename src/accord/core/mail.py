"""Outbound e-mail over SMTP, always through the jobs queue.

A message is enqueued in the caller's transaction (`enqueue_mail`), so it is sent exactly when
the change that caused it committed, and retried with backoff by the jobs mechanism when the
server cannot be reached. Its Message-ID is fixed at enqueue time, so a retry after a send whose
acknowledgement was lost carries the same id and receivers can de-duplicate. With no
`ACCORD_SMTP_HOST` (the demo's default) sending is off: the job succeeds and records the skip as
a `mail.skipped` event instead of failing forever.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, Literal

from sqlalchemy.orm import Session

from accord.core import jobs
from accord.core.events import emit
from accord.core.settings import Settings, get_settings
from accord.models import Job

log = logging.getLogger("accord.mail")

MAIL_SEND = "mail.send"
SUBJECT_MAX = 300
BODY_MAX = 100_000
Outcome = Literal["sent", "skipped"]
EXTRA_HEADERS = ("Reply-To", "In-Reply-To", "References", "X-Loop")


class InvalidMail(ValueError):
    """A message that can never be sent (bad address, header injection): not worth retrying."""


def _check_header(value: str, name: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise InvalidMail(f"{name} may not contain line breaks")
    return value


def _check_address(value: str) -> str:
    value = _check_header(value.strip(), "to")
    _, addr = parseaddr(value)
    if "," in value or not addr or "@" not in addr or " " in addr:
        raise InvalidMail("to must be one e-mail address")
    return value


def enqueue_mail(
    session: Session,
    to: str,
    subject: str,
    body: str,
    *,
    tag: str = "",
    dedupe_key: str | None = None,
) -> Job | None:
    """Queue one plain-text message; with `dedupe_key` a second enqueue adds nothing."""
    settings = get_settings()
    payload = {
        "to": _check_address(to),
        "subject": _check_header(subject[:SUBJECT_MAX], "subject"),
        "body": body[:BODY_MAX],
        "message_id": make_msgid(domain=_domain(settings)),
        "tag": tag,
    }
    return jobs.enqueue(session, MAIL_SEND, payload, dedupe_key=dedupe_key)


def _domain(settings: Settings) -> str:
    _, addr = parseaddr(settings.smtp_from)
    return addr.rpartition("@")[2] or "localhost"


def build_message(payload: dict[str, Any], settings: Settings) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = _check_address(str(payload["to"]))
    msg["Subject"] = _check_header(str(payload.get("subject", "")), "subject")
    msg["Message-ID"] = str(payload.get("message_id") or make_msgid(domain=_domain(settings)))
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    # RFC 3834: no auto-replies to notifications; a payload may say otherwise (an agent's reply
    # is not automatic: `auto_submitted` None) and add threading headers
    auto = payload.get("auto_submitted", "auto-generated")
    if auto:
        msg["Auto-Submitted"] = _check_header(str(auto), "auto_submitted")
    for name, value in (payload.get("headers") or {}).items():
        if name in EXTRA_HEADERS and value:
            msg[name] = _check_header(str(value), name)
    msg.set_content(str(payload.get("body", "")))
    return msg


def send(payload: dict[str, Any], settings: Settings | None = None) -> Outcome:
    """Deliver one message now; raises on any SMTP or network failure (the job retries)."""
    settings = settings or get_settings()
    if not settings.smtp_host:
        return "skipped"
    msg = build_message(payload, settings)
    timeout = settings.smtp_timeout_seconds
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.smtp_ssl:
        client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                  context=context)
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        if settings.smtp_starttls and not settings.smtp_ssl:
            client.starttls(context=context)
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        client.send_message(msg)
    return "sent"


def _record(session: Session, outcome: str, payload: dict[str, Any], **extra: Any) -> None:
    message_id = str(payload.get("message_id", ""))
    emit(session, f"mail.{outcome}", "mail", message_id[:64],
         {"message_id": message_id, "tag": payload.get("tag", ""), **extra})


@jobs.handler(MAIL_SEND)
def send_job(session: Session, payload: dict[str, Any]) -> None:
    """The `mail.send` job. The outcome is recorded as an event carrying the Message-ID and the
    tag only: the recipient's address stays out of the outbox (it is personal data)."""
    try:
        outcome = send(payload)
    except InvalidMail as exc:  # retrying cannot help: record it and finish
        log.warning("mail %s not sent: %s", payload.get("message_id"), exc)
        _record(session, "rejected", payload, reason=str(exc))
        return
    if outcome == "skipped":
        log.info("mail %s skipped: ACCORD_SMTP_HOST is not set", payload.get("message_id"))
    _record(session, outcome, payload)
