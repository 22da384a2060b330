"""The analytics dashboard in a real browser: ECharts (vendored) draws the charts under the CSP,
and the PNG, SVG and CSV downloads produce files."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from accord.core import db as dbmod
from accord.models import AnalyticsRun, Customer, CustomerScore, KpiValue
from tests.e2e.test_browser import Tab

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/accord-analytics.png"


def _stored_values(url: str) -> None:
    """A finished run with six months of active customers and a few churn scores."""
    with dbmod.session_scope(url) as s:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        run = AnalyticsRun(engine="duckdb", status="done", started_at=now, finished_at=now,
                           figures={})
        s.add(run)
        s.flush()
        for n, value in enumerate((10, 12, 15, 14, 18, 21)):
            start, end = date(2025, n + 1, 1), date(2025, n + 2, 1)
            s.add(KpiValue(run_id=run.id, kpi="active_customers", period_start=start,
                           period_end=end, value=float(value), numerator=float(value)))
        for n, cid in enumerate(s.scalars(select(Customer.id).limit(5))):
            s.add(CustomerScore(customer_id=cid, churn_risk=0.2 * n, clv_12m=Decimal(50 * n),
                                currency="EUR", run_id="e2e"))


def test_dashboard_draws_charts_and_downloads_them(browser: Any, live_server: Any) -> None:
    _stored_values(os.environ["ACCORD_DATABASE_URL"])
    tab = Tab(browser, live_server.url)
    try:
        tab.login(live_server.seeded.emails["admin"])
        page = tab.page
        page.get_by_role("link", name="Analytics").click()
        page.wait_for_url(live_server.url + "/analytics")
        tile = page.locator('[data-kpi="active_customers"] .kpi-value')
        assert tile.inner_text() == "21"
        canvas = page.locator("#chart-customers canvas")
        canvas.wait_for()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
        page.locator("#chart-churn-risk canvas").wait_for()
        for kind in ("png", "svg"):
            with page.expect_download() as info:
                page.locator(f'[data-download="{kind}"][data-chart-key="customers"]').click()
            download = info.value
            assert download.suggested_filename == f"accord-customers.{kind}"
            content = open(download.path(), "rb").read()  # noqa: SIM115 - a temp file
            if kind == "svg":
                assert content.startswith(b"<svg") and b"Active customers" in content
            else:
                assert content.startswith(b"\x89PNG")
        with page.expect_download() as info:
            page.get_by_role("link", name="Download the data of Active and new customers "
                             "as CSV").click()
        assert open(info.value.path()).read().startswith("month,Active customers")  # noqa: SIM115
        page.screenshot(path=SCREENSHOT, full_page=True)
        page.set_viewport_size({"width": 400, "height": 800})  # responsive: one column
        assert page.locator("#chart-customers").bounding_box()["width"] <= 400
        assert tab.errors == []  # no CSP violation, no script error
    finally:
        tab.close()


def test_refreshed_kpis_draw_the_funnel_and_the_cohort_heat_map(
        browser: Any, live_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.analytics.service import refresh_kpis
    from accord.core.settings import reset_settings
    from tests.analytics.kpi_data import seed

    monkeypatch.setenv("ACCORD_DATA_DIR", str(tmp_path))
    reset_settings()
    url = os.environ["ACCORD_DATABASE_URL"]
    with dbmod.session_scope(url) as s:
        seed(s)
    with dbmod.session_scope(url) as s:
        refresh_kpis(s, "duckdb")
    tab = Tab(browser, live_server.url)
    try:
        tab.login(live_server.seeded.emails["admin"])
        page = tab.page
        page.goto(live_server.url + "/analytics?from=2024-12-01&to=2025-06-30")
        for key in ("customers", "churn", "revenue", "funnel", "cohorts"):
            page.locator(f"#chart-{key} canvas").wait_for()
        page.locator('[data-chart-card="cohorts"] summary').click()
        assert page.locator('[data-chart-card="cohorts"] tbody tr').count() > 0
        page.screenshot(path="/tmp/accord-analytics-refreshed.png", full_page=True)
        assert tab.errors == []
    finally:
        tab.close()
        reset_settings()
