"""The driver-level executemany used by batch writes: same rows as SQLAlchemy would write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select, update

from accord.core.db import executemany
from accord.models import OutboxEvent

TABLE = OutboxEvent.__table__


def _rows(n: int, when: datetime) -> list[dict]:
    return [{"event_id": f"e-{i}", "type": "t", "aggregate": "customer", "aggregate_id": str(i),
             "payload": {"n": i, "names": ["Zoë", None]}, "actor_id": None,
             "occurred_at": when, "published_at": None} for i in range(n)]


def test_insert_then_update_round_trip(session) -> None:
    when = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    executemany(session, insert(TABLE), _rows(5, when))
    executemany(session, update(TABLE).where(TABLE.c.event_id == bindparam("_key"))
                .values(payload=bindparam("_payload"), aggregate_id=TABLE.c.aggregate_id + "!"),
                [{"_key": "e-1", "_payload": {"changed": True}},
                 {"_key": "e-3", "_payload": {"changed": 3}}])
    events = {e.event_id: e for e in session.scalars(select(OutboxEvent))}
    assert sorted(events) == [f"e-{i}" for i in range(5)]
    assert events["e-0"].payload == {"n": 0, "names": ["Zoë", None]}
    assert events["e-0"].occurred_at == when  # UTC datetimes go through Accord's own type
    assert events["e-1"].payload == {"changed": True}
    assert events["e-3"].aggregate_id == "3!"  # literals of the statement apply to every row
    assert events["e-2"].aggregate_id == "2"
    assert all(e.id for e in events.values())


def test_rows_must_name_every_parameter(session) -> None:
    rows = _rows(2, datetime.now(UTC))
    for row in rows:
        del row["occurred_at"]  # a column with a Python-side default is not filled in here
    with pytest.raises(ValueError, match="occurred_at"):
        executemany(session, insert(TABLE), rows)
    assert session.scalar(select(OutboxEvent.id)) is None


def test_naive_datetimes_are_refused_as_by_the_orm(session) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        executemany(session, insert(TABLE), _rows(1, datetime(2026, 1, 1)))


def test_no_rows_is_a_no_op(session) -> None:
    executemany(session, insert(TABLE), [])
    assert session.scalar(select(OutboxEvent.id)) is None
