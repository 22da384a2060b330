"""REST endpoints for users, teams, API tokens and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Response

from accord.access import audit, service
from accord.access.deps import Ctx, api_ctx
from accord.access.policy import permission_matrix
from accord.access.schemas import (
    TeamIn,
    TeamOut,
    TeamUpdate,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from accord.core.concurrency import etag

router = APIRouter()


@router.get("/me", response_model=UserOut, tags=["users"])
def me(ctx: Ctx = Depends(api_ctx)) -> Any:
    assert ctx.principal.user_id is not None
    return service.get_user(ctx.session, ctx.principal, ctx.principal.user_id)


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(ctx: Ctx = Depends(api_ctx)) -> Any:
    return service.list_users(ctx.session, ctx.principal)


@router.post("/users", status_code=201, response_model=UserOut, tags=["users"])
def create_user(body: UserCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: UserOut.model_validate(service.create_user(ctx.session, ctx.principal, body)),
        body,
        headers=lambda out: {"ETag": etag(out.version)},
    )


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(user_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> Any:
    user = service.get_user(ctx.session, ctx.principal, user_id)
    response.headers["ETag"] = etag(user.version)
    return user


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def update_user(
    user_id: int,
    body: UserUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> Any:
    service.require(ctx.principal, "users", "update")
    user = service.get_user(ctx.session, ctx.principal, user_id)
    return ctx.updated(
        user,
        if_match,
        response,
        lambda: service.update_user(ctx.session, ctx.principal, user, body),
        lambda: UserOut.model_validate(user),
    )


@router.delete("/users/{user_id}", status_code=204, tags=["users"])
def deactivate_user(user_id: int, ctx: Ctx = Depends(api_ctx)) -> Response:
    service.require(ctx.principal, "users", "delete")
    user = service.get_user(ctx.session, ctx.principal, user_id)
    service.delete_user(ctx.session, ctx.principal, user)
    ctx.commit()
    return Response(status_code=204)


@router.get("/teams", response_model=list[TeamOut], tags=["teams"])
def list_teams(ctx: Ctx = Depends(api_ctx)) -> Any:
    return service.list_teams(ctx.session, ctx.principal)


@router.post("/teams", status_code=201, response_model=TeamOut, tags=["teams"])
def create_team(body: TeamIn, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: TeamOut.model_validate(service.create_team(ctx.session, ctx.principal, body)),
        body,
        headers=lambda out: {"ETag": etag(out.version)},
    )


@router.get("/teams/{team_id}", response_model=TeamOut, tags=["teams"])
def get_team(team_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> Any:
    team = service.get_team(ctx.session, ctx.principal, team_id)
    response.headers["ETag"] = etag(team.version)
    return team


@router.patch("/teams/{team_id}", response_model=TeamOut, tags=["teams"])
def update_team(
    team_id: int,
    body: TeamUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> Any:
    team = service.get_team(ctx.session, ctx.principal, team_id)
    service.require(ctx.principal, "teams", "update")
    return ctx.updated(
        team,
        if_match,
        response,
        lambda: service.update_team(ctx.session, ctx.principal, team, body),
        lambda: TeamOut.model_validate(team),
    )


@router.delete("/teams/{team_id}", status_code=204, tags=["teams"])
def delete_team(
    team_id: int, if_match: str | None = Header(default=None), ctx: Ctx = Depends(api_ctx)
) -> Response:
    team = service.get_team(ctx.session, ctx.principal, team_id)
    service.require(ctx.principal, "teams", "delete")
    return ctx.deleted(
        team, if_match, lambda: service.delete_team(ctx.session, ctx.principal, team)
    )


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
def list_tokens(ctx: Ctx = Depends(api_ctx)) -> Any:
    return service.list_tokens(ctx.session, ctx.principal)


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreated,
    tags=["tokens"],
    summary="Create an API token (the secret is shown once)",
)
def create_token(body: TokenCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    def run() -> TokenCreated:
        token, secret = service.create_token(ctx.session, ctx.principal, body)
        return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)

    return ctx.created(run, body)


@router.delete("/tokens/{token_id}", status_code=204, tags=["tokens"])
def revoke_token(token_id: int, ctx: Ctx = Depends(api_ctx)) -> Response:
    service.revoke_token(ctx.session, ctx.principal, token_id)
    ctx.commit()
    return Response(status_code=204)


@router.get("/roles", tags=["users"], summary="The permission matrix of every role")
def roles(ctx: Ctx = Depends(api_ctx)) -> list[dict[str, Any]]:
    service.require(ctx.principal, "users", "read")
    return permission_matrix()


@router.get(
    "/audit",
    tags=["audit"],
    summary="The audit trail, newest first",
    description="Filters: `resource`, `record_id` (its changes and every read that showed it, "
    "list pages included), `action`, `since` (appended at or after). Page back with "
    "`before_id=next_before_id`. A record's reads are found by scanning the trail, a bounded "
    "stretch per page, so a page may hold fewer than `limit` entries and still have a "
    "`next_before_id`: follow it until it is null to see every match.",
)
def list_audit(
    resource: str | None = Query(default=None, max_length=60),
    record_id: str | None = Query(default=None, max_length=64),
    action: str | None = Query(default=None, max_length=40),
    since: datetime | None = Query(default=None),
    before_id: int | None = Query(default=None, ge=1),
    limit: int = Query(default=100, ge=1, le=1000),
    ctx: Ctx = Depends(api_ctx),
) -> dict[str, Any]:
    service.require(ctx.principal, "audit", "read")
    page = audit.entries(ctx.session, resource=resource, record_id=record_id, action=action,
                         since=since, before_id=before_id, limit=limit)
    return {
        "items": [
            {
                "id": r.id,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "resource": r.resource,
                "record_id": r.record_id,
                "fields": r.fields,
                "detail": r.detail,
            }
            for r in page.items
        ],
        "next_before_id": page.next_before_id,
    }


@router.get("/audit/verify", tags=["audit"])
def verify_audit(ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    service.require(ctx.principal, "audit", "read")
    result = audit.verify(ctx.session)
    return {
        "ok": result.ok,
        "checked": result.checked,
        "first_bad_id": result.first_bad_id,
        "reason": result.reason,
    }
