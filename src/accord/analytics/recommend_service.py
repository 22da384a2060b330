"""Refresh every customer's product suggestions and the "bought together" table, in bulk.

`refresh_recommendations` is a batch job like `refresh_scores`: it reads the purchases with Core
(orders of customers not merged into another, cancelled and refunded orders left out, lines
without a product left out), fits item-kNN and the association rules of
`accord.analytics.recommend`, and in the caller's transaction replaces `customer_recommendations`
(top k per customer with purchase history) and `product_associations` (top N per product), then
appends one audit entry. It never commits (the command or job boundary does).

Too little data (fewer than two orders or two products) is not an error: nothing is touched, the
previous suggestions stay, and the summary says why (`status` "skipped", `reason`).
Inactive products are never suggested; they may still explain a suggestion ("bought X").
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import SYSTEM, Principal
from accord.core.clock import utcnow
from accord.core.db import executemany
from accord.models import (
    Customer,
    CustomerRecommendation,
    Order,
    OrderLine,
    Product,
    ProductAssociation,
)

CHUNK = 50_000
RESOURCE = "customer_recommendations"  # audit resource
MODEL = "item_knn"
EXCLUDED_STATUSES = ("cancelled", "refunded")
MAX_INACTIVE_EXTRA = 100  # extra bought-together candidates fetched to replace inactive ones


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _ids(values: Sequence[Any] | np.ndarray) -> list[int | None]:
    """Plain ints (drivers refuse numpy scalars); None stays None."""
    return [None if v is None or (isinstance(v, float) and v != v) else int(v) for v in values]


def load_order_lines(session: Session, chunk: int = 100_000) -> pd.DataFrame:
    """customer_id, order_id, product_id, ordered_at of every purchase line (see module doc)."""
    from accord.analytics.recommend import order_lines_from_tables
    from accord.analytics.scores import _read

    o = Order.__table__.c
    c = Customer.__table__.c
    orders = _read(
        session,
        select(o.id, o.customer_id, o.ordered_at, o.status)
        .join(Customer.__table__, c.id == o.customer_id)
        .where(c.merged_into_id.is_(None), o.status.not_in(EXCLUDED_STATUSES)),
        ("id", "customer_id", "ordered_at", "status"), chunk,
    )
    ln = OrderLine.__table__.c
    lines = _read(session, select(ln.order_id, ln.product_id).where(ln.product_id.is_not(None)),
                  ("order_id", "product_id"), chunk)
    return order_lines_from_tables(orders, lines, exclude_statuses=EXCLUDED_STATUSES)


def _without_inactive(model: Any, inactive: np.ndarray) -> None:
    """Make inactive products rank below every active one: no similarity towards them, and the
    lowest popularity (so popularity fill-ins reach them last; they are then filtered out)."""
    if not inactive.any():
        return
    keep = sp.diags((~inactive).astype(np.float32))
    model.similarity = sp.csr_matrix(model.similarity @ keep)
    model.similarity.eliminate_zeros()
    model.popularity = np.where(inactive, -1, model.popularity)
    model._dense = None


def _skipped(reason: str, started: float, **figures: Any) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason, "customers": 0, "recommendations": 0,
            "associations": 0, **figures,
            "seconds": {"total": round(time.perf_counter() - started, 3)}}


def refresh_recommendations(
    session: Session, principal: Principal = SYSTEM, *, k: int = 10, top_n: int = 10,
    chunk: int = CHUNK,
) -> dict[str, Any]:
    """Fit on all purchases and replace the stored suggestions; returns the run summary."""
    from accord.analytics.recommend import (
        RecommendInputError,
        bought_together,
        fit_recommender,
        prepare_lines,
        recommendations_frame,
    )

    if k < 1 or top_n < 1:
        raise ValueError(f"k and top_n must be at least 1 (k={k}, top_n={top_n})")
    t0 = time.perf_counter()
    raw = load_order_lines(session)
    lines = prepare_lines(raw)
    figures = {"order_lines": lines.rows_read, "rejected_lines": len(lines.rejected)}
    try:
        model = fit_recommender(lines)
    except RecommendInputError as exc:
        return _skipped(f"{exc}; the previous suggestions are kept", t0, **figures)
    p = Product.__table__.c
    active_ids = set(session.scalars(select(p.id).where(p.active.is_(True))))
    inactive = ~np.asarray(lines.products.isin(list(active_ids)), dtype=bool)
    if inactive.all():
        return _skipped("no active product has been bought; the previous suggestions are kept",
                        t0, **figures)
    _without_inactive(model, inactive)
    t_fit = time.perf_counter()
    recs = recommendations_frame(model, k=k, model_name=MODEL, with_reasons=False)
    recs = recs[recs["product_id"].isin(list(active_ids))]
    extra = min(int(inactive.sum()), MAX_INACTIVE_EXTRA)
    pairs = bought_together(lines, top_n=top_n + extra)
    pairs = pairs[pairs["product_id"].isin(list(active_ids))
                  & pairs["other_product_id"].isin(list(active_ids))].copy()
    pairs["rank"] = pairs.groupby("product_id").cumcount() + 1  # already in rank order
    pairs = pairs[pairs["rank"] <= top_n]
    t_model = time.perf_counter()

    generated_at = utcnow()
    session.execute(delete(CustomerRecommendation))
    rec_cols = {name: recs[name].to_numpy() for name in (
        "customer_id", "rank", "product_id", "score", "because_product_id_1",
        "because_product_id_2")}
    stmt = insert(CustomerRecommendation)
    for part in _chunks(len(recs), chunk):  # Python values per chunk only: flat memory
        c = {name: values[part] for name, values in rec_cols.items()}
        executemany(session, stmt, [
            {"customer_id": cid, "rank": rank, "product_id": pid, "score": score,
             "because_product_id_1": b1, "because_product_id_2": b2, "model": MODEL,
             "generated_at": generated_at}
            for cid, rank, pid, score, b1, b2 in zip(
                _ids(c["customer_id"]), c["rank"].astype(int).tolist(), _ids(c["product_id"]),
                c["score"].astype(float).tolist(), _ids(c["because_product_id_1"]),
                _ids(c["because_product_id_2"]), strict=True)
        ])
    session.execute(delete(ProductAssociation))
    stmt = insert(ProductAssociation)
    for part in _chunks(len(pairs), chunk):
        c = pairs.iloc[part]
        executemany(session, stmt, [
            {"product_id": a, "other_product_id": b, "rank": rank, "orders_together": together,
             "support": support, "confidence": confidence, "lift": lift,
             "generated_at": generated_at}
            for a, b, rank, together, support, confidence, lift in zip(
                _ids(c["product_id"].to_numpy()), _ids(c["other_product_id"].to_numpy()),
                c["rank"].astype(int).tolist(), c["orders_together"].astype(int).tolist(),
                c["support"].astype(float).tolist(), c["confidence"].astype(float).tolist(),
                c["lift"].astype(float).tolist(), strict=True)
        ])
    t_write = time.perf_counter()
    summary = {
        "status": "done", "reason": None, "model": MODEL, "k": k, "top_n": top_n,
        "customers": int(recs["customer_id"].nunique()), "recommendations": len(recs),
        "products": lines.n_products, "inactive_products": int(inactive.sum()),
        "products_with_associations": int(pairs["product_id"].nunique()),
        "associations": len(pairs), **figures,
        "generated_at": generated_at.isoformat(),
        "seconds": {"load_fit": round(t_fit - t0, 3), "recommend": round(t_model - t_fit, 3),
                    "write": round(t_write - t_model, 3)},
    }
    audit.record(
        session, principal, "recommend", RESOURCE, None,
        ["product_id", "score", "because_product_id_1", "because_product_id_2",
         "product_associations"],
        {"customers": summary["customers"], "recommendations": len(recs),
         "associations": len(pairs), "model": MODEL, "k": k},
    )
    return summary
