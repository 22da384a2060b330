"""Pages for activities: "My day" (`/sales/my-day`), the quick "log a call" / "add task" panel
of one customer, lead, deal or account (`/sales/activities/panel?customer_id=` or `lead_id=`,
`deal_id=`, `account_id=`; the 360° page, the lead and deal pages show it), and the
notifications panel behind the header's bell (`/notifications/panel`).

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
from accord.core.errors import Forbidden, NotFound, Problem, ValidationProblem
from accord.customers import accounts
from accord.customers import service as customers
from accord.models.sales import Activity
from accord.sales import activities as service
from accord.sales import deals, leads, notifications
from accord.sales.activities_schemas import ActivityCreate
from accord.web.admin import form_errors
from accord.web.context import WebCtx, is_htmx, safe_next, wants_partial, web_ctx
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
    """HTMX swaps the activity's row for its completed state; a plain post goes back (to the
    form's `next`, a same-site path, else My day)."""
    a = service.get_activity(ctx.session, ctx.principal, activity_id, "update")
    service.complete_activity(ctx.session, ctx.principal, a)
    ctx.commit()
    if not is_htmx(request):
        back = ctx.field("next")
        return RedirectResponse(safe_next(back) if back else "/sales/my-day", status_code=303)
    return render(request, "sales/activities/_row.html", {"a": a, "can_update": True})


# --- the activities panel: quick "log a call" / "add task" on a customer, lead, deal, account --

# The record kinds a panel can be about: link field → (label, the record's page).
PANEL_TARGETS: dict[str, tuple[str, str]] = {
    "customer_id": ("customer", "/customers/{}"),
    "lead_id": ("lead", "/sales/leads/{}"),
    "deal_id": ("deal", "/sales/deals/{}"),
    "account_id": ("account", "/sales/activities/panel?account_id={}"),  # no account page yet
}
PANEL_ANCHOR = "#sales-activities"


def _parse_due(raw: str) -> datetime | None | str:
    """A `datetime-local` value read as UTC; the raw text back when it is not a date."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _check_target(ctx: WebCtx, link: str, record_id: int) -> None:
    """The record must be readable by the viewer; anything else is a 404 (no existence oracle),
    also for a role that reads no records of that kind at all."""
    label = PANEL_TARGETS[link][0]
    try:
        if link == "customer_id":
            customers.get_customer(ctx.session, ctx.principal, record_id)
        elif link == "lead_id":
            leads.get_lead(ctx.session, ctx.principal, record_id)
        elif link == "deal_id":
            deals.get_deal(ctx.session, ctx.principal, record_id)
        else:
            accounts.get_account(ctx.session, ctx.principal, record_id)
    except Forbidden:
        raise NotFound(f"{label} {record_id} does not exist") from None


def record_page(link: str, record_id: int) -> str:
    """Where a plain (non-HTMX) post from the panel goes back to."""
    return PANEL_TARGETS[link][1].format(record_id) + PANEL_ANCHOR


def panel_context(ctx: WebCtx, link: str, record_id: int, *,
                  values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                  notice: str = "") -> dict[str, Any]:
    """The panel of one record (checked readable first): its activities the viewer may read,
    open ones on top and then newest first, each with whether the viewer may complete it."""
    _check_target(ctx, link, record_id)
    scope = scope_for(ctx.principal, service.RESOURCE, "read")
    rows: list[Activity] = []
    if scope is not None:
        column = getattr(Activity, link)
        rows = list(ctx.session.execute(
            select(Activity)
            .where(column == record_id,
                   scope_clause(ctx.principal, scope, Activity.owner_id, Activity.team_id))
            .order_by(Activity.status != "open", Activity.id.desc())
            .limit(PANEL_LIMIT)).scalars())
    return {
        "link": link, "record_id": record_id, "label": PANEL_TARGETS[link][0],
        "back": record_page(link, record_id),
        "record_url": None if link == "account_id" else PANEL_TARGETS[link][1].format(record_id),
        "rows": [(a, service.in_scope(ctx.principal, a, "update")) for a in rows],
        "can_read": scope is not None,
        "can_create": can(ctx.principal, service.RESOURCE, "create"),
        "fields": values or {"kind": "call", "direction": "outbound"},
        "errors": errors or {}, "notice": notice, "kinds": QUICK_KINDS,
    }


def _one_target(given: dict[str, int | None]) -> tuple[str, int]:
    chosen = [(k, v) for k, v in given.items() if v is not None]
    if len(chosen) != 1:
        raise ValidationProblem("give exactly one of customer_id, lead_id, deal_id or "
                                "account_id", field="customer_id")
    return chosen[0]


PanelId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/sales/activities/panel")
def panel(request: Request, customer_id: PanelId = None, lead_id: PanelId = None,
          deal_id: PanelId = None, account_id: PanelId = None,
          ctx: WebCtx = Depends(web_ctx)) -> Response:
    """The panel as a fragment (HTMX, on the record's page) or as a page of its own."""
    link, record_id = _one_target({"customer_id": customer_id, "lead_id": lead_id,
                                   "deal_id": deal_id, "account_id": account_id})
    context = {"panel": panel_context(ctx, link, record_id)}
    if wants_partial(request):
        return render(request, "sales/activities/_panel.html", context)
    return render(request, "sales/activities/page.html", context)


def _posted_target(ctx: WebCtx) -> tuple[str, int]:
    given = [(k, ctx.field(k)) for k in PANEL_TARGETS if ctx.field(k)]
    if len(given) != 1 or not (given[0][1].isascii() and given[0][1].isdigit()) \
            or not 1 <= int(given[0][1]) <= MAX_ID:
        raise NotFound("There is no such record.")
    return given[0][0], int(given[0][1])


@router.post("/sales/activities")
def quick_create(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    link, record_id = _posted_target(ctx)
    _check_target(ctx, link, record_id)
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
                link: record_id,
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
        return RedirectResponse(record_page(link, record_id), status_code=303)
    if errors:
        ctx.session.rollback()
    context = {"panel": panel_context(ctx, link, record_id, values=values if errors else None,
                                      errors=errors, notice="" if errors else "Saved.")}
    template = "sales/activities/_panel.html" if is_htmx(request) else "sales/activities/page.html"
    return render(request, template, context, status_code=422 if errors else 200)


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
