"""TRUST.md audit of the customer-service domain: gaps found after the first review, each with
the test that failed before its fix (items named per test)."""

from __future__ import annotations

import pytest

from accord.core import db as dbmod
from accord.models import Customer
from tests.service.tickets_helpers import (  # noqa: F401 - files_dir is a fixture
    API,
    customer_ticket,
    files_dir,
    load,
)


def test_matching_an_unreadable_customer_does_not_reveal_its_name(db, client, make_actor):
    """TRUST 1/15: a manager (customers read: own team) opening a ticket by e-mail is matched
    to the golden customer, but the ticket must not echo that customer's name back."""
    tid = customer_ticket(db, email="secret.person@example.com", name="Secret Person")
    cid = load(db, tid).customer_id
    with dbmod.session_scope(db) as s:
        customer = s.get(Customer, cid)
        assert customer is not None and customer.team_id is None
    manager = make_actor("manager", team="alpha")
    r = client.post(API, headers=manager.headers, json={
        "subject": "Called in", "requester_email": "secret.person@example.com"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert "Secret" not in (body.get("requester_name") or "")
    assert "Secret" not in r.text
    # an agent who may read every customer still gets the name filled in
    agent = make_actor("support", team="alpha")
    r = client.post(API, headers=agent.headers, json={
        "subject": "Called again", "requester_email": "secret.person@example.com"})
    assert r.status_code == 201, r.text
    assert r.json()["requester_name"] == "Secret Person"


def test_widget_retry_with_the_same_idempotency_key_stores_once(db, client):
    """Reliability (idempotency): a widget whose POST timed out retries with the same
    `Idempotency-Key`; the visitor gets the saved answer and one ticket, not two. The same key
    with another body is a 422; the preflight allows the header."""
    from accord.service import tickets
    from tests.access.helpers import assert_problem, count

    tickets.WIDGET_PER_CLIENT.clear()
    url = "/api/v1/widget/messages"
    hello = {"name": "Ida", "email": "ida@example.com", "message": "My parcel is late."}
    key = {"Idempotency-Key": "9b1f0c2e-retry"}
    first = client.post(url, json=hello, headers=key)
    assert first.status_code == 200, first.text
    again = client.post(url, json=hello, headers=key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert count(db, "tickets") == 1
    assert count(db, "ticket_messages") == 1
    other = client.post(url, json={**hello, "message": "Something else"}, headers=key)
    assert_problem(other, 422, "Idempotency-Key")
    assert count(db, "tickets") == 1
    # without a key every post is a message (a chat may say "hello?" twice)
    client.post(url, json=hello)
    assert count(db, "tickets") == 2
    pre = client.options(url, headers={"Origin": "https://shop.example",
                                       "Access-Control-Request-Method": "POST"})
    assert "idempotency-key" in pre.headers["access-control-allow-headers"].lower()
    tickets.WIDGET_PER_CLIENT.clear()


def test_a_read_only_token_cannot_change_the_agents_availability(db, client, make_actor, admin):
    """TRUST 6/7 (identity and rights only from the token): `PUT /service/agents/me/availability`
    acts on the caller's own profile, but a token limited to reading tickets may not take its
    agent out of (or into) routing; the refusal changes nothing and is audited."""
    from tests.access.helpers import assert_problem, audit_actions, snapshot

    agent = make_actor("support", team="Desk")
    made = client.post("/api/v1/service/agents", headers=admin.headers,
                       json={"user_id": agent.id})
    assert made.status_code == 201, made.text
    reader = make_actor("support", team="Desk", scopes=["tickets:read"])
    client.post("/api/v1/service/agents", headers=admin.headers, json={"user_id": reader.id})
    url = "/api/v1/service/agents/me/availability"
    before = snapshot(db, ("service_agents", "outbox_events"))
    assert_problem(client.put(url, headers=reader.headers, json={"available": False}), 403)
    assert snapshot(db, ("service_agents", "outbox_events")) == before
    assert audit_actions(db)[-1][0] == "denied"
    # the body never names whom: another user's id is refused, the caller's own row changes
    assert_problem(client.put(url, headers=agent.headers,
                              json={"available": False, "user_id": reader.id}), 422, "user_id")
    r = client.put(url, headers=agent.headers, json={"available": False})
    assert r.status_code == 200 and r.json()["user_id"] == agent.id
    assert r.json()["available"] is False


SERVICE_TABLES = ("business_calendars", "sla_policies", "sla_targets", "service_agents",
                  "routing_rules", "tickets", "ticket_events", "canned_replies", "kb_categories",
                  "kb_articles", "kb_article_versions", "survey_schedules", "survey_invitations",
                  "outbox_events")


def _seed_config(client, admin) -> dict[str, tuple[int, str]]:
    """One record of each non-ticket service resource: id and ETag."""
    out = {}
    for name, url, body in (
            ("article", "/api/v1/kb/articles",
             {"title": "Reset your password", "body": "Click 'Forgot password'.",
              "locale": "en", "visibility": "public"}),
            ("category", "/api/v1/kb/categories", {"name": "Accounts"}),
            ("canned", "/api/v1/canned-replies", {"title": "Hi", "body": "Hello!"}),
            ("schedule", "/api/v1/surveys/schedules",
             {"name": "Quarterly NPS", "kind": "nps", "every_days": 90, "audience": {}}),
            ("policy", "/api/v1/service/sla-policies", {"name": "Gold"})):
        r = client.post(url, headers=admin.headers, json=body)
        assert r.status_code == 201, (name, r.text)
        out[name] = (r.json()["id"], r.headers["ETag"])
    return out


# (role, method, path with {article}/{category}/... ids, body): each is hidden from the role in
# the pages and must be refused by the API too (TRUST 7), changing nothing (TRUST 2).
DENIED = (
    ("sales", "POST", "/api/v1/kb/articles",
     {"title": "T", "body": "B", "locale": "en", "visibility": "public"}),
    ("sales", "PATCH", "/api/v1/kb/articles/{article}", {"title": "Defaced"}),
    ("sales", "POST", "/api/v1/kb/articles/{article}/publish", None),
    ("sales", "DELETE", "/api/v1/kb/articles/{article}", None),
    ("support", "DELETE", "/api/v1/kb/articles/{article}", None),
    ("sales", "POST", "/api/v1/kb/categories", {"name": "Spam"}),
    ("support", "POST", "/api/v1/canned-replies", {"title": "X", "body": "Y"}),
    ("support", "PATCH", "/api/v1/canned-replies/{canned}", {"body": "Changed"}),
    ("support", "DELETE", "/api/v1/canned-replies/{canned}", None),
    ("support", "POST", "/api/v1/surveys/schedules",
     {"name": "Spam", "kind": "nps", "every_days": 1, "audience": {}}),
    ("support", "PATCH", "/api/v1/surveys/schedules/{schedule}", {"every_days": 1}),
    ("manager", "DELETE", "/api/v1/surveys/schedules/{schedule}", None),
    ("sales", "POST", "/api/v1/surveys/invitations", {"customer_id": 1, "kind": "csat"}),
    ("support", "POST", "/api/v1/service/sla-policies", {"name": "Free"}),
    ("support", "PATCH", "/api/v1/service/sla-policies/{policy}", {"name": "Renamed"}),
    ("analyst", "POST", "/api/v1/service/routing-rules", {"name": "R", "team_id": 1}),
)


@pytest.mark.parametrize(("role", "method", "path", "body"), DENIED,
                         ids=[f"{r}-{m}-{p}" for r, m, p, _ in DENIED])
def test_denied_service_writes_change_nothing_and_are_audited(db, client, make_actor, admin,
                                                              role, method, path, body):
    """TRUST 2 and 7 for knowledge, surveys, canned replies and service configuration (the
    ticket matrix covers tickets): 403 problem+json, no row or outbox change, one `denied`
    audit entry."""
    from tests.access.helpers import assert_problem, audit_actions, snapshot

    seeded = _seed_config(client, admin)
    actor = make_actor(role, team="alpha")
    url = path.format(**{k: v[0] for k, v in seeded.items()})
    etag = next((v[1] for k, v in seeded.items() if "{" + k + "}" in path), '"1"')
    before = snapshot(db, SERVICE_TABLES)
    denials = sum(1 for a in audit_actions(db) if a[0] == "denied")
    r = client.request(method, url, headers={**actor.headers, "If-Match": etag},
                       **({"json": body} if body is not None else {}))
    assert_problem(r, 403)
    assert snapshot(db, SERVICE_TABLES) == before
    assert sum(1 for a in audit_actions(db) if a[0] == "denied") == denials + 1


def test_a_reader_cannot_claim_to_be_replying(db, app):
    """TRUST 7: the collision banner says "X is also replying" only for someone who may reply;
    a read-only viewer (sales, the account owner) posting a draft body shows as viewing, so it
    cannot hold agents back from answering."""
    from sqlalchemy import select

    from accord.models import Team
    from tests.service.test_workspace_web import agent, seed_policy, ticket

    seed_policy(db)
    theo, theo_id, theo_csrf = agent(app, db, "support", "theo@example.com", "Theo Agent",
                                     team="alpha")
    sam, _, sam_csrf = agent(app, db, "sales", "sam@example.com", "Sam Seller", team="alpha")
    with dbmod.session_scope(db) as s:
        team_id = s.scalar(select(Team.id).where(Team.name == "alpha"))
    tid = ticket(db, subject="Shared", assignee=theo_id, team_id=team_id)
    url = f"/service/tickets/{tid}/presence"
    r = sam.post(url, data={"body_text": "Dear Ann"}, headers={"X-CSRF-Token": sam_csrf})
    assert r.status_code == 200, r.text
    seen = theo.post(url, headers={"X-CSRF-Token": theo_csrf})
    assert "<strong>Sam Seller</strong> is also viewing" in seen.text
    assert "replying" not in seen.text


def test_listing_a_tickets_attachments_is_an_audited_read(db, client, make_actor,
                                                         files_dir):  # noqa: F811
    """Privacy audit (who read whose personal data): attachment file names are personal data
    in the registry; listing them is logged like reading the messages or downloading a file."""
    from accord.service import tickets

    agent = make_actor("support", team="alpha")
    with dbmod.session_scope(db) as s:
        tid = tickets.create_ticket(
            s, tickets.system_principal("email"), subject="Scan", channel="email",
            body_text="See attached.", requester_email="ann@example.com",
            attachments=[tickets.NewAttachment("passport-ann.pdf", "application/pdf",
                                               b"%PDF")]).id
    r = client.get(f"{API}/{tid}/attachments", headers=agent.headers)
    assert r.status_code == 200 and r.json()[0]["filename"] == "passport-ann.pdf"
    with dbmod.get_engine(db).connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text("SELECT action, resource, record_id, actor_id FROM audit_log "
                                 "WHERE action = 'read'")).all()
    assert [(r.resource, r.record_id, r.actor_id) for r in rows] == [
        ("tickets", str(tid), agent.id)]


def test_assistant_question_retried_with_the_same_key_is_answered_once(db, client):
    """Reliability (idempotency): a help-centre page retrying a question whose answer was lost
    sends the same `Idempotency-Key`: the saved answer comes back and the conversation holds
    the question once (it also counts once towards the per-conversation limit)."""
    from accord.service import assistant
    from tests.access.helpers import assert_problem

    assistant.STARTS_PER_CLIENT.clear()
    assistant.QUESTIONS_PER_CLIENT.clear()
    pid = client.post("/api/v1/help/assistant/conversations").json()["public_id"]
    base = f"/api/v1/help/assistant/conversations/{pid}"
    key = {"Idempotency-Key": "q-1"}
    first = client.post(base + "/messages", json={"text": "Do you ship to Mars?"}, headers=key)
    assert first.status_code == 200, first.text
    again = client.post(base + "/messages", json={"text": "Do you ship to Mars?"}, headers=key)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [t["role"] for t in client.get(base).json()["turns"]] == ["customer", "assistant"]
    assert_problem(client.post(base + "/messages", json={"text": "Or to Venus?"}, headers=key),
                   422, "Idempotency-Key")
    # a key is per conversation: another conversation may use the same one
    other = client.post("/api/v1/help/assistant/conversations").json()["public_id"]
    r = client.post(f"/api/v1/help/assistant/conversations/{other}/messages",
                    json={"text": "Do you ship to Mars?"}, headers=key)
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers
    assistant.STARTS_PER_CLIENT.clear()
    assistant.QUESTIONS_PER_CLIENT.clear()


# (method, path, a valid body, a read-only field): TRUST 4 across the service payloads.
READ_ONLY = (
    ("POST", "/api/v1/tickets", {"subject": "S", "requester_email": "a@example.com"}, "id"),
    ("POST", "/api/v1/tickets", {"subject": "S", "requester_email": "a@example.com"},
     "status"),
    ("POST", "/api/v1/tickets", {"subject": "S", "requester_email": "a@example.com"},
     "sla_state"),
    ("POST", "/api/v1/tickets", {"subject": "S", "requester_email": "a@example.com"},
     "escalation_level"),
    ("POST", "/api/v1/tickets", {"subject": "S", "requester_email": "a@example.com"},
     "created_by"),
    ("PATCH", "/api/v1/tickets/{ticket}", {"priority": "high"}, "customer_id"),
    ("PATCH", "/api/v1/tickets/{ticket}", {"priority": "high"}, "version"),
    ("PATCH", "/api/v1/tickets/{ticket}", {"priority": "high"}, "due_at"),
    ("PATCH", "/api/v1/tickets/{ticket}", {"priority": "high"}, "assignee_id"),
    ("POST", "/api/v1/tickets/{ticket}/messages", {"body_text": "Hi"}, "author_id"),
    ("POST", "/api/v1/tickets/{ticket}/messages", {"body_text": "Hi"}, "direction"),
    ("POST", "/api/v1/kb/articles", {"title": "T", "locale": "en"}, "status"),
    ("POST", "/api/v1/kb/articles", {"title": "T", "locale": "en"}, "current_version"),
    ("PATCH", "/api/v1/kb/articles/{article}", {"title": "T2"}, "created_by"),
    ("POST", "/api/v1/canned-replies", {"title": "T", "body": "B"}, "version"),
    ("PATCH", "/api/v1/canned-replies/{canned}", {"title": "T2"}, "id"),
    ("POST", "/api/v1/surveys/schedules", {"name": "N", "kind": "nps"}, "last_run_at"),
    ("POST", "/api/v1/service/sla-policies", {"name": "P"}, "id"),
    ("PATCH", "/api/v1/service/agents/{agent}", {"max_open_tickets": 3}, "user_id"),
    ("PUT", "/api/v1/service/agents/me/availability", {"available": True}, "user_id"),
)


@pytest.mark.parametrize(("method", "path", "body", "field"), READ_ONLY,
                         ids=[f"{m}-{p}-{f}" for m, p, _, f in READ_ONLY])
def test_read_only_fields_are_refused_by_name(db, client, admin, make_actor, method, path, body,
                                              field):
    """TRUST 4: server-kept fields in a body are a 422 naming them, and nothing changes."""
    from tests.access.helpers import assert_problem, snapshot

    seeded = _seed_config(client, admin)
    tid = customer_ticket(db)
    seeded["ticket"] = (tid, f'"{load(db, tid).version}"')
    agent = make_actor("support")
    made = client.post("/api/v1/service/agents", headers=admin.headers,
                       json={"user_id": agent.id})
    assert made.status_code == 201, made.text
    seeded["agent"] = (made.json()["id"], made.headers["ETag"])
    caller = agent if "/me/" in path else admin
    url = path.format(**{k: v[0] for k, v in seeded.items()})
    etag = next((v[1] for k, v in seeded.items() if "{" + k + "}" in path), '"1"')
    before = snapshot(db, (*SERVICE_TABLES, "ticket_messages"))
    r = client.request(method, url, headers={**caller.headers, "If-Match": etag},
                       json={**body, field: 7})
    assert_problem(r, 422, field)
    assert snapshot(db, (*SERVICE_TABLES, "ticket_messages")) == before


WEB_FORMS = (
    ("reply", {"body_text": "Hello", "kind": "public"}),
    ("reply", {"body_text": "Psst", "kind": "internal"}),
    ("properties", {"status": "solved", "priority": "urgent"}),
    ("escalate", {"reason": "Because"}),
)


@pytest.mark.parametrize(("action", "form"), WEB_FORMS, ids=[f"{a}-{f.get('kind', '')}"
                                                            for a, f in WEB_FORMS])
def test_a_reader_cannot_post_the_ticket_forms(db, app, action, form):
    """TRUST 2 and 7 in the pages: the reply box, properties and escalate forms are hidden
    from a reader (sales sees the team's tickets); posting them anyway is a 403 that changes
    nothing and is audited."""
    from sqlalchemy import select

    from accord.models import Team
    from tests.access.helpers import audit_actions, snapshot
    from tests.service.test_workspace_web import agent, seed_policy, ticket

    seed_policy(db)
    _, theo_id, _ = agent(app, db, "support", "theo@example.com", "Theo Agent", team="alpha")
    sam, _, csrf = agent(app, db, "sales", "sam@example.com", "Sam Seller", team="alpha")
    with dbmod.session_scope(db) as s:
        team_id = s.scalar(select(Team.id).where(Team.name == "alpha"))
    tid = ticket(db, subject="Shared", assignee=theo_id, team_id=team_id)
    assert sam.get(f"/service/tickets/{tid}").status_code == 200  # a reader
    tables = (*SERVICE_TABLES, "ticket_messages", "interactions", "notifications")
    before = snapshot(db, tables)
    denials = sum(1 for a in audit_actions(db) if a[0] == "denied")
    r = sam.post(f"/service/tickets/{tid}/{action}",
                 data={**form, "csrf_token": csrf, "version": str(load(db, tid).version)},
                 follow_redirects=False)
    assert r.status_code == 403, r.text[:300]
    assert snapshot(db, tables) == before
    assert sum(1 for a in audit_actions(db) if a[0] == "denied") == denials + 1
