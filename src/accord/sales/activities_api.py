"""REST endpoints for activities and the caller's notifications: parse, call the service,
serialise."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Header, Request, Response

from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.core.query import ListParams, ListSpec, request_params
from accord.sales import activities as service
from accord.sales import notifications
from accord.sales.activities_schemas import (
    ActivityComplete,
    ActivityCreate,
    ActivityOut,
    ActivityUpdate,
    NotificationOut,
)

router = APIRouter()

LIST_HELP = (
    "Filters: `owner_id`, `kind`, `status`, `due_at__gte=2025-01-01T00:00:00Z` (and `__lt`, "
    "`__lte`, `__gt`, `__isnull`), `lead_id`, `customer_id`, `account_id`, `deal_id`; "
    "`sort=due_at` (default; no due date last), `-due_at`, `id`, `created_at`; keyset "
    "pagination with `cursor` and `limit`. Only activities in the caller's record scope."
)


def _params(request: Request, spec: ListSpec) -> ListParams:
    return request_params(dict(request.query_params), spec)


@router.get("/activities", tags=["activities"], summary="List activities",
            description=LIST_HELP)
def list_activities(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = service.list_activities(ctx.session, ctx.principal,
                                           _params(request, service.list_spec()))
    return {"items": [ActivityOut.model_validate(a) for a in rows], "next_cursor": cursor}


@router.post("/activities", tags=["activities"], status_code=201, response_model=ActivityOut,
             summary="Create a task, call, meeting or note",
             description="Linked to at least one lead, customer, account or deal the caller "
             "can read. The caller owns it. An activity about a customer also appears on the "
             "customer's timeline; a call or meeting on a new lead is its first touch.")
def create_activity(body: ActivityCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: ActivityOut.model_validate(
            service.create_activity(ctx.session, ctx.principal, body)),
        body,
        headers=lambda out: {"ETag": etag(out.version),
                             "Location": f"/api/v1/activities/{out.id}"},
    )


@router.get("/activities/{activity_id}", tags=["activities"], response_model=ActivityOut)
def get_activity(activity_id: int, response: Response,
                 ctx: Ctx = Depends(api_ctx)) -> ActivityOut:
    a = service.get_activity(ctx.session, ctx.principal, activity_id)
    response.headers["ETag"] = etag(a.version)
    return ActivityOut.model_validate(a)


@router.patch("/activities/{activity_id}", tags=["activities"], response_model=ActivityOut)
def update_activity(activity_id: int, body: ActivityUpdate, response: Response,
                    if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> ActivityOut:
    a = service.get_activity(ctx.session, ctx.principal, activity_id, "update")
    return ctx.updated(a, if_match, response,
                       lambda: service.update_activity(ctx.session, ctx.principal, a, body),
                       lambda: ActivityOut.model_validate(a))


@router.post("/activities/{activity_id}/complete", tags=["activities"],
             response_model=ActivityOut, summary="Mark an activity done",
             description="Sets status done and done_at (now unless given). If-Match is "
             "optional here: completing twice changes nothing.")
def complete_activity(activity_id: int, response: Response,
                      body: ActivityComplete | None = Body(default=None),
                      if_match: str | None = Header(default=None),
                      ctx: Ctx = Depends(api_ctx)) -> ActivityOut:
    a = service.get_activity(ctx.session, ctx.principal, activity_id, "update")
    if if_match is not None:
        return ctx.updated(a, if_match, response,
                           lambda: service.complete_activity(ctx.session, ctx.principal, a, body),
                           lambda: ActivityOut.model_validate(a))
    service.complete_activity(ctx.session, ctx.principal, a, body)
    out = ActivityOut.model_validate(a)
    ctx.commit()
    response.headers["ETag"] = etag(a.version)
    return out


@router.delete("/activities/{activity_id}", tags=["activities"], status_code=204)
def delete_activity(activity_id: int, if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> Response:
    a = service.get_activity(ctx.session, ctx.principal, activity_id, "delete")
    return ctx.deleted(a, if_match,
                       lambda: service.delete_activity(ctx.session, ctx.principal, a))


# --- notifications -----------------------------------------------------------------------------

@router.get("/notifications", tags=["notifications"], summary="Your notifications",
            description="Only the caller's own: unread first, newest first. Filters: "
            "`unread=true|false`, `kind`; keyset pagination with `cursor` and `limit`. "
            "`unread_count` counts every unread one.")
def list_notifications(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = notifications.list_notifications(
        ctx.session, ctx.principal, _params(request, notifications.list_spec()))
    return {"items": [NotificationOut.model_validate(n) for n in rows], "next_cursor": cursor,
            "unread_count": notifications.unread_count(ctx.session, ctx.principal)}


@router.post("/notifications/read-all", tags=["notifications"],
             summary="Mark all your notifications read")
def read_all(ctx: Ctx = Depends(api_ctx)) -> dict[str, int]:
    done = notifications.mark_all_read(ctx.session, ctx.principal)
    ctx.commit()
    return {"marked": done}


@router.post("/notifications/{notification_id}/read", tags=["notifications"],
             response_model=NotificationOut, summary="Mark one of your notifications read")
def read_one(notification_id: int, ctx: Ctx = Depends(api_ctx)) -> NotificationOut:
    row = notifications.get_notification(ctx.session, ctx.principal, notification_id)
    notifications.mark_read(ctx.session, ctx.principal, row)
    out = NotificationOut.model_validate(row)
    ctx.commit()
    return out
