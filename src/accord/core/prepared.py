"""Hot read statements compiled once per dialect and run on the driver's cursor.

SQLAlchemy's execution path (cache key, execution context, events, result object) costs about
30 µs of CPU per statement, three quarters of an indexed one-row read on SQLite, and the hottest
requests (the bearer-token lookup, the customer 360° view, the search by e-mail) run about ten
such statements each (`bench/customer_read.py`; `tests/core/test_prepared.py` checks the rows
are the ones `Connection.execute` returns). A `Prepared` statement keeps SQLAlchemy's SQL and
its typing, the dialect's bind and result processors (UTC datetimes, decimals, JSON, booleans),
and skips the rest. It runs inside the connection's transaction (begun first if need be).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select


@dataclass(slots=True)
class _Plan:
    sql: str
    positional: bool
    names: tuple[str, ...]  # bind names in the order the SQL takes them
    fixed: dict[str, Any]  # the statement's own literal values
    binds: dict[str, Callable[[Any], Any]]  # bind processors, by name
    types: tuple[Any, ...]  # each result column's type, as the dialect implements it
    row: Callable[..., tuple[Any, ...]]  # a named tuple's constructor
    # (column, result processor), set at the first run: on PostgreSQL a processor depends on
    # the type the server reports for the column (as for SQLAlchemy's own results)
    results: tuple[tuple[int, Callable[[Any], Any]], ...] | None = None


class Prepared:
    """A Core SELECT run as `Connection.execute(...).all()` would, for less CPU.

    Rows are named tuples (attribute and index access, like SQLAlchemy's `Row`). Statements with
    expanding (`IN`) or literal-execute parameters are refused when first run: their SQL
    changes with every value list.
    """

    __slots__ = ("statement", "_plans")

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _compile(self.statement, dialect)
        return plan

    def all(self, connection: Connection, params: Mapping[str, Any] | None = None
            ) -> list[tuple[Any, ...]]:
        plan = self._plan(connection.dialect)
        given = params or {}
        binds = plan.binds
        values: dict[str, Any] = {}
        for name in plan.names:
            value = given[name] if name in given else plan.fixed[name]
            process = binds.get(name)
            values[name] = value if process is None else process(value)
        args = [values[n] for n in plan.names] if plan.positional else values
        with driver_cursor(connection, plan.sql, args) as cursor:
            cursor.execute(plan.sql, args)
            fetched = cursor.fetchall()
            if plan.results is None:
                plan.results = _result_processors(plan, connection.dialect, cursor.description)
        make = plan.row
        if not plan.results:
            return [make(*r) for r in fetched]
        out = []
        for r in fetched:
            row = list(r)
            for i, process in plan.results:
                row[i] = process(row[i])
            out.append(make(*row))
        return out

    def first(self, connection: Connection, params: Mapping[str, Any] | None = None
              ) -> tuple[Any, ...] | None:
        rows = self.all(connection, params)
        return rows[0] if rows else None


@contextmanager
def driver_cursor(connection: Connection, sql: str, params: Any) -> Iterator[Any]:
    """A DB-API cursor inside the connection's transaction (begun first if need be: the same
    snapshot for every statement, as `Connection.execute` would), closed afterwards; the
    driver's errors of running `sql` with `params` are raised as SQLAlchemy's."""
    if not connection.in_transaction():
        connection.begin()
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        yield cursor
    except connection.dialect.loaded_dbapi.Error as exc:
        raise driver_error(connection.dialect, sql, params, exc) from exc
    finally:
        cursor.close()


def driver_error(dialect: Dialect, sql: str, params: Any, exc: Exception) -> Exception:
    """A driver's exception as SQLAlchemy would have raised it (`OperationalError` for a locked
    or unreachable database, which the API answers with 503), for code that skips its
    execution path."""
    return DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect)


def _compile(statement: Select[Any], dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise TypeError("a Prepared statement takes no expanding or literal-execute parameters")
    by_name = compiled.binds
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(by_name)
    fixed = {n: by_name[n].effective_value for n in names if not by_name[n].required}
    binds = {}
    for n in names:
        process = by_name[n].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds[n] = process
    columns = list(statement.selected_columns)
    types = tuple(c.type.dialect_impl(dialect) for c in columns)
    row = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
    return _Plan(compiled.string, compiled.positional, names, fixed, binds, types, row)


def _result_processors(plan: _Plan, dialect: Dialect, description: Any
                       ) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    found = []
    for i, (kind, column) in enumerate(zip(plan.types, description, strict=True)):
        process = kind.result_processor(dialect, column[1])
        if process is not None:
            found.append((i, process))
    return tuple(found)
