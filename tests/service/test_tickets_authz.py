"""The tickets authorisation matrix, generated from `accord.access.policy.GRANTS`.

For every role × action × record relation (own / same team / other team; a ticket's owner is
its assignee) the expected outcome comes from the policy functions through
`tests.access.matrix`: not readable → 404, readable but not allowed → 403, allowed → 2xx. Every
refused request leaves the tickets, their messages, events, attachments and linked orders, the
timeline, the outbox and the audit chain's data rows unchanged; a 403 is audited as `denied`.
"""

from __future__ import annotations

from functools import partial

import pytest

from accord.access.policy import ROLES, can
from accord.core import db as dbmod
from accord.service import tickets
from tests.access.helpers import assert_problem, snapshot
from tests.access.matrix import Matrix, build_world
from tests.service.tickets_helpers import API, files_dir  # noqa: F401 - fixture

RECORD_ACTIONS = ("read", "update", "reply", "note", "assign", "messages", "attachments",
                  "download")
# Actions needing the same right share one world (building it is most of a test's time).
GROUPS = {"reads": ("read", "messages", "attachments", "download"), "update": ("update",),
          "replies": ("reply", "note"), "assign": ("assign",)}
assert sorted(a for g in GROUPS.values() for a in g) == sorted(RECORD_ACTIONS)
ACTIONS = (*GROUPS, "create", "list")
TABLES = ("tickets", "ticket_messages", "ticket_events", "ticket_attachments", "ticket_orders",
          "interactions", "customers", "outbox_events", "jobs", "idempotency_keys")
MATRIX = Matrix("tickets", RECORD_ACTIONS, partial(snapshot, tables=TABLES),
                rights={"reply": "update", "note": "update", "messages": "read",
                        "attachments": "read", "download": "read"})
SUCCESS = {"reply": 201, "note": 201}


def seed_ticket(url: str, owner, relation: str) -> int:
    """A customer's ticket assigned to `owner` in `owner`'s team, with one attachment."""
    with dbmod.session_scope(url) as s:
        return tickets.create_ticket(
            s, tickets.system_principal("email"), subject=f"r-{relation}", channel="email",
            body_text="Help", requester_email=f"{relation}@example.com",
            assignee_id=owner.id, team_id=owner.team_id,
            attachments=[tickets.NewAttachment("a.txt", "text/plain", b"hi")]).id


def _attachment_id(url: str, ticket_id: int) -> int:
    from sqlalchemy import select

    from accord.models.service import TicketAttachment

    with dbmod.session_scope(url) as s:
        return s.scalars(select(TicketAttachment.id)
                         .where(TicketAttachment.ticket_id == ticket_id)).one()


def _request(db: str, client, actor, action: str, tid: int):
    h = {**actor.headers, "If-Match": "*"}
    url = f"{API}/{tid}"
    if action == "read":
        return client.get(url, headers=actor.headers)
    if action == "update":
        return client.patch(url, json={"priority": "high"}, headers=h)
    if action == "reply":
        return client.post(f"{url}/messages", json={"body_text": "Hello"}, headers=actor.headers)
    if action == "note":
        return client.post(f"{url}/messages", json={"body_text": "psst", "internal": True},
                           headers=actor.headers)
    if action == "assign":
        return client.post(f"{url}/assign", json={"assignee_id": actor.id}, headers=h)
    if action == "messages":
        return client.get(f"{url}/messages", headers=actor.headers)
    if action == "attachments":
        return client.get(f"{url}/attachments", headers=actor.headers)
    if action == "download":
        return client.get(f"/api/v1/ticket-attachments/{_attachment_id(db, tid)}",
                          headers=actor.headers)
    raise AssertionError(action)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_matrix(role, action, db, client, make_actor, files_dir):  # noqa: F811
    world = build_world(make_actor, role, lambda o, rel: seed_ticket(db, o, rel))
    actor = world.actor
    if action == "create":
        before = MATRIX.snapshot(db)
        r = client.post(API, json={"subject": "New", "requester_email": "new@example.com"},
                        headers=actor.headers)
        if can(actor.principal, "tickets", "create"):
            assert r.status_code == 201, r.text
            assert r.json()["created_by"] == actor.id
        else:
            MATRIX.assert_refused(db, r, 403, before, None)
    elif action == "list":
        r = client.get(API, headers=actor.headers)
        MATRIX.check_listing(world, r, lambda body: {i["id"] for i in body["items"]})
    else:
        for name in GROUPS[action]:
            for relation in ("own", "team", "other"):
                owner, tid = world.owners[relation], world.records[relation]
                want = MATRIX.expected_status(actor.principal, name, owner.id, owner.team_id)
                before = MATRIX.snapshot(db)
                r = _request(db, client, actor, name, tid)
                expected = SUCCESS.get(name, want) if want == 200 else want
                assert r.status_code == expected, (role, name, relation, r.status_code, r.text)
                if want >= 400:
                    MATRIX.assert_refused(db, r, want, before, tid, (role, name, relation))


def test_matrix_covers_every_outcome():
    assert {200, 403, 404} <= MATRIX.outcomes()


def test_identity_parameters_do_not_widen_the_scope(db, client, make_actor):
    actor = make_actor("manager", team="alpha")
    outsider = make_actor("support", team="beta")
    theirs = seed_ticket(db, outsider, "theirs")
    mine = seed_ticket(db, actor, "mine")
    for params in ({"assignee": outsider.id}, {"team": outsider.team_id}, {"id": theirs},
                   {"q": f"T-{theirs}"}, {"q": "theirs@example.com"},
                   {"id__in": f"{mine},{theirs}"}):
        r = client.get(API, params=params, headers=actor.headers)
        assert r.status_code == 200, r.text
        assert theirs not in {i["id"] for i in r.json()["items"]}, params
    assert_problem(client.get(API, params={"as_user": outsider.id}, headers=actor.headers), 422)


def test_team_manager_cannot_move_a_ticket_to_another_team(db, client, make_actor):
    manager = make_actor("manager", team="alpha")
    make_actor("support", team="beta")
    tid = seed_ticket(db, manager, "mine")
    before = MATRIX.snapshot(db)
    r = client.patch(f"{API}/{tid}", json={"team_id": 2},
                     headers={**manager.headers, "If-Match": "*"})
    MATRIX.assert_refused(db, r, 403, before, tid)


def test_token_scope_limits_below_role(db, client, make_actor):
    actor = make_actor("admin", team="alpha", scopes=["tickets:read"])
    tid = seed_ticket(db, actor, "scoped")
    assert client.get(f"{API}/{tid}", headers=actor.headers).status_code == 200
    before = MATRIX.snapshot(db)
    assert_problem(_request(db, client, actor, "reply", tid), 403)
    assert_problem(client.post(API, json={"subject": "x", "requester_email": "a@example.com"},
                               headers=actor.headers), 403)
    assert MATRIX.snapshot(db) == before
