"""Migrations on both engines: upgrade an empty database to head, downgrade to base, upgrade
again; and the models match the migrations, so a model change without a migration fails here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from accord.core import db as dbmod
from accord.core.migrate import current, downgrade, include_object, upgrade
from accord.core.settings import reset_settings
from accord.models import Base
from tests.conftest import IN_CI, PG_ADMIN_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path) -> Iterator[str]:
    """A brand-new empty database of each engine (never the shared test database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        dbmod.dispose_all()
        return
    admin_url = make_url(PG_ADMIN_URL)
    name = f"accord_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL unavailable: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        dbmod.dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _tables(url: str) -> set[str]:
    engine = dbmod.get_engine(url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return {n for n in names if include_object(None, n, "table", True, None)} - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_url):
    model_tables = set(Base.metadata.tables)
    upgrade(empty_url)
    assert _tables(empty_url) == model_tables
    head = current(empty_url)
    assert head
    downgrade(empty_url, "base")
    assert _tables(empty_url) == set()
    assert current(empty_url) is None
    upgrade(empty_url)
    assert _tables(empty_url) == model_tables
    assert current(empty_url) == head


def _diff(url: str) -> list:
    engine = dbmod.get_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": False,
                   "include_object": include_object}
        )
        return compare_metadata(ctx, Base.metadata)


def test_models_match_migrations(empty_url):
    upgrade(empty_url)
    diff = _diff(empty_url)
    assert diff == [], "models and migrations differ; write a migration:\n" + "\n".join(
        map(str, diff)
    )


def test_cli_db_upgrade(empty_url, monkeypatch):
    from accord.cli import app

    monkeypatch.setenv("ACCORD_DATABASE_URL", empty_url)
    reset_settings()
    try:
        result = CliRunner().invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert _tables(empty_url) == set(Base.metadata.tables)
        assert _diff(empty_url) == []
    finally:
        reset_settings()


def test_upgrading_a_populated_database_keeps_every_row(empty_url):
    """Batch migrations rebuild tables on SQLite; the rebuild must not cascade-delete children."""
    upgrade(empty_url, "0001")
    engine = dbmod.get_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO customers (id, first_name, last_name, display_name, name_key, "
            "name_key_alt, lifecycle_stage, created_at, updated_at, version) VALUES "
            "(1, 'Ada', 'Byron', 'Ada Byron', 'byron ada', 'ada byron', 'awareness', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
        conn.execute(text(
            "INSERT INTO customer_emails (id, customer_id, email, email_normalized, kind, "
            "is_primary, verified) VALUES (1, 1, 'ada@example.com', 'ada@example.com', "
            "'personal', true, false)"))
        conn.execute(text(
            "INSERT INTO interactions (id, customer_id, channel, direction, department, "
            "occurred_at, subject, body, metadata, created_at, updated_at, version) VALUES "
            "(1, 1, 'email', 'inbound', 'support', CURRENT_TIMESTAMP, 'hi', '', '{}', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
    upgrade(empty_url)
    with engine.connect() as conn:
        counts = [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608
                  for t in ("customers", "customer_emails", "interactions")]
        merged = conn.execute(text("SELECT merged_into_id FROM customers")).scalar()
    assert counts == [1, 1, 1] and merged is None
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _hash_unique(url: str) -> bool:
    inspector = inspect(dbmod.get_engine(url))
    return any(c["column_names"] == ["hash"] for c in inspector.get_unique_constraints(
        "audit_log")) or any(ix["unique"] and ix["column_names"] == ["hash"]
                             for ix in inspector.get_indexes("audit_log"))


def test_the_audit_hash_loses_its_unique_index_and_the_chain_still_verifies(empty_url):
    """0009 drops the unique index on each audit entry's hash (a random B-tree insert per
    entry); the entries and their chain are kept, and a downgrade puts the constraint back."""
    from accord.access import audit
    from accord.access.policy import Principal

    upgrade(empty_url, "0008_ticket_queue_indexes")
    system = Principal(user_id=None, email="system@accord.invalid", role="admin", via="system")
    with dbmod.session_scope(empty_url) as session:
        for i in range(3):
            audit.record(session, system, "update", "customers", i, ["email"])
    assert _hash_unique(empty_url)

    def verified() -> tuple[bool, int]:
        with dbmod.session_scope(empty_url, write=False) as session:
            result = audit.verify(session)
        return result.ok, result.checked

    upgrade(empty_url)
    assert not _hash_unique(empty_url)
    assert verified() == (True, 3)
    downgrade(empty_url, "0008_ticket_queue_indexes")
    assert _hash_unique(empty_url)
    assert verified() == (True, 3)


def _index_sql(url: str, name: str) -> str | None:
    with dbmod.get_engine(url).connect() as conn:
        if conn.dialect.name == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :n"
        return conn.execute(text(query), {"n": name}).scalar()


def test_the_audit_record_index_keeps_changes_only_and_reads_are_still_found(empty_url):
    """0010 replaces the index on (resource, record_id) of every entry by one over changes
    only (reads are most of the trail, at random records); a record's reads are then found by
    the scan in `audit.entries`, before and after, and a downgrade restores the full index."""
    from accord.access import audit
    from accord.access.policy import Principal

    upgrade(empty_url, "0009_audit_hash_not_indexed")
    system = Principal(user_id=None, email="system@accord.invalid", role="admin", via="system")
    with dbmod.session_scope(empty_url) as session:
        audit.record(session, system, "update", "customers", 7, ["email"])
    audit.record_read(system, "customers", [7], ["email"], url=empty_url)
    audit.record_read(system, "customers", [7, 8], ["email"], url=empty_url)
    every_entry = _index_sql(empty_url, "ix_audit_log_resource_record")
    assert every_entry is not None and "action" not in every_entry

    def found() -> list[str]:
        with dbmod.session_scope(empty_url, write=False) as session:
            page = audit.entries(session, resource="customers", record_id="7")
        return [e.action for e in page.items]

    upgrade(empty_url)
    assert _index_sql(empty_url, "ix_audit_log_resource_record") is None
    changes = _index_sql(empty_url, "ix_audit_log_changes")
    assert changes is not None and "<>" in changes and "read" in changes
    assert found() == ["read", "read", "update"]
    downgrade(empty_url, "0009_audit_hash_not_indexed")
    assert _index_sql(empty_url, "ix_audit_log_changes") is None
    assert _index_sql(empty_url, "ix_audit_log_resource_record") is not None
    assert found() == ["read", "read", "update"]
