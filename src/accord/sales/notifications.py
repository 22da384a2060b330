"""In-app notifications: each user sees, reads and clears only their own.

There is no record scope to consult: a notification belongs to exactly one user, and the user is
only ever the authenticated principal (never a parameter), so every query is filtered on it.
Unread ones come first (`read_at` descending puts NULLs first on both engines), newest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.core.clock import utcnow
from accord.core.errors import NotFound
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate
from accord.models import Deal, Lead, Notification, OutboxEvent, User

RESOURCE = "notifications"


def _unread_filter(op: str, value: Any) -> Any:
    return Notification.read_at.is_(None) if value else Notification.read_at.is_not(None)


def list_spec() -> ListSpec:
    return ListSpec(
        resource=RESOURCE,
        id_column=Notification.id,
        filters={
            "kind": Filter(Notification.kind, ops=frozenset({"eq", "in"})),
            "unread": Filter(_unread_filter, bool, frozenset({"eq"})),
        },
        sorts={
            "read_at": Sort(Notification.read_at, datetime, nullable=True),
            "id": Sort(Notification.id, int),
        },
        default_sort="-read_at",
    )


def _mine(principal: Principal) -> Any:
    if principal.user_id is None:
        return false()
    return Notification.user_id == principal.user_id


def list_notifications(session: Session, principal: Principal, params: ListParams
                       ) -> tuple[list[Notification], str | None]:
    spec = list_spec()
    stmt = select(Notification).where(_mine(principal))
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


def unread(session: Session, principal: Principal, limit: int = 20) -> list[Notification]:
    return list(session.execute(
        select(Notification).where(_mine(principal), Notification.read_at.is_(None))
        .order_by(Notification.id.desc()).limit(limit)).scalars())


def unread_count(session: Session, principal: Principal) -> int:
    return session.execute(
        select(func.count(Notification.id))
        .where(_mine(principal), Notification.read_at.is_(None))).scalar_one()


def get_notification(session: Session, principal: Principal, notification_id: int
                     ) -> Notification:
    """Someone else's notification does not exist as far as the caller can tell (404)."""
    row = session.get(Notification, notification_id)
    if row is None or principal.user_id is None or row.user_id != principal.user_id:
        raise NotFound(f"notification {notification_id} does not exist")
    return row


def mark_read(session: Session, principal: Principal, row: Notification) -> Notification:
    if row.user_id != principal.user_id:
        raise NotFound(f"notification {row.id} does not exist")
    if row.read_at is None:
        row.read_at = utcnow()
        session.flush()
        audit.record(session, principal, "read", RESOURCE, row.id, ["read_at"])
    return row


def mark_all_read(session: Session, principal: Principal) -> int:
    """One statement for every unread notification of the caller; returns how many."""
    if principal.user_id is None:
        return 0
    done = session.execute(
        update(Notification)
        .where(_mine(principal), Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if done:
        audit.record(session, principal, "read_all", RESOURCE, None, ["read_at"],
                     {"count": done})
    return int(done or 0)


def notify(session: Session, user_id: int, kind: str, title: str, body: str = "",
           link: str | None = None, dedupe_key: str | None = None) -> Notification | None:
    """Add a notification for one user (other domains: assignments, alerts); with
    `dedupe_key` a replay adds nothing and returns None."""
    if link is not None and (not link.startswith("/") or link.startswith("//")):
        raise ValueError("a notification links to a page of Accord: a path such as /sales/my-day")
    row = Notification(user_id=user_id, kind=kind[:40], title=title[:300], body=body,
                       link=link, dedupe_key=dedupe_key)
    if dedupe_key is None:
        session.add(row)
        session.flush()
        return row
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def notify_assigned(session: Session, event: dict[str, Any]) -> Notification | None:
    """A lead or deal now owned by someone who did not assign it to themselves: tell them.
    `event` is the relayed domain event; its id makes a redelivery add nothing, and an event
    overtaken by a later reassignment (the record has another owner now) notifies nobody."""
    owner_id = (event.get("payload") or {}).get("owner_id")
    kind = {"lead": Lead, "deal": Deal}.get(str(event.get("aggregate")))
    if not owner_id or kind is None or not str(event.get("aggregate_id", "")).isdigit():
        return None
    record = session.get(kind, int(event["aggregate_id"]))
    user = session.get(User, owner_id)
    if record is None or record.owner_id != owner_id or user is None or not user.is_active:
        return None
    actor = session.execute(select(OutboxEvent.actor_id).where(
        OutboxEvent.event_id == event.get("event_id"))).scalar()
    if actor == owner_id:
        return None
    if isinstance(record, Lead):
        name = " ".join(p for p in (record.first_name, record.last_name) if p) or (
            record.company or f"Lead {record.id}")
        title, link = f"New lead for you: {name}", f"/sales/leads/{record.id}"
        body = (f"First touch due {record.first_touch_due_at:%Y-%m-%d %H:%M} UTC."
                if record.first_touch_due_at else "")
    else:
        title, link, body = f"Deal assigned to you: {record.name}", f"/sales/deals/{record.id}", ""
    return notify(session, owner_id, "assignment", title, body, link,
                  dedupe_key=f"assign:{event.get('event_id')}")
