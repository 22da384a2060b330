"""`accord analytics ...`: model fitting and refreshes from the command line."""

from __future__ import annotations

from typing import NoReturn

import typer

analytics_app = typer.Typer(help="Customer analytics: CLV, churn, KPIs.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


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

    import pandas as pd

    from accord.analytics.clv import CLVDataError, fit_clv, read_transactions_csv

    if time_unit not in ("day", "week"):
        _fail(f"--time-unit must be day or week, not {time_unit!r}")
    if horizon_months < 1:
        _fail("--horizon-months must be at least 1")
    if discount_rate <= -1:
        _fail("--discount-rate must be greater than -1")
    end = None
    if observation_end is not None:
        end = pd.to_datetime(observation_end, format="ISO8601", errors="coerce")
        if pd.isna(end):
            _fail(f"--observation-end: not a date (YYYY-MM-DD): {observation_end!r}")
    known = None
    if known_customers is not None:
        try:
            frame = pd.read_csv(known_customers, dtype=str, keep_default_na=False)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            _fail(f"{known_customers}: cannot read as CSV: {e}")
        if customer_col not in frame.columns:
            _fail(f"{known_customers}: no column {customer_col!r}")
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
        _fail(f"{transactions}: {exc}")
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
        _fail(
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


@analytics_app.command("recommend")
def recommend(
    orders: str = typer.Option(..., "--orders", help="order lines (CSV, one row per line)"),
    customer_col: str = typer.Option("customer_id", "--customer-col", help="customer id column"),
    order_col: str = typer.Option("order_id", "--order-col", help="order id column"),
    product_col: str = typer.Option("product_id", "--product-col", help="product id column"),
    date_col: str = typer.Option("ordered_at", "--date-col", help="order date column"),
    split_date: str | None = typer.Option(
        None, "--split-date", help="train before, test from this date (default: 80th percentile)"
    ),
    k: int = typer.Option(10, "--k", help="suggestions per customer"),
    neighbours: int = typer.Option(100, "--neighbours", help="similar products kept per product"),
    repeat_products: str | None = typer.Option(
        None, "--repeat-products", help="comma-separated product ids that may be bought again"
    ),
    out: str | None = typer.Option(
        None, "--out", help="write every customer's top-k suggestions (CSV), fitted on all data"
    ),
    together_out: str | None = typer.Option(
        None, "--together-out", help="write the bought-together table (CSV)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the evaluation as JSON"),
) -> None:
    """Fit bought-together + item-kNN, evaluate on a time split against popularity."""
    import json

    import pandas as pd

    from accord.analytics.recommend import (
        RecommendInputError,
        bought_together,
        evaluate_time_split,
        fit_recommender,
        prepare_lines,
        recommendations_frame,
    )

    if k < 1:
        _fail("--k must be at least 1")
    if neighbours < 1:
        _fail("--neighbours must be at least 1")
    split = None
    if split_date is not None:
        split = pd.to_datetime(split_date, format="ISO8601", errors="coerce")
        if pd.isna(split):
            _fail(f"--split-date: not a date (YYYY-MM-DD): {split_date!r}")
    try:
        df = pd.read_csv(orders, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        _fail(f"{orders}: no such file")
    except pd.errors.EmptyDataError:
        _fail(f"{orders}: file is empty")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        _fail(f"{orders}: cannot read as CSV: {exc}")
    repeat = [p.strip() for p in repeat_products.split(",") if p.strip()] if repeat_products else []
    try:
        lines = prepare_lines(
            df, customer_col=customer_col, order_col=order_col, product_col=product_col,
            date_col=date_col,
        )
        for r in lines.rejected[:20]:  # CSV line = row + 2 (header, 1-based)
            typer.echo(f"  rejected line {r.row + 2}: {r.column}: {r.reason}", err=True)
        if len(lines.rejected) > 20:
            typer.echo(f"  ... and {len(lines.rejected) - 20} more problems", err=True)
        report = evaluate_time_split(
            lines, split_date=split, k=k, neighbours=neighbours, repeat_products=repeat
        )
        together = bought_together(lines, top_n=k)
        model = fit_recommender(lines, neighbours=neighbours, repeat_products=repeat)
    except RecommendInputError as exc:
        _fail(f"{orders}: {exc}")
    report["rows"] = {"read": lines.rows_read, "valid": len(lines.frame),
                      "rejected": lines.rows_read - len(lines.frame)}
    report["rejected"] = [
        {"line": r.row + 2, "column": r.column, "reason": r.reason} for r in lines.rejected[:100]
    ]
    report["bought_together_pairs"] = len(together)
    if together_out:
        together.to_csv(together_out, index=False)
        report["bought_together_written"] = {"path": together_out, "rows": len(together)}
    if out:
        frame = recommendations_frame(model, k=k)
        frame.to_csv(out, index=False)
        report["recommendations_written"] = {"path": out, "rows": len(frame)}
    if as_json:
        typer.echo(json.dumps(report, indent=2, allow_nan=False))
        return
    m = report["models"]
    typer.echo("\n".join([
        f"split {report['split_date']}: {report['train_lines']} training lines, "
        f"{report['test_lines']} test lines, {report['customers_evaluated']} customers evaluated",
        *(f"{name:>12}: precision@{k}={v['precision_at_k']:.4f} recall@{k}={v['recall_at_k']:.4f}"
          f" hit rate={v['hit_rate']:.4f} coverage={v['coverage']:.3f}" for name, v in m.items()),
    ]))


@analytics_app.command("score")
def score(
    as_of: str | None = typer.Option(
        None, "--as-of", help="score as of this UTC date/time (default: now)"
    ),
    window_days: int = typer.Option(
        180, "--window-days", help="churn = no purchase in this many days"
    ),
    risk_threshold: float = typer.Option(
        0.5, "--risk-threshold", help="churn risk from which a gold/platinum customer is flagged"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
) -> None:
    """Score every customer (RFM, CLV, churn risk, value tier) and write the scores back."""
    import json

    import pandas as pd

    from accord.analytics.rfm import RFMInputError
    from accord.analytics.scoring_service import refresh_scores
    from accord.core.db import session_scope

    when = None
    if as_of is not None:
        when = pd.to_datetime(as_of, format="ISO8601", errors="coerce", utc=True)
        if pd.isna(when):
            typer.echo(f"error: --as-of: not a date (YYYY-MM-DD): {as_of!r}", err=True)
            raise typer.Exit(2)
    if window_days < 1:
        typer.echo("error: --window-days must be at least 1", err=True)
        raise typer.Exit(2)
    if not 0.0 <= risk_threshold <= 1.0:
        typer.echo("error: --risk-threshold must be between 0 and 1", err=True)
        raise typer.Exit(2)
    try:
        with session_scope() as session:
            summary = refresh_scores(
                session, as_of=when, window_days=window_days, risk_threshold=risk_threshold
            )
    except (RFMInputError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    lines = [
        f"scored {summary['customers']} customers (run {summary['run_id']}, as of "
        f"{summary['as_of']}): {summary['with_rfm']} with RFM, {summary['with_clv']} with CLV, "
        f"{summary['with_churn_risk']} with churn risk, {summary['at_risk_valuable']} at risk "
        f"and valuable; {summary['profiles_updated']} profiles updated",
        *(f"model {k}: {v}" for k, v in summary["models"].items()),
        *(f"note: {n}" for n in summary["notes"]),
    ]
    typer.echo("\n".join(lines))


@analytics_app.command("run")
def run(
    engine: str | None = typer.Option(
        None, "--engine", help="duckdb or spark (default: ACCORD_ANALYTICS_ENGINE)"
    ),
    scores: bool = typer.Option(True, help="also refresh every customer's scores"),
    recommendations: bool = typer.Option(
        True, help="also refresh every customer's product suggestions and bought together"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the run's figures as JSON"),
) -> None:
    """Refresh everything: the KPIs (snapshot the store, run the KPI queries, write the values
    back), then every customer's scores (RFM, CLV, churn risk, value tier), then the product
    suggestions (too little purchase data keeps the previous ones and says why)."""
    import json
    import traceback

    from accord.analytics.recommend_service import refresh_recommendations
    from accord.analytics.rfm import RFMInputError
    from accord.analytics.scoring_service import refresh_scores
    from accord.analytics.service import record_failure, refresh_kpis
    from accord.core.db import session_scope

    if engine is not None and engine not in ("duckdb", "spark"):
        typer.echo(f"error: --engine: {engine!r} is not duckdb or spark", err=True)
        raise typer.Exit(2)
    try:
        with session_scope() as session:
            result = refresh_kpis(session, engine)
            run_id, figures = result.id, dict(result.figures)
    except Exception as exc:
        record_failure(engine, traceback.format_exc(limit=5))
        typer.echo(f"error: analytics refresh failed: {exc}", err=True)
        raise typer.Exit(1) from None
    summary: dict[str, object] | None = None
    if scores:
        try:
            with session_scope() as session:
                summary = refresh_scores(session)
        except (RFMInputError, ValueError) as exc:
            typer.echo(f"error: customer scores: {exc}", err=True)
            raise typer.Exit(2) from None
    recs: dict[str, object] | None = None
    if recommendations:
        try:
            with session_scope() as session:
                recs = refresh_recommendations(session)
        except ValueError as exc:
            typer.echo(f"error: recommendations: {exc}", err=True)
            raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"run": run_id, **figures, "scores": summary,
                               "recommendations": recs}, indent=2, default=str))
        return
    typer.echo(f"run {run_id}: {figures['values']} KPI values in {figures['total_seconds']} s "
               f"(snapshot {figures['snapshot_seconds']} s, queries {figures['compute_seconds']} "
               f"s, write-back {figures['write_seconds']} s)")
    if figures.get("no_data"):
        typer.echo("no data yet: " + ", ".join(figures["no_data"]))
    if summary is not None:
        typer.echo(f"scores {summary['run_id']}: {summary['customers']} customers, "
                   f"{summary['with_churn_risk']} with churn risk, "
                   f"{summary['at_risk_valuable']} at risk and valuable")
    if recs is not None:
        if recs["status"] == "done":
            typer.echo(f"recommendations: {recs['recommendations']} for {recs['customers']} "
                       f"customers, {recs['associations']} bought-together pairs")
        else:
            typer.echo(f"recommendations not refreshed: {recs['reason']}")
