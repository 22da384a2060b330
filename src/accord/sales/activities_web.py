"""Pages for activities: "My day" (`/sales/my-day`), the quick "log a call" / "add task" panel
for the customer 360° page (`/sales/activities/panel?customer_id=`), and the notifications
panel behind the header's bell (`/notifications/panel`).

Every write goes through `accord.sales.activities` / `notifications` (policy, audit, events);
this module only turns form fields into input schemas and errors into messages. Times typed
into forms are read as UTC, the zone the whole UI shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select

from accord.access.policy import can, scope_clause, scope_for
from accord.core.errors import Forbidden, NotFound, Problem
from accord.customers import service as customers
from accord.models.sales import Activity
from accord.sales import activities as service
from accord.sales import notifications
from accord.sales.activities_schemas import ActivityCreate
from accord.web.admin import form_errors
from accord.web.context import WebCtx, is_htmx, safe_next, web_ctx
from accord.web.rendering import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
RowPath = Annotated[int, Path(ge=1, le=MAX_ID)]
QUICK_FIELDS = ("kind", "subject", "body", "due_at", "direction", "duration_minutes", "outcome")
QUICK_KINDS = ("call", "task", "meeting", "note")
PANEL_LIMIT = 20


# --- My day ------------------------------------------------------------------------------------

@router.get("/sales/my-day")
def my_day(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    day = service.my_day(ctx.session, ctx.principal)
    return render(request, "sales/my_day.html", {
        "day": day, "can_update": can(ctx.principal, service.RESOURCE, "update"),
    })


@router.post("/sales/activities/{activity_id}/complete")
def complete(request: Request, activity_id: RowPath, ctx: WebCtx = Depends(web_ctx)) -> Response:
    """HTMX swaps the activity's row for its completed state; a plain post goes back."""
    a = service.get_activity(ctx.session, ctx.principal, activity_id, "update")
    service.complete_activity(ctx.session, ctx.principal, a)
    ctx.commit()
    if not is_htmx(request):
        return RedirectResponse("/sales/my-day", status_code=303)
    return render(request, "sales/activities/_row.html", {"a": a, "can_update": True})


# --- the 360° panel: quick "log a call" / "add task" -------------------------------------------

def _parse_due(raw: str) -> datetime | None | str:
    """A `datetime-local` value read as UTC; the raw text back when it is not a date."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _panel(ctx: WebCtx, customer_id: int, *, values: dict[str, str] | None = None,
           errors: dict[str, str] | None = None, notice: str = "") -> dict[str, Any]:
    customers.get_customer(ctx.session, ctx.principal, customer_id)  # 404 out of scope
    scope = scope_for(ctx.principal, service.RESOURCE, "read")
    rows: list[Activity] = []
    if scope is not None:
        rows = list(ctx.session.execute(
            select(Activity)
            .where(Activity.customer_id == customer_id,
                   scope_clause(ctx.principal, scope, Activity.owner_id, Activity.team_id))
            .order_by(Activity.status != "open", Activity.due_at.is_(None), Activity.due_at,
                      Activity.id.desc())
            .limit(PANEL_LIMIT)).scalars())
    return {
        "customer_id": customer_id, "items": rows,
        "can_create": can(ctx.principal, service.RESOURCE, "create"),
        "can_update": can(ctx.principal, service.RESOURCE, "update"),
        "values": values or {"kind": "call", "direction": "outbound"},
        "errors": errors or {}, "notice": notice, "kinds": QUICK_KINDS,
    }


@router.get("/sales/activities/panel")
def panel(request: Request, customer_id: Annotated[int, Query(ge=1, le=MAX_ID)],
          ctx: WebCtx = Depends(web_ctx)) -> Response:
    return render(request, "sales/activities/_customer.html", _panel(ctx, customer_id))


@router.post("/sales/activities")
def quick_create(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    raw_customer = ctx.field("customer_id")
    if not raw_customer.isdigit() or not 1 <= int(raw_customer) <= MAX_ID:
        raise NotFound("There is no such customer.")
    customer_id = int(raw_customer)
    values = {name: ctx.field(name) for name in QUICK_FIELDS}
    errors: dict[str, str] = {}
    due = _parse_due(values["due_at"])
    if isinstance(due, str):
        errors["due_at"] = "Enter a date and time, e.g. 2025-03-01 14:30 (UTC)."
    else:
        kind = values["kind"]
        logged = kind in ("call", "note")  # calls and notes are logged once they happened
        try:
            data = ActivityCreate.model_validate({
                "kind": kind, "subject": values["subject"], "body": values["body"],
                "status": "done" if logged and due is None else "open", "due_at": due,
                "customer_id": customer_id,
                **{k: values[k] for k in ("direction", "duration_minutes", "outcome")
                   if values[k] and kind in ("call", "meeting")
                   and (k != "direction" or kind == "call")},
            })
            service.create_activity(ctx.session, ctx.principal, data)
            ctx.commit()
        except ValidationError as exc:
            errors = {k: v for k, v in form_errors(exc, "subject").items() if k in QUICK_FIELDS}
            errors = errors or {"subject": "The activity is not valid."}
        except (Forbidden, NotFound):
            raise
        except Problem as exc:
            ctx.session.rollback()
            errors = {exc.field if exc.field in QUICK_FIELDS else "subject": exc.detail}
    if not errors and not is_htmx(request):
        return RedirectResponse(f"/customers/{customer_id}#sales-activities", status_code=303)
    context = _panel(ctx, customer_id, values=values if errors else None, errors=errors,
                     notice="" if errors else "Saved.")
    return render(request, "sales/activities/_customer.html", context,
                  status_code=422 if errors else 200)


# --- notifications (the bell) ------------------------------------------------------------------

def _bell(ctx: WebCtx) -> dict[str, Any]:
    return {"items": notifications.unread(ctx.session, ctx.principal, PANEL_LIMIT),
            "unread": notifications.unread_count(ctx.session, ctx.principal)}


@router.get("/notifications/panel")
def notifications_panel(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    return render(request, "sales/_notifications.html", _bell(ctx))


@router.post("/notifications/{notification_id}/read")
def notification_read(request: Request, notification_id: RowPath,
                      ctx: WebCtx = Depends(web_ctx)) -> Response:
    row = notifications.get_notification(ctx.session, ctx.principal, notification_id)
    notifications.mark_read(ctx.session, ctx.principal, row)
    ctx.commit()
    if not is_htmx(request):
        return RedirectResponse(safe_next(row.link or "/sales/my-day"), status_code=303)
    return render(request, "sales/_notifications.html", _bell(ctx))


@router.post("/notifications/read-all")
def notifications_read_all(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    notifications.mark_all_read(ctx.session, ctx.principal)
    ctx.commit()
    if not is_htmx(request):
        return RedirectResponse("/sales/my-day", status_code=303)
    return render(request, "sales/_notifications.html", _bell(ctx))
