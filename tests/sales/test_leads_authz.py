"""The leads authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team) the expected outcome
is derived from the policy functions (`scope_for`, `record_in_scope`): not readable → 404 (no
existence oracle), readable but the action is not allowed → 403, allowed → 2xx. Every refused
request leaves the leads, their engagements, the outbox and the audit chain's data rows
unchanged; a 403 is itself audited as `denied`.

The generic half (expected status, the own/team/other world, the refusal check) is
`tests.access.matrix`; this module declares only what is the leads' own.
"""

from __future__ import annotations

from functools import partial

import pytest

from accord.access.policy import ROLES
from accord.core import db as dbmod
from accord.sales import leads
from accord.sales.leads_schemas import LeadCreate
from tests.access.helpers import as_admin, assert_problem, snapshot
from tests.access.matrix import Matrix, build_world

RECORD_ACTIONS = ("read", "update", "status", "delete", "assign")
ACTIONS = (*RECORD_ACTIONS, "create", "list")
TABLES = ("leads", "lead_engagements", "consent_records", "outbox_events", "jobs",
          "idempotency_keys")
# A status change is an update of the lead: it needs the update right.
MATRIX = Matrix("leads", RECORD_ACTIONS, partial(snapshot, tables=TABLES),
                rights={"status": "update"})


def seed_lead(url: str, owner_id: int, team_id: int | None, name: str) -> int:
    with dbmod.session_scope(url) as s:
        return leads.create_lead(s, as_admin(owner_id, team_id),
                                 LeadCreate(last_name=name, email=f"{name}@example.com")).id


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
def test_matrix(role, action, db, client, make_actor):
    world = build_world(make_actor, role,
                        lambda o, rel: seed_lead(db, o.id, o.team_id, f"r-{rel}"))
    actor = world.actor
    if action == "create":
        MATRIX.check_create(db, actor, lambda: client.post(
            "/api/v1/leads", json={"last_name": "New"}, headers=actor.headers))
    elif action == "list":
        r = client.get("/api/v1/leads", headers=actor.headers)
        MATRIX.check_listing(world, r, lambda body: {i["id"] for i in body["items"]})
    else:
        MATRIX.check_record_action(db, world, action,
                                   lambda lid: _request(client, actor, action, lid))


def test_matrix_covers_every_outcome():
    assert {200, 204, 403, 404} <= MATRIX.outcomes()


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
    before = MATRIX.snapshot(db)
    assert_problem(_request(client, actor, "update", lid), 403)
    assert_problem(client.post("/api/v1/leads", json={"last_name": "X"}, headers=actor.headers),
                   403)
    assert MATRIX.snapshot(db) == before
