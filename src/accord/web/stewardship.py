"""Data stewardship pages: the review queue (a possible match side by side, each compared
field's values and match weight, accept or reject), and on the customer 360° page the sources
panel (the linked source profiles, what each supplied, why it was linked) with merge, unmerge
and unlink for users allowed to change identity resolution.

Every write goes through `accord.integration.stewardship` (policy, snapshot, audit, events);
forms carry the CSRF token and the version of the record they change. Nothing from the query
string is echoed: notices are chosen by fixed keys.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from accord.access import audit
from accord.access.policy import can
from accord.core.errors import Forbidden, NotFound, Problem, ValidationProblem
from accord.core.query import parse_list_params
from accord.core.settings import get_settings
from accord.customers import service as customers_service
from accord.integration import stewardship as service
from accord.models.integration import REVIEW_STATUSES
from accord.web.context import WebCtx, web_ctx
from accord.web.rendering import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
PageId = Annotated[int, Path(ge=1, le=MAX_ID)]
REVIEW_NOTICES = {"accepted": "Match accepted: the two records are now one customer.",
                  "rejected": "Match rejected: the pair will not be proposed again.",
                  "reopened": "Rejection taken back: the pair is pending again."}
PANEL_NOTICES = {"merged": "Customers merged. The merge can be undone below.",
                 "unmerged": "Merge undone: both customers are back as they were.",
                 "unlinked": "Source profile unlinked into its own customer.",
                 "merged-away": "The customer you opened was merged into this one."}
FIELD_LABELS = {"first_name": "First name", "last_name": "Last name", "email": "E-mail",
                "phone": "Phone", "date_of_birth": "Date of birth", "dob": "Date of birth",
                "national_id": "National ID", "address_line1": "Street", "postcode": "Postcode",
                "city": "City", "country": "Country", "title": "Title", "gender": "Gender",
                "address": "Address", "language": "Language"}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def weight_class(field: dict[str, Any]) -> str:
    """A colour per strength of evidence: strong for, for, neutral, against, strong against."""
    weight = field.get("match_weight")
    if isinstance(weight, int | float):
        if weight >= 3:
            return "w-strong-for"
        if weight > 0:
            return "w-for"
        if weight <= -3:
            return "w-strong-against"
        if weight < 0:
            return "w-against"
        return "w-neutral"
    agrees = field.get("agrees")
    return {True: "w-for", False: "w-against"}.get(agrees, "w-neutral")


def weight_text(field: dict[str, Any]) -> str:
    weight = field.get("match_weight")
    if isinstance(weight, int | float):
        return f"{weight:+.1f}"
    agrees = field.get("agrees")
    return {True: "same", False: "differs"}.get(agrees, "missing")


def _require_read(ctx: WebCtx) -> None:
    if not can(ctx.principal, "identity", "read"):
        raise Forbidden("Your role does not give access to the review queue.")


# --- the review queue ------------------------------------------------------------------------


@router.get("/identity/reviews")
def review_list(request: Request, status: Annotated[str, Query(max_length=20)] = "pending",
                cursor: Annotated[str | None, Query(max_length=500)] = None,
                done: Annotated[str | None, Query(max_length=40)] = None,
                ctx: WebCtx = Depends(web_ctx)) -> Response:
    _require_read(ctx)
    if status not in REVIEW_STATUSES:
        status = "pending"
    settings = get_settings()
    query = {"status": status, **({"cursor": cursor} if cursor else {})}
    error = ""
    items: list[dict[str, Any]] = []
    next_cursor = None
    try:
        params = parse_list_params(query, service.review_list_spec(), hidden=set(),
                                   default_limit=settings.page_size_default,
                                   max_limit=settings.page_size_max)
        items, next_cursor = service.list_reviews(ctx.session, ctx.principal, params)
    except ValidationProblem:
        error = "That page link is no longer valid; showing the first page."
        params = parse_list_params({"status": status}, service.review_list_spec(),
                                   hidden=set(), default_limit=settings.page_size_default,
                                   max_limit=settings.page_size_max)
        items, next_cursor = service.list_reviews(ctx.session, ctx.principal, params)
    if items:
        audit.record_read(ctx.principal, "identity", [i["id"] for i in items],
                          ("first_name", "last_name", "emails"), {"via": "web.reviews"})
    return render(request, "stewardship/reviews.html", {
        "items": items, "status": status, "statuses": REVIEW_STATUSES, "error": error,
        "notice": REVIEW_NOTICES.get(done or "", ""),
        "next_link": ("/identity/reviews?" + urlencode({"status": status, "cursor": next_cursor})
                      if next_cursor else None),
        "first_link": f"/identity/reviews?status={status}" if cursor else None,
    })


def _review_page(request: Request, ctx: WebCtx, review_id: int, *, alert: str = "",
                 reason: str = "", status_code: int = 200) -> Response:
    view = service.get_review(ctx.session, ctx.principal, review_id)
    rows = [{**f, "label": field_label(f["field"]), "css": weight_class(f),
             "weight_text": weight_text(f),
             "left_also": view["left"]["customer_values"].get(f["field"], []),
             "right_also": view["right"]["customer_values"].get(f["field"], [])}
            for f in view["fields"]]
    may = can(ctx.principal, "identity", "update")
    can_decide = may and view["status"] == "pending"
    can_reopen = may and view["status"] == "rejected"
    _end_transaction(ctx)
    audit.record_read(ctx.principal, "identity", [review_id],
                      ("first_name", "last_name", "emails", "phones", "addresses"),
                      {"via": "web.review"})
    return render(request, "stewardship/review.html", {
        "r": view, "rows": rows, "alert": alert, "reason": reason, "can_decide": can_decide,
        "can_reopen": can_reopen,
    }, status_code=status_code)


def _end_transaction(ctx: WebCtx) -> None:
    """Release a form post's write transaction before a read is audited in its own (SQLite
    has one writer)."""
    if ctx.request.method != "GET":
        ctx.session.rollback()


@router.get("/identity/reviews/{review_id}")
def review_detail(request: Request, review_id: PageId,
                  ctx: WebCtx = Depends(web_ctx)) -> Response:
    _require_read(ctx)
    return _review_page(request, ctx, review_id)


def _version(ctx: WebCtx) -> int | None:
    seen = ctx.field("version")
    return int(seen) if seen.isascii() and seen.isdigit() and len(seen) <= 18 else None


# a decision on a review: the service that makes it, and the notice it leaves
_DECISIONS = {"accept": (service.accept_review, "accepted"),
              "reject": (service.reject_review, "rejected"),
              "reopen": (service.reopen_review, "reopened")}


def _decide(request: Request, ctx: WebCtx, review_id: int, decision: str) -> Response:
    _require_read(ctx)
    reason = ctx.field("reason")[:300]
    version = _version(ctx)
    if version is None:
        return _review_page(request, ctx, review_id, status_code=428, reason=reason,
                            alert="The form did not say which version of the review it decides. "
                                  "Reload the page and try again.")
    decide, done = _DECISIONS[decision]
    try:
        decide(ctx.session, ctx.principal, review_id, expected_version=version, reason=reason)
        ctx.commit()
    except (Forbidden, NotFound):
        raise
    except Problem as exc:
        ctx.session.rollback()
        alert = (exc.detail[:1].upper() + exc.detail[1:]) if exc.status != 412 else (
            "Someone else decided or changed this review meanwhile. Check it again.")
        return _review_page(request, ctx, review_id, alert=alert, reason=reason,
                            status_code=exc.status)
    return RedirectResponse(f"/identity/reviews?done={done}", status_code=303)


@router.post("/identity/reviews/{review_id}/accept")
def accept(request: Request, review_id: PageId, ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _decide(request, ctx, review_id, "accept")


@router.post("/identity/reviews/{review_id}/reject")
def reject(request: Request, review_id: PageId, ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _decide(request, ctx, review_id, "reject")


@router.post("/identity/reviews/{review_id}/reopen")
def reopen(request: Request, review_id: PageId, ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _decide(request, ctx, review_id, "reopen")


# --- the 360 page's sources panel, merge, unmerge and unlink --------------------------------


def sources_panel(ctx: WebCtx, customer_id: int, *, error: str = "",
                  values: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The sources panel's context for the 360 page (None: the viewer may not see it)."""
    if not can(ctx.principal, "identity", "read"):
        return None
    try:
        view = service.customer_sources(ctx.session, ctx.principal, customer_id)
    except Problem:
        return None
    from accord.customers.custom_fields import definitions

    custom = {f"cf.{d.key}": d.label for d in definitions(ctx.session)}
    for row in view["sources"]:
        for w in row["weights"]:
            w["label"], w["css"] = field_label(w["field"]), weight_class(w)
            w["weight_text"] = weight_text(w)
        for s in row["supplied"]:
            s["label"] = custom.get(s["field"]) or field_label(s["field"])
    done = ctx.request.query_params.get("identity", "")
    return {"customer_id": customer_id, "version": view["version"], "sources": view["sources"],
            "changes": view["changes"], "can_update": can(ctx.principal, "identity", "update"),
            "notice": PANEL_NOTICES.get(done, ""), "error": error,
            "form": values or {"other_id": "", "reason": ""}}


def _panel_error(request: Request, ctx: WebCtx, customer_id: int, exc: Problem,
                 values: dict[str, str]) -> Response:
    from accord.web.customers import _detail_context

    ctx.session.rollback()
    context = _detail_context(ctx, customer_id)
    message = exc.detail[:1].upper() + exc.detail[1:]
    if exc.status == 412:
        message = "Someone else changed this customer meanwhile. Reload the page and try again."
    context["identity"] = sources_panel(ctx, customer_id, error=message, values=values)
    _end_transaction(ctx)
    audit.record_read(ctx.principal, "customers", [customer_id],
                      customers_service.read_fields(ctx.principal), {"via": "web.360"})
    return render(request, "customers/detail.html", context,
                  status_code=exc.status if exc.status >= 400 else 409)


@router.post("/customers/{customer_id}/identity/merge")
def merge(request: Request, customer_id: PageId, ctx: WebCtx = Depends(web_ctx)) -> Response:
    """Merge the customer whose number was entered into this one (this one survives)."""
    values = {"other_id": ctx.field("other_id"), "reason": ctx.field("reason")[:300]}
    try:
        raw = values["other_id"].lstrip("#")
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= MAX_ID:
            raise ValidationProblem("Enter the other customer's number.", field="other_id")
        service.merge(ctx.session, ctx.principal, customer_id, int(raw), values["reason"],
                      survivor_version=_version(ctx))
        ctx.commit()
    except Forbidden:
        raise
    except Problem as exc:
        return _panel_error(request, ctx, customer_id, exc, values)
    return RedirectResponse(f"/customers/{customer_id}?identity=merged#sources", status_code=303)


@router.post("/identity/changes/{change_id}/revert")
def revert(request: Request, change_id: PageId, ctx: WebCtx = Depends(web_ctx)) -> Response:
    change = service.get_change(ctx.session, ctx.principal, change_id)
    customer_id = int(change.customer_id or 0)
    reason = ctx.field("reason")
    try:
        service.unmerge(ctx.session, ctx.principal, change_id, reason[:300])
        ctx.commit()
    except Forbidden:
        raise
    except Problem as exc:
        return _panel_error(request, ctx, customer_id, exc, {"other_id": "", "reason": ""})
    return RedirectResponse(f"/customers/{customer_id}?identity=unmerged#sources",
                            status_code=303)


@router.post("/identity/profiles/{profile_id}/unlink")
def unlink(request: Request, profile_id: PageId, ctx: WebCtx = Depends(web_ctx)) -> Response:
    profile = service.get_profile(ctx.session, ctx.principal, profile_id)
    customer_id = int(profile.customer_id or 0)
    reason = ctx.field("reason")
    try:
        service.unlink(ctx.session, ctx.principal, profile_id, reason[:300],
                       expected_version=_version(ctx))
        ctx.commit()
    except Forbidden:
        raise
    except Problem as exc:
        if not customer_id:
            raise
        return _panel_error(request, ctx, customer_id, exc, {"other_id": "", "reason": ""})
    return RedirectResponse(f"/customers/{customer_id}?identity=unlinked#sources",
                            status_code=303)
