"""REST endpoints for canned replies (CRUD: `service_config`) and their personalised rendering
for a ticket (`tickets` read): parse, call `accord.service.canned`, serialise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.service import canned
from accord.service.canned import (
    CannedReplyCreate,
    CannedReplyOut,
    CannedReplyUpdate,
    RenderedOut,
)

router = APIRouter()
TAG = "canned replies"
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
RENDER_HELP = (
    "The reply's body rendered for the ticket's customer and the calling agent. Placeholders: "
    "`{{ customer.first_name }}`, `{{ customer.last_name }}`, `{{ customer.display_name }}`, "
    "`{{ ticket.reference }}`, `{{ ticket.subject }}`, `{{ ticket.due }}`, `{{ agent.name }}`, "
    "`{{ agent.first_name }}`; `{% if %}` and the filters default, upper, lower, title, "
    "capitalize, trim and truncate. Unknown placeholders render empty; anything else (loops, "
    "calls, `_` attributes) is a 422 naming `body`.")


@router.get("/canned-replies", tags=[TAG], response_model=list[CannedReplyOut])
def list_replies(team_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                 active: bool | None = None,
                 ctx: Ctx = Depends(api_ctx)) -> list[CannedReplyOut]:
    rows = canned.list_replies(ctx.session, ctx.principal, team_id=team_id,
                               active_only=bool(active))
    if active is False:
        rows = [r for r in rows if not r.active]
    return [CannedReplyOut.model_validate(r) for r in rows]


@router.post("/canned-replies", tags=[TAG], status_code=201, response_model=CannedReplyOut,
             description="Needs `service_config` create. " + RENDER_HELP)
def create_reply(body: CannedReplyCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: CannedReplyOut.model_validate(
            canned.create_reply(ctx.session, ctx.principal, body)),
        body, headers=lambda out: {"ETag": etag(out.version),
                                   "Location": f"/api/v1/canned-replies/{out.id}"})


@router.get("/canned-replies/{reply_id}", tags=[TAG], response_model=CannedReplyOut)
def get_reply(reply_id: Id, response: Response, ctx: Ctx = Depends(api_ctx)) -> CannedReplyOut:
    reply = canned.get_reply(ctx.session, ctx.principal, reply_id)
    response.headers["ETag"] = etag(reply.version)
    return CannedReplyOut.model_validate(reply)


@router.patch("/canned-replies/{reply_id}", tags=[TAG], response_model=CannedReplyOut,
              description="Needs `If-Match` and `service_config` update.")
def update_reply(reply_id: Id, body: CannedReplyUpdate, response: Response,
                 if_match: str | None = Header(default=None),
                 ctx: Ctx = Depends(api_ctx)) -> CannedReplyOut:
    reply = canned.get_reply(ctx.session, ctx.principal, reply_id, "update")
    return ctx.updated(reply, if_match, response,
                       lambda: canned.update_reply(ctx.session, ctx.principal, reply, body),
                       lambda: CannedReplyOut.model_validate(reply))


@router.delete("/canned-replies/{reply_id}", tags=[TAG], status_code=204,
               description="Needs `If-Match` and `service_config` delete.")
def delete_reply(reply_id: Id, if_match: str | None = Header(default=None),
                 ctx: Ctx = Depends(api_ctx)) -> Response:
    reply = canned.get_reply(ctx.session, ctx.principal, reply_id, "delete")
    return ctx.deleted(reply, if_match,
                       lambda: canned.delete_reply(ctx.session, ctx.principal, reply))


@router.post("/tickets/{ticket_id}/canned-replies/{reply_id}/render", tags=[TAG],
             response_model=RenderedOut, summary="Render a canned reply for a ticket",
             description=RENDER_HELP)
def render_reply(ticket_id: Id, reply_id: Id, ctx: Ctx = Depends(api_ctx)) -> RenderedOut:
    text = canned.render_for(ctx.session, ctx.principal, ticket_id, reply_id)
    return RenderedOut(reply_id=reply_id, ticket_id=ticket_id, text=text)
