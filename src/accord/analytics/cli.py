"""`accord analytics ...`: model fitting and refreshes from the command line."""

from __future__ import annotations

import typer

analytics_app = typer.Typer(help="Customer analytics: CLV, churn, KPIs.", no_args_is_help=True)


@analytics_app.command("churn")
def churn(
    customers: str = typer.Option(..., "--customers", help="customer table (CSV, one row each)"),
    target: str = typer.Option(..., "--target", help="churn column (yes/no, 1/0, churned/...)"),
    id_col: str | None = typer.Option(None, "--id-col", help="customer id column (not a feature)"),
    date_col: str | None = typer.Option(
        None, "--date-col", help="date column for a time-based holdout (earlier → later)"
    ),
    folds: int = typer.Option(5, "--folds", help="cross-validation folds"),
    group_cols: str | None = typer.Option(
        None, "--group-cols", help="comma-separated fairness groups (default: gender, age, ...)"
    ),
    positive: str | None = typer.Option(
        None, "--positive", help="target value meaning churned (others: active)"
    ),
    calibration: str = typer.Option("sigmoid", help="sigmoid or isotonic"),
    threshold: float = typer.Option(0.5, help="probability threshold for the fairness rates"),
    scores_out: str | None = typer.Option(
        None, "--scores-out", help="write each customer's churn risk and top reasons (CSV)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the model card as JSON"),
) -> None:
    """Train, cross-validate and document a churn model on any customer table."""
    import json

    import pandas as pd

    from accord.analytics.churn import (
        ChurnInputError,
        json_safe,
        summary_lines,
        train_churn_model,
    )

    try:
        df = pd.read_csv(customers, low_memory=False)
    except FileNotFoundError:
        typer.echo(f"error: {customers}: no such file", err=True)
        raise typer.Exit(2) from None
    except pd.errors.EmptyDataError:
        typer.echo(f"error: {customers}: file is empty", err=True)
        raise typer.Exit(2) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        typer.echo(f"error: {customers}: cannot read as CSV: {exc}", err=True)
        raise typer.Exit(2) from None
    groups = [g.strip() for g in group_cols.split(",") if g.strip()] if group_cols else None
    try:
        result = train_churn_model(
            df, target, id_col=id_col, date_col=date_col, group_cols=groups, folds=folds,
            positive_label=positive, calibration=calibration, threshold=threshold,
        )
    except ChurnInputError as exc:
        typer.echo(f"error: {customers}: {exc}", err=True)
        raise typer.Exit(2) from None
    card = result.card
    if scores_out:
        result.model.explain(df).to_csv(scores_out, index=False)
        card = {**card, "scores_written": {"path": scores_out, "rows": len(df)}}
    if as_json:
        typer.echo(json.dumps(json_safe(card), indent=2, allow_nan=False))
    else:
        typer.echo("\n".join(summary_lines(card)))
        if scores_out:
            typer.echo(f"scores: {len(df)} customers → {scores_out}")


@analytics_app.command("clv")
def clv(
    transactions: str = typer.Option(..., "--transactions", help="transaction file (CSV)"),
    customer_col: str = typer.Option("customer_id", "--customer-col", help="customer id column"),
    date_col: str = typer.Option("date", "--date-col", help="purchase date column"),
    amount_col: str = typer.Option("amount", "--amount-col", help="purchase amount column"),
    observation_end: str | None = typer.Option(
        None, "--observation-end", help="last day of the data to use (default: last purchase)"
    ),
    time_unit: str = typer.Option("week", "--time-unit", help="day or week"),
    discount_rate: float = typer.Option(0.01, "--discount-rate", help="monthly discount rate"),
    horizon_months: int = typer.Option(12, "--horizon-months", help="CLV horizon in months"),
    date_format: str | None = typer.Option(
        None, "--date-format", help="strftime format of the dates (default: ISO 8601)"
    ),
    known_customers: str | None = typer.Option(
        None,
        "--known-customers",
        help="CSV of the known customers (its --customer-col column): others are rejected",
    ),
    scores_out: str | None = typer.Option(
        None, "--scores-out", help="write each customer's RFM summary and scores (CSV)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Fit BG/NBD + Gamma-Gamma on a transaction file; print parameters and CLV."""
    import json
    from typing import NoReturn

    import pandas as pd

    from accord.analytics.clv import CLVDataError, fit_clv, read_transactions_csv

    def fail(message: str) -> NoReturn:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)

    if time_unit not in ("day", "week"):
        fail(f"--time-unit must be day or week, not {time_unit!r}")
    if horizon_months < 1:
        fail("--horizon-months must be at least 1")
    if discount_rate <= -1:
        fail("--discount-rate must be greater than -1")
    end = None
    if observation_end is not None:
        end = pd.to_datetime(observation_end, format="ISO8601", errors="coerce")
        if pd.isna(end):
            fail(f"--observation-end: not a date (YYYY-MM-DD): {observation_end!r}")
    known = None
    if known_customers is not None:
        try:
            frame = pd.read_csv(known_customers, dtype=str, keep_default_na=False)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            fail(f"{known_customers}: cannot read as CSV: {e}")
        if customer_col not in frame.columns:
            fail(f"{known_customers}: no column {customer_col!r}")
        known = frame[customer_col].str.strip()
    try:
        tx = read_transactions_csv(
            transactions,
            customer_col,
            date_col,
            amount_col,
            known_customers=known,
            date_format=date_format,
        )
    except CLVDataError as exc:
        fail(f"{transactions}: {exc}")
    try:
        result = fit_clv(
            tx,
            observation_end=end,
            time_unit=time_unit,
            horizon_months=horizon_months,
            discount_rate=discount_rate,
        )
    except CLVDataError as exc:
        for r in tx.rejected[:20]:
            typer.echo(f"  rejected line {r.line}: {r.column}: {r.reason}", err=True)
        if len(tx.rejected) > 20:
            typer.echo(f"  ... and {len(tx.rejected) - 20} more problems", err=True)
        fail(
            f"{transactions}: {exc} ({tx.rows_read} rows read, {tx.rows_rejected} rejected)"
        )
    report = result.report()
    if scores_out:
        result.summary.to_frame().join(result.scores).to_csv(scores_out)
        report["scores_written"] = {"path": scores_out, "customers": len(result.scores)}
    if as_json:
        typer.echo(json.dumps(report, indent=2, allow_nan=False))
        return
    bg, gg, counts, c = report["bgnbd"], report["gamma_gamma"], report["counts"], report["clv"]
    lines = [
        f"rows: {counts['rows_read']} read, {counts['rows_valid']} valid, "
        f"{counts['rows_rejected']} rejected, {counts['rows_after_observation_end']} after the "
        f"observation end {report['observation_end']}",
        f"customers: {counts['customers']} ({counts['customers_with_repeat_purchases']} with "
        f"repeat purchases); time unit: {report['time_unit']}",
        f"BG/NBD:      r={bg['r']:.4g} alpha={bg['alpha']:.4g} a={bg['a']:.4g} b={bg['b']:.4g} "
        f"log-likelihood={bg['log_likelihood']:.6g}"
        + ("" if bg["converged"] else " NOT CONVERGED"),
        f"Gamma-Gamma: p={gg['p']:.4g} q={gg['q']:.4g} gamma={gg['gamma']:.4g} "
        f"log-likelihood={gg['log_likelihood']:.6g} ({gg['n_customers']} customers)"
        + ("" if gg["converged"] else " NOT CONVERGED"),
        f"CLV over {c['horizon_months']} months at {c['discount_rate']:.4g}/month: "
        f"total {c['total']:,.2f}, mean {c['mean']:,.2f}, median {c['median']:,.2f}",
    ]
    rejected = report["rejected"]
    for r in rejected[:20]:
        lines.append(f"  rejected line {r['line']}: {r['column']}: {r['reason']}")
    if len(rejected) > 20:
        lines.append(f"  ... and {len(rejected) - 20} more problems (all of them with --json)")
    if scores_out:
        lines.append(f"scores: {len(result.scores)} customers → {scores_out}")
    typer.echo("\n".join(lines))
