"""One customer's stored suggestions as a viewer may see them (360 page, API), in plain words.

Who sees them: every role that may read the customer (the record scope of `customers` read
applies; the caller checks it first). The reason names products the customer bought, i.e. their
purchase history: it is shown only to roles that may read `orders` (today every role that reads
customers), otherwise the suggestion is shown without it and `reason` is listed in
`masked_fields`. Product names come from the catalogue at display time, so a renamed product
reads right and nothing but ids is stored per row. Kept free of pandas/numpy (cheap import).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal, can
from accord.models import CustomerRecommendation, Product

RESOURCE = "customer_recommendations"
POPULAR = "Popular with customers overall"
FIELDS = ("rank", "product_id", "score", "model", "generated_at")
REASON_FIELDS = ("because_product_id_1", "because_product_id_2")


def reason_text(product: str, because: list[str]) -> str:
    """'Bought X and Y; customers who bought those also bought Z' (or one X, or popularity)."""
    if len(because) >= 2:
        return (f"Bought {because[0]} and {because[1]}; customers who bought those also "
                f"bought {product}")
    if because:
        return f"Bought {because[0]}; customers who bought it also bought {product}"
    return POPULAR


def customer_recommendations(
    session: Session, principal: Principal, customer_id: int, limit: int = 5
) -> dict[str, Any]:
    """The customer's top `limit` suggestions with their reasons; `items` is empty before the
    first refresh or for a customer without purchases."""
    r = CustomerRecommendation.__table__.c
    rows = session.execute(
        select(r.rank, r.product_id, r.score, r.because_product_id_1, r.because_product_id_2,
               r.model, r.generated_at)
        .where(r.customer_id == customer_id).order_by(r.rank).limit(limit)
    ).all()
    with_reasons = can(principal, "orders", "read")
    wanted = {row.product_id for row in rows}
    if with_reasons:
        wanted |= {b for row in rows for b in (row.because_product_id_1, row.because_product_id_2)
                   if b is not None}
    p = Product.__table__.c
    catalogue = {row.id: row for row in session.execute(
        select(p.id, p.name, p.sku).where(p.id.in_(wanted))
    )} if wanted else {}
    items = []
    for row in rows:
        product = catalogue.get(row.product_id)
        if product is None:  # deleted between the refresh and now (the FK cascade is racing)
            continue
        item: dict[str, Any] = {"rank": row.rank, "product_id": row.product_id,
                                "product_name": product.name, "sku": product.sku,
                                "score": row.score}
        if with_reasons:
            because = [catalogue[b] for b in (row.because_product_id_1, row.because_product_id_2)
                       if b is not None and b in catalogue]
            item["because"] = [{"product_id": b.id, "product_name": b.name} for b in because]
            item["reason"] = reason_text(product.name, [b.name for b in because])
        items.append(item)
    return {
        "customer_id": customer_id,
        "model": rows[0].model if rows else None,
        "generated_at": rows[0].generated_at if rows else None,
        "items": items,
        "masked_fields": [] if with_reasons else ["because", "reason"],
    }


def audit_read(principal: Principal, customer_id: int, shown: dict[str, Any], via: str) -> None:
    """Record that the principal saw these suggestions (profiling is personal data)."""
    if not shown["items"]:
        return
    fields = list(FIELDS) + ([] if shown["masked_fields"] else list(REASON_FIELDS))
    audit.record_read(principal, RESOURCE, [customer_id], fields, {"via": via})
