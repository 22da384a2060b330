"""The demo's service desk: consistent conversations and timelines, exact SLA timers on open
tickets, sentiment from the real scorer, searchable help articles, idempotent."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, select

from accord.core.db import session_scope
from accord.demo.generator import ensure_demo
from accord.demo.service import ServiceSize
from accord.models import (
    KbArticle,
    ServiceAgent,
    SlaPolicy,
    SurveyInvitation,
    SurveyResponse,
    SurveySchedule,
    Ticket,
    TicketEvent,
    TicketMessage,
)
from accord.models.service import OPEN_STATUSES
from accord.service import sentiment, sla_tracking

NOW = datetime(2026, 1, 15, tzinfo=UTC)
N = 200


def _make() -> None:
    ensure_demo(N, 7, False, now=NOW, progress=lambda *_: None)


def test_demo_tickets_have_consistent_conversations_and_timelines(db) -> None:
    _make()
    with session_scope() as s:
        tickets = list(s.scalars(select(Ticket)))
        assert len(tickets) == ServiceSize.for_customers(N).tickets
        messages: dict[int, list[TicketMessage]] = defaultdict(list)
        for m in s.scalars(select(TicketMessage).order_by(TicketMessage.created_at,
                                                          TicketMessage.id)):
            messages[m.ticket_id].append(m)
        events: dict[int, list[TicketEvent]] = defaultdict(list)
        for e in s.scalars(select(TicketEvent).order_by(TicketEvent.at, TicketEvent.id)):
            events[e.ticket_id].append(e)
        statuses = {t.status for t in tickets}
        assert {"closed", "open"} <= statuses
        for t in tickets:
            convo = messages[t.id]
            assert convo[0].direction == "inbound" and convo[0].customer_id == t.customer_id
            assert all(m.created_at <= NOW for m in convo)
            kinds = [e.kind for e in events[t.id]]
            assert kinds[0] == "created"
            assert kinds.count("public_reply_by_agent") == sum(
                m.direction == "outbound" for m in convo)
            if t.status in ("solved", "closed", "pending_customer"):
                assert convo[-1].direction == "outbound"  # an agent answered last
            if t.status == "new":
                assert len(convo) == 1
            assert (t.solved_at is not None) == (t.status in ("solved", "closed"))


def test_demo_sentiment_comes_from_the_scorer(db) -> None:
    _make()
    with session_scope() as s:
        inbound = list(s.scalars(select(TicketMessage).where(
            TicketMessage.direction == "inbound").limit(50)))
        for m in inbound:
            real = sentiment.score(m.body_text, "en")
            assert m.sentiment_label == real.label and abs(m.sentiment - real.compound) < 0.1
        labels = set(s.scalars(select(TicketMessage.sentiment_label).distinct()))
        assert "negative" in labels and "positive" in labels
        assert s.scalar(select(func.count()).select_from(TicketMessage).where(
            TicketMessage.direction == "outbound", TicketMessage.sentiment.is_not(None))) == 0


def test_demo_open_tickets_carry_exact_sla_timers(db) -> None:
    _make()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(SlaPolicy).where(SlaPolicy.is_default))
        assert s.scalar(select(func.count()).select_from(ServiceAgent)) >= 2
        open_tickets = list(s.scalars(select(Ticket).where(Ticket.status.in_(OPEN_STATUSES))))
        assert open_tickets
        for t in open_tickets[:20]:
            stored = (t.sla_state, t.first_response_due_at, t.resolution_due_at, t.due_at)
            sla_tracking.refresh(s, t, now=NOW)
            assert (t.sla_state, t.first_response_due_at, t.resolution_due_at, t.due_at) == stored
        s.rollback()


def test_demo_surveys_follow_solved_tickets(db) -> None:
    _make()
    with session_scope() as s:
        invitations = {i.id: i for i in s.scalars(select(SurveyInvitation))}
        responses = list(s.scalars(select(SurveyResponse)))
        assert invitations and responses
        tickets = {t.id: t for t in s.scalars(select(Ticket))}
        for inv in invitations.values():
            if inv.kind == "csat":  # after a solved ticket
                assert inv.trigger == "ticket_solved"
                assert tickets[inv.ticket_id].solved_at < inv.sent_at <= NOW
            else:  # the last quarterly NPS wave
                assert (inv.trigger, inv.ticket_id) == ("schedule", None)
                assert inv.schedule_id is not None and inv.sent_at <= NOW
        for resp in responses:
            inv = invitations[resp.invitation_id]
            assert inv.used_at == resp.responded_at and inv.sent_at < resp.responded_at <= NOW
            assert resp.kind == inv.kind and resp.customer_id == inv.customer_id
            assert (1 <= resp.score <= 5) if resp.kind == "csat" else (0 <= resp.score <= 10)
        assert {r.kind for r in responses} == {"csat", "nps"}
        schedule = s.scalars(select(SurveySchedule)).one()
        assert schedule.next_run_at > NOW  # the demo's worker does not send a wave at start
        assert sum(i.used_at is not None for i in invitations.values()) == len(responses)


def test_demo_help_articles_are_searchable_and_the_demo_is_idempotent(db) -> None:
    from accord.service import knowledge

    _make()
    with session_scope() as s:
        public = s.scalar(select(func.count()).select_from(KbArticle).where(
            KbArticle.visibility == "public", KbArticle.status == "published"))
        assert public >= 10
        hits = knowledge.search(s, "return policy refund", public_only=True, limit=5)
        assert hits and any("return" in h.title.lower() or "refund" in h.title.lower()
                            for h in hits)
        before = s.scalar(select(func.count()).select_from(Ticket))
    _make()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == before
