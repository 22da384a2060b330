"""REST endpoints for sources: register, configure, deactivate, mint write keys and secrets.

A source is never deleted (its raw records and lineage refer to it): `PATCH active=false`
deactivates it and its keys stop working. Minted secrets are answered once with
`Cache-Control: no-store` and are never part of an idempotent replay.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Response
from fastapi.responses import JSONResponse

from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.integration import sources_admin as service
from accord.integration.schemas import (
    SourceCreate,
    SourceOut,
    SourceUpdate,
    WebhookSecretOut,
    WriteKeyOut,
)

router = APIRouter(tags=["sources"])
SourceId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/sources", summary="List sources, most trusted first")
def list_sources(ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    return {"items": [SourceOut.of(s) for s in service.list_sources(ctx.session, ctx.principal)]}


@router.post("/sources", status_code=201, response_model=SourceOut,
             summary="Register a source (admin)")
def create_source(body: SourceCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: SourceOut.of(service.create_source(ctx.session, ctx.principal, body)),
        body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/sources/{out.id}"},
    )


@router.get("/sources/{source_id}", response_model=SourceOut)
def get_source(response: Response, source_id: SourceId,
               ctx: Ctx = Depends(api_ctx)) -> SourceOut:
    source = service.get_source(ctx.session, ctx.principal, source_id)
    response.headers["ETag"] = etag(source.version)
    return SourceOut.of(source)


@router.patch("/sources/{source_id}", response_model=SourceOut,
              summary="Change a source; `active: false` deactivates it (needs If-Match)")
def update_source(
    body: SourceUpdate,
    response: Response,
    source_id: SourceId,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> SourceOut:
    source = service.get_source(ctx.session, ctx.principal, source_id, "update")
    return ctx.updated(
        source, if_match, response,
        lambda: service.update_source(ctx.session, ctx.principal, source, body),
        lambda: SourceOut.of(source),
    )


def _once(body: Any) -> JSONResponse:
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


@router.post("/sources/{source_id}/write-key", response_model=WriteKeyOut,
             summary="Mint a new write key for the collection API; the old one stops working")
def mint_write_key(source_id: SourceId, ctx: Ctx = Depends(api_ctx)) -> JSONResponse:
    source = service.get_source(ctx.session, ctx.principal, source_id, "update")
    key = service.mint_write_key(ctx.session, ctx.principal, source)
    ctx.commit()
    return _once(WriteKeyOut(source_id=source.id, write_key=key,
                             write_key_prefix=source.write_key_prefix or key[:10]))


@router.post("/sources/{source_id}/webhook-secret", response_model=WebhookSecretOut,
             summary="Mint a new webhook signing secret; the old one stops working")
def mint_webhook_secret(source_id: SourceId, ctx: Ctx = Depends(api_ctx)) -> JSONResponse:
    source = service.get_source(ctx.session, ctx.principal, source_id, "update")
    secret = service.mint_webhook_secret(ctx.session, ctx.principal, source)
    ctx.commit()
    return _once(WebhookSecretOut(source_id=source.id, webhook_secret=secret))
