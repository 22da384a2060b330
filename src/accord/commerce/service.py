"""Products, orders and order lines: the purchase history.

Products are catalogue data: the role's `products` grant decides, there is no record scope.
Orders have no owner of their own: like interactions they take the record scope of their
customer, narrowed by the role's `orders` grant. Totals are always computed here from the lines,
in `Decimal`, never taken from the client.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, selectinload

from accord.access import audit
from accord.access.policy import (
    Principal,
)
from accord.access.service import require
from accord.commerce.schemas import (
    CENT,
    MONEY_LIMIT,
    OrderFields,
    OrderStatusUpdate,
    ProductCreate,
    ProductUpdate,
)
from accord.core.clock import as_utc, utcnow
from accord.core.errors import Conflict, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.prepared import Prepared
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate
from accord.customers import service as customers
from accord.models import Customer, Order, OrderLine, Product
from accord.models.commerce import ORDER_STATUSES
from accord.models.customer import CHANNELS

PRODUCTS = "products"
ORDERS = "orders"
_CMP = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})

# The order life cycle. Anything else is a 409: the request conflicts with the order's state.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"shipped", "cancelled", "refunded"}),
    "shipped": frozenset({"delivered", "refunded"}),
    "delivered": frozenset({"refunded"}),
    "cancelled": frozenset(),
    "refunded": frozenset(),
}
assert set(TRANSITIONS) == set(ORDER_STATUSES)


# --- products ----------------------------------------------------------------------------------

def product_list_spec() -> ListSpec:
    return ListSpec(
        resource=PRODUCTS,
        id_column=Product.id,
        filters={
            "id": Filter(Product.id, int, frozenset({"eq", "in", "lt", "gt"})),
            "sku": Filter(Product.sku, str, frozenset({"eq", "in", "prefix"})),
            "category": Filter(Product.category, ops=frozenset({"eq", "in", "isnull"})),
            "currency": Filter(Product.currency, ops=frozenset({"eq", "in"})),
            "active": Filter(Product.active, bool, frozenset({"eq"})),
            "created_at": Filter(Product.created_at, datetime, _CMP),
        },
        sorts={
            "id": Sort(Product.id, int),
            "sku": Sort(Product.sku, str),
            "created_at": Sort(Product.created_at, datetime),
        },
        default_sort="sku",
    )


def list_products(session: Session, principal: Principal, params: ListParams
                  ) -> tuple[list[Product], str | None]:
    require(principal, PRODUCTS, "read")
    spec = product_list_spec()
    rows = list(session.execute(paginate(select(Product), spec, params)).scalars())
    return page_of(rows, spec, params)


def get_product(session: Session, principal: Principal, product_id: int,
                action: str = "read") -> Product:
    require(principal, PRODUCTS, action)
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"product {product_id} does not exist")
    return product


def _sku_free(session: Session, sku: str, exclude_id: int | None = None) -> None:
    stmt = select(Product.id).where(Product.sku == sku)
    if exclude_id is not None:
        stmt = stmt.where(Product.id != exclude_id)
    if session.execute(stmt).first():
        raise Conflict(f"a product with sku {sku!r} already exists", field="sku")


def create_product(session: Session, principal: Principal, data: ProductCreate) -> Product:
    require(principal, PRODUCTS, "create")
    _sku_free(session, data.sku)
    product = Product(**data.model_dump())
    session.add(product)
    session.flush()
    audit.record(session, principal, "create", PRODUCTS, product.id,
                 data.model_dump(exclude_unset=True).keys())
    emit(session, "product.created", "product", product.id,
         {"sku": product.sku, "price": product.price, "currency": product.currency},
         principal.user_id)
    return product


def update_product(session: Session, principal: Principal, product: Product,
                   data: ProductUpdate) -> Product:
    require(principal, PRODUCTS, "update")
    changes = data.model_dump(exclude_unset=True)
    if "sku" in changes and changes["sku"] != product.sku:
        _sku_free(session, changes["sku"], product.id)
    changed = [k for k, v in changes.items() if getattr(product, k) != v]
    if not changed:
        return product
    for key in changed:
        setattr(product, key, changes[key])
    session.flush()
    audit.record(session, principal, "update", PRODUCTS, product.id, changed)
    emit(session, "product.updated", "product", product.id, {"fields": sorted(changed)},
         principal.user_id)
    return product


def delete_product(session: Session, principal: Principal, product: Product) -> None:
    """Order lines keep their description and prices; their product link becomes empty."""
    require(principal, PRODUCTS, "delete")
    audit.record(session, principal, "delete", PRODUCTS, product.id, (), {"sku": product.sku})
    emit(session, "product.deleted", "product", product.id, {"sku": product.sku}, principal.user_id)
    session.delete(product)
    session.flush()


# --- orders: scope -----------------------------------------------------------------------------

def order_list_spec() -> ListSpec:
    return ListSpec(
        resource=ORDERS,
        id_column=Order.id,
        filters={
            "id": Filter(Order.id, int, frozenset({"eq", "in", "lt", "gt"})),
            "customer_id": Filter(Order.customer_id, int, frozenset({"eq", "in"})),
            "number": Filter(Order.number, str, frozenset({"eq", "in"})),
            "status": Filter(Order.status, choices=ORDER_STATUSES),
            "currency": Filter(Order.currency, ops=frozenset({"eq", "ne", "in"})),
            "channel": Filter(Order.channel, choices=CHANNELS,
                              ops=frozenset({"eq", "in", "isnull"})),
            "ordered_at": Filter(Order.ordered_at, datetime, _CMP),
            "created_at": Filter(Order.created_at, datetime, _CMP),
        },
        sorts={
            "id": Sort(Order.id, int),
            "ordered_at": Sort(Order.ordered_at, datetime),
            "created_at": Sort(Order.created_at, datetime),
        },
        default_sort="-ordered_at",
    )


def customer_for(session: Session, principal: Principal, customer_id: int,
                 action: str = "read") -> Customer:
    return customers.customer_for_child(session, principal, ORDERS, customer_id, action)


def get_order(session: Session, principal: Principal, order_id: int, action: str = "read") -> Order:
    """404 when missing or out of read scope (no existence oracle), 403 when readable only."""
    return customers.get_child(session, principal, ORDERS, Order, order_id, action,
                               (selectinload(Order.lines),))


def list_orders(session: Session, principal: Principal, params: ListParams,
                customer_id: int | None = None) -> tuple[list[Order], str | None]:
    spec = order_list_spec()
    stmt = customers.child_list_query(session, principal, ORDERS, Order, customer_id)
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


# --- orders: writes ----------------------------------------------------------------------------

def _new_number(session: Session, at: datetime) -> str:
    for _ in range(10):
        number = f"ORD-{at:%Y%m%d}-{secrets.token_hex(4).upper()}"
        if not session.execute(select(Order.id).where(Order.number == number)).first():
            return number
    raise Conflict("could not allocate an order number; retry", field="number")


def _build_lines(session: Session, data: OrderFields) -> list[OrderLine]:
    """Resolve products and price every line; the order total is their exact sum."""
    ids = {line.product_id for line in data.lines if line.product_id is not None}
    products: dict[int, Product] = {}
    if ids:
        products = {p.id: p for p in
                    session.execute(select(Product).where(Product.id.in_(ids))).scalars()}
    lines = []
    for i, line in enumerate(data.lines):
        product = None
        if line.product_id is not None:
            product = products.get(line.product_id)
            if product is None:
                raise ValidationProblem(f"product {line.product_id} does not exist",
                                        field=f"lines.{i}.product_id")
        unit_price = line.unit_price
        if unit_price is None:
            if product is None:
                raise ValidationProblem("unit_price is required for a line without a product",
                                        field=f"lines.{i}.unit_price")
            if product.currency != data.currency:
                raise ValidationProblem(
                    f"product {product.sku} is priced in {product.currency}, the order is in "
                    f"{data.currency}: give unit_price", field=f"lines.{i}.unit_price")
            unit_price = product.price
        description = line.description or (product.name if product else None)
        if not description:
            raise ValidationProblem("description is required for a line without a product",
                                    field=f"lines.{i}.description")
        line_total = (unit_price * line.quantity).quantize(CENT)
        if line_total >= MONEY_LIMIT:
            raise ValidationProblem("the line total is too large", field=f"lines.{i}.quantity")
        lines.append(OrderLine(product_id=line.product_id, description=description,
                               quantity=line.quantity, unit_price=unit_price,
                               line_total=line_total))
    return lines


def create_order(session: Session, principal: Principal, customer_id: int,
                 data: OrderFields) -> Order:
    customer = customer_for(session, principal, customer_id, "create")
    lines = _build_lines(session, data)
    total = sum((line.line_total for line in lines), Decimal("0.00")).quantize(CENT)
    if total >= MONEY_LIMIT:
        raise ValidationProblem("the order total is too large", field="lines")
    ordered_at = as_utc(data.ordered_at) if data.ordered_at else utcnow()
    if data.number is not None:
        if session.execute(select(Order.id).where(Order.number == data.number)).first():
            raise Conflict(f"an order with number {data.number!r} already exists", field="number")
        number = data.number
    else:
        number = _new_number(session, ordered_at)
    order = Order(customer_id=customer.id, number=number, status=data.status,
                  currency=data.currency, total=total, ordered_at=ordered_at,
                  channel=data.channel, lines=lines)
    session.add(order)
    session.flush()
    sent = data.model_dump(exclude_unset=True)
    sent.pop("customer_id", None)
    audit.record(session, principal, "create", ORDERS, order.id, sent.keys(),
                 {"customer_id": customer.id, "number": number})
    emit(session, "order.created", "order", order.id,
         {"customer_id": customer.id, "number": number, "status": order.status,
          "currency": order.currency, "total": str(total), "lines": len(lines)}, principal.user_id)
    return order


def change_status(session: Session, principal: Principal, order: Order,
                  data: OrderStatusUpdate) -> Order:
    customer_for(session, principal, order.customer_id, "update")
    old = order.status
    if data.status == old:
        return order
    if data.status not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "none"
        raise Conflict(f"an order cannot go from {old} to {data.status} (allowed: {allowed})",
                       field="status")
    order.status = data.status
    session.flush()
    audit.record(session, principal, "update", ORDERS, order.id, ["status"],
                 {"from": old, "to": data.status}, reason=data.reason)
    emit(session, "order.status_changed", "order", order.id,
         {"customer_id": order.customer_id, "from": old, "to": data.status}, principal.user_id)
    return order


# --- the 360° view -----------------------------------------------------------------------------

_O = Order.__table__.c
_NOT_REVENUE = ("cancelled", "refunded")
# Built once: only the columns the timeline and the summary need.
_TIMELINE = Prepared(
    select(_O.id, _O.ordered_at, _O.channel, _O.number, _O.status, _O.total, _O.currency)
    .where(_O.customer_id == bindparam("cid"))
    .order_by(_O.ordered_at.desc(), _O.id.desc())
    .limit(bindparam("limit"))
)
_SUMMARY = Prepared(
    select(_O.currency, func.count(_O.id), func.sum(_O.total), func.min(_O.ordered_at),
           func.max(_O.ordered_at))
    # `!=` each rather than NOT IN: a fixed statement, without an expanding parameter
    .where(_O.customer_id == bindparam("cid"), *(_O.status != s for s in _NOT_REVENUE))
    .group_by(_O.currency)
)


def _entry(r: Any) -> dict[str, Any]:
    return {"kind": "order", "id": f"o{r[0]}", "at": r[1], "channel": r[2] or "web",
            "direction": "inbound", "department": "sales", "subject": f"Order {r[3]}",
            "body": f"{r[4]} · {r[5]} {r[6]}", "record_id": r[0], "total": r[5],
            "currency": r[6], "status": r[4]}


def timeline_entries(session: Session, customer_id: int, limit: int) -> list[dict[str, Any]]:
    rows = _TIMELINE.all(session.connection(), {"cid": customer_id, "limit": limit})
    return [_entry(r) for r in rows]


def _summary(groups: list[tuple[str, int, Any, datetime, datetime]]) -> dict[str, Any]:
    return {
        "orders": sum(g[1] for g in groups),
        "revenue": {g[0]: Decimal(g[2] or 0).quantize(Decimal("0.01")) for g in groups},
        "first_order_at": min((g[3] for g in groups), default=None),
        "last_order_at": max((g[4] for g in groups), default=None),
    }


def purchase_summary(session: Session, customer_id: int) -> dict[str, Any]:
    """Order count, first/last purchase and revenue per currency (never summed across them)."""
    return _summary(_SUMMARY.all(session.connection(), {"cid": customer_id}))


def timeline_and_summary(
    session: Session, customer_id: int, limit: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The 360° view's orders: the `limit` latest as timeline entries, and the purchase summary.
    When the customer has fewer orders than that (nearly always) the summary is computed from
    the rows already read instead of a second query: the same figures (per currency, in
    ascending currency order as SQLite's GROUP BY returns them)."""
    rows = _TIMELINE.all(session.connection(), {"cid": customer_id, "limit": limit})
    if len(rows) >= limit:
        return [_entry(r) for r in rows], purchase_summary(session, customer_id)
    groups: dict[str, list[Any]] = {}
    for r in rows:
        if r[4] is None or r[4] in _NOT_REVENUE:
            continue
        g = groups.get(r[6])
        if g is None:
            groups[r[6]] = [r[6], 1, r[5], r[1], r[1]]
        else:
            g[1] += 1
            g[2] += r[5]
            g[3] = min(g[3], r[1])
            g[4] = max(g[4], r[1])
    return [_entry(r) for r in rows], _summary([tuple(groups[k]) for k in sorted(groups)])
