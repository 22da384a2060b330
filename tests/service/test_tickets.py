"""Tickets through the service layer: customer matching, the first message and its timeline
entry, sentiment, sanitising, the status workflow, replies and notes, priorities, linked orders
and the outbox events (ids only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from accord.core import db as dbmod
from accord.core.errors import Conflict, PreconditionFailed, ValidationProblem
from accord.models import Customer, CustomerEmail
from accord.models.service import Ticket, TicketEvent
from accord.service import tickets
from accord.service.tickets_schemas import TicketUpdate
from tests.access.helpers import seed_customer
from tests.service.tickets_helpers import (
    customer_ticket,
    event_kinds,
    interactions_of,
    load,
    messages,
    outbox,
    seed_order,
)


def _reply(db: str, actor, ticket_id: int, **kw):
    with dbmod.session_scope(db) as s:
        m = tickets.reply(s, actor.principal, ticket_id, **{"body_text": "Thanks", **kw})
        return m.id


def _update(db: str, actor, ticket_id: int, **fields):
    with dbmod.session_scope(db) as s:
        t = tickets.get_ticket(s, actor.principal, ticket_id, "update")
        tickets.update_ticket(s, actor.principal, t, TicketUpdate(**fields))


def _customer_says(db: str, ticket_id: int, text: str = "Any news?", **kw) -> int:
    with dbmod.session_scope(db) as s:
        t = s.get(Ticket, ticket_id)
        return tickets.add_customer_message(s, t, body_text=text, channel="email", **kw).ticket_id


# --- customers -----------------------------------------------------------------------------------

def test_unknown_sender_becomes_a_customer_and_is_matched_next_time(db):
    first = load(db, customer_ticket(db, email="New.Person@Example.com", name="Nia Newman"))
    with dbmod.session_scope(db) as s:
        c = s.get(Customer, first.customer_id)
        assert (c.first_name, c.last_name) == ("Nia", "Newman")
        assert s.scalars(select(CustomerEmail.email_normalized)
                         .where(CustomerEmail.customer_id == c.id)).all() == [
            "new.person@example.com"]
    second = load(db, customer_ticket(db, email="new.person@EXAMPLE.com", name="N. Newman"))
    assert second.customer_id == first.customer_id
    assert second.requester_email == "new.person@example.com"
    with dbmod.session_scope(db) as s:
        assert s.scalar(select(Customer.id).where(Customer.id != first.customer_id)) is None


def test_known_customer_is_matched_by_email(db):
    cid = seed_customer(db, emails=[{"email": "kim@example.com"}])
    assert load(db, customer_ticket(db, email="KIM@example.com")).customer_id == cid


def test_unreadable_sender_address_still_gets_a_profile(db):
    t = load(db, customer_ticket(db, email="not an address", name=""))
    assert t.customer_id is not None
    assert t.requester_email == "not an address"


def test_agent_gets_a_field_error_for_a_bad_address(db, make_actor):
    agent = make_actor("support")
    with dbmod.session_scope(db) as s, pytest.raises(ValidationProblem) as exc:
        tickets.create_ticket(s, agent.principal, subject="x", channel="agent",
                              requester_email="nope", internal_author=True)
    assert exc.value.field == "requester_email"


# --- the first message -----------------------------------------------------------------------

def test_first_message_is_inbound_scored_and_on_the_timeline(db):
    tid = customer_ticket(db, body="This is terrible, I am furious and disappointed.")
    t = load(db, tid)
    [m] = messages(db, tid)
    assert (m.direction, m.visibility, m.channel) == ("inbound", "public", "email")
    assert m.sentiment is not None and m.sentiment < 0 and m.sentiment_label == "negative"
    assert m.sentiment_model.startswith("vader")
    assert t.sentiment == m.sentiment
    [i] = interactions_of(db, t.customer_id)
    assert m.interaction_id == i.id
    assert (i.department, i.direction, i.channel) == ("support", "inbound", "email")
    assert i.meta["ticket_id"] == tid and i.meta["message_id"] == m.id
    assert event_kinds(db, tid)[0] == "created"
    [created] = outbox(db, "ticket.created")
    assert created["ticket_id"] == tid
    assert "ann@example.com" not in str(created) and "Ann" not in str(created)


def test_html_is_sanitised_and_text_derived(db):
    tid = customer_ticket(db, body="", body_html=(
        '<p onclick="steal()">Hello <b>there</b></p><script>alert(1)</script>'
        '<a href="javascript:alert(2)">x</a><img src="http://t.example/p.gif">'))
    [m] = messages(db, tid)
    assert "script" not in m.body_html and "alert" not in m.body_html
    assert "onclick" not in m.body_html and "javascript" not in m.body_html
    assert "<img" not in m.body_html and "<b>there</b>" in m.body_html
    assert m.body_text.startswith("Hello there")


def test_logged_phone_call_is_the_agents_words(db, make_actor):
    agent = make_actor("support")
    cid = seed_customer(db, emails=[{"email": "cal@example.com"}])
    with dbmod.session_scope(db) as s:
        t = tickets.create_ticket(
            s, agent.principal, subject="Call: refund", channel="phone", customer_id=cid,
            body_text="Customer is angry about the awful delay.", internal_author=True,
            call={"direction": "inbound", "duration_seconds": 240, "outcome": "callback"})
        tid = t.id
    t = load(db, tid)
    assert t.requester_email == "cal@example.com"  # replies can be mailed
    [m] = messages(db, tid)
    assert (m.direction, m.author_id, m.sentiment) == ("outbound", agent.id, None)
    [i] = interactions_of(db, cid)
    assert (i.channel, i.direction) == ("phone", "inbound")
    assert i.meta["call"] == {"direction": "inbound", "duration_seconds": 240,
                              "outcome": "callback"}


# --- workflow --------------------------------------------------------------------------------

def test_reply_opens_solve_reopen_close(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    mid = _reply(db, agent, tid)
    assert load(db, tid).status == "open"
    assert outbox(db, "ticket.replied") == [{"ticket_id": tid, "message_id": mid}]
    _reply(db, agent, tid, body_text="Fixed it", status="solved")
    t = load(db, tid)
    assert t.status == "solved" and t.solved_at is not None
    assert outbox(db, "ticket.solved") == [{"ticket_id": tid}]
    assert _customer_says(db, tid, "It broke again") == tid
    t = load(db, tid)
    assert t.status == "open" and t.solved_at is None
    kinds = event_kinds(db, tid)
    assert kinds.count("public_reply_by_agent") == 2
    assert kinds[-2:] == ["customer_message", "status_changed"]
    _update(db, agent, tid, status="solved")
    _update(db, agent, tid, status="closed")
    assert load(db, tid).closed_at is not None
    changes = [p["to"] for p in outbox(db, "ticket.status_changed")]
    assert changes == ["open", "solved", "open", "solved", "closed"]


def test_pending_customer_reopens_on_customer_reply(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    _reply(db, agent, tid, status="pending_customer")
    assert load(db, tid).status == "pending_customer"
    _customer_says(db, tid)
    assert load(db, tid).status == "open"


def test_auto_reply_does_not_reopen(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    _reply(db, agent, tid, status="pending_customer")
    _customer_says(db, tid, "I am out of office", is_auto_reply=True)
    assert load(db, tid).status == "pending_customer"


@pytest.mark.parametrize(("path", "illegal"), [
    ((), "closed"), (("solved", "closed"), "open"), (("solved",), "on_hold")])
def test_illegal_moves_are_409(db, make_actor, path, illegal):
    agent = make_actor("support")
    tid = customer_ticket(db)
    for status in path:
        _update(db, agent, tid, status=status)
    before = load(db, tid).status
    with pytest.raises(Conflict) as exc:
        _update(db, agent, tid, status=illegal)
    assert exc.value.field == "status"
    assert load(db, tid).status == before


def test_message_to_closed_ticket_opens_a_follow_up(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    _update(db, agent, tid, status="solved")
    _update(db, agent, tid, status="closed")
    follow = _customer_says(db, tid, "One more thing")
    assert follow != tid
    old, new = load(db, tid), load(db, follow)
    assert old.status == "closed" and new.status == "new"
    assert new.customer_id == old.customer_id
    assert [m.body_text for m in messages(db, follow)] == ["One more thing"]
    assert "follow_up" in event_kinds(db, tid)


def test_reply_to_closed_ticket_is_409(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    _update(db, agent, tid, status="solved")
    _update(db, agent, tid, status="closed")
    with pytest.raises(Conflict):
        _reply(db, agent, tid)


# --- notes ---------------------------------------------------------------------------------------

def test_internal_note_is_not_mirrored_mailed_or_timed(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    cid = load(db, tid).customer_id
    _reply(db, agent, tid, body_text="Customer is a reseller", internal=True)
    note = messages(db, tid)[-1]
    assert (note.visibility, note.interaction_id) == ("internal", None)
    assert len(interactions_of(db, cid)) == 1  # the first message only
    assert outbox(db, "ticket.replied") == []
    assert "public_reply_by_agent" not in event_kinds(db, tid)
    assert load(db, tid).status == "new"


def test_public_reply_is_outbound_on_the_timeline(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    _reply(db, agent, tid, body_text="We are on it")
    reply = messages(db, tid)[-1]
    i = interactions_of(db, load(db, tid).customer_id)[-1]
    assert (reply.direction, reply.sentiment, reply.author_id) == ("outbound", None, agent.id)
    assert (i.id, i.direction, i.department) == (reply.interaction_id, "outbound", "support")


def test_stale_version_is_412(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    version = load(db, tid).version
    _reply(db, agent, tid)
    with pytest.raises(PreconditionFailed):
        _reply(db, agent, tid, expected_version=version)


# --- priority, events ----------------------------------------------------------------------------

def test_set_priority_records_the_change(db):
    tid = customer_ticket(db)
    with dbmod.session_scope(db) as s:
        tickets.set_priority(s, s.get(Ticket, tid), "urgent", reason="VIP")
    assert load(db, tid).priority == "urgent"
    with dbmod.session_scope(db) as s:
        e = s.scalars(select(TicketEvent).where(TicketEvent.kind == "priority_changed")).one()
        assert (e.priority, e.data["from"], e.data["reason"]) == ("urgent", "normal", "VIP")
    with dbmod.session_scope(db) as s, pytest.raises(ValidationProblem):
        tickets.set_priority(s, s.get(Ticket, tid), "whenever")


def test_event_instants_stay_between_creation_and_now(db):
    tid = customer_ticket(db)
    created = load(db, tid).created_at
    with dbmod.session_scope(db) as s:
        t = s.get(Ticket, tid)
        future = tickets.record_event(s, t, "customer_message",
                                      at=datetime.now(UTC) + timedelta(days=3))
        past = tickets.record_event(s, t, "customer_message", at=datetime(2000, 1, 1, tzinfo=UTC))
        assert future.at <= datetime.now(UTC)
        assert past.at == created


# --- orders --------------------------------------------------------------------------------------

def test_orders_must_be_the_customers(db, make_actor):
    agent = make_actor("support")
    tid = customer_ticket(db)
    mine = seed_order(db, load(db, tid).customer_id, "O-1")
    theirs = seed_order(db, seed_customer(db), "O-2")
    with dbmod.session_scope(db) as s:
        t = s.get(Ticket, tid)
        tickets.link_order(s, agent.principal, t, mine)
        tickets.link_order(s, agent.principal, t, mine)  # twice: no-op
        with pytest.raises(ValidationProblem) as exc:
            tickets.link_order(s, agent.principal, t, theirs)
        assert exc.value.field == "order_ids"
    with dbmod.session_scope(db) as s:
        assert tickets.order_ids(s, [tid]) == {tid: [mine]}


# --- list ----------------------------------------------------------------------------------------

def test_list_filters_and_priority_sort(db, make_actor):
    agent = make_actor("support")
    a = customer_ticket(db, priority="low", tags=["billing"])
    b = customer_ticket(db, priority="urgent", tags=["vip", "billing"])
    c = customer_ticket(db, priority="high")
    with dbmod.session_scope(db) as s:
        def ids(**q: str) -> list[int]:
            rows, _ = tickets.list_tickets(s, agent.principal, tickets.list_params(q))
            return [t.id for t in rows]

        assert ids(sort="-priority") == [b, c, a]
        assert ids(sort="priority") == [a, c, b]
        assert sorted(ids(tag="billing")) == [a, b]
        assert ids(tag="vip") == [b]
        assert ids(priority="high") == [c]
        assert ids(q=f"T-{c}") == [c]
        first, cursor = tickets.list_tickets(s, agent.principal,
                                             tickets.list_params({"sort": "-priority",
                                                                  "limit": "2"}))
        assert [t.id for t in first] == [b, c] and cursor
        rest, _ = tickets.list_tickets(s, agent.principal, tickets.list_params(
            {"sort": "-priority", "limit": "2", "cursor": cursor}))
        assert [t.id for t in rest] == [a]
        with pytest.raises(ValidationProblem) as exc:
            ids(tag="bad tag!")
        assert exc.value.field == "tag"
