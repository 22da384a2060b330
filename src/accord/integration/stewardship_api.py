"""REST endpoints for data stewardship: the review queue, merges, unmerges, unlinks and the
sources behind a golden customer. Changes need `If-Match` with the ETag of the record they
change (the review, the surviving customer, the source profile)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from pydantic import BaseModel, Field

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag, require_if_match
from accord.core.query import parse_list_params
from accord.core.settings import get_settings
from accord.core.validation import RowId, StrictIn
from accord.integration import stewardship as service
from accord.models import Customer

router = APIRouter(prefix="/identity", tags=["identity"])
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
READ_FIELDS = ("first_name", "last_name", "emails", "phones", "addresses", "date_of_birth",
               "national_id")


class DecisionIn(StrictIn):
    reason: str = Field(default="", max_length=300,
                        description="Why (kept in the audit trail)")


class ReasonIn(StrictIn):
    reason: str = Field(min_length=1, max_length=300, description="Why (kept in the audit trail)")


class MergeIn(StrictIn):
    survivor_id: RowId = Field(description="The customer that stays (its ETag goes in If-Match)")
    merged_id: RowId = Field(description="The customer merged into it (hidden afterwards)")
    reason: str = Field(min_length=1, max_length=300)
    merged_version: int | None = Field(
        default=None, ge=1, description="The merged customer's version, if the client saw it")


class ChangeOut(BaseModel):
    id: int
    kind: str
    customer_id: int | None
    other_customer_id: int | None
    reason: str
    actor_id: int | None
    created_at: datetime
    reverted_by: int | None
    revertible: bool
    moved: dict[str, int] = Field(description="rows moved, per table.column")
    kept: dict[str, int] = Field(description="rows left on the merged customer (the survivor "
                                             "already had that value)")
    reverts: int | None = None
    profile_id: int | None = None


class ReviewOut(BaseModel):
    id: int
    version: int
    status: str
    match_probability: float
    decided_by: int | None
    decided_at: datetime | None


def _review_out(review: Any) -> ReviewOut:
    return ReviewOut(id=review.id, version=review.version, status=review.status,
                     match_probability=review.match_probability, decided_by=review.decided_by,
                     decided_at=review.decided_at)


@router.get(
    "/reviews",
    summary="The review queue: possible matches between the two thresholds",
    description="Filters: `status` (`pending`, `accepted`, `rejected`), `id`, `model_version`, "
    "`created_at__gte=...`, `decided_by`; `sort=-match_probability` (default), `id`, "
    "`created_at`; keyset pagination with `cursor`.",
)
def list_reviews(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    settings = get_settings()
    params = parse_list_params(dict(request.query_params), service.review_list_spec(),
                               hidden=set(), default_limit=settings.page_size_default,
                               max_limit=settings.page_size_max)
    items, cursor = service.list_reviews(ctx.session, ctx.principal, params)
    audit.record_read(ctx.principal, "identity", [i["id"] for i in items],
                      ("first_name", "last_name", "emails"), {"via": "api.reviews"})
    return {"items": items, "next_cursor": cursor}


@router.get("/reviews/{review_id}",
            summary="Both records side by side, with each compared field's match weight")
def get_review(review_id: Id, response: Response, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    view = service.get_review(ctx.session, ctx.principal, review_id)
    audit.record_read(ctx.principal, "identity", [review_id],
                      sorted(set(READ_FIELDS) - set(view["masked_fields"])),
                      {"via": "api.review"})
    response.headers["ETag"] = etag(view["version"])
    return view


def _decide(review_id: int, response: Response, body: DecisionIn | None,
            if_match: str | None, ctx: Ctx, decide: Any) -> ReviewOut:
    service.require(ctx.principal, "update")
    review = service.review_record(ctx.session, ctx.principal, review_id)
    seen = require_if_match(if_match, review.version)
    review = decide(ctx.session, ctx.principal, review_id, expected_version=seen,
                    reason=body.reason if body else "")
    out = _review_out(review)
    ctx.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.post("/reviews/{review_id}/accept", response_model=ReviewOut,
             summary="The same person: link the pair or merge their customers (If-Match)")
def accept_review(review_id: Id, response: Response, body: DecisionIn | None = None,
                  if_match: str | None = Header(default=None),
                  ctx: Ctx = Depends(api_ctx)) -> ReviewOut:
    return _decide(review_id, response, body, if_match, ctx, service.accept_review)


@router.post("/reviews/{review_id}/reject", response_model=ReviewOut,
             summary="Not the same person: the pair is never proposed again (If-Match)")
def reject_review(review_id: Id, response: Response, body: DecisionIn | None = None,
                  if_match: str | None = Header(default=None),
                  ctx: Ctx = Depends(api_ctx)) -> ReviewOut:
    return _decide(review_id, response, body, if_match, ctx, service.reject_review)


@router.post("/reviews/{review_id}/reopen", response_model=ReviewOut,
             summary="Take a rejection back: the pair is pending again (If-Match)")
def reopen_review(review_id: Id, response: Response, body: DecisionIn | None = None,
                  if_match: str | None = Header(default=None),
                  ctx: Ctx = Depends(api_ctx)) -> ReviewOut:
    return _decide(review_id, response, body, if_match, ctx, service.reopen_review)


@router.post("/merges", status_code=201, response_model=ChangeOut,
             summary="Merge one customer into another (If-Match: the survivor's ETag)")
def merge(body: MergeIn, if_match: str | None = Header(default=None),
          ctx: Ctx = Depends(api_ctx)) -> Response:
    def run() -> ChangeOut:
        service.require(ctx.principal, "update")
        survivor = ctx.session.get(Customer, body.survivor_id)
        seen = require_if_match(if_match, survivor.version) if survivor is not None else None
        change = service.merge(ctx.session, ctx.principal, body.survivor_id, body.merged_id,
                               body.reason, survivor_version=seen,
                               merged_version=body.merged_version)
        return ChangeOut(**service.change_out(change))

    return ctx.created(run, body, headers=lambda out: {
        "Location": f"/api/v1/identity/identity-changes/{out.id}"})


@router.get("/identity-changes/{change_id}", response_model=ChangeOut,
            summary="A merge, unmerge or unlink")
def get_change(change_id: Id, ctx: Ctx = Depends(api_ctx)) -> ChangeOut:
    return ChangeOut(**service.change_out(service.get_change(ctx.session, ctx.principal,
                                                             change_id)))


@router.post("/identity-changes/{change_id}/revert", status_code=201, response_model=ChangeOut,
             summary="Unmerge: restore the state before a merge from its snapshot")
def revert(change_id: Id, body: ReasonIn, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: ChangeOut(**service.change_out(
            service.unmerge(ctx.session, ctx.principal, change_id, body.reason))),
        body, headers=lambda out: {"Location": f"/api/v1/identity/identity-changes/{out.id}"})


@router.post("/profiles/{profile_id}/unlink", status_code=201, response_model=ChangeOut,
             summary="Undo a wrong link of one source profile (If-Match: the profile's ETag)")
def unlink(profile_id: Id, body: ReasonIn, if_match: str | None = Header(default=None),
           ctx: Ctx = Depends(api_ctx)) -> Response:
    def run() -> ChangeOut:
        service.require(ctx.principal, "update")
        profile = service.get_profile(ctx.session, ctx.principal, profile_id)
        seen = require_if_match(if_match, profile.version)
        change = service.unlink(ctx.session, ctx.principal, profile_id, body.reason,
                                expected_version=seen)
        return ChangeOut(**service.change_out(change))

    return ctx.created(run, body, headers=lambda out: {
        "Location": f"/api/v1/identity/identity-changes/{out.id}"})


@router.get("/customers/{customer_id}/sources",
            summary="The source profiles behind a golden customer, and why each was linked")
def customer_sources(customer_id: Id, response: Response,
                     ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    view = service.customer_sources(ctx.session, ctx.principal, customer_id)
    audit.record_read(ctx.principal, "customers", [customer_id],
                      sorted(set(READ_FIELDS) - set(view["masked_fields"])),
                      {"via": "api.sources"})
    response.headers["ETag"] = etag(view["version"])
    return view
