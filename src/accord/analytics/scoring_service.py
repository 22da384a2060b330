"""Score every customer and write the scores back onto the profiles, in bulk.

`refresh_scores` is a batch job: it reads the operational tables with Core (`load_frames`),
computes (`compute_scores`), and in the caller's transaction replaces `customer_scores`, stores
the model cards as new `score_models` versions, sets `customers.value_tier` (from CLV) and
`customers.lifetime_value` (realised net revenue: the sum of purchases, the column's meaning in
the demo and imports) where they changed — bumping `version`, so an edit based on the old values
gets 412 — and appends one audit entry. It never commits (the command or job boundary does).

Profiles whose score cannot be computed keep their current tier and lifetime value (an imported
value is not overwritten with a guess); their `customer_scores` row says why in `missing`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import SYSTEM, Principal
from accord.core.clock import utcnow
from accord.core.db import executemany
from accord.models import Customer, CustomerScore, ScoreModel

CHUNK = 50_000
RESOURCE = "customer_scores"  # audit resource and field-rule key


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _f(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _money(v: Any) -> Decimal | None:
    f = _f(v)
    return None if f is None else Decimal(f"{f:.2f}")


def _i(v: Any) -> int | None:
    f = _f(v)
    return None if f is None else int(f)


def _s(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def score_rows(scores: pd.DataFrame, run_id: str, computed_at: Any) -> list[dict[str, Any]]:
    """Plain dict rows for `customer_scores` (None for missing values, Decimal for money)."""
    cols = {c: scores[c].to_numpy(dtype=object) for c in scores.columns}
    rows = []
    for k in range(len(scores)):
        rows.append({
            "customer_id": int(cols["customer_id"][k]),
            "recency_days": _f(cols["recency_days"][k]),
            "frequency": _i(cols["frequency"][k]),
            "monetary": _money(cols["monetary"][k]),
            "currency": _s(cols["currency"][k]),
            "rfm_r": _i(cols["rfm_r"][k]),
            "rfm_f": _i(cols["rfm_f"][k]),
            "rfm_m": _i(cols["rfm_m"][k]),
            "rfm_segment": _s(cols["rfm_segment"][k]),
            "clv_12m": _money(cols["clv_12m"][k]),
            "expected_purchases_12m": _f(cols["expected_purchases_12m"][k]),
            "p_alive": _f(cols["p_alive"][k]),
            "churn_risk": _f(cols["churn_risk"][k]),
            "churn_reasons": cols["churn_reasons"][k] or [],
            "value_tier": _s(cols["value_tier"][k]),
            "at_risk_valuable": bool(cols["at_risk_valuable"][k]),
            "missing": cols["missing"][k] or {},
            "run_id": run_id,
            "computed_at": computed_at,
        })
    return rows


def _profile_updates(
    scores: pd.DataFrame, current: pd.DataFrame
) -> list[dict[str, Any]]:
    """Customers whose computed tier or realised revenue differs from the stored one."""
    s = scores.set_index("customer_id")
    cur = current.set_index("id").reindex(s.index)
    tier = s["value_tier"]
    ltv = s["monetary"].round(2)
    old_ltv = pd.to_numeric(cur["lifetime_value"], errors="coerce").astype(float).round(2)
    new_tier = tier.where(tier.notna(), cur["value_tier"])
    new_ltv = ltv.where(ltv.notna(), old_ltv)
    changed = (new_tier.fillna("") != cur["value_tier"].fillna("")) | (
        ~np.isclose(new_ltv.fillna(-1.0), old_ltv.fillna(-1.0), rtol=0, atol=0.004)
    )
    mask = changed.to_numpy()
    ids = s.index.to_numpy()[mask].tolist()
    tiers = new_tier.to_numpy(dtype=object)[mask].tolist()
    ltvs = new_ltv.to_numpy(dtype=object)[mask].tolist()
    return [{"b_id": int(i), "b_tier": _s(t), "b_ltv": _money(v)}
            for i, t, v in zip(ids, tiers, ltvs, strict=True)]


def _store_models(session: Session, run: Any, rows: int) -> dict[str, int]:
    from accord.analytics.churn import json_safe

    versions: dict[str, int] = {}
    now = utcnow()
    for kind in ("clv", "churn"):
        latest = session.scalar(select(func.max(ScoreModel.version)).where(ScoreModel.kind == kind))
        version = (latest or 0) + 1
        card = run.models.get(kind)
        session.execute(insert(ScoreModel), [{
            "kind": kind, "version": version, "run_id": run.run_id,
            "status": "trained" if card is not None else "skipped",
            "reason": None if card is not None else run.skipped.get(kind, "")[:500],
            "card": json_safe(card or {}),
            "data_rows": rows, "trained_at": now,
        }])
        versions[kind] = version
    return versions


def refresh_scores(
    session: Session, principal: Principal = SYSTEM, *, as_of: Any = None,
    chunk: int = CHUNK, **options: Any,
) -> dict[str, Any]:
    """Load, score and write back every customer's scores; returns the run summary."""
    from accord.analytics.scores import load_frames, score_run

    t0 = time.perf_counter()
    frames = load_frames(session)
    t_load = time.perf_counter()
    run = score_run(
        frames.customers, frames.orders, frames.interactions, as_of,
        lifecycle=frames.lifecycle, custom_labels=frames.custom_labels, **options,
    )
    t_score = time.perf_counter()
    computed_at = utcnow()
    session.execute(delete(CustomerScore))
    scores = run.scores
    for part in _chunks(len(scores), chunk):
        executemany(session, insert(CustomerScore), score_rows(scores.iloc[part], run.run_id,
                                                                 computed_at))
    current = frames.customers[["id", "value_tier", "lifetime_value"]]
    updates = _profile_updates(scores, current)
    c = Customer.__table__.c
    stmt = (
        update(Customer.__table__)
        .where(c.id == bindparam("b_id"))
        .values(value_tier=bindparam("b_tier"), lifetime_value=bindparam("b_ltv"),
                version=c.version + 1, updated_at=bindparam("b_now"))
    )
    for part in _chunks(len(updates), chunk):
        executemany(session, stmt, [{**r, "b_now": computed_at} for r in updates[part]])
    versions = _store_models(session, run, len(scores))
    t_write = time.perf_counter()
    summary = run.summary() | {
        "model_versions": versions,
        "profiles_updated": len(updates),
        "seconds": {"load": round(t_load - t0, 3), "score": round(t_score - t_load, 3),
                    "write": round(t_write - t_score, 3)},
    }
    audit.record(
        session, principal, "score", RESOURCE, None,
        ["rfm_segment", "clv_12m", "churn_risk", "value_tier", "at_risk_valuable",
         "customers.value_tier", "customers.lifetime_value"],
        {"run_id": run.run_id, "customers": len(scores), "profiles_updated": len(updates),
         "model_versions": versions, "skipped": run.skipped},
    )
    return summary
