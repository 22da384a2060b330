"""Customer scores are profiling: the registry declares them, so a registry-driven export finds a
person's scores and a registry-driven erasure removes them (and nobody else's)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select

from accord.models import Base, Customer, CustomerScore
from accord.privacy.registry import BY_TABLE, REGISTRY
from tests.privacy.registry_export import registry_rows

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def _customer(session, name: str) -> int:
    c = Customer(first_name=name, display_name=name, name_key=name.lower(),
                 name_key_alt=name.lower())
    session.add(c)
    session.flush()
    session.add(CustomerScore(
        customer_id=c.id, rfm_r=5, rfm_f=4, rfm_m=3, rfm_segment="champions", clv_12m=123.45,
        p_alive=0.9, churn_risk=0.2, value_tier="gold", at_risk_valuable=False,
        churn_reasons=[{"feature": "orders_90d", "text": f"canary {name}", "contribution": 0.1}],
        run_id="r1", computed_at=NOW,
    ))
    session.flush()
    return c.id


def test_scores_are_declared_as_personal_data_deleted_on_erasure() -> None:
    entry = BY_TABLE["customer_scores"]
    assert entry.subject == "customer" and entry.link == "customer_id"
    assert entry.erasure == "delete"
    for column in ("churn_risk", "churn_reasons", "clv_12m", "rfm_segment", "value_tier",
                   "at_risk_valuable", "p_alive"):
        assert column in entry.columns


def test_export_includes_the_scores_and_erasure_removes_them(session) -> None:
    ada = _customer(session, "Ada")
    bob = _customer(session, "Bob")
    exported = registry_rows(session, ada)
    assert exported["customer_scores"][0]["churn_reasons"][0]["text"] == "canary Ada"
    assert exported["customer_scores"][0]["value_tier"] == "gold"
    assert "canary Bob" not in repr(exported)
    # erasure: every `delete` declaration removes the subject's rows
    for entry in REGISTRY:
        if entry.subject == "customer" and entry.erasure == "delete" and entry.table in (
                "customer_scores",):
            table = Base.metadata.tables[entry.table]
            session.execute(delete(table).where(table.c[entry.link] == ada))
    assert "customer_scores" not in registry_rows(session, ada)
    assert registry_rows(session, bob)["customer_scores"][0]["churn_reasons"][0]["text"] == \
        "canary Bob"


def test_deleting_a_customer_deletes_its_scores(session) -> None:
    ada = _customer(session, "Ada")
    session.execute(delete(Customer).where(Customer.id == ada))
    left = session.scalar(select(func.count()).select_from(CustomerScore)
                          .where(CustomerScore.customer_id == ada))
    assert left == 0
