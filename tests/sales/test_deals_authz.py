"""The deals authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team) the expected HTTP
outcome comes from the policy functions for the `deals` resource, never written by hand: not
readable → 404, readable but not allowed → 403 (audited as denied), allowed → 2xx. Every refused
request leaves the sales tables, the outbox and the audit chain's data rows unchanged.

The generic half (expected status, the own/team/other world, the refusal check) is
`tests.access.matrix`; this module declares only what is the deals' own.
"""

from __future__ import annotations

import pytest

from accord.access.policy import ROLES
from accord.core import db as dbmod
from accord.sales import deals
from accord.sales.deals_schemas import DealCreate
from tests.access.helpers import as_admin, assert_problem
from tests.access.matrix import Matrix, build_world
from tests.sales.test_deals_fixtures import new_business, snapshot

RECORD_ACTIONS = ("read", "update", "move", "delete", "assign")
ACTIONS = (*RECORD_ACTIONS, "create", "list", "board")
# Moving a deal to another stage is an update of the deal: it needs the update right. A refusal
# must leave the sales tables unchanged (`test_deals_fixtures.SALES_TABLES`).
MATRIX = Matrix("deals", RECORD_ACTIONS, snapshot, rights={"move": "update"})


def seed_deal(url: str, owner, name: str, nb: dict) -> int:
    with dbmod.session_scope(url) as s:
        return deals.create_deal(s, as_admin(owner.id, owner.team_id), DealCreate(
            name=name, pipeline_id=nb["id"], currency="EUR", amount="10.00")).id


def _request(client, actor, action: str, deal_id: int, nb: dict):
    h = actor.headers
    url = f"/api/v1/deals/{deal_id}"
    hm = {**h, "If-Match": '"1"'}
    if action == "read":
        return client.get(url, headers=h)
    if action == "update":
        return client.patch(url, json={"name": "Changed"}, headers=hm)
    if action == "move":
        return client.post(f"{url}/move", json={"stage_id": nb["stages"]["Proposal"]}, headers=hm)
    if action == "delete":
        return client.delete(url, headers=hm)
    if action == "assign":
        return client.post(f"{url}/assign", json={"owner_id": actor.id}, headers=hm)
    raise AssertionError(action)


def _board_ids(body: dict) -> set[int]:
    """The cards on the board; the first column's count must agree with them (the board's
    totals sum only the deals the reader may see)."""
    ids = {c["id"] for col in body["columns"] for c in col["cards"]}
    assert body["columns"][0]["totals"]["count"] == len(ids)
    return ids


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_matrix(role, action, db, client, make_actor):
    nb = new_business(db)
    world = build_world(make_actor, role, lambda o, rel: seed_deal(db, o, f"D-{rel}", nb))
    actor = world.actor
    if action == "create":
        MATRIX.check_create(db, actor, lambda: client.post(
            "/api/v1/deals", headers=actor.headers,
            json={"name": "New", "pipeline_id": nb["id"], "currency": "EUR"}))
    elif action == "list":
        r = client.get("/api/v1/deals", headers=actor.headers)
        MATRIX.check_listing(world, r, lambda body: {d["id"] for d in body["items"]})
    elif action == "board":
        r = client.get(f"/api/v1/pipelines/{nb['id']}/board", headers=actor.headers)
        MATRIX.check_listing(world, r, _board_ids)
    else:
        MATRIX.check_record_action(db, world, action,
                                   lambda did: _request(client, actor, action, did, nb))


def test_matrix_covers_every_outcome():
    """The generated matrix is not vacuous: it contains allowed, 403 and 404 cases."""
    assert {200, 204, 403, 404} <= MATRIX.outcomes()


def test_token_scope_limits_below_role(db, client, make_actor):
    """A token with only `deals:read` reads but cannot move, change or create deals."""
    actor = make_actor("admin", team="alpha", scopes=["deals:read"])
    nb = new_business(db)
    with dbmod.session_scope(db) as s:
        did = deals.create_deal(s, actor.principal, DealCreate(
            name="Mine", pipeline_id=nb["id"], currency="EUR")).id
    assert client.get(f"/api/v1/deals/{did}", headers=actor.headers).status_code == 200
    before = snapshot(db)
    for action in ("update", "move", "delete"):
        assert_problem(_request(client, actor, action, did, nb), 403)
    assert_problem(client.post("/api/v1/deals", headers=actor.headers, json={
        "name": "X", "pipeline_id": nb["id"], "currency": "EUR"}), 403)
    assert snapshot(db) == before


def test_filters_stay_inside_scope(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    nb = new_business(db)
    with dbmod.session_scope(db) as s:
        theirs = deals.create_deal(s, outsider.principal, DealCreate(
            name="Theirs", pipeline_id=nb["id"], currency="EUR")).id
    for params in ({"owner_id": outsider.id}, {"team_id": outsider.team_id}, {"id": theirs}):
        r = client.get("/api/v1/deals", params=params, headers=actor.headers)
        assert r.status_code == 200 and r.json()["items"] == [], params
        r = client.get(f"/api/v1/pipelines/{nb['id']}/board", headers=actor.headers,
                       params={k: v for k, v in params.items() if k != "id"})
        assert all(col["cards"] == [] and col["totals"]["count"] == 0
                   for col in r.json()["columns"])
