"""Background jobs of surveys: a survey when a ticket is solved (the `ticket.solved` event, once
per event) and the periodic sweep that runs due survey schedules."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from accord.core import jobs
from accord.core import mail as _mail  # noqa: F401 - registers the mail.send handler
from accord.core.settings import get_settings

log = logging.getLogger("accord.service.surveys")
ON_SOLVED = "surveys.on_ticket_solved"
SCHEDULES = "surveys.schedules"


@jobs.handler(ON_SOLVED)
def on_ticket_solved(session: Session, event: dict[str, Any]) -> None:
    """A redelivered event sends nothing twice (one `ticket_solved` invitation per ticket)."""
    from accord.service.surveys import send_for_ticket

    payload = event.get("payload") or {}
    raw = payload.get("ticket_id", event.get("aggregate_id"))
    try:
        ticket_id = int(raw)
    except (TypeError, ValueError):
        log.warning("ticket.solved event %s without a ticket id", event.get("event_id"))
        return
    send_for_ticket(session, ticket_id)


jobs.subscribe("ticket.solved", ON_SOLVED)


def schedule_interval() -> timedelta | None:
    """`ACCORD_SURVEY_SCHEDULE_MINUTES` (default 60); 0 turns scheduled surveys off."""
    minutes = get_settings().survey_schedule_minutes
    return timedelta(minutes=minutes) if minutes > 0 else None


@jobs.handler(SCHEDULES)
def run_schedules(session: Session, payload: dict[str, Any]) -> None:
    from accord.service.surveys import run_due_schedules

    for report in run_due_schedules(session):
        log.info("survey schedule %s ran: %s sent", report.schedule_id, report.sent)


jobs.periodic(SCHEDULES, schedule_interval)
