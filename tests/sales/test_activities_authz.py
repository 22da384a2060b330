"""The activities' authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team) the expected outcome
comes from the policy functions for the `activities` resource: not readable → 404, readable but
not allowed → 403 (audited as denied), allowed → 2xx. A refused request changes nothing: no
activity, timeline entry, lead, notification, job, event or audit data row.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from accord.access.policy import ROLES, Principal, can, record_in_scope, scope_for
from accord.core import db as dbmod
from accord.sales import activities
from accord.sales.activities_schemas import ActivityCreate
from tests.access.helpers import as_admin, assert_problem, audit_actions, seed_customer, snapshot

RECORD_ACTIONS = ("read", "update", "complete", "delete")  # in this order: deletes last
RELATIONS = ("own", "team", "other")
POLICY_ACTION = {"read": "read", "update": "update", "complete": "update", "delete": "delete"}
SUCCESS = {"read": 200, "update": 200, "complete": 200, "delete": 204}
EXTRA_TABLES = ("activities", "interactions", "leads", "notifications")


def _in_scope(p: Principal, action: str, owner_id: int, team_id: int | None) -> bool:
    return record_in_scope(p, scope_for(p, "activities", action), owner_id, team_id)


def expected_status(p: Principal, action: str, owner_id: int, team_id: int | None) -> int:
    if not _in_scope(p, "read", owner_id, team_id):
        return 404
    if _in_scope(p, POLICY_ACTION[action], owner_id, team_id):
        return SUCCESS[action]
    return 403


def full_snapshot(url: str) -> dict[str, Any]:
    out = snapshot(url)
    with dbmod.get_engine(url).connect() as conn:
        for table in EXTRA_TABLES:
            sql = text(f'SELECT * FROM "{table}" ORDER BY 1')  # noqa: S608 - fixed names
            out[table] = [dict(r) for r in conn.execute(sql).mappings()]
    return out


def seed_activity(url: str, owner: Any, customer_id: int) -> int:
    """An open call about the owner's customer (so it has a timeline entry), owned by them."""
    with dbmod.session_scope(url) as s:
        a = activities.create_activity(
            s, as_admin(owner.id, owner.team_id),
            ActivityCreate(kind="call", subject=f"Call {owner.id}", customer_id=customer_id))
        return a.id


@pytest.fixture
def world(db, make_actor):
    def build(role: str):
        actor = make_actor(role, team="alpha")
        mate = make_actor("sales", team="alpha")
        outsider = make_actor("sales", team="beta")
        owners = {"own": actor, "team": mate, "other": outsider}
        customers = {rel: seed_customer(db, o.id, o.team_id) for rel, o in owners.items()}
        records = {rel: seed_activity(db, o, customers[rel]) for rel, o in owners.items()}
        return actor, owners, customers, records

    return build


def _version(url: str, activity_id: int) -> int:
    with dbmod.get_engine(url).connect() as conn:
        return conn.execute(text("SELECT version FROM activities WHERE id = :i"),
                            {"i": activity_id}).scalar_one()


def _request(client: Any, actor: Any, action: str, activity_id: int, version: int = 1) -> Any:
    url = f"/api/v1/activities/{activity_id}"
    h = {**actor.headers, "If-Match": f'"{version}"'}
    if action == "read":
        return client.get(url, headers=actor.headers)
    if action == "update":
        return client.patch(url, json={"subject": "Changed"}, headers=h)
    if action == "complete":
        return client.post(f"{url}/complete", json={"outcome": "reached"}, headers=h)
    if action == "delete":
        return client.delete(url, headers=h)
    raise AssertionError(action)


def _check_create(db: str, client: Any, actor: Any, customer_id: int) -> None:
    p = actor.principal
    before = full_snapshot(db)
    r = client.post("/api/v1/activities", headers=actor.headers,
                    json={"kind": "task", "subject": "New", "customer_id": customer_id})
    if can(p, "activities", "create"):
        assert r.status_code == 201, r.text
        assert (r.json()["owner_id"], r.json()["team_id"]) == (actor.id, actor.team_id)
    else:
        assert_problem(r, 403)
        assert full_snapshot(db) == before
        assert audit_actions(db)[-1][:2] == ("denied", "activities")


def _check_list(client: Any, actor: Any, owners: dict[str, Any], records: dict[str, int]
                ) -> None:
    p = actor.principal
    r = client.get("/api/v1/activities", headers=actor.headers)
    if not can(p, "activities", "read"):
        assert_problem(r, 403)
        return
    assert r.status_code == 200, r.text
    assert {a["id"] for a in r.json()["items"]} == {
        aid for rel, aid in records.items()
        if _in_scope(p, "read", owners[rel].id, owners[rel].team_id)}


@pytest.mark.parametrize("role", ROLES)
def test_matrix(role, db, client, world):
    """One world per role; every action on every relation (deletes last, as they remove the
    records). Allowed changes bump the version, so each request sends the current one."""
    actor, owners, customers, records = world(role)
    p = actor.principal
    _check_list(client, actor, owners, records)
    for action in RECORD_ACTIONS:
        for relation in RELATIONS:
            owner, aid = owners[relation], records[relation]
            want = expected_status(p, action, owner.id, owner.team_id)
            before = full_snapshot(db)
            r = _request(client, actor, action, aid, _version(db, aid))
            assert r.status_code == want, (role, action, relation, r.status_code, r.text)
            if want >= 400:
                assert_problem(r, want)
                assert full_snapshot(db) == before, (role, action, relation)
                if want == 403:
                    assert audit_actions(db)[-1] == ("denied", "activities", str(aid))
            elif action == "delete":
                after = full_snapshot(db)
                assert aid not in {a["id"] for a in after["activities"]}
                assert len(after["interactions"]) == len(before["interactions"]) - 1
            elif action in ("update", "complete"):
                assert _version(db, aid) > 1
    _check_create(db, client, actor, customers["own"])


def test_matrix_covers_every_outcome():
    """The generated matrix is not vacuous: allowed, 403 and 404 cases all occur."""
    outcomes = set()
    for role in ROLES:
        p = Principal(user_id=1, email="x", role=role, team_id=1)
        for action in RECORD_ACTIONS:
            for owner_id, team_id in ((1, 1), (2, 1), (3, 2)):
                outcomes.add(expected_status(p, action, owner_id, team_id))
    assert {200, 204, 403, 404} <= outcomes


def test_token_scope_limits_below_role(db, client, make_actor):
    """An admin token with only `activities:read` reads but cannot write."""
    actor = make_actor("admin", team="alpha", scopes=["activities:read", "customers:read"])
    cid = seed_customer(db, actor.id, actor.team_id)
    aid = seed_activity(db, actor, cid)
    assert client.get(f"/api/v1/activities/{aid}", headers=actor.headers).status_code == 200
    before = full_snapshot(db)
    for action in ("update", "complete", "delete"):
        assert_problem(_request(client, actor, action, aid), 403)
    r = client.post("/api/v1/activities", headers=actor.headers,
                    json={"kind": "task", "subject": "x", "customer_id": cid})
    assert_problem(r, 403)
    assert full_snapshot(db) == before


def test_identity_parameters_change_nothing(db, client, make_actor):
    """`owner_id` in a body is refused; as a list filter it never widens the scope."""
    me = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    cid = seed_customer(db, me.id, me.team_id)
    theirs = seed_activity(db, outsider, seed_customer(db, outsider.id, outsider.team_id))
    r = client.post("/api/v1/activities", headers=me.headers,
                    json={"kind": "task", "subject": "x", "customer_id": cid,
                          "owner_id": outsider.id})
    assert_problem(r, 422, "owner_id")
    r = client.get("/api/v1/activities", params={"owner_id": outsider.id}, headers=me.headers)
    assert r.status_code == 200 and r.json()["items"] == []
    r = client.get("/api/v1/activities", params={"id": theirs, "as_user": outsider.id},
                   headers=me.headers)
    assert_problem(r, 422, "as_user")
