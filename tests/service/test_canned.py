"""Canned replies: personalisation with the whitelisted placeholders, the sandbox (internals,
loops, calls refused with a 422 naming `body`; unknown placeholders empty), CRUD rights and
optimistic versions over the API, and rendering for a ticket."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.core.errors import ValidationProblem
from accord.models import User
from accord.models.service import Ticket
from accord.service import canned, tickets
from accord.service.canned import CannedReplyCreate
from tests.access.helpers import assert_problem
from tests.web.seed import make_user

API = "/api/v1/canned-replies"


def values() -> dict[str, SimpleNamespace]:
    return {
        "customer": SimpleNamespace(first_name="Ann", last_name="Archer",
                                    display_name="Ann Archer"),
        "ticket": SimpleNamespace(reference="T-7", subject="Kettle", due="24 Nov 2026 14:00 UTC"),
        "agent": SimpleNamespace(name="Theo Agent", first_name="Theo"),
    }


def test_placeholders_filters_and_if_render():
    body = ("Hi {{ customer.first_name }} {{ customer.last_name|upper }},\n"
            "re {{ ticket.reference }} ({{ ticket.subject }}), due {{ ticket.due }}.\n"
            "{% if customer.first_name == 'Ann' %}Welcome back!{% else %}Hello!{% endif %}\n"
            "{{ agent.name }} / {{ agent.first_name }} / {{ customer.display_name }}")
    assert canned.render_text(body, values()) == (
        "Hi Ann ARCHER,\nre T-7 (Kettle), due 24 Nov 2026 14:00 UTC.\nWelcome back!\n"
        "Theo Agent / Theo / Ann Archer")


def test_unknown_placeholders_render_empty():
    body = "[{{ nope }}][{{ customer.middle_name }}][{{ ticket.customer.secret }}][{{ x.y.z }}]"
    assert canned.render_text(body, values()) == "[][][][]"
    assert canned.render_text("{{ missing|default('there') }}", values()) == "there"


@pytest.mark.parametrize("body, words", [
    ("{{ ''.__class__ }}", "'__class__' is not allowed"),
    ("{{ customer.__dict__ }}", "'__dict__' is not allowed"),
    ("{{ customer.first_name.__class__.__mro__ }}", "is not allowed"),
    ("{{ customer.first_name.upper() }}", "call is not allowed"),
    ("{% for i in range(10) %}x{% endfor %}", "for is not allowed"),
    ("{{ customer|attr('__class__') }}", "filter 'attr' is not allowed"),
    ("{{ customer['first_name'] }}", "getitem is not allowed"),
    ("{% include 'base.html' %}", "include is not allowed"),
    ("{% set x = 1 %}", "assign is not allowed"),
    ("{{ lipsum }}{{ cycler }}{{ 'a' * 1000000 }}", "mul is not allowed"),
    ("{{ customer.first_name ", "template error on line 1"),
])
def test_sandbox_refuses_internals_and_statements(body, words):
    with pytest.raises(ValidationProblem) as caught:
        canned.render_text(body, values())
    assert caught.value.field == "body" and words in caught.value.detail


def test_the_environment_itself_is_a_sandbox():
    """Beyond the syntax check: attribute access on anything but the placeholder objects is
    refused (renders empty), and no globals such as `range` exist."""
    assert canned.ENV.from_string("{{ x.__class__ }}|{{ y.upper }}|{{ range }}").render(
        x="", y="abc") == "||"


def _ticket(s, name: str = "Ann Archer") -> Ticket:
    return tickets.create_ticket(s, tickets.system_principal("email"), subject="Kettle",
                                 channel="email", body_text="It broke.",
                                 requester_email="ann@example.com", requester_name=name)


def test_render_uses_the_tickets_customer_and_the_agent(session):
    t = _ticket(session)
    t.due_at = datetime(2026, 11, 24, 14, 5, tzinfo=UTC)
    agent = session.get(User, make_user(session, "support", "theo@example.com",
                                        "Theo Agent").user_id)
    reply = canned.create_reply(session, SYSTEM, CannedReplyCreate(
        title="Hello", body="Dear {{ customer.first_name }}, {{ ticket.reference }} is due "
        "{{ ticket.due }}. {{ agent.first_name }}"))
    assert canned.render(session, reply, t, agent) == (
        f"Dear Ann, T-{t.id} is due 24 Nov 2026 14:05 UTC. Theo")
    assert canned.render(session, reply, t, None).endswith(". ")  # no agent: empty


def test_crud_rights_versions_and_rendering_over_the_api(db, client, make_actor):
    manager, support = make_actor("manager"), make_actor("support")
    body = {"title": "Apology", "body": "Sorry {{ customer.first_name }}!", "category": "general"}
    assert_problem(client.post(API, json=body, headers=support.headers), 403)
    r = client.post(API, json=body, headers=manager.headers)
    assert r.status_code == 201 and r.headers["ETag"] == '"1"'
    rid = r.json()["id"]
    bad = client.post(API, json={**body, "body": "{{ ''.__class__ }}"}, headers=manager.headers)
    assert_problem(bad, 422, "body")
    assert_problem(client.post(API, json={**body, "team_id": 999}, headers=manager.headers),
                   422, "team_id")
    assert_problem(client.post(API, json={**body, "created_by": 1}, headers=manager.headers),
                   422)
    listed = client.get(API, headers=support.headers)  # agents read them
    assert [x["title"] for x in listed.json()] == ["Apology"]
    assert_problem(client.patch(f"{API}/{rid}", json={"title": "New"}, headers=manager.headers),
                   428, "If-Match")
    assert_problem(client.patch(f"{API}/{rid}", json={"body": "{% for x in y %}{% endfor %}"},
                                headers={**manager.headers, "If-Match": '"1"'}), 422, "body")
    r = client.patch(f"{API}/{rid}", json={"title": "Sorry!"},
                     headers={**manager.headers, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["title"] == "Sorry!" and r.headers["ETag"] == '"2"'
    assert_problem(client.patch(f"{API}/{rid}", json={"title": "Stale"},
                                headers={**manager.headers, "If-Match": '"1"'}), 412)

    with dbmod.session_scope(db) as s:
        tid = _ticket(s).id
    rendered = client.post(f"/api/v1/tickets/{tid}/canned-replies/{rid}/render",
                           headers=support.headers)
    assert rendered.status_code == 200, rendered.text
    assert rendered.json() == {"reply_id": rid, "ticket_id": tid, "text": "Sorry Ann!"}
    assert_problem(client.post(f"/api/v1/tickets/999999/canned-replies/{rid}/render",
                               headers=support.headers), 404)
    assert_problem(client.delete(f"{API}/{rid}", headers={**support.headers, "If-Match": '"2"'}),
                   403)
    assert client.delete(f"{API}/{rid}", headers={**manager.headers,
                                                 "If-Match": '"2"'}).status_code == 204
    assert_problem(client.get(f"{API}/{rid}", headers=support.headers), 404)
