"""NPS and CSAT surveys: invitations with signed single-use links, public answers, detractor
follow-ups, results per team, agent and period, and recurring schedules.

A link is `<ACCORD_BASE_URL>/s/<token>` with `token = secrets.token_urlsafe(32)` (256 random
bits); only its SHA-256 is stored, so a database leak gives no working link. A link is refused
with one of three answers that never say whose survey it is: not valid (422: malformed or
unknown, i.e. forged), already answered (409), expired (410, `ACCORD_SURVEY_LINK_DAYS`).
Answering is single-use even when two answers race: the invitation is claimed by a conditional
UPDATE (`used_at IS NULL AND expires_at > now`) whose row count decides, and the response's
unique `invitation_id` backs it up.

Who is asked: the customer's primary e-mail, unless the customer has none, withdrew consent for
surveys (the newest `consent_records` row for purpose `surveys` on e-mail, or on no particular
channel, says `granted = false`), or was invited in the last `ACCORD_SURVEY_COOLDOWN_DAYS`.
Each skip is logged and counted (`SKIPS`) with its reason.

An answer belongs to the customer: an Interaction on the timeline (department service, channel
web) and the outbox event `survey.answered` {response_id}. A detractor (NPS 0-6, CSAT 1-2) opens
a task for the account owner: the customer's owner, else the account's owner, else the manager
of the ticket's team. The task is created through `accord.sales.activities` with a principal
carrying that user's identity (an activity's owner is whoever creates it) and a system label;
the survey's own audit entry names the system as the author of the follow-up.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from accord.access import audit
from accord.access.policy import Principal, record_in_scope, scope_clause, scope_for
from accord.access.service import require
from accord.core import mail
from accord.core.clock import as_utc, utcnow
from accord.core.errors import Conflict, Forbidden, NotFound, Problem, ValidationProblem
from accord.core.events import emit
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate
from accord.core.ratelimit import SlidingWindow, throttle
from accord.core.settings import get_settings
from accord.core.validation import whole_number
from accord.models import Account, ConsentRecord, Customer, CustomerEmail, Team, User
from accord.models.service import (
    BusinessCalendar,
    SurveyInvitation,
    SurveyResponse,
    SurveySchedule,
    Ticket,
)
from accord.service.surveys_schemas import COMMENT_MAX, ScheduleCreate, ScheduleUpdate

log = logging.getLogger("accord.service.surveys")

RESOURCE = "surveys"
SCALES = {"nps": (0, 10), "csat": (1, 5)}
CONSENT_PURPOSE = "surveys"
SCHEDULE_BATCH = 500
# Public link hits (page views and answers) per client address: plenty for a person, few
# enough to make trying links pointless on top of their 256 random bits.
HITS_PER_CLIENT = SlidingWindow(limit=30, window_seconds=600)
# Tokens are token_urlsafe(32): 43 characters; anything far from that is refused unread.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,100}")
# Skip reasons counted since the process started (logged as they happen).
SKIPS: Counter[str] = Counter()
SKIP_REASONS = ("no_customer", "no_email", "bad_email", "opted_out", "cooldown",
                "already_sent", "not_solved", "off")
_IDS = frozenset({"eq", "in", "isnull"})
_CMP = frozenset({"lt", "lte", "gt", "gte"})


def survey_principal(label: str = "system:surveys") -> Principal:
    """Who writes what a survey causes (a customer's answer, a scheduled send): audited as the
    system, never a user."""
    return Principal(user_id=None, email=label, role="admin", via="system",
                     extra={"on_behalf_of": RESOURCE})


# --- refusals ----------------------------------------------------------------------------------

class LinkInvalid(ValidationProblem):
    """Malformed, unknown or forged: the same answer for all three (no existence oracle)."""

    title = "Invalid survey link"

    def __init__(self) -> None:
        super().__init__("This survey link is not valid.", field="token")


class LinkUsed(Conflict):
    title = "Already answered"

    def __init__(self) -> None:
        super().__init__("This survey has already been answered. Thank you!", field="token")


def rate_limit(client: str) -> None:
    """Count one public hit for `client`; 429 with Retry-After past the limit (the shared
    `ratelimit.throttle`, so every public endpoint refuses alike)."""
    throttle(HITS_PER_CLIENT, client)


class LinkExpired(Problem):
    status = 410
    title = "Survey link expired"

    def __init__(self) -> None:
        super().__init__("This survey link has expired.", field="token")


# --- links -------------------------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh link secret and the hash that is stored instead of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def link_for(token: str) -> str:
    """From configuration (`ACCORD_BASE_URL`), never from a request's Host header."""
    return f"{get_settings().base_url.rstrip('/')}/s/{token}"


def find_invitation(session: Session, token: str) -> SurveyInvitation:
    """The invitation a token belongs to, whatever its state; `LinkInvalid` otherwise."""
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise LinkInvalid()
    digest = hash_token(token)
    inv = session.scalar(select(SurveyInvitation).where(SurveyInvitation.token_hash == digest))
    # the index finds the row; the comparison of what was found is constant-time all the same
    if inv is None or not hmac.compare_digest(inv.token_hash.encode(), digest.encode()):
        raise LinkInvalid()
    return inv


def check_link(session: Session, token: str, now: datetime | None = None) -> SurveyInvitation:
    """An invitation that may still be answered, else 422 / 409 / 410."""
    now = now or utcnow()
    inv = find_invitation(session, token)
    if inv.used_at is not None:
        raise LinkUsed()
    if as_utc(inv.expires_at) <= now:
        raise LinkExpired()
    return inv


# --- who may be asked --------------------------------------------------------------------------

def survivor(session: Session, customer_id: int | None) -> Customer | None:
    """The golden profile now holding this customer (merges are followed, a few hops at most)."""
    customer = session.get(Customer, customer_id) if customer_id else None
    for _ in range(10):
        if customer is None or customer.merged_into_id is None:
            return customer
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def primary_email(session: Session, customer_id: int) -> str | None:
    return session.scalar(
        select(CustomerEmail.email).where(CustomerEmail.customer_id == customer_id)
        .order_by(CustomerEmail.is_primary.desc(), CustomerEmail.id).limit(1))


def _opted_out_ids(session: Session, customer_ids: list[int]) -> set[int]:
    """Customers whose newest survey consent record (on e-mail or on no channel) withdraws it."""
    if not customer_ids:
        return set()
    rows = session.execute(
        select(ConsentRecord.customer_id, ConsentRecord.granted)
        .where(ConsentRecord.customer_id.in_(customer_ids),
               ConsentRecord.purpose == CONSENT_PURPOSE,
               or_(ConsentRecord.channel == "email", ConsentRecord.channel.is_(None)))
        .order_by(ConsentRecord.customer_id, ConsentRecord.recorded_at, ConsentRecord.id))
    latest: dict[int, bool] = {}
    for cid, granted in rows:
        latest[cid] = bool(granted)
    return {cid for cid, granted in latest.items() if not granted}


def _recently_invited_ids(session: Session, customer_ids: list[int], since: datetime) -> set[int]:
    if not customer_ids:
        return set()
    return set(session.scalars(
        select(SurveyInvitation.customer_id).distinct()
        .where(SurveyInvitation.customer_id.in_(customer_ids),
               SurveyInvitation.sent_at > since)))


def skip_reason(session: Session, customer: Customer | None, email: str | None,
                now: datetime) -> str | None:
    """Why this customer is not asked now (None: ask)."""
    if customer is None:
        return "no_customer"
    if not email:
        return "no_email"
    if _opted_out_ids(session, [customer.id]):
        return "opted_out"
    days = get_settings().survey_cooldown_days
    if days > 0 and _recently_invited_ids(session, [customer.id], now - timedelta(days=days)):
        return "cooldown"
    return None


def _skipped(reason: str, **context: Any) -> None:
    SKIPS[reason] += 1
    log.info("survey not sent (%s) %s", reason,
             " ".join(f"{k}={v}" for k, v in context.items() if v is not None))


# --- sending -----------------------------------------------------------------------------------

@dataclass
class SendOutcome:
    invitation: SurveyInvitation | None = None
    skipped: str | None = None


def _mail_text(kind: str, customer: Customer, link: str, expires: datetime,
               ticket: Ticket | None) -> tuple[str, str]:
    hello = f"Hello {customer.first_name}," if customer.first_name else "Hello,"
    if kind == "nps":
        subject = "How likely are you to recommend us?"
        ask = ("On a scale from 0 to 10, how likely are you to recommend us to a friend or "
               "colleague?")
    else:
        ref = f" ({ticket.reference})" if ticket is not None else ""
        subject = f"How did we do?{ref}"
        ask = (f"Your request{ref} was solved. How satisfied are you with the help you got? "
               "(1 to 5)")
    body = (f"{hello}\n\n{ask}\n\nAnswer here, it takes a minute:\n{link}\n\n"
            f"The link works once and until {expires:%Y-%m-%d}. "
            "If you would rather not receive surveys, reply to this e-mail and say so.\n")
    return subject, body


def create_invitation(session: Session, *, kind: str, trigger: str, customer: Customer,
                      email: str, ticket: Ticket | None = None, schedule_id: int | None = None,
                      team_id: int | None = None, agent_id: int | None = None,
                      now: datetime | None = None, actor: Principal | None = None
                      ) -> SurveyInvitation:
    """Mint a link, store its hash and queue the e-mail, in the caller's transaction."""
    if kind not in SCALES:
        raise ValidationProblem(f"unknown survey kind {kind!r}", field="kind")
    now = now or utcnow()
    token, digest = new_token()
    inv = SurveyInvitation(
        kind=kind, trigger=trigger, customer_id=customer.id,
        ticket_id=ticket.id if ticket is not None else None, schedule_id=schedule_id,
        team_id=team_id, agent_id=agent_id, email=email, token_hash=digest, sent_at=now,
        expires_at=now + timedelta(days=get_settings().survey_link_days))
    session.add(inv)
    session.flush()
    subject, body = _mail_text(kind, customer, link_for(token), inv.expires_at, ticket)
    mail.enqueue_mail(session, email, subject, body, tag=f"survey.{kind}",
                      dedupe_key=f"survey:{inv.id}")
    actor = actor or survey_principal()
    audit.record(session, actor, "create", "survey_invitations", inv.id,
                 ["kind", "trigger", "customer_id"],
                 {"customer_id": customer.id, "ticket_id": inv.ticket_id,
                  "schedule_id": schedule_id})
    emit(session, "survey.sent", "survey_invitation", inv.id,
         {"kind": kind, "trigger": trigger, "customer_id": customer.id,
          "ticket_id": inv.ticket_id, "schedule_id": schedule_id}, actor.user_id)
    return inv


def send_for_ticket(session: Session, ticket_id: int, now: datetime | None = None
                    ) -> SendOutcome:
    """The `ticket.solved` reaction: a survey (`ACCORD_SURVEY_TICKET_KIND`, CSAT by default)
    for the ticket's customer, attributed to the ticket's team and agent. A redelivered event,
    a ticket reopened meanwhile, or a customer who may not be asked sends nothing."""
    now = now or utcnow()
    kind = get_settings().survey_ticket_kind
    if kind == "off":
        return SendOutcome(skipped="off")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.status not in ("solved", "closed"):
        _skipped("not_solved", ticket_id=ticket_id)
        return SendOutcome(skipped="not_solved")
    if session.scalar(select(SurveyInvitation.id).where(
            SurveyInvitation.ticket_id == ticket.id,
            SurveyInvitation.trigger == "ticket_solved").limit(1)) is not None:
        _skipped("already_sent", ticket_id=ticket_id)
        return SendOutcome(skipped="already_sent")
    customer = survivor(session, ticket.customer_id)
    email = primary_email(session, customer.id) if customer is not None else None
    email = email or (ticket.requester_email if customer is not None else None)
    reason = skip_reason(session, customer, email, now)
    if reason is not None:
        _skipped(reason, ticket_id=ticket_id)
        return SendOutcome(skipped=reason)
    assert customer is not None and email is not None
    try:  # a requester address that cannot take mail is a skip, not a job failing five times
        with session.begin_nested():
            inv = create_invitation(session, kind=kind, trigger="ticket_solved",
                                    customer=customer, email=email, ticket=ticket,
                                    team_id=ticket.team_id, agent_id=ticket.assignee_id, now=now)
    except mail.InvalidMail:
        _skipped("bad_email", ticket_id=ticket_id)
        return SendOutcome(skipped="bad_email")
    return SendOutcome(invitation=inv)


def send_manual(session: Session, principal: Principal, customer_id: int, kind: str = "csat",
                ticket_id: int | None = None, now: datetime | None = None
                ) -> SurveyInvitation:
    """A staff member asks one customer they can read; a refusal names the reason."""
    from accord.customers import service as customers

    require(principal, RESOURCE, "create")
    now = now or utcnow()
    try:
        customer = customers.get_customer(session, principal, customer_id)
    except (NotFound, Forbidden):
        raise NotFound(f"customer {customer_id} does not exist", field="customer_id") from None
    ticket = None
    if ticket_id is not None:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.customer_id != customer.id or not record_in_scope(
                principal, scope_for(principal, "tickets", "read"), ticket.assignee_id,
                ticket.team_id):
            raise NotFound(f"ticket {ticket_id} does not exist for this customer",
                           field="ticket_id")
    email = primary_email(session, customer.id)
    reason = skip_reason(session, customer, email, now)
    if reason == "no_email":
        raise ValidationProblem("the customer has no e-mail address", field="customer_id")
    if reason == "opted_out":
        raise ValidationProblem("the customer has opted out of surveys", field="customer_id")
    if reason == "cooldown":
        raise Conflict(f"the customer was surveyed in the last "
                       f"{get_settings().survey_cooldown_days} days", field="customer_id")
    assert email is not None
    return create_invitation(
        session, kind=kind, trigger="manual", customer=customer, email=email, ticket=ticket,
        team_id=ticket.team_id if ticket else principal.team_id,
        agent_id=ticket.assignee_id if ticket else principal.user_id, now=now, actor=principal)


# --- schedules: the periodic relationship survey ----------------------------------------------

@dataclass
class RunReport:
    schedule_id: int
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _audience_clause(audience: dict[str, Any]) -> Any:
    clauses = [Customer.merged_into_id.is_(None)]
    if audience.get("lifecycle_stage"):
        clauses.append(Customer.lifecycle_stage.in_(audience["lifecycle_stage"]))
    if audience.get("value_tier"):
        clauses.append(Customer.value_tier.in_(audience["value_tier"]))
    return and_(*clauses)


def _claim_run(session: Session, schedule: SurveySchedule, now: datetime) -> bool:
    """Move the schedule to its next run before sending (one statement: a second worker running
    the same schedule finds nothing to claim). Bookkeeping: no version bump."""
    t = SurveySchedule.__table__
    nxt = now + timedelta(days=schedule.every_days)
    due = or_(t.c.next_run_at.is_(None), t.c.next_run_at <= now)
    done = session.execute(update(t).where(t.c.id == schedule.id, t.c.active.is_(True), due)
                           .values(last_run_at=now, next_run_at=nxt,
                                   updated_at=t.c.updated_at)).rowcount
    if done != 1:
        return False
    set_committed_value(schedule, "last_run_at", now)
    set_committed_value(schedule, "next_run_at", nxt)
    return True


def run_schedule(session: Session, schedule: SurveySchedule, now: datetime | None = None
                 ) -> RunReport | None:
    """One run of a due schedule over its whole audience, in batches of `SCHEDULE_BATCH`
    customers (keyset on id). Returns None when it was not due (or another worker ran it)."""
    now = now or utcnow()
    if not _claim_run(session, schedule, now):
        return None
    report = RunReport(schedule.id)
    days = get_settings().survey_cooldown_days
    # a customer invited by this schedule within one period is never asked twice in it, even
    # with no cooldown configured
    since = now - timedelta(days=max(days, 0))
    period_start = now - timedelta(days=schedule.every_days)
    principal = survey_principal(f"system:surveys:schedule:{schedule.id}")
    last_id = 0
    where = _audience_clause(schedule.audience or {})
    while True:
        batch = list(session.execute(
            select(Customer).where(where, Customer.id > last_id)
            .order_by(Customer.id).limit(SCHEDULE_BATCH)).scalars())
        if not batch:
            break
        last_id = batch[-1].id
        ids = [c.id for c in batch]
        emails: dict[int, str] = {}
        for cid, email in session.execute(
                select(CustomerEmail.customer_id, CustomerEmail.email)
                .where(CustomerEmail.customer_id.in_(ids))
                .order_by(CustomerEmail.customer_id, CustomerEmail.is_primary.desc(),
                          CustomerEmail.id)):
            emails.setdefault(cid, email)
        opted_out = _opted_out_ids(session, ids)
        recent = _recently_invited_ids(session, ids, since) if days > 0 else set()
        this_period = set(session.scalars(
            select(SurveyInvitation.customer_id).distinct()
            .where(SurveyInvitation.customer_id.in_(ids),
                   SurveyInvitation.schedule_id == schedule.id,
                   SurveyInvitation.sent_at > period_start)))
        for c in batch:
            reason = ("no_email" if c.id not in emails else
                      "opted_out" if c.id in opted_out else
                      "already_sent" if c.id in this_period else
                      "cooldown" if c.id in recent else None)
            if reason is not None:
                report.skipped[reason] += 1
                SKIPS[reason] += 1
                continue
            create_invitation(session, kind=schedule.kind, trigger="schedule", customer=c,
                              email=emails[c.id], schedule_id=schedule.id, now=now,
                              actor=principal)
            report.sent += 1
        session.flush()
    log.info("survey schedule %s: %s sent, skipped %s", schedule.id, report.sent,
             dict(report.skipped))
    return report


def run_due_schedules(session: Session, now: datetime | None = None) -> list[RunReport]:
    now = now or utcnow()
    due = list(session.execute(
        select(SurveySchedule).where(SurveySchedule.active.is_(True),
                                     or_(SurveySchedule.next_run_at.is_(None),
                                         SurveySchedule.next_run_at <= now))
        .order_by(SurveySchedule.id)).scalars())
    reports = []
    for schedule in due:
        report = run_schedule(session, schedule, now)
        if report is not None:
            reports.append(report)
    return reports


def list_schedules(session: Session, principal: Principal) -> list[SurveySchedule]:
    require(principal, RESOURCE, "read")
    return list(session.scalars(select(SurveySchedule).order_by(SurveySchedule.name)))


def get_schedule(session: Session, principal: Principal, schedule_id: int,
                 action: str = "read") -> SurveySchedule:
    require(principal, RESOURCE, action)
    row = session.get(SurveySchedule, schedule_id)
    if row is None:
        raise NotFound(f"survey schedule {schedule_id} does not exist")
    return row


def _unique_name(session: Session, name: str, own_id: int | None = None) -> None:
    found = session.scalar(select(SurveySchedule.id).where(SurveySchedule.name == name))
    if found is not None and found != own_id:
        raise Conflict(f"a survey schedule named {name!r} already exists", field="name")


def create_schedule(session: Session, principal: Principal, data: ScheduleCreate
                    ) -> SurveySchedule:
    require(principal, RESOURCE, "create")
    _unique_name(session, data.name)
    row = SurveySchedule(name=data.name, kind=data.kind, every_days=data.every_days,
                         audience=data.audience, active=data.active,
                         next_run_at=as_utc(data.next_run_at) if data.next_run_at else utcnow())
    session.add(row)
    session.flush()
    audit.record(session, principal, "create", "survey_schedules", row.id,
                 data.model_dump(exclude_unset=True).keys())
    emit(session, "survey_schedule.created", "survey_schedule", row.id, {"kind": row.kind},
         principal.user_id)
    return row


def update_schedule(session: Session, principal: Principal, row: SurveySchedule,
                    data: ScheduleUpdate) -> SurveySchedule:
    require(principal, RESOURCE, "update")
    changes = data.model_dump(exclude_unset=True)
    if changes.get("next_run_at") is not None:
        changes["next_run_at"] = as_utc(changes["next_run_at"])
    if "name" in changes:
        _unique_name(session, changes["name"], row.id)
    changed = [k for k, v in changes.items() if getattr(row, k) != v]
    if not changed:
        return row
    for key in changed:
        setattr(row, key, changes[key])
    session.flush()
    audit.record(session, principal, "update", "survey_schedules", row.id, changed)
    emit(session, "survey_schedule.updated", "survey_schedule", row.id,
         {"fields": sorted(changed)}, principal.user_id)
    return row


def delete_schedule(session: Session, principal: Principal, row: SurveySchedule) -> None:
    """Its invitations and answers stay (they keep counting in the results)."""
    require(principal, RESOURCE, "delete")
    audit.record(session, principal, "delete", "survey_schedules", row.id, (), {"name": row.name})
    session.delete(row)
    session.flush()


# --- answering ---------------------------------------------------------------------------------

def is_detractor(kind: str, score: int) -> bool:
    return score <= 6 if kind == "nps" else score <= 2


def parse_score(kind: str, raw: Any) -> int:
    lo, hi = SCALES[kind]
    if isinstance(raw, bool):
        raw = None
    if isinstance(raw, str):
        raw = whole_number(raw, high=999)
    if not isinstance(raw, int) or not lo <= raw <= hi:
        raise ValidationProblem(f"choose a score from {lo} to {hi}", field="score")
    return raw


def parse_comment(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationProblem("the comment must be text", field="comment")
    text = raw.strip()
    if "\x00" in text:
        raise ValidationProblem("the comment may not contain NUL characters", field="comment")
    if len(text) > COMMENT_MAX:
        raise ValidationProblem(f"the comment is longer than {COMMENT_MAX} characters",
                                field="comment")
    return text or None


def _claim(session: Session, inv: SurveyInvitation, now: datetime) -> None:
    """The single-use guarantee: only the statement that flips `used_at` may answer."""
    t = SurveyInvitation.__table__
    done = session.execute(update(t).where(t.c.id == inv.id, t.c.used_at.is_(None),
                                           t.c.expires_at > now)
                           .values(used_at=now)).rowcount
    if done != 1:
        session.refresh(inv)
        if inv.used_at is not None:
            raise LinkUsed()
        raise LinkExpired()
    set_committed_value(inv, "used_at", now)


def answer(session: Session, token: str, score: Any, comment: Any = None,
           now: datetime | None = None) -> SurveyResponse:
    """A customer's answer through their link, in the caller's transaction (the page commits)."""
    now = now or utcnow()
    inv = check_link(session, token, now)
    value = parse_score(inv.kind, score)
    text = parse_comment(comment)
    _claim(session, inv, now)
    customer = survivor(session, inv.customer_id)
    response = SurveyResponse(
        invitation_id=inv.id, kind=inv.kind, score=value, comment=text,
        customer_id=customer.id if customer is not None else None, ticket_id=inv.ticket_id,
        team_id=inv.team_id, agent_id=inv.agent_id, responded_at=now)
    session.add(response)
    session.flush()
    principal = survey_principal("system:surveys:answer")
    audit.record(session, principal, "create", "survey_responses", response.id,
                 ["score", "comment"] if text else ["score"],
                 {"invitation_id": inv.id, "customer_id": response.customer_id})
    if customer is not None:
        _timeline(session, principal, customer, response)
        if is_detractor(response.kind, value):
            follow_up(session, response, customer, now)
    emit(session, "survey.answered", "survey_response", response.id,
         {"response_id": response.id}, None)
    return response


def _timeline(session: Session, principal: Principal, customer: Customer,
              response: SurveyResponse) -> None:
    from accord.interactions import service as interactions
    from accord.interactions.schemas import InteractionFields

    hi = SCALES[response.kind][1]
    label = response.kind.upper()
    body = f"{label} score: {response.score} of {hi}"
    if response.comment:
        body += f"\n\nComment: {response.comment}"
    interactions.create_interaction(session, principal, customer.id, InteractionFields(
        channel="web", direction="inbound", department="service",
        occurred_at=response.responded_at, subject=f"{label} survey answered: {response.score}",
        body=body, source="service.survey",
        metadata={"survey_response_id": response.id, "kind": response.kind,
                  "score": response.score, "ticket_id": response.ticket_id}))


# --- detractor follow-up -----------------------------------------------------------------------

def account_owner(session: Session, customer: Customer, team_id: int | None) -> User | None:
    """The customer's owner, else the account's owner, else the manager of the team that served
    the customer (the first active manager of the team by id). Inactive users are passed over."""
    candidates: list[int | None] = [customer.owner_id]
    if customer.account_id is not None:
        candidates.append(session.scalar(select(Account.owner_id)
                                         .where(Account.id == customer.account_id)))
    for uid in candidates:
        user = session.get(User, uid) if uid else None
        if user is not None and user.is_active:
            return user
    if team_id is None:
        return None
    return session.scalar(select(User).where(User.team_id == team_id, User.role == "manager",
                                             User.is_active.is_(True))
                          .order_by(User.id).limit(1))


def next_business_day(session: Session, team_id: int | None, now: datetime) -> datetime:
    """The same time on the next working day of the team's calendar (or the default calendar;
    without one, Monday to Friday)."""
    from accord.service.calendar import BusinessCalendar as Calendar

    row = None
    if team_id is not None:
        row = session.scalar(select(BusinessCalendar).where(BusinessCalendar.team_id == team_id))
    row = row or session.scalar(select(BusinessCalendar)
                                .where(BusinessCalendar.team_id.is_(None)).limit(1))
    cal: Calendar | None = None
    if row is not None:
        try:
            cal = Calendar.from_spec({"timezone": row.timezone, "hours": row.hours,
                                      "holidays": row.holidays})
        except ValueError:
            cal = None
    day = now
    for _ in range(31):
        day = day + timedelta(days=1)
        if cal is None:
            if day.weekday() < 5:
                return day
        elif cal.weekly[day.weekday()] and day.date() not in cal.holidays:
            return day
    return now + timedelta(days=1)


def follow_up(session: Session, response: SurveyResponse, customer: Customer,
              now: datetime) -> int | None:
    """Open a task for the account owner about a detractor's answer; returns its id."""
    from accord.sales import activities, notifications
    from accord.sales.activities_schemas import ActivityCreate

    owner = account_owner(session, customer, response.team_id)
    if owner is None:
        log.warning("detractor survey response %s: nobody to follow it up", response.id)
        return None
    # the task belongs to the owner: activities are owned by their creator
    acting = Principal(user_id=owner.id, email="system:surveys", role="admin",
                       team_id=owner.team_id, via="system", extra={"on_behalf_of": RESOURCE})
    hi = SCALES[response.kind][1]
    body = f"{response.kind.upper()} {response.score} of {hi}."
    if response.ticket_id:
        body += f" Ticket T-{response.ticket_id}."
    if response.comment:
        body += f"\n\nComment: {response.comment}"
    task = activities.create_activity(session, acting, ActivityCreate(
        kind="task", subject=f"Follow up a detractor ({response.kind.upper()} "
                             f"{response.score}): {customer.display_name}"[:300],
        body=body[:50_000], due_at=next_business_day(session, response.team_id, now),
        customer_id=customer.id))
    t = SurveyResponse.__table__
    session.execute(update(t).where(t.c.id == response.id)
                    .values(follow_up_activity_id=task.id))
    set_committed_value(response, "follow_up_activity_id", task.id)
    audit.record(session, survey_principal(), "follow_up", "survey_responses", response.id,
                 ["follow_up_activity_id"], {"activity_id": task.id, "owner_id": owner.id})
    notifications.notify(session, owner.id, "survey_detractor",
                         f"Unhappy customer: {customer.display_name}"[:300], body[:2000],
                         f"/customers/{customer.id}", dedupe_key=f"survey-detractor:{response.id}")
    return task.id


# --- reads -------------------------------------------------------------------------------------

def _scope(principal: Principal, owner_col: Any, team_col: Any) -> Any:
    scope = scope_for(principal, RESOURCE, "read")
    if scope is None:
        raise Forbidden("your role may not read surveys")
    return scope_clause(principal, scope, owner_col, team_col)


def invitation_spec() -> ListSpec:
    i = SurveyInvitation
    return ListSpec(
        resource="survey_invitations", id_column=i.id,
        filters={"id": Filter(i.id, int, frozenset({"eq", "in"})),
                 "kind": Filter(i.kind, choices=tuple(SCALES)),
                 "trigger": Filter(i.trigger),
                 "customer_id": Filter(i.customer_id, int, _IDS),
                 "ticket_id": Filter(i.ticket_id, int, _IDS),
                 "schedule_id": Filter(i.schedule_id, int, _IDS),
                 "team_id": Filter(i.team_id, int, _IDS),
                 "agent_id": Filter(i.agent_id, int, _IDS),
                 "sent_at": Filter(i.sent_at, datetime, _CMP),
                 "used_at": Filter(i.used_at, datetime, _CMP | {"isnull"})},
        sorts={"id": Sort(i.id, int), "sent_at": Sort(i.sent_at, datetime)},
        default_sort="-id")


def response_spec() -> ListSpec:
    r = SurveyResponse
    return ListSpec(
        resource="survey_responses", id_column=r.id,
        filters={"kind": Filter(r.kind, choices=tuple(SCALES)),
                 "score": Filter(r.score, int, frozenset({"eq", "in"}) | _CMP),
                 "customer_id": Filter(r.customer_id, int, _IDS),
                 "ticket_id": Filter(r.ticket_id, int, _IDS),
                 "team_id": Filter(r.team_id, int, _IDS),
                 "agent_id": Filter(r.agent_id, int, _IDS),
                 "responded_at": Filter(r.responded_at, datetime, _CMP)},
        sorts={"id": Sort(r.id, int), "responded_at": Sort(r.responded_at, datetime),
               "score": Sort(r.score, int)},
        default_sort="-id")


def _scoped_page(session: Session, principal: Principal, model: Any, spec: ListSpec,
                 params: ListParams) -> tuple[list[Any], str | None]:
    """One page of `model` rows (invitations or answers) within the caller's record scope."""
    stmt = select(model).where(_scope(principal, model.agent_id, model.team_id))
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


def list_invitations(session: Session, principal: Principal, params: ListParams
                     ) -> tuple[list[SurveyInvitation], str | None]:
    return _scoped_page(session, principal, SurveyInvitation, invitation_spec(), params)


def list_responses(session: Session, principal: Principal, params: ListParams
                   ) -> tuple[list[SurveyResponse], str | None]:
    return _scoped_page(session, principal, SurveyResponse, response_spec(), params)


# --- results -----------------------------------------------------------------------------------

GROUPS = ("team", "agent", "month", "week")


@dataclass
class ResultRow:
    key: str
    label: str = ""
    sent: int = 0
    answered: int = 0
    responses: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    satisfied: int = 0
    total: int = 0

    def add(self, kind: str, score: int) -> None:
        self.responses += 1
        self.total += score
        if kind == "nps":
            if score >= 9:
                self.promoters += 1
            elif score <= 6:
                self.detractors += 1
            else:
                self.passives += 1
        elif score >= 4:
            self.satisfied += 1

    @property
    def response_rate(self) -> float | None:
        return round(100 * self.answered / self.sent, 1) if self.sent else None

    @property
    def nps(self) -> float | None:
        if not self.responses:
            return None
        return round(100 * (self.promoters - self.detractors) / self.responses, 1)

    @property
    def csat(self) -> float | None:
        return round(100 * self.satisfied / self.responses, 1) if self.responses else None

    @property
    def mean(self) -> float | None:
        return round(self.total / self.responses, 2) if self.responses else None

    def out(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "sent": self.sent,
                "answered": self.answered, "response_rate": self.response_rate,
                "responses": self.responses, "promoters": self.promoters,
                "passives": self.passives, "detractors": self.detractors, "nps": self.nps,
                "satisfied": self.satisfied, "csat": self.csat, "mean": self.mean}


@dataclass
class Results:
    kind: str
    group_by: str
    start: datetime
    end: datetime
    rows: list[ResultRow]
    total: ResultRow


def _bucket(group_by: str, team_id: int | None, agent_id: int | None, at: datetime) -> str:
    if group_by == "team":
        return str(team_id) if team_id is not None else "-"
    if group_by == "agent":
        return str(agent_id) if agent_id is not None else "-"
    at = as_utc(at)
    if group_by == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{at.year}-{at.month:02d}"


def _stream(session: Session, stmt: Any) -> Iterator[Any]:
    yield from session.execute(stmt.execution_options(yield_per=5000))


def results(session: Session, principal: Principal, kind: str, start: datetime, end: datetime,
            group_by: str = "month") -> Results:
    """NPS (% promoters − % detractors), CSAT (% of 4–5 answers) and the mean score of the
    answers given in [start, end), with the response rate of the invitations sent in it
    (answered / sent), grouped by team, agent, month or ISO week. Only the invitations and
    answers in the reader's record scope (agent as owner, team) count."""
    if kind not in SCALES:
        raise ValidationProblem("kind must be nps or csat", field="kind")
    if group_by == "period":
        group_by = "month"
    if group_by not in GROUPS:
        raise ValidationProblem(f"group_by must be one of {', '.join(GROUPS)}", field="group_by")
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise ValidationProblem("end must be after start", field="end")
    inv_scope = _scope(principal, SurveyInvitation.agent_id, SurveyInvitation.team_id)
    resp_scope = _scope(principal, SurveyResponse.agent_id, SurveyResponse.team_id)
    rows: dict[str, ResultRow] = {}
    total = ResultRow("total", "Total")

    def row(key: str) -> ResultRow:
        return rows.setdefault(key, ResultRow(key))

    i = SurveyInvitation
    for team_id, agent_id, sent_at, used_at in _stream(session, select(
            i.team_id, i.agent_id, i.sent_at, i.used_at)
            .where(inv_scope, i.kind == kind, i.sent_at >= start, i.sent_at < end)):
        r = row(_bucket(group_by, team_id, agent_id, sent_at))
        r.sent += 1
        total.sent += 1
        if used_at is not None:
            r.answered += 1
            total.answered += 1
    r_ = SurveyResponse
    for team_id, agent_id, at, score in _stream(session, select(
            r_.team_id, r_.agent_id, r_.responded_at, r_.score)
            .where(resp_scope, r_.kind == kind, r_.responded_at >= start,
                   r_.responded_at < end)):
        row(_bucket(group_by, team_id, agent_id, at)).add(kind, score)
        total.add(kind, score)
    _label(session, group_by, rows.values())
    ordered = sorted(rows.values(), key=lambda r: (r.key == "-", r.label.casefold(), r.key)
                     if group_by in ("team", "agent") else r.key)
    return Results(kind, group_by, start, end, ordered, total)


def _label(session: Session, group_by: str, rows: Iterable[ResultRow]) -> None:
    rows = list(rows)
    ids = [int(r.key) for r in rows if r.key.isdigit()]
    names: dict[int, str] = {}
    if group_by == "team" and ids:
        names = dict(session.execute(select(Team.id, Team.name).where(Team.id.in_(ids))).all())
    elif group_by == "agent" and ids:
        names = dict(session.execute(select(User.id, User.full_name)
                                     .where(User.id.in_(ids))).all())
    for r in rows:
        if r.key == "-":
            r.label = "No team" if group_by == "team" else "No agent"
        elif r.key.isdigit():
            r.label = names.get(int(r.key), f"#{r.key}")
        else:
            r.label = r.key

