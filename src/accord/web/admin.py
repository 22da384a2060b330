"""Admin pages: users, the role × resource permission matrix and custom field definitions.

Pages are reachable only by roles the policy allows (`context.ADMIN_PAGES`); every write goes
through the access or custom-field service, which checks the policy again, audits and emits
events. Validation failures are shown next to the field they concern.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from accord.access import service as access
from accord.access.policy import (
    ACTIONS,
    RESOURCES,
    ROLES,
    SENSITIVE_CUSTOM_FIELD_ROLES,
    SENSITIVE_FIELDS,
    can,
    permission_matrix,
)
from accord.access.schemas import UserCreate
from accord.core.errors import Forbidden, Problem
from accord.customers import custom_fields
from accord.customers.schemas import CustomFieldIn
from accord.models.customer import CUSTOM_FIELD_TYPES
from accord.web.context import ADMIN_PAGES, WebCtx, web_ctx
from accord.web.rendering import PageRoute, render

router = APIRouter(prefix="/admin", route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
LOCALES = (("en_GB", "English (UK)"), ("en_US", "English (US)"), ("de_DE", "Deutsch"),
           ("fr_FR", "Français"), ("es_ES", "Español"), ("it_IT", "Italiano"),
           ("nl_NL", "Nederlands"), ("pl_PL", "Polski"))
# Fixed notices chosen by key: nothing from the query string is echoed into the page.
NOTICES = {"user-created": "User created.", "user-deactivated": "User deactivated.",
           "field-created": "Custom field created.", "field-deleted": "Custom field deleted."}


def _page(ctx: WebCtx, key: str) -> None:
    page = next(p for p in ADMIN_PAGES if p.key == key)
    if not page.allowed(ctx.principal):
        raise Forbidden("Your role does not give access to this administration page.")


def form_errors(exc: ValidationError, whole_form_field: str) -> dict[str, str]:
    """Pydantic errors keyed by form field; model-level errors go to `whole_form_field`."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = err.get("loc") or ()
        name = str(loc[0]) if loc else whole_form_field
        message = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
        for machine, human in (("String should have", "Must have"), ("Input should be", "Must be"),
                               ("String should match pattern", "Must match the pattern")):
            message = message.replace(machine, human)
        errors.setdefault(name, message[:1].upper() + message[1:])
    return errors


def _problem_errors(exc: Problem, fallback: str) -> dict[str, str]:
    return {(exc.field or fallback).partition(".")[0]: exc.detail}


@router.get("")
def admin_home(ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not ctx.viewer.admin_pages:
        raise Forbidden("Your role does not give access to administration.")
    return RedirectResponse(ctx.viewer.admin_pages[0].url, status_code=303)


# --- users ---------------------------------------------------------------------------------------

def _users_page(request: Request, ctx: WebCtx, *, values: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, notice: str = "", alert: str = "",
                status_code: int = 200) -> Response:
    users = access.list_users(ctx.session, ctx.principal)
    teams = (access.list_teams(ctx.session, ctx.principal)
             if can(ctx.principal, "teams", "read") else [])
    return render(request, "admin/users.html", {
        "section": "users", "users": users, "teams": {t.id: t.name for t in teams},
        "roles": ROLES, "locales": LOCALES,
        "can_create": can(ctx.principal, "users", "create"),
        "can_deactivate": can(ctx.principal, "users", "delete"),
        "values": values or {"role": "support", "locale": ctx.user.locale},
        "errors": errors or {}, "notice": notice, "alert": alert,
    }, status_code=status_code)


@router.get("/users")
def users(request: Request, done: Annotated[str | None, Query(max_length=40)] = None,
          ctx: WebCtx = Depends(web_ctx)) -> Response:
    _page(ctx, "users")
    return _users_page(request, ctx, notice=NOTICES.get(done or "", ""))


@router.post("/users")
def create_user(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    _page(ctx, "users")
    names = ("full_name", "email", "role", "team_id", "locale")
    values = {n: ctx.field(n) for n in names}
    errors: dict[str, str] = {}
    team_raw = values["team_id"]
    if team_raw and not team_raw.isdigit():
        errors["team_id"] = "Choose a team from the list."
    if not errors:
        try:
            data = UserCreate(full_name=values["full_name"], email=values["email"],
                              password=ctx.field("password"), role=values["role"],
                              team_id=int(team_raw) if team_raw else None,
                              locale=values["locale"] or "en_GB")
            access.create_user(ctx.session, ctx.principal, data)
            ctx.commit()
            return RedirectResponse("/admin/users?done=user-created", status_code=303)
        except ValidationError as exc:
            errors = form_errors(exc, "email")
        except Forbidden:
            raise
        except Problem as exc:
            ctx.session.rollback()
            errors = _problem_errors(exc, "email")
    return _users_page(request, ctx, values=values, errors=errors, status_code=422,
                       alert="The user was not created: please correct the highlighted fields.")


@router.post("/users/{user_id}/deactivate")
def deactivate_user(request: Request, user_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    _page(ctx, "users")
    user = access.get_user(ctx.session, ctx.principal, user_id)
    if ctx.field("version") != str(user.version):
        return _users_page(request, ctx, status_code=409,
                           alert="That user was changed by someone else meanwhile; "
                                 "check the list and try again.")
    try:
        access.delete_user(ctx.session, ctx.principal, user)
    except Forbidden:
        raise
    except Problem as exc:
        ctx.session.rollback()
        return _users_page(request, ctx, alert=exc.detail, status_code=exc.status)
    ctx.commit()
    return RedirectResponse("/admin/users?done=user-deactivated", status_code=303)


# --- roles ---------------------------------------------------------------------------------------

@router.get("/roles")
def roles(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    _page(ctx, "roles")
    grid: dict[str, dict[str, dict[str, list[str]]]] = {
        r: {role: {} for role in ROLES} for r in RESOURCES}
    for row in permission_matrix():
        if row["scope"]:
            grid[row["resource"]][row["role"]].setdefault(row["scope"], []).append(row["action"])
    field_rules: list[dict[str, Any]] = [
        {"resource": resource, "field": name, "roles": roles}
        for resource, rules in SENSITIVE_FIELDS.items() for name, roles in rules.items()]
    field_rules.append({"resource": "customers", "field": "custom fields marked sensitive",
                        "roles": SENSITIVE_CUSTOM_FIELD_ROLES})
    return render(request, "admin/roles.html", {
        "section": "roles", "roles": ROLES, "resources": RESOURCES, "actions": ACTIONS,
        "grid": grid, "scopes": ("all", "team", "own"), "field_rules": field_rules,
    })


# --- custom fields -------------------------------------------------------------------------------

def _fields_page(request: Request, ctx: WebCtx, *, values: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None, notice: str = "", alert: str = "",
                 status_code: int = 200) -> Response:
    return render(request, "admin/custom_fields.html", {
        "section": "custom_fields",
        "fields": custom_fields.list_fields(ctx.session, ctx.principal),
        "types": CUSTOM_FIELD_TYPES,
        "sensitive_roles": [r for r in ROLES if r in SENSITIVE_CUSTOM_FIELD_ROLES],
        "can_create": can(ctx.principal, "custom_fields", "create"),
        "can_delete": can(ctx.principal, "custom_fields", "delete"),
        "values": values or {"type": "text"}, "errors": errors or {}, "notice": notice,
        "alert": alert,
    }, status_code=status_code)


@router.get("/custom-fields")
def fields(request: Request, done: Annotated[str | None, Query(max_length=40)] = None,
           ctx: WebCtx = Depends(web_ctx)) -> Response:
    _page(ctx, "custom_fields")
    return _fields_page(request, ctx, notice=NOTICES.get(done or "", ""))


def _choices(raw: str) -> list[str]:
    """One choice per line (commas also separate), blanks dropped, order kept, no duplicates."""
    out: list[str] = []
    for part in raw.replace(",", "\n").splitlines():
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return out


@router.post("/custom-fields")
def create_field(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    _page(ctx, "custom_fields")
    values: dict[str, Any] = {n: ctx.field(n) for n in ("key", "label", "type", "choices",
                                                         "help_text")}
    values["required"] = ctx.field("required") == "on"
    values["sensitive"] = ctx.field("sensitive") == "on"
    try:
        data = CustomFieldIn(key=values["key"], label=values["label"], type=values["type"],
                             choices=_choices(values["choices"]), required=values["required"],
                             sensitive=values["sensitive"], help_text=values["help_text"])
        custom_fields.create_field(ctx.session, ctx.principal, data)
        ctx.commit()
        return RedirectResponse("/admin/custom-fields?done=field-created", status_code=303)
    except ValidationError as exc:
        errors = form_errors(exc, "choices")
    except Forbidden:
        raise
    except Problem as exc:
        ctx.session.rollback()
        errors = _problem_errors(exc, "key")
    return _fields_page(request, ctx, values=values, errors=errors, status_code=422,
                        alert="The field was not created: please correct the highlighted fields.")


@router.post("/custom-fields/{field_id}/delete")
def delete_field(request: Request, field_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                 ctx: WebCtx = Depends(web_ctx)) -> Response:
    _page(ctx, "custom_fields")
    field = custom_fields.get_field(ctx.session, ctx.principal, field_id)
    if ctx.field("version") != str(field.version):
        return _fields_page(request, ctx, status_code=409,
                            alert="That field was changed by someone else meanwhile; "
                                  "check the list and try again.")
    custom_fields.delete_field(ctx.session, ctx.principal, field)
    ctx.commit()
    return RedirectResponse("/admin/custom-fields?done=field-deleted", status_code=303)
