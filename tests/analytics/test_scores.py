"""Per-customer scores: RFM + CLV + churn risk + value tier on frames, and the bulk write-back
on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, update

from accord.analytics.clv import BGNBDParams, GammaGammaParams, simulate_transactions
from accord.analytics.scores import (
    HIGH_TIERS,
    compute_scores,
    reason_text,
    score_run,
    value_tiers,
)

AS_OF = pd.Timestamp("2025-01-01", tz="UTC")
FAST = {"n_estimators": 40}  # fewer trees: the tests check the plumbing, not the model


def _frames(n: int = 400, no_orders: int = 20, seed: int = 1):
    """Customers (some without orders) and BG/NBD-simulated orders over two years to AS_OF."""
    cust, dates, amounts = simulate_transactions(
        n, BGNBDParams(0.8, 30.0, 0.8, 2.5), GammaGammaParams(6.0, 4.0, 20.0),
        start="2023-01-01", acquisition_days=365, observation_days=731, time_unit="day",
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + no_orders + 1)
    first = pd.Series(pd.to_datetime(dates)).groupby(cust).min()
    created = pd.Series(pd.Timestamp("2022-12-01"), index=ids - 1)
    created.loc[first.index] = first.to_numpy() - pd.Timedelta(days=3)
    customers = pd.DataFrame({
        "id": ids,
        "created_at": pd.to_datetime(created.to_numpy()).tz_localize("UTC"),
        "country": rng.choice(["DE", "FR", "GB"], len(ids)),
        "gender": rng.choice(["female", "male"], len(ids)),
        "date_of_birth": pd.Timestamp("1980-01-01") + pd.to_timedelta(
            rng.integers(0, 15000, len(ids)), unit="D"),
        "account_id": None,
    })
    orders = pd.DataFrame({
        "customer_id": cust + 1,
        "ordered_at": pd.to_datetime(dates).tz_localize("UTC") + pd.Timedelta(hours=12),
        "total": np.round(amounts, 2),
        "status": np.where(rng.random(len(cust)) < 0.03, "cancelled", "delivered"),
        "currency": "EUR",
    })
    return customers, orders


@pytest.fixture(scope="module")
def run():
    customers, orders = _frames()
    return score_run(customers, orders, None, AS_OF, window_days=120, churn_params=FAST)


def test_every_customer_gets_a_row_and_non_buyers_a_reason(run) -> None:
    s = run.scores
    assert len(s) == 420 and s["customer_id"].is_unique
    buyers = s["frequency"].notna()
    assert buyers.sum() == 400
    assert s.loc[buyers, "rfm_segment"].notna().all()
    for col in ("rfm_segment", "clv_12m", "p_alive", "churn_risk", "value_tier"):
        assert s.loc[~buyers, col].isna().all(), col
    for missing in s.loc[~buyers, "missing"]:
        assert missing["churn_risk"] == "no purchase yet"
        assert missing["clv_12m"] == "no purchase yet"
    assert not s.loc[~buyers, "at_risk_valuable"].any()
    assert run.skipped == {}


def test_clv_and_tiers(run) -> None:
    s = run.scores[run.scores["clv_12m"].notna()]
    assert len(s) == 400
    assert (s["clv_12m"] >= 0).all() and s["p_alive"].between(0, 1).all()
    assert (s["expected_purchases_12m"] >= 0).all()
    # the tier follows the CLV rank: every platinum is worth at least every gold, and so on
    order = ["platinum", "gold", "silver", "bronze"]
    for better, worse in zip(order, order[1:], strict=False):
        assert s.loc[s.value_tier == better, "clv_12m"].min() >= s.loc[
            s.value_tier == worse, "clv_12m"].max()
    assert s["value_tier"].isin(HIGH_TIERS).sum() == pytest.approx(80, abs=2)
    card = run.models["clv"]
    assert card["bgnbd"]["n_customers"] == 400 and card["gamma_gamma"]["p"] > 0


def test_churn_model_time_based_and_explained(run) -> None:
    s = run.scores
    risk = s["churn_risk"].dropna()
    assert len(risk) == 400 and risk.between(0, 1).all()
    card = run.models["churn"]
    assert card["label"]["window_days"] == 120
    assert card["label"]["cutoff"].startswith("2024-09-03")
    assert card["data"]["rows"] > 100
    # out-of-time check: trained one window earlier, tested on the current labels
    oot = card["out_of_time"]
    assert oot["train_cutoff"].startswith("2024-05-06") and oot["test_rows"] == card["data"]["rows"]
    assert 0.5 < oot["roc_auc"] <= 1.0
    assert set(card["fairness"]["groups"]) == {"country", "gender", "age"}
    assert "gender" not in card["data"]["numeric_features"] + card["data"]["categorical_features"]
    for reasons in s["churn_reasons"]:
        assert len(reasons) <= 3
        contributions = [r["contribution"] for r in reasons]
        assert all(c > 0 for c in contributions) and contributions == sorted(contributions,
                                                                               reverse=True)
        assert all(r["text"] for r in reasons)
    assert s["churn_reasons"].map(len).sum() > 0
    flag = s["value_tier"].isin(HIGH_TIERS) & (s["churn_risk"] >= 0.5)
    assert (s["at_risk_valuable"] == flag).all()


def test_path_contributions_add_up_to_the_churn_log_odds() -> None:
    from accord.analytics.rfm import valid_orders
    from accord.analytics.scores import _train_churn, build_features, path_contributions

    customers, orders = _frames()
    purchases = valid_orders(orders, AS_OF)
    model, _ = _train_churn(customers, purchases, orders, None, None, AS_OF, 120, 10_000, 0,
                            FAST)
    feats = build_features(customers, purchases, orders, None, None, AS_OF)
    contrib, base = path_contributions(model, feats)
    p = model.predict_proba(feats)
    assert np.allclose(base + contrib.sum(axis=1).to_numpy(), np.log(p / (1 - p)), atol=1e-9)
    # the reasons name the features pushing the risk up, largest first
    shap, _ = model.contributions(feats)
    agree = (shap.to_numpy().argmax(1) == contrib.to_numpy().argmax(1)).mean()
    assert agree > 0.6  # same leading reason as TreeSHAP for most customers


def test_too_few_orders_are_refused_not_invented() -> None:
    customers, orders = _frames(n=400)
    keep = orders["customer_id"] <= 6
    frame = compute_scores(customers, orders[keep], None, AS_OF, churn_params=FAST)
    assert frame["clv_12m"].isna().all() and frame["churn_risk"].isna().all()
    assert frame["value_tier"].isna().all() and not frame["at_risk_valuable"].any()
    assert "too little data" in frame.attrs["skipped"]["clv"]
    assert "too few customers" in frame.attrs["skipped"]["churn"]
    buyer = frame[frame["frequency"].notna()].iloc[0]
    assert buyer["missing"]["clv_12m"].startswith("CLV model not fitted")
    assert buyer["missing"]["churn_risk"].startswith("churn model not trained")
    assert frame["rfm_segment"].notna().sum() == 6  # RFM is a ranking: it needs no model


def _loyal_frames(gap, n: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    start = AS_OF - pd.Timedelta(days=400)
    customers = pd.DataFrame({"id": np.arange(1, n + 1), "created_at": start})
    rows = []
    for c in range(1, n + 1):
        mean_gap = rng.uniform(8, 60)
        day = int(rng.integers(0, 30))
        while day < 400:
            rows.append((c, start + pd.Timedelta(days=day), float(rng.gamma(4, 10)), "delivered"))
            day += int(gap(rng, mean_gap))
    return customers, pd.DataFrame(rows, columns=["customer_id", "ordered_at", "total", "status"])


def test_a_degenerate_clv_fit_is_reported_not_filled_in() -> None:
    """Clockwork buyers (every 20 days, nobody drops out) push BG/NBD to a boundary."""
    customers, orders = _loyal_frames(lambda rng, c: 20)
    run = score_run(customers, orders, None, AS_OF, window_days=90, churn_params=FAST)
    assert "degenerate" in run.skipped["clv"]
    assert run.scores["clv_12m"].isna().all() and run.scores["value_tier"].isna().all()
    assert all("degenerate" in m["clv_12m"] for m in run.scores["missing"])


def test_one_class_churn_target_is_skipped_with_the_reason() -> None:
    """Everyone buys again within 85 days, up to the as-of date: nobody churns in the window."""
    customers, orders = _loyal_frames(lambda rng, c: min(85, max(1, rng.exponential(c))))
    run = score_run(customers, orders, None, AS_OF, window_days=90, churn_params=FAST)
    assert "one-class" in run.skipped["churn"] and "churn" not in run.models
    assert run.scores["churn_risk"].isna().all()
    assert all("one-class" in m["churn_risk"] for m in run.scores["missing"])
    assert run.scores["clv_12m"].notna().all()  # the other scores still work


def test_value_tiers_by_rank() -> None:
    clv = pd.Series([*range(1, 101), None], dtype=float)
    tiers = value_tiers(clv)
    assert tiers.iloc[95:100].eq("platinum").all() and tiers.iloc[94] == "gold"
    assert tiers.value_counts().to_dict() == {"bronze": 50, "silver": 30, "gold": 15,
                                              "platinum": 5}
    assert tiers.iloc[100] is None
    # ties share the better tier
    assert value_tiers(pd.Series([5.0] * 10)).eq("platinum").all()


def test_reasons_in_plain_language() -> None:
    assert reason_text("days_since_last_order", 212.0) == "No order for 212 days"
    assert reason_text("interactions_90d_email", 0.0) == \
        "0 email interaction(s) in the last 90 days"
    assert reason_text("cf_loyalty", "gold", {"cf_loyalty": "Loyalty tier"}) == \
        "Loyalty tier: gold"
    assert reason_text("b2b", 1.0) == "Business customer"
    assert reason_text("avg_order_value", 1234.5) == "Average order 1,234.50"
    assert reason_text("country", None) == "Country unknown"


# --------------------------------------------------------------------------- write-back

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def test_refresh_scores_writes_back_in_bulk(db, session) -> None:
    from accord.analytics.scoring_service import refresh_scores
    from accord.core.db import session_scope
    from accord.demo.generator import ensure_demo
    from accord.models import AuditEntry, Customer, CustomerScore, ScoreModel

    ensure_demo(300, 7, now=NOW, progress=lambda *a: None)
    with session_scope() as s:  # one profile merged away: not scored
        s.execute(update(Customer).where(Customer.id == 2).values(merged_into_id=1))
    summary = refresh_scores(session, as_of=NOW, churn_params=FAST)
    session.commit()
    assert summary["customers"] == 299
    assert summary["model_versions"] == {"clv": 1, "churn": 1}
    rows = {r.customer_id: r for r in session.execute(select(CustomerScore)).scalars()}
    assert len(rows) == 299 and 2 not in rows
    customers = {c.id: c for c in session.execute(select(Customer)).scalars()}
    scored = [r for r in rows.values() if r.value_tier is not None]
    assert scored and summary["with_clv"] == len(scored)
    for r in scored:
        c = customers[r.customer_id]
        assert c.value_tier == r.value_tier
        assert c.lifetime_value == r.monetary
        assert r.churn_risk is not None and 0 <= r.churn_risk <= 1
        assert r.at_risk_valuable == (r.value_tier in HIGH_TIERS and r.churn_risk >= 0.5)
    for r in rows.values():
        if r.frequency is None:
            assert r.clv_12m is None and r.missing["clv_12m"] == "no purchase yet"
    models = session.execute(select(ScoreModel)).scalars().all()
    assert {(m.kind, m.status) for m in models} == {("clv", "trained"), ("churn", "trained")}
    assert all(m.data_rows == 299 for m in models)
    entry = session.execute(
        select(AuditEntry).where(AuditEntry.resource == "customer_scores")
    ).scalar_one()
    assert entry.action == "score" and entry.detail["customers"] == 299
    # a second run replaces the rows, adds model versions and leaves unchanged profiles alone
    versions = {c.id: c.version for c in customers.values()}
    session.expire_all()
    again = refresh_scores(session, as_of=NOW, churn_params=FAST)
    session.commit()
    assert again["model_versions"] == {"clv": 2, "churn": 2}
    assert again["profiles_updated"] == 0
    assert session.scalar(select(func.count()).select_from(CustomerScore)) == 299
    assert session.scalar(select(func.count(func.distinct(CustomerScore.run_id)))) == 1
    after = {c.id: c.version for c in session.execute(select(Customer)).scalars()}
    assert after == versions


def test_refresh_on_too_little_data_records_skips(db, session) -> None:
    from accord.analytics.scoring_service import refresh_scores
    from accord.core.db import session_scope
    from accord.models import Customer, Order, ScoreModel

    with session_scope() as s:
        for i in range(3):
            c = Customer(first_name=f"C{i}", display_name=f"C{i}", name_key="c", name_key_alt="c",
                         lifetime_value=None)
            s.add(c)
            s.flush()
            s.add(Order(customer_id=c.id, number=f"N{i}", status="delivered", currency="EUR",
                        total=10 + i, ordered_at=NOW - timedelta(days=10 * i)))
    summary = refresh_scores(session, as_of=NOW)
    session.commit()
    assert summary["with_rfm"] == 3 and summary["with_clv"] == 0
    assert summary["models"]["clv"].startswith("skipped: CLV model not fitted")
    models = session.execute(select(ScoreModel).order_by(ScoreModel.kind)).scalars().all()
    assert [(m.kind, m.status) for m in models] == [("churn", "skipped"), ("clv", "skipped")]
    assert all(m.reason for m in models)
    # realised revenue is still written; no tier is invented
    ltv = sorted(float(c.lifetime_value) for c in session.execute(select(Customer)).scalars())
    assert ltv == [10.0, 11.0, 12.0]
    assert all(c.value_tier is None for c in session.execute(select(Customer)).scalars())


def test_cli_score(db) -> None:
    import json

    from typer.testing import CliRunner

    from accord.cli import app
    from accord.core.db import session_scope
    from accord.models import Customer, Order

    with session_scope() as s:
        c = Customer(first_name="Ann", display_name="Ann", name_key="ann", name_key_alt="ann")
        s.add(c)
        s.flush()
        s.add(Order(customer_id=c.id, number="N1", status="delivered", currency="EUR",
                    total=25, ordered_at=NOW - timedelta(days=3)))
    runner = CliRunner()
    bad = runner.invoke(app, ["analytics", "score", "--as-of", "yesterday"])
    assert bad.exit_code == 2 and "--as-of" in bad.output
    r = runner.invoke(app, ["analytics", "score", "--as-of", "2026-01-15", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["customers"] == 1 and summary["with_rfm"] == 1 and summary["with_clv"] == 0
    assert summary["models"]["churn"].startswith("skipped")
    text = runner.invoke(app, ["analytics", "score", "--as-of", "2026-01-15"])
    assert text.exit_code == 0 and "scored 1 customers" in text.output
