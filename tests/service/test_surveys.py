"""Surveys, the service layer: sending after a solved ticket (and when not to), single-use
links (forged, reused, expired, raced), answers on the customer's timeline, detractor follow-ups
for the account owner, hand-computed results, schedules that run once per period."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from accord.access import service as access
from accord.access.policy import SYSTEM, Principal
from accord.access.schemas import TeamIn, UserCreate
from accord.core import jobs, mail
from accord.core.db import session_scope
from accord.core.events import emit
from accord.core.settings import reset_settings
from accord.models import (
    Account,
    Activity,
    ConsentRecord,
    Interaction,
    Job,
    Notification,
    OutboxEvent,
    SurveyInvitation,
    SurveyResponse,
    SurveySchedule,
    Ticket,
)
from accord.service import surveys, surveys_tasks
from accord.service.surveys_schemas import ScheduleCreate
from tests.access.helpers import seed_customer

NOW = datetime(2030, 3, 12, 10, 0, tzinfo=UTC)  # a Tuesday
LINK = re.compile(r"/s/([A-Za-z0-9_-]+)")


# --- shared seeding (the API, web and task tests import these) ----------------------------------

@dataclass
class World:
    team_id: int
    other_team_id: int
    agent_id: int
    manager_id: int
    owner_id: int
    customer_id: int


def make_user(s: Any, role: str, email: str, team_id: int | None, active: bool = True) -> int:
    user = access.create_user(s, SYSTEM, UserCreate(
        email=email, full_name=email.split("@")[0].title(), password="correct horse battery",
        role=role, team_id=team_id))
    if not active:
        user.is_active = False
        s.flush()
    return user.id


def world(db: str) -> World:
    """Two service teams, an agent and a manager in the first, a salesperson owning a customer
    with an e-mail address."""
    with session_scope(db) as s:
        team = access.create_team(s, SYSTEM, TeamIn(name="Support EU")).id
        other = access.create_team(s, SYSTEM, TeamIn(name="Support US")).id
        agent = make_user(s, "support", "agent@example.com", team)
        manager = make_user(s, "manager", "lead@example.com", team)
        owner = make_user(s, "sales", "owner@example.com", other)
    customer = seed_customer(db, owner, other, first_name="Ada", last_name="Lovelace",
                             emails=[{"email": "ada@example.com", "is_primary": True}])
    return World(team, other, agent, manager, owner, customer)


def make_ticket(db: str, customer_id: int | None, *, team_id: int | None = None,
                assignee_id: int | None = None, status: str = "solved",
                requester_email: str | None = None) -> int:
    with session_scope(db) as s:
        t = Ticket(subject="Broken widget", channel="email", status=status,
                   customer_id=customer_id, team_id=team_id, assignee_id=assignee_id,
                   requester_email=requester_email,
                   solved_at=NOW if status == "solved" else None)
        s.add(t)
        s.flush()
        return t.id


def invite(db: str, customer_id: int, kind: str = "csat", *, team_id: int | None = None,
           agent_id: int | None = None, ticket_id: int | None = None,
           now: datetime | None = None) -> tuple[int, str]:
    """A fresh invitation and its token (read back from the queued e-mail, as a customer would)."""
    with session_scope(db) as s:
        customer = surveys.survivor(s, customer_id)
        assert customer is not None
        ticket = s.get(Ticket, ticket_id) if ticket_id else None
        inv = surveys.create_invitation(
            s, kind=kind, trigger="manual", customer=customer, email="ada@example.com",
            ticket=ticket, team_id=team_id, agent_id=agent_id, now=now or NOW - timedelta(hours=1))
        inv_id = inv.id
    return inv_id, token_of(db, inv_id)


def token_of(db: str, invitation_id: int) -> str:
    with session_scope(db, write=False) as s:
        job = s.scalar(select(Job).where(Job.dedupe_key == f"survey:{invitation_id}"))
        assert job is not None
        found = LINK.search(job.payload["body"])
        assert found is not None
        return found.group(1)


def answer(db: str, token: str, score: Any, comment: Any = None,
           now: datetime | None = None) -> SurveyResponse:
    with session_scope(db) as s:
        r = surveys.answer(s, token, score, comment, now=now)
        s.flush()
        s.expunge(r)
        return r


def rows(db: str, model: Any, *where: Any) -> list[Any]:
    with session_scope(db, write=False) as s:
        out = list(s.execute(select(model).where(*where).order_by(model.id)).scalars())
        s.expunge_all()
        return out


def solve(db: str, ticket_id: int) -> None:
    """What tickets.py does when a ticket is solved, then the worker's relay and the handler."""
    with session_scope(db) as s:
        emit(s, "ticket.solved", "ticket", ticket_id, {"ticket_id": ticket_id})
    run_subscriber(db)


def run_subscriber(db: str) -> None:
    with session_scope(db) as s:
        jobs.relay_outbox(s)
    with session_scope(db) as s:
        queued = list(s.execute(select(Job).where(Job.kind == surveys_tasks.ON_SOLVED,
                                                  Job.status == "queued")).scalars())
        payloads = [dict(j.payload) for j in queued]
        for j in queued:
            j.status = "done"
    for payload in payloads:
        with session_scope(db) as s:
            jobs.HANDLERS[surveys_tasks.ON_SOLVED](s, payload)


@pytest.fixture(autouse=True)
def _fresh_limits(monkeypatch: pytest.MonkeyPatch) -> Any:
    surveys.HITS_PER_CLIENT.clear()
    surveys.SKIPS.clear()
    yield
    reset_settings()


# --- sending after a solved ticket ------------------------------------------------------------

def test_solved_ticket_sends_one_csat_invitation_with_a_mailed_link(db):
    w = world(db)
    tid = make_ticket(db, w.customer_id, team_id=w.team_id, assignee_id=w.agent_id)
    solve(db, tid)

    (inv,) = rows(db, SurveyInvitation)
    assert (inv.kind, inv.trigger, inv.customer_id, inv.ticket_id) == (
        "csat", "ticket_solved", w.customer_id, tid)
    assert (inv.team_id, inv.agent_id, inv.email) == (w.team_id, w.agent_id, "ada@example.com")
    assert inv.expires_at - inv.sent_at == timedelta(days=14)
    (job,) = rows(db, Job, Job.kind == mail.MAIL_SEND)
    assert job.payload["to"] == "ada@example.com" and job.payload["tag"] == "survey.csat"
    assert f"T-{tid}" in job.payload["subject"]
    assert "http://127.0.0.1:8000/s/" in job.payload["body"]
    token = token_of(db, inv.id)
    # only the hash is stored, and it is the hash of the mailed token
    assert len(token) >= 43 and token not in inv.token_hash
    assert inv.token_hash == surveys.hash_token(token)
    assert [e.type for e in rows(db, OutboxEvent, OutboxEvent.type == "survey.sent")] == [
        "survey.sent"]

    # the event delivered again (at least once): nothing new
    solve(db, tid)
    assert len(rows(db, SurveyInvitation)) == 1
    assert len(rows(db, Job, Job.kind == mail.MAIL_SEND)) == 1
    assert surveys.SKIPS["already_sent"] == 1


def test_kind_and_link_lifetime_follow_the_settings(db, monkeypatch):
    monkeypatch.setenv("ACCORD_SURVEY_TICKET_KIND", "nps")
    monkeypatch.setenv("ACCORD_SURVEY_LINK_DAYS", "3")
    monkeypatch.setenv("ACCORD_BASE_URL", "https://crm.example.org/")
    reset_settings()
    w = world(db)
    solve(db, make_ticket(db, w.customer_id))
    (inv,) = rows(db, SurveyInvitation)
    assert inv.kind == "nps" and inv.expires_at - inv.sent_at == timedelta(days=3)
    (job,) = rows(db, Job, Job.kind == mail.MAIL_SEND)
    assert "https://crm.example.org/s/" in job.payload["body"]

    monkeypatch.setenv("ACCORD_SURVEY_TICKET_KIND", "off")
    reset_settings()
    solve(db, make_ticket(db, w.customer_id))
    assert len(rows(db, SurveyInvitation)) == 1


def test_skips_no_email_opt_out_cooldown_and_reopened_tickets(db):
    w = world(db)
    nomail = seed_customer(db, w.owner_id, w.other_team_id, first_name="No", last_name="Mail")
    solve(db, make_ticket(db, nomail))
    assert rows(db, SurveyInvitation) == [] and surveys.SKIPS["no_email"] == 1

    reopened = make_ticket(db, w.customer_id, status="open")
    solve(db, reopened)
    assert rows(db, SurveyInvitation) == [] and surveys.SKIPS["not_solved"] == 1

    with session_scope(db) as s:
        s.add(ConsentRecord(customer_id=w.customer_id, purpose="surveys", channel="email",
                            granted=False, wording="No surveys, please", source="test",
                            recorded_at=NOW - timedelta(days=2)))
    solve(db, make_ticket(db, w.customer_id))
    assert rows(db, SurveyInvitation) == [] and surveys.SKIPS["opted_out"] == 1

    # consent given again later: the newest record counts
    with session_scope(db) as s:
        s.add(ConsentRecord(customer_id=w.customer_id, purpose="surveys", channel=None,
                            granted=True, wording="Surveys are fine", source="test",
                            recorded_at=NOW - timedelta(days=1)))
    solve(db, make_ticket(db, w.customer_id))
    assert len(rows(db, SurveyInvitation)) == 1

    # a second solved ticket within the cooldown: not asked again
    solve(db, make_ticket(db, w.customer_id))
    assert len(rows(db, SurveyInvitation)) == 1 and surveys.SKIPS["cooldown"] == 1
    assert len(rows(db, Job, Job.kind == mail.MAIL_SEND)) == 1


def test_a_ticket_without_a_known_customer_sends_nothing(db):
    world(db)
    solve(db, make_ticket(db, None, requester_email="someone@example.com"))
    assert rows(db, SurveyInvitation) == [] and surveys.SKIPS["no_customer"] == 1


def test_the_requester_address_is_used_when_the_customer_has_none(db):
    w = world(db)
    nomail = seed_customer(db, w.owner_id, w.other_team_id, first_name="No", last_name="Mail")
    solve(db, make_ticket(db, nomail, requester_email="buyer@example.com"))
    (inv,) = rows(db, SurveyInvitation)
    assert (inv.customer_id, inv.email) == (nomail, "buyer@example.com")
    # an address no mail can go to is a skip, and leaves nothing behind
    other = seed_customer(db, first_name="Bad", last_name="Address")
    solve(db, make_ticket(db, other, requester_email="two@example.com, three@example.com"))
    assert len(rows(db, SurveyInvitation)) == 1 and surveys.SKIPS["bad_email"] == 1
    assert len(rows(db, Job, Job.kind == mail.MAIL_SEND)) == 1


# --- single-use links ---------------------------------------------------------------------------

def test_answer_once_then_refused(db):
    w = world(db)
    tid = make_ticket(db, w.customer_id, team_id=w.team_id, assignee_id=w.agent_id)
    inv_id, token = invite(db, w.customer_id, "csat", team_id=w.team_id, agent_id=w.agent_id,
                           ticket_id=tid)
    r = answer(db, token, "4", "  Quick and friendly  ")
    assert (r.kind, r.score, r.comment, r.customer_id) == ("csat", 4, "Quick and friendly",
                                                         w.customer_id)
    assert (r.ticket_id, r.team_id, r.agent_id, r.follow_up_activity_id) == (
        tid, w.team_id, w.agent_id, None)
    (inv,) = rows(db, SurveyInvitation)
    assert inv.used_at is not None

    with pytest.raises(surveys.LinkUsed) as used:
        answer(db, token, 5)
    assert used.value.status == 409
    assert len(rows(db, SurveyResponse)) == 1

    # on the customer's timeline, and announced
    (i,) = rows(db, Interaction, Interaction.source == "service.survey")
    assert (i.customer_id, i.channel, i.direction, i.department) == (
        w.customer_id, "web", "inbound", "service")
    assert "CSAT score: 4 of 5" in i.body and "Quick and friendly" in i.body
    (ev,) = rows(db, OutboxEvent, OutboxEvent.type == "survey.answered")
    assert ev.payload == {"response_id": r.id}


@pytest.mark.parametrize("token", ["x" * 43, "short", "a/b/../../etc", "Z" * 300, ""])
def test_forged_or_malformed_links_are_not_valid(db, token):
    w = world(db)
    invite(db, w.customer_id)
    with pytest.raises(surveys.LinkInvalid) as bad:
        answer(db, token, 3)
    assert bad.value.status == 422 and bad.value.detail == "This survey link is not valid."
    assert rows(db, SurveyResponse) == []


def test_a_token_one_character_off_is_refused(db):
    w = world(db)
    _, token = invite(db, w.customer_id)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(surveys.LinkInvalid):
        answer(db, forged, 3)


def test_expired_link(db):
    w = world(db)
    _, token = invite(db, w.customer_id, now=NOW - timedelta(days=15))
    with pytest.raises(surveys.LinkExpired) as gone:
        answer(db, token, 5, now=NOW)
    assert gone.value.status == 410
    # one second before the end it still works
    _, token2 = invite(db, seed_customer(db, first_name="Bo"), now=NOW - timedelta(days=14))
    assert answer(db, token2, 5, now=NOW - timedelta(seconds=1)).score == 5


@pytest.mark.parametrize(("kind", "score"), [("nps", 11), ("nps", -1), ("csat", 0),
                                              ("csat", 6), ("csat", "five"), ("csat", True),
                                              ("nps", None), ("nps", 3.5), ("nps", "²"),
                                              ("csat", "-1"), ("nps", "٣")])
def test_scores_outside_the_scale_are_refused_and_keep_the_link(db, kind, score):
    w = world(db)
    _, token = invite(db, w.customer_id, kind)
    with pytest.raises(surveys.ValidationProblem) as bad:
        answer(db, token, score)
    assert bad.value.field == "score"
    assert rows(db, SurveyInvitation)[0].used_at is None  # still answerable


def test_comment_size_limit(db):
    w = world(db)
    _, token = invite(db, w.customer_id, "nps")
    with pytest.raises(surveys.ValidationProblem) as bad:
        answer(db, token, 9, "x" * 2001)
    assert bad.value.field == "comment"
    assert answer(db, token, 9, "x" * 2000).comment == "x" * 2000


def test_claim_decides_even_when_the_loaded_invitation_is_stale(db):
    """The row count of the conditional UPDATE decides, not what this transaction read."""
    w = world(db)
    inv_id, token = invite(db, w.customer_id)
    with session_scope(db) as s:
        inv = surveys.check_link(s, token)
        assert inv.used_at is None
        # a competing answer commits between our read and our write
        s.execute(update(SurveyInvitation).where(SurveyInvitation.id == inv_id)
                  .values(used_at=NOW).execution_options(synchronize_session=False))
        assert inv.used_at is None  # what we read is stale
        with pytest.raises(surveys.LinkUsed):
            surveys._claim(s, inv, NOW + timedelta(seconds=1))


def test_concurrent_answers_record_exactly_one(db):
    w = world(db)
    _, token = invite(db, w.customer_id, "nps")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def go(score: int) -> None:
        barrier.wait()
        try:
            answer(db, token, score)
            outcomes.append("ok")
        except surveys.LinkUsed:
            outcomes.append("used")

    threads = [threading.Thread(target=go, args=(n,)) for n in (3, 5, 8, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "used", "used", "used"]
    assert len(rows(db, SurveyResponse)) == 1
    assert len(rows(db, Interaction, Interaction.source == "service.survey")) == 1


# --- detractors ---------------------------------------------------------------------------------

def test_detractor_opens_a_task_for_the_customer_owner(db):
    w = world(db)
    tid = make_ticket(db, w.customer_id, team_id=w.team_id, assignee_id=w.agent_id)
    _, token = invite(db, w.customer_id, "nps", team_id=w.team_id, ticket_id=tid)
    r = answer(db, token, 6, "Too slow", now=NOW)
    assert r.follow_up_activity_id is not None
    (task,) = rows(db, Activity)
    assert (task.id, task.kind, task.status, task.customer_id, task.owner_id) == (
        r.follow_up_activity_id, "task", "open", w.customer_id, w.owner_id)
    assert task.due_at == NOW + timedelta(days=1)  # Tuesday → Wednesday
    assert "NPS 6" in task.subject and "Too slow" in task.body and f"T-{tid}" in task.body
    (n,) = rows(db, Notification)
    assert n.user_id == w.owner_id and n.kind == "survey_detractor"


def test_promoter_and_passive_open_no_task(db):
    w = world(db)
    for score in (9, 7):
        _, token = invite(db, seed_customer(db, w.owner_id, first_name=f"P{score}",
                                            emails=[{"email": f"p{score}@example.com"}]), "nps")
        assert answer(db, token, score).follow_up_activity_id is None
    _, token = invite(db, w.customer_id, "csat")
    assert answer(db, token, 3).follow_up_activity_id is None
    assert rows(db, Activity) == []


def test_follow_up_falls_back_to_account_owner_then_team_manager(db):
    w = world(db)
    with session_scope(db) as s:
        acct_owner = make_user(s, "sales", "acct@example.com", w.other_team_id)
        gone = make_user(s, "sales", "gone@example.com", w.other_team_id, active=False)
        acct = Account(name="Acme", name_key="acme", owner_id=acct_owner)
        s.add(acct)
        s.flush()
        acct_id = acct.id
    no_owner = seed_customer(db, first_name="Acme", last_name="Buyer", account_id=acct_id)
    _, token = invite(db, no_owner, "csat", team_id=w.team_id)
    r = answer(db, token, 1, now=NOW)
    assert rows(db, Activity, Activity.id == r.follow_up_activity_id)[0].owner_id == acct_owner

    # an inactive owner and no account: the manager of the ticket's team
    orphan = seed_customer(db, gone, w.other_team_id, first_name="Orphan")
    _, token = invite(db, orphan, "csat", team_id=w.team_id)
    r = answer(db, token, 2, now=NOW)
    assert rows(db, Activity, Activity.id == r.follow_up_activity_id)[0].owner_id == w.manager_id

    # nobody at all: the answer is kept, no task
    lone = seed_customer(db, first_name="Lone")
    _, token = invite(db, lone, "csat")
    assert answer(db, token, 1).follow_up_activity_id is None


def test_follow_up_due_skips_the_weekend(db):
    w = world(db)
    _, token = invite(db, w.customer_id, "csat", team_id=w.team_id)
    friday = datetime(2030, 3, 15, 16, 0, tzinfo=UTC)
    r = answer(db, token, 1, now=friday)
    (task,) = rows(db, Activity, Activity.id == r.follow_up_activity_id)
    assert task.due_at == datetime(2030, 3, 18, 16, 0, tzinfo=UTC)  # Monday


# --- results ------------------------------------------------------------------------------------

def seed_results(db: str, w: World) -> dict[str, int]:
    """NPS answers by hand: team EU (agent): Jan 10, 9, 6, 3; Feb 8, 10; team US: Feb 0, 9;
    one more invitation per team never answered; one answer in March (out of range)."""
    with session_scope(db) as s:
        agent2 = make_user(s, "support", "agent2@example.com", w.other_team_id)
    plan = [(w.team_id, w.agent_id, datetime(2030, 1, 5, tzinfo=UTC), 10),
            (w.team_id, w.agent_id, datetime(2030, 1, 6, tzinfo=UTC), 9),
            (w.team_id, w.agent_id, datetime(2030, 1, 20, tzinfo=UTC), 6),
            (w.team_id, w.agent_id, datetime(2030, 1, 31, 23, 58, tzinfo=UTC), 3),
            (w.team_id, w.agent_id, datetime(2030, 2, 1, tzinfo=UTC), 8),
            (w.team_id, w.agent_id, datetime(2030, 2, 10, tzinfo=UTC), 10),
            (w.other_team_id, agent2, datetime(2030, 2, 11, tzinfo=UTC), 0),
            (w.other_team_id, agent2, datetime(2030, 2, 12, tzinfo=UTC), 9),
            (w.team_id, w.agent_id, datetime(2030, 2, 20, tzinfo=UTC), None),
            (w.other_team_id, agent2, datetime(2030, 2, 21, tzinfo=UTC), None),
            (w.team_id, w.agent_id, datetime(2030, 3, 2, tzinfo=UTC), 10)]
    for n, (team, agent, at, score) in enumerate(plan):
        cid = seed_customer(db, first_name=f"R{n}")
        _, token = invite(db, cid, "nps", team_id=team, agent_id=agent, now=at)
        if score is not None:
            answer(db, token, score, now=at + timedelta(minutes=1))
    return {"agent2": agent2}


def test_results_per_team_agent_and_month(db, make_actor):
    w = world(db)
    ids = seed_results(db, w)
    start, end = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 3, 1, tzinfo=UTC)
    with session_scope(db) as s:
        by_team = surveys.results(s, SYSTEM, "nps", start, end, "team")
        by_agent = surveys.results(s, SYSTEM, "nps", start, end, "agent")
        by_month = surveys.results(s, SYSTEM, "nps", start, end, "period")
    teams = {r.label: r for r in by_team.rows}
    eu, us = teams["Support EU"], teams["Support US"]
    # EU: 10 9 6 3 8 10 → promoters 3, passives 1, detractors 2 of 6 → NPS 16.7; 6 of 7 answered
    assert (eu.promoters, eu.passives, eu.detractors, eu.responses) == (3, 1, 2, 6)
    assert eu.nps == 16.7 and (eu.sent, eu.answered, eu.response_rate) == (7, 6, 85.7)
    assert eu.mean == 7.67
    # US: 0 9 → NPS 0; 2 of 3 answered
    assert (us.promoters, us.detractors, us.nps, us.sent, us.answered) == (1, 1, 0.0, 3, 2)
    total = by_team.total
    assert (total.responses, total.promoters, total.detractors, total.nps) == (8, 4, 3, 12.5)
    assert (total.sent, total.answered, total.response_rate) == (10, 8, 80.0)

    agents = {r.key: r for r in by_agent.rows}
    assert agents[str(w.agent_id)].nps == 16.7 and agents[str(ids["agent2"])].nps == 0.0
    assert agents[str(w.agent_id)].label == "Agent"

    assert by_month.group_by == "month"
    months = {r.key: r for r in by_month.rows}
    # Jan: 10 9 6 3 → 50 − 50 = 0; Feb: 8 10 0 9 → 50 − 25 = 25
    assert set(months) == {"2030-01", "2030-02"}
    assert (months["2030-01"].nps, months["2030-02"].nps) == (0.0, 25.0)
    assert (months["2030-01"].sent, months["2030-02"].sent) == (4, 6)


def test_csat_results_and_scope(db, make_actor):
    w = world(db)
    for n, score in enumerate((5, 4, 2, 1, 3)):
        cid = seed_customer(db, first_name=f"C{n}")
        _, token = invite(db, cid, "csat", team_id=w.team_id if n < 3 else w.other_team_id,
                          agent_id=w.agent_id if n < 3 else None, now=NOW)
        answer(db, token, score, now=NOW)
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=1)
    with session_scope(db) as s:
        res = surveys.results(s, SYSTEM, "csat", start, end, "week")
        (week,) = res.rows
        assert week.key == "2030-W11"
        # 5 4 2 1 3: satisfied 2 of 5 = 40 %, mean 3.0
        assert (week.satisfied, week.responses, week.csat, week.mean) == (2, 5, 40.0, 3.0)
        # a support agent with team scope sees their team's three answers only
        agent = Principal(user_id=w.agent_id, email="agent@example.com", role="support",
                          team_id=w.team_id)
        mine = surveys.results(s, agent, "csat", start, end, "team").total
        assert (mine.responses, mine.satisfied, mine.csat) == (3, 2, 66.7)
        marketing = Principal(user_id=None, email="x", role="marketing", team_id=None)
        assert surveys.results(s, marketing, "csat", start, end, "team").total.responses == 5
        # a token without the surveys scope reads nothing
        token = Principal(user_id=w.agent_id, email="a", role="support", team_id=w.team_id,
                          scopes=frozenset({"customers:read"}), via="token")
        with pytest.raises(surveys.Forbidden):
            surveys.results(s, token, "csat", start, end, "team")
    with session_scope(db) as s, pytest.raises(surveys.ValidationProblem) as bad:
        surveys.results(s, SYSTEM, "csat", start, end, "bogus")
    assert bad.value.field == "group_by"


# --- schedules ----------------------------------------------------------------------------------

def test_schedule_runs_once_per_period(db, monkeypatch):
    monkeypatch.setenv("ACCORD_SURVEY_COOLDOWN_DAYS", "0")
    reset_settings()
    w = world(db)
    loyal = seed_customer(db, first_name="Loyal", lifecycle_stage="loyalty",
                          emails=[{"email": "loyal@example.com"}])
    seed_customer(db, first_name="Prospect", lifecycle_stage="awareness",
                  emails=[{"email": "prospect@example.com"}])
    silent = seed_customer(db, first_name="Silent", lifecycle_stage="loyalty")
    with session_scope(db) as s:
        sched = surveys.create_schedule(s, SYSTEM, ScheduleCreate(
            name="Quarterly NPS", kind="nps", every_days=90,
            audience={"lifecycle_stage": ["loyalty", "purchase"]}, next_run_at=NOW))
        sid = sched.id
    with session_scope(db) as s:
        assert surveys.run_due_schedules(s, NOW - timedelta(minutes=1)) == []
    with session_scope(db) as s:
        (report,) = surveys.run_due_schedules(s, NOW)
        assert report.sent == 1 and report.skipped["no_email"] == 1
    invs = rows(db, SurveyInvitation)
    assert [(i.customer_id, i.kind, i.trigger, i.schedule_id) for i in invs] == [
        (loyal, "nps", "schedule", sid)]
    (row,) = rows(db, SurveySchedule)
    assert (row.last_run_at, row.next_run_at, row.version) == (NOW, NOW + timedelta(days=90), 1)

    # the same period again (another worker, a retried job): nothing
    with session_scope(db) as s:
        assert surveys.run_due_schedules(s, NOW + timedelta(days=30)) == []
        sched = s.get(SurveySchedule, sid)
        assert surveys.run_schedule(s, sched, NOW + timedelta(days=30)) is None
    assert len(rows(db, SurveyInvitation)) == 1

    # even when forced to run again within the period, nobody is asked twice in it
    with session_scope(db) as s:
        s.execute(update(SurveySchedule).where(SurveySchedule.id == sid)
                  .values(next_run_at=NOW + timedelta(days=1)))
    with session_scope(db) as s:
        (again,) = surveys.run_due_schedules(s, NOW + timedelta(days=1))
        assert again.sent == 0 and again.skipped["already_sent"] == 1
    # the next period: asked again
    with session_scope(db) as s:
        (later,) = surveys.run_due_schedules(s, NOW + timedelta(days=91))
        assert later.sent == 1
    assert [i.customer_id for i in rows(db, SurveyInvitation)] == [loyal, loyal]
    assert silent not in [i.customer_id for i in rows(db, SurveyInvitation)]
    assert w.customer_id not in [i.customer_id for i in rows(db, SurveyInvitation)]


def test_inactive_schedule_does_not_run_and_cooldown_applies(db):
    w = world(db)
    with session_scope(db) as s:
        surveys.create_schedule(s, SYSTEM, ScheduleCreate(name="Off", active=False,
                                                          next_run_at=NOW))
        surveys.create_schedule(s, SYSTEM, ScheduleCreate(name="All", next_run_at=NOW))
    invite(db, w.customer_id, now=NOW - timedelta(days=3))  # surveyed 3 days ago
    with session_scope(db) as s:
        (report,) = surveys.run_due_schedules(s, NOW)
        assert report.sent == 0 and report.skipped["cooldown"] == 1
