"""Products over HTTP: CRUD, unique SKUs, money and currency validation, role grants."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.models import AuditEntry, OutboxEvent, Product


def product(client, actor, **body):
    payload = {"sku": "TEA-1", "name": "Green tea", "price": "4.50", "currency": "EUR", **body}
    return client.post("/api/v1/products", json=payload, headers=actor.headers)


def n_products(db: str) -> int:
    with dbmod.session_factory(db)() as s:
        return s.scalar(select(func.count()).select_from(Product))


def test_crud_happy_path(client, admin, db):
    r = product(client, admin, currency="gbp", category="drinks")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["currency"] == "GBP"
    assert body["price"] == "4.50"
    assert r.headers["ETag"] == '"1"'
    pid = body["id"]

    r = client.get(f"/api/v1/products/{pid}", headers=admin.headers)
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    assert r.json()["sku"] == "TEA-1"

    r = client.patch(
        f"/api/v1/products/{pid}",
        json={"price": "5", "active": False},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["price"] == "5.00"
    assert r.json()["active"] is False
    assert r.headers["ETag"] == '"2"'

    assert client.delete(f"/api/v1/products/{pid}", headers=admin.headers).status_code == 428
    assert (
        client.delete(
            f"/api/v1/products/{pid}", headers={**admin.headers, "If-Match": '"1"'}
        ).status_code
        == 412
    )
    assert (
        client.delete(
            f"/api/v1/products/{pid}", headers={**admin.headers, "If-Match": '"2"'}
        ).status_code
        == 204
    )
    assert client.get(f"/api/v1/products/{pid}", headers=admin.headers).status_code == 404

    with dbmod.session_factory(db)() as s:
        types = list(s.execute(select(OutboxEvent.type).order_by(OutboxEvent.id)).scalars())
        audited = list(
            s.execute(
                select(AuditEntry.action)
                .where(AuditEntry.resource == "products")
                .order_by(AuditEntry.id)
            ).scalars()
        )
    assert [t for t in types if t.startswith("product.")] == [
        "product.created",
        "product.updated",
        "product.deleted",
    ]
    assert audited == ["create", "update", "delete"]


def test_duplicate_sku_is_409(client, admin, db):
    assert product(client, admin).status_code == 201
    r = product(client, admin, name="Other tea")
    assert r.status_code == 409
    assert r.json()["field"] == "sku"
    pid = product(client, admin, sku="TEA-2").json()["id"]
    r = client.patch(
        f"/api/v1/products/{pid}",
        json={"sku": "TEA-1"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 409 and r.json()["field"] == "sku"
    assert n_products(db) == 2


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "ABC"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"price": "-0.01"}, "price"),
        ({"price": "1.999"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "10000000000000.00"}, "price"),
        ({"price": "cheap"}, "price"),
        ({"sku": "bad sku!"}, "sku"),
        ({"sku": ""}, "sku"),
        ({"name": ""}, "name"),
        ({"id": 7}, "id"),
        ({"version": 2}, "version"),
    ],
)
def test_validation(client, admin, db, patch, field):
    r = product(client, admin, **patch)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field
    assert n_products(db) == 0


def test_update_refuses_nulls_and_bad_currency(client, admin):
    pid = product(client, admin).json()["id"]
    for body, field in [
        ({"price": None}, "price"),
        ({"currency": "ZZZ"}, "currency"),
        ({"sku": None}, "sku"),
    ]:
        r = client.patch(
            f"/api/v1/products/{pid}", json=body, headers={**admin.headers, "If-Match": '"1"'}
        )
        assert r.status_code == 422 and r.json()["field"] == field


def test_role_grants(client, make_actor, db):
    marketing, sales, analyst = (
        make_actor("marketing"),
        make_actor("sales", team="A"),
        make_actor("analyst"),
    )
    r = product(client, marketing)
    assert r.status_code == 201
    pid = r.json()["id"]
    assert product(client, sales, sku="S-1").status_code == 403
    assert client.get(f"/api/v1/products/{pid}", headers=analyst.headers).status_code == 200
    assert (
        client.patch(
            f"/api/v1/products/{pid}",
            json={"name": "x"},
            headers={**analyst.headers, "If-Match": '"1"'},
        ).status_code
        == 403
    )
    assert (
        client.delete(
            f"/api/v1/products/{pid}", headers={**marketing.headers, "If-Match": '"1"'}
        ).status_code
        == 403
    )
    assert n_products(db) == 1


def test_list_filters_and_pagination(client, admin):
    skus = [f"SKU-{i:02d}" for i in range(7)]
    for i, sku in enumerate(skus):
        assert (
            product(
                client,
                admin,
                sku=sku,
                currency="USD" if i % 2 else "EUR",
                category="a" if i < 3 else "b",
            ).status_code
            == 201
        )
    product(client, admin, sku="OTHER")
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/products?sku__prefix=SKU-&limit=3" + (f"&cursor={cursor}" if cursor else ""),
            headers=admin.headers,
        ).json()
        seen += [p["sku"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == skus
    r = client.get("/api/v1/products?currency=USD&category=b", headers=admin.headers).json()
    assert [p["sku"] for p in r["items"]] == ["SKU-03", "SKU-05"]
    assert client.get("/api/v1/products?price=1", headers=admin.headers).status_code == 422
