"""The analytics dashboard page and its CSV downloads: access from the policy, tiles and charts
equal to the stored values of a real refresh, filters, vendored assets only."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from accord.access.policy import ROLES, can
from accord.analytics.service import refresh_kpis
from accord.core import db as dbmod
from accord.core.settings import reset_settings
from accord.models import Customer, CustomerScore, KpiValue
from tests.analytics.kpi_data import seed


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ACCORD_DATA_DIR", str(tmp_path))
    reset_settings()
    yield tmp_path
    monkeypatch.delenv("ACCORD_DATA_DIR")
    reset_settings()


@pytest.fixture
def refreshed(db: str, data_dir: Path) -> dict[str, int]:
    with dbmod.session_scope(db) as s:
        ids = seed(s)
    with dbmod.session_scope(db) as s:
        refresh_kpis(s, "duckdb")
    return ids


def stored(db: str, kpi: str, dimension: str | None = None,
           value: str | None = None) -> list[KpiValue]:
    with dbmod.session_scope(db) as s:
        q = select(KpiValue).where(KpiValue.kpi == kpi, KpiValue.series.is_(None))
        q = (q.where(KpiValue.dimension == dimension, KpiValue.dimension_value == value)
             if dimension else q.where(KpiValue.dimension.is_(None)))
        rows = s.scalars(q.order_by(KpiValue.period_start)).all()
        s.expunge_all()
        return list(rows)


def tile(html: str, kpi: str) -> str:
    found = re.search(rf'<li class="card kpi-tile" data-kpi="{kpi}".*?</li>', html, re.S)
    assert found, f"no tile for {kpi}"
    return found.group(0)


def read_csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.reader(io.StringIO(response.text)))


@pytest.mark.parametrize("role", ROLES)
def test_access_follows_the_policy(role: str, signed_in_as, db: str) -> None:
    client = signed_in_as(role)
    page = client.get("/analytics")
    data = client.get("/analytics/charts/customers.csv")
    home = client.get("/customers").text
    with dbmod.session_scope(db) as s:
        from accord.access.service import principal_for
        from accord.models import User

        user = s.scalars(select(User).where(User.role == role)).first()
        allowed = can(principal_for(user), "analytics", "read")
    if allowed:
        assert page.status_code == 200 and data.status_code == 200
        assert 'href="/analytics"' in home
    else:
        assert page.status_code == 403 and data.status_code == 403
        assert 'href="/analytics"' not in home


def test_empty_store_shows_no_data_yet(signed_in_as) -> None:
    html = signed_in_as("analyst").get("/analytics").text
    assert "No KPI refresh has run yet" in html
    assert html.count("no data yet") == 11  # every tile
    assert json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)'
                                r'</script>', html, re.S).group(1)) == {}


def test_tiles_show_the_refreshed_values(signed_in_as, refreshed, db: str) -> None:
    html = signed_in_as("admin").get("/analytics").text
    active = stored(db, "active_customers")
    assert active, "the seeded refresh has active customers"
    last = active[-1]
    shown = tile(html, "active_customers")
    assert f">{int(last.value):,}<" in shown
    assert last.period_start.strftime("%b %Y") in shown
    churn = [r for r in stored(db, "churn_rate") if r.value is not None]
    before = {r.period_end: r for r in churn}.get(churn[-1].period_start)
    if before is not None:  # the trend against the previous month
        delta = churn[-1].value - before.value
        word = "unchanged" if abs(delta) < 1e-9 else ("up" if delta > 0 else "down")
        assert re.search(rf"</span> {word}\b", tile(html, "churn_rate"))
    aov = [r for r in stored(db, "average_order_value") if r.currency == "EUR"]
    assert f"€{aov[-1].value:,.2f}" in tile(html, "average_order_value")
    for kpi in ("nps", "csat", "first_response_hours", "resolution_hours"):  # no such data
        assert "no data yet" in tile(html, kpi)


def test_chart_csv_equals_the_stored_values(signed_in_as, refreshed, db: str) -> None:
    client = signed_in_as("analyst")
    rows = read_csv(client.get("/analytics/charts/customers.csv"))
    assert rows[0] == ["month", "Active customers", "New customers"]
    active = {r.period_start.strftime("%Y-%m"): r.value for r in stored(db, "active_customers")}
    got = {r[0]: float(r[1]) for r in rows[1:] if r[1]}
    assert got == active
    revenue = read_csv(client.get("/analytics/charts/revenue.csv"))
    total = sum(float(v) for r in revenue[1:] for v in r[1:] if v)
    assert total == pytest.approx(sum(r.value for r in stored(db, "revenue")))
    funnel = read_csv(client.get("/analytics/charts/funnel.csv"))
    assert [r[0] for r in funnel[1:]] == ["awareness", "discovery", "evaluation", "intent",
                                         "purchase", "loyalty"]
    counts = [int(r[1]) for r in funnel[1:]]
    assert counts == sorted(counts, reverse=True)  # reaching a later stage implies the earlier
    assert client.get("/analytics/charts/nope.csv").status_code == 404


def test_country_filter_uses_the_country_slice(signed_in_as, refreshed, db: str) -> None:
    client = signed_in_as("analyst")
    gb = stored(db, "active_customers", "country", "GB")
    page = client.get("/analytics?country=gb&from=2025-01-01")
    assert page.status_code == 200
    assert f">{int(gb[-1].value):,}<" in tile(page.text, "active_customers")
    assert 'value="GB" selected' in page.text
    rows = read_csv(client.get("/analytics/charts/customers.csv?country=GB&from=2025-01-01"))
    got = {r[0]: float(r[1]) for r in rows[1:] if r[1]}
    assert got == {r.period_start.strftime("%Y-%m"): r.value for r in gb
                   if r.period_end > datetime(2025, 1, 1).date()}
    # CAC has no country slice: the tile says so rather than showing the overall figure
    assert "no data yet" in tile(page.text, "cac")
    # combined filters: the stored KPIs take the first, and the page explains it
    both = client.get("/analytics?country=GB&segment=gold").text
    assert "filtered by country only" in both


@pytest.mark.parametrize(("query", "field"), [("country=Britain", "country"),
                                              ("segment=diamond", "segment"),
                                              ("from=2025-13-01", "from"),
                                              ("from=2025-05-01&to=2025-01-01", "from"),
                                              ("owner_id=abc", "owner_id")])
def test_bad_filters_are_refused_naming_the_field(signed_in_as, query: str, field: str) -> None:
    client = signed_in_as("analyst")
    page = client.get(f"/analytics?{query}")
    assert page.status_code == 422
    assert f"Filter not applied — {field}:" in page.text
    data = client.get(f"/analytics/charts/customers.csv?{query}")
    assert data.status_code == 422 and data.text.startswith(f"{field}:")


def test_score_distributions_come_from_customer_scores(signed_in_as, refreshed, db: str) -> None:
    risks = {"C1": 0.05, "C2": 0.95, "C3": 0.5, "C4": 1.0, "C6": 0.51}
    clv = {"C1": "120.00", "C2": "0.00", "C3": "35.50", "C4": "980.00", "C6": "10.00"}
    with dbmod.session_scope(db) as s:
        for name, risk in risks.items():
            s.add(CustomerScore(customer_id=refreshed[name], churn_risk=risk,
                                clv_12m=Decimal(clv[name]), currency="EUR", run_id="t",
                                computed_at=datetime(2026, 1, 1, tzinfo=UTC)))
        gb = {c.id for c in s.scalars(select(Customer).where(Customer.country == "GB"))}
    client = signed_in_as("analyst")
    rows = read_csv(client.get("/analytics/charts/churn-risk.csv"))
    counts = [int(r[1]) for r in rows[1:]]
    assert len(counts) == 10 and sum(counts) == len(risks)
    assert counts[0] == 1 and counts[5] == 2 and counts[9] == 2  # 1.0 in the last bucket
    rows = read_csv(client.get("/analytics/charts/clv.csv?country=GB&segment=gold"))
    expected = sum(1 for n in clv if refreshed[n] in gb and n in ("C1", "C3", "C6"))
    assert sum(int(r[1]) for r in rows[1:]) == expected
    assert rows[0][0] == "clv_12m (EUR)"


def test_page_uses_only_vendored_assets_and_a_json_data_block(signed_in_as, refreshed,
                                                              client) -> None:
    html = signed_in_as("analyst").get("/analytics").text
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert '<script src="/static/vendor/echarts/echarts.min.js" defer></script>' in html
    scripts = re.findall(r"<script([^>]*)>", html)
    inline = [s for s in scripts if "src=" not in s]
    assert inline == [' type="application/json" id="chart-data"']  # data, not code (CSP)
    block = re.search(r'id="chart-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block  # tojson escapes markup
    data = json.loads(block)
    assert data["customers"]["kind"] == "line" and data["funnel"]["kind"] == "funnel"
    assert html.count('data-download="png"') == len(data) == html.count('data-download="svg"')
    for path in ("/static/vendor/echarts/echarts.min.js", "/static/js/analytics.js"):
        response = client.get(path)
        assert response.status_code == 200 and "javascript" in response.headers["content-type"]
    assert client.get("/static/vendor/echarts/LICENSE").status_code == 200
