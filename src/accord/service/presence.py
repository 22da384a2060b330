"""Who has a ticket open now: the collision warning ("Theo is also replying").

The ticket page polls every few seconds; each poll `touch`es the viewer's row (one upsert,
race-safe on SQLite and PostgreSQL through INSERT ... ON CONFLICT on the (ticket, user) unique
key) and lists the *other* agents seen within the last minute. A closed tab simply stops
polling, so its row goes stale and drops out of `others` without any clean-up job; `purge`
removes old rows for tidiness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from accord.access.policy import Principal
from accord.core.clock import as_utc, utcnow
from accord.models import User
from accord.models.service import TicketPresence

WINDOW = timedelta(seconds=60)  # a viewer not seen for longer has left
POLL_SECONDS = 10  # how often the ticket page refreshes the banner


@dataclass(frozen=True)
class Presence:
    """Another agent on the same ticket, as the banner shows it."""

    user_id: int
    name: str
    first_name: str
    composing: bool
    seen_at: datetime


def _upsert(session: Session, values: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(TicketPresence).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[TicketPresence.ticket_id, TicketPresence.user_id],
        set_={"seen_at": stmt.excluded.seen_at, "composing": stmt.excluded.composing})


def touch(session: Session, principal: Principal, ticket_id: int, composing: bool = False,
          at: datetime | None = None) -> None:
    """Record that the principal has the ticket open (and whether they are writing a reply).

    The caller has already checked that the principal may read the ticket; a principal without
    a user (system, API token of a service) leaves no presence."""
    if principal.user_id is None:
        return
    session.execute(_upsert(session, {"ticket_id": ticket_id, "user_id": principal.user_id,
                                      "seen_at": at or utcnow(), "composing": composing}))


def others(session: Session, ticket_id: int, user_id: int | None,
           within: timedelta = WINDOW, now: datetime | None = None) -> list[Presence]:
    """The other agents seen on the ticket within `within`, composers first, in one query."""
    since = (now or utcnow()) - within
    stmt = (select(TicketPresence.user_id, User.full_name, TicketPresence.composing,
                   TicketPresence.seen_at)
            .join(User, User.id == TicketPresence.user_id)
            .where(TicketPresence.ticket_id == ticket_id, TicketPresence.seen_at >= since)
            .order_by(TicketPresence.composing.desc(), User.full_name, TicketPresence.user_id))
    if user_id is not None:
        stmt = stmt.where(TicketPresence.user_id != user_id)
    out = []
    for uid, name, composing, seen in session.execute(stmt):
        full = name or f"User {uid}"
        out.append(Presence(user_id=uid, name=full, first_name=full.split()[0],
                            composing=bool(composing), seen_at=as_utc(seen)))
    return out


def signature(found: list[Presence]) -> str:
    """What the banner shows, as a short text (`<user>:<0|1>` per agent): equal signatures mean
    an identical banner, so a poll can skip the swap."""
    return ",".join(f"{p.user_id}:{int(p.composing)}" for p in found)


def leave(session: Session, principal: Principal, ticket_id: int) -> None:
    """Forget the principal's presence on the ticket (e.g. after sending the reply)."""
    if principal.user_id is None:
        return
    session.execute(delete(TicketPresence).where(TicketPresence.ticket_id == ticket_id,
                                                 TicketPresence.user_id == principal.user_id))


def purge(session: Session, older_than: timedelta = timedelta(hours=1),
          now: datetime | None = None) -> int:
    """Delete presence rows nobody has refreshed for a long time; returns how many."""
    result = session.execute(delete(TicketPresence).where(
        TicketPresence.seen_at < (now or utcnow()) - older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
