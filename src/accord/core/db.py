"""Engine and session handling for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Executable

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


def _json_serializer(value: Any) -> str:
    if isinstance(value, JSONText):
        return str.__str__(value)
    return json.dumps(value)


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
            conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get("sqlite_begin", ""))

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


def is_postgres(session_or_engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def executemany(session: Session, statement: Executable,
                rows: Sequence[Mapping[str, Any]]) -> None:
    """Run one INSERT or UPDATE for many rows straight through the driver's executemany.

    At hundreds of thousands of rows SQLAlchemy's per-row parameter assembly costs more than
    the database's own work. Here the statement is compiled once and only each column's bind
    processor (JSON, UTC datetimes) runs per value, once for a value repeated row after row.
    Rows must name every parameter (column defaults are not applied).
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
    defaults = compiled.params
    missing = [n for n in defaults if n not in rows[0] and defaults[n] is None]
    if missing:
        raise ValueError(f"executemany: the rows lack {missing}")
    names = list(compiled.positiontup or []) if compiled.positional else list(defaults)
    processors = {name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                  for name in names}
    memo: dict[str, tuple[Any, Any]] = {}

    def value(name: str, row: Mapping[str, Any]) -> Any:
        raw = row[name] if name in row else defaults[name]  # a literal of the statement
        process = processors[name]
        if process is None or raw is None:
            return raw
        last = memo.get(name)
        if last is not None and last[0] is raw:
            return last[1]
        memo[name] = (raw, out := process(raw))
        return out

    if compiled.positional:
        params: Any = [tuple(value(n, row) for n in names) for row in rows]
    else:
        params = [{n: value(n, row) for n in names} for row in rows]
    connection.exec_driver_sql(compiled.string, params)
