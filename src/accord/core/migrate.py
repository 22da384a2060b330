"""Run Alembic migrations programmatically (`accord db upgrade`, demo start-up, tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Keep the hand-made search indexes (FTS5, tsvector) out of autogenerate comparisons."""
    from accord.models.service import SEARCH_COLUMNS, SEARCH_TABLE_PREFIX

    if type_ == "table" and name and name.startswith(SEARCH_TABLE_PREFIX):
        return False
    if type_ == "column" and reflected and (obj.table.name, name) in SEARCH_COLUMNS:
        return False
    return not (type_ == "index" and name == "ix_kb_articles_search_vector")


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from accord.core.db import get_engine

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
