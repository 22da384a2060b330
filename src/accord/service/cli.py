"""`accord service ...`: customer-service commands for operators (the worker runs the same jobs
on its own schedule; these run them once, now, and print what happened)."""

from __future__ import annotations

import json
from datetime import timedelta

import typer

service_app = typer.Typer(help="Customer service: SLA checks, survey schedules, deflection.",
                          no_args_is_help=True)


@service_app.command("sla-check")
def sla_check() -> None:
    """Record the SLA warnings and breaches that are due (once per timer) and print the counts."""
    from accord.core.db import session_scope
    from accord.service.sla_tasks import run_sla_check

    with session_scope() as session:
        result = run_sla_check(session)
    typer.echo(f"checked {result.tickets} tickets: {result.warnings} warnings, "
               f"{result.breaches} breaches recorded")


@service_app.command("run-surveys")
def run_surveys() -> None:
    """Send the survey schedules that are due (each customer at most once per period)."""
    from accord.core.db import session_scope
    from accord.service.surveys import run_due_schedules

    with session_scope() as session:
        reports = run_due_schedules(session)
    if not reports:
        typer.echo("no survey schedule is due")
    for r in reports:
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(r.skipped.items()))
        typer.echo(f"schedule {r.schedule_id}: sent {r.sent}"
                   + (f"; skipped {skipped}" if skipped else ""))


@service_app.command("deflection")
def deflection(
    days: int = typer.Option(30, min=1, help="the period: the last DAYS days"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON"),
) -> None:
    """The assistant's deflection rate: questions answered without a ticket."""
    from accord.core.clock import utcnow
    from accord.core.db import session_scope
    from accord.service.assistant import deflection_stats

    end = utcnow()
    with session_scope(write=False) as session:
        s = deflection_stats(session, end - timedelta(days=days), end)
    figures = {"days": days, "conversations": s.conversations, "with_question": s.with_question,
               "answered": s.answered, "handed_off": s.handed_off, "resolved": s.resolved,
               "deflected": s.deflected, "deflection_rate": s.rate}
    if as_json:
        typer.echo(json.dumps(figures))
        return
    rate = "no questions asked" if s.rate is None else f"{s.rate:.1%}"
    typer.echo(f"last {days} days: {s.with_question} conversations with a question, "
               f"{s.deflected} answered without a ticket, {s.handed_off} handed to a person; "
               f"deflection rate {rate}")
