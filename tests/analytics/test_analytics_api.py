"""KPI and marketing spend endpoints: outcomes derived from the policy, problem+json errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.access.policy import ROLES, can
from accord.core.db import session_scope
from accord.core.settings import reset_settings
from tests.access.helpers import assert_problem, count
from tests.analytics.kpi_data import seed

SPEND = {"channel": "web", "period_start": "2025-03-01", "period_end": "2025-03-31",
         "amount": "300.00", "currency": "EUR"}


@pytest.mark.parametrize("role", ROLES)
def test_access_follows_the_policy(role: str, db: str, client, make_actor) -> None:
    actor = make_actor(role)
    read = client.get("/api/v1/analytics/kpis?kpi=active_customers", headers=actor.headers)
    listed = client.get("/api/v1/analytics/marketing-spend", headers=actor.headers)
    for response in (read, listed):
        if can(actor.principal, "analytics", "read"):
            assert response.status_code == 200, response.text
        else:
            assert_problem(response, 403)
    before = count(db, "marketing_spend")
    created = client.post("/api/v1/analytics/marketing-spend", json=SPEND, headers=actor.headers)
    if can(actor.principal, "analytics", "create"):
        assert created.status_code == 201, created.text
        assert created.json()["amount"] == "300.00"
        assert created.json()["created_by"] == actor.id
        assert count(db, "marketing_spend") == before + 1
    else:
        assert_problem(created, 403)
        assert count(db, "marketing_spend") == before  # nothing written


def test_token_scope_limits_analytics(db: str, client, make_actor) -> None:
    reader = make_actor("analyst", scopes=["analytics:read"])
    assert client.get("/api/v1/analytics/kpis?kpi=revenue", headers=reader.headers).status_code \
        == 200
    assert_problem(client.post("/api/v1/analytics/marketing-spend", json=SPEND,
                               headers=reader.headers), 403)


@pytest.mark.parametrize(("body", "field"), [
    ({**SPEND, "id": 5}, "id"),
    ({**SPEND, "created_by": 1}, "created_by"),
    ({**SPEND, "amount": "-1"}, "amount"),
    ({**SPEND, "currency": "XXY"}, "currency"),
    ({**SPEND, "period_end": "2025-02-01"}, "period_end"),
    ({k: v for k, v in SPEND.items() if k != "channel"}, "channel"),
])
def test_spend_validation(body: dict, field: str, db: str, client, admin) -> None:
    response = client.post("/api/v1/analytics/marketing-spend", json=body, headers=admin.headers)
    assert_problem(response, 422, field)
    assert count(db, "marketing_spend") == 0


@pytest.mark.parametrize(("query", "field"), [
    ("kpi=bogus", "kpi"), ("kpi=revenue&country=gb", "country"),
    ("kpi=revenue&segment=diamond", "segment"), ("kpi=revenue&from=2025-13-01", "query.from"),
    ("kpi=revenue&from=2025-03-01&to=2025-01-01", "from"), ("", "query.kpi"),
])
def test_kpi_query_validation(query: str, field: str, client, admin) -> None:
    response = client.get(f"/api/v1/analytics/kpis?{query}", headers=admin.headers)
    assert_problem(response, 422, field)


def test_series_with_trend_and_filters(db: str, client, make_actor, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.analytics.service import refresh_kpis

    monkeypatch.setenv("ACCORD_DATA_DIR", str(tmp_path))
    reset_settings()
    analyst = make_actor("analyst")
    empty = client.get("/api/v1/analytics/kpis?kpi=active_customers", headers=analyst.headers)
    assert empty.json()["status"] == "no data"
    with session_scope(db) as s:
        seed(s)
        refresh_kpis(s, "duckdb")
    body = client.get("/api/v1/analytics/kpis?kpi=active_customers&from=2025-01-01&to=2025-06-30",
                      headers=analyst.headers).json()
    assert body["status"] == "ok" and body["run"]["engine"] == "duckdb"
    values = {i["period_start"]: (i["value"], i["previous_value"]) for i in body["items"]}
    assert values["2025-05-01"] == (3, 4)
    assert values["2025-01-01"] == (3, 2)  # the previous month lies outside the range
    de = client.get("/api/v1/analytics/kpis?kpi=active_customers&country=DE&to=2025-06-30",
                    headers=analyst.headers).json()
    assert {i["dimension_value"] for i in de["items"]} == {"DE"}
    both = client.get("/api/v1/analytics/kpis?kpi=revenue&country=DE&segment=gold",
                      headers=analyst.headers)
    assert_problem(both, 422, "segment")
    nps = client.get("/api/v1/analytics/kpis?kpi=nps", headers=analyst.headers).json()
    assert nps["status"] == "no data" and nps["items"] == []
    monkeypatch.delenv("ACCORD_DATA_DIR")
    reset_settings()
