"""The `accord` command."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import typer

from accord.analytics.cli import analytics_app
from accord.core.settings import get_settings
from accord.sales.cli import sales_app
from accord.service.cli import service_app

app = typer.Typer(
    help="Accord: enterprise customer management.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
user_app = typer.Typer(help="User management.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")


def _upgrade_quietly() -> None:
    from accord.core.migrate import upgrade

    upgrade()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Apply migrations (SQLite or PostgreSQL, per ACCORD_DATABASE_URL)."""
    from accord.core.migrate import current, upgrade

    url = get_settings().effective_database_url
    typer.echo(f"Upgrading {_redact(url)} ...")
    upgrade(revision=revision)
    typer.echo(f"Database at revision {current()}.")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    from accord.core.migrate import current

    typer.echo(current() or "(empty)")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@user_app.command("create")
def user_create(
    email: str = typer.Option(..., help="login e-mail"),
    full_name: str = typer.Option(..., "--name", help="full name"),
    role: str = typer.Option("admin", help="role"),
    password: str | None = typer.Option(None, help="password (prompted when omitted)"),
    team: str | None = typer.Option(None, help="team name (created when missing)"),
) -> None:
    """Create a user (the first admin, typically)."""
    from pydantic import ValidationError
    from sqlalchemy import select

    from accord.access import service
    from accord.access.policy import SYSTEM
    from accord.access.schemas import TeamIn, UserCreate
    from accord.core.db import session_scope
    from accord.core.errors import Problem
    from accord.models import Team

    _upgrade_quietly()
    if password is None:
        password = os.environ.get("ACCORD_NEW_USER_PASSWORD") or getpass.getpass("Password: ")
    try:
        with session_scope() as session:
            team_id = None
            if team:
                found = session.execute(select(Team).where(Team.name == team)).scalar()
                found = found or service.create_team(session, SYSTEM, TeamIn(name=team))
                team_id = found.id
            user = service.create_user(
                session,
                SYSTEM,
                UserCreate(
                    email=email, full_name=full_name, password=password, role=role, team_id=team_id
                ),
            )
            typer.echo(f"Created user {user.id} <{user.email}> with role {user.role}.")
    except ValidationError as exc:
        for err in exc.errors():
            typer.echo(f"error: {'.'.join(map(str, err['loc']))}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
    except Problem as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 if any row was altered or removed."""
    from accord.access import audit
    from accord.core.db import session_scope

    with session_scope(write=False) as session:
        result = audit.verify(session)
    if result.ok:
        typer.echo(f"Audit trail intact: {result.checked} entries verified.")
        return
    typer.echo(
        f"Audit trail BROKEN at entry {result.first_bad_id}: {result.reason} "
        f"({result.checked} entries verified before it).",
        err=True,
    )
    raise typer.Exit(1)


@app.command()
def worker(
    once: bool = typer.Option(False, help="run ready jobs once and exit"),
    poll: float = typer.Option(1.0, help="seconds between polls when idle"),
) -> None:
    """Run background jobs and relay the outbox (run as many as you like on PostgreSQL)."""
    import signal
    import threading

    from accord.core import jobs
    from accord.tasks import register_all

    register_all()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo("Worker started; Ctrl+C to stop.")
    try:
        done = jobs.work(stop=stop, poll=poll, once=once)
    except KeyboardInterrupt:
        done = 0
    typer.echo(f"Worker stopped ({done} jobs run).")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="bind address"),
    port: int = typer.Option(8000, help="port"),
    worker: bool = typer.Option(True, help="run the in-process jobs worker (embedded default)"),
    workers: int = typer.Option(
        1, min=1, help="web server processes (connections are dealt out to them in turn)"),
    access_log: bool = typer.Option(
        False, help="log every HTTP request to stderr (reads of personal data are in the "
        "audit trail either way)"),
) -> None:
    """Serve the web UI and the REST API."""
    from accord.core import serving

    _upgrade_quietly()
    if not worker:
        from accord.core.settings import reset_settings

        os.environ["ACCORD_EMBEDDED_WORKER"] = "false"
        reset_settings()
    typer.echo(f"Accord on http://{host}:{port}/  (API docs: http://{host}:{port}/api/docs)")
    serving.serve(
        app="accord.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info" if workers == 1 or access_log else "warning",
        access_log=access_log,  # a line per request costs ~10% of a small request's CPU
        http="accord.core.serving:NoDelayHTTP",
    )


@app.command()
def demo(
    customers: int = typer.Option(2000, min=10, help="how many customers to generate"),
    port: int = typer.Option(8000, help="port to serve on"),
    host: str = typer.Option("127.0.0.1", help="bind address"),
    seed: int = typer.Option(42, help="random seed"),
    no_serve: bool = typer.Option(False, "--no-serve", help="generate only"),
    fresh: bool = typer.Option(False, help="regenerate even if demo data exists"),
    extracts: Path | None = typer.Option(
        None,
        file_okay=False,
        help="also write messy source extracts (billing, webshop, "
        "support CSVs and truth.csv) of the demo customers here",
    ),
) -> None:
    """Generate a realistic customer base (once) and serve it."""
    from accord.demo.generator import DEMO_PASSWORD, DemoIncomplete, ensure_demo

    _upgrade_quietly()
    try:
        logins = ensure_demo(customers=customers, seed=seed, fresh=fresh)
    except DemoIncomplete as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if extracts is not None:
        from accord.demo.extracts import write_extracts

        counts = write_extracts(extracts, seed=seed)
        typer.echo(
            f"Source extracts in {extracts}: "
            + ", ".join(f"{name}.csv {rows:,} rows" for name, rows in counts.items())
        )
    typer.echo("")
    typer.echo(f"Accord demo: http://{host}:{port}/login")
    typer.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for email, role in logins:
        typer.echo(f"  {email:<34} {role}")
    from accord.demo.generator import demo_write_key

    write_key = demo_write_key()
    typer.echo(f"Collection API (Segment-compatible) write key of source 'web': {write_key}")
    typer.echo(f"  curl -u {write_key}: http://{host}:{port}/v1/track -H 'Content-Type: "
               """application/json' -d '{"userId": "42", "event": "Signed Up"}'""")
    typer.echo("")
    sys.stdout.flush()
    if not no_serve:
        serve(host=host, port=port, worker=True, workers=1, access_log=False)


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="CSV (any delimiter/encoding), JSON Lines or .xlsx file"),
    source: str = typer.Option(..., help="the source the file comes from (created when new)"),
    mapping: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                        help="YAML/JSON mapping (detected when omitted)"),
    kind: str | None = typer.Option(None, help="profile, order or interaction rows"),
    batch_size: int = typer.Option(5000, min=1, max=50_000, help="rows per transaction"),
    report_csv: Path | None = typer.Option(None, help="write the import report (CSV) here"),
    read_ahead: bool | None = typer.Option(
        None, "--read-ahead/--no-read-ahead",
        help="read, hash and standardise the next batch in a second process while one is written "
             "(default: for files of 8 MB or more on a machine with two CPUs or more)"),
) -> None:
    """Import a file; running it again resumes an interrupted import and changes nothing after."""
    from accord.integration.imports import cli_import

    _upgrade_quietly()
    code = cli_import(file, source, mapping, kind, batch_size, report_csv, echo=typer.echo,
                      read_ahead=read_ahead)
    if code:
        raise typer.Exit(code)


export_app = typer.Typer(help="Exports.", no_args_is_help=True)
app.add_typer(export_app, name="export")
app.add_typer(analytics_app, name="analytics")
app.add_typer(sales_app, name="sales")
app.add_typer(service_app, name="service")


@app.command()
def resolve(
    retrain: bool = typer.Option(False, help="estimate a new model version first"),
    engine: str | None = typer.Option(None, help="duckdb or spark (default: the setting)"),
) -> None:
    """Cluster all source profiles into golden customers (batch identity resolution)."""
    from accord.core.db import session_scope
    from accord.integration.resolution import resolve_all

    if engine not in (None, "duckdb", "spark"):
        raise typer.BadParameter("duckdb or spark", param_hint="--engine")
    _upgrade_quietly()
    with session_scope() as session:
        result = resolve_all(session, retrain=retrain, engine=engine)
    typer.echo(f"Resolved {result.profiles} profiles: {result.new_customers} new golden "
               f"customers, {result.auto_links} automatic links, {result.reviews} pairs sent "
               f"to review, {result.applied} pending records applied.")


@export_app.command("golden")
def export_golden(
    format: str = typer.Option("csv", "--format", help="csv"),
    output: Path | None = typer.Option(None, help="file to write (default: standard output)"),
) -> None:
    """One row per source record: golden id, match probability, source and external id."""
    import csv

    from accord.core.db import session_scope
    from accord.integration.resolution import export_golden as rows

    if format != "csv":
        raise typer.BadParameter("only csv is supported", param_hint="--format")
    fields = ["golden_id", "match_probability", "link_method", "source", "external_id",
              "source_record_id"]
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        with session_scope(write=False) as session:
            writer.writerows(rows(session))
    finally:
        if output:
            handle.close()


@app.command("mail-in")
def mail_in(
    host: str = typer.Option("127.0.0.1", help="bind address"),
    port: int | None = typer.Option(None, help="port (default: ACCORD_MAIL_IN_PORT, 2525)"),
) -> None:
    """Receive support e-mail over SMTP: new tickets and replies threaded to existing ones."""
    import contextlib
    import signal
    import threading

    from accord.service.mail_in import serve as serve_mail

    settings = get_settings()
    port = port or settings.mail_in_port
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(f"Accord mail-in on smtp://{host}:{port}/ (max {settings.mail_in_max_bytes} "
               "bytes); Ctrl+C to stop.")
    with contextlib.suppress(KeyboardInterrupt):
        serve_mail(host, port, stop)
    typer.echo("Mail-in stopped.")


if __name__ == "__main__":
    app()
