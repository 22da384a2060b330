"""RFM scores (recency, frequency, monetary quintiles 1-5) and named segments from orders.

Why rank-based quintiles with ``min`` ties: equal values must get equal scores (two customers
with one order each cannot be told apart), and the result must not depend on row order. A value
whose lowest rank (1-based, best last) is ``k`` among ``n`` customers scores
``1 + floor(5 (k - 1) / n)``. Heavy ties (most customers have one order) therefore push the tied
block to the score of its first member, and the next value up jumps accordingly; scores stay
monotone in the value and the same for the same data whatever its order.

Segments come from the R score and the combined FM score ``floor((F + M + 1) / 2)`` (the mean of
F and M, halves rounded up), on the 5 × 5 grid below (rows R, columns FM):

=====  ================  ===================  ===================  ============  ============
R\\FM   1                 2                    3                    4             5
=====  ================  ===================  ===================  ============  ============
5      new               potential loyalists  potential loyalists  champions     champions
4      promising         potential loyalists  potential loyalists  loyal         loyal
3      about to sleep    about to sleep       need attention       loyal         loyal
2      hibernating       hibernating          at risk              at risk       can't lose them
1      lost              lost                 at risk              at risk       can't lose them
=====  ================  ===================  ===================  ============  ============
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Order statuses that are not purchases (see `accord.models.commerce.ORDER_STATUSES`).
EXCLUDED_STATUSES = frozenset({"cancelled", "refunded"})

SEGMENTS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential loyalists",
    "new",
    "promising",
    "need attention",
    "about to sleep",
    "at risk",
    "can't lose them",
    "hibernating",
    "lost",
)

# SEGMENT_GRID[r - 1][fm - 1]
SEGMENT_GRID: tuple[tuple[str, ...], ...] = (
    ("lost", "lost", "at risk", "at risk", "can't lose them"),
    ("hibernating", "hibernating", "at risk", "at risk", "can't lose them"),
    ("about to sleep", "about to sleep", "need attention", "loyal", "loyal"),
    ("promising", "potential loyalists", "potential loyalists", "loyal", "loyal"),
    ("new", "potential loyalists", "potential loyalists", "champions", "champions"),
)

REQUIRED_COLUMNS = ("customer_id", "ordered_at", "total", "status")


class RFMInputError(ValueError):
    """The orders frame cannot be used (missing columns, bad values): the message says why."""


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def valid_orders(orders: pd.DataFrame, as_of: Any = None) -> pd.DataFrame:
    """Purchases only: cancelled/refunded orders and orders after ``as_of`` dropped.

    Missing customer ids, dates or totals and negative totals are refused with the first rows
    named (never dropped silently). Returns customer_id, ordered_at (UTC), total (float).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in orders.columns]
    if missing:
        raise RFMInputError(f"orders lack column(s): {', '.join(missing)}")
    status = orders["status"].astype("string").str.strip().str.lower()
    keep = ~status.isin(EXCLUDED_STATUSES).fillna(False).to_numpy()
    df = orders.loc[keep, ["customer_id", "ordered_at", "total"]]
    when = pd.to_datetime(df["ordered_at"], utc=True, errors="coerce")
    total = pd.to_numeric(df["total"], errors="coerce").astype(float)
    for name, bad in (
        ("customer_id", df["customer_id"].isna().to_numpy()),
        ("ordered_at", when.isna().to_numpy()),
        ("total", (total.isna() | ~np.isfinite(total) | (total < 0)).to_numpy()),
    ):
        if bad.any():
            rows = ", ".join(str(i) for i in df.index[bad][:10])
            raise RFMInputError(
                f"orders: {int(bad.sum())} row(s) with a missing or invalid {name} "
                f"(index {rows})"
            )
    out = pd.DataFrame(
        {"customer_id": df["customer_id"].to_numpy(), "ordered_at": when, "total": total},
        index=df.index,
    )
    if as_of is not None:
        out = out[out["ordered_at"] <= _utc(as_of)]
    return out


def quintile_scores(values: Any, higher_is_better: bool = True) -> np.ndarray:
    """1-5 scores from ``min`` ranks: equal values share a score; order-independent."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    key = v if higher_is_better else -v
    ranks = pd.Series(key).rank(method="min").to_numpy()  # 1-based, worst first
    return (1 + np.floor(5.0 * (ranks - 1.0) / n)).astype(np.int8)


def segment_for(r: Any, f: Any, m: Any) -> np.ndarray:
    """Segment names from R, F and M scores (vectorised lookup into `SEGMENT_GRID`)."""
    r_ = np.asarray(r, dtype=np.int64)
    fm = (np.asarray(f, dtype=np.int64) + np.asarray(m, dtype=np.int64) + 1) // 2
    if r_.size and (r_.min() < 1 or r_.max() > 5 or fm.min() < 1 or fm.max() > 5):
        raise RFMInputError("RFM scores must be between 1 and 5")
    grid = np.asarray(SEGMENT_GRID, dtype=object)
    return grid[r_ - 1, fm - 1]


def rfm_table(orders: pd.DataFrame, as_of: Any = None) -> pd.DataFrame:
    """Per customer with at least one purchase up to ``as_of`` (default: the last order).

    Columns: recency_days (whole days since the last purchase), frequency (purchases),
    monetary (total spend), rfm_r, rfm_f, rfm_m (1-5) and rfm_segment; indexed by customer_id.
    """
    return rfm_from_purchases(valid_orders(orders, as_of), as_of)


def rfm_from_purchases(valid: pd.DataFrame, as_of: Any = None) -> pd.DataFrame:
    """`rfm_table` on purchases already checked by `valid_orders` (UTC ordered_at, float total)."""
    index_name = "customer_id"
    if valid.empty:
        return pd.DataFrame(
            {
                "recency_days": pd.Series(dtype=float),
                "frequency": pd.Series(dtype=np.int64),
                "monetary": pd.Series(dtype=float),
                "rfm_r": pd.Series(dtype=np.int8),
                "rfm_f": pd.Series(dtype=np.int8),
                "rfm_m": pd.Series(dtype=np.int8),
                "rfm_segment": pd.Series(dtype=object),
            },
            index=pd.Index([], name=index_name),
        )
    end = _utc(as_of) if as_of is not None else valid["ordered_at"].max()
    grouped = valid.groupby("customer_id", sort=True)
    last = grouped["ordered_at"].max()
    table = pd.DataFrame(
        {
            "recency_days": ((end - last).dt.total_seconds() // 86400).astype(float),
            "frequency": grouped.size().astype(np.int64),
            "monetary": grouped["total"].sum().astype(float),
        }
    )
    table.index.name = index_name
    table["rfm_r"] = quintile_scores(table["recency_days"].to_numpy(), higher_is_better=False)
    table["rfm_f"] = quintile_scores(table["frequency"].to_numpy())
    table["rfm_m"] = quintile_scores(table["monetary"].to_numpy())
    table["rfm_segment"] = segment_for(table["rfm_r"], table["rfm_f"], table["rfm_m"])
    return table
