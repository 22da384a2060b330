"""Deals: the one write path (policy `deals`, audit, events), stage moves with their history,
and the kanban board's data.

A deal's status is its stage's outcome (open, won, lost); `closed_at` is set when it is won or
lost and cleared when it is reopened; the forecast category is `closed` exactly while it is
closed. Every stage a deal enters (creation included) adds a `DealStageChange` row, which the
historical forecast reads, so a stage changes only through `move_deal`, never through an update.
Amounts are `Decimal` in the deal's currency; when a deal has lines, its amount is their sum,
computed here and never taken from the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from accord.access import audit
from accord.access.policy import Principal, record_in_scope, scope_clause, scope_for
from accord.access.service import check_reassignment, require
from accord.commerce.schemas import CENT, MONEY_LIMIT
from accord.core.clock import utcnow
from accord.core.errors import Forbidden, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate, parse_value
from accord.customers import accounts as accounts_service
from accord.customers import service as customers
from accord.customers.schemas import AssignIn
from accord.models import (
    Account,
    Contact,
    Customer,
    Deal,
    DealLine,
    DealStageChange,
    Lead,
    Pipeline,
    PipelineStage,
    Product,
    Team,
    User,
)
from accord.models.sales import DEAL_STATUSES, FORECAST_CATEGORIES
from accord.sales import leads, pipelines
from accord.sales.deals_schemas import (
    DealCreate,
    DealLineIn,
    DealLineOut,
    DealMove,
    DealOut,
    DealUpdate,
    StageChangeOut,
)
from accord.sales.forecast import add_months

RESOURCE = "deals"
# Which personal fields a deal read exposes (the registry's columns), for the audit trail.
READ_FIELDS = ("name", "competitors", "lost_note")
BOARD_PAGE = 25
_CMP = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})
_HUNDRED = Decimal(100)


# --- listing -----------------------------------------------------------------------------------

def list_spec() -> ListSpec:
    return ListSpec(
        resource=RESOURCE,
        id_column=Deal.id,
        filters={
            "id": Filter(Deal.id, int, frozenset({"eq", "in", "lt", "gt"})),
            "pipeline_id": Filter(Deal.pipeline_id, int, frozenset({"eq", "in"})),
            "stage_id": Filter(Deal.stage_id, int, frozenset({"eq", "in"})),
            "status": Filter(Deal.status, choices=DEAL_STATUSES),
            "owner_id": Filter(Deal.owner_id, int, frozenset({"eq", "in", "isnull"})),
            "team_id": Filter(Deal.team_id, int, frozenset({"eq", "in", "isnull"})),
            "customer_id": Filter(Deal.customer_id, int, frozenset({"eq", "in", "isnull"})),
            "account_id": Filter(Deal.account_id, int, frozenset({"eq", "in", "isnull"})),
            "lead_id": Filter(Deal.lead_id, int, frozenset({"eq", "in", "isnull"})),
            "expected_close_date": Filter(Deal.expected_close_date, date, _CMP | {"isnull"}),
            "forecast_category": Filter(Deal.forecast_category, choices=FORECAST_CATEGORIES),
            "amount": Filter(Deal.amount, Decimal, _CMP),
            "currency": Filter(Deal.currency, ops=frozenset({"eq", "ne", "in"})),
            "created_at": Filter(Deal.created_at, datetime, _CMP),
            "closed_at": Filter(Deal.closed_at, datetime, _CMP | {"isnull"}),
        },
        sorts={
            "id": Sort(Deal.id, int),
            "amount": Sort(Deal.amount, Decimal),
            "expected_close_date": Sort(Deal.expected_close_date, date),
            "created_at": Sort(Deal.created_at, datetime),
            "updated_at": Sort(Deal.updated_at, datetime),
            "stage_entered_at": Sort(Deal.stage_entered_at, datetime),
        },
        default_sort="-id",
    )


def _read_scope(principal: Principal) -> Any:
    scope = scope_for(principal, RESOURCE, "read")
    if scope is None:
        raise Forbidden("your role may not read deals")
    return scope


def visible_clause(principal: Principal) -> ColumnElement[bool]:
    return scope_clause(principal, _read_scope(principal), Deal.owner_id, Deal.team_id)


def list_deals(session: Session, principal: Principal, params: ListParams
               ) -> tuple[list[Deal], str | None]:
    spec = list_spec()
    stmt = select(Deal).where(visible_clause(principal))
    if params.q:
        stmt = stmt.where(Deal.name.startswith(params.q, autoescape=True))
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


def in_scope(principal: Principal, deal: Deal, action: str) -> bool:
    return record_in_scope(principal, scope_for(principal, RESOURCE, action), deal.owner_id,
                           deal.team_id)


def get_deal(session: Session, principal: Principal, deal_id: int, action: str = "read") -> Deal:
    """404 when missing or out of read scope (no existence oracle), 403 when readable only."""
    _read_scope(principal)
    deal = session.get(Deal, deal_id)
    if deal is None or not in_scope(principal, deal, "read"):
        raise NotFound(f"deal {deal_id} does not exist")
    if action != "read" and not in_scope(principal, deal, action):
        raise Forbidden(f"your role may not {action} this deal")
    return deal


def stage_history(session: Session, deal_id: int) -> list[DealStageChange]:
    return list(session.execute(
        select(DealStageChange).where(DealStageChange.deal_id == deal_id)
        .order_by(DealStageChange.changed_at, DealStageChange.id)).scalars())


def to_out(session: Session, deal: Deal) -> DealOut:
    data = {name: getattr(deal, name) for name in DealOut.model_fields
            if name not in ("lines", "stage_history")}
    data["competitors"] = list(deal.competitors or [])
    data["lines"] = [DealLineOut.model_validate(line) for line in deal.lines]
    data["stage_history"] = [StageChangeOut.model_validate(c)
                             for c in stage_history(session, deal.id)]
    return DealOut.model_validate(data)


# --- references and lines ----------------------------------------------------------------------

def _refuse(field_name: str, message: str) -> ValidationProblem:
    return ValidationProblem(message, field=field_name)


def _check_customer(session: Session, principal: Principal, customer_id: int) -> None:
    customer = session.get(Customer, customer_id)
    if customer is None or not customers.in_scope(principal, customer, "read"):
        raise _refuse("customer_id", f"customer {customer_id} does not exist")
    if customer.merged_into_id is not None:
        raise _refuse("customer_id", f"customer {customer_id} was merged into customer "
                      f"{customer.merged_into_id}; use that one")


def _check_account(session: Session, principal: Principal, account_id: int) -> None:
    account = session.get(Account, account_id)
    if account is None or not accounts_service.account_in_scope(principal, account, "read"):
        raise _refuse("account_id", f"account {account_id} does not exist")


def _contact_account(session: Session, principal: Principal, contact_id: int) -> int:
    """The contact's account id, when the caller may read the contact (through its account)."""
    contact = session.get(Contact, contact_id)
    account = session.get(Account, contact.account_id) if contact is not None else None
    if (contact is None or account is None
            or not accounts_service.account_in_scope(principal, account, "read")
            or not accounts_service.account_in_scope(principal, account, "read",
                                                     accounts_service.CONTACTS)):
        raise _refuse("contact_id", f"contact {contact_id} does not exist")
    return contact.account_id


def _check_lead(session: Session, principal: Principal, lead_id: int) -> None:
    lead = session.get(Lead, lead_id)
    if lead is None or not leads.in_scope(principal, lead, "read"):
        raise _refuse("lead_id", f"lead {lead_id} does not exist")


def _check_refs(session: Session, principal: Principal, values: Mapping[str, Any]) -> int | None:
    """Validate the linked records the caller sends; returns the account id to store (a contact
    alone brings its account along)."""
    account_id = values.get("account_id")
    if values.get("customer_id") is not None:
        _check_customer(session, principal, values["customer_id"])
    if account_id is not None:
        _check_account(session, principal, account_id)
    if values.get("contact_id") is not None:
        contact_account = _contact_account(session, principal, values["contact_id"])
        if account_id is None:
            account_id = contact_account
        elif account_id != contact_account:
            raise _refuse("contact_id", f"contact {values['contact_id']} is not a contact of "
                          f"account {account_id}")
    if values.get("lead_id") is not None:
        _check_lead(session, principal, values["lead_id"])
    return account_id


def _line_total(quantity: int, unit_price: Decimal, discount: Decimal) -> Decimal:
    gross = unit_price * quantity
    return (gross * (_HUNDRED - discount) / _HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def _build_lines(session: Session, lines: list[DealLineIn], currency: str) -> list[DealLine]:
    ids = {line.product_id for line in lines if line.product_id is not None}
    products: dict[int, Product] = {}
    if ids:
        products = {p.id: p for p in
                    session.execute(select(Product).where(Product.id.in_(ids))).scalars()}
    out = []
    for i, line in enumerate(lines):
        product = None
        if line.product_id is not None:
            product = products.get(line.product_id)
            if product is None:
                raise _refuse(f"lines.{i}.product_id", f"product {line.product_id} does not exist")
        unit_price = line.unit_price
        if unit_price is None:
            if product is None:
                raise _refuse(f"lines.{i}.unit_price",
                              "unit_price is required for a line without a product")
            if product.currency != currency:
                raise _refuse(f"lines.{i}.unit_price",
                              f"product {product.sku} is priced in {product.currency}, the deal "
                              f"is in {currency}: give unit_price")
            unit_price = product.price
        description = line.description or (product.name if product else None)
        if not description:
            raise _refuse(f"lines.{i}.description",
                          "description is required for a line without a product")
        discount = line.discount_percent.quantize(CENT)
        total = _line_total(line.quantity, unit_price, discount)
        if total >= MONEY_LIMIT:
            raise _refuse(f"lines.{i}.quantity", "the line total is too large")
        out.append(DealLine(product_id=line.product_id, description=description,
                            quantity=line.quantity, unit_price=unit_price,
                            discount_percent=discount, line_total=total))
    return out


def _sum_lines(lines: list[DealLine]) -> Decimal:
    total = sum((line.line_total for line in lines), Decimal("0.00")).quantize(CENT)
    if total >= MONEY_LIMIT:
        raise _refuse("lines", "the deal amount is too large")
    return total


def _stage_of(session: Session, pipeline: Pipeline, stage_id: int) -> PipelineStage:
    stage = session.get(PipelineStage, stage_id)
    if stage is None:
        raise _refuse("stage_id", f"stage {stage_id} does not exist")
    if stage.pipeline_id != pipeline.id:
        raise _refuse("stage_id", f"stage {stage_id} is not a stage of pipeline {pipeline.id}")
    return stage


def _enter(deal: Deal, stage: PipelineStage, now: datetime, lost_reason: str | None,
           lost_note: str | None) -> None:
    """Put the deal in `stage`: status, closing time, forecast category and lost reason follow."""
    if stage.outcome == "lost" and not lost_reason:
        raise _refuse("lost_reason", "a deal moved to a lost stage needs a lost_reason")
    if stage.outcome != "lost" and lost_reason:
        raise _refuse("lost_reason", "lost_reason is only for a deal moved to a lost stage")
    deal.stage_id = stage.id
    deal.stage_entered_at = now
    was_closed = deal.status in ("won", "lost")
    deal.status = stage.outcome
    if stage.outcome == "open":
        deal.closed_at = None
        deal.lost_reason = None
        deal.lost_note = None
        if deal.forecast_category == "closed" or deal.forecast_category is None:
            deal.forecast_category = "pipeline"
        return
    if not was_closed or deal.closed_at is None:
        deal.closed_at = now
    deal.forecast_category = "closed"
    if stage.outcome == "lost":
        deal.lost_reason = lost_reason
        if lost_note is not None:
            deal.lost_note = lost_note
    else:
        deal.lost_reason = None
        deal.lost_note = None


def _check_forecast(category: str | None, status: str) -> None:
    if category is None:
        return
    if status == "open" and category == "closed":
        raise _refuse("forecast_category", "closed is set by the server when a deal is won or "
                      "lost; an open deal is pipeline, best_case, commit or omitted")
    if status != "open" and category != "closed":
        raise _refuse("forecast_category", f"a {status} deal is in the closed category")


# --- writes ------------------------------------------------------------------------------------

def create_deal(session: Session, principal: Principal, data: DealCreate) -> Deal:
    """Also the path of lead conversion and of opening a deal from an upsell suggestion: the
    caller becomes the owner (its team the deal's team)."""
    require(principal, RESOURCE, "create")
    pipeline = session.get(Pipeline, data.pipeline_id, options=[selectinload(Pipeline.stages)])
    if pipeline is None:
        raise _refuse("pipeline_id", f"pipeline {data.pipeline_id} does not exist")
    if not pipeline.active:
        raise _refuse("pipeline_id", f"pipeline {pipeline.name!r} is not active")
    stage = (_stage_of(session, pipeline, data.stage_id) if data.stage_id is not None
             else pipelines.first_open_stage(pipeline))
    _check_forecast(data.forecast_category, stage.outcome)
    sent = data.model_dump(exclude_unset=True)
    account_id = _check_refs(session, principal, sent)
    lines = _build_lines(session, data.lines, data.currency)
    amount = data.amount if data.amount is not None else Decimal("0.00")
    if lines:
        total = _sum_lines(lines)
        if data.amount is not None and data.amount != total:
            raise _refuse("amount", f"the amount is the sum of the lines ({total}); leave it out "
                          "or send that sum")
        amount = total
    now = utcnow()
    deal = Deal(name=data.name, pipeline_id=pipeline.id, stage_id=stage.id, status="open",
                amount=amount, currency=data.currency, probability=data.probability,
                expected_close_date=data.expected_close_date,
                forecast_category=data.forecast_category or "pipeline",
                competitors=list(data.competitors or []), lost_note=data.lost_note,
                source=data.source, customer_id=data.customer_id, account_id=account_id,
                contact_id=data.contact_id, lead_id=data.lead_id, owner_id=principal.user_id,
                team_id=principal.team_id, created_by=principal.user_id, lines=lines,
                stage_entered_at=now, created_at=now, updated_at=now)
    _enter(deal, stage, now, data.lost_reason, data.lost_note)
    session.add(deal)
    session.flush()
    session.add(DealStageChange(deal_id=deal.id, from_stage_id=None, to_stage_id=stage.id,
                                amount=deal.amount, changed_at=now,
                                changed_by=principal.user_id))
    session.flush()
    audit.record(session, principal, "create", RESOURCE, deal.id, sent.keys(),
                 {"pipeline_id": pipeline.id, "stage_id": stage.id})
    emit(session, "deal.created", "deal", deal.id,
         {"pipeline_id": pipeline.id, "stage_id": stage.id, "status": deal.status,
          "amount": str(deal.amount), "currency": deal.currency, "owner_id": deal.owner_id,
          "customer_id": deal.customer_id, "lead_id": deal.lead_id, "source": deal.source},
         principal.user_id)
    if deal.status != "open":
        emit(session, f"deal.{deal.status}", "deal", deal.id, _closed_payload(deal),
             principal.user_id)
    return deal


def _closed_payload(deal: Deal) -> dict[str, Any]:
    return {"pipeline_id": deal.pipeline_id, "stage_id": deal.stage_id,
            "amount": str(deal.amount), "currency": deal.currency,
            "lost_reason": deal.lost_reason, "customer_id": deal.customer_id,
            "owner_id": deal.owner_id}


def update_deal(session: Session, principal: Principal, deal: Deal, data: DealUpdate) -> Deal:
    if not in_scope(principal, deal, "update"):
        raise Forbidden("your role may not update this deal")
    sent = data.model_dump(exclude_unset=True)
    if not sent:
        return deal
    if sent.get("customer_id") is not None:
        _check_customer(session, principal, sent["customer_id"])
    if sent.get("account_id") is not None:
        _check_account(session, principal, sent["account_id"])
    if sent.get("contact_id") is not None:
        contact_account = _contact_account(session, principal, sent["contact_id"])
        account_id = sent.get("account_id", deal.account_id)
        if account_id is None:
            sent["account_id"] = contact_account
        elif account_id != contact_account:
            raise _refuse("contact_id", f"contact {sent['contact_id']} is not a contact of "
                          f"account {account_id}")
    if "forecast_category" in sent:
        _check_forecast(sent["forecast_category"], deal.status)
    if "lost_reason" in sent:
        if deal.status != "lost":
            raise _refuse("lost_reason", "only a lost deal has a lost_reason")
        if sent["lost_reason"] is None:
            raise _refuse("lost_reason", "a lost deal needs a lost_reason")
    currency = sent.get("currency", deal.currency)
    changed: list[str] = []
    with session.no_autoflush:
        if "lines" in sent:
            lines = _build_lines(session, data.lines or [], currency)
            if lines:
                total = _sum_lines(lines)
                if "amount" in sent and sent["amount"] != total:
                    raise _refuse("amount", f"the amount is the sum of the lines ({total}); "
                                  "leave it out or send that sum")
                sent["amount"] = total
            deal.lines = lines
            changed.append("lines")
        elif "amount" in sent and deal.lines and sent["amount"] != deal.amount:
            raise _refuse("amount", "the amount is the sum of the deal's lines: change the lines")
        for key, value in sent.items():
            if key == "lines":
                continue
            current = getattr(deal, key)
            if key == "competitors":
                current = list(current or [])
            if current != value:
                setattr(deal, key, value)
                changed.append(key)
        if not changed:
            return deal
        deal.updated_at = utcnow()  # lines alone still move the version on
    session.flush()
    audit.record(session, principal, "update", RESOURCE, deal.id, changed)
    emit(session, "deal.updated", "deal", deal.id, {"fields": sorted(changed)}, principal.user_id)
    return deal


def move_deal(session: Session, principal: Principal, deal: Deal, data: DealMove) -> Deal:
    """Move to another stage of the deal's pipeline: history row, status, events, audit."""
    if not in_scope(principal, deal, "update"):
        raise Forbidden("your role may not update this deal")
    pipeline = session.get(Pipeline, deal.pipeline_id)
    assert pipeline is not None  # RESTRICT foreign key
    stage = _stage_of(session, pipeline, data.stage_id)
    if stage.id == deal.stage_id:
        if data.lost_reason and stage.outcome != "lost":
            raise _refuse("lost_reason", "lost_reason is only for a deal moved to a lost stage")
        return deal
    old_stage, old_status = deal.stage_id, deal.status
    now = utcnow()
    _enter(deal, stage, now, data.lost_reason, data.lost_note)
    if old_status != "open" and deal.status != "open" and old_status != deal.status:
        deal.closed_at = now  # won → lost or back: closed again, now
    deal.probability = None  # the new stage's default applies
    deal.updated_at = now
    session.add(DealStageChange(deal_id=deal.id, from_stage_id=old_stage, to_stage_id=stage.id,
                                amount=deal.amount, changed_at=now, changed_by=principal.user_id))
    session.flush()
    audit.record(session, principal, "update", RESOURCE, deal.id,
                 ["stage_id", "status", "stage_entered_at"],
                 {"from_stage_id": old_stage, "to_stage_id": stage.id,
                  "from_status": old_status, "to_status": deal.status,
                  "lost_reason": deal.lost_reason})
    payload = {"pipeline_id": deal.pipeline_id, "from_stage_id": old_stage,
               "to_stage_id": stage.id, "from_status": old_status, "to_status": deal.status,
               "amount": str(deal.amount), "currency": deal.currency, "owner_id": deal.owner_id}
    emit(session, "deal.stage_changed", "deal", deal.id, payload, principal.user_id)
    if deal.status != old_status and deal.status in ("won", "lost"):
        emit(session, f"deal.{deal.status}", "deal", deal.id, _closed_payload(deal),
             principal.user_id)
    return deal


def assign(session: Session, principal: Principal, deal: Deal, data: AssignIn) -> Deal:
    changes = data.model_dump(exclude_unset=True)
    check_reassignment(session, principal, RESOURCE, deal, changes)
    changed = [k for k, v in changes.items() if getattr(deal, k) != v]
    if not changed:
        return deal
    for key in changed:
        setattr(deal, key, changes[key])
    session.flush()
    audit.record(session, principal, "assign", RESOURCE, deal.id, changed)
    emit(session, "deal.assigned", "deal", deal.id, {k: changes[k] for k in changed},
         principal.user_id)
    return deal


def delete_deal(session: Session, principal: Principal, deal: Deal) -> None:
    if not in_scope(principal, deal, "delete"):
        raise Forbidden("your role may not delete this deal")
    audit.record(session, principal, "delete", RESOURCE, deal.id, (),
                 {"pipeline_id": deal.pipeline_id, "status": deal.status})
    emit(session, "deal.deleted", "deal", deal.id,
         {"pipeline_id": deal.pipeline_id, "stage_id": deal.stage_id}, principal.user_id)
    session.delete(deal)
    session.flush()


# --- the kanban board --------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardFilters:
    """Server-side board filters: owner, team, and the month the deals are expected to close."""

    owner_id: int | None = None
    team_id: int | None = None
    close_month: date | None = None  # the first day of the month

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.owner_id is not None:
            out.append(_D.owner_id == self.owner_id)
        if self.team_id is not None:
            out.append(_D.team_id == self.team_id)
        if self.close_month is not None:
            start = self.close_month
            end = add_months(start, 1)
            out.append(_D.expected_close_date >= start)
            out.append(_D.expected_close_date < end)
        return out

    def as_query(self) -> dict[str, str]:
        out = {}
        if self.owner_id is not None:
            out["owner_id"] = str(self.owner_id)
        if self.team_id is not None:
            out["team_id"] = str(self.team_id)
        if self.close_month is not None:
            out["close_month"] = self.close_month.strftime("%Y-%m")
        return out


def parse_board_filters(params: Mapping[str, str]) -> BoardFilters:
    """`owner_id`, `team_id`, `close_month=YYYY-MM` (empty values mean 'any'); 422 naming the
    parameter when a value is not valid."""
    values = {k: str(v).strip() for k, v in params.items() if str(v).strip()}
    owner = parse_value(values["owner_id"], int, "owner_id") if "owner_id" in values else None
    team = parse_value(values["team_id"], int, "team_id") if "team_id" in values else None
    month = None
    if "close_month" in values:
        raw = values["close_month"]
        try:
            if len(raw) != 7 or raw[4] != "-":
                raise ValueError(raw)
            month = date(int(raw[:4]), int(raw[5:]), 1)
        except ValueError:
            raise _refuse("close_month", f"{raw[:20]!r} is not a month (YYYY-MM)") from None
    return BoardFilters(owner, team, month)


@dataclass
class StageTotals:
    count: int = 0
    amount: dict[str, Decimal] = field(default_factory=dict)  # per currency, never summed across
    weighted: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Card:
    id: int
    version: int
    name: str
    stage_id: int
    status: str
    amount: Decimal
    currency: str
    probability: int
    expected_close_date: date | None
    forecast_category: str
    stage_entered_at: datetime
    owner_id: int | None
    owner_name: str | None
    team_id: int | None


@dataclass
class Column:
    stage_id: int
    name: str
    position: int
    probability: int
    outcome: str
    cards: list[Card]
    next_before: int | None  # keyset: ask for cards with a smaller id for the next page
    totals: StageTotals


@dataclass
class Board:
    pipeline_id: int
    pipeline_name: str
    kind: str
    filters: BoardFilters
    columns: list[Column]


_D = Deal.__table__.c
_U = User.__table__.c
_CARDS = (
    select(_D.id, _D.version, _D.name, _D.stage_id, _D.status, _D.amount, _D.currency,
           _D.probability, _D.expected_close_date, _D.forecast_category, _D.stage_entered_at,
           _D.owner_id, _U.full_name.label("owner_name"), _D.team_id)
    .select_from(Deal.__table__.outerjoin(User.__table__, _U.id == _D.owner_id))
)
_TOTALS = (
    select(_D.stage_id, _D.currency, _D.probability, func.count().label("n"),
           func.sum(_D.amount).label("amount"))
    .group_by(_D.stage_id, _D.currency, _D.probability)
)


def _scope_sql(principal: Principal) -> ColumnElement[bool]:
    return scope_clause(principal, _read_scope(principal), _D.owner_id, _D.team_id)


def _card(row: Any, stage_probability: int) -> Card:
    return Card(id=row.id, version=row.version, name=row.name, stage_id=row.stage_id,
                status=row.status, amount=_money(row.amount), currency=row.currency,
                probability=row.probability if row.probability is not None else stage_probability,
                expected_close_date=row.expected_close_date,
                forecast_category=row.forecast_category, stage_entered_at=row.stage_entered_at,
                owner_id=row.owner_id, owner_name=row.owner_name, team_id=row.team_id)


def _money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(CENT)


def _stage_cards(session: Session, where: list[ColumnElement[bool]], stage: PipelineStage,
                 before: int | None, limit: int) -> tuple[list[Card], int | None]:
    # `stage_id = ? AND status = ? ORDER BY id DESC`: a walk of ix_deals_stage_status_id
    stmt = _CARDS.where(_D.stage_id == stage.id, _D.status == stage.outcome, *where)
    if before is not None:
        stmt = stmt.where(_D.id < before)
    rows = list(session.execute(stmt.order_by(_D.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    cards = [_card(r, stage.probability) for r in rows[:limit]]
    return cards, (cards[-1].id if more and cards else None)


def _board_pipeline(session: Session, principal: Principal, pipeline_id: int) -> Pipeline:
    _read_scope(principal)
    pipeline = session.get(Pipeline, pipeline_id, options=[selectinload(Pipeline.stages)])
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} does not exist")
    return pipeline


def _totals(session: Session, where: list[ColumnElement[bool]], pipeline: Pipeline
            ) -> dict[int, StageTotals]:
    """Count, amount and weighted amount per stage and currency, in one grouped statement."""
    probability = {s.id: s.probability for s in pipeline.stages}
    totals = {s.id: StageTotals() for s in pipeline.stages}
    for row in session.execute(_TOTALS.where(_D.pipeline_id == pipeline.id, *where)):
        t = totals.get(row.stage_id)
        if t is None:
            continue
        amount = _money(row.amount)
        p = row.probability if row.probability is not None else probability[row.stage_id]
        t.count += row.n
        t.amount[row.currency] = t.amount.get(row.currency, Decimal("0.00")) + amount
        t.weighted[row.currency] = t.weighted.get(row.currency, Decimal("0")) + amount * p / 100
    for t in totals.values():
        t.amount = dict(sorted(t.amount.items()))
        t.weighted = {k: v.quantize(CENT, rounding=ROUND_HALF_UP)
                      for k, v in sorted(t.weighted.items())}
    return totals


def board_totals(session: Session, principal: Principal, pipeline_id: int,
                 filters: BoardFilters | None = None) -> dict[int, StageTotals]:
    """Only the per-stage totals (what the board refreshes after a move)."""
    pipeline = _board_pipeline(session, principal, pipeline_id)
    filters = filters or BoardFilters()
    return _totals(session, [_scope_sql(principal), *filters.clauses()], pipeline)


def board(session: Session, principal: Principal, pipeline_id: int,
          filters: BoardFilters | None = None, limit: int = BOARD_PAGE) -> Board:
    """The kanban board: per stage the `limit` newest deals the caller may read (one indexed
    query per stage) and the stage's totals (one grouped query for the whole pipeline)."""
    pipeline = _board_pipeline(session, principal, pipeline_id)
    filters = filters or BoardFilters()
    where = [_scope_sql(principal), *filters.clauses()]
    totals = _totals(session, where, pipeline)
    columns = []
    for stage in pipeline.stages:
        cards, next_before = _stage_cards(session, where, stage, None, limit)
        columns.append(Column(stage.id, stage.name, stage.position, stage.probability,
                              stage.outcome, cards, next_before, totals[stage.id]))
    return Board(pipeline.id, pipeline.name, pipeline.kind, filters, columns)


def stage_cards(session: Session, principal: Principal, stage_id: int,
                filters: BoardFilters | None = None, before: int | None = None,
                limit: int = BOARD_PAGE) -> tuple[PipelineStage, list[Card], int | None]:
    """The next page of one board column ("more")."""
    _read_scope(principal)
    stage = session.get(PipelineStage, stage_id)
    if stage is None:
        raise NotFound(f"stage {stage_id} does not exist")
    where = [_scope_sql(principal), *(filters or BoardFilters()).clauses()]
    cards, next_before = _stage_cards(session, where, stage, before, limit)
    return stage, cards, next_before


def card_movable(principal: Principal, card: Card) -> bool:
    """Whether the caller may move this card (its deal's update scope)."""
    return record_in_scope(principal, scope_for(principal, RESOURCE, "update"), card.owner_id,
                           card.team_id)


def card(session: Session, principal: Principal, deal_id: int) -> Card:
    """One deal as a board card (the board reloads a card after a refused move)."""
    deal = get_deal(session, principal, deal_id)
    stage = session.get(PipelineStage, deal.stage_id)
    assert stage is not None
    row = session.execute(_CARDS.where(_D.id == deal.id)).one()
    return _card(row, stage.probability)


def owner_choices(session: Session, principal: Principal) -> list[tuple[int, str]]:
    """The people the board can be filtered by: those whose deals the caller may see."""
    scope = _read_scope(principal)
    stmt = select(User.id, User.full_name).where(User.is_active.is_(True))
    if scope == "own":
        stmt = stmt.where(User.id == principal.user_id)
    elif scope == "team":
        stmt = stmt.where((User.team_id == principal.team_id) | (User.id == principal.user_id)
                          if principal.team_id is not None else User.id == principal.user_id)
    else:
        stmt = stmt.where(User.role.in_(("admin", "manager", "sales")))
    return [(r.id, r.full_name) for r in session.execute(stmt.order_by(User.full_name))]


def team_choices(session: Session, principal: Principal) -> list[tuple[int, str]]:
    scope = _read_scope(principal)
    stmt = select(Team.id, Team.name).order_by(Team.name)
    if scope != "all":
        if principal.team_id is None:
            return []
        stmt = stmt.where(Team.id == principal.team_id)
    return [(r.id, r.name) for r in session.execute(stmt)]


def names_of_users(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all())

