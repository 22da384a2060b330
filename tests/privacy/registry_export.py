"""What an export driven by the personal data registry collects for one customer (until the
export and erasure service exists, the registry tests of each table use this)."""

from __future__ import annotations

from sqlalchemy import select

from accord.models import Base
from accord.privacy.registry import REGISTRY


def registry_rows(session, customer_id: int) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for entry in REGISTRY:
        if entry.subject != "customer" or entry.link in ("payload", "external_id", "left_id"):
            continue
        table = Base.metadata.tables[entry.table]
        if table.c[entry.link].type.python_type is not int:  # tracking ids, not customer ids
            continue
        rows = session.execute(
            select(table).where(table.c[entry.link] == customer_id)
        ).mappings().all()
        if rows:
            found[entry.table] = [{k: r[k] for k in entry.columns} for r in rows]
    return found
