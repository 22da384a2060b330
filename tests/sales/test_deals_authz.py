"""The deals authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team) the expected HTTP
outcome comes from the policy functions for the `deals` resource, never written by hand: not
readable → 404, readable but not allowed → 403 (audited as denied), allowed → 2xx. Every refused
request leaves the sales tables, the outbox and the audit chain's data rows unchanged.
"""

from __future__ import annotations

import pytest

from accord.access.policy import ROLES, Principal, can, record_in_scope, scope_for
from accord.core import db as dbmod
from accord.sales import deals
from accord.sales.deals_schemas import DealCreate
from tests.access.helpers import as_admin, assert_problem, audit_actions
from tests.sales.test_deals_fixtures import new_business, snapshot

RECORD_ACTIONS = ("read", "update", "move", "delete", "assign")
ACTIONS = (*RECORD_ACTIONS, "create", "list", "board")
RELATIONS = ("own", "team", "other")


def _in_scope(p: Principal, action: str, owner_id: int, team_id: int | None) -> bool:
    return record_in_scope(p, scope_for(p, "deals", action), owner_id, team_id)


def expected_status(p: Principal, action: str, owner_id: int, team_id: int | None) -> int:
    if not _in_scope(p, "read", owner_id, team_id):
        return 404
    if action == "read":
        return 200
    if action == "assign":
        allowed = scope_for(p, "deals", "update") in ("team", "all") and _in_scope(
            p, "update", owner_id, team_id)
        return 200 if allowed else 403
    needed = "update" if action == "move" else action
    if not _in_scope(p, needed, owner_id, team_id):
        return 403
    return 204 if action == "delete" else 200


@pytest.fixture
def world(db, make_actor):
    def build(role: str):
        actor = make_actor(role, team="alpha")
        mate = make_actor("sales", team="alpha")
        outsider = make_actor("sales", team="beta")
        owners = {"own": actor, "team": mate, "other": outsider}
        nb = new_business(db)
        records = {}
        with dbmod.session_scope(db) as s:
            for rel, o in owners.items():
                records[rel] = deals.create_deal(s, as_admin(o.id, o.team_id), DealCreate(
                    name=f"D-{rel}", pipeline_id=nb["id"], currency="EUR", amount="10.00")).id
        return actor, owners, records, nb

    return build


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


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_matrix(role, action, db, client, world):
    actor, owners, records, nb = world(role)
    p = actor.principal
    visible = {did for rel, did in records.items()
               if _in_scope(p, "read", owners[rel].id, owners[rel].team_id)}
    if action == "create":
        before = snapshot(db)
        r = client.post("/api/v1/deals", headers=actor.headers, json={
            "name": "New", "pipeline_id": nb["id"], "currency": "EUR"})
        if can(p, "deals", "create"):
            assert r.status_code == 201, r.text
            assert (r.json()["owner_id"], r.json()["team_id"]) == (actor.id, actor.team_id)
        else:
            assert_problem(r, 403)
            assert snapshot(db) == before
            assert audit_actions(db)[-1][:2] == ("denied", "deals")
        return
    if action in ("list", "board"):
        url = ("/api/v1/deals" if action == "list"
               else f"/api/v1/pipelines/{nb['id']}/board")
        r = client.get(url, headers=actor.headers)
        if not can(p, "deals", "read"):
            assert_problem(r, 403)
            return
        assert r.status_code == 200, r.text
        if action == "list":
            ids = {d["id"] for d in r.json()["items"]}
        else:
            ids = {c["id"] for col in r.json()["columns"] for c in col["cards"]}
            assert r.json()["columns"][0]["totals"]["count"] == len(visible)
        assert ids == visible
        return
    for relation in RELATIONS:
        owner, did = owners[relation], records[relation]
        want = expected_status(p, action, owner.id, owner.team_id)
        before = snapshot(db)
        r = _request(client, actor, action, did, nb)
        assert r.status_code == want, (role, action, relation, r.status_code, r.text)
        if want >= 400:
            assert_problem(r, want)
            assert snapshot(db) == before, (role, action, relation)
            if want == 403:
                assert audit_actions(db)[-1] == ("denied", "deals", str(did))


def test_matrix_covers_every_outcome():
    """The generated matrix is not vacuous: it contains allowed, 403 and 404 cases."""
    outcomes = set()
    for role in ROLES:
        p = Principal(user_id=1, email="x", role=role, team_id=1)
        for action in RECORD_ACTIONS:
            for owner_id, team_id in ((1, 1), (2, 1), (3, 2)):
                outcomes.add(expected_status(p, action, owner_id, team_id))
    assert {200, 204, 403, 404} <= outcomes


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
