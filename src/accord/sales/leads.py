"""Leads: the one write path (policy, audit, events), matching on arrival, qualification and the
first-touch SLA.

Record scope comes from the `leads` grant over `owner_id`/`team_id`: not readable → 404 (no
existence oracle), readable but not allowed → 403.

Matching: every captured lead (form, import, event) is first matched against the open leads
(e-mail, then phone, normalised as the integration pipeline does) and then against known
customers (their e-mails and phones). A known lead is updated (new non-empty values fill its
blanks, never overwrite) and gets the engagement; nothing new is created. A known customer is
*linked*: the lead is still created, with `customer_id` set, because an existing customer
asking for a demo or a whitepaper is a new sales opportunity (upsell) that a rep must work;
conversion then links the deal to that customer instead of creating a second profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal, record_in_scope, scope_clause, scope_for
from accord.access.service import check_reassignment, require
from accord.core.clock import as_utc, utcnow
from accord.core.contact import InvalidValue
from accord.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
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
from accord.core.settings import get_settings
from accord.core.workflow import check_transition
from accord.integration.standardise import (
    standardise_country,
    standardise_email,
    standardise_phone,
)
from accord.models import Customer, CustomerEmail, CustomerPhone
from accord.models.sales import (
    DISQUALIFY_REASONS,
    LEAD_SOURCES,
    LEAD_STATUSES,
    Lead,
    LeadEngagement,
)
from accord.sales import assignment, scoring
from accord.sales.leads_schemas import (
    LeadAssignIn,
    LeadCreate,
    LeadOut,
    LeadStatusIn,
    LeadUpdate,
    SlaOut,
)

RESOURCE = "leads"
_CMP = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})
_RANGE = frozenset({"eq", "lt", "lte", "gt", "gte"})
# Statuses a person can still be "known" in: a converted lead became a customer (matched there).
MATCHABLE = ("new", "working", "nurturing", "qualified", "disqualified")
# The qualification workflow, in one table. `converted` is reached only by conversion.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"working", "nurturing", "qualified", "disqualified"}),
    "working": frozenset({"nurturing", "qualified", "disqualified"}),
    "nurturing": frozenset({"working", "qualified", "disqualified"}),
    "qualified": frozenset({"working", "nurturing", "disqualified"}),
    "disqualified": frozenset({"working", "nurturing"}),
    "converted": frozenset(),
}
assert set(TRANSITIONS) == set(LEAD_STATUSES)
SLA_STATES = ("due", "met", "breached", "overdue")
# Fields a capture may fill on a known lead (blanks only).
FILLABLE = ("first_name", "last_name", "email", "phone", "company", "job_title", "website",
            "industry", "employees", "country", "preferred_language")
PERSONAL_FIELDS = ("first_name", "last_name", "email", "phone", "notes")


# --- list: allow-listed filters and sorts --------------------------------------------------------

def _sla_filter(op: str, value: Any) -> ColumnElement[bool]:
    now = utcnow()
    due, touched = Lead.first_touch_due_at, Lead.first_touched_at
    clauses = {
        # still open and not late yet
        "due": and_(touched.is_(None), due >= now),
        "met": and_(touched.is_not(None), or_(due.is_(None), touched <= due)),
        # late: untouched past the deadline, or touched after it
        "breached": or_(and_(touched.is_(None), due < now), touched > due),
        # the actionable subset of breached: nobody has touched it yet
        "overdue": and_(touched.is_(None), due < now),
    }
    values = value if isinstance(value, list) else [value]
    return or_(*(clauses[v] for v in values))


def _email_filter(op: str, value: Any) -> ColumnElement[bool]:
    values = value if isinstance(value, list) else [value]
    try:
        normalized = [standardise_email(v) for v in values]
    except InvalidValue as exc:
        raise ValidationProblem(f"invalid e-mail address: {exc}", field="email") from None
    return Lead.email_normalized.in_(normalized)


FILTERS: dict[str, Filter] = {
    "id": Filter(Lead.id, int, frozenset({"eq", "in", "lt", "gt"})),
    "owner_id": Filter(Lead.owner_id, int, frozenset({"eq", "in", "isnull"})),
    "team_id": Filter(Lead.team_id, int, frozenset({"eq", "in", "isnull"})),
    "status": Filter(Lead.status, choices=LEAD_STATUSES, ops=frozenset({"eq", "ne", "in"})),
    "source": Filter(Lead.source, choices=LEAD_SOURCES, ops=frozenset({"eq", "ne", "in"})),
    "country": Filter(Lead.country, ops=frozenset({"eq", "ne", "in", "isnull"})),
    "industry": Filter(Lead.industry, ops=frozenset({"eq", "in", "isnull"})),
    "customer_id": Filter(Lead.customer_id, int, frozenset({"eq", "isnull"})),
    "assignment_rule_id": Filter(Lead.assignment_rule_id, int, frozenset({"eq", "isnull"})),
    "score": Filter(Lead.score, int, _RANGE),
    "fit_score": Filter(Lead.fit_score, int, _RANGE),
    "engagement_score": Filter(Lead.engagement_score, int, _RANGE),
    "created_at": Filter(Lead.created_at, datetime, _CMP),
    "updated_at": Filter(Lead.updated_at, datetime, _CMP),
    "first_touch_due_at": Filter(Lead.first_touch_due_at, datetime, _CMP | {"isnull"}),
    "sla": Filter(_sla_filter, str, frozenset({"eq", "in"}), SLA_STATES),
    "email": Filter(_email_filter, str, frozenset({"eq", "in"})),
}
SORTS: dict[str, Sort] = {
    "id": Sort(Lead.id, int),
    "created_at": Sort(Lead.created_at, datetime),
    "updated_at": Sort(Lead.updated_at, datetime),
    "score": Sort(Lead.score, int),
    "first_touch_due_at": Sort(Lead.first_touch_due_at, datetime),
}


def list_spec() -> ListSpec:
    return ListSpec(resource=RESOURCE, id_column=Lead.id, filters=FILTERS, sorts=SORTS,
                    default_sort="-id")


def list_params(query: dict[str, str]) -> ListParams:
    """The list's query parameters checked against `list_spec` (API and web pages alike)."""
    return request_params(query, list_spec())


def search_clause(q: str) -> ColumnElement[bool]:
    """An e-mail (exact, normalised), an id, or a prefix of the name or company."""
    text = q.strip()
    if "@" in text:
        try:
            return Lead.email_normalized == standardise_email(text)
        except InvalidValue:
            return Lead.email_normalized == text.lower()
    low = text.lower()
    clauses: list[ColumnElement[bool]] = [
        func.lower(Lead.first_name).startswith(low, autoescape=True),
        func.lower(Lead.last_name).startswith(low, autoescape=True),
        func.lower(Lead.company).startswith(low, autoescape=True),
    ]
    if text.isdigit() and len(text) <= 18:
        clauses.append(Lead.id == int(text))
    return or_(*clauses)


def visible_query(principal: Principal, action: str = "read") -> Select[Any]:
    scope = scope_for(principal, RESOURCE, action)
    if scope is None:
        raise Forbidden(f"your role may not {action} leads")
    return select(Lead).where(scope_clause(principal, scope, Lead.owner_id, Lead.team_id))


def list_leads(session: Session, principal: Principal, params: ListParams
               ) -> tuple[list[Lead], str | None]:
    spec = list_spec()
    stmt = visible_query(principal)
    if params.q:
        stmt = stmt.where(search_clause(params.q))
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


def in_scope(principal: Principal, lead: Lead, action: str) -> bool:
    return record_in_scope(principal, scope_for(principal, RESOURCE, action), lead.owner_id,
                           lead.team_id)


def get_lead(session: Session, principal: Principal, lead_id: int, action: str = "read") -> Lead:
    """404 when the caller may not read it (no existence oracle), 403 when it may read, not act."""
    lead = session.get(Lead, lead_id)
    if lead is None or not in_scope(principal, lead, "read"):
        raise NotFound(f"lead {lead_id} does not exist")
    if action != "read" and not in_scope(principal, lead, action):
        raise Forbidden(f"your role may not {action} this lead")
    return lead


def engagements(session: Session, lead: Lead, limit: int = 50) -> list[LeadEngagement]:
    return list(session.scalars(
        select(LeadEngagement).where(LeadEngagement.lead_id == lead.id)
        .order_by(LeadEngagement.occurred_at.desc(), LeadEngagement.id.desc()).limit(limit)))


# --- output --------------------------------------------------------------------------------------

def sla_of(lead: Lead, now: datetime | None = None) -> SlaOut:
    due = as_utc(lead.first_touch_due_at) if lead.first_touch_due_at else None
    touched = as_utc(lead.first_touched_at) if lead.first_touched_at else None
    if touched is not None:
        state = "met" if due is None or touched <= due else "breached"
    elif due is None:
        state = "none"
    else:
        state = "breached" if (now or utcnow()) > due else "due"
    return SlaOut(state=state, due_at=due, touched_at=touched)  # type: ignore[arg-type]


def to_out(lead: Lead) -> LeadOut:
    data = {name: getattr(lead, name) for name in LeadOut.model_fields if name != "sla"}
    data["score_factors"] = data["score_factors"] or {}
    return LeadOut.model_validate({**data, "sla": sla_of(lead)})


# --- normalisation -------------------------------------------------------------------------------

def normalise_contact(values: dict[str, Any]) -> dict[str, Any]:
    """Standardised e-mail, phone (E.164) and country, as the integration pipeline does;
    `ValidationProblem` names the field that cannot be read."""
    out: dict[str, Any] = {}
    if values.get("country"):
        try:
            out["country"] = standardise_country(str(values["country"]))
        except InvalidValue as exc:
            raise ValidationProblem(str(exc), field="country") from None
    if values.get("email"):
        try:
            out["email_normalized"] = standardise_email(str(values["email"]))
        except InvalidValue as exc:
            raise ValidationProblem(f"invalid e-mail address: {exc}", field="email") from None
    if values.get("phone"):
        region = out.get("country") or get_settings().default_region
        try:
            out["phone_e164"] = standardise_phone(str(values["phone"]), region)
        except InvalidValue as exc:
            raise ValidationProblem(str(exc), field="phone") from None
    return out


def _standardise(values: dict[str, Any]) -> dict[str, Any]:
    """`normalise_contact` for a new lead's values: the standardised country replaces the
    given one in `values`; returns the normalised e-mail and phone columns."""
    norm = normalise_contact(values)
    if "country" in norm:
        values["country"] = norm.pop("country")
    return norm


def _check_bant(lead: Lead) -> None:
    if lead.budget is not None and not lead.budget_currency:
        raise ValidationProblem("a budget needs its currency", field="budget_currency")


def _score(session: Session, lead: Lead) -> None:
    """Lead scoring (another part of the domain) runs on capture and on every update, in the
    same transaction; no autoflush, so the change and its scores are one UPDATE (one version)."""
    with session.no_autoflush:
        scoring.score_lead(session, lead)


# --- matching ------------------------------------------------------------------------------------

@dataclass
class Match:
    lead: Lead | None = None
    customer_id: int | None = None
    matched_on: str | None = None


def find_match(session: Session, email_normalized: str | None, phone_e164: str | None) -> Match:
    """The known lead (e-mail first, then phone), else the known customer, for one person."""
    for column, value, name in ((Lead.email_normalized, email_normalized, "email"),
                                (Lead.phone_e164, phone_e164, "phone")):
        if not value:
            continue
        lead = session.scalar(select(Lead).where(column == value, Lead.status.in_(MATCHABLE))
                              .order_by(Lead.id).limit(1))
        if lead is not None:
            return Match(lead=lead, matched_on=f"lead.{name}")
    customer_id = None
    matched_on = None
    if email_normalized:
        customer_id = session.scalar(
            select(CustomerEmail.customer_id)
            .where(CustomerEmail.email_normalized == email_normalized)
            .order_by(CustomerEmail.customer_id).limit(1))
        matched_on = "customer.email"
    if customer_id is None and phone_e164:
        customer_id = session.scalar(
            select(CustomerPhone.customer_id).where(CustomerPhone.e164 == phone_e164)
            .order_by(CustomerPhone.customer_id).limit(1))
        matched_on = "customer.phone"
    if customer_id is None:
        return Match()
    # a merged profile lives on in its survivor
    for _ in range(10):
        survivor = session.scalar(select(Customer.merged_into_id)
                                  .where(Customer.id == customer_id))
        if survivor is None:
            break
        customer_id = survivor
    return Match(customer_id=customer_id, matched_on=matched_on)


# --- capture (forms, imports, events) ------------------------------------------------------------

@dataclass
class Captured:
    lead: Lead | None
    created: bool = False
    duplicate: bool = False  # the engagement's dedupe key was seen before: nothing changed


def engagement_seen(session: Session, dedupe_key: str | None) -> Lead | None:
    if not dedupe_key:
        return None
    lead_id = session.scalar(select(LeadEngagement.lead_id)
                             .where(LeadEngagement.dedupe_key == dedupe_key))
    return session.get(Lead, lead_id) if lead_id is not None else None


def capture(session: Session, principal: Principal, values: dict[str, Any], *, source: str,
            source_detail: str | None, kind: str, detail: dict[str, Any],
            dedupe_key: str | None, team_id: int | None = None, form_slug: str | None = None,
            occurred_at: datetime | None = None) -> Captured:
    """Create or update the lead for one capture and add its engagement, idempotently.

    `values` are already validated lead fields (strings trimmed, limits checked);
    `ValidationProblem` is raised for an e-mail, phone or country that cannot be read."""
    seen = engagement_seen(session, dedupe_key)
    if seen is not None:
        return Captured(seen, duplicate=True)
    values = {k: v for k, v in values.items() if v not in (None, "")}
    norm = _standardise(values)
    now = utcnow()
    at = occurred_at or now
    match = find_match(session, norm.get("email_normalized"), norm.get("phone_e164"))
    created = match.lead is None
    if match.lead is not None:
        lead = match.lead
        filled = [k for k in FILLABLE if values.get(k) is not None and getattr(lead, k) in
                  (None, "")]
        for key in filled:
            setattr(lead, key, values[key])
        for key, value in norm.items():
            if getattr(lead, key) is None:
                setattr(lead, key, value)
        if values.get("notes"):
            lead.notes = ((lead.notes + "\n\n") if lead.notes else "") + values["notes"]
            lead.notes = lead.notes[-5000:]
            filled.append("notes")
        lead.last_engaged_at = max(as_utc(lead.last_engaged_at), at) if lead.last_engaged_at \
            else at
    else:
        lead = Lead(**values, **norm, source=source, source_detail=source_detail,
                    team_id=team_id, customer_id=match.customer_id, last_engaged_at=at,
                    status="new")
        session.add(lead)
        assignment.route(session, lead, form_slug, now)
    session.flush()
    try:
        with session.begin_nested():
            session.add(LeadEngagement(lead_id=lead.id, kind=kind, occurred_at=at,
                                       detail=detail, dedupe_key=dedupe_key))
    except IntegrityError:  # the same capture raced in: it is a duplicate
        return Captured(lead, duplicate=True)
    _score(session, lead)
    session.flush()
    if created:
        audit.record(session, principal, "create", RESOURCE, lead.id, sorted(values),
                     {"via": source, "source_detail": source_detail,
                      "matched": match.matched_on})
        emit(session, "lead.created", "lead", lead.id,
             {"source": source, "owner_id": lead.owner_id, "team_id": lead.team_id,
              "customer_id": lead.customer_id, "assignment_rule_id": lead.assignment_rule_id},
             principal.user_id)
    else:
        audit.record(session, principal, "update", RESOURCE, lead.id, filled,
                     {"via": source, "engagement": kind, "matched": match.matched_on})
        emit(session, "lead.engaged", "lead", lead.id, {"kind": kind, "source": source},
             principal.user_id)
    return Captured(lead, created=created)


# --- the API/UI write path -----------------------------------------------------------------------

def create_lead(session: Session, principal: Principal, data: LeadCreate,
                source: str = "api") -> Lead:
    """A lead entered by a user: they own it. A person already known as an open lead is a 409
    naming that lead (capture paths merge instead); a known customer is linked."""
    require(principal, RESOURCE, "create")
    values = data.model_dump(exclude_none=True)
    norm = _standardise(values)
    match = find_match(session, norm.get("email_normalized"), norm.get("phone_e164"))
    if match.lead is not None:
        field = "email" if match.matched_on == "lead.email" else "phone"
        raise Conflict(f"this person is already lead {match.lead.id}", field=field)
    now = utcnow()
    lead = Lead(**values, **norm, source=source, status="new", owner_id=principal.user_id,
                team_id=principal.team_id, customer_id=match.customer_id,
                created_by=principal.user_id,
                assigned_at=now if principal.user_id is not None else None,
                first_touch_due_at=now + timedelta(hours=assignment.DEFAULT_FIRST_TOUCH_HOURS))
    _check_bant(lead)
    _score(session, lead)
    session.add(lead)
    session.flush()
    audit.record(session, principal, "create", RESOURCE, lead.id,
                 data.model_dump(exclude_unset=True).keys(), {"via": source})
    emit(session, "lead.created", "lead", lead.id,
         {"source": source, "owner_id": lead.owner_id, "team_id": lead.team_id,
          "customer_id": lead.customer_id}, principal.user_id)
    return lead


def update_lead(session: Session, principal: Principal, lead: Lead, data: LeadUpdate) -> Lead:
    """One PATCH, one version: field changes and a status move are written in one flush."""
    if not in_scope(principal, lead, "update"):
        raise Forbidden("your role may not update this lead")
    if lead.status == "converted":
        raise Conflict("a converted lead cannot be changed", field="status")
    sent = data.model_dump(exclude_unset=True)
    status = sent.pop("status", None)
    reason = sent.pop("disqualify_reason", None)
    note = sent.pop("status_note", None) or ""
    changed: list[str] = []
    move: dict[str, Any] | None = None
    with session.no_autoflush:
        wanted: dict[str, Any] = {k: sent[k] for k in ("email", "phone", "country") if k in sent}
        if "phone" in sent and "country" not in sent:
            wanted["country"] = lead.country
        norm = normalise_contact(wanted)
        if sent.get("country") is not None:
            sent["country"] = norm["country"]
        if "email" in sent:
            lead.email_normalized = norm.get("email_normalized")
        if "phone" in sent:
            lead.phone_e164 = norm.get("phone_e164")
        for key, value in sent.items():
            if getattr(lead, key) != value:
                setattr(lead, key, value)
                changed.append(key)
        _check_bant(lead)
        target = status if status is not None else lead.status
        if reason is not None and target != "disqualified":
            raise ValidationProblem("disqualify_reason goes with status=disqualified",
                                    field="disqualify_reason")
        if status is not None and status != lead.status:
            move = _move(lead, status, reason)
        elif reason is not None and reason != lead.disqualify_reason:
            lead.disqualify_reason = reason  # correcting the reason of a disqualified lead
            changed.append("disqualify_reason")
        if not changed and move is None:
            return lead
        lead.updated_at = utcnow()
        _score(session, lead)
    session.flush()
    if changed:
        audit.record(session, principal, "update", RESOURCE, lead.id, changed)
        emit(session, "lead.updated", "lead", lead.id, {"fields": sorted(changed)},
             principal.user_id)
    if move is not None:
        _record_move(session, principal, lead, move, note)
    return lead


def change_status(session: Session, principal: Principal, lead: Lead,
                  data: LeadStatusIn) -> Lead:
    if not in_scope(principal, lead, "update"):
        raise Forbidden("your role may not update this lead")
    if data.status == lead.status:
        if data.status == "disqualified" and data.disqualify_reason not in (
                None, lead.disqualify_reason):
            return update_lead(session, principal, lead, LeadUpdate(
                disqualify_reason=data.disqualify_reason))
        return lead
    with session.no_autoflush:
        move = _move(lead, data.status, data.disqualify_reason)
        lead.updated_at = utcnow()
        _score(session, lead)
    session.flush()
    _record_move(session, principal, lead, move, data.note)
    return lead


def _move(lead: Lead, to: str, reason: str | None) -> dict[str, Any]:
    """Check one status move against `TRANSITIONS` and apply it to the lead (not flushed)."""
    old = lead.status
    check_transition(TRANSITIONS, old, to, record="a lead")
    if to == "disqualified":
        if reason not in DISQUALIFY_REASONS:
            raise ValidationProblem(
                f"disqualifying needs a reason: one of {', '.join(DISQUALIFY_REASONS)}",
                field="disqualify_reason")
        lead.disqualify_reason = reason
    else:
        if reason is not None:
            raise ValidationProblem("disqualify_reason goes with status=disqualified",
                                    field="disqualify_reason")
        lead.disqualify_reason = None
    lead.status = to
    touched = False
    if old == "new" and lead.first_touched_at is None:
        lead.first_touched_at = utcnow()  # a user working the lead is its first touch
        touched = True
    return {"from": old, "to": to, "first_touch": touched}


def _record_move(session: Session, principal: Principal, lead: Lead, move: dict[str, Any],
                 note: str) -> None:
    fields = ["status", "disqualify_reason"] + (["first_touched_at"] if move["first_touch"]
                                                else [])
    audit.record(session, principal, "update", RESOURCE, lead.id, fields,
                 {"from": move["from"], "to": move["to"],
                  "disqualify_reason": lead.disqualify_reason}, reason=note)
    emit(session, "lead.status_changed", "lead", lead.id,
         {"from": move["from"], "to": move["to"], "disqualify_reason": lead.disqualify_reason,
          "owner_id": lead.owner_id}, principal.user_id)


SYSTEM_TOUCH = Principal(user_id=None, email="system:first-touch", role="admin", via="system")


def mark_first_touch(session: Session, lead: Lead, at: datetime,
                     principal: Principal | None = None) -> bool:
    """Record the lead's first touch (a logged call, e-mail, meeting ...) once; a `new` lead
    moves to `working`. Returns whether anything changed. The caller has checked its own
    policy (the activities part calls this when an activity about the lead is logged)."""
    actor = principal or SYSTEM_TOUCH
    changed = False
    if lead.first_touched_at is None:
        lead.first_touched_at = as_utc(at)
        changed = True
    if lead.status == "new":
        old = lead.status
        lead.status = "working"
        lead.updated_at = utcnow()
        session.flush()
        audit.record(session, actor, "update", RESOURCE, lead.id,
                     ["first_touched_at", "status"], {"from": old, "to": "working",
                                                      "via": "first_touch"})
        emit(session, "lead.status_changed", "lead", lead.id,
             {"from": old, "to": "working", "disqualify_reason": None,
              "owner_id": lead.owner_id, "via": "first_touch"}, actor.user_id)
        return True
    if changed:
        session.flush()
        audit.record(session, actor, "update", RESOURCE, lead.id, ["first_touched_at"],
                     {"via": "first_touch"})
    return changed


def assign(session: Session, principal: Principal, lead: Lead, data: LeadAssignIn) -> Lead:
    changes = data.model_dump(exclude_unset=True)
    check_reassignment(session, principal, RESOURCE, lead, changes)
    for key, value in changes.items():
        setattr(lead, key, value)
    lead.assigned_at = utcnow()
    session.flush()
    audit.record(session, principal, "assign", RESOURCE, lead.id, list(changes))
    emit(session, "lead.assigned", "lead", lead.id, changes, principal.user_id)
    return lead


def delete_lead(session: Session, principal: Principal, lead: Lead) -> None:
    if not in_scope(principal, lead, "delete"):
        raise Forbidden("your role may not delete this lead")
    audit.record(session, principal, "delete", RESOURCE, lead.id)
    emit(session, "lead.deleted", "lead", lead.id, {}, principal.user_id)
    session.delete(lead)
    session.flush()
