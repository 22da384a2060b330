"""Leads over REST: CRUD with If-Match, allow-listed filters and keyset pages, the
qualification workflow, BANT validation, the first-touch SLA and matching on API create."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from accord.core import db as dbmod
from accord.core.clock import utcnow
from accord.models import OutboxEvent
from accord.models.sales import Lead
from tests.access.helpers import assert_problem, audit_actions, seed_customer, snapshot


def create(client, actor, **body):
    body.setdefault("last_name", "Lovelace")
    r = client.post("/api/v1/leads", json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


def patch(client, actor, lead_id, body, version):
    return client.patch(f"/api/v1/leads/{lead_id}", json=body,
                        headers={**actor.headers, "If-Match": f'"{version}"'})


def status(client, actor, lead_id, version, **body):
    return client.post(f"/api/v1/leads/{lead_id}/status", json=body,
                       headers={**actor.headers, "If-Match": f'"{version}"'})


def test_create_read_update_delete(db, client, make_actor):
    sales = make_actor("sales", team="alpha")
    lead = create(client, sales, first_name="Ada", email=" Ada@Example.COM ",
                  phone="+44 20 7946 0958", company="Analytical Engines", country="Germany",
                  employees=12)
    assert lead["owner_id"] == sales.id and lead["team_id"] == sales.team_id
    assert lead["source"] == "api" and lead["status"] == "new" and lead["version"] == 1
    assert lead["country"] == "DE"
    assert lead["sla"]["state"] == "due"
    with dbmod.session_scope(db, write=False) as s:
        row = s.get(Lead, lead["id"])
        assert row.email_normalized == "ada@example.com" and row.phone_e164 == "+442079460958"
    got = client.get(f"/api/v1/leads/{lead['id']}", headers=sales.headers)
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    r = patch(client, sales, lead["id"], {"job_title": "CTO"}, 1)
    assert r.status_code == 200, r.text
    assert r.json()["job_title"] == "CTO" and r.json()["version"] == 2
    assert_problem(patch(client, sales, lead["id"], {"job_title": "CEO"}, 1), 412, "If-Match")
    r = client.delete(f"/api/v1/leads/{lead['id']}", headers={**sales.headers, "If-Match": '"2"'})
    assert r.status_code == 403  # sales may not delete
    manager = make_actor("manager", team="alpha")
    r = client.delete(f"/api/v1/leads/{lead['id']}",
                      headers={**manager.headers, "If-Match": '"2"'})
    assert r.status_code == 204
    assert_problem(client.get(f"/api/v1/leads/{lead['id']}", headers=manager.headers), 404)


@pytest.mark.parametrize("field", ["id", "owner_id", "team_id", "version", "score", "created_by",
                                   "first_touched_at", "customer_id", "source", "status"])
def test_mass_assignment_is_refused(db, client, make_actor, field):
    actor = make_actor("admin", team="alpha")
    before = snapshot(db)
    r = client.post("/api/v1/leads", json={"last_name": "X", field: 1}, headers=actor.headers)
    assert_problem(r, 422, field)
    assert snapshot(db) == before


def test_patch_refuses_read_only_fields(db, client, make_actor):
    actor = make_actor("admin", team="alpha")
    lead = create(client, actor)
    for field in ("owner_id", "score", "version", "first_touch_due_at"):
        assert_problem(patch(client, actor, lead["id"], {field: 1}, 1), 422, field)


def test_bad_values_are_422_naming_the_field(db, client, make_actor):
    actor = make_actor("admin")
    cases = [({"email": "not-an-email"}, "email"), ({"phone": "12"}, "phone"),
             ({"country": "Atlantis"}, "country"), ({"budget": "10", "last_name": "x"},
                                                   "budget_currency"),
             ({"budget": "-1", "budget_currency": "EUR"}, "budget"),
             ({"budget": "1", "budget_currency": "XXY"}, "budget_currency"),
             ({"authority": "king"}, "authority"), ({"timeline": "soon"}, "timeline"),
             ({"employees": -3}, "employees"), ({"first_name": "x" * 101}, "first_name")]
    for body, field in cases:
        body.setdefault("last_name", "Case")
        r = client.post("/api/v1/leads", json=body, headers=actor.headers)
        assert_problem(r, 422, field)
    assert_problem(client.post("/api/v1/leads", json={}, headers=actor.headers), 422)


def test_bant_is_stored_and_money_leaves_as_string(db, client, make_actor):
    actor = make_actor("admin")
    lead = create(client, actor, budget="25000.5", budget_currency="eur",
                  authority="decision_maker", need="Replace the spreadsheets",
                  timeline="quarter")
    assert lead["budget"] == "25000.50" and lead["budget_currency"] == "EUR"
    assert lead["authority"] == "decision_maker" and lead["timeline"] == "quarter"


def test_status_workflow(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    lead = create(client, actor)
    # illegal move: new → converted (only conversion gets there)
    assert_problem(status(client, actor, lead["id"], 1, status="converted"), 409, "status")
    # disqualifying needs a reason from the list
    assert_problem(status(client, actor, lead["id"], 1, status="disqualified"), 422,
                   "disqualify_reason")
    assert_problem(status(client, actor, lead["id"], 1, status="disqualified",
                          disqualify_reason="bored"), 422, "disqualify_reason")
    r = status(client, actor, lead["id"], 1, status="working", note="called")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "working" and body["version"] == 2
    assert body["first_touched_at"] is not None and body["sla"]["state"] == "met"
    r = status(client, actor, lead["id"], 2, status="disqualified", disqualify_reason="no_budget")
    assert r.json()["status"] == "disqualified" and r.json()["disqualify_reason"] == "no_budget"
    # disqualified → qualified is not in the table
    assert_problem(status(client, actor, lead["id"], 3, status="qualified"), 409, "status")
    r = status(client, actor, lead["id"], 3, status="working")
    assert r.json()["disqualify_reason"] is None
    # the same rules through PATCH
    assert_problem(patch(client, actor, lead["id"], {"status": "new"}, 4), 409, "status")
    r = patch(client, actor, lead["id"], {"status": "qualified", "need": "CRM"}, 4)
    assert r.status_code == 200 and r.json()["status"] == "qualified" and r.json()["version"] == 5
    with dbmod.session_scope(db, write=False) as s:
        moves = [(e.payload["from"], e.payload["to"]) for e in s.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "lead.status_changed")
            .order_by(OutboxEvent.id))]
    assert moves == [("new", "working"), ("working", "disqualified"),
                     ("disqualified", "working"), ("working", "qualified")]
    updates = [a for a in audit_actions(db) if a[:2] == ("update", "leads")]
    assert len(updates) >= 5


def test_list_filters_sorts_and_keyset_pages(db, client, make_actor):
    actor = make_actor("admin", team="alpha")
    other = make_actor("sales", team="beta")
    ids = [create(client, actor, last_name=f"L{i}", country="DE" if i % 2 else "FR")["id"]
           for i in range(5)]
    theirs = create(client, other, last_name="Theirs")["id"]
    status(client, actor, ids[0], 1, status="working")

    def listed(**params):
        r = client.get("/api/v1/leads", params=params, headers=actor.headers)
        assert r.status_code == 200, r.text
        return r.json()

    assert [i["id"] for i in listed()["items"]] == [theirs, *reversed(ids)]
    got = listed(owner_id=actor.id, status="new")["items"]
    assert [i["id"] for i in got] == list(reversed(ids[1:]))
    assert {i["id"] for i in listed(team_id=other.team_id)["items"]} == {theirs}
    assert {i["id"] for i in listed(country="DE")["items"]} == {ids[1], ids[3]}
    assert {i["id"] for i in listed(status__in="working,new", owner_id=actor.id)["items"]} == \
        set(ids)
    assert listed(q="l3")["items"][0]["id"] == ids[3]
    # keyset pages cover everything once
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "sort": "created_at"} | ({"cursor": cursor} if cursor else {})
        page = listed(**params)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted([*ids, theirs]) and len(seen) == 6
    for bad in ({"password": "x"}, {"sort": "email"}, {"status": "lost"},
                {"score__prefix": "1"}, {"sla": "late"}, {"owner_id": "abc"}):
        assert_problem(client.get("/api/v1/leads", params=bad, headers=actor.headers), 422)


def test_sla_field_and_filter(db, client, make_actor):
    actor = make_actor("admin", team="alpha")
    late = create(client, actor, last_name="Late")["id"]
    touched_late = create(client, actor, last_name="TouchedLate")["id"]
    on_time = create(client, actor, last_name="OnTime")["id"]
    open_ = create(client, actor, last_name="Open")["id"]
    past = utcnow() - timedelta(hours=1)
    with dbmod.session_scope(db) as s:
        s.execute(update(Lead).where(Lead.id.in_([late, touched_late]))
                  .values(first_touch_due_at=past))
        s.execute(update(Lead).where(Lead.id == touched_late)
                  .values(first_touched_at=past + timedelta(minutes=30)))
        s.execute(update(Lead).where(Lead.id == on_time)
                  .values(first_touched_at=utcnow()))

    def ids(sla):
        r = client.get("/api/v1/leads", params={"sla": sla}, headers=actor.headers)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert ids("overdue") == {late}
    assert ids("breached") == {late, touched_late}
    assert ids("met") == {on_time}
    assert ids("due") == {open_}
    states = {i["id"]: i["sla"]["state"] for i in client.get(
        "/api/v1/leads", headers=actor.headers).json()["items"]}
    assert states == {late: "breached", touched_late: "breached", on_time: "met", open_: "due"}


def test_api_create_matches_known_people(db, client, make_actor):
    actor = make_actor("admin", team="alpha")
    first = create(client, actor, email="grace@example.com")
    r = client.post("/api/v1/leads", json={"last_name": "Hopper", "email": "GRACE@example.com"},
                    headers=actor.headers)
    assert_problem(r, 409, "email")
    assert str(first["id"]) in r.json()["detail"]
    customer = seed_customer(db, actor.id, actor.team_id, emails=[{"email": "known@example.com"}])
    lead = create(client, actor, email="Known@Example.com")
    assert lead["customer_id"] == customer


def test_assign_endpoint(db, client, make_actor):
    manager = make_actor("manager", team="alpha")
    mate = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    lead = create(client, manager)
    url = f"/api/v1/leads/{lead['id']}/assign"
    h = {**manager.headers, "If-Match": '"1"'}
    assert_problem(client.post(url, json={"team_id": outsider.team_id}, headers=h), 403,
                   "team_id")
    assert_problem(client.post(url, json={"owner_id": 999999}, headers=h), 422, "owner_id")
    r = client.post(url, json={"owner_id": mate.id}, headers=h)
    assert r.status_code == 200 and r.json()["owner_id"] == mate.id
    # sales may update only its own leads and so may not reassign
    r = client.post(url, json={"owner_id": mate.id}, headers={**mate.headers, "If-Match": '"2"'})
    assert_problem(r, 403)
