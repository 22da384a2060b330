"""Activities (tasks, calls, meetings, notes): the one write path, the customer-timeline mirror,
the leads' first touch, due reminders and the salesperson's "My day".

An activity hangs off at least one lead, customer, account or deal, each of which the actor must
be able to read (404 otherwise, as if it did not exist). Its own record scope is the policy's
`activities` resource over `owner_id`/`team_id`: the creator owns it, in the creator's team.

Activities about a customer appear on the customer's interaction timeline: each keeps one
Interaction in step (`interaction_id`), written through the interactions service. That mirror
is a consequence of the activity write the policy already allowed, so it is written on the
actor's behalf with a principal that carries the actor's identity (the audit trail names them)
and the rights the mirror needs: a salesperson may complete their own call on a teammate's
customer without holding the right to edit that customer's timeline by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from accord.access import audit
from accord.access.policy import Principal, can, record_in_scope, scope_clause, scope_for
from accord.access.service import require
from accord.core import mail
from accord.core.clock import as_utc, utcnow
from accord.core.db import is_postgres
from accord.core.errors import Forbidden, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate
from accord.customers import accounts
from accord.customers import service as customers
from accord.interactions import service as interactions
from accord.interactions.schemas import InteractionFields, InteractionUpdate
from accord.models import Interaction, User
from accord.models.sales import (
    ACTIVITY_KINDS,
    ACTIVITY_STATUSES,
    Activity,
    Deal,
    Lead,
    Notification,
)
from accord.sales import notifications
from accord.sales.activities_schemas import (
    LINKS,
    ActivityComplete,
    ActivityCreate,
    ActivityUpdate,
)

RESOURCE = "activities"
_CMP = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})
_IDS = frozenset({"eq", "in", "isnull"})
# What the timeline entry of each kind is filed under (the channels have no "meeting").
MIRROR_CHANNEL = {"call": "phone", "meeting": "phone", "task": "web", "note": "web"}
MIRROR_SOURCE = "sales.activity"
# Kinds that touch a lead when logged; a task touches it when completed.
TOUCHING_KINDS = frozenset({"call", "meeting"})
REMINDER_BATCH = 500


# --- scope -------------------------------------------------------------------------------------

def list_spec() -> ListSpec:
    return ListSpec(
        resource=RESOURCE,
        id_column=Activity.id,
        filters={
            "id": Filter(Activity.id, int, frozenset({"eq", "in", "lt", "gt"})),
            "owner_id": Filter(Activity.owner_id, int, _IDS),
            "kind": Filter(Activity.kind, choices=ACTIVITY_KINDS),
            "status": Filter(Activity.status, choices=ACTIVITY_STATUSES),
            "due_at": Filter(Activity.due_at, datetime, _CMP | {"isnull"}),
            "lead_id": Filter(Activity.lead_id, int, _IDS),
            "customer_id": Filter(Activity.customer_id, int, _IDS),
            "account_id": Filter(Activity.account_id, int, _IDS),
            "deal_id": Filter(Activity.deal_id, int, _IDS),
        },
        sorts={
            "id": Sort(Activity.id, int),
            "due_at": Sort(Activity.due_at, datetime),
            "created_at": Sort(Activity.created_at, datetime),
        },
        default_sort="due_at",
    )


def in_scope(principal: Principal, activity: Activity, action: str) -> bool:
    return record_in_scope(principal, scope_for(principal, RESOURCE, action),
                           activity.owner_id, activity.team_id)


def get_activity(session: Session, principal: Principal, activity_id: int,
                 action: str = "read") -> Activity:
    """404 when missing or out of read scope, also for a role that reads no activities at all
    (no existence oracle); 403 when readable but the action is not allowed."""
    activity = session.get(Activity, activity_id)
    if activity is None or not in_scope(principal, activity, "read"):
        raise NotFound(f"activity {activity_id} does not exist")
    if action != "read" and not in_scope(principal, activity, action):
        raise Forbidden(f"your role may not {action} this activity")
    return activity


def list_activities(session: Session, principal: Principal, params: ListParams
                    ) -> tuple[list[Activity], str | None]:
    scope = scope_for(principal, RESOURCE, "read")
    if scope is None:
        raise Forbidden("your role may not read activities")
    spec = list_spec()
    stmt = select(Activity).where(
        scope_clause(principal, scope, Activity.owner_id, Activity.team_id))
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


def _readable_owned(session: Session, principal: Principal, model: Any, resource: str,
                    record_id: int, label: str) -> Any:
    """A lead or deal the actor may read (their scope on the owner/team), else 404."""
    row = session.get(model, record_id)
    if row is None or not record_in_scope(principal, scope_for(principal, resource, "read"),
                                          row.owner_id, row.team_id):
        raise NotFound(f"{label} {record_id} does not exist", field=f"{label}_id")
    return row


def _require_a_link(links: dict[str, int | None], field: str = "customer_id") -> None:
    if not any(links.values()):
        raise ValidationProblem("an activity needs at least one of lead_id, customer_id, "
                                "account_id or deal_id", field=field)


def _check_links(session: Session, principal: Principal, links: dict[str, int | None]) -> None:
    """Every linked record exists and is readable by the actor (404 naming the field)."""
    if links.get("customer_id"):
        try:
            customers.get_customer(session, principal, links["customer_id"])
        except NotFound:
            raise NotFound(f"customer {links['customer_id']} does not exist",
                           field="customer_id") from None
    if links.get("account_id"):
        try:
            accounts.get_account(session, principal, links["account_id"])
        except (NotFound, Forbidden):
            raise NotFound(f"account {links['account_id']} does not exist",
                           field="account_id") from None
    if links.get("lead_id"):
        _readable_owned(session, principal, Lead, "leads", links["lead_id"], "lead")
    if links.get("deal_id"):
        _readable_owned(session, principal, Deal, "deals", links["deal_id"], "deal")


def _check_call_fields(kind: str, values: dict[str, Any]) -> None:
    if values.get("direction") is not None and kind != "call":
        raise ValidationProblem("only calls have a direction", field="direction")
    for name in ("duration_minutes", "outcome"):
        if values.get(name) is not None and kind not in ("call", "meeting"):
            raise ValidationProblem(f"only calls and meetings have {name}", field=name)


# --- the timeline mirror -----------------------------------------------------------------------

def _mirror_principal(principal: Principal) -> Principal:
    """The actor, with the rights the derived timeline write needs (see the module docstring).
    Only ever handed to the interactions service for the mirror of an allowed activity write."""
    return Principal(user_id=principal.user_id, email=principal.email, role="admin",
                     team_id=principal.team_id, via="system",
                     extra={"on_behalf_of": RESOURCE})


def _mirror_fields(a: Activity) -> dict[str, Any]:
    occurred = a.done_at or a.due_at or a.created_at or utcnow()
    return {
        "channel": MIRROR_CHANNEL[a.kind],
        "direction": a.direction or "outbound",
        "department": "sales",
        "occurred_at": as_utc(occurred),
        "subject": f"{a.kind.capitalize()}: {a.subject}"[:300],
        "body": a.body or "",
    }


def _set_interaction(session: Session, a: Activity, interaction_id: int | None) -> None:
    """Bookkeeping, not a change of the activity: written without bumping its version (a
    client holding the ETag of the activity it just wrote must not see it go stale)."""
    t = Activity.__table__
    session.execute(update(t).where(t.c.id == a.id)
                    .values(interaction_id=interaction_id, updated_at=t.c.updated_at))
    set_committed_value(a, "interaction_id", interaction_id)


def timeline_customer(session: Session, a: Activity) -> int | None:
    """Whose timeline the activity belongs on: its customer, else the customer of its deal, else
    the known customer of its lead (a call on a deal is a call with that customer)."""
    if a.customer_id is not None:
        return a.customer_id
    if a.deal_id is not None:
        found = session.scalar(select(Deal.customer_id).where(Deal.id == a.deal_id))
        if found is not None:
            return found
    if a.lead_id is not None:
        return session.scalar(select(Lead.customer_id).where(Lead.id == a.lead_id))
    return None


def _sync_mirror(session: Session, principal: Principal, a: Activity) -> None:
    """Keep the activity's timeline entry in step: one while it is about a customer and not
    cancelled, none otherwise (an entry deleted by hand is recreated on the next change)."""
    mp = _mirror_principal(principal)
    row = session.get(Interaction, a.interaction_id) if a.interaction_id else None
    customer_id = timeline_customer(session, a)
    wanted = customer_id is not None and a.status != "cancelled"
    if row is not None and (not wanted or row.customer_id != customer_id):
        interactions.delete_interaction(session, mp, row)
        _set_interaction(session, a, None)
        row = None
    if not wanted:
        return
    fields = _mirror_fields(a)
    if row is None:
        assert customer_id is not None
        created = interactions.create_interaction(
            session, mp, customer_id,
            InteractionFields(**fields, source=MIRROR_SOURCE,
                              metadata={"activity_id": a.id, "kind": a.kind}))
        _set_interaction(session, a, created.id)
        return
    changed = {k: v for k, v in fields.items() if getattr(row, k) != v}
    if changed:
        interactions.update_interaction(session, mp, row, InteractionUpdate(**changed))


# --- leads: the first touch --------------------------------------------------------------------

def _touch_lead(session: Session, principal: Principal, a: Activity) -> None:
    """The first call, meeting or completed task on a lead stops its first-touch clock and moves
    a new lead to working (`leads.mark_first_touch`, which audits and emits the change)."""
    if a.lead_id is None:
        return
    if a.kind in TOUCHING_KINDS or (a.kind == "task" and a.status == "done"):
        from accord.sales import leads  # imported here: leads may come to list activities

        lead = session.get(Lead, a.lead_id)
        if lead is not None and lead.first_touched_at is None:
            leads.mark_first_touch(session, lead, a.done_at or utcnow(), principal)


# --- writes ------------------------------------------------------------------------------------

def _payload(a: Activity) -> dict[str, Any]:
    return {"kind": a.kind, "status": a.status, "owner_id": a.owner_id,
            **{k: getattr(a, k) for k in LINKS if getattr(a, k) is not None}}


def create_activity(session: Session, principal: Principal, data: ActivityCreate) -> Activity:
    require(principal, RESOURCE, "create")
    values = data.model_dump()
    _require_a_link({k: values[k] for k in LINKS})
    _check_links(session, principal, {k: values[k] for k in LINKS})
    _check_call_fields(data.kind, values)
    if data.done_at is not None and data.status != "done":
        raise ValidationProblem("done_at needs status done", field="done_at")
    now = utcnow()
    a = Activity(
        kind=data.kind, subject=data.subject, body=data.body, status=data.status,
        due_at=as_utc(data.due_at) if data.due_at else None,
        remind_at=as_utc(data.remind_at) if data.remind_at else None,
        done_at=(as_utc(data.done_at) if data.done_at else now) if data.status == "done" else None,
        duration_minutes=data.duration_minutes, direction=data.direction, outcome=data.outcome,
        owner_id=principal.user_id, team_id=principal.team_id, created_by=principal.user_id,
        **{k: values[k] for k in LINKS},
    )
    session.add(a)
    session.flush()
    _sync_mirror(session, principal, a)
    _touch_lead(session, principal, a)
    session.flush()
    audit.record(session, principal, "create", RESOURCE, a.id,
                 data.model_dump(exclude_unset=True).keys(),
                 {"interaction_id": a.interaction_id} if a.interaction_id else None)
    emit(session, "activity.created", "activity", a.id, _payload(a), principal.user_id)
    return a


def update_activity(session: Session, principal: Principal, a: Activity,
                    data: ActivityUpdate) -> Activity:
    if not in_scope(principal, a, "update"):
        raise Forbidden("your role may not update this activity")
    changes = data.model_dump(exclude_unset=True)
    for key in ("due_at", "remind_at", "done_at"):
        if changes.get(key) is not None:
            changes[key] = as_utc(changes[key])
    links = {k: changes.get(k, getattr(a, k)) for k in LINKS}
    new_links = {k: v for k, v in links.items() if k in changes and v != getattr(a, k)}
    _require_a_link(links, next((k for k in LINKS if k in changes), "customer_id"))
    _check_links(session, principal, new_links)
    _check_call_fields(a.kind, {k: changes.get(k, getattr(a, k)) for k in
                                ("direction", "duration_minutes", "outcome")})
    status = changes.get("status", a.status)
    if status == "done" and a.status != "done" and changes.get("done_at") is None:
        changes["done_at"] = utcnow()
    if status != "done" and changes.get("done_at") is not None:
        raise ValidationProblem("done_at needs status done", field="done_at")
    if status != "done" and a.done_at is not None:
        changes["done_at"] = None
    changed = [k for k, v in changes.items() if getattr(a, k) != v]
    if not changed:
        return a
    for key in changed:
        setattr(a, key, changes[key])
    if "remind_at" in changed:
        a.reminded_at = None  # a new reminder time fires again
    session.flush()
    _sync_mirror(session, principal, a)
    _touch_lead(session, principal, a)
    session.flush()
    audit.record(session, principal, "update", RESOURCE, a.id, changed)
    emit(session, "activity.updated", "activity", a.id,
         {**_payload(a), "fields": sorted(changed)}, principal.user_id)
    return a


def complete_activity(session: Session, principal: Principal, a: Activity,
                      data: ActivityComplete | None = None) -> Activity:
    """Done now (or at `done_at`); completing a done activity again changes nothing."""
    if not in_scope(principal, a, "update"):
        raise Forbidden("your role may not update this activity")
    data = data or ActivityComplete()
    _check_call_fields(a.kind, data.model_dump(exclude_unset=True))
    if a.status == "done":
        return a
    changed = ["status", "done_at"]
    a.status = "done"
    a.done_at = as_utc(data.done_at) if data.done_at else utcnow()
    for key in ("outcome", "duration_minutes"):
        if getattr(data, key) is not None:
            setattr(a, key, getattr(data, key))
            changed.append(key)
    session.flush()
    _sync_mirror(session, principal, a)
    _touch_lead(session, principal, a)
    session.flush()
    audit.record(session, principal, "complete", RESOURCE, a.id, changed)
    emit(session, "activity.completed", "activity", a.id, _payload(a), principal.user_id)
    return a


def delete_activity(session: Session, principal: Principal, a: Activity) -> None:
    """The activity and its timeline entry go together."""
    if not in_scope(principal, a, "delete"):
        raise Forbidden("your role may not delete this activity")
    audit.record(session, principal, "delete", RESOURCE, a.id, (),
                 {"interaction_id": a.interaction_id} if a.interaction_id else None)
    emit(session, "activity.deleted", "activity", a.id, _payload(a), principal.user_id)
    row = session.get(Interaction, a.interaction_id) if a.interaction_id else None
    if row is not None:
        interactions.delete_interaction(session, _mirror_principal(principal), row)
    session.delete(a)
    session.flush()


# --- reminders ---------------------------------------------------------------------------------

def reminder_key(a: Activity) -> str:
    assert a.remind_at is not None
    return f"reminder:{a.id}:{int(as_utc(a.remind_at).timestamp())}"


def send_due_reminders(session: Session, now: datetime | None = None,
                       limit: int = REMINDER_BATCH) -> int:
    """Open activities whose reminder time has come and that were not reminded yet: one
    notification for the owner and one e-mail job each, then `reminded_at`. Replays add
    nothing (the notification's and the mail job's dedupe keys). Returns how many were new."""
    now = now or utcnow()
    stmt = (select(Activity)
            .where(Activity.status == "open", Activity.remind_at <= now,
                   Activity.reminded_at.is_(None))
            .order_by(Activity.remind_at, Activity.id).limit(limit))
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    due = list(session.execute(stmt).scalars())
    if not due:  # the sweep runs every few minutes: nothing due, no further query
        return 0
    owners = {u.id: u for u in session.execute(
        select(User).where(User.id.in_({a.owner_id for a in due if a.owner_id}))).scalars()}
    # bookkeeping: no version bump, so nobody's open edit goes stale because of it
    t = Activity.__table__
    session.execute(update(t).where(t.c.id.in_([a.id for a in due]))
                    .values(reminded_at=now, updated_at=t.c.updated_at))
    sent = 0
    for a in due:
        set_committed_value(a, "reminded_at", now)
        owner = owners.get(a.owner_id) if a.owner_id else None
        if owner is None or not owner.is_active:
            continue
        key = reminder_key(a)
        due_text = (f"Due {as_utc(a.due_at):%Y-%m-%d %H:%M} UTC." if a.due_at else "No due date.")
        title = f"Reminder: {a.kind} “{a.subject}”"[:300]
        new = notifications.notify(session, owner.id, "reminder", title, due_text,
                                   f"/sales/my-day#activity-{a.id}", dedupe_key=key)
        if new is None:
            continue
        sent += 1
        mail.enqueue_mail(
            session, owner.email, title,
            f"{title}\n\n{due_text}\n\nOpen your day in Accord: /sales/my-day\n",
            tag="sales.reminder", dedupe_key=f"mail:{key}")
    session.flush()
    return sent


# --- My day ------------------------------------------------------------------------------------

@dataclass
class MyDay:
    today: date
    overdue: list[Activity]
    due_today: list[Activity]
    leads: list[Lead]
    deals: list[Deal]
    notifications: list[Notification]
    unread: int


MY_DAY_LIMIT = 50


def my_day(session: Session, principal: Principal, now: datetime | None = None) -> MyDay:
    """What a salesperson should do today: their own open activities that are overdue or due
    today (by due time), their new leads waiting for a first touch, their open deals expected
    to close this week (Monday to Sunday, UTC) and their unread notifications."""
    now = now or utcnow()
    today = now.date()
    start = datetime.combine(today, time.min, tzinfo=now.tzinfo)
    end = start + timedelta(days=1)
    me = principal.user_id
    overdue: list[Activity] = []
    due_today: list[Activity] = []
    if can(principal, RESOURCE, "read") and me is not None:
        rows = session.execute(
            select(Activity).where(Activity.owner_id == me, Activity.status == "open",
                                   Activity.due_at < end)
            .order_by(Activity.due_at, Activity.id).limit(2 * MY_DAY_LIMIT)).scalars()
        for a in rows:
            assert a.due_at is not None
            (overdue if a.due_at < start else due_today).append(a)
    leads: list[Lead] = []
    if can(principal, "leads", "read") and me is not None:
        leads = list(session.execute(
            select(Lead).where(Lead.owner_id == me, Lead.status == "new",
                               Lead.first_touched_at.is_(None))
            .order_by(Lead.first_touch_due_at.is_(None), Lead.first_touch_due_at, Lead.id)
            .limit(MY_DAY_LIMIT)).scalars())
    deals: list[Deal] = []
    if can(principal, "deals", "read") and me is not None:
        monday = today - timedelta(days=today.weekday())
        deals = list(session.execute(
            select(Deal).where(Deal.owner_id == me, Deal.status == "open",
                               and_(Deal.expected_close_date >= monday,
                                    Deal.expected_close_date <= monday + timedelta(days=6)))
            .order_by(Deal.expected_close_date, Deal.id).limit(MY_DAY_LIMIT)).scalars())
    unread = notifications.unread(session, principal, MY_DAY_LIMIT)
    return MyDay(today, overdue[:MY_DAY_LIMIT], due_today[:MY_DAY_LIMIT], leads, deals, unread,
                 notifications.unread_count(session, principal))
