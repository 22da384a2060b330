"""The outbox: events land in the caller's transaction, in the order they were emitted, with
time-ordered unique ids and JSON payloads."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select

from accord.core.db import session_scope
from accord.core.events import emit, emit_each, emit_many
from accord.models import OutboxEvent


def _outbox(session) -> list[OutboxEvent]:
    return list(session.execute(select(OutboxEvent).order_by(OutboxEvent.id)).scalars())


def test_events_keep_emission_order_payloads_and_time_ordered_ids(session) -> None:
    emit(session, "customer.updated", "customer", 7, {"on": date(2026, 1, 2)}, actor_id=3)
    shared = {"via": "identity resolution"}
    emit_many(session, "customer.created", "customer", [11, 12, 13], shared, actor_id=3)
    emit_each(session, "lead.scored", "lead", [(5, {"score": 0.5}), (6, None)])
    rows = _outbox(session)
    assert [(r.type, r.aggregate_id) for r in rows] == [
        ("customer.updated", "7"), ("customer.created", "11"), ("customer.created", "12"),
        ("customer.created", "13"), ("lead.scored", "5"), ("lead.scored", "6")]
    assert rows[0].payload == {"on": "2026-01-02"}  # JSON-ready, as consumers read it
    assert [r.payload for r in rows[1:]] == [shared] * 3 + [{"score": 0.5}, {}]
    assert [r.actor_id for r in rows] == [3, 3, 3, 3, None, None]
    ids = [uuid.UUID(r.event_id) for r in rows]
    assert {i.version for i in ids} == {7} and len(set(ids)) == len(ids)
    # time-ordered: the unique index on them grows at its end
    assert [r.event_id for r in rows[1:]] == sorted(r.event_id for r in rows[1:])
    assert all(r.occurred_at is not None and r.published_at is None for r in rows)


def test_events_are_written_only_if_the_change_commits(db) -> None:
    try:
        with session_scope() as s:
            emit_many(s, "customer.created", "customer", list(range(100)), {})
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    with session_scope() as s:
        assert _outbox(s) == []
        emit_many(s, "customer.created", "customer", list(range(100)), {})
    with session_scope() as s:
        assert len(_outbox(s)) == 100
