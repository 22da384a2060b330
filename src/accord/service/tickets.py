"""Tickets: the one write path for tickets and their messages (policy, audit, events), the
status workflow, the customer-timeline mirror and the hooks into SLA, routing and escalation.

Record scope comes from the `tickets` grant over `assignee_id`/`team_id`: not readable → 404
(no existence oracle), readable but not allowed → 403.

Where tickets come from: e-mail (`mail_in`), the public chat/web widget, the API, logged phone
calls and agents, and the self-service assistant's hand-off. Customer-originated channels act
as a system principal; `create_ticket` then matches the golden customer by the normalised
sender address or creates a new profile, so an unknown sender never fails.

Every public message is also an Interaction on the customer's timeline (department `support`),
written through the interactions service on the actor's behalf (as `sales.activities` does);
internal notes never are. Inbound customer messages are sentiment-scored and may escalate.

Status workflow (`TRANSITIONS`): a customer message reopens a `pending_customer` or `solved`
ticket; a message to a `closed` ticket opens a follow-up ticket instead (nothing is lost).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import nh3
from sqlalchemy import ColumnElement, Select, String, case, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal, record_in_scope, scope_clause, scope_for
from accord.access.service import check_reassignment, require
from accord.core.clock import as_utc, utcnow
from accord.core.contact import InvalidValue
from accord.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Problem,
    ValidationProblem,
)
from accord.core.events import emit
from accord.core.query import (
    Filter,
    ListParams,
    ListSpec,
    Sort,
    page_of,
    paginate,
    request_params,
)
from accord.core.ratelimit import SlidingWindow
from accord.core.settings import get_settings
from accord.core.workflow import check_transition
from accord.integration.standardise import standardise_email
from accord.models import Customer, CustomerEmail, Interaction
from accord.models.commerce import Order
from accord.models.service import (
    SLA_STATES,
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketMessage,
    TicketOrder,
)

RESOURCE = "tickets"
MIRROR_SOURCE = "service.ticket"
# What a read of a ticket exposes (for the audit trail of personal-data reads).
READ_FIELDS = ("subject", "requester_email", "requester_name", "tags")
MESSAGE_READ_FIELDS = ("from_address", "subject", "body_text", "body_html", "sentiment")
# The workflow in one table. `closed` is final: a later message opens a follow-up ticket.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending_customer", "on_hold", "solved"}),
    "open": frozenset({"pending_customer", "on_hold", "solved"}),
    "pending_customer": frozenset({"open", "on_hold", "solved"}),
    "on_hold": frozenset({"open", "pending_customer", "solved"}),
    "solved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}
assert set(TRANSITIONS) == set(TICKET_STATUSES)
REOPENING = frozenset({"pending_customer", "solved"})
PRIORITY_RANK = {p: i for i, p in enumerate(TICKET_PRIORITIES)}  # low 0 .. urgent 3
# The timeline has no "api"/"agent"/"assistant" channels: what each ticket channel is filed as.
MIRROR_CHANNEL = {"email": "email", "chat": "chat", "web": "web", "api": "web",
                  "phone": "phone", "agent": "web", "assistant": "chat"}
assert set(MIRROR_CHANNEL) == set(TICKET_CHANNELS)
CUSTOMER_CHANNELS = frozenset({"email", "chat", "web", "assistant"})
MIRROR_BODY_MAX = 50_000
SUBJECT_MAX = 300
BODY_MAX = 200_000  # a hard bound for every path (mail included); the API allows less
# Rich text: an allow-list of formatting tags; links only to http(s)/mailto; no images from
# remote hosts (tracking pixels) and no scripts, styles, frames or forms.
ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1",
    "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "small", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"},
                      "th": {"colspan", "rowspan"}, "abbr": {"title"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


@dataclass(frozen=True)
class NewAttachment:
    """A file arriving with a message; `filename` is display metadata only, never a path."""

    filename: str
    content_type: str
    data: bytes


def system_principal(channel: str) -> Principal:
    """Who writes a customer-originated change: audited as `system:service.<channel>`."""
    return Principal(user_id=None, email=f"system:service.{channel}", role="admin", via="system")


def _derived(principal: Principal) -> Principal:
    """The actor, with the rights the derived writes of an allowed ticket write need (the
    customer matched or created for it, its timeline entries); the audit trail names the actor.
    Only ever handed to the customers and interactions services for those derived writes."""
    return Principal(user_id=principal.user_id, email=principal.email, role="admin",
                     team_id=principal.team_id, via="system", extra={"on_behalf_of": RESOURCE})


# --- text ----------------------------------------------------------------------------------------

def sanitise_html(value: str | None) -> str | None:
    """Allow-listed rich text (nh3): scripts, event handlers, `javascript:` links, styles and
    remote images are removed; None or blank stays None."""
    if value is None or not value.strip():
        return None
    return nh3.clean(value, tags=set(ALLOWED_TAGS), attributes=ALLOWED_ATTRIBUTES,
                     url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer nofollow")


_BLOCK_END = re.compile(r"</(p|div|li|tr|h[1-6]|blockquote|pre)>|<br\s*/?>", re.IGNORECASE)


def html_to_text(value: str) -> str:
    """Plain text of sanitised HTML (for search, sentiment and the timeline)."""
    text = nh3.clean(_BLOCK_END.sub("\n", value), tags=set())
    lines = [line.strip() for line in html.unescape(text).splitlines()]
    return "\n".join(lines).strip()


def _bodies(body_text: str, body_html: str | None, field: str = "body_text"
            ) -> tuple[str, str | None]:
    clean = sanitise_html(body_html)
    text = body_text or (html_to_text(clean) if clean else "")
    if "\x00" in text:
        text = text.replace("\x00", "")
    if len(text) > BODY_MAX or (clean is not None and len(clean) > BODY_MAX):
        raise ValidationProblem(f"the message is longer than {BODY_MAX} characters",
                                field=field)
    return text, clean


def _subject(value: str | None) -> str:
    text = " ".join((value or "").replace("\x00", "").split())
    return text[:SUBJECT_MAX] or "(no subject)"


def _check_choice(value: str, choices: Sequence[str], field: str) -> None:
    if value not in choices:
        raise ValidationProblem(f"{value!r} is not one of {', '.join(choices)}", field=field)


# --- list: allow-listed filters and sorts --------------------------------------------------------

def _tag_filter(op: str, value: Any) -> ColumnElement[bool]:
    """Tags are a JSON list of plain tokens: a token is found as `"tag"` in its text form,
    which reads the same on SQLite and PostgreSQL (JSONB prints `["a", "b"]`)."""
    from accord.service.tickets_schemas import TAG_PATTERN

    values = value if isinstance(value, list) else [value]
    clauses = []
    for v in values:
        tag = str(v).strip().lower()
        if not TAG_PATTERN.match(tag):
            raise ValidationProblem(f"{str(v)[:40]!r} is not a valid tag", field="tag")
        clauses.append(cast(Ticket.tags, String).contains(f'"{tag}"', autoescape=True))
    return or_(*clauses)


_PRIORITY_RANK = case(PRIORITY_RANK, value=Ticket.priority, else_=-1).label("priority_rank")
_IDS = frozenset({"eq", "in", "isnull"})
_CMP = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})

FILTERS: dict[str, Filter] = {
    "id": Filter(Ticket.id, int, frozenset({"eq", "in", "lt", "gt"})),
    "status": Filter(Ticket.status, choices=TICKET_STATUSES, ops=frozenset({"eq", "ne", "in"})),
    "priority": Filter(Ticket.priority, choices=TICKET_PRIORITIES,
                       ops=frozenset({"eq", "ne", "in"})),
    "category": Filter(Ticket.category, ops=frozenset({"eq", "in", "isnull"})),
    "channel": Filter(Ticket.channel, choices=TICKET_CHANNELS, ops=frozenset({"eq", "in"})),
    "assignee": Filter(Ticket.assignee_id, int, _IDS),
    "team": Filter(Ticket.team_id, int, _IDS),
    "customer": Filter(Ticket.customer_id, int, frozenset({"eq", "in"})),
    "tag": Filter(_tag_filter, str, frozenset({"eq", "in"})),
    "sla_state": Filter(Ticket.sla_state, choices=SLA_STATES, ops=frozenset({"eq", "ne", "in"})),
    "due_at": Filter(Ticket.due_at, datetime, _CMP | {"isnull"}),
    "created_at": Filter(Ticket.created_at, datetime, _CMP),
}
SORTS: dict[str, Sort] = {
    "id": Sort(Ticket.id, int),
    "created_at": Sort(Ticket.created_at, datetime),
    "updated_at": Sort(Ticket.updated_at, datetime),
    "due_at": Sort(Ticket.due_at, datetime),
    "priority": Sort(_PRIORITY_RANK, int, nullable=False),
}


def list_spec() -> ListSpec:
    return ListSpec(resource=RESOURCE, id_column=Ticket.id, filters=FILTERS, sorts=SORTS,
                    default_sort="-id")


def list_params(query: dict[str, str]) -> ListParams:
    """The list's query parameters checked against `list_spec` (API and pages alike)."""
    return request_params(query, list_spec())


def _cursor_value(row: Ticket, key: str) -> Any:
    return PRIORITY_RANK.get(row.priority, -1) if key == "priority_rank" else getattr(row, key)


def visible_query(principal: Principal, action: str = "read") -> Select[Any]:
    scope = scope_for(principal, RESOURCE, action)
    if scope is None:
        raise Forbidden(f"your role may not {action} tickets")
    return select(Ticket).where(scope_clause(principal, scope, Ticket.assignee_id,
                                             Ticket.team_id))


# A ticket id as typed: ASCII digits only (`str.isdigit` also takes "²", which `int` refuses)
# and short enough for a BIGINT.
_ID_TEXT = re.compile(r"[0-9]{1,18}")


def search_clause(q: str) -> ColumnElement[bool]:
    """A reference (`T-12` or `12`), an e-mail (exact, normalised) or a subject prefix."""
    text = q.strip()
    ref = text[2:] if text[:2].upper() == "T-" else text
    if _ID_TEXT.fullmatch(ref):
        return Ticket.id == int(ref)
    if "@" in text:
        try:
            return func.lower(Ticket.requester_email) == standardise_email(text)
        except InvalidValue:
            return func.lower(Ticket.requester_email) == text.lower()
    return func.lower(Ticket.subject).startswith(text.lower(), autoescape=True)


def list_tickets(session: Session, principal: Principal, params: ListParams
                 ) -> tuple[list[Ticket], str | None]:
    spec = list_spec()
    stmt = visible_query(principal)
    if params.q:
        stmt = stmt.where(search_clause(params.q))
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params, get=_cursor_value)


def in_scope(principal: Principal, ticket: Ticket, action: str) -> bool:
    return record_in_scope(principal, scope_for(principal, RESOURCE, action), ticket.assignee_id,
                           ticket.team_id)


def get_ticket(session: Session, principal: Principal, ticket_id: int,
               action: str = "read") -> Ticket:
    """404 when the caller may not read it (no existence oracle), 403 when it may read, not act."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or not in_scope(principal, ticket, "read"):
        raise NotFound(f"ticket {ticket_id} does not exist")
    if action != "read" and not in_scope(principal, ticket, action):
        raise Forbidden(f"your role may not {action} this ticket")
    return ticket


def order_ids(session: Session, ticket_ids: Iterable[int]) -> dict[int, list[int]]:
    """Linked orders per ticket, in one query."""
    ids = list(ticket_ids)
    out: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(select(TicketOrder.ticket_id, TicketOrder.order_id)
                               .where(TicketOrder.ticket_id.in_(ids))
                               .order_by(TicketOrder.order_id))
        for tid, oid in rows:
            out[tid].append(oid)
    return out


def list_messages(session: Session, principal: Principal, ticket_id: int,
                  include_internal: bool = True) -> list[TicketMessage]:
    """The ticket's messages, oldest first. Every caller of the API is staff, so internal
    notes are included (each marked by `visibility`); a customer-facing view passes False."""
    get_ticket(session, principal, ticket_id)
    stmt = select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
    if not include_internal:
        stmt = stmt.where(TicketMessage.visibility == "public")
    return list(session.scalars(stmt.order_by(TicketMessage.created_at, TicketMessage.id)))


def events(session: Session, ticket: Ticket) -> list[TicketEvent]:
    return list(session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                .order_by(TicketEvent.at, TicketEvent.id)))


# --- the ticket's own timeline of facts ----------------------------------------------------------

def record_event(session: Session, ticket: Ticket, kind: str, *, at: datetime | None = None,
                 actor_id: int | None = None, status: str | None = None,
                 priority: str | None = None, data: dict[str, Any] | None = None
                 ) -> TicketEvent:
    """Append one fact. `at` is kept between the ticket's creation and now, because the SLA
    rules refuse an event before `created` or in the future (a mail's Date header may lie)."""
    now = utcnow()
    when = as_utc(at) if at is not None else now
    when = min(when, now)
    if ticket.created_at is not None and kind != "created":
        when = max(when, as_utc(ticket.created_at))
    event = TicketEvent(ticket_id=ticket.id, at=when, kind=kind, status=status,
                        priority=priority, actor_id=actor_id, data=data or {})
    session.add(event)
    session.flush()
    return event


def _refresh_sla(session: Session, ticket: Ticket) -> None:
    from accord.service import sla_tracking  # the SLA part imports this module's helpers

    session.flush()
    sla_tracking.refresh(session, ticket)


def _route(session: Session, ticket: Ticket) -> None:
    from accord.service import routing

    session.flush()
    routing.route(session, ticket)


def _escalate(session: Session, ticket: Ticket, message: TicketMessage) -> None:
    from accord.service import escalation

    session.flush()
    escalation.on_inbound(session, ticket, message)


# --- status --------------------------------------------------------------------------------------

def _apply_status(session: Session, principal: Principal, ticket: Ticket, to: str, *,
                  at: datetime | None = None, check: bool = True, via: str | None = None
                  ) -> bool:
    """Move the ticket (checked against `TRANSITIONS` unless the workflow itself moves it),
    record the event, audit and emit. Returns whether the status changed."""
    old = ticket.status
    if to == old:
        return False
    _check_choice(to, TICKET_STATUSES, "status")
    if check:
        check_transition(TRANSITIONS, old, to, record="a ticket")
    now = as_utc(at) if at is not None else utcnow()
    ticket.status = to
    if to == "solved":
        ticket.solved_at = now
    elif to == "closed":
        ticket.closed_at = now
        ticket.solved_at = ticket.solved_at or now
    else:
        ticket.solved_at = None
    session.flush()
    record_event(session, ticket, "status_changed", at=at, actor_id=principal.user_id,
                 status=to, data={"from": old, **({"via": via} if via else {})})
    audit.record(session, principal, "update", RESOURCE, ticket.id, ["status"],
                 {"from": old, "to": to, **({"via": via} if via else {})})
    emit(session, "ticket.status_changed", "ticket", ticket.id,
         {"ticket_id": ticket.id, "from": old, "to": to}, principal.user_id)
    if to == "solved":
        emit(session, "ticket.solved", "ticket", ticket.id, {"ticket_id": ticket.id},
             principal.user_id)
    return True


def set_priority(session: Session, ticket: Ticket, priority: str, *,
                 actor_id: int | None = None, reason: str | None = None) -> None:
    """Change the priority (escalation, agents): the event re-targets running SLA timers."""
    actor = Principal(user_id=actor_id, email="system:service.escalation" if actor_id is None
                      else f"user:{actor_id}", role="admin", via="system")
    _set_priority(session, actor, ticket, priority, reason)


def _set_priority(session: Session, principal: Principal, ticket: Ticket, priority: str,
                  reason: str | None = None) -> None:
    _check_choice(priority, TICKET_PRIORITIES, "priority")
    old = ticket.priority
    if priority == old:
        return
    ticket.priority = priority
    session.flush()
    detail = {"from": old, "to": priority, **({"reason": reason[:200]} if reason else {})}
    record_event(session, ticket, "priority_changed", actor_id=principal.user_id,
                 priority=priority, data=detail)
    audit.record(session, principal, "update", RESOURCE, ticket.id, ["priority"], detail)
    emit(session, "ticket.updated", "ticket", ticket.id,
         {"ticket_id": ticket.id, "fields": ["priority"]}, principal.user_id)
    _refresh_sla(session, ticket)


# --- customers -----------------------------------------------------------------------------------

def _survivor(session: Session, customer_id: int) -> int:
    """A merged profile lives on in its survivor."""
    for _ in range(10):
        survivor = session.scalar(select(Customer.merged_into_id)
                                  .where(Customer.id == customer_id))
        if survivor is None:
            break
        customer_id = survivor
    return customer_id


def match_customer(session: Session, email_normalized: str) -> int | None:
    """The golden customer with this (normalised) e-mail, lowest id first, merges followed."""
    found = session.scalar(select(CustomerEmail.customer_id)
                           .where(CustomerEmail.email_normalized == email_normalized)
                           .order_by(CustomerEmail.customer_id).limit(1))
    return _survivor(session, found) if found is not None else None


def _split_name(name: str | None, email: str | None) -> tuple[str, str]:
    words = " ".join((name or "").replace("\x00", "").split())
    if not words and email:
        words = email.split("@", 1)[0]
    if not words:
        words = "Unknown requester"
    first, _, last = words.partition(" ")
    return first[:100], last[:100]


def _resolve_customer(session: Session, principal: Principal, *, customer_id: int | None,
                      email: str | None, name: str | None, language: str | None,
                      customer_channel: bool) -> tuple[Customer, str | None, str]:
    """(customer id, normalised e-mail, how: given / matched / created). An agent gets a 422
    for an unreadable address; a customer channel keeps the raw address and still gets a
    profile (never a failure on an unknown sender)."""
    from accord.customers import service as customers
    from accord.customers.schemas import CustomerCreate, EmailIn

    normalized: str | None = None
    if email:
        try:
            normalized = standardise_email(email)
        except InvalidValue as exc:
            if not customer_channel:
                raise ValidationProblem(f"invalid e-mail address: {exc}",
                                        field="requester_email") from None
    if customer_id is not None:
        if principal.via == "system" and principal.user_id is None:
            customer_id = _survivor(session, customer_id)  # a follow-up after a merge
        try:
            customer = customers.get_customer(session, principal, customer_id)
        except Problem:
            raise NotFound(f"customer {customer_id} does not exist",
                           field="customer_id") from None
        return customer, normalized, "given"
    if normalized:
        found = match_customer(session, normalized)
        if found is not None:
            matched = session.get(Customer, found)
            assert matched is not None
            return matched, normalized, "matched"
    if not normalized and not name and not customer_channel:
        raise ValidationProblem("give customer_id or requester_email", field="customer_id")
    first, last = _split_name(name, normalized or email)
    lang = language if language and re.match(r"^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*$",
                                             language) else None
    data = CustomerCreate(first_name=first, last_name=last, preferred_language=lang,
                          emails=[EmailIn(email=normalized)] if normalized else [])
    created = customers.create_customer(session, _derived(principal), data)
    return created, normalized, "created"


def _primary_email(session: Session, customer_id: int) -> str | None:
    return session.scalar(select(CustomerEmail.email_normalized)
                          .where(CustomerEmail.customer_id == customer_id)
                          .order_by(CustomerEmail.is_primary.desc(), CustomerEmail.id).limit(1))


def _language(session: Session, ticket: Ticket) -> str | None:
    """The language inbound text is scored in: the ticket's, the customer's preferred one, or
    the deployment's default locale."""
    if ticket.language:
        return ticket.language
    if ticket.customer_id is not None:
        pref = session.scalar(select(Customer.preferred_language)
                              .where(Customer.id == ticket.customer_id))
        if pref:
            return pref
    return get_settings().default_locale


# --- messages ------------------------------------------------------------------------------------

def _score(session: Session, ticket: Ticket, message: TicketMessage) -> None:
    from accord.service import sentiment

    result = sentiment.score(message.body_text, _language(session, ticket))
    message.sentiment = result.compound
    message.sentiment_label = result.label
    message.sentiment_model = f"{result.model} {result.model_version}"[:40]
    message.language = message.language or result.language
    if result.compound is not None:
        ticket.sentiment = result.compound


def _mirror(session: Session, principal: Principal, ticket: Ticket, message: TicketMessage,
            extra: dict[str, Any] | None = None, direction: str | None = None) -> None:
    """The message's entry on the customer's timeline (public messages only)."""
    from accord.interactions import service as interactions
    from accord.interactions.schemas import InteractionFields

    if message.visibility != "public" or ticket.customer_id is None:
        return
    fields = InteractionFields(
        channel=MIRROR_CHANNEL.get(message.channel, "web"),  # type: ignore[arg-type]
        direction=(direction or message.direction),  # type: ignore[arg-type]
        department="support",
        occurred_at=as_utc(message.created_at),
        subject=f"{ticket.reference}: {message.subject or ticket.subject}"[:300],
        body=message.body_text[:MIRROR_BODY_MAX],
        metadata={"ticket_id": ticket.id, "message_id": message.id, **(extra or {})},
        source=MIRROR_SOURCE,
    )
    row = interactions.create_interaction(session, _derived(principal), ticket.customer_id,
                                          fields)
    message.interaction_id = row.id
    session.flush()


def _store_attachments(session: Session, ticket: Ticket, message: TicketMessage,
                       files: Sequence[NewAttachment]) -> list[TicketAttachment]:
    from accord.service import attachments

    attachments.check_sizes(files)
    return [attachments.store(session, ticket, message.id, f) for f in files]


def _new_message(session: Session, ticket: Ticket, **values: Any) -> TicketMessage:
    message = TicketMessage(ticket_id=ticket.id, customer_id=ticket.customer_id, **values)
    session.add(message)
    session.flush()
    return message


# --- create --------------------------------------------------------------------------------------

def _check_assignment(session: Session, principal: Principal, team_id: int | None,
                      assignee_id: int | None) -> None:
    """An initial team or assignee is checked like a reassignment of the new ticket: only a
    role that may reassign tickets, only to an active user and an existing team."""
    if team_id is None and assignee_id is None:
        return
    if principal.via == "system" and principal.user_id is None:
        from accord.models import Team, User

        if assignee_id is not None:
            user = session.get(User, assignee_id)
            if user is None or not user.is_active:
                raise ValidationProblem(f"user {assignee_id} does not exist",
                                        field="assignee_id")
        if team_id is not None and session.get(Team, team_id) is None:
            raise ValidationProblem(f"team {team_id} does not exist", field="team_id")
        return
    _reassignment(session, principal, SimpleNamespace(owner_id=principal.user_id,
                                                      team_id=principal.team_id),
                  {k: v for k, v in (("assignee_id", assignee_id), ("team_id", team_id))
                   if v is not None})


def _reassignment(session: Session, principal: Principal, record: Any,
                  changes: dict[str, Any]) -> None:
    """`check_reassignment` reads `owner_id`: a ticket's owner is its assignee."""
    mapped = {("owner_id" if k == "assignee_id" else k): v for k, v in changes.items()}
    try:
        check_reassignment(session, principal, RESOURCE, record, mapped)
    except Problem as exc:
        if exc.field == "owner_id":
            exc.field = "assignee_id"
            exc.detail = exc.detail.replace("owner_id", "assignee_id")
        raise


def create_ticket(session: Session, principal: Principal, *, subject: str, channel: str,
                  body_text: str = "", body_html: str | None = None,
                  customer_id: int | None = None, requester_email: str | None = None,
                  requester_name: str | None = None, priority: str = "normal",
                  category: str | None = None, tags: Iterable[str] = (),
                  language: str | None = None, order_ids: Iterable[int] = (),
                  team_id: int | None = None, assignee_id: int | None = None,
                  mail_message_id: str | None = None,
                  attachments: Sequence[NewAttachment] = (), at: datetime | None = None,
                  internal_author: bool = False, call: dict[str, Any] | None = None) -> Ticket:
    """Open a ticket with its first message (see the module docstring).

    `principal` is the agent or API caller, or `system_principal(channel)` for customer
    channels. `internal_author`: the first message is an agent's (a logged call, a ticket opened
    on the customer's behalf) – outbound, not sentiment-scored, no escalation. `call` (phone):
    direction, duration_seconds, outcome, kept on the timeline entry."""
    require(principal, RESOURCE, "create")
    _check_choice(channel, TICKET_CHANNELS, "channel")
    _check_choice(priority, TICKET_PRIORITIES, "priority")
    text, clean_html = _bodies(body_text, body_html)
    tag_list = _tags(tags)
    _check_assignment(session, principal, team_id, assignee_id)
    customer, email_norm, how = _resolve_customer(
        session, principal, customer_id=customer_id, email=requester_email,
        name=requester_name, language=language,
        customer_channel=principal.via == "system" and not internal_author)
    cid = customer.id
    orders = _checked_orders(session, cid, order_ids)
    if not requester_email:  # replies go to the customer's address (the mail part sends them)
        email_norm = _primary_email(session, cid)
    if not requester_name and (how != "matched" or record_in_scope(
            principal, scope_for(principal, "customers", "read"), customer.owner_id,
            customer.team_id)):
        # a matched customer the caller may not read lends no name (no oracle, no leak)
        requester_name = customer.display_name
    now = utcnow()
    when = min(as_utc(at), now) if at is not None else now
    ticket = Ticket(
        subject=_subject(subject), customer_id=cid,
        requester_email=(email_norm or (requester_email or "").strip()[:320] or None),
        requester_name=(" ".join((requester_name or "").split())[:200] or None),
        channel=channel, priority=priority, category=category, status="new",
        language=(language or "")[:8] or None, tags=tag_list, assignee_id=assignee_id,
        team_id=team_id,
        created_by=principal.user_id, created_at=when, updated_at=now,
    )
    session.add(ticket)
    session.flush()
    for oid in orders:
        session.add(TicketOrder(ticket_id=ticket.id, order_id=oid))
    record_event(session, ticket, "created", at=when, actor_id=principal.user_id,
                 priority=priority, data={"channel": channel})
    inbound = not internal_author
    message = _new_message(
        session, ticket, visibility="public", direction="inbound" if inbound else "outbound",
        channel=channel, author_id=None if inbound else principal.user_id,
        from_address=ticket.requester_email if inbound else None, subject=ticket.subject,
        body_text=text, body_html=clean_html, language=(language or "")[:8] or None,
        mail_message_id=(mail_message_id or None), created_at=when)
    if inbound:
        _score(session, ticket, message)
        ticket.last_customer_message_at = when
    _store_attachments(session, ticket, message, attachments)
    extra: dict[str, Any] = {"visibility": "public"}
    call_direction = None
    if call:
        extra["call"] = {k: call.get(k) for k in ("direction", "duration_seconds", "outcome")}
        call_direction = call.get("direction")
    _mirror(session, principal, ticket, message, extra, direction=call_direction)
    session.flush()
    audit.record(session, principal, "create", RESOURCE, ticket.id,
                 [k for k, v in (("subject", subject), ("body", text), ("priority", priority),
                                 ("category", category), ("tags", tag_list),
                                 ("team_id", team_id), ("assignee_id", assignee_id),
                                 ("order_ids", orders)) if v],
                 {"via": channel, "customer_id": cid, "customer": how,
                  "message_id": message.id})
    emit(session, "ticket.created", "ticket", ticket.id,
         {"ticket_id": ticket.id, "customer_id": cid, "message_id": message.id,
          "channel": channel, "priority": priority}, principal.user_id)
    _route(session, ticket)
    if ticket.team_id is None and ticket.assignee_id is None and principal.team_id is not None:
        ticket.team_id = principal.team_id  # unrouted: stays in the creating agent's team
        session.flush()
    _refresh_sla(session, ticket)
    if inbound:
        _escalate(session, ticket, message)
    session.flush()
    return ticket


def _tags(tags: Iterable[str]) -> list[str]:
    from accord.service.tickets_schemas import clean_tags

    try:
        return clean_tags(list(tags)) or []
    except ValueError as exc:
        raise ValidationProblem(str(exc), field="tags") from None


def _checked_orders(session: Session, customer_id: int | None,
                    ids: Iterable[int]) -> list[int]:
    """Orders linked to a ticket must be the ticket's customer's (422 naming the field)."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        return []
    owners = dict(session.execute(select(Order.id, Order.customer_id)
                                  .where(Order.id.in_(wanted))).all())
    for oid in wanted:
        if oid not in owners or customer_id is None or \
                _survivor(session, owners[oid]) != customer_id:
            raise ValidationProblem(f"order {oid} is not an order of the ticket's customer",
                                    field="order_ids")
    return wanted


# --- inbound customer messages -------------------------------------------------------------------

def add_customer_message(session: Session, ticket: Ticket, *, body_text: str, channel: str,
                         body_html: str | None = None, from_address: str | None = None,
                         subject: str | None = None, mail_message_id: str | None = None,
                         in_reply_to: str | None = None, is_auto_reply: bool = False,
                         attachments: Sequence[NewAttachment] = (),
                         at: datetime | None = None) -> TicketMessage:
    """A customer's message on an existing ticket (mail reply, widget, assistant).

    Sentiment-scored; records `customer_message`; a `pending_customer` or `solved` ticket
    reopens (`open`); SLA refreshed; escalation considered. An auto-reply (out-of-office) is
    stored but neither reopens nor escalates. A `closed` ticket takes no messages: a follow-up
    ticket is opened with this message as its first (the returned message's `ticket_id`)."""
    _check_choice(channel, TICKET_CHANNELS, "channel")
    principal = system_principal(channel)
    if ticket.status == "closed":
        follow = _follow_up(session, principal, ticket, channel, body_text, body_html, subject,
                            from_address, mail_message_id, attachments, at)
        record_event(session, ticket, "follow_up", data={"ticket_id": follow.id})
        return session.scalars(select(TicketMessage).where(TicketMessage.ticket_id == follow.id)
                               .order_by(TicketMessage.id).limit(1)).one()
    text, clean_html = _bodies(body_text, body_html)
    now = utcnow()
    when = min(as_utc(at), now) if at is not None else now
    message = _new_message(
        session, ticket, visibility="public", direction="inbound", channel=channel,
        from_address=(from_address or ticket.requester_email or None),
        subject=_subject(subject) if subject else None, body_text=text, body_html=clean_html,
        mail_message_id=mail_message_id or None, in_reply_to=in_reply_to or None,
        is_auto_reply=is_auto_reply, created_at=when)
    _score(session, ticket, message)
    ticket.last_customer_message_at = when
    _store_attachments(session, ticket, message, attachments)
    # an out-of-office is not the customer talking: its own kind keeps it out of the SLA timers
    record_event(session, ticket, "auto_reply" if is_auto_reply else "customer_message", at=when,
                 data={"message_id": message.id})
    _mirror(session, principal, ticket, message, {"visibility": "public"})
    audit.record(session, principal, "customer_message", RESOURCE, ticket.id,
                 ["body_text"] + (["body_html"] if clean_html else []),
                 {"message_id": message.id, "channel": channel})
    if ticket.status in REOPENING and not is_auto_reply:
        _apply_status(session, principal, ticket, "open", check=False, via="customer_message")
    session.flush()
    _refresh_sla(session, ticket)
    if not is_auto_reply:
        _escalate(session, ticket, message)
    session.flush()
    return message


def _follow_up(session: Session, principal: Principal, ticket: Ticket, channel: str,
               body_text: str, body_html: str | None, subject: str | None,
               from_address: str | None, mail_message_id: str | None,
               attachments: Sequence[NewAttachment], at: datetime | None) -> Ticket:
    """A message to a closed ticket opens a new one for the same customer, same routing."""
    return create_ticket(
        session, principal, subject=subject or ticket.subject, channel=channel,
        body_text=body_text, body_html=body_html, customer_id=ticket.customer_id,
        requester_email=ticket.requester_email or from_address,
        requester_name=ticket.requester_name,
        priority=ticket.priority, category=ticket.category, tags=ticket.tags or (),
        language=ticket.language, team_id=ticket.team_id, mail_message_id=mail_message_id,
        attachments=attachments, at=at)


# --- agents: replies and notes -------------------------------------------------------------------

def _check_version(ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != ticket.version:
        raise PreconditionFailed(
            f"the ticket is at version {ticket.version}, not {expected_version}; reload and "
            "retry", field="If-Match")


def reply(session: Session, principal: Principal, ticket_id: int, *, body_text: str,
          body_html: str | None = None, internal: bool = False, status: str | None = None,
          attachments: Sequence[NewAttachment] = (),
          expected_version: int | None = None) -> TicketMessage:
    """An agent's public reply (sent by the mail part on "ticket.replied", first/next response
    for the SLA; a `new` ticket becomes `open` unless `status` says otherwise) or an internal
    note (`internal=True`: never sent, not on the customer's timeline, no SLA effect)."""
    ticket = get_ticket(session, principal, ticket_id, "update")
    _check_version(ticket, expected_version)
    if status is not None:
        _check_choice(status, TICKET_STATUSES, "status")
    if not internal and ticket.status == "closed":
        raise Conflict("a closed ticket takes no replies; open a follow-up ticket",
                       field="status")
    if status is not None and status != ticket.status:
        check_transition(TRANSITIONS, ticket.status, status, record="a ticket")
    text, clean_html = _bodies(body_text, body_html)
    if not text.strip():
        raise ValidationProblem("a message needs body_text or body_html", field="body_text")
    now = utcnow()
    out_channel = ticket.channel
    if not internal and ticket.requester_email and ticket.channel not in ("phone",):
        out_channel = "email"  # the mail part sends public replies to the requester
    message = _new_message(
        session, ticket, visibility="internal" if internal else "public", direction="outbound",
        channel=out_channel, author_id=principal.user_id, subject=None, body_text=text,
        body_html=clean_html, created_at=now)
    _store_attachments(session, ticket, message, attachments)
    if internal:
        audit.record(session, principal, "note", RESOURCE, ticket.id, ["body_text"],
                     {"message_id": message.id})
    else:
        ticket.last_agent_reply_at = now
        if ticket.first_responded_at is None:
            ticket.first_responded_at = now
        record_event(session, ticket, "public_reply_by_agent", at=now,
                     actor_id=principal.user_id, data={"message_id": message.id})
        _mirror(session, principal, ticket, message, {"visibility": "public"})
        audit.record(session, principal, "reply", RESOURCE, ticket.id, ["body_text"],
                     {"message_id": message.id})
        emit(session, "ticket.replied", "ticket", ticket.id,
             {"ticket_id": ticket.id, "message_id": message.id}, principal.user_id)
    target = status
    if target is None and not internal and ticket.status == "new":
        target = "open"
    if target is not None:
        _apply_status(session, principal, ticket, target)
    ticket.updated_at = now
    session.flush()
    if not internal or target is not None:
        _refresh_sla(session, ticket)
    session.flush()
    return message


# --- updates -------------------------------------------------------------------------------------

def update_ticket(session: Session, principal: Principal, ticket: Ticket, data: Any,
                  expected_version: int | None = None) -> Ticket:
    """One PATCH (`TicketUpdate`): fields, a status move (409 when the workflow forbids it) and
    a priority change (its own event), audited and emitted once."""
    if not in_scope(principal, ticket, "update"):
        raise Forbidden("your role may not update this ticket")
    _check_version(ticket, expected_version)
    sent = data.model_dump(exclude_unset=True)
    if "subject" in sent:  # one line, as on create: mail subjects and alerts echo it
        sent["subject"] = _subject(sent["subject"])
    status = sent.pop("status", None)
    priority = sent.pop("priority", None)
    if "team_id" in sent and sent["team_id"] != ticket.team_id:
        _reassignment(session, principal, SimpleNamespace(owner_id=ticket.assignee_id,
                                                          team_id=ticket.team_id),
                      {"team_id": sent["team_id"]})
    if status is not None and status != ticket.status:
        check_transition(TRANSITIONS, ticket.status, status, record="a ticket")
    changed = [k for k, v in sent.items() if getattr(ticket, k) != v]
    for key in changed:
        setattr(ticket, key, sent[key])
    if changed:
        ticket.updated_at = utcnow()
        session.flush()
        audit.record(session, principal, "update", RESOURCE, ticket.id, changed)
        emit(session, "ticket.updated", "ticket", ticket.id,
             {"ticket_id": ticket.id, "fields": sorted(changed)}, principal.user_id)
        if "team_id" in changed:
            record_event(session, ticket, "assigned", actor_id=principal.user_id,
                         data={"team_id": ticket.team_id, "assignee_id": ticket.assignee_id})
    moved = False
    if priority is not None and priority != ticket.priority:
        _set_priority(session, principal, ticket, priority)
        moved = True
    if status is not None and status != ticket.status:
        _apply_status(session, principal, ticket, status)
        moved = True
    if moved or changed:
        _refresh_sla(session, ticket)
    session.flush()
    return ticket


def assign(session: Session, principal: Principal, ticket: Ticket, *,
           assignee_id: int | None = None, team_id: int | None = None,
           note: str | None = None) -> Ticket:
    """(Re)assign to an agent and/or team. The ownership rule is the one every owned record
    follows (`check_reassignment`: only roles updating at team or all scope, a team-scoped role
    within its team); the move itself (agent checks, the "assigned" event, SLA on the new
    team's hours, the agent's notification) is `routing.reassign`."""
    from accord.service import routing

    _reassignment(session, principal, SimpleNamespace(owner_id=ticket.assignee_id,
                                                      team_id=ticket.team_id),
                  {k: v for k, v in (("assignee_id", assignee_id), ("team_id", team_id))
                   if v is not None})
    return routing.reassign(session, principal, ticket.id, assignee_id=assignee_id,
                            team_id=team_id, note=note)


def add_attachments(session: Session, principal: Principal, ticket: Ticket,
                    files: Sequence[NewAttachment]) -> list[TicketAttachment]:
    """Files added to the ticket itself (no message): e.g. a scan an agent received by post."""
    from accord.service import attachments

    if not in_scope(principal, ticket, "update"):
        raise Forbidden("your role may not update this ticket")
    if not files:
        raise ValidationProblem("send at least one file", field="files")
    attachments.check_sizes(files, field="files")
    rows = [attachments.store(session, ticket, None, f) for f in files]
    audit.record(session, principal, "attach", RESOURCE, ticket.id, ["attachments"],
                 {"attachment_ids": [r.id for r in rows]})
    emit(session, "ticket.updated", "ticket", ticket.id,
         {"ticket_id": ticket.id, "fields": ["attachments"]}, principal.user_id)
    return rows


# --- linked orders -------------------------------------------------------------------------------

def link_order(session: Session, principal: Principal, ticket: Ticket, order_id: int) -> None:
    """Link one of the ticket's customer's orders (422 otherwise); linking twice is a no-op."""
    if not in_scope(principal, ticket, "update"):
        raise Forbidden("your role may not update this ticket")
    _checked_orders(session, ticket.customer_id, [order_id])
    exists = session.scalar(select(TicketOrder.id).where(TicketOrder.ticket_id == ticket.id,
                                                         TicketOrder.order_id == order_id))
    if exists is not None:
        return
    session.add(TicketOrder(ticket_id=ticket.id, order_id=order_id))
    session.flush()
    audit.record(session, principal, "link_order", RESOURCE, ticket.id, ["order_ids"],
                 {"order_id": order_id})
    emit(session, "ticket.updated", "ticket", ticket.id,
         {"ticket_id": ticket.id, "fields": ["order_ids"]}, principal.user_id)


def unlink_order(session: Session, principal: Principal, ticket: Ticket, order_id: int) -> None:
    if not in_scope(principal, ticket, "update"):
        raise Forbidden("your role may not update this ticket")
    gone = session.execute(delete(TicketOrder).where(TicketOrder.ticket_id == ticket.id,
                                                     TicketOrder.order_id == order_id))
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"order {order_id} is not linked to this ticket", field="order_id")
    audit.record(session, principal, "unlink_order", RESOURCE, ticket.id, ["order_ids"],
                 {"order_id": order_id})
    emit(session, "ticket.updated", "ticket", ticket.id,
         {"ticket_id": ticket.id, "fields": ["order_ids"]}, principal.user_id)


# --- output --------------------------------------------------------------------------------------

def to_out(ticket: Ticket, orders: list[int] | None = None) -> Any:
    from accord.service.tickets_schemas import TicketOut

    out = TicketOut.model_validate(ticket)
    out.tags = list(ticket.tags or [])
    out.order_ids = orders or []
    return out


def message_out(message: TicketMessage, files: Sequence[TicketAttachment] = ()) -> Any:
    from accord.service.attachments import attachment_out
    from accord.service.tickets_schemas import MessageOut

    data = {name: getattr(message, name) for name in MessageOut.model_fields
            if name not in ("internal", "attachments")}
    return MessageOut.model_validate({**data, "internal": message.visibility == "internal",
                                      "attachments": [attachment_out(a) for a in files]})


def messages_out(session: Session, rows: Sequence[TicketMessage]) -> list[Any]:
    """Messages with their attachments (one query for all of them)."""
    ids = [m.id for m in rows]
    files: dict[int | None, list[TicketAttachment]] = {}
    if ids:
        for a in session.scalars(select(TicketAttachment)
                                 .where(TicketAttachment.message_id.in_(ids))
                                 .order_by(TicketAttachment.id)):
            files.setdefault(a.message_id, []).append(a)
    return [message_out(m, files.get(m.id, ())) for m in rows]


def timeline_interactions(session: Session, ticket: Ticket) -> list[Interaction]:
    """The timeline entries mirrored from the ticket's messages, oldest first."""
    ids = [i for i in session.scalars(select(TicketMessage.interaction_id)
                                      .where(TicketMessage.ticket_id == ticket.id)) if i]
    if not ids:
        return []
    return list(session.scalars(select(Interaction).where(Interaction.id.in_(ids))
                                .order_by(Interaction.occurred_at, Interaction.id)))


# --- the public chat/web widget ------------------------------------------------------------------

# Per client address: a person chatting sends a few messages a minute; a flood is cut off.
WIDGET_PER_CLIENT = SlidingWindow(limit=20, window_seconds=600)
WIDGET_MAX_BYTES = 32 * 1024
WIDGET_CHANNEL = "chat"


def _widget_signature(ticket_id: int, email_normalized: str) -> str:
    key = get_settings().secret_key.encode()
    msg = f"accord.widget:{ticket_id}:{email_normalized}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:40]


def widget_token(ticket: Ticket, email_normalized: str) -> str:
    """The handle a widget holds to continue its ticket: signed with the app secret and bound
    to the visitor's address, so neither the id alone nor another address continues it."""
    return f"{ticket.id}.{_widget_signature(ticket.id, email_normalized)}"


def _widget_ticket(session: Session, token: str, email_normalized: str) -> Ticket:
    ticket_id, _, sig = token.partition(".")
    refused = ValidationProblem("this conversation cannot be continued; start a new one",
                                field="conversation")
    if not _ID_TEXT.fullmatch(ticket_id) or not sig:
        raise refused
    if not hmac.compare_digest(sig, _widget_signature(int(ticket_id), email_normalized)):
        raise refused
    ticket = session.get(Ticket, int(ticket_id))
    if ticket is None:
        raise refused
    return ticket


def widget_message(session: Session, data: Any) -> tuple[Ticket, str] | None:
    """One visitor message (`WidgetMessageIn`): a new ticket, or the next message of the ticket
    its `conversation` token names (a closed one continues as a follow-up). Returns the ticket
    and the token to continue it; None when the honeypot was filled (nothing stored)."""
    if data.website_url:
        return None
    try:
        email = standardise_email(data.email)
    except InvalidValue as exc:
        raise ValidationProblem(f"invalid e-mail address: {exc}", field="email") from None
    if data.conversation:
        ticket = _widget_ticket(session, data.conversation, email)
        message = add_customer_message(session, ticket, body_text=data.message,
                                       channel=WIDGET_CHANNEL, from_address=email,
                                       subject=data.subject)
        if message.ticket_id != ticket.id:
            follow = session.get(Ticket, message.ticket_id)
            assert follow is not None
            ticket = follow
    else:
        first_line = data.message.strip().splitlines()[0] if data.message.strip() else ""
        ticket = create_ticket(session, system_principal(WIDGET_CHANNEL),
                               subject=data.subject or first_line[:80] or "Chat",
                               channel=WIDGET_CHANNEL, body_text=data.message,
                               requester_email=email, requester_name=data.name or None)
    return ticket, widget_token(ticket, email)
