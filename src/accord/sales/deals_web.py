"""Deal pages: the kanban board per pipeline, the deal list, and a deal's page (edit, move).

The board is `deals.board(...)` rendered server-side; `static/js/kanban.js` adds drag-and-drop
and the keyboard path (each card's stage <select>), posting the move to the REST API with the
card's version as `If-Match`, then asking `/sales/pipeline/{id}/totals` for the columns' new
totals. Without JavaScript every card's "Move" form still works (a plain form post). Every write
goes through the deal service; this module only turns form fields into its input schemas.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm.exc import StaleDataError

from accord.access import audit
from accord.access.policy import Principal, can, scope_for
from accord.core.errors import (
    Forbidden,
    NotFound,
    PreconditionRequired,
    Problem,
    ValidationProblem,
)
from accord.core.query import request_params
from accord.core.settings import get_settings
from accord.customers import accounts
from accord.customers import service as customers
from accord.customers.schemas import AssignIn
from accord.models import Pipeline
from accord.models.sales import DEAL_STATUSES, FORECAST_CATEGORIES, LOST_REASONS
from accord.sales import deals, pipelines
from accord.sales.activities_web import panel_context
from accord.sales.deals_schemas import DealCreate, DealMove, DealUpdate
from accord.sales.forecast import add_months
from accord.web.admin import form_errors
from accord.web.context import WebCtx, safe_next, web_ctx
from accord.web.rendering import Formatter, PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
BOARD_FILTERS = ("owner_id", "team_id", "close_month")
STALE = ("Someone else changed this deal while you were working on it, so your change was not "
         "saved. The page now shows the current values; make your change again.")
NOTICES = {"updated": "Changes saved.", "moved": "Deal moved.", "created": "Deal created.",
           "assigned": "Owner changed."}
EDIT_FIELDS = ("name", "amount", "currency", "probability", "expected_close_date",
               "forecast_category", "competitors", "lost_reason", "lost_note")
LIST_SORTS = (("-id", "Newest first"), ("-amount", "Largest amount"),
              ("expected_close_date", "Closing soonest"), ("-updated_at", "Recently updated"))
OPEN_CATEGORIES = tuple(c for c in FORECAST_CATEGORIES if c != "closed")


def _values(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    return {k: v.strip() for k, v in request.query_params.items() if k in names and v.strip()}


def _money_text(fmt: Formatter, amounts: dict[str, Any]) -> str:
    return " · ".join(fmt.money(v, k) for k, v in amounts.items()) or "—"


def _totals_view(fmt: Formatter, t: deals.StageTotals) -> dict[str, Any]:
    return {"count": t.count, "count_text": f"{t.count} deal" + ("" if t.count == 1 else "s"),
            "amount_text": _money_text(fmt, t.amount),
            "weighted_text": _money_text(fmt, t.weighted)}


def _may_move(principal: Principal) -> bool:
    """Whether to offer the move controls at all (each move is still checked per deal)."""
    return scope_for(principal, deals.RESOURCE, "update") is not None


def _movable(principal: Principal, cards: list[deals.Card]) -> set[int]:
    return {c.id for c in cards if deals.card_movable(principal, c)}


def _stage_options(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [{"id": s.id, "name": s.name, "outcome": s.outcome, "probability": s.probability}
            for s in pipeline.stages]


# --- the kanban board --------------------------------------------------------------------------

@router.get("/sales/pipeline")
def board_page(request: Request, pipeline: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               ctx: WebCtx = Depends(web_ctx)) -> Response:
    all_pipelines = [p for p in pipelines.list_pipelines(ctx.session, ctx.principal)
                     if p.active or p.id == pipeline]
    values = _values(request, BOARD_FILTERS)
    context: dict[str, Any] = {
        "pipelines": all_pipelines, "values": values, "board": None, "error": None,
        "owners": deals.owner_choices(ctx.session, ctx.principal),
        "teams": deals.team_choices(ctx.session, ctx.principal),
        "lost_reasons": LOST_REASONS, "stages": [], "can_move": False, "movable_ids": set(),
        "can_create": _may_create(ctx.principal),
    }
    if not all_pipelines:
        return render(request, "sales/pipeline/board.html", context)
    current = next((p for p in all_pipelines if p.id == pipeline), None)
    if pipeline is not None and current is None:
        raise NotFound(f"pipeline {pipeline} does not exist")
    current = current or all_pipelines[0]
    context["current"] = current
    context["stages"] = _stage_options(current)
    context["query"] = urlencode({"pipeline": current.id, **values})
    context["filter_query"] = urlencode(values)
    try:
        filters = deals.parse_board_filters(values)
        board = deals.board(ctx.session, ctx.principal, current.id, filters)
    except ValidationProblem as exc:
        context["error"] = exc
        return render(request, "sales/pipeline/board.html", context, status_code=422)
    fmt = Formatter(ctx.viewer.locale)
    context["board"] = board
    context["totals"] = {col.stage_id: _totals_view(fmt, col.totals) for col in board.columns}
    context["can_move"] = _may_move(ctx.principal)
    context["here"] = f"/sales/pipeline?{context['query']}"
    context["movable_ids"] = _movable(ctx.principal, [c for col in board.columns
                                                      for c in col.cards])
    shown = [c.id for col in board.columns for c in col.cards]
    audit.record_read(ctx.principal, deals.RESOURCE, shown, deals.READ_FIELDS,
                      {"via": "web.board"})
    return render(request, "sales/pipeline/board.html", context)


@router.get("/sales/pipeline/{pipeline_id}/stages/{stage_id}/cards")
def more_cards(request: Request, pipeline_id: Annotated[int, Path(ge=1, le=MAX_ID)],
               stage_id: Annotated[int, Path(ge=1, le=MAX_ID)],
               before: Annotated[int, Query(ge=1, le=MAX_ID)],
               ctx: WebCtx = Depends(web_ctx)) -> Response:
    """The next page of one column (HTMX swaps it in place of the "More" button)."""
    current = pipelines.get_pipeline(ctx.session, ctx.principal, pipeline_id)
    if stage_id not in {s.id for s in current.stages}:
        raise NotFound(f"stage {stage_id} does not exist")
    values = _values(request, BOARD_FILTERS)
    filters = deals.parse_board_filters(values)
    stage, cards, next_before = deals.stage_cards(ctx.session, ctx.principal, stage_id, filters,
                                                  before)
    query = urlencode({"pipeline": current.id, **values})
    audit.record_read(ctx.principal, deals.RESOURCE, [c.id for c in cards], deals.READ_FIELDS,
                      {"via": "web.board"})
    return render(request, "sales/pipeline/_more.html", {
        "cards": cards, "stage": stage, "next_before": next_before, "current": current,
        "stages": _stage_options(current), "filter_query": urlencode(values),
        "here": f"/sales/pipeline?{query}", "movable_ids": _movable(ctx.principal, cards),
        "can_move": _may_move(ctx.principal)})


@router.get("/sales/pipeline/{pipeline_id}/totals")
def board_totals(request: Request, pipeline_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                 ctx: WebCtx = Depends(web_ctx)) -> Response:
    """Every column's totals, formatted for the viewer (the board refreshes them after a move)."""
    filters = deals.parse_board_filters(_values(request, BOARD_FILTERS))
    totals = deals.board_totals(ctx.session, ctx.principal, pipeline_id, filters)
    fmt = Formatter(ctx.viewer.locale)
    return JSONResponse({str(k): _totals_view(fmt, t) for k, t in totals.items()},
                        headers={"Cache-Control": "no-store"})


@router.get("/sales/deals/{deal_id}/card")
def deal_card(request: Request, deal_id: Annotated[int, Path(ge=1, le=MAX_ID)],
              ctx: WebCtx = Depends(web_ctx)) -> Response:
    """One card as it is now (the board reloads it after a refused move)."""
    card = deals.card(ctx.session, ctx.principal, deal_id)
    deal = deals.get_deal(ctx.session, ctx.principal, deal_id)
    current = pipelines.get_pipeline(ctx.session, ctx.principal, deal.pipeline_id)
    audit.record_read(ctx.principal, deals.RESOURCE, [deal_id], deals.READ_FIELDS,
                      {"via": "web.card"})
    return render(request, "sales/pipeline/_card.html", {
        "c": card, "stages": _stage_options(current),
        "here": safe_next(request.query_params.get("next")),
        "movable_ids": _movable(ctx.principal, [card]), "can_move": _may_move(ctx.principal)})


# --- the deal list -----------------------------------------------------------------------------

LIST_NAMES = ("pipeline_id", "stage_id", "status", "owner_id", "team_id", "close_month", "q",
              "sort", "cursor")


def _list_link(values: dict[str, str], **changes: str | None) -> str:
    merged = {**values, **changes}
    query = urlencode({k: v for k, v in merged.items() if v})
    return "/sales/deals" + (f"?{query}" if query else "")


@router.get("/sales/deals")
def deal_list(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    values = _values(request, LIST_NAMES)
    params_in = {k: v for k, v in values.items() if k != "close_month"}
    error: ValidationProblem | None = None
    items: list[Any] = []
    next_cursor = None
    try:
        month = deals.parse_board_filters({"close_month": values.get("close_month", "")})
        if month.close_month is not None:
            start = month.close_month
            end = add_months(start, 1)
            params_in["expected_close_date__gte"] = start.isoformat()
            params_in["expected_close_date__lt"] = end.isoformat()
        params = request_params(params_in, deals.list_spec())
        items, next_cursor = deals.list_deals(ctx.session, ctx.principal, params)
    except ValidationProblem as exc:
        error = exc
    all_pipelines = pipelines.list_pipelines(ctx.session, ctx.principal)
    stage_names = {s.id: s.name for p in all_pipelines for s in p.stages}
    context = {
        "items": items, "values": values, "error": error, "pipelines": all_pipelines,
        "stage_names": stage_names,
        "owner_names": deals.names_of_users(ctx.session, {d.owner_id for d in items
                                                          if d.owner_id is not None}),
        "owners": deals.owner_choices(ctx.session, ctx.principal),
        "teams": deals.team_choices(ctx.session, ctx.principal),
        "sorts": LIST_SORTS, "statuses": DEAL_STATUSES,
        "can_create": _may_create(ctx.principal),
        "next_link": _list_link(values, cursor=next_cursor) if next_cursor else None,
        "first_link": _list_link(values, cursor=None) if "cursor" in values else None,
    }
    if items:
        audit.record_read(ctx.principal, deals.RESOURCE, [d.id for d in items],
                          deals.READ_FIELDS, {"via": "web.list"})
    return render(request, "sales/deals/list.html", context,
                  status_code=422 if error is not None else 200)


# --- a new deal ----------------------------------------------------------------------------------

NEW_FIELDS = ("name", "stage_id", "amount", "currency", "expected_close_date",
              "forecast_category", "customer_id", "account_id", "competitors")
# Service errors on inputs the form does not show go to the nearest field that it does.
NEW_FIELD_OF = {"pipeline_id": "stage_id", "lines": "amount", "lost_reason": "stage_id",
                "probability": "stage_id"}


def _may_create(principal: Principal) -> bool:
    return can(principal, deals.RESOURCE, "create")


def _require_create(ctx: WebCtx) -> None:
    if not _may_create(ctx.principal):
        raise Forbidden("Your role may not create deals.")


def _start_stages(ctx: WebCtx) -> list[dict[str, Any]]:
    """Where a new deal may start: the open stages of the active pipelines, in board order."""
    return [{"id": s.id, "pipeline_id": p.id, "label": f"{p.name} › {s.name} ({s.probability} %)"}
            for p in pipelines.list_pipelines(ctx.session, ctx.principal, active_only=True)
            for s in p.stages if s.outcome == "open"]


def _query_id(request: Request, name: str) -> str:
    raw = request.query_params.get(name, "").strip()
    return raw if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID else ""


def _linked(ctx: WebCtx, values: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The names of the customer and account the form names, and a field error for each that
    the viewer may not read (worded like a missing record: no existence oracle)."""
    names: dict[str, str] = {}
    errors: dict[str, str] = {}
    raw = values.get("customer_id", "")
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID:
        try:
            customer = customers.get_customer(ctx.session, ctx.principal, int(raw))
            names["customer_id"] = customer.display_name or f"Customer {customer.id}"
        except (NotFound, Forbidden):
            errors["customer_id"] = f"customer {raw} does not exist"
        except Problem as exc:  # merged into another customer: the message names it
            errors["customer_id"] = exc.detail
    raw = values.get("account_id", "")
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID:
        try:
            names["account_id"] = accounts.get_account(ctx.session, ctx.principal, int(raw)).name
        except (NotFound, Forbidden):
            errors["account_id"] = f"account {raw} does not exist"
    return names, errors


def _new_page(request: Request, ctx: WebCtx, values: dict[str, str],
              errors: dict[str, str] | None = None, alert: str = "",
              status_code: int = 200) -> Response:
    names, link_errors = _linked(ctx, values)
    if "customer_id" in names:
        audit.record_read(ctx.principal, "customers", [values["customer_id"]], ("display_name",),
                          {"via": "web.deal_form"})
    return render(request, "sales/deals/new.html", {
        "values": values, "errors": {**link_errors, **(errors or {})}, "alert": alert,
        "stages": _start_stages(ctx), "categories": OPEN_CATEGORIES, "names": names,
    }, status_code=status_code)


@router.get("/sales/deals/new")
def new_deal(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    """`?customer_id=` / `?account_id=` prefill the link (a customer page's "New deal"),
    `?pipeline_id=` the pipeline (the board's button): it starts in its first open stage."""
    _require_create(ctx)
    stages = _start_stages(ctx)
    pipeline_id = _query_id(request, "pipeline_id")
    start = next((s for s in stages if str(s["pipeline_id"]) == pipeline_id),
                 stages[0] if stages else None)
    values = {**dict.fromkeys(NEW_FIELDS, ""), "currency": get_settings().default_currency,
              "forecast_category": "pipeline", "stage_id": str(start["id"]) if start else "",
              "customer_id": _query_id(request, "customer_id"),
              "account_id": _query_id(request, "account_id")}
    return _new_page(request, ctx, values)


def _create_payload(values: dict[str, str], pipeline_id: int) -> dict[str, Any]:
    data: dict[str, Any] = {"name": values["name"], "pipeline_id": pipeline_id,
                            "stage_id": values["stage_id"], "currency": values["currency"]}
    for name in ("amount", "expected_close_date", "forecast_category", "customer_id",
                 "account_id"):
        if values[name]:
            data[name] = values[name]
    competitors = [c.strip() for c in values["competitors"].split(",") if c.strip()]
    if competitors:
        data["competitors"] = competitors
    return data


@router.post("/sales/deals/new")
def create_deal(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    _require_create(ctx)
    values = {name: ctx.field(name) for name in NEW_FIELDS}
    start = next((s for s in _start_stages(ctx) if str(s["id"]) == values["stage_id"]), None)
    errors: dict[str, str] = {}
    if start is None:
        errors["stage_id"] = "Choose the pipeline and stage the deal starts in."
    else:
        try:
            data = DealCreate(**_create_payload(values, start["pipeline_id"]))
            deal_id = deals.create_deal(ctx.session, ctx.principal, data).id
            ctx.commit()
            return RedirectResponse(f"/sales/deals/{deal_id}?done=created", status_code=303)
        except ValidationError as exc:
            for name, message in form_errors(exc, "name").items():
                errors.setdefault(NEW_FIELD_OF.get(name, name), message)
        except Forbidden:
            raise
        except Problem as exc:
            name = (exc.field or "name").partition(".")[0]
            errors = {NEW_FIELD_OF.get(name, name): exc.detail}
    ctx.session.rollback()  # SQLite: release the write lock before the page's read is audited
    alert = " ".join(v for k, v in errors.items() if k not in NEW_FIELDS)
    return _new_page(request, ctx, values, {k: v for k, v in errors.items() if k in NEW_FIELDS},
                     alert or "The deal was not saved: please correct the highlighted fields.",
                     status_code=422)


# --- one deal: page, edit, move ----------------------------------------------------------------

def _form_values(deal: Any) -> dict[str, str]:
    return {
        "name": deal.name, "amount": str(deal.amount), "currency": deal.currency,
        "probability": "" if deal.probability is None else str(deal.probability),
        "expected_close_date": deal.expected_close_date.isoformat()
        if deal.expected_close_date else "",
        "forecast_category": deal.forecast_category,
        "competitors": ", ".join(deal.competitors or []),
        "lost_reason": deal.lost_reason or "", "lost_note": deal.lost_note or "",
    }


def _may_assign(principal: Principal, deal: Any) -> bool:
    """The service's rule for reassigning (update over team or all, and this deal in scope)."""
    return (scope_for(principal, deals.RESOURCE, "update") in ("team", "all")
            and deals.in_scope(principal, deal, "update"))


def _detail(request: Request, ctx: WebCtx, deal_id: int, *, values: dict[str, str] | None = None,
            errors: dict[str, str] | None = None, move_errors: dict[str, str] | None = None,
            assign_errors: dict[str, str] | None = None, alert: str = "", notice: str = "",
            status_code: int = 200) -> Response:
    deal = deals.get_deal(ctx.session, ctx.principal, deal_id)
    out = deals.to_out(ctx.session, deal)
    current = pipelines.get_pipeline(ctx.session, ctx.principal, deal.pipeline_id)
    stage_names = {s.id: s.name for s in current.stages}
    stage = next(s for s in current.stages if s.id == deal.stage_id)
    users = deals.names_of_users(ctx.session, {i for i in (
        deal.owner_id, *(h.changed_by for h in out.stage_history)) if i is not None})
    context = {
        "d": out, "pipeline": current, "stage": stage, "stage_names": stage_names,
        "stages": _stage_options(current), "users": users,
        "probability": deal.probability if deal.probability is not None else stage.probability,
        "can_edit": deals.in_scope(ctx.principal, deal, "update"),
        "values": values or _form_values(deal), "errors": errors or {},
        "move_errors": move_errors or {}, "alert": alert, "notice": notice,
        "categories": OPEN_CATEGORIES, "lost_reasons": LOST_REASONS,
        "can_assign": _may_assign(ctx.principal, deal), "assign_errors": assign_errors or {},
        "owners": deals.owner_choices(ctx.session, ctx.principal) if _may_assign(
            ctx.principal, deal) else [],
        "panel": panel_context(ctx, "deal_id", deal_id) if any(
            can(ctx.principal, "activities", a) for a in ("read", "create")) else None,
    }
    if ctx.request.method != "GET":
        ctx.session.rollback()  # SQLite: release the write lock before the read is audited
    audit.record_read(ctx.principal, deals.RESOURCE, [deal_id], deals.READ_FIELDS,
                      {"via": "web.detail"})
    return render(request, "sales/deals/detail.html", context, status_code=status_code)


@router.get("/sales/deals/{deal_id}")
def deal_page(request: Request, deal_id: Annotated[int, Path(ge=1, le=MAX_ID)],
              done: Annotated[str | None, Query(max_length=40)] = None,
              ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _detail(request, ctx, deal_id, notice=NOTICES.get(done or "", ""))


def _seen_version(ctx: WebCtx) -> int:
    seen = ctx.field("version")
    if not (seen.isascii() and seen.isdigit() and len(seen) <= 9):
        raise PreconditionRequired("The form did not say which version of the deal it changes. "
                                   "Reload the page and try again.", field="version")
    return int(seen)


def _stale(request: Request, ctx: WebCtx, deal_id: int) -> Response:
    """The 412 answer to a write made on an old version: the page with the current values."""
    return _detail(request, ctx, deal_id, alert=STALE, status_code=412)


def _update_payload(deal: Any, values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"name": values["name"], "currency": values["currency"],
                            "probability": values["probability"] or None,
                            "expected_close_date": values["expected_close_date"] or None,
                            "competitors": [c.strip() for c in values["competitors"].split(",")
                                            if c.strip()],
                            "lost_note": values["lost_note"] or None}
    if not deal.lines:
        data["amount"] = values["amount"]
    if deal.status == "open":
        data["forecast_category"] = values["forecast_category"]
    if deal.status == "lost":
        data["lost_reason"] = values["lost_reason"] or None
    return data


@router.post("/sales/deals/{deal_id}/edit")
def edit_deal(request: Request, deal_id: Annotated[int, Path(ge=1, le=MAX_ID)],
              ctx: WebCtx = Depends(web_ctx)) -> Response:
    deal = deals.get_deal(ctx.session, ctx.principal, deal_id, "update")
    values = {name: ctx.field(name) for name in EDIT_FIELDS}
    if _seen_version(ctx) != deal.version:
        return _stale(request, ctx, deal_id)
    try:
        data = DealUpdate(**_update_payload(deal, values))
        deals.update_deal(ctx.session, ctx.principal, deal, data)
        ctx.commit()
        return RedirectResponse(f"/sales/deals/{deal_id}?done=updated", status_code=303)
    except ValidationError as exc:
        errors = {k: v for k, v in form_errors(exc, "name").items() if k in EDIT_FIELDS}
    except Forbidden:
        raise
    except StaleDataError:
        ctx.session.rollback()
        return _stale(request, ctx, deal_id)
    except Problem as exc:
        ctx.session.rollback()
        name = (exc.field or "name").partition(".")[0]
        errors = {name if name in EDIT_FIELDS else "name": exc.detail}
    return _detail(request, ctx, deal_id, values=values, errors=errors or {"name": "Not valid."},
                   alert="The deal was not saved: please correct the highlighted fields.",
                   status_code=422)


@router.post("/sales/deals/{deal_id}/move")
def move_deal(request: Request, deal_id: Annotated[int, Path(ge=1, le=MAX_ID)],
              ctx: WebCtx = Depends(web_ctx)) -> Response:
    """The form path of a move (the deal page, and the board without JavaScript)."""
    deal = deals.get_deal(ctx.session, ctx.principal, deal_id, "update")
    back = ctx.field("next")
    if _seen_version(ctx) != deal.version:
        return _stale(request, ctx, deal_id)
    try:
        stage_raw = ctx.field("stage_id")
        data = DealMove(stage_id=int(stage_raw) if stage_raw.isdigit() else 0,
                        lost_reason=ctx.field("lost_reason") or None,
                        lost_note=ctx.field("lost_note") or None)
        deals.move_deal(ctx.session, ctx.principal, deal, data)
        ctx.commit()
    except ValidationError as exc:
        return _detail(request, ctx, deal_id, move_errors=form_errors(exc, "stage_id"),
                       alert="The deal was not moved.", status_code=422)
    except Forbidden:
        raise
    except StaleDataError:
        ctx.session.rollback()
        return _stale(request, ctx, deal_id)
    except Problem as exc:
        ctx.session.rollback()
        return _detail(request, ctx, deal_id, move_errors={exc.field or "stage_id": exc.detail},
                       alert="The deal was not moved.", status_code=422)
    target = safe_next(back) if back else f"/sales/deals/{deal_id}?done=moved"
    return RedirectResponse(target, status_code=303)


@router.post("/sales/deals/{deal_id}/assign")
def assign_deal(request: Request, deal_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                ctx: WebCtx = Depends(web_ctx)) -> Response:
    """Give the deal to another owner (managers and admins: `deals.assign` decides)."""
    deal = deals.get_deal(ctx.session, ctx.principal, deal_id, "update")
    if _seen_version(ctx) != deal.version:
        return _stale(request, ctx, deal_id)
    raw = ctx.field("owner_id")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID):
        return _detail(request, ctx, deal_id, assign_errors={"owner_id": "Choose the new owner."},
                       alert="The deal was not reassigned.", status_code=422)
    try:
        deals.assign(ctx.session, ctx.principal, deal, AssignIn(owner_id=int(raw)))
        ctx.commit()
    except Forbidden:
        raise
    except StaleDataError:
        ctx.session.rollback()
        return _stale(request, ctx, deal_id)
    except Problem as exc:
        ctx.session.rollback()
        return _detail(request, ctx, deal_id, assign_errors={"owner_id": exc.detail},
                       alert="The deal was not reassigned.", status_code=422)
    return RedirectResponse(f"/sales/deals/{deal_id}?done=assigned", status_code=303)
