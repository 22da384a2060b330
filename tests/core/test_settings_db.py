"""Settings refuse unsafe production configurations; SQLite connections get their pragmas."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from accord.core.db import build_engine, dispose_all, session_factory
from accord.core.settings import DEMO_SECRET, Settings
from tests.conftest import PG_ADMIN_URL


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_production_refuses_the_demo_secret(monkeypatch):
    monkeypatch.delenv("ACCORD_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="demo secret"):
        settings(environment="production")
    with pytest.raises(ValidationError, match="demo secret"):
        settings(environment="production", secret_key=DEMO_SECRET)


def test_production_refuses_a_short_secret():
    with pytest.raises(ValidationError, match="at least 32"):
        settings(environment="production", secret_key="short-but-not-demo")


def test_production_accepts_a_real_secret():
    s = settings(environment="production", secret_key="x" * 40)
    assert s.environment == "production"


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("ACCORD_ENVIRONMENT", "production")
    monkeypatch.setenv("ACCORD_SECRET_KEY", DEMO_SECRET)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
    monkeypatch.setenv("ACCORD_SECRET_KEY", "a-real-secret-of-sufficient-length-123")
    monkeypatch.setenv("ACCORD_MAX_BODY_BYTES", "2048")
    s = Settings(_env_file=None)
    assert s.max_body_bytes == 2048


def test_development_allows_the_demo_secret():
    assert settings(environment="development").secret_key == DEMO_SECRET


@pytest.mark.parametrize(
    "name,value", [("environment", "staging"), ("pool_size", 0), ("sqlite_synchronous", "OFF")]
)
def test_invalid_values_are_refused(name, value):
    with pytest.raises(ValidationError):
        settings(**{name: value})


def test_default_database_is_sqlite_in_data_dir(tmp_path):
    s = settings(data_dir=tmp_path / "data", database_url="")
    assert s.effective_database_url == f"sqlite:///{(tmp_path / 'data' / 'accord.db').as_posix()}"


def _pragmas(conn) -> dict[str, object]:
    return {
        name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
        for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous", "secure_delete")
    }


@pytest.mark.parametrize("sync,expected", [("FULL", 2), ("NORMAL", 1)])
def test_sqlite_pragmas(sync, expected, tmp_path):
    engine = build_engine(f"sqlite:///{tmp_path / 'p.db'}", settings(sqlite_synchronous=sync))
    try:
        with engine.connect() as conn:
            p = _pragmas(conn)
        assert p["journal_mode"] == "wal"
        assert p["foreign_keys"] == 1
        assert p["busy_timeout"] >= 5000
        assert p["synchronous"] == expected
        assert p["secure_delete"] == 1
        # a second pooled connection gets them too
        with engine.connect() as a, engine.connect() as b:
            assert _pragmas(a) == _pragmas(b) == p
    finally:
        engine.dispose()


def test_sqlite_enforces_foreign_keys(tmp_path):
    engine = build_engine(f"sqlite:///{tmp_path / 'fk.db'}", settings())
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE p (id INTEGER PRIMARY KEY)"))
            conn.execute(
                text("CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id))")
            )
        from sqlalchemy.exc import IntegrityError

        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("INSERT INTO c (p) VALUES (42)"))
    finally:
        engine.dispose()


def test_write_sessions_take_the_sqlite_lock_up_front(tmp_path):
    """BEGIN IMMEDIATE: a second writer waits instead of failing on a stale snapshot."""
    db = f"sqlite:///{tmp_path / 'lock.db'}"
    s = session_factory(db, write=True)()
    try:
        s.execute(text("SELECT 1"))
        conn = s.connection().connection.dbapi_connection
        assert conn.in_transaction
        # another connection cannot take the write lock while this one holds it
        import sqlite3

        path = db.removeprefix("sqlite:///")
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    finally:
        s.rollback()
        s.close()
        dispose_all()


def test_postgres_urls_use_psycopg3():
    """A plain `postgresql://` URL gets the psycopg 3 driver (not psycopg2)."""
    engine = build_engine(
        PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), settings()
    )
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()
