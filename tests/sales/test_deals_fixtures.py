"""Helpers shared by the deal and pipeline tests (no tests here)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from accord.core import db as dbmod
from accord.models import Pipeline


def default_pipelines(url: str) -> dict[str, dict[str, Any]]:
    """Create the default pipelines; {pipeline name: {"id": .., "stages": {name: id}}}."""
    from accord.sales.pipelines import ensure_default_pipelines

    with dbmod.session_scope(url) as s:
        ensure_default_pipelines(s)
    with dbmod.session_scope(url, write=False) as s:
        out = {}
        for p in s.execute(select(Pipeline)).scalars():
            out[p.name] = {"id": p.id, "stages": {st.name: st.id for st in p.stages}}
        return out


def new_business(url: str) -> dict[str, Any]:
    return default_pipelines(url)["New business"]


def create(client: Any, actor: Any, pipeline_id: int, **fields: Any) -> dict[str, Any]:
    body = {"name": "Deal", "pipeline_id": pipeline_id, "currency": "EUR", "amount": "100.00",
            **fields}
    r = client.post("/api/v1/deals", json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


def move(client: Any, actor: Any, deal: dict[str, Any], stage_id: int, version: int | None = None,
         **extra: Any) -> Any:
    v = deal["version"] if version is None else version
    return client.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": stage_id, **extra},
                       headers={**actor.headers, "If-Match": f'"{v}"'})


SALES_TABLES = ("pipelines", "pipeline_stages", "deals", "deal_lines", "deal_stage_changes",
                "outbox_events", "jobs", "idempotency_keys")


def snapshot(url: str, skip: tuple[str, ...] = ("denied",)) -> dict[str, Any]:
    """Every row of the sales tables, the outbox, and the audit chain's data rows (a refused
    request's own "denied" entry left out): what a refused request must not change. A page
    that answers a refused form shows the deal again: pass `skip=("denied", "read")`."""
    out: dict[str, Any] = {}
    with dbmod.get_engine(url).connect() as conn:
        for table in SALES_TABLES:
            sql = text(f'SELECT * FROM "{table}" ORDER BY 1')  # noqa: S608 - fixed names
            out[table] = [dict(r) for r in conn.execute(sql).mappings()]
        sql = text("SELECT * FROM audit_log ORDER BY id")
        out["audit_log"] = [dict(r) for r in conn.execute(sql).mappings()
                            if r["action"] not in skip]
    return out
