"""The leads authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team) the expected outcome
is derived from the policy functions (`scope_for`, `record_in_scope`): not readable → 404 (no
existence oracle), readable but the action is not allowed → 403, allowed → 2xx. Every refused
request leaves the leads, their engagements, the outbox and the audit chain's data rows
unchanged; a 403 is itself audited as `denied`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from accord.access.policy import ROLES, Principal, can, record_in_scope, scope_for
from accord.core import db as dbmod
from accord.sales import leads
from accord.sales.leads_schemas import LeadCreate
from tests.access.helpers import DENIED, as_admin, assert_problem, audit_actions

RECORD_ACTIONS = ("read", "update", "status", "delete", "assign")
ACTIONS = (*RECORD_ACTIONS, "create", "list")
RELATIONS = ("own", "team", "other")
TABLES = ("leads", "lead_engagements", "consent_records", "outbox_events", "jobs",
          "idempotency_keys")


def snapshot(url: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    with dbmod.get_engine(url).connect() as conn:
        for table in TABLES:
            out[table] = [dict(r) for r in conn.execute(
                text(f'SELECT * FROM "{table}" ORDER BY 1')).mappings()]  # noqa: S608
        out["audit_log"] = [dict(r) for r in conn.execute(
            text("SELECT * FROM audit_log WHERE action <> :d ORDER BY id"),
            {"d": DENIED}).mappings()]
    return out


def _in_scope(p: Principal, action: str, owner_id: int, team_id: int | None) -> bool:
    return record_in_scope(p, scope_for(p, "leads", action), owner_id, team_id)


def expected_status(p: Principal, action: str, owner_id: int, team_id: int | None) -> int:
    if not _in_scope(p, "read", owner_id, team_id):
        return 404
    if action == "read":
        return 200
    if action == "assign":
        allowed = scope_for(p, "leads", "update") in ("team", "all") and _in_scope(
            p, "update", owner_id, team_id)
        return 200 if allowed else 403
    right = "update" if action == "status" else action
    if not _in_scope(p, right, owner_id, team_id):
        return 403
    return 204 if action == "delete" else 200


def seed_lead(url: str, owner_id: int, team_id: int | None, name: str) -> int:
    with dbmod.session_scope(url) as s:
        return leads.create_lead(s, as_admin(owner_id, team_id),
                                 LeadCreate(last_name=name, email=f"{name}@example.com")).id


@pytest.fixture
def world(db, make_actor):
    def build(role: str):
        actor = make_actor(role, team="alpha")
        mate = make_actor("sales", team="alpha")
        outsider = make_actor("sales", team="beta")
        owners = {"own": actor, "team": mate, "other": outsider}
        records = {rel: seed_lead(db, o.id, o.team_id, f"r-{rel}") for rel, o in owners.items()}
        return actor, owners, records

    return build


def _request(client, actor, action: str, lead_id: int):
    h = {**actor.headers, "If-Match": '"1"'}
    url = f"/api/v1/leads/{lead_id}"
    if action == "read":
        return client.get(url, headers=actor.headers)
    if action == "update":
        return client.patch(url, json={"job_title": "Changed"}, headers=h)
    if action == "status":
        return client.post(f"{url}/status", json={"status": "working"}, headers=h)
    if action == "delete":
        return client.delete(url, headers=h)
    if action == "assign":
        return client.post(f"{url}/assign", json={"owner_id": actor.id}, headers=h)
    raise AssertionError(action)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_matrix(role, action, db, client, world):
    actor, owners, records = world(role)
    p = actor.principal
    if action == "create":
        before = snapshot(db)
        r = client.post("/api/v1/leads", json={"last_name": "New"}, headers=actor.headers)
        if can(p, "leads", "create"):
            assert r.status_code == 201, r.text
            assert r.json()["owner_id"] == actor.id and r.json()["team_id"] == actor.team_id
        else:
            assert_problem(r, 403)
            assert snapshot(db) == before
            assert audit_actions(db)[-1][:2] == ("denied", "leads")
        return
    if action == "list":
        r = client.get("/api/v1/leads", headers=actor.headers)
        if not can(p, "leads", "read"):
            assert_problem(r, 403)
            return
        assert r.status_code == 200, r.text
        assert {i["id"] for i in r.json()["items"]} == {
            lid for rel, lid in records.items()
            if _in_scope(p, "read", owners[rel].id, owners[rel].team_id)}
        return
    for relation in RELATIONS:
        owner, lid = owners[relation], records[relation]
        want = expected_status(p, action, owner.id, owner.team_id)
        before = snapshot(db)
        r = _request(client, actor, action, lid)
        assert r.status_code == want, (role, action, relation, r.status_code, r.text)
        if want >= 400:
            assert_problem(r, want)
            assert snapshot(db) == before, (role, action, relation)
            if want == 403:
                assert audit_actions(db)[-1] == ("denied", "leads", str(lid))


def test_matrix_covers_every_outcome():
    outcomes = set()
    for role in ROLES:
        p = Principal(user_id=1, email="x", role=role, team_id=1)
        for action in RECORD_ACTIONS:
            for owner_id, team_id in ((1, 1), (2, 1), (3, 2)):
                outcomes.add(expected_status(p, action, owner_id, team_id))
    assert {200, 204, 403, 404} <= outcomes


def test_identity_parameters_do_not_widen_the_scope(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    theirs = seed_lead(db, outsider.id, outsider.team_id, "theirs")
    mine = seed_lead(db, actor.id, actor.team_id, "mine")
    for params in ({"owner_id": outsider.id}, {"team_id": outsider.team_id}, {"id": theirs},
                   {"q": "theirs"}, {"email": "theirs@example.com"},
                   {"id__in": f"{mine},{theirs}"}):
        r = client.get("/api/v1/leads", params=params, headers=actor.headers)
        assert r.status_code == 200, r.text
        assert theirs not in {i["id"] for i in r.json()["items"]}, params
    assert_problem(client.get("/api/v1/leads", params={"as_user": outsider.id},
                              headers=actor.headers), 422)


def test_token_scope_limits_below_role(db, client, make_actor):
    actor = make_actor("admin", team="alpha", scopes=["leads:read"])
    lid = seed_lead(db, actor.id, actor.team_id, "scoped")
    assert client.get(f"/api/v1/leads/{lid}", headers=actor.headers).status_code == 200
    before = snapshot(db)
    assert_problem(_request(client, actor, "update", lid), 403)
    assert_problem(client.post("/api/v1/leads", json={"last_name": "X"}, headers=actor.headers),
                   403)
    assert snapshot(db) == before
