"""The authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team) the expected HTTP
outcome is derived from the policy functions (`scope_for`, `record_in_scope`), never written by
hand: not readable → 404 (no existence oracle), readable but the action is not allowed → 403,
allowed → 2xx. Every refused request must leave the data, the outbox and the audit chain's data
rows unchanged; a 403 is itself audited as a `denied` entry.

The generic half (expected status, the own/team/other world, the refusal check) is
`tests.access.matrix`; this module declares only what is the customers' own.
"""

from __future__ import annotations

import pytest

from accord.access.policy import ROLES
from tests.access.helpers import assert_problem, seed_customer, snapshot
from tests.access.matrix import Matrix, build_world

RECORD_ACTIONS = ("read", "update", "delete", "assign")
ACTIONS = (*RECORD_ACTIONS, "create", "list")
# Every action needs its own right (`assign` follows the shared reassignment rule); a refusal
# must leave every customer data table unchanged (`helpers.DATA_TABLES`).
MATRIX = Matrix("customers", RECORD_ACTIONS, snapshot)


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
def test_matrix(role, action, db, client, make_actor):
    world = build_world(
        make_actor, role, lambda o, rel: seed_customer(db, o.id, o.team_id, first_name=f"R-{rel}")
    )
    actor = world.actor
    if action == "create":
        MATRIX.check_create(
            db,
            actor,
            lambda: client.post(
                "/api/v1/customers", json={"first_name": "New"}, headers=actor.headers
            ),
        )
    elif action == "list":
        r = client.get("/api/v1/customers", headers=actor.headers)
        MATRIX.check_listing(world, r, lambda body: {c["id"] for c in body["items"]})
    else:
        MATRIX.check_record_action(
            db, world, action, lambda cid: _request(client, actor, action, cid)
        )


def test_matrix_covers_every_outcome():
    """The generated matrix is not vacuous: it contains allowed, 403 and 404 cases."""
    assert {200, 204, 403, 404} <= MATRIX.outcomes()


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
