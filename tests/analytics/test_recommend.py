"""Recommendations: bought-together rules, item-kNN, the time-split evaluation and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from accord.analytics.recommend import (
    BOUGHT_TOGETHER_COLUMNS,
    REASON_POPULAR_NEW,
    RECOMMENDATION_COLUMNS,
    RecommendInputError,
    _cooccurrence,
    _top_k_dense,
    bought_together,
    evaluate_time_split,
    fit_recommender,
    order_lines_from_tables,
    planted_orders,
    prepare_lines,
    recommendations_frame,
)
from accord.cli import app

runner = CliRunner()

# Six orders of four customers over products A-D (o1 lists A twice: one basket entry).
BASKETS: dict[str, tuple[str, str, list[str]]] = {
    "o1": ("c1", "2025-01-01", ["A", "B", "A"]),
    "o2": ("c2", "2025-01-02", ["A", "B"]),
    "o3": ("c3", "2025-01-03", ["A", "C"]),
    "o4": ("c4", "2025-01-04", ["B"]),
    "o5": ("c5", "2025-01-05", ["C", "D"]),
    "o6": ("c1", "2025-01-06", ["A", "B", "C"]),
}


def _frame(baskets: dict[str, tuple[str, str, list[str]]] = BASKETS) -> pd.DataFrame:
    rows = [
        {"order_id": o, "customer_id": c, "ordered_at": d, "product_id": p}
        for o, (c, d, products) in baskets.items()
        for p in products
    ]
    return pd.DataFrame(rows)


def _rule(table: pd.DataFrame, a: str, b: str) -> pd.Series:
    hit = table[(table["product_id"] == a) & (table["other_product_id"] == b)]
    assert len(hit) == 1, f"no rule {a} → {b}"
    return hit.iloc[0]


def test_bought_together_support_confidence_lift_by_hand() -> None:
    table = bought_together(prepare_lines(_frame()), min_orders=2)
    assert list(table.columns) == list(BOUGHT_TOGETHER_COLUMNS)
    # A in 4 of 6 orders, B in 4, C in 3; A&B together in 3 (o1, o2, o6), A&C in 2 (o3, o6).
    ab = _rule(table, "A", "B")
    assert ab["orders_together"] == 3
    assert ab["support"] == pytest.approx(3 / 6)
    assert ab["confidence"] == pytest.approx(3 / 4)
    assert ab["lift"] == pytest.approx((3 / 4) / (4 / 6))
    ca = _rule(table, "C", "A")
    assert ca["confidence"] == pytest.approx(2 / 3)
    assert ca["lift"] == pytest.approx((2 / 3) / (4 / 6))
    # A's list ranks B (lift 1.125) above C (lift 1.0).
    assert table[table["product_id"] == "A"]["other_product_id"].tolist() == ["B", "C"]
    # B&C and C&D share a single order: below the two-order minimum.
    pairs = set(zip(table["product_id"], table["other_product_id"], strict=True))
    assert not pairs & {("B", "C"), ("C", "B"), ("C", "D"), ("D", "C")}
    assert len(bought_together(prepare_lines(_frame()), min_orders=1)) == 8
    assert bought_together(prepare_lines(_frame()), min_orders=2, min_confidence=0.7)[
        ["product_id", "other_product_id"]].values.tolist() == [["A", "B"], ["B", "A"]]


def test_item_knn_cosine_and_explained_suggestions() -> None:
    model = fit_recommender(prepare_lines(_frame()), names={"A": "Tent", "B": "Mat"})
    a, b, c = (model.products.get_loc(p) for p in "ABC")
    # customers buying A: c1, c2, c3; B: c1, c2, c4 → cosine 2 / (√3 · √3)
    assert model.similarity[a, b] == pytest.approx(2 / 3)
    assert model.similarity[a, a] == 0
    recs = model.recommend_for(["c3", "c4", "nobody"], k=2)
    c3 = recs[recs["customer_id"] == "c3"]
    assert "A" not in c3["product_id"].tolist() and "C" not in c3["product_id"].tolist()
    assert c3.iloc[0]["product_id"] == "B"
    assert c3.iloc[0]["reason"].startswith("bought Tent")
    assert c3.iloc[0]["reason"].endswith("also bought Mat")
    assert c3.iloc[0]["score"] > 0
    c4 = recs[recs["customer_id"] == "c4"]
    assert c4.iloc[0]["product_id"] == "A"
    assert (recs[recs["customer_id"] == "nobody"]["reason"] == REASON_POPULAR_NEW).all()
    # C: c1, c3, c5; B: c1, c2, c4 → one shared customer, 1 / (√3 · √3)
    assert model.similarity[c, b] == pytest.approx(1 / 3)


def test_already_bought_excluded_unless_repeat_product() -> None:
    lines = prepare_lines(_frame())
    plain = fit_recommender(lines).recommend_for(["c1"], k=4)
    assert set(plain["product_id"]) == {"D"}  # c1 has A, B, C: only D is left
    repeat = fit_recommender(lines, repeat_products=["A"]).recommend_for(["c1"], k=4)
    assert set(repeat["product_id"]) == {"A", "D"}


def test_recommendations_frame_columns() -> None:
    model = fit_recommender(prepare_lines(_frame()))
    frame = recommendations_frame(model, k=2)
    assert list(frame.columns) == list(RECOMMENDATION_COLUMNS)
    assert set(frame["customer_id"]) == {"c1", "c2", "c3", "c4", "c5"}
    assert frame.groupby("customer_id")["rank"].max().le(2).all()
    assert (frame["because_product_id_1"].notna() == (frame["score"] > 0)).all()
    assert frame["because_product_id_2"].notna().le(frame["because_product_id_1"].notna()).all()
    c3 = frame[frame["customer_id"] == "c3"].iloc[0]  # B, because of A (2/3) and C (1/3)
    assert (c3["product_id"], c3["because_product_id_1"], c3["because_product_id_2"]) == (
        "B", "A", "C")


def test_personalised_beats_popularity_on_planted_tastes() -> None:
    df = planted_orders(3000, 30_000, 200, tastes=20, seed=7)
    report = evaluate_time_split(prepare_lines(df), k=10)
    knn, pop = report["models"]["item_knn"], report["models"]["popularity"]
    assert report["customers_evaluated"] > 1000
    assert knn["precision_at_k"] > 1.3 * pop["precision_at_k"]
    assert knn["recall_at_k"] > pop["recall_at_k"]
    assert knn["coverage"] > pop["coverage"]


def test_bought_together_finds_planted_partners() -> None:
    df = planted_orders(3000, 30_000, 200, tastes=20, seed=3)
    partner = df.attrs["partner"]
    table = bought_together(prepare_lines(df), top_n=3, min_orders=5)
    found = table.groupby("product_id")["other_product_id"].agg(set)
    share = np.mean([partner[p] in found.get(p, set()) for p in range(200)])
    assert share > 0.9


def test_bad_input() -> None:
    empty = pd.DataFrame(columns=["order_id", "customer_id", "product_id", "ordered_at"])
    with pytest.raises(RecommendInputError, match="too little valid data"):
        fit_recommender(prepare_lines(empty))
    one = _frame({"o1": ("c1", "2025-01-01", ["A"]), "o2": ("c2", "2025-01-02", ["A", "A"])})
    with pytest.raises(RecommendInputError, match="only 1 distinct product"):
        bought_together(prepare_lines(one))
    with pytest.raises(RecommendInputError, match="no column 'sku'"):
        prepare_lines(_frame(), product_col="sku")
    df = _frame()
    df.loc[1, "ordered_at"] = "yesterday"
    df.loc[3, "customer_id"] = None
    lines = prepare_lines(df)
    assert [(r.row, r.column) for r in lines.rejected] == [(1, "ordered_at"), (3, "customer_id")]
    assert "not a date: 'yesterday'" in lines.rejected[0].reason
    assert len(lines.frame) == len(df) - 2
    with pytest.raises(RecommendInputError, match="no training"):
        evaluate_time_split(prepare_lines(_frame()), split_date="2024-01-01")
    with pytest.raises(RecommendInputError, match="no test"):
        evaluate_time_split(prepare_lines(_frame()), split_date="2030-01-01")


def test_cli_evaluates_and_writes(tmp_path: Path) -> None:
    df = planted_orders(1500, 15_000, 100, tastes=10, seed=5).rename(
        columns={"customer_id": "cust", "product_id": "sku"}
    )
    path = tmp_path / "orders.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "recs.csv"
    result = runner.invoke(app, [
        "analytics", "recommend", "--orders", str(path), "--customer-col", "cust",
        "--product-col", "sku", "--split-date", "2025-06-01", "--k", "5", "--out", str(out),
        "--json",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split_date"] == "2025-06-01"
    assert set(report["models"]) == {"item_knn", "popularity"}
    assert report["models"]["item_knn"]["precision_at_k"] > report["models"]["popularity"][
        "precision_at_k"]
    assert report["rows"] == {"read": len(df), "valid": len(df), "rejected": 0}
    recs = pd.read_csv(out)
    assert list(recs.columns) == list(RECOMMENDATION_COLUMNS)
    assert recs["customer_id"].nunique() == df["cust"].nunique()


def test_cli_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["analytics", "recommend", "--orders", str(tmp_path / "x.csv")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    one = tmp_path / "one.csv"
    _frame({"o1": ("c1", "2025-01-01", ["A"]), "o2": ("c2", "2025-02-01", ["A"])}).to_csv(
        one, index=False
    )
    res = runner.invoke(app, ["analytics", "recommend", "--orders", str(one)])
    assert res.exit_code == 2 and "only 1 distinct product" in res.stderr
    good = tmp_path / "good.csv"
    _frame().to_csv(good, index=False)
    res = runner.invoke(app, ["analytics", "recommend", "--orders", str(good), "--split-date", "x"])
    assert res.exit_code == 2 and "--split-date" in res.stderr
    res = runner.invoke(app, ["analytics", "recommend", "--orders", str(good), "--date-col", "d"])
    assert res.exit_code == 2 and "no column 'd'" in res.stderr


def test_cooccurrence_and_top_k_match_reference() -> None:
    rng = np.random.default_rng(11)
    m = sp.random(500, 40, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    m.data[:] = 1
    expected = (m.T @ m).toarray()
    assert np.array_equal(_cooccurrence(m, max_pairs=50).toarray(), expected)  # many blocks
    dense = rng.random((30, 40)).astype(np.float32)
    dense[0, :35] = -np.inf
    codes, values = _top_k_dense(dense, 7)
    reference = np.argsort(-dense, axis=1, kind="stable")[:, :7]
    assert np.array_equal(values, np.take_along_axis(dense, reference, axis=1))
    assert np.array_equal(codes[1:], reference[1:])


def test_order_lines_from_tables() -> None:
    orders = pd.DataFrame({"id": [1, 2, 3], "customer_id": [10, 10, 11],
                           "ordered_at": ["2025-01-01", "2025-01-02", "2025-01-03"],
                           "status": ["delivered", "cancelled", "paid"]})
    lines = pd.DataFrame({"order_id": [1, 1, 2, 3], "product_id": [5, None, 6, 7]})
    out = order_lines_from_tables(orders, lines)
    assert out[["customer_id", "order_id", "product_id"]].values.tolist() == [
        [10, 1, 5], [11, 3, 7]]
