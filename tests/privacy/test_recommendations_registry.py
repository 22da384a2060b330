"""Suggestions are profiling: the registry declares them, so a registry-driven export finds a
person's suggestions and a registry-driven erasure removes them (and nobody else's); the
"bought together" aggregate is not personal and survives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import delete, func, select

from accord.models import Base, Customer, CustomerRecommendation, Product, ProductAssociation
from accord.privacy.registry import BY_TABLE, REGISTRY
from tests.privacy.registry_export import registry_rows

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def _products(session) -> list[int]:
    ids = []
    for n, name in enumerate(("Tent", "Stove", "Lamp")):
        p = Product(sku=f"P{n}", name=name, price=Decimal("1"), currency="EUR")
        session.add(p)
        session.flush()
        ids.append(p.id)
    session.add(ProductAssociation(product_id=ids[0], other_product_id=ids[1], rank=1,
                                   orders_together=2, support=0.5, confidence=1.0, lift=2.0,
                                   generated_at=NOW))
    session.flush()
    return ids


def _customer(session, name: str, products: list[int], suggest: int) -> int:
    c = Customer(first_name=name, display_name=name, name_key=name.lower(),
                 name_key_alt=name.lower())
    session.add(c)
    session.flush()
    session.add(CustomerRecommendation(
        customer_id=c.id, rank=1, product_id=products[suggest], score=0.8,
        because_product_id_1=products[0], because_product_id_2=None, model="item_knn",
        generated_at=NOW,
    ))
    session.flush()
    return c.id


def test_recommendations_are_declared_and_associations_are_not() -> None:
    entry = BY_TABLE["customer_recommendations"]
    assert entry.subject == "customer" and entry.link == "customer_id"
    assert entry.erasure == "delete"
    for column in ("product_id", "score", "because_product_id_1", "because_product_id_2"):
        assert column in entry.columns
    assert "product_associations" not in BY_TABLE  # aggregate over all orders
    assert "customer_id" not in Base.metadata.tables["product_associations"].columns


def test_export_includes_the_suggestions_and_erasure_removes_them(session) -> None:
    products = _products(session)
    ada = _customer(session, "Ada", products, 1)
    bob = _customer(session, "Bob", products, 2)
    exported = registry_rows(session, ada)
    assert exported["customer_recommendations"] == [{
        "product_id": products[1], "score": 0.8, "because_product_id_1": products[0],
        "because_product_id_2": None}]
    assert all(r["product_id"] != products[2] for r in exported["customer_recommendations"])
    for entry in REGISTRY:  # erasure: every `delete` declaration removes the subject's rows
        if entry.subject == "customer" and entry.erasure == "delete" and entry.table in (
                "customer_recommendations",):
            table = Base.metadata.tables[entry.table]
            session.execute(delete(table).where(table.c[entry.link] == ada))
    assert "customer_recommendations" not in registry_rows(session, ada)
    assert registry_rows(session, bob)["customer_recommendations"][0]["product_id"] == \
        products[2]
    assert session.scalar(select(func.count()).select_from(ProductAssociation)) == 1


def test_deleting_a_customer_deletes_its_suggestions(session) -> None:
    products = _products(session)
    ada = _customer(session, "Ada", products, 1)
    session.execute(delete(Customer).where(Customer.id == ada))
    left = session.scalar(select(func.count()).select_from(CustomerRecommendation)
                          .where(CustomerRecommendation.customer_id == ada))
    assert left == 0
