"""Admin page for sources: the silos that send data, their trust, and their keys.

Lists every source with its kind, trust rank and the prefix of its write key; admins register
sources and mint write keys and webhook secrets. A minted secret is shown once, in the answer
to the POST that minted it (never stored in a redirect or in the page's URL).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from accord.access.policy import can
from accord.core.errors import Forbidden, Problem
from accord.core.settings import get_settings
from accord.integration import sources_admin as service
from accord.integration.schemas import SourceCreate
from accord.models.integration import MANUAL_SOURCE, SOURCE_KINDS
from accord.web.admin import form_errors
from accord.web.context import WebCtx, web_ctx
from accord.web.rendering import PageRoute, render

router = APIRouter(prefix="/admin", route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
NOTICES = {"source-created": "Source registered. Mint a write key or a webhook secret for it "
                             "below."}
KINDS = [k for k in SOURCE_KINDS if k != "manual"]


def _allowed(ctx: WebCtx) -> None:
    if not can(ctx.principal, "sources", "read"):
        raise Forbidden("Your role does not give access to the sources page.")


def _page(request: Request, ctx: WebCtx, *, values: dict[str, Any] | None = None,
          errors: dict[str, str] | None = None, notice: str = "", alert: str = "",
          minted: dict[str, str] | None = None, status_code: int = 200) -> Response:
    base = get_settings().base_url.rstrip("/")
    return render(request, "sources/list.html", {
        "section": "sources",
        "sources": service.list_sources(ctx.session, ctx.principal),
        "kinds": KINDS, "manual": MANUAL_SOURCE, "base_url": base,
        "can_create": can(ctx.principal, "sources", "create"),
        "can_mint": can(ctx.principal, "sources", "update"),
        "values": values or {"kind": "tracking", "trust_rank": "50"},
        "errors": errors or {}, "notice": notice, "alert": alert, "minted": minted,
    }, status_code=status_code)


@router.get("/sources")
def sources_page(request: Request, done: Annotated[str | None, Query(max_length=40)] = None,
                 ctx: WebCtx = Depends(web_ctx)) -> Response:
    _allowed(ctx)
    return _page(request, ctx, notice=NOTICES.get(done or "", ""))


@router.post("/sources")
def create_source(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    _allowed(ctx)
    names = ("name", "kind", "trust_rank", "description", "default_country")
    values = {n: ctx.field(n) for n in names}
    errors: dict[str, str] = {}
    if values["trust_rank"] and not values["trust_rank"].isdigit():
        errors["trust_rank"] = "Must be a whole number from 1 (most trusted) to 1000."
    if not errors:
        try:
            data = SourceCreate(
                name=values["name"], kind=values["kind"],  # type: ignore[arg-type]
                trust_rank=int(values["trust_rank"] or 50), description=values["description"],
                default_country=values["default_country"] or None)
            service.create_source(ctx.session, ctx.principal, data)
            ctx.commit()
            return RedirectResponse("/admin/sources?done=source-created", status_code=303)
        except ValidationError as exc:
            errors = form_errors(exc, "name")
        except Forbidden:
            raise
        except Problem as exc:
            ctx.session.rollback()
            errors = {(exc.field or "name").partition(".")[0]: exc.detail}
    return _page(request, ctx, values=values, errors=errors, status_code=422,
                 alert="The source was not registered: please correct the highlighted fields.")


def _mint(request: Request, ctx: WebCtx, source_id: int, what: str) -> Response:
    _allowed(ctx)
    source = service.get_source(ctx.session, ctx.principal, source_id, "update")
    try:
        if what == "write_key":
            secret = service.mint_write_key(ctx.session, ctx.principal, source)
        else:
            secret = service.mint_webhook_secret(ctx.session, ctx.principal, source)
    except Forbidden:
        raise
    except Problem as exc:
        ctx.session.rollback()
        return _page(request, ctx, alert=exc.detail, status_code=exc.status)
    ctx.commit()
    return _page(request, ctx, minted={"what": what, "source": source.name, "secret": secret})


@router.post("/sources/{source_id}/write-key")
def mint_write_key(request: Request, source_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                   ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _mint(request, ctx, source_id, "write_key")


@router.post("/sources/{source_id}/webhook-secret")
def mint_webhook_secret(request: Request, source_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                        ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _mint(request, ctx, source_id, "webhook_secret")
