"""`accord sales ...`: sales commands (lead import, lead-scoring training, forecasts)."""

from __future__ import annotations

import typer

sales_app = typer.Typer(help="Sales: leads, lead scoring, pipelines and forecasts.",
                        no_args_is_help=True)
# Each part of the domain adds its commands below.
# leads:


@sales_app.command("import-leads")
def import_leads(file: str = typer.Argument(..., help="CSV, JSON Lines or Excel file")) -> None:
    """Import leads; bad rows are listed with their line, good rows land (exit 1 if any row
    was refused). Re-importing the same file creates nothing new."""
    from pathlib import Path

    from accord.access.policy import Principal
    from accord.core.db import session_scope
    from accord.core.errors import ValidationProblem
    from accord.sales.lead_import import import_leads as run

    if not Path(file).is_file():
        typer.echo(f"no such file: {file}", err=True)
        raise typer.Exit(2)
    principal = Principal(user_id=None, email="cli:import-leads", role="admin", via="system")
    try:
        with session_scope() as session:
            report = run(session, principal, file)
    except ValidationProblem as exc:
        typer.echo(f"cannot import: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {report.created}, updated {report.updated}, "
               f"unchanged {report.unchanged}, refused {len(report.errors)}")
    for e in report.errors:
        typer.echo(f"line {e['line']}: {e['field'] + ': ' if e['field'] else ''}{e['reason']}",
                   err=True)
    if report.errors:
        raise typer.Exit(1)
# forecast:


@sales_app.command("train-lead-model")
def train_lead_model(
    as_json: bool = typer.Option(False, "--json", help="print the model's metrics as JSON"),
    rescore: bool = typer.Option(True, "--rescore/--no-rescore",
                                 help="rescore the open leads with the new model"),
) -> None:
    """Train the predictive lead score on past conversions (converted vs disqualified)."""
    import json

    from accord.access.policy import Principal
    from accord.core.db import session_scope
    from accord.sales import scoring

    principal = Principal(user_id=None, email="cli:train-lead-model", role="admin",
                          via="system")
    try:
        with session_scope() as session:
            model = scoring.train_lead_model(session, principal)
            card = {"model_id": model.id, "algorithm": model.algorithm,
                    "n_samples": model.n_samples, "metrics": model.metrics,
                    "trained_at": model.trained_at.isoformat()}
            card["rescored"] = scoring.rescore_leads(session) if rescore else 0
    except scoring.LeadModelError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(card, indent=2))
        return
    m = card["metrics"]
    typer.echo(f"model {card['model_id']} ({card['algorithm']}) on {card['n_samples']} leads: "
               f"ROC-AUC {m['roc_auc_cv']:.3f}, PR-AUC {m['pr_auc_cv']:.3f} "
               f"({m['cv_folds']}-fold CV), {card['rescored']} open leads rescored")


@sales_app.command("rescore-leads")
def rescore_leads() -> None:
    """Recompute the scores of every open lead (what the periodic job does)."""
    from accord.core.db import session_scope
    from accord.sales import scoring

    with session_scope() as session:
        count = scoring.rescore_leads(session)
    typer.echo(f"{count} open leads rescored")


@sales_app.command("forecast")
def forecast(
    period: str = typer.Option("quarter", help="month, quarter or year"),
    start: str | None = typer.Option(None, help="first day of a month (default: this quarter)"),
    backtest: int = typer.Option(0, "--backtest", help="also replay the last N quarters"),
) -> None:
    """Print the forecast (all deals) as JSON: what /api/v1/forecast returns to an admin."""
    import json
    from datetime import date
    from typing import cast

    from accord.access.policy import Principal
    from accord.core.db import session_scope
    from accord.core.errors import ValidationProblem
    from accord.sales import forecast as fc

    principal = Principal(user_id=None, email="cli:forecast", role="admin", via="system")
    try:
        first = date.fromisoformat(start) if start else None
        with session_scope(write=False) as session:
            out: dict[str, object] = {"forecast": fc.forecast(
                session, principal, first, period=cast(fc.Period, period),  # checked there
            ).model_dump(mode="json")}
            if backtest:
                out["backtest"] = fc.backtest(session, principal, backtest).model_dump(
                    mode="json")
    except ValueError as exc:
        typer.echo(f"error: --start: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationProblem as exc:
        typer.echo(f"error: {exc.field or ''}: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(out, indent=2))
