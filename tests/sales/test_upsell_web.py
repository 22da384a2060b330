"""The 360 page's "Open a deal" on a suggestion, and the upsell opportunities page."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.models import Customer, CustomerRecommendation, Deal, Product, User
from accord.sales.pipelines import ensure_default_pipelines
from tests.web.seed import csrf_of


def _seed(db, owner_email: str) -> tuple[int, int]:
    with session_scope(db) as s:
        ensure_default_pipelines(s)
        owner = s.scalar(select(User).where(User.email == owner_email))
        product = Product(sku="T-1", name="Expedition tent", price=Decimal("349.00"),
                          currency="EUR")
        customer = Customer(first_name="Ada", last_name="Buyer", display_name="Ada Buyer",
                            name_key="ada buyer", name_key_alt="buyer ada",
                            owner_id=owner.id if owner else None)
        s.add_all([product, customer])
        s.flush()
        s.add(CustomerRecommendation(customer_id=customer.id, rank=1, product_id=product.id,
                                     score=0.8, model="item_knn", generated_at=utcnow()))
        return customer.id, product.id


def test_open_a_deal_from_the_360_page(signed_in_as, db) -> None:
    web = signed_in_as("sales")
    customer_id, product_id = _seed(db, "sales-0-web@example.com")
    page = web.get(f"/customers/{customer_id}")
    assert page.status_code == 200
    assert 'action="/sales/upsell/open"' in page.text and "Open a deal" in page.text
    assert f'href="/sales/deals/new?customer_id={customer_id}"' in page.text
    form = {"csrf_token": csrf_of(page.text), "customer_id": str(customer_id),
            "product_id": str(product_id)}
    r = web.post("/sales/upsell/open", data=form, follow_redirects=False)
    assert r.status_code == 303
    with session_scope(db) as s:
        deal = s.scalar(select(Deal).where(Deal.customer_id == customer_id))
        assert deal is not None and deal.source == "upsell" and deal.amount == Decimal("349.00")
        assert r.headers["location"] == f"/sales/deals/{deal.id}"
    again = web.post("/sales/upsell/open", data=form, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == r.headers["location"]
    listing = web.get("/sales/upsell")
    assert listing.status_code == 200 and "Expedition tent" in listing.text
    assert f'href="/sales/deals/{deal.id}"' in listing.text


def test_roles_that_cannot_open_deals_see_no_button_and_are_refused(signed_in_as, db) -> None:
    web = signed_in_as("support")
    customer_id, product_id = _seed(db, "nobody@example.com")
    page = web.get(f"/customers/{customer_id}")
    assert page.status_code == 200 and "Expedition tent" in page.text
    assert "/sales/upsell/open" not in page.text and "/sales/deals/new" not in page.text
    r = web.post("/sales/upsell/open", data={
        "csrf_token": csrf_of(page.text), "customer_id": str(customer_id),
        "product_id": str(product_id)}, follow_redirects=False)
    assert r.status_code == 403
    with session_scope(db) as s:
        assert s.scalar(select(Deal.id)) is None
