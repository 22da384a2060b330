"""Canned replies: reusable answers that agents insert into a reply, personalised per ticket.

Who may do what: writing canned replies is service configuration (`service_config` create /
update / delete, managers and admins); agents read them (`service_config` read) and render one
for a ticket they may read (`tickets` read).

Personalisation is a Jinja2 template rendered in a *sandbox*, because the bodies are written
by people other than the agents who send them and are rendered on the server:

* `jinja2.sandbox.SandboxedEnvironment` (no access to `_`-prefixed attributes, unsafe callables
  refused); autoescaping is off because the result is plain text put into a textarea (the page
  escapes it on display);
* on top of that the template's syntax tree is checked against an allow-list: placeholders
  (`{{ customer.first_name }}`), `{% if %}`, comparisons, literals and a few text filters.
  Loops, macros, calls, includes and `_`-attributes are refused with a 422 naming `body` —
  when the reply is saved and again when it is rendered;
* the only variables are `customer` (first_name, last_name, display_name), `ticket`
  (reference, subject, due) and `agent` (name, first_name), all plain text; an unknown
  variable or attribute renders empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.access.service import require
from accord.core.clock import as_utc
from accord.core.errors import NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.validation import RowId, StrictIn
from accord.models import Customer, Team, User
from accord.models.service import CannedReply, Ticket

RESOURCE = "service_config"
AUDIT_RESOURCE = "canned_replies"
BODY_MAX = 20_000
OUTPUT_MAX = 50_000  # a rendered reply longer than this is refused (runaway templates)
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "customer": ("first_name", "last_name", "display_name"),
    "ticket": ("reference", "subject", "due"),
    "agent": ("name", "first_name"),
}
ALLOWED_FILTERS = frozenset({"default", "upper", "lower", "title", "capitalize", "trim",
                             "truncate", "d"})
# The syntax a canned reply may use: output, placeholders, if/else, comparisons, literals.
ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Getattr,
    nodes.Const, nodes.Filter, nodes.If, nodes.CondExpr, nodes.And, nodes.Or, nodes.Not,
    nodes.Compare, nodes.Operand, nodes.Concat, nodes.Test,
)


class CannedReplyCreate(StrictIn):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=BODY_MAX)
    category: str | None = Field(default=None, max_length=60)
    team_id: RowId | None = None
    active: bool = True


class CannedReplyUpdate(StrictIn):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=BODY_MAX)
    category: str | None = Field(default=None, max_length=60)
    team_id: RowId | None = None
    active: bool | None = None


class CannedReplyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    body: str
    category: str | None
    team_id: int | None
    active: bool
    created_by: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class RenderedOut(BaseModel):
    reply_id: int
    ticket_id: int
    text: str


# --- the sandbox ---------------------------------------------------------------------------------

class _Env(SandboxedEnvironment):
    """The sandbox: besides Jinja's own rules, no attribute of a non-placeholder object."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return isinstance(obj, SimpleNamespace) and not attr.startswith("_") and \
            super().is_safe_attribute(obj, attr, value)

    def is_safe_callable(self, obj: Any) -> bool:
        return False


ENV = _Env(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=True)
for _name in list(ENV.filters):
    if _name not in ALLOWED_FILTERS:
        del ENV.filters[_name]
ENV.globals.clear()
ENV.tests = {k: v for k, v in ENV.tests.items() if k in ("defined", "undefined", "none")}


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _refuse(detail: str) -> ValidationProblem:
    return ValidationProblem(f"body: {detail}", field="body")


def check_template(body: str) -> nodes.Template:
    """Parse a body and refuse anything outside the allow-list (422 naming `body`)."""
    try:
        tree = ENV.parse(body)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" on line {line}" if line else ""
        raise _refuse(f"template error{where}: {exc.message or exc}") from None
    for node in _walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise _refuse(f"{type(node).__name__.lower()} is not allowed in a canned reply; "
                          "use placeholders such as {{ customer.first_name }} and {% if %}")
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise _refuse(f"attribute {node.attr!r} is not allowed")
        if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            raise _refuse(f"filter {node.name!r} is not allowed (allowed: "
                          f"{', '.join(sorted(ALLOWED_FILTERS))})")
        if isinstance(node, nodes.Filter) and node.name == "truncate" and any(
                not isinstance(a, nodes.Const) for a in node.args):
            raise _refuse("truncate takes literal arguments only")
    return tree


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def variables(session: Session, ticket: Ticket, agent: User | None) -> dict[str, SimpleNamespace]:
    """The whitelisted placeholder values for one ticket and agent (plain text only)."""
    first = last = display = ""
    if ticket.customer_id is not None:
        customer = session.get(Customer, ticket.customer_id)
        if customer is not None:
            first, last = _text(customer.first_name), _text(customer.last_name)
            display = _text(customer.display_name) or f"{first} {last}".strip()
    if not (first or last or display) and ticket.requester_name:
        display = ticket.requester_name
        first = ticket.requester_name.split()[0]
    due = as_utc(ticket.due_at).strftime("%d %b %Y %H:%M UTC") if ticket.due_at else ""
    name = agent.full_name if agent is not None else ""
    return {
        "customer": SimpleNamespace(first_name=first, last_name=last, display_name=display),
        "ticket": SimpleNamespace(reference=ticket.reference, subject=ticket.subject, due=due),
        "agent": SimpleNamespace(name=name, first_name=name.split()[0] if name else ""),
    }


def render_text(body: str, values: dict[str, SimpleNamespace]) -> str:
    """Render a checked body with the given values; every failure is a 422 naming `body`."""
    tree = check_template(body)
    try:
        text = ENV.from_string(tree).render(**values)
    except TemplateError as exc:  # SecurityError included
        raise _refuse(f"could not be rendered: {exc.message or exc}") from None
    if len(text) > OUTPUT_MAX:
        raise _refuse(f"the rendered reply exceeds {OUTPUT_MAX} characters")
    return text


def render(session: Session, reply: CannedReply, ticket: Ticket, agent: User | None) -> str:
    """The reply personalised for the ticket's customer and the agent who sends it."""
    return render_text(reply.body, variables(session, ticket, agent))


def render_for(session: Session, principal: Principal, ticket_id: int, reply_id: int) -> str:
    """Render for a ticket the principal may read (404 otherwise) with the principal as agent."""
    from accord.service import tickets

    ticket = tickets.get_ticket(session, principal, ticket_id)
    reply = get_reply(session, principal, reply_id)
    if not reply.active:
        raise NotFound(f"canned reply {reply_id} does not exist")
    agent = session.get(User, principal.user_id) if principal.user_id is not None else None
    return render(session, reply, ticket, agent)


# --- CRUD ----------------------------------------------------------------------------------------

def list_replies(session: Session, principal: Principal, *, team_id: int | None = None,
                 for_team: bool = False, active_only: bool = False) -> list[CannedReply]:
    """All canned replies by title; `for_team` keeps the shared ones and the team's (picker)."""
    require(principal, RESOURCE, "read")
    stmt = select(CannedReply)
    if for_team:
        stmt = stmt.where(or_(CannedReply.team_id.is_(None), CannedReply.team_id == team_id)
                          if team_id is not None else CannedReply.team_id.is_(None))
    elif team_id is not None:
        stmt = stmt.where(CannedReply.team_id == team_id)
    if active_only:
        stmt = stmt.where(CannedReply.active.is_(True))
    return list(session.scalars(stmt.order_by(CannedReply.title, CannedReply.id)))


def get_reply(session: Session, principal: Principal, reply_id: int,
              action: str = "read") -> CannedReply:
    require(principal, RESOURCE, action)
    reply = session.get(CannedReply, reply_id)
    if reply is None:
        raise NotFound(f"canned reply {reply_id} does not exist")
    return reply


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise ValidationProblem(f"team {team_id} does not exist", field="team_id")


def create_reply(session: Session, principal: Principal, data: CannedReplyCreate
                 ) -> CannedReply:
    require(principal, RESOURCE, "create")
    check_template(data.body)
    _check_team(session, data.team_id)
    reply = CannedReply(**data.model_dump(), created_by=principal.user_id)
    session.add(reply)
    session.flush()
    audit.record(session, principal, "create", AUDIT_RESOURCE, reply.id,
                 data.model_dump(exclude_unset=True).keys())
    emit(session, "canned_reply.created", "canned_reply", reply.id, {"title": reply.title},
         principal.user_id)
    return reply


def update_reply(session: Session, principal: Principal, reply: CannedReply,
                 data: CannedReplyUpdate) -> CannedReply:
    require(principal, RESOURCE, "update")
    changes = data.model_dump(exclude_unset=True)
    for key in ("title", "body", "active"):
        if key in changes and changes[key] is None:
            raise ValidationProblem(f"{key} cannot be null", field=key)
    if "body" in changes:
        check_template(changes["body"])
    if "team_id" in changes:
        _check_team(session, changes["team_id"])
    changed = [k for k, v in changes.items() if getattr(reply, k) != v]
    if not changed:
        return reply
    for key in changed:
        setattr(reply, key, changes[key])
    session.flush()
    audit.record(session, principal, "update", AUDIT_RESOURCE, reply.id, changed)
    emit(session, "canned_reply.updated", "canned_reply", reply.id, {"fields": sorted(changed)},
         principal.user_id)
    return reply


def delete_reply(session: Session, principal: Principal, reply: CannedReply) -> None:
    require(principal, RESOURCE, "delete")
    audit.record(session, principal, "delete", AUDIT_RESOURCE, reply.id, (),
                 {"title": reply.title})
    session.delete(reply)
    session.flush()
