"""The public chat/web widget: no login, allow-listed fields, a honeypot, a rate limit per
client, a signed token to continue a ticket, and answers that leak nothing internal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accord.core.ratelimit import SlidingWindow
from accord.service import tickets
from tests.access.helpers import assert_problem, count
from tests.service.tickets_helpers import load, messages

URL = "/api/v1/widget/messages"
HELLO = {"name": "Wendy Web", "email": "Wendy@Example.com", "message": "Hi, my login fails."}


@pytest.fixture(autouse=True)
def fresh_limit() -> Iterator[None]:
    tickets.WIDGET_PER_CLIENT.clear()
    yield
    tickets.WIDGET_PER_CLIENT.clear()


def _ticket_id(answer: dict) -> int:
    return int(answer["reference"].removeprefix("T-"))


def test_new_message_opens_a_chat_ticket_and_answers_only_a_handle(db, client):
    r = client.post(URL, json=HELLO)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    answer = r.json()
    assert set(answer) == {"status", "reference", "conversation"}
    t = load(db, _ticket_id(answer))
    assert (t.channel, t.status, t.requester_email) == ("chat", "new", "wendy@example.com")
    assert t.subject == "Hi, my login fails."
    assert t.customer_id is not None
    assert str(t.id) in answer["conversation"] and len(answer["conversation"]) > 30


def test_token_continues_the_same_ticket_for_the_same_address_only(db, client):
    first = client.post(URL, json=HELLO).json()
    tid = _ticket_id(first)
    again = client.post(URL, json={**HELLO, "email": "wendy@example.com",
                                   "message": "Still broken.",
                                   "conversation": first["conversation"]})
    assert again.status_code == 200, again.text
    assert again.json()["reference"] == first["reference"]
    assert [m.body_text for m in messages(db, tid)] == ["Hi, my login fails.", "Still broken."]
    other = client.post(URL, json={**HELLO, "email": "mallory@example.com",
                                   "conversation": first["conversation"]})
    assert_problem(other, 422, "conversation")
    forged = f"{tid}.{'0' * 40}"
    assert_problem(client.post(URL, json={**HELLO, "conversation": forged}), 422, "conversation")
    guess = first["conversation"].replace(f"{tid}.", f"{tid + 1}.", 1)
    assert_problem(client.post(URL, json={**HELLO, "conversation": guess}), 422, "conversation")
    assert len(messages(db, tid)) == 2
    assert count(db, "tickets") == 1


def test_customer_reply_through_the_widget_reopens(db, client, make_actor):
    agent = make_actor("support")
    first = client.post(URL, json=HELLO).json()
    tid = _ticket_id(first)
    r = client.post(f"/api/v1/tickets/{tid}/messages", headers=agent.headers,
                    json={"body_text": "Try now", "status": "solved"})
    assert r.status_code == 201, r.text
    client.post(URL, json={**HELLO, "message": "Works, thanks", "conversation":
                           first["conversation"]})
    assert load(db, tid).status == "open"


def test_honeypot_gets_the_ordinary_answer_and_stores_nothing(db, client):
    r = client.post(URL, json={**HELLO, "website_url": "http://spam.example"})
    assert r.status_code == 200 and r.json()["status"] == "received"
    assert count(db, "tickets") == 0 and count(db, "customers") == 0


def test_fields_are_allow_listed_and_checked(db, client):
    for payload, field in (({**HELLO, "priority": "urgent"}, "priority"),
                           ({**HELLO, "assignee_id": 1}, "assignee_id"),
                           ({**HELLO, "email": "not-an-address"}, "email"),
                           ({"name": "x", "email": "a@example.com"}, "message"),
                           ({**HELLO, "message": "x" * 10_001}, "message")):
        assert_problem(client.post(URL, json=payload), 422, field)
    assert_problem(client.post(URL, content=b"{", headers={"Content-Type": "application/json"}),
                   400, "body")
    assert_problem(client.post(URL, data={"email": "a@example.com"}), 415, "Content-Type")
    assert_problem(client.post(URL, content=b"[1]",
                               headers={"Content-Type": "application/json"}), 422, "body")
    assert count(db, "tickets") == 0


def test_rate_limited_per_client(db, client, monkeypatch):
    monkeypatch.setattr(tickets, "WIDGET_PER_CLIENT", SlidingWindow(limit=2, window_seconds=600))
    assert client.post(URL, json=HELLO).status_code == 200
    assert client.post(URL, json={**HELLO, "website_url": "x"}).status_code == 200
    r = client.post(URL, json=HELLO)
    assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    assert count(db, "tickets") == 1


def test_preflight(client):
    r = client.options(URL)
    assert r.status_code == 204 and "POST" in r.headers["access-control-allow-methods"]


def test_a_token_with_non_ascii_digits_is_refused_not_a_crash(db, client):
    """`"²".isdigit()` is true but `int("²")` fails: such a token was a 500."""
    for token in ("².abc", "1².abc", "١.abc"):
        assert_problem(client.post(URL, json={**HELLO, "conversation": token}), 422,
                       "conversation")
    assert count(db, "tickets") == 0
