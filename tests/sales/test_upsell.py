"""Upsell: suggestions within the reader's scope, and one click from a suggestion to a deal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.models import CustomerRecommendation, Deal, Pipeline, Product
from accord.sales.pipelines import ensure_default_pipelines
from tests.access.helpers import assert_problem


@pytest.fixture
def world(client, make_actor, db):
    with session_scope(db) as s:
        ensure_default_pipelines(s)
        boots = Product(sku="B-1", name="Trail boots", price=Decimal("129.90"), currency="EUR")
        tent = Product(sku="T-1", name="Tent", price=Decimal("349.00"), currency="EUR")
        s.add_all([boots, tent])
        s.flush()
        products = {"boots": boots.id, "tent": tent.id}
    seller = make_actor("sales", team="north")
    outsider = make_actor("sales", team="south")
    ids = {}
    for who, name in ((seller, "Ada"), (outsider, "Bo")):
        r = client.post("/api/v1/customers", json={"first_name": name, "last_name": "Buyer"},
                        headers=who.headers)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    with session_scope(db) as s:
        for name, score in (("Ada", 0.9), ("Bo", 0.95)):
            for rank, product in enumerate(("tent", "boots"), start=1):
                s.add(CustomerRecommendation(customer_id=ids[name], rank=rank,
                                             product_id=products[product],
                                             score=score / rank, model="item_knn",
                                             generated_at=utcnow()))
    return seller, outsider, ids, products


def test_opportunities_are_those_of_customers_in_scope(client, world) -> None:
    seller, outsider, ids, products = world
    rows = client.get("/api/v1/upsell/opportunities", headers=seller.headers).json()
    assert [(r["customer_id"], r["product_id"]) for r in rows] == [(ids["Ada"], products["tent"])]
    assert rows[0]["open_deal_id"] is None and rows[0]["product_name"] == "Tent"
    every = client.get(f"/api/v1/upsell/opportunities?customer_id={ids['Ada']}",
                       headers=seller.headers).json()
    assert [r["product_id"] for r in every] == [products["tent"], products["boots"]]
    assert client.get(f"/api/v1/upsell/opportunities?customer_id={ids['Bo']}",
                      headers=seller.headers).json() == []


def test_one_click_opens_an_upsell_deal_once(client, world, db) -> None:
    seller, _, ids, products = world
    url = f"/api/v1/customers/{ids['Ada']}/upsell-deals"
    r = client.post(url, json={"product_id": products["tent"]}, headers=seller.headers)
    assert r.status_code == 201, r.text
    deal = r.json()
    assert Decimal(deal["amount"]) == Decimal("349.00") and deal["currency"] == "EUR"
    assert deal["customer_id"] == ids["Ada"] and deal["owner_id"] == seller.id
    assert [line["product_id"] for line in deal["lines"]] == [products["tent"]]
    with session_scope(db) as s:
        stored = s.get(Deal, deal["id"])
        assert stored.source == "upsell"
        assert s.get(Pipeline, stored.pipeline_id).kind == "upsell"
    again = client.post(url, json={"product_id": products["tent"]}, headers=seller.headers)
    assert_problem(again, 409, "product_id")
    rows = client.get("/api/v1/upsell/opportunities", headers=seller.headers).json()
    assert rows[0]["open_deal_id"] == deal["id"]


def test_only_suggested_products_of_readable_customers(client, world) -> None:
    seller, _, ids, products = world
    with session_scope() as s:
        other = Product(sku="X-1", name="Not suggested", price=Decimal("1.00"), currency="EUR")
        s.add(other)
        s.flush()
        other_id = other.id
    r = client.post(f"/api/v1/customers/{ids['Ada']}/upsell-deals",
                    json={"product_id": other_id}, headers=seller.headers)
    assert_problem(r, 422, "product_id")
    r = client.post(f"/api/v1/customers/{ids['Bo']}/upsell-deals",
                    json={"product_id": products["tent"]}, headers=seller.headers)
    assert r.status_code == 404
    r = client.post(f"/api/v1/customers/{ids['Ada']}/upsell-deals",
                    json={"product_id": products["tent"], "owner_id": 1}, headers=seller.headers)
    assert_problem(r, 422, "owner_id")
