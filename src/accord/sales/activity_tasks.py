"""Background jobs of activities: the periodic reminder sweep (and, by importing
`accord.core.mail`, the `mail.send` job its reminders enqueue), and the notification a user gets
when a lead or deal is assigned to them (from the `lead.created`, `lead.assigned` and
`deal.assigned` events, once per event)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from accord.core import jobs
from accord.core import mail as _mail  # noqa: F401 - registers the mail.send handler
from accord.core.settings import get_settings

log = logging.getLogger("accord.sales")
REMINDERS = "sales.reminders"
NOTIFY_ASSIGNMENT = "sales.notify_assignment"
ASSIGNMENT_EVENTS = ("lead.created", "lead.assigned", "deal.assigned")


def reminder_interval() -> timedelta | None:
    """`ACCORD_SALES_REMINDER_MINUTES` (default 5); 0 turns reminders off."""
    minutes = get_settings().sales_reminder_minutes
    return timedelta(minutes=minutes) if minutes > 0 else None


@jobs.handler(REMINDERS)
def send_reminders(session: Session, payload: dict[str, Any]) -> None:
    from accord.sales.activities import send_due_reminders

    sent = send_due_reminders(session)
    if sent:
        log.info("sent %s activity reminders", sent)


jobs.periodic(REMINDERS, reminder_interval)


@jobs.handler(NOTIFY_ASSIGNMENT)
def notify_assignment(session: Session, payload: dict[str, Any]) -> None:
    from accord.sales.notifications import notify_assigned

    notify_assigned(session, payload)


for _event in ASSIGNMENT_EVENTS:
    jobs.subscribe(_event, NOTIFY_ASSIGNMENT)
