"""`loop_read_session`: the read-only session that work running on the event loop itself keeps
per loop and database. It must never serve a stale snapshot, never be shared by two uses at
once, and never keep a broken or orphaned connection."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from accord.core import db as dbmod
from accord.core.db import loop_read_session, session_scope
from accord.models import Team


def _teams(session) -> int:
    return session.execute(select(func.count()).select_from(Team)).scalar_one()


def _in_snapshot(session) -> bool:
    """Whether the database (not only SQLAlchemy) still holds a transaction for the session."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":  # SQLAlchemy's transaction stays open there by design
        return bind.connection.driver_connection.in_transaction
    return bind.in_transaction()


def test_one_session_per_loop_and_each_use_sees_the_latest_commit(db) -> None:
    async def main() -> tuple[list[int], set[int]]:
        counts, connections = [], set()
        for name in ("a", "b"):
            with loop_read_session() as s:
                counts.append(_teams(s))
                connections.add(id(s.connection()))
            assert not _in_snapshot(s)  # rolled back after each use
            with session_scope() as w:  # another connection commits in between
                w.add(Team(name=name))
        with loop_read_session() as s:
            counts.append(_teams(s))
            connections.add(id(s.connection()))
        return counts, connections

    counts, connections = asyncio.run(main())
    assert counts == [0, 1, 2]  # no stale snapshot carried from one use to the next
    assert len(connections) == 1  # the same connection each time


def test_a_nested_use_gets_its_own_session(db) -> None:
    async def main() -> bool:
        with loop_read_session() as outer, loop_read_session() as inner:
            return outer is not inner and outer.connection() is not inner.connection()

    assert asyncio.run(main())


def test_a_database_error_discards_the_connection(db) -> None:
    async def main() -> bool:
        with loop_read_session() as s:
            first = s.get_bind()
        with pytest.raises(DBAPIError), loop_read_session() as s:
            s.execute(text("SELECT * FROM no_such_table"))
        assert first.closed
        with loop_read_session() as s:
            assert _teams(s) == 0
            return s.get_bind() is not first

    assert asyncio.run(main())


def test_a_closed_loop_hands_its_connection_back(db) -> None:
    async def use() -> tuple[asyncio.AbstractEventLoop, object]:
        with loop_read_session() as s:
            _teams(s)
            return asyncio.get_running_loop(), s.get_bind()

    first_loop, first_connection = asyncio.run(use())
    second_loop, _ = asyncio.run(use())  # registering this loop sweeps the closed one
    assert first_connection.closed
    assert not any(key[0] is first_loop for key in dbmod._loop_sessions)
    assert any(key[0] is second_loop for key in dbmod._loop_sessions)


def test_objects_loaded_by_one_use_are_not_served_to_the_next(db) -> None:
    with session_scope() as w:
        w.add(Team(name="before"))

    async def main() -> list[str]:
        names = []
        with loop_read_session() as s:
            team = s.execute(select(Team)).scalar_one()
            names.append(team.name)
            team_id = team.id
        with session_scope() as w:
            w.get(Team, team_id).name = "after"
        with loop_read_session() as s:
            names.append(s.get(Team, team_id).name)  # from the database, not the identity map
        return names

    assert asyncio.run(main()) == ["before", "after"]


def test_a_use_that_ends_the_transaction_itself_leaves_the_next_one_working(db) -> None:
    async def main() -> list[int]:
        counts = []
        with loop_read_session() as s:
            counts.append(_teams(s))
            s.rollback()  # an error handler might do this
        with session_scope() as w:
            w.add(Team(name="x"))
        for _ in range(2):
            with loop_read_session() as s:
                counts.append(_teams(s))
                s.commit()
            assert not _in_snapshot(s)
        return counts

    assert asyncio.run(main()) == [0, 1, 1]
