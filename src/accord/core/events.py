"""Domain events written to the transactional outbox in the same transaction as the change.

Event ids are UUIDv7 (RFC 9562): unique like any UUID, and time-ordered, so the outbox's unique
index on them grows at its end. Random (v4) ids landed all over that index: for 300,000 events
in one batch (a batch resolution's `customer.created`) they were half the cost of an event
(9.6 → 4.4 µs each, once written column by column)."""

from __future__ import annotations

import json
from typing import Any

import uuid_utils
from sqlalchemy import insert
from sqlalchemy.orm import Session

from accord.core.clock import utcnow
from accord.core.db import executemany_columns
from accord.models import OutboxEvent

_INSERT = insert(OutboxEvent.__table__)


def new_event_id() -> str:
    return str(uuid_utils.uuid7())


def _jsonable(payload: dict[str, Any] | None) -> dict[str, Any]:
    return json.loads(json.dumps(payload or {}, default=str))


def emit(
    session: Session,
    type: str,
    aggregate: str,
    aggregate_id: Any,
    payload: dict[str, Any] | None = None,
    actor_id: int | None = None,
) -> OutboxEvent:
    """Record a domain event; it becomes visible to consumers only if the caller commits."""
    event = OutboxEvent(
        event_id=new_event_id(),
        type=type,
        aggregate=aggregate,
        aggregate_id=str(aggregate_id),
        payload=_jsonable(payload),
        actor_id=actor_id,
    )
    session.add(event)
    return event


def emit_many(session: Session, type: str, aggregate: str, aggregate_ids: list[Any],
              payload: dict[str, Any] | None = None, actor_id: int | None = None) -> None:
    """The same event for many aggregates in one executemany (a batch creating thousands of
    customers would otherwise flush one ORM object per event)."""
    emit_each(session, type, aggregate, [(i, payload) for i in aggregate_ids], actor_id)


def emit_each(session: Session, type: str, aggregate: str,
              events: list[tuple[Any, dict[str, Any] | None]], actor_id: int | None = None) -> None:
    """`emit` for many (aggregate id, payload) pairs in one executemany; what was emitted
    before is flushed first, so the outbox keeps the order of emission. A payload object
    shared by many events is converted once."""
    if not events:
        return
    session.flush()
    now = utcnow()
    bodies: dict[int, dict[str, Any]] = {}

    def body(payload: dict[str, Any] | None) -> dict[str, Any]:
        found = bodies.get(id(payload))
        if found is None:
            found = bodies[id(payload)] = _jsonable(payload)
        return found

    n = len(events)
    executemany_columns(session, _INSERT, {
        "event_id": [new_event_id() for _ in range(n)], "type": [type] * n,
        "aggregate": [aggregate] * n, "aggregate_id": [str(i) for i, _ in events],
        "payload": [body(p) for _, p in events], "actor_id": [actor_id] * n,
        "occurred_at": [now] * n})
