"""The agent workspace: my queue, team queues, the ticket page (conversation, reply form with
canned replies, SLA timers, properties, escalation, the customer's 360 summary, collision
warning) and the new-ticket form (incl. logging a phone call).

Every read and write goes through the service modules (`tickets`, `sla_tracking`,
`escalation`, `canned`, `presence`, `customer_summary`); this module only parses forms and
shapes plain values for the templates. The queues are one ticket query on the queue indexes
(`ix_tickets_assignee_queue` / `ix_tickets_team_queue`, sorted by `due_at`) plus one query for
the customers' names on the page: the SLA badge is computed from the stored due instants, not
by re-evaluating each ticket.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import UploadFile

from accord.access import audit
from accord.access.policy import can, scope_for
from accord.core.clock import as_utc, utcnow
from accord.core.errors import Forbidden, NotFound, Problem, ValidationProblem
from accord.core.validation import whole_number
from accord.models import Customer, Team, User
from accord.models.service import (
    OPEN_STATUSES,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    Ticket,
)
from accord.service import canned, customer_summary, presence, tickets
from accord.service.tickets_schemas import TicketUpdate
from accord.web.admin import form_errors
from accord.web.context import WebCtx, wants_partial, web_ctx
from accord.web.rendering import PageRoute, label, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
BASE = "/service"
QUEUE_KEYS = ("status", "priority", "sla_state", "q", "cursor", "limit", "team", "unassigned")
QUEUE_SLA_STATES = ("running", "warning", "breached", "paused", "met", "none")
SLA_LABELS = {"none": "No SLA", "running": "Running", "warning": "Due soon",
              "breached": "Breached", "paused": "Paused", "met": "Met",
              "not_applicable": "Not applicable"}
METRIC_LABELS = {"first_response": "First response", "next_response": "Next response",
                 "resolution": "Resolution"}
MOOD_LABELS = {"negative": "Negative", "neutral": "Neutral", "positive": "Positive", "": ""}
NOTICES = {"replied": "Reply sent.", "noted": "Internal note added.", "saved": "Changes saved.",
           "escalated": "Ticket escalated.", "created": "Ticket created."}
STALE = ("Someone else changed this ticket while you were working on it, so your change was not "
         "saved. Reload the page to see the current values, then try again.")
AGENT_ROLES = ("support", "manager", "admin")
NEW_FIELDS = ("subject", "body_text", "customer_id", "requester_email", "requester_name",
              "priority", "category", "channel", "call_direction", "call_duration",
              "call_outcome")
NEW_CHANNELS = (("agent", "On the customer's behalf"), ("phone", "Phone call"))


# --- small value helpers -------------------------------------------------------------------------

def span(seconds: float) -> str:
    """A duration in words an agent reads at a glance: `2d 3h`, `3h 5m`, `12m`, `<1m`."""
    s = int(abs(seconds))
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else "<1m"


def timer_badge(state: str, due: datetime | None, now: datetime) -> dict[str, str]:
    """The queue's SLA badge from the stored state and due instant (no re-evaluation)."""
    if state in ("running", "warning") and due is not None:
        left = (as_utc(due) - now).total_seconds()
        if left < 0:
            return {"state": "breached", "text": f"Overdue {span(left)}"}
        return {"state": state, "text": f"{span(left)} left"}
    if state == "breached":
        text = f"Overdue {span((now - as_utc(due)).total_seconds())}" if due else "Breached"
        return {"state": "breached", "text": text}
    return {"state": state, "text": SLA_LABELS.get(state, label(state))}


def _names(ctx: WebCtx, model: Any, ids: Iterable[int | None], column: Any) -> dict[int, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return dict(ctx.session.execute(select(model.id, column).where(model.id.in_(wanted))).all())


def _values(request: Request, keys: Iterable[str]) -> dict[str, str]:
    allowed = set(keys)
    return {k: v.strip() for k, v in request.query_params.items()
            if v.strip() != "" and k in allowed}


def _link(path: str, values: dict[str, str], **changes: str | None) -> str:
    merged = {k: v for k, v in {**values, **changes}.items() if v}
    return path + (f"?{urlencode(merged)}" if merged else "")


# --- the queues ----------------------------------------------------------------------------------

def _queue_rows(ctx: WebCtx, found: list[Ticket], with_assignee: bool) -> list[dict[str, Any]]:
    now = utcnow()
    customers = _names(ctx, Customer, (t.customer_id for t in found), Customer.display_name)
    agents = _names(ctx, User, (t.assignee_id for t in found), User.full_name) \
        if with_assignee else {}
    rows = []
    for t in found:
        mood = customer_summary.mood_of(t.sentiment)
        rows.append({
            "id": t.id, "reference": t.reference, "subject": t.subject, "status": t.status,
            "priority": t.priority, "channel": t.channel,
            "customer": customers.get(t.customer_id or 0) or t.requester_name or
            t.requester_email or "",
            "assignee": agents.get(t.assignee_id or 0, ""),
            "badge": timer_badge(t.sla_state, t.due_at, now), "due_at": t.due_at,
            "mood": mood, "mood_label": MOOD_LABELS[mood], "sentiment": t.sentiment,
            "escalated": t.escalation_level > 0, "url": f"{BASE}/tickets/{t.id}",
        })
    return rows


def _queue(request: Request, ctx: WebCtx, *, mine: bool) -> Response:
    values = _values(request, QUEUE_KEYS)
    scope = scope_for(ctx.principal, tickets.RESOURCE, "read")
    if scope is None:
        raise Forbidden("Your role may not read tickets.")
    query: dict[str, str] = {"sort": "due_at"}
    status = values.get("status", "")
    query["status__in"] = status if status in TICKET_STATUSES else ",".join(OPEN_STATUSES)
    for key in ("priority", "sla_state", "cursor", "limit", "q"):
        if key in values:
            query[key] = values[key]
    teams: list[tuple[int, str]] = []
    team_id: int | None = None
    if mine:
        query["assignee"] = str(ctx.principal.user_id)
    else:
        may_pick = scope == "all"
        if may_pick:
            teams = [(r.id, r.name) for r in ctx.session.execute(
                select(Team.id, Team.name).order_by(Team.name, Team.id))]
        raw = values.get("team", "")
        if raw and may_pick:
            picked = whole_number(raw)
            if picked is None or picked not in {tid for tid, _ in teams}:
                raise NotFound("There is no such team.")
            team_id = picked
        else:
            team_id = ctx.principal.team_id
        if team_id is not None:
            query["team"] = str(team_id)
        elif not may_pick:
            query["team__isnull"] = "true"
        if values.get("unassigned") == "1" or team_id is None:
            query["assignee__isnull"] = "true"
    error: ValidationProblem | None = None
    rows: list[dict[str, Any]] = []
    next_cursor = None
    try:
        found, next_cursor = tickets.list_tickets(ctx.session, ctx.principal,
                                                  tickets.list_params(query))
        rows = _queue_rows(ctx, found, with_assignee=not mine)
    except ValidationProblem as exc:
        error = exc
    if rows:
        audit.record_read(ctx.principal, tickets.RESOURCE, [r["id"] for r in rows],
                          tickets.READ_FIELDS, {"via": "web.queue"})
    path = f"{BASE}/queue" if mine else f"{BASE}/queue/team"
    team_name = dict(teams).get(team_id or 0) or (
        _names(ctx, Team, [team_id], Team.name).get(team_id or 0, "") if team_id else "")
    context = {
        "mine": mine, "rows": rows, "values": values, "error": error,
        "next_link": _link(path, values, cursor=next_cursor) if next_cursor else None,
        "first_link": _link(path, values, cursor=None) if "cursor" in values else None,
        "status_choices": [(s, label(s)) for s in TICKET_STATUSES],
        "priority_choices": [(p, label(p)) for p in TICKET_PRIORITIES],
        "sla_choices": [(s, SLA_LABELS[s]) for s in QUEUE_SLA_STATES],
        "teams": teams, "team_id": team_id, "team_name": team_name,
        "path": path, "can_create": can(ctx.principal, tickets.RESOURCE, "create"),
        "filtered": any(k not in ("cursor", "limit") for k in values),
    }
    status_code = 422 if error is not None else 200
    if wants_partial(request):
        return render(request, "service/workspace/_queue_rows.html", context,
                      status_code=status_code)
    return render(request, "service/workspace/queue.html", context, status_code=status_code)


@router.get(BASE)
def service_home(ctx: WebCtx = Depends(web_ctx)) -> Response:
    return RedirectResponse(f"{BASE}/queue", status_code=303)


@router.get(f"{BASE}/queue")
def my_queue(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _queue(request, ctx, mine=True)


@router.get(f"{BASE}/queue/team")
def team_queue(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _queue(request, ctx, mine=False)


# --- the ticket page -----------------------------------------------------------------------------

def _timers(ctx: WebCtx, ticket: Ticket) -> dict[str, Any]:
    from accord.service import sla_tracking

    view = sla_tracking.timers(ctx.session, ticket)
    rows = []
    for t in view.timers:
        remaining = t.remaining_seconds
        if t.status in ("met", "not_applicable"):
            detail = (f"in {span(t.elapsed_seconds)}" if t.status == "met" else "")
        elif remaining is None:
            detail = ""
        elif remaining >= 0:
            detail = f"{span(remaining)} left"
        else:
            detail = f"overdue {span(remaining)}"
        rows.append({"metric": t.metric, "label": METRIC_LABELS.get(t.metric, label(t.metric)),
                     "status": t.status, "status_label": SLA_LABELS.get(t.status,
                                                                        label(t.status)),
                     "detail": detail, "due": t.due, "stopped_at": t.stopped_at})
    return {"policy": view.policy, "tier": view.tier, "state": view.sla_state, "rows": rows}


def _conversation(ctx: WebCtx, ticket: Ticket) -> list[dict[str, Any]]:
    from accord.service import attachments

    messages = tickets.list_messages(ctx.session, ctx.principal, ticket.id)
    files = attachments.by_message(attachments.for_ticket(ctx.session, ticket.id))
    authors = _names(ctx, User, (m.author_id for m in messages), User.full_name)
    out = []
    for m in messages:
        internal = m.visibility == "internal"
        if m.direction == "inbound":
            # the requester by name; anyone else writing into the ticket by their address
            same = (m.from_address or "").lower() == (ticket.requester_email or "").lower()
            who = ((ticket.requester_name if same or not m.from_address else None)
                   or m.from_address or ticket.requester_email or "Customer")
        else:
            who = authors.get(m.author_id or 0, "System")
        mood = customer_summary.mood_of(m.sentiment) if m.direction == "inbound" else ""
        out.append({
            "id": m.id, "internal": internal, "inbound": m.direction == "inbound",
            "kind": "internal" if internal else m.direction, "who": who,
            "channel": m.channel, "at": m.created_at, "body": m.body_text,
            "auto": m.is_auto_reply, "mood": mood, "mood_label": MOOD_LABELS[mood],
            "sentiment": m.sentiment,
            "files": [attachments.attachment_out(a) for a in files.get(m.id, [])],
        })
    return out


def _agent_choices(ctx: WebCtx) -> list[tuple[int, str]]:
    rows = ctx.session.execute(select(User.id, User.full_name).where(
        User.is_active.is_(True), User.role.in_(AGENT_ROLES)).order_by(User.full_name, User.id))
    return [(r.id, r.full_name) for r in rows]


def _picker(ctx: WebCtx) -> list[tuple[int, str]]:
    if not can(ctx.principal, canned.RESOURCE, "read"):
        return []
    rows = canned.list_replies(ctx.session, ctx.principal, team_id=ctx.principal.team_id,
                               for_team=True, active_only=True)
    return [(r.id, r.title) for r in rows]


def _ticket_context(ctx: WebCtx, ticket_id: int, *, notice: str = "", alert: str = "",
                    reply_values: dict[str, str] | None = None,
                    reply_errors: dict[str, str] | None = None,
                    prop_errors: dict[str, str] | None = None) -> dict[str, Any]:
    ticket = tickets.get_ticket(ctx.session, ctx.principal, ticket_id)
    may_update = tickets.in_scope(ctx.principal, ticket, "update")
    orders = tickets.order_ids(ctx.session, [ticket.id])[ticket.id]
    names = _names(ctx, User, [ticket.assignee_id], User.full_name)
    team_names = _names(ctx, Team, [ticket.team_id], Team.name)
    summary = customer_summary.summary(ctx.session, ctx.principal, ticket.customer_id,
                                       ticket_id=ticket.id)
    allowed = sorted(tickets.TRANSITIONS[ticket.status])
    return {
        "t": ticket, "reference": ticket.reference, "version": ticket.version,
        "assignee": names.get(ticket.assignee_id or 0, ""),
        "team": team_names.get(ticket.team_id or 0, ""),
        "orders": orders, "tags_text": ", ".join(ticket.tags or []),
        "messages": _conversation(ctx, ticket), "timers": _timers(ctx, ticket),
        "summary": summary, "may_update": may_update,
        "status_choices": [ticket.status, *allowed], "reply_statuses": allowed,
        "priorities": TICKET_PRIORITIES, "agents": _agent_choices(ctx) if may_update else [],
        "teams": [(r.id, r.name) for r in ctx.session.execute(
            select(Team.id, Team.name).order_by(Team.name))] if may_update else [],
        "canned": _picker(ctx) if may_update else [],
        "reply": reply_values or {"body_text": "", "kind": "public", "status": ""},
        "reply_errors": reply_errors or {}, "prop_errors": prop_errors or {},
        "notice": notice, "alert": alert, "poll_seconds": presence.POLL_SECONDS,
        "mood": customer_summary.mood_of(ticket.sentiment),
        "escalated": ticket.escalation_level > 0,
        "can_escalate": may_update,
        "closed": ticket.status == "closed",
    }


def _ticket_page(request: Request, ctx: WebCtx, ticket_id: int, status_code: int = 200,
                 **kw: Any) -> Response:
    context = _ticket_context(ctx, ticket_id, **kw)
    return render(request, "service/workspace/ticket.html", context, status_code=status_code)


TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get(BASE + "/tickets/new")
def new_ticket(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, tickets.RESOURCE, "create"):
        raise Forbidden("Your role may not create tickets.")
    customer = request.query_params.get("customer_id", "")
    values = dict.fromkeys(NEW_FIELDS, "")
    values.update({"priority": "normal", "channel": "phone", "call_direction": "inbound",
                   "customer_id": customer if whole_number(customer, low=1) else ""})
    return _new_form(request, values)


def _new_form(request: Request, values: dict[str, str], errors: dict[str, str] | None = None,
              alert: str = "", status_code: int = 200) -> Response:
    return render(request, "service/workspace/new.html", {
        "values": values, "errors": errors or {}, "alert": alert,
        "priorities": TICKET_PRIORITIES, "channels": NEW_CHANNELS,
    }, status_code=status_code)


def _int_or_none(value: str, name: str) -> int | None:
    if not value:
        return None
    number = whole_number(value, low=1)
    if number is None:
        raise ValidationProblem("Must be a whole number.", field=name)
    return number


@router.post(BASE + "/tickets")
def create_ticket(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, tickets.RESOURCE, "create"):
        raise Forbidden("Your role may not create tickets.")
    values = {name: ctx.field(name) for name in NEW_FIELDS}
    try:
        if not values["subject"]:
            raise ValidationProblem("Give the ticket a subject.", field="subject")
        if not values["body_text"]:
            raise ValidationProblem("Describe the request or the call.", field="body_text")
        customer_id = _int_or_none(values["customer_id"], "customer_id")
        if customer_id is None and not values["requester_email"]:
            raise ValidationProblem("Give a customer id or the requester's e-mail.",
                                    field="requester_email")
        channel = values["channel"] if values["channel"] in ("agent", "phone") else "agent"
        call = None
        if channel == "phone":
            duration = _int_or_none(values["call_duration"], "call_duration")
            call = {"direction": values["call_direction"] if values["call_direction"] in (
                "inbound", "outbound") else "inbound",
                "duration_seconds": duration * 60 if duration is not None else None,
                "outcome": values["call_outcome"] or None}
        ticket = tickets.create_ticket(
            ctx.session, ctx.principal, subject=values["subject"], channel=channel,
            body_text=values["body_text"], customer_id=customer_id,
            requester_email=values["requester_email"] or None,
            requester_name=values["requester_name"] or None,
            priority=values["priority"] or "normal", category=values["category"] or None,
            internal_author=True, call=call)
        ticket_id = ticket.id
        ctx.commit()
    except Forbidden:
        raise
    except Problem as exc:
        ctx.session.rollback()
        name = (exc.field or "subject").partition(".")[0]
        field = name if name in NEW_FIELDS else "subject"
        return _new_form(request, values, {field: exc.detail},
                         "The ticket was not created: please correct the highlighted field.",
                         status_code=422)
    return RedirectResponse(f"{BASE}/tickets/{ticket_id}?done=created", status_code=303)


@router.get(BASE + "/tickets/{ticket_id}")
def ticket_page(request: Request, ticket_id: TicketId,
                done: Annotated[str | None, Query(max_length=40)] = None,
                ctx: WebCtx = Depends(web_ctx)) -> Response:
    context = _ticket_context(ctx, ticket_id, notice=NOTICES.get(done or "", ""))
    audit.record_read(ctx.principal, tickets.RESOURCE, [ticket_id], tickets.READ_FIELDS,
                      {"via": "web.ticket"})
    customer_summary.audit_summary(ctx.principal, context["summary"], "web.ticket")
    return render(request, "service/workspace/ticket.html", context)


def _version(ctx: WebCtx) -> int:
    version = whole_number(ctx.field("version"), low=1)
    if version is None:
        raise ValidationProblem("The form is missing the ticket's version; reload the page.",
                                field="version")
    return version


def _uploads(ctx: WebCtx) -> list[tickets.NewAttachment]:
    files = []
    for item in ctx.form.getlist("attachments") if ctx.form is not None else []:
        if isinstance(item, UploadFile) and item.filename:
            files.append(tickets.NewAttachment(
                filename=item.filename, content_type=item.content_type or
                "application/octet-stream", data=item.file.read()))
    return files


@router.post(BASE + "/tickets/{ticket_id}/reply")
def reply(request: Request, ticket_id: TicketId, ctx: WebCtx = Depends(web_ctx)) -> Response:
    values = {"body_text": ctx.field("body_text"), "kind": ctx.field("kind") or "public",
              "status": ctx.field("status")}
    internal = values["kind"] == "internal"
    try:
        if not values["body_text"]:
            raise ValidationProblem("Write the reply first.", field="body_text")
        tickets.reply(ctx.session, ctx.principal, ticket_id, body_text=values["body_text"],
                      internal=internal, status=values["status"] or None,
                      attachments=_uploads(ctx), expected_version=_version(ctx))
        presence.leave(ctx.session, ctx.principal, ticket_id)
        ctx.commit()
    except (Forbidden, NotFound):
        raise
    except Problem as exc:
        ctx.session.rollback()
        if exc.status == 412:
            return _ticket_page(request, ctx, ticket_id, 409, alert=STALE, reply_values=values)
        name = (exc.field or "body_text").partition(".")[0]
        field = name if name in ("body_text", "status", "attachments") else "body_text"
        return _ticket_page(request, ctx, ticket_id, 422, reply_values=values,
                            reply_errors={field: exc.detail},
                            alert="The reply was not sent: " + exc.detail)
    done = "noted" if internal else "replied"
    return RedirectResponse(f"{BASE}/tickets/{ticket_id}?done={done}#conversation",
                            status_code=303)


@router.post(BASE + "/tickets/{ticket_id}/properties")
def save_properties(request: Request, ticket_id: TicketId,
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    fields = ("status", "priority", "category", "tags", "assignee_id", "team_id", "order_id")
    values = {name: ctx.field(name) for name in fields}
    try:
        ticket = tickets.get_ticket(ctx.session, ctx.principal, ticket_id, "update")
        seen = _version(ctx)
        if seen != ticket.version:
            return _ticket_page(request, ctx, ticket_id, 409, alert=STALE)
        tags = [t.strip() for t in values["tags"].split(",") if t.strip()]
        try:
            data = TicketUpdate(**{k: v for k, v in {
                "status": values["status"] or None, "priority": values["priority"] or None,
                "category": values["category"] or None, "tags": tags}.items()
                if v is not None or k == "category"})
        except ValidationError as exc:
            errors = form_errors(exc, "status")
            return _ticket_page(request, ctx, ticket_id, 422, prop_errors=errors,
                                alert="Not saved: " + "; ".join(errors.values()))
        tickets.update_ticket(ctx.session, ctx.principal, ticket, data, expected_version=seen)
        assignee = _int_or_none(values["assignee_id"], "assignee_id")
        team = _int_or_none(values["team_id"], "team_id")
        if (assignee is not None and assignee != ticket.assignee_id) or (
                team is not None and team != ticket.team_id):
            tickets.assign(ctx.session, ctx.principal, ticket,
                           assignee_id=assignee if assignee != ticket.assignee_id else None,
                           team_id=team if team != ticket.team_id else None)
        order = _int_or_none(values["order_id"], "order_id")
        if order is not None:
            tickets.link_order(ctx.session, ctx.principal, ticket, order)
        ctx.commit()
    except (Forbidden, NotFound):
        raise
    except Problem as exc:
        ctx.session.rollback()
        if exc.status == 412:
            return _ticket_page(request, ctx, ticket_id, 409, alert=STALE)
        field = (exc.field or "status").partition(".")[0]
        return _ticket_page(request, ctx, ticket_id, 422, prop_errors={field: exc.detail},
                            alert="Not saved: " + exc.detail)
    return RedirectResponse(f"{BASE}/tickets/{ticket_id}?done=saved", status_code=303)


@router.post(BASE + "/tickets/{ticket_id}/escalate")
def escalate(request: Request, ticket_id: TicketId, ctx: WebCtx = Depends(web_ctx)) -> Response:
    from accord.service import escalation

    reason = ctx.field("reason") or "Escalated by an agent"
    try:
        escalation.escalate(ctx.session, ctx.principal, ticket_id, reason[:200])
        ctx.commit()
    except (Forbidden, NotFound):
        raise
    except Problem as exc:
        ctx.session.rollback()
        return _ticket_page(request, ctx, ticket_id, exc.status if exc.status < 500 else 422,
                            alert="Not escalated: " + exc.detail)
    return RedirectResponse(f"{BASE}/tickets/{ticket_id}?done=escalated", status_code=303)


@router.post(BASE + "/tickets/{ticket_id}/presence")
def presence_banner(request: Request, ticket_id: TicketId,
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    """The collision banner (HTMX poll): records the viewer, lists the others.

    The banner sits in a live region, so re-sending the same text every poll would have screen
    readers repeat it: the banner carries a signature of what it shows (`seen`), and an unchanged
    one is answered 204, which HTMX does not swap."""
    ticket = tickets.get_ticket(ctx.session, ctx.principal, ticket_id)
    # only someone who may reply can be "replying" (a reader's draft would hold agents back)
    composing = bool(ctx.field("body_text")) and tickets.in_scope(ctx.principal, ticket,
                                                                   "update")
    presence.touch(ctx.session, ctx.principal, ticket_id, composing)
    found = presence.others(ctx.session, ticket_id, ctx.principal.user_id)
    ctx.commit()
    signature = presence.signature(found)
    seen = ctx.form.get("seen") if ctx.form is not None else None
    if isinstance(seen, str) and seen == signature:
        return Response(status_code=204)
    return render(request, "service/workspace/_presence.html",
                  {"others": found, "ticket_id": ticket_id, "signature": signature,
                   "anyone_composing": any(o.composing for o in found)})


@router.post(BASE + "/tickets/{ticket_id}/canned")
def insert_canned(request: Request, ticket_id: TicketId,
                  ctx: WebCtx = Depends(web_ctx)) -> Response:
    """The reply box with the chosen canned reply, personalised, appended (HTMX swap)."""
    body = ctx.form.get("body_text") if ctx.form is not None else ""
    current = body if isinstance(body, str) else ""
    error = ""
    try:
        reply_id = _int_or_none(ctx.field("canned_id"), "canned_id")
        if reply_id is None:
            raise ValidationProblem("Choose a canned reply.", field="canned_id")
        text = canned.render_for(ctx.session, ctx.principal, ticket_id, reply_id)
        current = f"{current.rstrip()}\n\n{text}" if current.strip() else text
    except Forbidden:
        raise
    except Problem as exc:
        error = exc.detail
    return render(request, "service/workspace/_reply_box.html",
                  {"body_text": current, "canned_error": error, "reply_error": ""},
                  status_code=422 if error else 200)
