"""REST endpoints for pipelines, stages, deals and the kanban board: parse, call the service,
serialise. Money leaves as strings (`"1499.00"`) next to its currency."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.core.errors import ValidationProblem
from accord.core.query import ListParams, request_params
from accord.customers.schemas import AssignIn
from accord.models import Deal
from accord.sales import deals, pipelines
from accord.sales.deals_schemas import (
    DealCreate,
    DealMove,
    DealOut,
    DealSummaryOut,
    DealUpdate,
    PipelineCreate,
    PipelineOut,
    PipelineUpdate,
    StageCreate,
    StageOrder,
    StageOut,
    StageUpdate,
)

router = APIRouter()

DEAL_LIST_HELP = (
    "Filters: `pipeline_id`, `stage_id`, `status` (open, won, lost), `owner_id`, `team_id`, "
    "`customer_id`, `account_id`, `lead_id`, `forecast_category`, `currency`, "
    "`expected_close_date__gte=2026-01-01` (and `__lt`, `__lte`, `__gt`), "
    "`amount__gte=1000`, `created_at`, `closed_at`; `q` is a name prefix; "
    "`sort=-id` (default), `amount`, `expected_close_date`, `created_at`, `updated_at`, "
    "`stage_entered_at` (prefix `-` for descending); keyset pagination with `cursor` and "
    "`limit`. Items carry no lines or history; GET one deal for them."
)


def _params(request: Request) -> ListParams:
    return request_params(dict(request.query_params), deals.list_spec())


def plain(value: Any) -> Any:
    """Board dataclasses as JSON-ready data: money as strings, dates in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --- pipelines and stages ----------------------------------------------------------------------

@router.get("/pipelines", tags=["pipelines"], response_model=list[PipelineOut],
            summary="Pipelines with their ordered stages")
def list_pipelines(active: bool | None = Query(default=None), ctx: Ctx = Depends(api_ctx)
                   ) -> list[PipelineOut]:
    rows = pipelines.list_pipelines(ctx.session, ctx.principal, active_only=bool(active))
    return [PipelineOut.model_validate(p) for p in rows]


@router.post("/pipelines", tags=["pipelines"], status_code=201, response_model=PipelineOut)
def create_pipeline(body: PipelineCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: PipelineOut.model_validate(
            pipelines.create_pipeline(ctx.session, ctx.principal, body)),
        body,
        headers=lambda out: {"ETag": etag(out.version),
                             "Location": f"/api/v1/pipelines/{out.id}"},
    )


@router.get("/pipelines/{pipeline_id}", tags=["pipelines"], response_model=PipelineOut)
def get_pipeline(pipeline_id: int, response: Response, ctx: Ctx = Depends(api_ctx)
                 ) -> PipelineOut:
    pipeline = pipelines.get_pipeline(ctx.session, ctx.principal, pipeline_id)
    response.headers["ETag"] = etag(pipeline.version)
    return PipelineOut.model_validate(pipeline)


@router.patch("/pipelines/{pipeline_id}", tags=["pipelines"], response_model=PipelineOut,
              summary="Rename, (de)activate or re-rank a pipeline")
def update_pipeline(pipeline_id: int, body: PipelineUpdate, response: Response,
                    if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> PipelineOut:
    pipeline = pipelines.get_pipeline(ctx.session, ctx.principal, pipeline_id, "update")
    return ctx.updated(
        pipeline, if_match, response,
        lambda: pipelines.update_pipeline(ctx.session, ctx.principal, pipeline, body),
        lambda: PipelineOut.model_validate(pipeline))


@router.delete("/pipelines/{pipeline_id}", tags=["pipelines"], status_code=204,
               summary="Delete a pipeline without deals (409 otherwise)")
def delete_pipeline(pipeline_id: int, if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> Response:
    pipeline = pipelines.get_pipeline(ctx.session, ctx.principal, pipeline_id, "delete")
    return ctx.deleted(
        pipeline, if_match,
        lambda: pipelines.delete_pipeline(ctx.session, ctx.principal, pipeline))


@router.post("/pipelines/{pipeline_id}/stages", tags=["pipelines"], status_code=201,
             response_model=StageOut, summary="Add a stage (at `position`, default last)")
def create_stage(pipeline_id: int, body: StageCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    pipeline = pipelines.get_pipeline(ctx.session, ctx.principal, pipeline_id, "update")
    return ctx.created(
        lambda: StageOut.model_validate(
            pipelines.create_stage(ctx.session, ctx.principal, pipeline, body)),
        body, headers=lambda out: {"ETag": etag(out.version)})


@router.put("/pipelines/{pipeline_id}/stages/order", tags=["pipelines"],
            response_model=PipelineOut,
            summary="Reorder the stages (If-Match: the pipeline's ETag)")
def reorder_stages(pipeline_id: int, body: StageOrder, response: Response,
                   if_match: str | None = Header(default=None),
                   ctx: Ctx = Depends(api_ctx)) -> PipelineOut:
    pipeline = pipelines.get_pipeline(ctx.session, ctx.principal, pipeline_id, "update")
    return ctx.updated(
        pipeline, if_match, response,
        lambda: pipelines.reorder_stages(ctx.session, ctx.principal, pipeline, body),
        lambda: PipelineOut.model_validate(pipeline))


@router.patch("/pipelines/{pipeline_id}/stages/{stage_id}", tags=["pipelines"],
              response_model=StageOut,
              summary="Rename a stage, set its default probability or (without deals) outcome")
def update_stage(pipeline_id: int, stage_id: int, body: StageUpdate, response: Response,
                 if_match: str | None = Header(default=None),
                 ctx: Ctx = Depends(api_ctx)) -> StageOut:
    pipeline = pipelines.get_pipeline(ctx.session, ctx.principal, pipeline_id, "update")
    stage = pipelines.get_stage(ctx.session, ctx.principal, pipeline, stage_id)
    return ctx.updated(
        stage, if_match, response,
        lambda: pipelines.update_stage(ctx.session, ctx.principal, pipeline, stage, body),
        lambda: StageOut.model_validate(stage))


@router.delete("/pipelines/{pipeline_id}/stages/{stage_id}", tags=["pipelines"],
               status_code=204, summary="Delete a stage no deal is or was in (409 otherwise)")
def delete_stage(pipeline_id: int, stage_id: int, if_match: str | None = Header(default=None),
                 ctx: Ctx = Depends(api_ctx)) -> Response:
    pipeline = pipelines.get_pipeline(ctx.session, ctx.principal, pipeline_id, "update")
    stage = pipelines.get_stage(ctx.session, ctx.principal, pipeline, stage_id)
    return ctx.deleted(
        stage, if_match,
        lambda: pipelines.delete_stage(ctx.session, ctx.principal, pipeline, stage))


@router.get("/pipelines/{pipeline_id}/board", tags=["pipelines"],
            summary="The kanban board: newest deals and totals per stage",
            description="Filters: `owner_id`, `team_id`, `close_month=YYYY-MM`; `limit` cards "
            "per stage (default 25). Totals are per currency (never summed across currencies); "
            "`weighted` uses each deal's probability, or its stage's default. A column's "
            "`next_before` is the id to page on: `GET /deals?stage_id=..&id__lt=..`.")
def get_board(pipeline_id: int, request: Request,
              limit: int = Query(default=deals.BOARD_PAGE, ge=1, le=100),
              ctx: Ctx = Depends(api_ctx)) -> JSONResponse:
    params = {k: v for k, v in request.query_params.items() if k != "limit"}
    filters = deals.parse_board_filters(_known(params, ("owner_id", "team_id", "close_month")))
    result = deals.board(ctx.session, ctx.principal, pipeline_id, filters, limit)
    ctx.session.rollback()
    shown = [c.id for col in result.columns for c in col.cards]
    audit.record_read(ctx.principal, deals.RESOURCE, shown, deals.READ_FIELDS,
                      {"via": "api.board"})
    return JSONResponse(plain(result))


def _known(params: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    for name in params:
        if name not in names:
            raise ValidationProblem(f"unknown parameter {name!r}", field=name)
    return params


# --- deals -------------------------------------------------------------------------------------

@router.get("/deals", tags=["deals"], summary="List deals", description=DEAL_LIST_HELP)
def list_deals(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = deals.list_deals(ctx.session, ctx.principal, _params(request))
    items = [DealSummaryOut.model_validate(d) for d in rows]
    ctx.session.rollback()
    audit.record_read(ctx.principal, deals.RESOURCE, [d.id for d in items], deals.READ_FIELDS,
                      {"via": "api.list"})
    return {"items": items, "next_cursor": cursor}


@router.post("/deals", tags=["deals"], status_code=201, response_model=DealOut,
             summary="Open a deal",
             description="The caller becomes the owner. `stage_id` defaults to the pipeline's "
             "first open stage; with `lines`, the amount is their sum.")
def create_deal(body: DealCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: deals.to_out(ctx.session, deals.create_deal(ctx.session, ctx.principal, body)),
        body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/deals/{out.id}"},
    )


@router.get("/deals/{deal_id}", tags=["deals"], response_model=DealOut,
            summary="One deal with its lines and stage history")
def get_deal(deal_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> DealOut:
    deal = deals.get_deal(ctx.session, ctx.principal, deal_id)
    out = deals.to_out(ctx.session, deal)
    ctx.session.rollback()
    audit.record_read(ctx.principal, deals.RESOURCE, [deal_id], deals.READ_FIELDS,
                      {"via": "api.get"})
    response.headers["ETag"] = etag(out.version)
    return out


def _change_deal(ctx: Ctx, deal_id: int, if_match: str | None, response: Response,
                 change: Callable[[Deal], object]) -> DealOut:
    """One write to a deal the caller may update: `change(deal)` under `If-Match`, answered
    with the deal as it is now."""
    deal = deals.get_deal(ctx.session, ctx.principal, deal_id, "update")
    return ctx.updated(deal, if_match, response, lambda: change(deal),
                       lambda: deals.to_out(ctx.session, deal))


@router.patch("/deals/{deal_id}", tags=["deals"], response_model=DealOut,
              summary="Change a deal (not its stage: POST /deals/{id}/move)")
def update_deal(deal_id: int, body: DealUpdate, response: Response,
                if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> DealOut:
    return _change_deal(ctx, deal_id, if_match, response,
                        lambda deal: deals.update_deal(ctx.session, ctx.principal, deal, body))


@router.post("/deals/{deal_id}/move", tags=["deals"], response_model=DealOut,
             summary="Move a deal to another stage of its pipeline",
             description="Needs `If-Match` (412 when stale). A lost stage needs a "
             "`lost_reason`. Records the stage history and emits `deal.stage_changed` "
             "(and `deal.won` / `deal.lost`).")
def move_deal(deal_id: int, body: DealMove, response: Response,
              if_match: str | None = Header(default=None),
              ctx: Ctx = Depends(api_ctx)) -> DealOut:
    return _change_deal(ctx, deal_id, if_match, response,
                        lambda deal: deals.move_deal(ctx.session, ctx.principal, deal, body))


@router.post("/deals/{deal_id}/assign", tags=["deals"], response_model=DealOut,
             summary="Give a deal to another owner or team")
def assign_deal(deal_id: int, body: AssignIn, response: Response,
                if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> DealOut:
    return _change_deal(ctx, deal_id, if_match, response,
                        lambda deal: deals.assign(ctx.session, ctx.principal, deal, body))


@router.delete("/deals/{deal_id}", tags=["deals"], status_code=204)
def delete_deal(deal_id: int, if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> Response:
    deal = deals.get_deal(ctx.session, ctx.principal, deal_id, "delete")
    return ctx.deleted(deal, if_match, lambda: deals.delete_deal(ctx.session, ctx.principal, deal))
