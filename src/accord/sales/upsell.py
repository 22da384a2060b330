"""Upsell: opportunities for existing customers from their purchase history, one click to a deal.

The suggestions are the analytics recommendations (`customer_recommendations`, refreshed by
`accord analytics run`); this module only reads them within the reader's customer scope and
turns one into a deal in the upsell pipeline, with the product as its line.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from accord.access.policy import Principal, scope_clause, scope_for
from accord.access.service import require
from accord.core.clock import utcnow
from accord.core.errors import Conflict, ValidationProblem
from accord.customers import service as customers
from accord.models import (
    Customer,
    CustomerRecommendation,
    CustomerScore,
    Deal,
    DealLine,
    Pipeline,
    Product,
)
from accord.sales import deals
from accord.sales.deals_schemas import DealCreate, DealLineIn

CLOSE_IN_DAYS = 30


class Opportunity(BaseModel):
    customer_id: int
    customer_name: str
    product_id: int
    product_name: str
    sku: str
    price: Decimal
    currency: str
    score: float
    value_tier: str | None
    open_deal_id: int | None  # an open deal for this customer and product already exists


def _pipeline_id(session: Session) -> int:
    """The first active upsell pipeline, else the first active pipeline of any kind."""
    for kinds in (("upsell", "renewal"), None):
        stmt = select(Pipeline.id).where(Pipeline.active.is_(True))
        if kinds:
            stmt = stmt.where(Pipeline.kind.in_(kinds))
        found = session.scalar(stmt.order_by(Pipeline.position, Pipeline.id).limit(1))
        if found is not None:
            return found
    raise ValidationProblem("there is no active pipeline to open the deal in",
                            field="pipeline_id")


def _open_deals(session: Session, customer_ids: list[int]) -> dict[tuple[int, int], int]:
    """(customer, product) → an open deal holding that product."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(Deal.customer_id, DealLine.product_id, Deal.id)
        .join(DealLine, DealLine.deal_id == Deal.id)
        .where(Deal.customer_id.in_(customer_ids), Deal.status == "open",
               DealLine.product_id.is_not(None)))
    return {(c, p): d for c, p, d in rows}


def opportunities(session: Session, principal: Principal, limit: int = 25,
                  customer_id: int | None = None) -> list[Opportunity]:
    """The best suggestion per customer the reader may see (all of them for one customer),
    strongest first."""
    require(principal, "customers", "read")
    scope = scope_for(principal, "customers", "read")
    rec = CustomerRecommendation
    stmt = (select(rec.customer_id, Customer.display_name, Product.id, Product.name, Product.sku,
                   Product.price, Product.currency, rec.score, CustomerScore.value_tier)
            .join(Customer, Customer.id == rec.customer_id)
            .join(Product, and_(Product.id == rec.product_id, Product.active.is_(True)))
            .outerjoin(CustomerScore, CustomerScore.customer_id == rec.customer_id)
            .where(scope_clause(principal, scope, Customer.owner_id, Customer.team_id)))
    if customer_id is not None:
        stmt = stmt.where(rec.customer_id == customer_id).order_by(rec.rank)
    else:
        stmt = stmt.where(rec.rank == 1).order_by(rec.score.desc(), rec.customer_id)
    rows = session.execute(stmt.limit(limit)).all()
    taken = _open_deals(session, sorted({r[0] for r in rows}))
    return [Opportunity(customer_id=r[0], customer_name=r[1], product_id=r[2],
                        product_name=r[3], sku=r[4], price=r[5], currency=r[6],
                        score=float(r[7]), value_tier=r[8],
                        open_deal_id=taken.get((r[0], r[2])))
            for r in rows]


def open_deal(session: Session, principal: Principal, customer_id: int,
              product_id: int) -> Deal:
    """A deal in the upsell pipeline for one suggested product; 409 when one is already open."""
    customer = customers.get_customer(session, principal, customer_id, "read")
    suggested = session.scalar(select(CustomerRecommendation.id).where(
        CustomerRecommendation.customer_id == customer.id,
        CustomerRecommendation.product_id == product_id))
    product = session.get(Product, product_id)
    if suggested is None or product is None or not product.active:
        raise ValidationProblem(f"product {product_id} is not a current suggestion for "
                                f"customer {customer.id}", field="product_id")
    existing = _open_deals(session, [customer.id]).get((customer.id, product.id))
    if existing is not None:
        raise Conflict(f"deal {existing} for this product is already open", field="product_id")
    label = customer.display_name or f"customer {customer.id}"
    return deals.create_deal(session, principal, DealCreate(
        name=f"Upsell: {product.name} for {label}"[:200], pipeline_id=_pipeline_id(session),
        currency=product.currency, customer_id=customer.id, account_id=customer.account_id,
        expected_close_date=utcnow().date() + timedelta(days=CLOSE_IN_DAYS), source="upsell",
        lines=[DealLineIn(product_id=product.id, quantity=1)]))
