"""KPIs worked out by hand on the small data set of kpi_data.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from accord.analytics import kpis
from accord.analytics.snapshot import take_snapshot
from tests.analytics.kpi_data import AS_OF, add_feedback, seed

M = {m: date(2025, m, 1) for m in range(1, 7)}


def _compute(session, tmp_path: Path, filters: kpis.Filters | None = None, feedback=False):
    ids = seed(session)
    snap = take_snapshot(session.connection(), tmp_path / "snapshots")
    session.rollback()
    if feedback:
        add_feedback(snap.path, ids["C3"])
    rows = kpis.compute(snap.path, AS_OF, engine="duckdb", filters=filters, months=6)
    return ids, snap, rows


def _get(rows, kpi, month, *, series=None, currency=None, dimension=None, value=None):
    found = [r for r in rows if r.kpi == kpi and r.period_start == M[month]
             and r.series == series and r.currency == currency and r.dimension == dimension
             and r.dimension_value == value]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_snapshot_keeps_no_personal_values(session, tmp_path: Path) -> None:
    _, snap, _ = _compute(session, tmp_path)
    assert snap.rows["customers"] == 6 and snap.rows["orders"] == 10
    columns = {name: set(pq.read_schema(path).names) for name, path in snap.tables.items()}
    assert not {"first_name", "last_name", "display_name", "name_key"} & columns["customers"]
    assert "reason" not in columns["lifecycle_changes"]
    assert not {"subject", "body", "metadata"} & columns["interactions"]
    for path in snap.tables.values():
        assert b"private reason" not in path.read_bytes()
    assert {"survey_responses", "tickets"} <= set(snap.tables)  # the service tables, empty
    assert {"survey_responses", "tickets"} <= snap.present
    assert snap.rows["tickets"] == 0 and snap.rows["survey_responses"] == 0
    assert not {"subject", "requester_email"} & columns["tickets"]


def test_activity_churn_and_retention(session, tmp_path: Path) -> None:
    _, _, rows = _compute(session, tmp_path)
    # A(M) = customers with an order in the 12 months ending with M (C5 merged, C4 none)
    active = {m: _get(rows, "active_customers", m).value for m in range(1, 7)}
    assert active == {1: 3, 2: 3, 3: 4, 4: 4, 5: 3, 6: 3}
    may = _get(rows, "churn_rate", 5)  # C2's last order (2024-05) leaves the window
    assert (may.numerator, may.denominator, may.value) == (1, 4, 25.0)
    assert _get(rows, "retention_rate", 5).value == 75.0
    assert _get(rows, "churn_rate", 4).value == 0.0
    assert _get(rows, "active_customers", 4, dimension="country", value="DE").value == 1
    assert _get(rows, "active_customers", 5, dimension="country", value="DE") is None
    assert _get(rows, "active_customers", 5, dimension="segment", value="gold").value == 3
    assert [r.value for r in rows if r.kpi == "new_customers" and r.dimension is None] == [1, 1]


def test_money_kpis(session, tmp_path: Path) -> None:
    ids, _, rows = _compute(session, tmp_path)
    assert _get(rows, "revenue", 1, currency="EUR").value == 40  # C5's order is not counted
    assert _get(rows, "revenue", 3, currency="EUR").value == 80
    assert _get(rows, "revenue", 3, currency="GBP").value == 10
    assert _get(rows, "revenue", 2, currency="EUR").value == 50  # the cancelled 30 is not
    assert _get(rows, "revenue", 3, currency="EUR", dimension="segment", value="gold").value == 80
    assert _get(rows, "revenue", 4, currency="GBP") is None  # pending is not revenue
    assert _get(rows, "average_order_value", 3, currency="EUR").value == 40
    assert _get(rows, "purchase_frequency", 3).value == 1.5
    owner = _get(rows, "purchase_frequency", 3, dimension="owner", value=str(ids["owner"]))
    assert owner.value == 1.5
    clv = _get(rows, "historic_clv", 3, currency="EUR")  # (100+200+40+50+80) / 3 customers
    assert (clv.numerator, clv.denominator) == (470, 3)
    assert _get(rows, "historic_clv", 1, currency="EUR").value == pytest.approx(340 / 3)


def test_cac_cohorts_and_funnel(session, tmp_path: Path) -> None:
    _, _, rows = _compute(session, tmp_path)
    march = _get(rows, "cac", 3, currency="EUR")  # 300 web + 16/30 of 300 social; one new
    assert (march.numerator, march.denominator, march.value) == (460, 1, 460)
    assert _get(rows, "cac", 3, currency="EUR", dimension="channel", value="web").value == 300
    feb = _get(rows, "cac", 2, currency="EUR", dimension="channel", value="social")
    assert feb.numerator == pytest.approx(140) and feb.value is None  # nobody new in February
    assert _get(rows, "cohort_retention", 1, series="2025-01").value == 100
    assert _get(rows, "cohort_retention", 2, series="2025-01") is None  # C3 bought nothing
    assert _get(rows, "cohort_retention", 3, series="2025-01").value == 100
    assert _get(rows, "funnel_conversion", 2, series="awareness>discovery").value == 100
    step = _get(rows, "funnel_conversion", 2, series="evaluation>intent")
    assert (step.numerator, step.denominator) == (0, 1)
    assert _get(rows, "funnel_conversion", 3, series="purchase>loyalty").value == 100


def test_feedback_kpis_light_up_when_their_data_appears(session, tmp_path: Path) -> None:
    _, _, before = _compute(session, tmp_path)
    assert not [r for r in before if r.kpi in ("nps", "csat", "first_response_hours")]
    session.rollback()


def test_nps_csat_and_ticket_times(session, tmp_path: Path) -> None:
    _, _, rows = _compute(session, tmp_path, feedback=True)
    nps = _get(rows, "nps", 3)
    p, d, n = 3, 2, 6  # promoters 10, 9, 10; detractors 6, 2
    assert nps.value == pytest.approx(100 * (p - d) / n)
    se = math.sqrt(((p + d) / n - ((p - d) / n) ** 2) / n)
    assert nps.ci_low == pytest.approx(100 * ((p - d) / n - 1.959964 * se), rel=1e-5)
    assert nps.ci_high == pytest.approx(100 * ((p - d) / n + 1.959964 * se), rel=1e-5)
    csat = _get(rows, "csat", 3)
    assert csat.value == 75 and csat.ci_low < 75 < csat.ci_high
    assert _get(rows, "first_response_hours", 3).value == 3
    assert _get(rows, "resolution_hours", 3).value == 24
    assert _get(rows, "nps", 3, dimension="country", value="GB").value == nps.value


def test_filters(session, tmp_path: Path) -> None:
    _, _, rows = _compute(session, tmp_path, kpis.Filters(country="GB", start=M[3]))
    assert min(r.period_start for r in rows) == M[3]
    assert _get(rows, "active_customers", 4).value == 3  # C1, C3, C6 (not C2 in DE)
    assert _get(rows, "churn_rate", 5).value == 0


@pytest.mark.parametrize(("field", "kwargs"), [
    ("country", {"country": "gb"}), ("segment", {"segment": "diamond"}),
    ("from", {"start": date(2025, 2, 1), "end": date(2025, 1, 1)}),
])
def test_bad_filters_name_the_field(field: str, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        kpis.Filters(**kwargs)
