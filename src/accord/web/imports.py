"""Import pages: upload a file, preview what Accord understood, confirm, follow the report.

Upload → preview: the file is stored under the data directory with a server-generated token
(bound to the uploader) and the page shows the detected format, the mapping and the first rows
standardised, with every flagged value. Confirm imports that stored file through the same
service as the API and the CLI (small files at once, large ones by a job), then the report page
follows the run until it completes. Unconfirmed uploads are removed after a day.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.datastructures import UploadFile

from accord.access import audit
from accord.access.policy import can
from accord.access.service import require
from accord.core.errors import Forbidden, NotFound, Problem
from accord.integration import imports as service
from accord.integration.imports_api import find_source, parse_options
from accord.integration.mapping import KINDS, PROFILE_FIELDS
from accord.models import ImportRun, Source
from accord.web.context import WebCtx, web_ctx
from accord.web.rendering import PageRoute, render

router = APIRouter(prefix="/imports", route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
REPORT_ROWS = 200
STEPS = ("Upload", "Preview", "Report")


def _sources(ctx: WebCtx, *, active: bool = True) -> list[Source]:
    query = select(Source).order_by(Source.trust_rank, Source.name)
    if active:
        query = query.where(Source.active.is_(True))
    return list(ctx.session.scalars(query))


def _form_page(request: Request, ctx: WebCtx, *, values: dict[str, str] | None = None,
               errors: dict[str, str] | None = None, alert: str = "",
               status_code: int = 200) -> Response:
    return render(request, "imports/new.html", {
        "step": 0, "steps": STEPS, "sources": _sources(ctx), "kinds": KINDS,
        "values": values or {}, "errors": errors or {}, "alert": alert,
        "max_mb": service.MAX_UPLOAD_BYTES // 1_000_000,
    }, status_code=status_code)


@router.get("")
def import_list(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    runs = service.list_imports(ctx.session, ctx.principal, limit=100)
    names = {s.id: s.name for s in _sources(ctx, active=False)}
    return render(request, "imports/list.html", {
        "runs": runs, "source_names": names,
        "can_create": can(ctx.principal, "imports", "create"),
    })


@router.get("/new")
def new_import(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    require(ctx.principal, "imports", "create")
    return _form_page(request, ctx)


def _field_of(exc: Problem) -> str:
    name = (exc.field or "file").split(".")[0]
    return name if name in ("file", "source", "mapping", "kind") else "file"


@router.post("/preview")
def preview(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    require(ctx.principal, "imports", "create")
    values = {n: ctx.field(n) for n in ("source", "kind", "mapping")}
    upload = ctx.form.get("file") if ctx.form is not None else None
    stored = None
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Problem("Choose a file to import.", field="file")
        source = find_source(ctx.session, values["source"])
        mapping, kind = parse_options(values["mapping"], values["kind"] or None)
        stored = service.store_upload(upload.file, ctx.principal.user_id)
        plan = service.preview(stored.path, source, mapping, kind=kind, name=upload.filename)
    except Forbidden:
        raise
    except Problem as exc:
        if stored is not None:
            service.discard_upload(stored.path)
        errors = {_field_of(exc): exc.detail}
        return _form_page(request, ctx, values=values, errors=errors, status_code=422,
                          alert="The file was not imported: please correct the highlighted "
                                "fields.")
    mapped = plan["mapping"]["columns"]
    return render(request, "imports/preview.html", {
        "step": 1, "steps": STEPS, "plan": plan, "source": source, "token": stored.token,
        "values": values, "mapped": {c: f for c, f in mapped.items() if f},
        "profile_fields": [f for f in PROFILE_FIELDS if any(
            f in r["values"] for r in plan["rows"])],
        "problems": sum(1 for r in plan["rows"] if r["error"] or r["flags"]),
    })


@router.post("/confirm")
def confirm(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    require(ctx.principal, "imports", "create")
    values = {n: ctx.field(n) for n in ("source", "kind", "mapping", "token", "file_name")}
    try:
        path = service.stored_upload(values["token"], ctx.principal.user_id)
        source = find_source(ctx.session, values["source"])
        mapping, kind = parse_options(values["mapping"], values["kind"] or None)
        run, queued = service.start_upload_import(ctx.session, ctx.principal, source, path,
                                                  file_name=values["file_name"] or "upload",
                                                  mapping=mapping, kind=kind)
        ctx.commit()
    except Forbidden:
        raise
    except NotFound as exc:
        return _form_page(request, ctx, values=values, errors={"file": exc.detail},
                          status_code=422, alert="The upload is no longer available.")
    except Problem as exc:
        ctx.session.rollback()
        return _form_page(request, ctx, values=values, errors={_field_of(exc): exc.detail},
                          status_code=422, alert="The file was not imported.")
    if not queued:
        service.finish_upload_import(ctx.principal, run.id, path)
    return RedirectResponse(f"/imports/{run.id}", status_code=303)


@router.post("/cancel")
def cancel(ctx: WebCtx = Depends(web_ctx)) -> Response:
    """Drop a previewed upload that will not be imported."""
    with contextlib.suppress(NotFound):
        service.discard_upload(service.stored_upload(ctx.field("token"),
                                                     ctx.principal.user_id))
    return RedirectResponse("/imports/new", status_code=303)


def _run_context(ctx: WebCtx, run: ImportRun) -> dict[str, Any]:
    source = ctx.session.get(Source, run.source_id)
    rejections = list(service.report_rows(ctx.session, run.id, limit=REPORT_ROWS))
    flags = list(service.flag_rows(ctx.session, run.id, limit=REPORT_ROWS + 1))
    if rejections or flags:  # raw rows and values of personal data are on the page
        audit.record_read(ctx.principal, "imports", [run.id], ["report"], {"via": "web"})
    done = run.accepted + run.updated + run.unchanged + run.rejected
    return {"run": run, "source": source, "rejections": rejections, "done": done,
            "more": max(0, run.rejected - len(rejections)), "flags": flags[:REPORT_ROWS],
            "more_flags": len(flags) > REPORT_ROWS, "step": 2, "steps": STEPS}


@router.get("/{import_id}")
def import_detail(request: Request, import_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                  ctx: WebCtx = Depends(web_ctx)) -> Response:
    run = service.get_import(ctx.session, ctx.principal, import_id)
    return render(request, "imports/detail.html", _run_context(ctx, run))


@router.get("/{import_id}/status")
def import_status(request: Request, import_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                  ctx: WebCtx = Depends(web_ctx)) -> Response:
    """The report section alone, polled by the page while the import runs."""
    run = service.get_import(ctx.session, ctx.principal, import_id)
    return render(request, "imports/_report.html", _run_context(ctx, run))
