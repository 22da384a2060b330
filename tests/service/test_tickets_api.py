"""Tickets over the REST API: create (agent, phone call), get, patch with If-Match, the
workflow's 409, replies and notes (JSON and multipart), linked orders, list parameters and
problem+json field errors."""

from __future__ import annotations

from sqlalchemy import select

from accord.core import db as dbmod
from accord.models import Customer
from accord.models.service import Ticket
from tests.access.helpers import assert_problem, count, seed_customer
from tests.service.tickets_helpers import (
    API,
    customer_ticket,
    files_dir,  # noqa: F401 - fixture
    interactions_of,
    load,
    outbox,
    seed_order,
)


def _etag(client, actor, tid: int) -> str:
    r = client.get(f"{API}/{tid}", headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


def test_agent_creates_a_ticket_for_a_new_requester(db, client, make_actor):
    agent = make_actor("support", team="care")
    r = client.post(API, headers=agent.headers, json={
        "subject": "Printer on fire", "channel": "agent", "body_text": "Customer called.",
        "requester_email": "Pat@Example.com", "requester_name": "Pat Doe", "priority": "high",
        "category": "hardware", "tags": ["Urgent", "urgent", "fire"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["ETag"] == f'"{body["version"]}"'
    assert r.headers["Location"] == f"{API}/{body['id']}"
    assert body["reference"] == f"T-{body['id']}"
    assert (body["status"], body["priority"], body["tags"]) == ("new", "high", ["urgent", "fire"])
    assert body["requester_email"] == "pat@example.com"
    assert body["team_id"] == agent.team_id  # unrouted: stays with the creating agent's team
    with dbmod.session_scope(db) as s:
        c = s.get(Customer, body["customer_id"])
        assert (c.first_name, c.last_name) == ("Pat", "Doe")
    got = client.get(f"{API}/{body['id']}", headers=agent.headers)
    assert got.status_code == 200 and got.json()["subject"] == "Printer on fire"


def test_phone_call_log_keeps_the_call_on_the_timeline(db, client, make_actor):
    agent = make_actor("support")
    cid = seed_customer(db, emails=[{"email": "caller@example.com"}])
    r = client.post(API, headers=agent.headers, json={
        "subject": "Call about invoice", "channel": "phone", "customer_id": cid,
        "body_text": "Asked for a copy of the invoice.",
        "call": {"direction": "outbound", "duration_seconds": 95, "outcome": "resolved"}})
    assert r.status_code == 201, r.text
    [i] = interactions_of(db, cid)
    assert (i.channel, i.direction, i.department) == ("phone", "outbound", "support")
    assert i.meta["call"]["duration_seconds"] == 95
    bad = client.post(API, headers=agent.headers, json={
        "subject": "x", "channel": "api", "customer_id": cid,
        "call": {"direction": "inbound"}})
    assert_problem(bad, 422, "call")


def test_create_refuses_bad_input_naming_the_field(db, client, make_actor):
    agent = make_actor("support")
    cases = [
        ({"subject": "x", "channel": "agent"}, "customer_id"),
        ({"subject": "x", "requester_email": "nope"}, "requester_email"),
        ({"subject": "x", "requester_email": "a@example.com", "channel": "email"}, "channel"),
        ({"subject": "x", "requester_email": "a@example.com", "status": "closed"}, "status"),
        ({"subject": "x", "requester_email": "a@example.com", "id": 5}, "id"),
        ({"subject": "x", "requester_email": "a@example.com", "version": 3}, "version"),
        ({"subject": "x", "requester_email": "a@example.com", "tags": ["no spaces"]}, "tags"),
        ({"subject": "x", "requester_email": "a@example.com", "priority": "asap"}, "priority"),
        ({"subject": "", "requester_email": "a@example.com"}, "subject"),
        ({"subject": "x", "customer_id": 999999}, "customer_id"),
    ]
    for payload, field in cases:
        r = client.post(API, headers=agent.headers, json=payload)
        status = 404 if payload.get("customer_id") == 999999 else 422
        assert_problem(r, status, field)
    assert count(db, "tickets") == 0


def test_patch_needs_if_match_and_follows_the_workflow(db, client, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    url = f"{API}/{tid}"
    assert_problem(client.patch(url, json={"priority": "high"}, headers=agent.headers), 428,
                   "If-Match")
    tag = _etag(client, agent, tid)
    r = client.patch(url, json={"priority": "high", "category": "delivery"},
                     headers={**agent.headers, "If-Match": tag})
    assert r.status_code == 200, r.text
    assert (r.json()["priority"], r.json()["category"]) == ("high", "delivery")
    assert r.headers["ETag"] != tag
    # the old ETag is stale now
    assert_problem(client.patch(url, json={"priority": "low"},
                                headers={**agent.headers, "If-Match": tag}), 412, "If-Match")
    fresh = r.headers["ETag"]
    assert_problem(client.patch(url, json={"status": "closed"},
                                headers={**agent.headers, "If-Match": fresh}), 409, "status")
    assert_problem(client.patch(url, json={"status": None},
                                headers={**agent.headers, "If-Match": fresh}), 422, "status")
    assert_problem(client.patch(url, json={"customer_id": 1},
                                headers={**agent.headers, "If-Match": fresh}), 422,
                   "customer_id")
    ok = client.patch(url, json={"status": "solved"}, headers={**agent.headers, "If-Match": fresh})
    assert ok.status_code == 200 and ok.json()["status"] == "solved"
    assert ok.json()["solved_at"] is not None
    assert outbox(db, "ticket.solved") == [{"ticket_id": tid}]


def test_reply_and_note_over_json(db, client, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    url = f"{API}/{tid}/messages"
    r = client.post(url, headers=agent.headers, json={"body_text": "On its way",
                                                      "status": "pending_customer"})
    assert r.status_code == 201, r.text
    reply = r.json()
    assert (reply["visibility"], reply["internal"], reply["direction"]) == (
        "public", False, "outbound")
    assert reply["interaction_id"] is not None
    assert r.headers["ETag"] == _etag(client, agent, tid)
    n = client.post(url, headers=agent.headers,
                    json={"body_html": "<p>VIP<script>x()</script></p>", "internal": True})
    assert n.status_code == 201, n.text
    note = n.json()
    assert (note["internal"], note["interaction_id"]) == (True, None)
    assert "script" not in note["body_html"] and note["body_text"] == "VIP"
    listed = client.get(url, headers=agent.headers).json()
    assert [(m["direction"], m["internal"]) for m in listed] == [
        ("inbound", False), ("outbound", False), ("outbound", True)]
    assert load(db, tid).status == "pending_customer"
    assert [p["message_id"] for p in outbox(db, "ticket.replied")] == [reply["id"]]
    assert_problem(client.post(url, headers=agent.headers, json={"body_text": "  "}), 422,
                   "body_text")
    assert_problem(client.post(url, headers=agent.headers,
                               json={"body_text": "x", "author_id": 1}), 422, "author_id")
    assert_problem(client.post(url, headers={**agent.headers, "If-Match": '"1"'},
                               json={"body_text": "late"}), 412, "If-Match")
    assert_problem(client.post(url, headers={**agent.headers, "Content-Type": "text/plain"},
                               content=b"hi"), 415, "Content-Type")


def test_reply_with_attachments_over_multipart(db, client, make_actor, files_dir):  # noqa: F811
    agent = make_actor("support")
    tid = customer_ticket(db)
    r = client.post(f"{API}/{tid}/messages", headers=agent.headers,
                    data={"body_text": "See the label", "internal": "false"},
                    files=[("attachments", ("label.pdf", b"%PDF-1.4 label", "application/pdf")),
                           ("attachments", ("notes.txt", b"hello", "text/plain"))])
    assert r.status_code == 201, r.text
    files = r.json()["attachments"]
    assert [f["filename"] for f in files] == ["label.pdf", "notes.txt"]
    down = client.get(files[0]["download_url"], headers=agent.headers)
    assert down.status_code == 200 and down.content == b"%PDF-1.4 label"
    assert down.headers["content-type"] == "application/pdf"
    listed = client.get(f"{API}/{tid}/attachments", headers=agent.headers).json()
    assert {f["id"] for f in listed} == {f["id"] for f in files}
    bad = client.post(f"{API}/{tid}/messages", headers=agent.headers,
                      data={"body_text": "x", "internal": "maybe"})
    assert_problem(bad, 422, "internal")


def test_orders_link_and_unlink(db, client, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    mine = seed_order(db, load(db, tid).customer_id, "O-9")
    theirs = seed_order(db, seed_customer(db), "O-10")
    r = client.post(f"{API}/{tid}/orders", headers=agent.headers, json={"order_id": mine})
    assert r.status_code == 200 and r.json()["order_ids"] == [mine]
    assert_problem(client.post(f"{API}/{tid}/orders", headers=agent.headers,
                               json={"order_id": theirs}), 422, "order_ids")
    assert client.delete(f"{API}/{tid}/orders/{mine}", headers=agent.headers).status_code == 204
    assert client.get(f"{API}/{tid}", headers=agent.headers).json()["order_ids"] == []
    assert_problem(client.delete(f"{API}/{tid}/orders/{mine}", headers=agent.headers), 404)


def test_list_parameters_are_allow_listed(db, client, make_actor):
    agent = make_actor("support")
    a = customer_ticket(db, priority="urgent", tags=["vip"])
    customer_ticket(db, priority="low")
    r = client.get(API, params={"tag": "vip", "status": "new", "sort": "-priority"},
                   headers=agent.headers)
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [a]
    for params, field in (({"owner_id": "1"}, "owner_id"), ({"sort": "subject"}, "sort"),
                          ({"status": "lost"}, "status"),
                          ({"sort": "id; DROP TABLE tickets"}, "sort"),
                          ({"assignee": "x"}, "assignee")):
        assert_problem(client.get(API, params=params, headers=agent.headers), 422, field)
    with dbmod.session_scope(db) as s:
        assert s.scalar(select(Ticket.id).where(Ticket.id == a)) == a


def test_search_by_reference_takes_ascii_digits_only(db, client, make_actor):
    """`"²".isdigit()` is true but `int("²")` fails: such a search was a 500."""
    agent = make_actor("support")
    tid = customer_ticket(db, subject="²nd delivery")
    for q in ("²", "T-²", "T-1²"):
        r = client.get(API, params={"q": q}, headers=agent.headers)
        assert r.status_code == 200, (q, r.text)
    assert [i["id"] for i in client.get(API, params={"q": "²n"},
                                        headers=agent.headers).json()["items"]] == [tid]
    assert [i["id"] for i in client.get(API, params={"q": f"T-{tid}"},
                                        headers=agent.headers).json()["items"]] == [tid]


def test_patched_subject_is_one_line_as_on_create(db, client, make_actor):
    """A subject with line breaks reached escalation mails (refused as header injection)."""
    agent = make_actor("support")
    tid = customer_ticket(db)
    r = client.patch(f"{API}/{tid}", json={"subject": "Refund\r\nBcc: all@example.com\tnow"},
                     headers={**agent.headers, "If-Match": _etag(client, agent, tid)})
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == "Refund Bcc: all@example.com now"
    assert load(db, tid).subject == "Refund Bcc: all@example.com now"
