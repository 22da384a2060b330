"""The service configuration API (SLA policies, calendars, routing rules, agents) and a
ticket's SLA timers and escalation endpoints: CRUD, validation naming the field, permissions."""

from __future__ import annotations

from sqlalchemy import select

from accord.core import db as dbmod
from accord.models.service import SlaPolicy
from tests.access.helpers import assert_problem
from tests.service.test_sla_tracking import make_customer
from tests.service.tickets_helpers import customer_ticket

BASE = "/api/v1/service"
BERLIN = {"timezone": "Europe/Berlin",
          "hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
          "holidays": ["2026-12-25"]}


def test_sla_policy_crud_with_targets(client, admin, make_actor):
    h = admin.headers
    team_id = make_actor("manager", team="Desk").team_id
    r = client.post(f"{BASE}/sla-policies", headers=h, json={
        "name": "Standard", "is_default": True, "targets": [
            {"priority": "normal", "first_response_minutes": 240, "resolution_minutes": 960},
            {"priority": "urgent", "tier": "platinum", "first_response_minutes": 30}]})
    assert r.status_code == 201, r.text
    std = r.json()
    assert r.headers["Location"] == f"/api/v1/service/sla-policies/{std['id']}"
    assert {(t["priority"], t["tier"]) for t in std["targets"]} == {
        ("normal", None), ("urgent", "platinum")}
    second = client.post(f"{BASE}/sla-policies", headers=h, json={
        "name": "Desk", "team_id": team_id, "is_default": True}).json()
    # one default: the new one took the flag
    assert client.get(f"{BASE}/sla-policies/{std['id']}", headers=h).json()["is_default"] is False
    assert_problem(client.post(f"{BASE}/sla-policies", headers=h, json={
        "name": "Desk 2", "team_id": team_id}), 409, "team_id")
    assert_problem(client.post(f"{BASE}/sla-policies", headers=h, json={"name": "Desk"}),
                   409, "name")

    got = client.get(f"{BASE}/sla-policies/{second['id']}", headers=h)
    r = client.patch(f"{BASE}/sla-policies/{second['id']}",
                     headers={**h, "If-Match": got.headers["ETag"]},
                     json={"targets": [{"priority": "high", "next_response_minutes": 60}]})
    assert r.status_code == 200, r.text
    assert r.json()["targets"] == [{"priority": "high", "tier": None,
                                    "first_response_minutes": None,
                                    "next_response_minutes": 60, "resolution_minutes": None}]
    assert r.json()["version"] > second["version"]
    stale = client.patch(f"{BASE}/sla-policies/{second['id']}",
                         headers={**h, "If-Match": got.headers["ETag"]}, json={"name": "x"})
    assert_problem(stale, 412)
    fresh = client.get(f"{BASE}/sla-policies/{second['id']}", headers=h).headers["ETag"]
    assert client.delete(f"{BASE}/sla-policies/{second['id']}",
                         headers={**h, "If-Match": fresh}).status_code == 204
    assert [p["name"] for p in client.get(f"{BASE}/sla-policies", headers=h).json()] == [
        "Standard"]


def test_sla_policy_validation_names_the_field(client, admin):
    h = admin.headers
    post = lambda body: client.post(f"{BASE}/sla-policies", headers=h, json=body)  # noqa: E731
    assert_problem(post({"name": "a", "targets": [{"priority": "normal",
                                                   "first_response_minutes": 0}]}),
                   422, "targets.0.first_response_minutes")
    assert_problem(post({"name": "a", "targets": [{"priority": "normal", "tier": "diamond"}]}),
                   422, "targets.0.tier")
    assert_problem(post({"name": "a", "targets": [{"priority": "normal"},
                                                  {"priority": "normal"}]}), 422, "targets")
    assert_problem(post({"name": "a", "warning_ratio": 1.5}), 422, "warning_ratio")
    assert_problem(post({"name": "a", "team_id": 999}), 422, "team_id")
    assert_problem(post({"name": "a", "version": 3}), 422, "version")


def test_calendar_validation_names_the_key(client, admin):
    h = admin.headers
    post = lambda body: client.post(f"{BASE}/calendars", headers=h, json=body)  # noqa: E731
    r = post({"name": "Berlin", **BERLIN})
    assert r.status_code == 201, r.text
    assert r.json()["hours"]["mon"] == [["09:00", "17:00"]] and r.json()["team_id"] is None
    bad_hours = {**BERLIN, "hours": {"wed": [["09:00", "12:00"], ["11:00", "10:00"]]}}
    body = assert_problem(post({"name": "x", **bad_hours}), 422, "hours.wed[1]")
    assert "before" in body["detail"]
    assert_problem(post({"name": "x", **BERLIN, "timezone": "Mars/Olympus"}), 422, "timezone")
    assert_problem(post({"name": "x", **BERLIN, "holidays": ["25.12.2026"]}), 422, "holidays[0]")
    assert_problem(post({"name": "x", **BERLIN, "hours": {"funday": []}}), 422, "hours.funday")
    # a second default calendar conflicts
    assert_problem(post({"name": "Other", **BERLIN}), 409, "team_id")
    cal = client.get(f"{BASE}/calendars/{r.json()['id']}", headers=h)
    patched = client.patch(f"{BASE}/calendars/{r.json()['id']}",
                           headers={**h, "If-Match": cal.headers["ETag"]},
                           json={"hours": {"mon": [["08:00", "24:00"]]}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["hours"] == {"mon": [["08:00", "24:00"]]}
    assert_problem(client.patch(f"{BASE}/calendars/{r.json()['id']}",
                                headers={**h, "If-Match": patched.headers["ETag"]},
                                json={"hours": {"mon": [["8", "9"]]}}), 422, "hours.mon[0]")


def test_routing_rules_and_agents(client, admin, make_actor):
    h = admin.headers
    agent = make_actor("support", team="Desk")
    seller = make_actor("sales", team="Desk")
    r = client.post(f"{BASE}/routing-rules", headers=h, json={
        "name": "Billing", "team_id": agent.team_id, "category": "billing",
        "required_skill": "billing", "method": "least_loaded", "position": 2})
    assert r.status_code == 201, r.text
    assert r.json()["method"] == "least_loaded"
    assert_problem(client.post(f"{BASE}/routing-rules", headers=h, json={"name": "x"}),
                   422, "team_id")
    assert_problem(client.post(f"{BASE}/routing-rules", headers=h, json={
        "name": "x", "team_id": agent.team_id, "method": "random"}), 422, "method")
    etag = client.get(f"{BASE}/routing-rules/{r.json()['id']}", headers=h).headers["ETag"]
    assert_problem(client.patch(f"{BASE}/routing-rules/{r.json()['id']}",
                                headers={**h, "If-Match": etag}, json={"team_id": None}),
                   422, "team_id")

    a = client.post(f"{BASE}/agents", headers=h, json={
        "user_id": agent.id, "skills": ["billing", "Billing", "returns"],
        "languages": ["EN", "de"], "max_open_tickets": 5})
    assert a.status_code == 201, a.text
    assert a.json()["skills"] == ["billing", "returns"] and a.json()["languages"] == ["en", "de"]
    assert_problem(client.post(f"{BASE}/agents", headers=h, json={"user_id": agent.id}),
                   409, "user_id")
    assert_problem(client.post(f"{BASE}/agents", headers=h, json={"user_id": seller.id}),
                   422, "user_id")
    assert_problem(client.post(f"{BASE}/agents", headers=h, json={
        "user_id": agent.id, "max_open_tickets": -1}), 422, "max_open_tickets")
    # the agent steps away without config rights, but may not edit profiles
    away = client.put(f"{BASE}/agents/me/availability", headers=agent.headers,
                      json={"available": False})
    assert away.status_code == 200 and away.json()["available"] is False
    etag = client.get(f"{BASE}/agents/{a.json()['id']}", headers=agent.headers).headers["ETag"]
    assert_problem(client.patch(f"{BASE}/agents/{a.json()['id']}",
                                headers={**agent.headers, "If-Match": etag},
                                json={"max_open_tickets": 99}), 403)
    assert_problem(client.put(f"{BASE}/agents/me/availability", headers=seller.headers,
                              json={"available": True}), 404)


def test_permissions(client, make_actor):
    manager, support = make_actor("manager", team="Desk"), make_actor("support", team="Desk")
    marketer = make_actor("marketing")
    body = {"name": "P"}
    assert client.post(f"{BASE}/sla-policies", headers=manager.headers,
                       json=body).status_code == 201
    assert_problem(client.post(f"{BASE}/sla-policies", headers=support.headers,
                               json={"name": "Q"}), 403)
    assert client.get(f"{BASE}/sla-policies", headers=support.headers).status_code == 200
    assert_problem(client.get(f"{BASE}/calendars", headers=marketer.headers), 403)


def test_ticket_sla_and_escalate_endpoints(client, admin, make_actor, db):
    h = admin.headers
    manager = make_actor("manager", team="Desk")
    client.post(f"{BASE}/sla-policies", headers=h, json={
        "name": "Std", "is_default": True, "targets": [
            {"priority": "normal", "first_response_minutes": 60, "resolution_minutes": 600},
            {"priority": "high", "first_response_minutes": 30}]})
    tid = customer_ticket(db, team_id=manager.team_id)
    sla = client.get(f"/api/v1/tickets/{tid}/sla", headers=h)
    assert sla.status_code == 200, sla.text
    body = sla.json()
    assert body["policy"] == "Std" and body["sla_state"] == "running"
    timers = {t["metric"]: t for t in body["timers"]}
    assert timers["first_response"]["target_seconds"] == 3600
    assert 0 < timers["first_response"]["remaining_seconds"] <= 3600
    assert body["due_at"] is not None
    assert_problem(client.get("/api/v1/tickets/999999/sla", headers=h), 404)

    support = make_actor("support", team="Desk")
    assert_problem(client.post(f"/api/v1/tickets/{tid}/escalate", headers=support.headers,
                               json={"reason": ""}), 422, "reason")
    r = client.post(f"/api/v1/tickets/{tid}/escalate", headers=support.headers,
                    json={"reason": "Customer is about to cancel"})
    assert r.status_code == 200, r.text
    assert r.json()["escalation_level"] == 1 and r.json()["priority"] == "high"
    after = {t["metric"]: t for t in client.get(f"/api/v1/tickets/{tid}/sla",
                                                headers=h).json()["timers"]}
    assert after["first_response"]["target_seconds"] == 1800  # high's target now
    seller = make_actor("sales", team="Other")
    assert_problem(client.post(f"/api/v1/tickets/{tid}/escalate", headers=seller.headers,
                               json={"reason": "x"}), 404)
    reader = make_actor("analyst")  # reads every ticket, changes none
    assert_problem(client.post(f"/api/v1/tickets/{tid}/escalate", headers=reader.headers,
                               json={"reason": "x"}), 403)
    notes = client.get("/api/v1/notifications", headers=manager.headers).json()
    items = notes["items"] if isinstance(notes, dict) else notes
    assert any(n["link"] == f"/service/tickets/{tid}" for n in items)


def test_high_value_customer_gets_the_tier_target(client, admin, db):
    with dbmod.session_scope(db) as s:
        cid = make_customer(s, "platinum")
    client.post(f"{BASE}/sla-policies", headers=admin.headers, json={
        "name": "Tiered", "is_default": True, "targets": [
            {"priority": "normal", "first_response_minutes": 240},
            {"priority": "normal", "tier": "platinum", "first_response_minutes": 15}]})
    tid = customer_ticket(db, customer_id=cid)
    body = client.get(f"/api/v1/tickets/{tid}/sla", headers=admin.headers).json()
    assert body["tier"] == "platinum"
    assert body["timers"][0]["target_seconds"] == 15 * 60
    with dbmod.session_scope(db) as s:
        assert s.scalar(select(SlaPolicy.name)) == "Tiered"


def test_policy_list_reads_targets_in_one_query(client, admin, db):
    """The list once read each policy's targets separately (a query per row)."""
    from sqlalchemy import event

    engine = dbmod.get_engine(db)

    def target_reads() -> tuple[int, int]:
        seen: list[str] = []

        def record(conn, cursor, statement, *args):  # noqa: ANN001 - SQLAlchemy's signature
            if statement.lstrip().upper().startswith("SELECT") and "sla_targets" in statement:
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            r = client.get(f"{BASE}/sla-policies", headers=admin.headers)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert r.status_code == 200, r.text
        return len(seen), sum(len(p["targets"]) for p in r.json())

    for n in range(4):
        r = client.post(f"{BASE}/sla-policies", headers=admin.headers, json={
            "name": f"P{n}", "targets": [{"priority": "normal", "first_response_minutes": 60},
                                         {"priority": "high", "first_response_minutes": 30}]})
        assert r.status_code == 201, r.text
    assert target_reads() == (1, 8)
