"""The forecast page in a real browser: the vendored ECharts draws one chart per currency under
the strict CSP, from the page's JSON data block."""

from __future__ import annotations

import os
from typing import Any

import pytest

from accord.core import db as dbmod
from accord.core.clock import utcnow
from accord.sales.forecast import add_months, quarter_start
from tests.e2e.test_browser import Tab
from tests.sales.test_forecast import make_world

pytestmark = pytest.mark.browser


def test_forecast_page_draws_a_chart_per_currency(browser: Any, live_server: Any) -> None:
    start = quarter_start(utcnow().date())
    with dbmod.session_scope(os.environ["ACCORD_DATABASE_URL"]) as s:
        w = make_world(s, team_name="E2E forecast", owner_email="e2e-forecast@example.com")
        w.deal("1200", "Propose", close=start, category="commit")
        w.deal("900", "Negotiate", currency="USD", close=add_months(start, 1))
    tab = Tab(browser, live_server.url)
    try:
        tab.login(live_server.seeded.emails["admin"])
        page = tab.page
        page.goto(f"{live_server.url}/sales/forecast?start={start.isoformat()}")
        for currency in ("EUR", "USD"):
            canvas = page.locator(f"#chart-forecast-{currency} canvas")
            canvas.wait_for()
            box = canvas.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100
        row = page.locator(f'#months tr[data-bucket="{start:%Y-%m}"][data-currency="EUR"]')
        assert "1,200.00" in row.inner_text() or "1.200,00" in row.inner_text()
        page.screenshot(path="/tmp/accord-forecast.png", full_page=True)
        assert tab.errors == []  # no CSP violation, no script error
    finally:
        tab.close()
