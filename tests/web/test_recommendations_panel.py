"""The "Suggested for this customer" panel of the 360° page and
`GET /api/v1/customers/{id}/recommendations`: reasons in plain words built from the stored
product ids, names escaped, and the customer's read rule applied."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from accord.access.policy import ROLES
from accord.core import db as dbmod
from accord.models import AuditEntry, CustomerRecommendation, Product

NAMES = ("Trail tent", "Camp stove", "Head lamp", "<script>alert(1)</script>Mug")


def _suggest(db: str, customer_id: int) -> dict[str, int]:
    """Products and stored suggestions for one customer, as a refresh writes them."""
    with dbmod.session_scope(db) as s:
        ids = {}
        for n, name in enumerate(NAMES):
            p = Product(sku=f"REC-{n}", name=name, price=Decimal("9.90"), currency="EUR")
            s.add(p)
            s.flush()
            ids[name] = p.id
        when = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
        s.add_all([
            CustomerRecommendation(customer_id=customer_id, rank=1, product_id=ids["Head lamp"],
                                   score=0.9, because_product_id_1=ids["Trail tent"],
                                   because_product_id_2=ids["Camp stove"], model="item_knn",
                                   generated_at=when),
            CustomerRecommendation(customer_id=customer_id, rank=2, product_id=ids[NAMES[3]],
                                   score=0.4, because_product_id_1=ids["Trail tent"],
                                   because_product_id_2=None, model="item_knn",
                                   generated_at=when),
            CustomerRecommendation(customer_id=customer_id, rank=3,
                                   product_id=ids["Camp stove"], score=0.0,
                                   because_product_id_1=None, because_product_id_2=None,
                                   model="item_knn", generated_at=when),
        ])
        return ids


def _panel(html: str) -> str:
    found = re.search(r'<section class="card" aria-labelledby="h-suggestions".*?</section>',
                      html, re.S)
    assert found, "no suggestions panel"
    return found.group(0)


def test_panel_shows_suggestions_with_reasons(signed_in, seeded, db) -> None:
    ids = _suggest(db, seeded.grace_id)
    html = signed_in(seeded.emails["admin"]).get(f"/customers/{seeded.grace_id}").text
    panel = _panel(html)
    assert ("Bought Trail tent and Camp stove; customers who bought those also bought "
            "Head lamp") in panel
    assert "Bought Trail tent; customers who bought it also bought &lt;script&gt;" in panel
    assert "<script>alert" not in html  # product names are escaped
    assert "Popular with customers overall" in panel
    assert f'href="/api/v1/products/{ids["Head lamp"]}"' in panel  # one click to the product
    order = [panel.index(f'data-product="{ids[n]}"') for n in ("Head lamp", NAMES[3],
                                                               "Camp stove")]
    assert order == sorted(order)
    with dbmod.session_scope(db) as s:  # the read is audited (profiling is personal data)
        entry = s.execute(select(AuditEntry).where(
            AuditEntry.resource == "customer_recommendations")).scalars().all()[-1]
        assert entry.action == "read" and "because_product_id_1" in entry.fields


def test_no_suggestions_shows_a_hint(signed_in, seeded) -> None:
    html = signed_in(seeded.emails["support"]).get(f"/customers/{seeded.grace_id}").text
    assert "No suggestions yet" in _panel(html)


def test_api_returns_reasons_and_follows_the_customer_read_rule(client, make_actor, seeded,
                                                                 db) -> None:
    ids = _suggest(db, seeded.grace_id)
    url = f"/api/v1/customers/{seeded.grace_id}/recommendations"
    for role in ROLES:
        actor = make_actor(role, team="EMEA")
        customer = client.get(f"/api/v1/customers/{seeded.grace_id}", headers=actor.headers)
        r = client.get(url, headers=actor.headers)
        assert r.status_code == customer.status_code, (role, r.text)  # same rule as the customer
        if r.status_code != 200:
            continue
        body = r.json()
        assert [i["product_id"] for i in body["items"]] == [
            ids["Head lamp"], ids[NAMES[3]], ids["Camp stove"]]
        first = body["items"][0]
        assert first["reason"].startswith("Bought Trail tent and Camp stove")
        assert [b["product_name"] for b in first["because"]] == ["Trail tent", "Camp stove"]
        assert body["masked_fields"] == [] and body["model"] == "item_knn"
    admin = make_actor("admin")
    assert len(client.get(url + "?limit=1", headers=admin.headers).json()["items"]) == 1
    assert client.get(url + "?limit=0", headers=admin.headers).status_code == 422
    outsider = make_actor("sales", team="APAC")  # record scope applies as to the customer
    assert client.get(url, headers=outsider.headers).status_code == 404
    assert "Trail tent" not in client.get(url, headers=outsider.headers).text
    no_scope = make_actor("admin", scopes=["products:read"])  # token without customers:read
    denied = client.get(url, headers=no_scope.headers)
    assert denied.status_code == client.get(f"/api/v1/customers/{seeded.grace_id}",
                                            headers=no_scope.headers).status_code
    assert denied.status_code in (403, 404) and "Trail tent" not in denied.text
    assert client.get("/api/v1/customers/999999/recommendations",
                      headers=admin.headers).status_code == 404
    empty = client.get(f"/api/v1/customers/{seeded.xss_id}/recommendations",
                       headers=admin.headers)
    assert empty.status_code == 200 and empty.json()["items"] == []
