"""The authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team) the expected HTTP
outcome is derived from the policy functions (`scope_for`, `record_in_scope`), never written by
hand: not readable → 404 (no existence oracle), readable but the action is not allowed → 403,
allowed → 2xx. Every refused request must leave the data, the outbox and the audit chain's data
rows unchanged; a 403 is itself audited as a `denied` entry.
"""

from __future__ import annotations

import pytest

from accord.access.policy import ROLES, Principal, can, record_in_scope, scope_for
from tests.access.helpers import assert_problem, audit_actions, seed_customer, snapshot

RECORD_ACTIONS = ("read", "update", "delete", "assign")
ACTIONS = (*RECORD_ACTIONS, "create", "list")
RELATIONS = ("own", "team", "other")


def _in_scope(p: Principal, action: str, owner_id: int, team_id: int | None) -> bool:
    return record_in_scope(p, scope_for(p, "customers", action), owner_id, team_id)


def expected_status(p: Principal, action: str, owner_id: int, team_id: int | None) -> int:
    """The policy's answer for one request on one record."""
    if not _in_scope(p, "read", owner_id, team_id):
        return 404
    if action == "read":
        return 200
    if action == "assign":
        # Reassigning is an update that needs the update right over every record in scope
        # (team or all): an `own`-scoped role could otherwise give records away and back.
        allowed = scope_for(p, "customers", "update") in ("team", "all") and _in_scope(
            p, "update", owner_id, team_id
        )
        return 200 if allowed else 403
    return (
        {"update": 200, "delete": 204}[action] if _in_scope(p, action, owner_id, team_id) else 403
    )


@pytest.fixture
def world(db, make_actor):
    """An actor in team alpha, a teammate in alpha and an outsider in beta, one record each."""

    def build(role: str):
        actor = make_actor(role, team="alpha")
        mate = make_actor("sales", team="alpha")
        outsider = make_actor("sales", team="beta")
        owners = {"own": actor, "team": mate, "other": outsider}
        records = {
            rel: seed_customer(db, o.id, o.team_id, first_name=f"R-{rel}")
            for rel, o in owners.items()
        }
        return actor, owners, records

    return build


def _request(client, actor, action: str, customer_id: int):
    h = actor.headers
    url = f"/api/v1/customers/{customer_id}"
    if action == "read":
        return client.get(url, headers=h)
    if action == "update":
        return client.patch(url, json={"last_name": "Changed"}, headers={**h, "If-Match": '"1"'})
    if action == "delete":
        return client.delete(url, headers={**h, "If-Match": '"1"'})
    if action == "assign":
        return client.post(
            f"{url}/assign", json={"owner_id": actor.id}, headers={**h, "If-Match": '"1"'}
        )
    raise AssertionError(action)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_matrix(role, action, db, client, world):
    actor, owners, records = world(role)
    p = actor.principal
    if action == "create":
        before = snapshot(db)
        r = client.post("/api/v1/customers", json={"first_name": "New"}, headers=actor.headers)
        if can(p, "customers", "create"):
            assert r.status_code == 201, r.text
            assert r.json()["owner_id"] == actor.id and r.json()["team_id"] == actor.team_id
        else:
            assert_problem(r, 403)
            assert snapshot(db) == before
            assert audit_actions(db)[-1][:2] == ("denied", "customers")
        return
    if action == "list":
        r = client.get("/api/v1/customers", headers=actor.headers)
        if not can(p, "customers", "read"):
            assert_problem(r, 403)
            return
        assert r.status_code == 200, r.text
        ids = {c["id"] for c in r.json()["items"]}
        assert ids == {
            cid
            for rel, cid in records.items()
            if _in_scope(p, "read", owners[rel].id, owners[rel].team_id)
        }
        return
    for relation in RELATIONS:
        owner, cid = owners[relation], records[relation]
        want = expected_status(p, action, owner.id, owner.team_id)
        before = snapshot(db)
        r = _request(client, actor, action, cid)
        assert r.status_code == want, (role, action, relation, r.status_code, r.text)
        if want >= 400:
            assert_problem(r, want)
            assert snapshot(db) == before, (role, action, relation)
            if want == 403:
                assert audit_actions(db)[-1] == ("denied", "customers", str(cid))


def test_matrix_covers_every_outcome():
    """The generated matrix is not vacuous: it contains allowed, 403 and 404 cases."""
    outcomes = set()
    for role in ROLES:
        p = Principal(user_id=1, email="x", role=role, team_id=1)
        for action in RECORD_ACTIONS:
            for owner_id, team_id in ((1, 1), (2, 1), (3, 2)):
                outcomes.add(expected_status(p, action, owner_id, team_id))
    assert {200, 204, 403, 404} <= outcomes


@pytest.mark.parametrize("action", ["read", "update", "delete", "create", "list"])
def test_token_scope_limits_below_role(action, db, client, make_actor):
    """An admin's token with only `customers:read` can read but not write."""
    actor = make_actor("admin", team="alpha", scopes=["customers:read"])
    cid = seed_customer(db, actor.id, actor.team_id)
    before = snapshot(db)
    if action == "read":
        assert client.get(f"/api/v1/customers/{cid}", headers=actor.headers).status_code == 200
        return
    if action == "list":
        assert client.get("/api/v1/customers", headers=actor.headers).status_code == 200
        return
    if action == "create":
        r = client.post("/api/v1/customers", json={"first_name": "X"}, headers=actor.headers)
    else:
        r = _request(client, actor, action, cid)
    assert_problem(r, 403)
    assert snapshot(db) == before


def test_token_without_customer_scope(db, client, make_actor):
    actor = make_actor("admin", team="alpha", scopes=["teams:read"])
    cid = seed_customer(db, actor.id, actor.team_id)
    assert_problem(client.get("/api/v1/customers", headers=actor.headers), 403)
    assert_problem(client.get(f"/api/v1/customers/{cid}", headers=actor.headers), 404)
    assert client.get("/api/v1/teams", headers=actor.headers).status_code == 200


def test_list_filters_stay_inside_scope(db, client, make_actor):
    """Filtering by another team's owner or team id finds nothing outside the caller's scope."""
    actor = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    mine = seed_customer(db, actor.id, actor.team_id)
    theirs = seed_customer(db, outsider.id, outsider.team_id)
    for params in (
        {"owner_id": outsider.id},
        {"team_id": outsider.team_id},
        {"id": theirs},
        {"q": str(theirs)},
        {"id__in": f"{mine},{theirs}"},
    ):
        r = client.get("/api/v1/customers", params=params, headers=actor.headers)
        assert r.status_code == 200, r.text
        assert theirs not in {c["id"] for c in r.json()["items"]}, params


def test_assign_stays_within_the_managers_team(db, client, make_actor):
    manager = make_actor("manager", team="alpha")
    outsider = make_actor("sales", team="beta")
    cid = seed_customer(db, manager.id, manager.team_id)
    h = {**manager.headers, "If-Match": '"1"'}
    before = snapshot(db)
    url = f"/api/v1/customers/{cid}/assign"
    assert_problem(client.post(url, json={"team_id": outsider.team_id}, headers=h), 403, "team_id")
    assert_problem(client.post(url, json={"owner_id": 999999}, headers=h), 422, "owner_id")
    assert_problem(client.post(url, json={"team_id": 999999}, headers=h), 422, "team_id")
    assert_problem(client.post(url, json={"owner_id": 0}, headers=h), 422, "owner_id")
    assert snapshot(db) == before
    mate = make_actor("sales", team="alpha")
    r = client.post(url, json={"owner_id": mate.id}, headers=h)
    assert r.status_code == 200 and r.json()["owner_id"] == mate.id and r.json()["version"] == 2


def test_denial_entry_says_what_was_refused(db, client, make_actor):
    from sqlalchemy import select

    from accord.core.db import session_scope
    from accord.models import AuditEntry

    analyst = make_actor("analyst", team="alpha")
    cid = seed_customer(db, analyst.id, analyst.team_id)
    r = client.patch(
        f"/api/v1/customers/{cid}",
        json={"first_name": "No"},
        headers={**analyst.headers, "If-Match": '"1"'},
    )
    assert_problem(r, 403)
    with session_scope(db) as s:
        e = s.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
        assert (e.action, e.resource, e.record_id, e.actor_id) == (
            "denied",
            "customers",
            str(cid),
            analyst.id,
        )
        assert e.detail["method"] == "PATCH"
        assert e.detail["path"] == f"/api/v1/customers/{cid}"
        assert e.detail["reason"]
    from accord.access import audit

    with session_scope(db, write=False) as s:
        assert audit.verify(s).ok
