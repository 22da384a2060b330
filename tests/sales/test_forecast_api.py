"""`/api/v1/forecast*` and `/sales/forecast`: serialisation, record scopes, errors."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from accord.core import db as dbmod
from accord.models import User
from accord.models.sales import Deal
from tests.access.helpers import assert_problem
from tests.sales.test_forecast import make_world

CLOSE = date(2026, 10, 20)


def _seed(db: str, make_actor: Any) -> dict[str, Any]:
    """Two sales teams and a manager of the first; one Negotiate (80 %) deal per seller."""
    alpha = make_actor("sales", team="Alpha")
    alpha_mate = make_actor("sales", team="Alpha")
    beta = make_actor("sales", team="Beta")
    manager = make_actor("manager", team="Alpha")
    admin = make_actor("admin")
    with dbmod.session_scope(db) as s:
        w = make_world(s, team_name="World", owner_email="world-owner@example.com")
        for actor, amount, currency in ((alpha, "1000", "EUR"), (alpha_mate, "2000", "EUR"),
                                        (beta, "4000", "EUR"), (beta, "300", "USD")):
            user = s.get(User, actor.id)
            deal = w.deal(amount, "Negotiate", close=CLOSE, currency=currency, owner=user,
                          category="commit")
            deal.team_id = user.team_id
        pipeline_id = w.pipeline.id
    return {"alpha": alpha, "mate": alpha_mate, "beta": beta, "manager": manager,
            "admin": admin, "pipeline_id": pipeline_id}


def _totals(body: dict[str, Any]) -> dict[str, str]:
    return {c["currency"]: c["pipeline_amount"] for c in body["total"]}


def test_forecast_json_respects_each_readers_scope(client: Any, db: str,
                                                   make_actor: Any) -> None:
    seed = _seed(db, make_actor)
    url = "/api/v1/forecast?period=quarter&start=2026-10-01"
    r = client.get(url, headers=seed["admin"].headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "all"
    assert (body["start"], body["end"]) == ("2026-10-01", "2027-01-01")
    assert _totals(body) == {"EUR": "7000.00", "USD": "300.00"}  # money as strings
    eur = next(c for c in body["months"][0]["currencies"] if c["currency"] == "EUR")
    assert eur["weighted_amount"] == "5600.00"  # 80 % of 7000
    assert eur["commit_amount"] == "7000.00"
    assert {b["name"] for b in body["by_team"]} == {"Alpha", "Beta"}

    alpha = client.get(url, headers=seed["alpha"].headers).json()
    assert alpha["scope"] == "team"
    assert _totals(alpha) == {"EUR": "3000.00"}  # own + Alpha mate, not Beta
    assert _totals(client.get(url, headers=seed["manager"].headers).json()) == {
        "EUR": "3000.00"}
    assert _totals(client.get(url, headers=seed["beta"].headers).json()) == {
        "EUR": "4000.00", "USD": "300.00"}
    # a parameter naming another team narrows, never widens
    beta_team = client.get(url, headers=seed["beta"].headers).json()["by_team"][0]["id"]
    sneaky = client.get(f"{url}&team_id={beta_team}", headers=seed["alpha"].headers).json()
    assert sneaky["total"] == []
    piped = client.get(f"{url}&pipeline_id={seed['pipeline_id']}",
                       headers=seed["admin"].headers).json()
    assert _totals(piped) == _totals(body)
    # empty filters, as a form sends them, mean no filter
    empty = client.get(f"{url}&pipeline_id=&owner_id=&team_id=", headers=seed["admin"].headers)
    assert empty.status_code == 200 and _totals(empty.json()) == _totals(body)


def test_metrics_and_backtest_endpoints(client: Any, db: str, make_actor: Any) -> None:
    seed = _seed(db, make_actor)
    with dbmod.session_scope(db) as s:
        deals = s.query(Deal).count()
    assert deals == 4
    r = client.get("/api/v1/forecast/metrics", headers=seed["alpha"].headers)
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["scope"] == "team" and m["won_count"] == 0 and m["win_rate"] is None
    assert [(c["currency"], c["open_count"]) for c in m["currencies"]] == [("EUR", 2)]
    r = client.get("/api/v1/forecast/backtest?quarters=2", headers=seed["admin"].headers)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"quarters", "mape", "scope"}


def test_forecast_errors_are_problems(client: Any, db: str, make_actor: Any) -> None:
    admin = make_actor("admin")
    assert_problem(client.get("/api/v1/forecast?start=2026-10-02", headers=admin.headers),
                   422, "start")
    r = client.get("/api/v1/forecast?period=decade", headers=admin.headers)
    assert r.status_code == 422
    assert_problem(client.get("/api/v1/forecast?start=soon", headers=admin.headers), 422,
                   "start")
    assert_problem(client.get("/api/v1/forecast?owner_id=1%20OR%201=1", headers=admin.headers),
                   422, "owner_id")
    assert_problem(client.get("/api/v1/forecast/metrics?end=x", headers=admin.headers), 422,
                   "end")
    assert_problem(client.get("/api/v1/forecast/backtest?quarters=0", headers=admin.headers),
                   422)
    assert_problem(client.get("/api/v1/forecast"), 401)
    leads_only = make_actor("admin", scopes=["leads:read"])
    assert_problem(client.get("/api/v1/forecast", headers=leads_only.headers), 403)
    assert_problem(client.get("/api/v1/forecast/metrics", headers=leads_only.headers), 403)


def test_forecast_page_renders_tables_and_chart_data(signed_in_as: Any, db: str) -> None:
    browser = signed_in_as("manager")
    with dbmod.session_scope(db) as s:
        w = make_world(s, team_name="Gamma", owner_email="gamma@example.com")
        w.deal("1234", "Propose", close=date(2026, 10, 5))
    page = browser.get("/sales/forecast?period=quarter&start=2026-10-01")
    assert page.status_code == 200, page.text
    assert "<h1>Forecast</h1>" in page.text
    assert 'id="chart-data"' in page.text
    assert "<script>" not in page.text  # data blocks only, no inline script
    # the manager is not in team Gamma: the deal is not in their forecast
    assert 'data-bucket="2026-10" data-currency' not in page.text
    admin = signed_in_as("admin")
    page = admin.get("/sales/forecast?start=2026-10-01")
    assert re.search(r'data-bucket="2026-10" data-currency="EUR"', page.text)
    assert "forecast-EUR" in page.text
    assert "Run the backtest" in page.text and "No past quarters" not in page.text
    replay = admin.get("/sales/forecast?start=2026-10-01&backtest=1")
    assert replay.status_code == 200 and "No past quarters with deals to replay" in replay.text
    bad = admin.get("/sales/forecast?start=2026-10-09")
    assert bad.status_code == 422
    assert "start" in bad.text
