"""`POST /api/v1/leads/{id}/convert`: parse, call the conversion service, serialise."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Response

from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import require_if_match
from accord.sales import conversion, leads

router = APIRouter()


@router.post(
    "/leads/{lead_id}/convert", tags=["leads"], status_code=201,
    response_model=conversion.Conversion,
    summary="Convert a qualified lead",
    description="Needs `If-Match` with the lead's version. Creates (or links) the customer — "
    "the lead's match on arrival, or `customer_id` — the account and contact when the lead "
    "names a company, and a deal (first open stage of the new-business pipeline unless "
    "`pipeline_id`), in one step: any refusal leaves everything unchanged.")
def convert(lead_id: int, body: conversion.ConvertIn, response: Response,
            if_match: str | None = Header(default=None),
            ctx: Ctx = Depends(api_ctx)) -> conversion.Conversion:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id, "update")
    require_if_match(if_match, lead.version)
    result = conversion.convert_lead(ctx.session, ctx.principal, lead, body)
    ctx.commit()
    response.status_code = 201
    return result
