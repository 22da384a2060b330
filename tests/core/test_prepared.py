"""Prepared statements return what `Connection.execute` returns, typed by the same processors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, func, insert, select

from accord.core.db import executemany
from accord.core.prepared import Prepared
from accord.models import OutboxEvent

TABLE = OutboxEvent.__table__
C = TABLE.c
WHEN = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture()
def events(session) -> None:
    executemany(session, insert(TABLE), [
        {"event_id": f"e-{i}", "type": "t" if i % 2 else "u", "aggregate": "customer",
         "aggregate_id": str(i), "payload": {"n": i, "name": "Zoë", "tags": [None, True]},
         "actor_id": i if i % 3 else None, "occurred_at": WHEN, "published_at": None}
        for i in range(6)])


STATEMENTS = {
    "typed columns, a label, a bound and a literal value": (
        select(C.id, C.event_id, C.payload, C.occurred_at, C.published_at,
               (C.actor_id + 1).label("next_actor"))
        .where(C.type == bindparam("type"), C.aggregate == "customer")
        .order_by(C.id.desc()).limit(bindparam("limit")),
        {"type": "t", "limit": 2}),
    "aggregates with a decimal": (
        select(C.type, func.count(C.id), func.sum(C.actor_id).label("total"),
               func.max(C.occurred_at))
        .group_by(C.type).order_by(C.type),
        {}),
    "a fixed limit and offset": (select(C.event_id).order_by(C.id).limit(2).offset(1), {}),
    "no row": (select(C.id, C.payload).where(C.event_id == bindparam("e")), {"e": "nope"}),
}


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_rows_match_connection_execute(session, events, name) -> None:
    statement, params = STATEMENTS[name]
    conn = session.connection()
    want = [tuple(r) for r in conn.execute(statement, params)]
    got = Prepared(statement).all(conn, params)
    assert [tuple(r) for r in got] == want
    assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in want]
    if name != "no row":
        assert want  # the comparison is over real rows


def test_values_are_typed_and_named(session, events) -> None:
    statement = select(C.event_id, C.payload, C.occurred_at,
                       (C.actor_id + 1).label("total")).where(C.event_id == bindparam("e"))
    row = Prepared(statement).first(session.connection(), {"e": "e-1"})
    assert row is not None
    assert row.event_id == "e-1" and row[0] == "e-1"
    assert row.payload == {"n": 1, "name": "Zoë", "tags": [None, True]}  # JSON decoded
    assert row.occurred_at == WHEN and row.occurred_at.tzinfo is not None  # UTC, aware
    assert row.total == 2
    assert Prepared(statement).first(session.connection(), {"e": "nope"}) is None


def test_decimal_columns_come_back_as_decimal(session) -> None:
    from accord.models import Customer, Order

    customer = Customer(first_name="Ada", last_name="Buyer", display_name="Ada Buyer",
                        name_key="ada buyer", name_key_alt="buyer ada")
    session.add(customer)
    session.flush()
    session.add(Order(customer_id=customer.id, number="N-1", status="paid", currency="EUR",
                      total=Decimal("12.30"), ordered_at=WHEN))
    session.flush()
    row = Prepared(select(Order.__table__.c.total, Order.__table__.c.ordered_at)).first(
        session.connection())
    assert row == (Decimal("12.30"), WHEN)
    assert isinstance(row.total, Decimal)


def test_a_missing_parameter_is_an_error(session, events) -> None:
    with pytest.raises(KeyError):
        Prepared(select(C.id).where(C.event_id == bindparam("e"))).all(session.connection(), {})


def test_expanding_parameters_are_refused(session, events) -> None:
    statement = select(C.id).where(C.event_id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(TypeError, match="expanding"):
        Prepared(statement).all(session.connection(), {"ids": ["e-1"]})


def test_it_runs_inside_a_transaction(db) -> None:
    """On a bare connection it begins the transaction first (one snapshot for every statement,
    as `Connection.execute` would), and the connection can still commit or roll back."""
    from accord.core.db import get_engine

    with get_engine(db).connect() as conn:
        assert not conn.in_transaction()
        assert Prepared(select(C.id).limit(1)).all(conn) is not None
        assert conn.in_transaction()
        conn.rollback()


def test_driver_errors_surface_as_sqlalchemy_errors(session) -> None:
    """What the API maps to problem responses (OperationalError → 503, say) is SQLAlchemy's
    exception, as `Connection.execute` raises it, not the driver's."""
    from sqlalchemy import Column, Integer, MetaData, Table
    from sqlalchemy.exc import DBAPIError

    missing = Table("no_such_table", MetaData(), Column("id", Integer))
    with pytest.raises(DBAPIError) as caught:
        Prepared(select(missing.c.id)).all(session.connection())
    assert "no_such_table" in str(caught.value.orig)
    assert not isinstance(caught.value, type(caught.value.orig))
