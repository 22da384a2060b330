"""Alembic environment: the URL comes from Accord's settings unless the caller set one."""

from __future__ import annotations

from alembic import context

from accord.core.db import get_engine
from accord.core.migrate import include_object
from accord.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = get_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild tables (copy, DROP, rename). With foreign keys on, SQLite's
        # DROP TABLE deletes every row first and ON DELETE CASCADE empties the child tables.
        # The pragma is a no-op inside a transaction: set it on the driver connection, outside.
        if connection.in_transaction():
            connection.commit()
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=sqlite, compare_type=True,
                      include_object=include_object)
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left dangling references: {broken[:5]}")
    finally:
        if sqlite:
            if connection.in_transaction():
                connection.commit()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
