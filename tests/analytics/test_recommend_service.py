"""Suggestions and "bought together" written back to the store: what is stored equals a direct
fit on the same purchases, a second run replaces the first, too little data keeps the old."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from accord.analytics.recommend import fit_recommender, prepare_lines, recommendations_frame
from accord.analytics.recommend_service import refresh_recommendations
from accord.core.settings import reset_settings
from accord.models import (
    AuditEntry,
    Customer,
    CustomerRecommendation,
    CustomerScore,
    Order,
    OrderLine,
    Product,
    ProductAssociation,
)

PRODUCTS = {"Tent": True, "Stove": True, "Mat": True, "Lamp": True, "OldTent": False}
# customer → orders (status, products); C6 is merged into C1, so its order is not a purchase
ORDERS: dict[str, list[tuple[str, list[str]]]] = {
    "C1": [("paid", ["Tent", "Stove"]), ("delivered", ["Mat", "OldTent"])],
    "C2": [("paid", ["Tent", "Stove", "Mat", "OldTent"])],
    "C3": [("paid", ["Tent", "Lamp"]), ("cancelled", ["Mat"])],
    "C4": [("shipped", ["Stove", "Mat"])],
    "C5": [("paid", ["Tent"]), ("refunded", ["Lamp"])],
    "C6": [("paid", ["Lamp", "Stove"])],
}


def _seed(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    products: dict[str, int] = {}
    for n, (name, active) in enumerate(PRODUCTS.items()):
        p = Product(sku=f"SKU-{n}", name=name, price=Decimal("10"), currency="EUR",
                    active=active)
        session.add(p)
        session.flush()
        products[name] = p.id
    customers: dict[str, int] = {}
    n = 0
    for who, orders in ORDERS.items():
        c = Customer(display_name=who, first_name=who, name_key=who, name_key_alt=who)
        session.add(c)
        session.flush()
        customers[who] = c.id
        for status, names in orders:
            n += 1
            order = Order(customer_id=c.id, number=f"R-{n}", status=status, currency="EUR",
                          total=Decimal(10 * len(names)),
                          ordered_at=datetime(2025, 1, n, tzinfo=UTC))
            order.lines = [OrderLine(product_id=products[p], description=p, quantity=1,
                                     unit_price=Decimal("10"), line_total=Decimal("10"))
                           for p in names]
            session.add(order)
    session.flush()
    session.get(Customer, customers["C6"]).merged_into_id = customers["C1"]  # type: ignore[union-attr]
    session.commit()
    return customers, products


def _stored(session: Session) -> pd.DataFrame:
    r = CustomerRecommendation.__table__.c
    rows = session.execute(select(r.customer_id, r.rank, r.product_id, r.score,
                                  r.because_product_id_1, r.because_product_id_2)
                           .order_by(r.customer_id, r.rank)).all()
    return pd.DataFrame(rows, columns=["customer_id", "rank", "product_id", "score",
                                       "because_product_id_1", "because_product_id_2"])


def _purchases(customers: dict[str, int], products: dict[str, int]) -> pd.DataFrame:
    """The purchase lines by the definition (not merged, not cancelled/refunded), by hand."""
    rows, n = [], 0
    for who, orders in ORDERS.items():
        for status, names in orders:
            n += 1
            if who != "C6" and status not in ("cancelled", "refunded"):
                rows += [(customers[who], n, products[p], datetime(2025, 1, n)) for p in names]
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "product_id", "ordered_at"])


def test_stored_suggestions_equal_a_direct_fit(session: Session) -> None:
    customers, products = _seed(session)
    summary = refresh_recommendations(session, k=3)
    session.commit()
    assert summary["status"] == "done" and summary["reason"] is None
    stored = _stored(session)
    # the same model fitted directly on the purchases, minus the inactive product
    direct = recommendations_frame(fit_recommender(prepare_lines(
        _purchases(customers, products))), k=5, with_reasons=False)
    direct = direct[direct["product_id"] != products["OldTent"]]
    direct["rank"] = direct.groupby("customer_id").cumcount() + 1
    direct = direct[direct["rank"] <= 3]
    assert set(stored["customer_id"]) == {customers[c] for c in ("C1", "C2", "C3", "C4", "C5")}
    got = stored.set_index(["customer_id", "rank"])["product_id"].sort_index()
    want = direct.set_index(["customer_id", "rank"])["product_id"].astype(int).sort_index()
    assert got.to_dict() == want.to_dict()
    assert products["OldTent"] not in set(stored["product_id"])  # inactive: never suggested
    assert summary["recommendations"] == len(stored) and summary["customers"] == 5
    bought = _purchases(customers, products).groupby("customer_id")["product_id"].agg(set)
    for row in stored.itertuples():
        assert row.product_id not in bought[row.customer_id]  # nothing already bought
        for b in (row.because_product_id_1, row.because_product_id_2):
            assert pd.isna(b) or b in bought[row.customer_id]  # reasons are own purchases
    # C5 bought a tent: customers who bought tents also bought stoves (C1, C2)
    c5 = stored[stored["customer_id"] == customers["C5"]].iloc[0]
    assert c5["product_id"] == products["Stove"] and c5["because_product_id_1"] == products["Tent"]
    # C3's cancelled mat is not a purchase: the mat may be suggested to C3
    assert products["Mat"] in set(stored.loc[stored["customer_id"] == customers["C3"],
                                              "product_id"])
    entry = session.scalars(select(AuditEntry).where(
        AuditEntry.resource == "customer_recommendations")).one()
    assert entry.action == "recommend" and entry.detail["recommendations"] == len(stored)


def test_bought_together_pairs_with_support_confidence_lift(session: Session) -> None:
    _, products = _seed(session)
    summary = refresh_recommendations(session, top_n=5)
    session.commit()
    pairs = {(a.product_id, a.other_product_id): a
             for a in session.scalars(select(ProductAssociation))}
    assert summary["associations"] == len(pairs) > 0
    # 6 purchase orders; tent in 4, stove in 3, both in 2
    ts = pairs[(products["Tent"], products["Stove"])]
    assert ts.orders_together == 2
    assert ts.support == 2 / 6 and ts.confidence == 2 / 4 and abs(ts.lift - 0.5 / (3 / 6)) < 1e-9
    old = products["OldTent"]
    assert all(old not in key for key in pairs)  # mat and old tent co-occur twice, not stored
    for pid in {a for a, _ in pairs}:
        ranks = sorted(a.rank for (p, _), a in pairs.items() if p == pid)
        assert ranks == list(range(1, len(ranks) + 1))


def test_second_run_replaces_without_duplicates(session: Session) -> None:
    _seed(session)
    first = refresh_recommendations(session)
    session.commit()
    before = _stored(session)
    second = refresh_recommendations(session)
    session.commit()
    after = _stored(session)
    assert first["recommendations"] == second["recommendations"] == len(after)
    assert not after.duplicated(["customer_id", "rank"]).any()
    assert not after.duplicated(["customer_id", "product_id"]).any()
    pd.testing.assert_frame_equal(before, after)
    assert session.scalar(select(func.count()).select_from(ProductAssociation)) == \
        second["associations"]


def test_too_little_data_keeps_the_old_suggestions(session: Session) -> None:
    customers, _ = _seed(session)
    refresh_recommendations(session)
    session.commit()
    kept = _stored(session)
    pairs = session.scalar(select(func.count()).select_from(ProductAssociation))
    # every order but one is cancelled: one order is not enough to learn from
    session.execute(update(Order).where(Order.customer_id != customers["C2"])
                    .values(status="cancelled"))
    session.commit()
    summary = refresh_recommendations(session)
    session.commit()
    assert summary["status"] == "skipped"
    assert "1 order" in summary["reason"] and "kept" in summary["reason"]
    pd.testing.assert_frame_equal(_stored(session), kept)
    assert session.scalar(select(func.count()).select_from(ProductAssociation)) == pairs


def test_empty_store_is_skipped_not_an_error(session: Session) -> None:
    summary = refresh_recommendations(session)
    assert summary["status"] == "skipped" and "0 order" in summary["reason"]
    assert session.scalar(select(func.count()).select_from(CustomerRecommendation)) == 0


def test_deleting_a_customer_or_product_deletes_its_suggestions(session: Session) -> None:
    customers, products = _seed(session)
    refresh_recommendations(session)
    session.commit()
    session.execute(delete(Customer).where(Customer.id == customers["C5"]))
    assert customers["C5"] not in set(_stored(session)["customer_id"])
    session.execute(delete(OrderLine).where(OrderLine.product_id == products["Lamp"]))
    session.execute(delete(Product).where(Product.id == products["Lamp"]))
    assert products["Lamp"] not in set(_stored(session)["product_id"])
    assert not session.scalar(select(func.count()).select_from(ProductAssociation).where(
        ProductAssociation.other_product_id == products["Lamp"]))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ACCORD_DATA_DIR", str(tmp_path))
    reset_settings()
    yield tmp_path
    monkeypatch.delenv("ACCORD_DATA_DIR")
    reset_settings()


def test_the_periodic_refresh_stores_suggestions_after_the_scores(
        session: Session, data_dir: Path) -> None:
    from accord.analytics import tasks

    customers, _ = _seed(session)
    tasks.refresh(session, {"engine": "duckdb"})
    session.commit()
    assert set(_stored(session)["customer_id"]) == {
        customers[c] for c in ("C1", "C2", "C3", "C4", "C5")}
    assert session.scalar(select(func.count()).select_from(CustomerScore)) > 0


def test_run_command_refreshes_suggestions_unless_told_not_to(
        db: str, session: Session, data_dir: Path) -> None:
    from accord.cli import app

    _seed(session)
    off = CliRunner().invoke(app, ["analytics", "run", "--engine", "duckdb", "--no-scores",
                                   "--no-recommendations"])
    assert off.exit_code == 0, off.output
    assert "recommendations" not in off.output
    assert session.scalar(select(func.count()).select_from(CustomerRecommendation)) == 0
    session.rollback()  # end the read: SQLite has one writer
    on = CliRunner().invoke(app, ["analytics", "run", "--engine", "duckdb", "--no-scores",
                                  "--json"])
    assert on.exit_code == 0, on.output
    recs = json.loads(on.stdout)["recommendations"]
    assert recs["status"] == "done"
    assert session.scalar(select(func.count()).select_from(CustomerRecommendation)) == \
        recs["recommendations"] > 0
    session.rollback()
