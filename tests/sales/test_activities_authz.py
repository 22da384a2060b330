"""The activities' authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team) the expected outcome
comes from the policy functions for the `activities` resource: not readable → 404, readable but
not allowed → 403 (audited as denied), allowed → 2xx. A refused request changes nothing: no
activity, timeline entry, lead, notification, job, event or audit data row.

The generic half (expected status, the own/team/other world, the refusal check) is
`tests.access.matrix`; this module declares only what is the activities' own.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from sqlalchemy import text

from accord.access.policy import ROLES
from accord.core import db as dbmod
from accord.sales import activities
from accord.sales.activities_schemas import ActivityCreate
from tests.access.helpers import DATA_TABLES, as_admin, assert_problem, seed_customer, snapshot
from tests.access.matrix import RELATIONS, Matrix, build_world

RECORD_ACTIONS = ("read", "update", "complete", "delete")  # in this order: deletes last
EXTRA_TABLES = ("activities", "interactions", "leads", "notifications")
# Completing an activity is an update of it: it needs the update right. Activities have no
# owner reassignment of their own, so no `assign` action.
MATRIX = Matrix("activities", RECORD_ACTIONS,
                partial(snapshot, tables=(*DATA_TABLES, *EXTRA_TABLES)),
                rights={"complete": "update"})
full_snapshot = MATRIX.snapshot


def seed_activity(url: str, owner: Any, customer_id: int) -> int:
    """An open call about the owner's customer (so it has a timeline entry), owned by them."""
    with dbmod.session_scope(url) as s:
        a = activities.create_activity(
            s, as_admin(owner.id, owner.team_id),
            ActivityCreate(kind="call", subject=f"Call {owner.id}", customer_id=customer_id))
        return a.id


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


@pytest.mark.parametrize("role", ROLES)
def test_matrix(role, db, client, make_actor):
    """One world per role (unlike the other matrices, which build one per role × action); every
    action on every relation, deletes last as they remove the records. Allowed changes bump the
    version, so each request sends the current one, and each success is checked for its effect."""
    customers: dict[str, int] = {}

    def seed(owner: Any, relation: str) -> int:
        customers[relation] = seed_customer(db, owner.id, owner.team_id)
        return seed_activity(db, owner, customers[relation])

    world = build_world(make_actor, role, seed)
    actor = world.actor
    r = client.get("/api/v1/activities", headers=actor.headers)
    MATRIX.check_listing(world, r, lambda body: {a["id"] for a in body["items"]})
    for action in RECORD_ACTIONS:
        for relation in RELATIONS:
            aid = world.records[relation]
            out = MATRIX.check_record(
                db, world, action, relation,
                lambda i, a=action: _request(client, actor, a, i, _version(db, i)))
            if out.expected >= 400:
                continue
            if action == "delete":
                after = full_snapshot(db)
                assert aid not in {a["id"] for a in after["activities"]}
                assert len(after["interactions"]) == len(out.before["interactions"]) - 1
            elif action in ("update", "complete"):
                assert _version(db, aid) > 1
    MATRIX.check_create(db, actor, lambda: client.post(
        "/api/v1/activities", headers=actor.headers,
        json={"kind": "task", "subject": "New", "customer_id": customers["own"]}))


def test_matrix_covers_every_outcome():
    """The generated matrix is not vacuous: allowed, 403 and 404 cases all occur."""
    assert {200, 204, 403, 404} <= MATRIX.outcomes()


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
