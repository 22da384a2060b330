"""Engine and session handling for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Executable

from accord.core.prepared import driver_cursor, driver_error
from accord.core.settings import Settings, get_settings

_engines: dict[str, Engine] = {}
_factories: dict[tuple[str, bool], sessionmaker[Session]] = {}


def _sqlite_pragmas(synchronous: str):
    def on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA secure_delete=ON")
        cur.execute("PRAGMA cache_size=-32000")
        cur.close()

    return on_connect


class JSONText(str):
    """JSON already serialised by the caller: written as is instead of being encoded again.

    The ingestion path hashes each payload's canonical JSON anyway; handing that text to the
    database spares a second encoding of every record.
    """

    __slots__ = ()


_ORJSON = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
           | orjson.OPT_PASSTHROUGH_SUBCLASS)
# orjson writes NaN and ±Infinity as null, and floats below 1e-4 as 0.00001 or 2.5e-7 where
# Python writes 1e-05 and 2.5e-07: text that may hold such a number is encoded again by `json`.
_MAYBE_DIFFERENT = re.compile(rb"(?:^|[:,\[])(?:null|-?[0-9]+(?:\.[0-9]+)?e-|-?0\.0000)")


def _refuse(value: Any) -> Any:
    raise TypeError


def _as_str(value: Any) -> str:
    """`default=str`, except for subclasses of JSON types, which `json` encodes as their base."""
    if isinstance(value, (str, int, float, dict, list, tuple)):
        raise TypeError
    return str(value)


def dumps_json(value: Any, *, sort_keys: bool = False, default_str: bool = False) -> str:
    """Exactly `json.dumps(value, sort_keys=sort_keys, separators=(",", ":"),
    ensure_ascii=False, default=str if default_str else None)`, with orjson's speed.

    orjson runs first; whatever it would write differently from `json` (NaN, tiny floats, big
    ints, subclasses of JSON types, lone surrogates, non-string keys) sends the value to `json`.
    Content hashes are computed over this text, so the two must never differ. The one type
    orjson writes differently without telling is a plain `Enum` member (its value, where `json`
    with `default=str` writes `Class.MEMBER`): payloads are decoded documents and file cells,
    which never hold one.
    """
    try:
        out = orjson.dumps(value, default=_as_str if default_str else _refuse,
                           option=_ORJSON | orjson.OPT_SORT_KEYS if sort_keys else _ORJSON)
    except orjson.JSONEncodeError:
        out = None
    if out is None or ((b"null" in out or b"e-" in out or b"0.0000" in out)
                       and _MAYBE_DIFFERENT.search(out)):
        return json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False,
                          default=str if default_str else None)
    return out.decode()


def _json_serializer(value: Any) -> str:
    """Compact UTF-8 JSON (the values read back are those `json.dumps(value)` would give)."""
    if isinstance(value, JSONText):
        return str.__str__(value)
    return dumps_json(value)


def build_engine(url: str, settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # An unusable directory surfaces when connecting (OperationalError → 503, retried),
            # not as a crash while building the engine.
            with contextlib.suppress(OSError):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A SQLite connection is cheap to keep but dear to open (schema parse, empty page cache):
        # keep as many as requests can run at once (AnyIO's 40 threads + the audit writer), so
        # concurrent requests never open and close overflow connections.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=max(settings.pool_size, 41),
            max_overflow=20,
            # the most recently used connection first: its page cache is the warm one, where
            # first-in-first-out rotation would spread reads over 41 cold caches
            pool_use_lifo=True,
            json_serializer=_json_serializer,
        )
        event.listen(engine, "connect", _sqlite_pragmas(settings.sqlite_synchronous))

        # pysqlite's own transaction handling defers BEGIN; issue it ourselves so that
        # SAVEPOINTs work and a write transaction takes the lock up front (no upgrade deadlocks).
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            # on the driver itself: SQLAlchemy's statement path costs more than the BEGIN does
            # (every request begins at least one transaction); a refused BEGIN (the write lock
            # taken) still surfaces as SQLAlchemy's OperationalError
            sql = "BEGIN " + conn.get_execution_options().get("sqlite_begin", "")
            try:
                conn.connection.driver_connection.execute(sql)
            except conn.dialect.loaded_dbapi.Error as exc:
                raise driver_error(conn.dialect, sql, (), exc) from exc

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_size=settings.pool_size, max_overflow=20, pool_pre_ping=True,
                         json_serializer=_json_serializer)


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().effective_database_url
    if url not in _engines:
        _engines[url] = build_engine(url)
    return _engines[url]


def session_factory(url: str | None = None, *, write: bool = True) -> sessionmaker[Session]:
    """Sessions for a unit of work. On SQLite a writing unit takes the write lock at BEGIN
    (IMMEDIATE), so a read-then-write never fails on a snapshot another writer moved on."""
    url = url or get_settings().effective_database_url
    key = (url, write)
    if key not in _factories:
        engine = get_engine(url)
        if write and engine.dialect.name == "sqlite":
            engine = engine.execution_options(sqlite_begin="IMMEDIATE")
        _factories[key] = sessionmaker(engine, expire_on_commit=False)
    return _factories[key]


def dispose_all() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _factories.clear()


@contextmanager
def session_scope(url: str | None = None, *, write: bool = True) -> Iterator[Session]:
    """A unit of work for commands and jobs: commit on success, roll back on error."""
    session = session_factory(url, write=write)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@dataclass
class _LoopSession:
    engine: Engine
    session: Session
    driver: Any  # the SQLite driver connection under `session`; None on other engines
    busy: bool = False


_loop_sessions: dict[tuple[asyncio.AbstractEventLoop, str], _LoopSession] = {}


@contextmanager
def loop_read_session(url: str | None = None) -> Iterator[Session]:
    """A read-only session for work that runs on the event loop itself (SQLite's hot reads,
    see `customers.api.is_embedded`): one per loop and database, on a connection it keeps, and
    rolled back after each use. Checking a connection out of the pool and handing it back (a
    rollback, pool events, a lock) cost about 50 µs per request, as much as two of the 360
    view's statements. Sharing is safe because such work never awaits: one request's reads run
    to the end before the loop takes up another. A nested use gets a pooled session instead,
    and a database error discards the connection."""
    loop = asyncio.get_running_loop()
    url = url or get_settings().effective_database_url
    engine = get_engine(url)
    held = _loop_sessions.get((loop, url))
    if held is None or held.engine is not engine:
        if held is None:
            for closed in [k for k in _loop_sessions if k[0].is_closed()]:
                _discard(*closed)  # tests run many short-lived loops
        else:
            _discard(loop, url)
        connection = engine.connect()
        held = _loop_sessions[(loop, url)] = _LoopSession(
            engine, Session(bind=connection, expire_on_commit=False),
            connection.connection.driver_connection if engine.dialect.name == "sqlite" else None)
    if held.busy:
        with session_scope(url, write=False) as session:
            yield session
        return
    session = held.session
    held.busy = True
    try:
        _begin_snapshot(held)
        yield session
    except DBAPIError:
        _discard(loop, url)
        raise
    finally:
        held.busy = False
        if _loop_sessions.get((loop, url)) is held:
            try:
                _end_snapshot(held)
            except Exception:
                _discard(loop, url)
                raise


def _begin_snapshot(held: _LoopSession) -> None:
    """On SQLite the loop's session stays in one SQLAlchemy transaction for good and each use
    gets its snapshot from a BEGIN and ROLLBACK on the driver: SQLAlchemy's own begin and
    rollback (session and connection state, events) cost 60–90 µs a request (360° view 728 →
    666 µs, search 677 → 590, in-process at 16 concurrent). A use that ended the transaction
    itself leaves SQLAlchemy to begin anew."""
    if held.driver is not None and held.session.in_transaction() and \
            not held.driver.in_transaction:
        held.driver.execute("BEGIN")


def _end_snapshot(held: _LoopSession) -> None:
    held.session.expunge_all()  # nothing loaded by one use may be served to the next
    if held.driver is None:
        held.session.rollback()
    elif held.driver.in_transaction:
        held.driver.execute("ROLLBACK")


def _discard(loop: asyncio.AbstractEventLoop, url: str) -> None:
    found = _loop_sessions.pop((loop, url), None)  # another thread's sweep may have taken it
    if found is None:
        return
    connection = found.session.get_bind()
    with contextlib.suppress(Exception):  # a broken connection is dropped by the pool
        found.session.close()
        connection.close()


def is_postgres(session_or_engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def executemany(session: Session | Connection, statement: Executable,
                rows: Sequence[Mapping[str, Any]]) -> None:
    """Run one INSERT or UPDATE for many rows straight through the driver's executemany.

    At hundreds of thousands of rows SQLAlchemy's per-row parameter assembly costs more than
    the database's own work. Here the statement is compiled once and only each column's bind
    processor (JSON, UTC datetimes) runs, once per distinct object in the column.
    Rows must name every parameter (column defaults are not applied).
    """
    if not rows:
        return
    columns: dict[str, list[Any]] = {}
    for name in rows[0]:
        try:
            columns[name] = list(map(itemgetter(name), rows))
        except KeyError:  # a later row does not name it: None there, as a missing bind value
            columns[name] = [row.get(name) for row in rows]
    executemany_columns(session, statement, columns)


def executemany_columns(session: Session | Connection, statement: Executable,
                        columns: Mapping[str, list[Any]]) -> None:
    """`executemany` for values given column by column (each list one value per row), which
    callers holding columns need not turn into row dicts first. A parameter of the statement
    with no column takes its literal value for every row."""
    size = len(next(iter(columns.values()), []))
    if not size:
        return
    connection = session if isinstance(session, Connection) else session.connection()
    sql, positional, names, defaults, processors = _many_plan(
        statement, connection.dialect, tuple(columns))
    missing = [n for n in defaults if n not in columns and defaults[n] is None]
    if missing:
        raise ValueError(f"executemany: the rows lack {missing}")
    processed: list[list[Any]] = []
    for name, process in zip(names, processors, strict=True):
        raw = columns[name] if name in columns else [defaults[name]] * size
        processed.append(raw if process is None else _bound(raw, process))
    # column by column: each value costs a list step, not a function call
    values = zip(*processed, strict=True)
    params: Any = (list(values) if positional
                   else [dict(zip(names, v, strict=True)) for v in values])
    # on the driver's cursor: for the small batches (a request's audit entries or events)
    # SQLAlchemy's execution path cost more than the rows
    with driver_cursor(connection, sql, params) as cursor:
        cursor.executemany(sql, params)


@functools.lru_cache(maxsize=256)
def _many_plan(statement: Executable, dialect: Dialect, keys: tuple[str, ...]
               ) -> tuple[str, bool, list[str], dict[str, Any], list[Callable[[Any], Any] | None]]:
    """A statement compiled for these columns, kept: small batches run often (the read audit's
    entries, one request's events), and compiling costs more than their rows."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    defaults = compiled.params
    names = list(compiled.positiontup or []) if compiled.positional else list(defaults)
    processors = [compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect)
                  for n in names]
    return compiled.string, compiled.positional, names, defaults, processors


def _bound(values: list[Any], process: Callable[[Any], Any]) -> list[Any]:
    """A column's values through its bind processor, once per distinct object: a value shared
    by many rows (the batch's timestamp, one lineage document) is processed once."""
    memo: dict[int, Any] = {}
    out: list[Any] = []
    append = out.append
    for value in values:
        if value is None:
            append(None)
            continue
        key = id(value)  # the objects live in `values` meanwhile: ids are not reused
        done = memo.get(key)
        if done is None:
            if len(memo) > 4096:
                memo.clear()
            done = memo[key] = process(value)
        append(done)
    return out
