"""RFM quintiles and segments, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accord.analytics.rfm import (
    SEGMENT_GRID,
    SEGMENTS,
    RFMInputError,
    quintile_scores,
    rfm_table,
    segment_for,
)


def test_quintiles_of_distinct_values() -> None:
    scores = quintile_scores([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert scores.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_share_the_score_of_their_lowest_rank() -> None:
    # min ranks 1,1,1,1,5,6,7,8,9,10 of 10 → 1 + floor(5 (rank - 1) / 10)
    scores = quintile_scores([1, 1, 1, 1, 2, 3, 4, 5, 6, 7])
    assert scores.tolist() == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]
    # all equal: everyone scores 1
    assert quintile_scores([3, 3, 3]).tolist() == [1, 1, 1]


def test_recency_scores_reward_recent_customers() -> None:
    assert quintile_scores([0, 5, 10, 100, 200], higher_is_better=False).tolist() == [5, 4, 3, 2, 1]


def test_scores_do_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 6, 200).astype(float)
    perm = rng.permutation(200)
    assert (quintile_scores(values)[perm] == quintile_scores(values[perm])).all()


@pytest.mark.parametrize(
    "r,f,m,segment",
    [
        (5, 5, 5, "champions"),
        (5, 4, 3, "champions"),  # FM = (4 + 3 + 1) // 2 = 4
        (5, 1, 1, "new"),
        (5, 2, 3, "potential loyalists"),
        (4, 1, 1, "promising"),
        (4, 5, 4, "loyal"),
        (3, 3, 3, "need attention"),
        (3, 1, 2, "about to sleep"),
        (3, 4, 5, "loyal"),
        (2, 5, 5, "can't lose them"),
        (1, 3, 4, "at risk"),
        (2, 1, 2, "hibernating"),
        (1, 1, 1, "lost"),
        (1, 2, 1, "lost"),
    ],
)
def test_segment_rule_table(r: int, f: int, m: int, segment: str) -> None:
    assert segment_for([r], [f], [m]).tolist() == [segment]


def test_the_grid_uses_every_segment_and_nothing_else() -> None:
    cells = {name for row in SEGMENT_GRID for name in row}
    assert cells == set(SEGMENTS)
    with pytest.raises(RFMInputError):
        segment_for([6], [1], [1])


def _orders() -> pd.DataFrame:
    rows = [
        # customer, date, total, status
        (1, "2025-12-30", 100.0, "delivered"),
        (1, "2025-12-01", 50.0, "delivered"),
        (1, "2025-11-01", 50.0, "shipped"),
        (2, "2025-06-01", 500.0, "delivered"),
        (2, "2025-12-31", 999.0, "cancelled"),  # not a purchase
        (3, "2025-12-15", 20.0, "paid"),
        (3, "2025-10-15", 5.0, "refunded"),  # not a purchase
        (4, "2024-01-01", 10.0, "delivered"),
        (5, "2025-12-20", 30.0, "pending"),
        (5, "2025-12-21", 30.0, "pending"),
        (6, "2025-12-25", 80.0, "delivered"),
        (6, "2026-02-01", 80.0, "delivered"),  # after as_of: ignored
    ]
    return pd.DataFrame(rows, columns=["customer_id", "ordered_at", "total", "status"])


def test_rfm_table_by_hand() -> None:
    t = rfm_table(_orders(), as_of="2026-01-01T00:00:00Z")
    assert t.index.tolist() == [1, 2, 3, 4, 5, 6]
    assert t["recency_days"].tolist() == [2, 214, 17, 731, 11, 7]
    assert t["frequency"].tolist() == [3, 1, 1, 1, 2, 1]
    assert t["monetary"].tolist() == [200.0, 500.0, 20.0, 10.0, 60.0, 80.0]
    # recency, worst first: 4 (731 d) rank 1, 2 rank 2, 3 rank 3, 5 rank 4, 6 rank 5, 1 rank 6;
    # score 1 + floor(5 (rank - 1) / 6) → 1, 1, 2, 3, 4, 5
    assert t["rfm_r"].tolist() == [5, 1, 2, 1, 3, 4]
    # frequency 3,1,1,1,2,1: the four 1s share rank 1 → 1; 2 → rank 5 → 4; 3 → rank 6 → 5
    assert t["rfm_f"].tolist() == [5, 1, 1, 1, 4, 1]
    # monetary 200,500,20,10,60,80: ranks 5,6,2,1,3,4 → 4,5,1,1,2,3
    assert t["rfm_m"].tolist() == [4, 5, 1, 1, 2, 3]
    # FM = (F + M + 1) // 2 → 5, 3, 1, 1, 3, 2
    assert t["rfm_segment"].tolist() == [
        "champions",  # R5 FM5
        "at risk",  # R1 FM3
        "hibernating",  # R2 FM1
        "lost",  # R1 FM1
        "need attention",  # R3 FM3
        "potential loyalists",  # R4 FM2
    ]


def test_rfm_table_as_of_defaults_to_the_last_purchase() -> None:
    orders = _orders()
    orders = orders[orders["customer_id"] != 6]  # its order after the as-of date above
    t = rfm_table(orders)
    # the end is the last purchase (customer 1, 2025-12-30), not the cancelled order of 12-31
    assert t.loc[1, "recency_days"] == 0
    assert t.loc[3, "recency_days"] == 15


def test_rfm_table_refuses_bad_rows_by_name() -> None:
    bad = _orders()
    bad.loc[3, "total"] = -5.0
    with pytest.raises(RFMInputError, match="total"):
        rfm_table(bad)
    with pytest.raises(RFMInputError, match="status"):
        rfm_table(_orders().drop(columns="status"))
    empty = rfm_table(_orders().iloc[:0])
    assert len(empty) == 0 and "rfm_segment" in empty.columns
