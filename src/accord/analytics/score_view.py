"""One customer's scores as a viewer may see them (360 page, API): field rules, plain words.

Kept free of pandas/numpy so the web and API import it at no cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal, hidden_fields
from accord.models import CustomerScore

RESOURCE = "customer_scores"
SCORE_FIELDS: Sequence[str] = (
    "rfm_segment", "rfm_r", "rfm_f", "rfm_m", "recency_days", "frequency", "monetary",
    "currency", "clv_12m", "expected_purchases_12m", "p_alive", "churn_risk", "churn_reasons",
    "value_tier", "at_risk_valuable", "missing", "run_id", "computed_at",
)
# What each RFM segment means, for the 360 page.
SEGMENT_TEXT: dict[str, str] = {
    "champions": "Bought recently, buys often and spends the most.",
    "loyal": "Buys regularly and spends well.",
    "potential loyalists": "Recent customer with some repeat purchases: could become loyal.",
    "new": "Bought for the first time recently.",
    "promising": "Recent buyer who has not bought much yet.",
    "need attention": "Average recency, frequency and spend: may slip without contact.",
    "about to sleep": "Has not bought for a while and buys little.",
    "at risk": "Bought often or spent well, but not for a long time.",
    "can't lose them": "Among the most frequent, highest-spending customers, gone quiet.",
    "hibernating": "Long since the last, small purchase.",
    "lost": "Lowest recency, frequency and spend.",
}


def risk_level(risk: float | None) -> str | None:
    """Plain words for a churn probability: low (< 30 %), medium (< 60 %), high."""
    if risk is None:
        return None
    return "low" if risk < 0.3 else "medium" if risk < 0.6 else "high"


def customer_scores(
    session: Session, principal: Principal, customer_id: int
) -> dict[str, Any] | None:
    """The customer's scores without the fields the principal may not see (listed in
    `masked_fields`); None when never scored. The caller has already checked the customer read."""
    row = session.execute(
        select(CustomerScore).where(CustomerScore.customer_id == customer_id)
    ).scalar_one_or_none()
    if row is None:
        return None
    hidden = hidden_fields(principal, RESOURCE)
    out: dict[str, Any] = {"customer_id": customer_id}
    for name in SCORE_FIELDS:
        if name not in hidden:
            out[name] = getattr(row, name)
    if "missing" in out:
        out["missing"] = {k: v for k, v in (out["missing"] or {}).items() if k not in hidden}
    if "churn_risk" in out:
        out["churn_level"] = risk_level(out["churn_risk"])
    if out.get("rfm_segment"):
        out["segment_text"] = SEGMENT_TEXT.get(out["rfm_segment"], "")
    out["masked_fields"] = sorted(hidden)
    return out


def audit_read(principal: Principal, customer_id: int, shown: dict[str, Any], via: str) -> None:
    """Record that the principal saw these scores (profiling is personal data)."""
    fields = [f for f in SCORE_FIELDS if f in shown]
    audit.record_read(principal, RESOURCE, [customer_id], fields, {"via": via})
