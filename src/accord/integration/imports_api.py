"""REST endpoints for file imports: upload (or preview) a file, follow the run, get its report.

`POST /api/v1/imports` takes a multipart upload. With `preview=true` it answers what the import
would do (format, mapping, the first rows standardised) and keeps nothing. Otherwise the file
is stored under the data directory with a server-generated name (the uploader's file name is
only displayed) and imported: in the request when it is small (201), by a background job when it
is large (202, follow `GET /api/v1/imports/{id}`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.access.service import require
from accord.core.db import session_factory
from accord.core.errors import ValidationProblem
from accord.integration import imports as service
from accord.integration.mapping import KINDS, Mapping, load_mapping
from accord.models import ImportRun, Source

router = APIRouter(tags=["imports"])
ImportId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MAPPING_MAX_CHARS = 64 * 1024


class ImportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source_id: int
    file_name: str
    file_sha256: str
    file_format: str
    mapping: dict[str, Any]
    status: str
    checkpoint_line: int
    total: int
    accepted: int
    updated: int
    unchanged: int
    rejected: int
    flagged: int = Field(description="rows taken with values left out of the profile (flagged)")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    created_by: int | None


def find_source(session: Any, ref: str) -> Source:
    """A source by name, or by id when the reference is a number."""
    ref = (ref or "").strip()
    if not ref:
        raise ValidationProblem("choose the source the file comes from", field="source")
    from sqlalchemy import select

    source = (session.get(Source, int(ref)) if ref.isdigit()
              else session.scalar(select(Source).where(Source.name == ref)))
    if source is None:
        raise ValidationProblem(f"there is no source {ref!r}", field="source")
    if not source.active:
        raise ValidationProblem(f"the source {source.name!r} is deactivated", field="source")
    return source


def parse_options(mapping: str | None, kind: str | None) -> tuple[Mapping | None, str | None]:
    if kind is not None and kind not in KINDS:
        raise ValidationProblem(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if mapping is None or not mapping.strip():
        return None, kind or None
    if len(mapping) > MAPPING_MAX_CHARS:
        raise ValidationProblem("the mapping is larger than 64 KB", field="mapping")
    return load_mapping(mapping), kind or None


@router.post(
    "/imports",
    summary="Import a CSV, JSON Lines or Excel file (or preview it)",
    description="Multipart form: `file`, `source` (name or id), optional `mapping` (YAML or "
    "JSON text) and `kind` (profile, order, interaction; detected when omitted). With "
    "`preview=true` nothing is stored: the answer shows the detected format, encoding, "
    "delimiter, mapping, unmapped columns and the first 20 rows mapped and standardised with "
    "their flags. Otherwise the import runs: 201 with the finished run for small files, 202 with "
    "the running run for large ones (a background job). Importing the same file again resumes "
    "an unfinished run and otherwise changes nothing, unless the mapping, country or date "
    "order changed: its rows are then standardised again from the raw records already kept "
    "(`updated` where a value changes). `flagged` counts the rows with values left out of "
    "their profile; the report lists each.",
    responses={201: {"model": ImportOut}, 202: {"model": ImportOut}},
)
def create_import(
    file: Annotated[UploadFile, File(description="the file to import")],
    source: Annotated[str, Form(max_length=100)],
    mapping: Annotated[str | None, Form()] = None,
    kind: Annotated[str | None, Form(max_length=20)] = None,
    preview: Annotated[bool, Query()] = False,
    ctx: Ctx = Depends(api_ctx),
) -> JSONResponse:
    require(ctx.principal, "imports", "create")
    src = find_source(ctx.session, source)
    parsed, kind = parse_options(mapping, kind)
    name = file.filename or "upload"
    upload = service.store_upload(file.file, ctx.principal.user_id)
    if preview:
        try:
            body = service.preview(upload.path, src, parsed, kind=kind, name=name)
        finally:
            service.discard_upload(upload.path)
        body["file"]["sha256"] = upload.sha256
        return JSONResponse(body)
    try:
        run, queued = service.start_upload_import(ctx.session, ctx.principal, src, upload.path,
                                                  file_name=name, mapping=parsed, kind=kind)
        ctx.commit()
    except BaseException:
        service.discard_upload(upload.path)
        raise
    if not queued:
        run = service.finish_upload_import(ctx.principal, run.id, upload.path)
    out = ImportOut.model_validate(run).model_dump(mode="json")
    return JSONResponse(out, status_code=202 if queued else 201,
                        headers={"Location": f"/api/v1/imports/{run.id}"})


@router.get("/imports", summary="Imports, newest first",
            description="`source_id` filters; `cursor` (from `next_cursor`) continues.")
def list_imports(
    source_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ctx: Ctx = Depends(api_ctx),
) -> dict[str, Any]:
    runs = service.list_imports(ctx.session, ctx.principal, source_id=source_id,
                                before_id=cursor, limit=limit)
    next_cursor = str(runs[-1].id) if len(runs) == limit else None
    return {"items": [ImportOut.model_validate(r) for r in runs], "next_cursor": next_cursor}


@router.get("/imports/{import_id}", response_model=ImportOut)
def get_import(import_id: ImportId, ctx: Ctx = Depends(api_ctx)) -> ImportOut:
    return ImportOut.model_validate(service.get_import(ctx.session, ctx.principal, import_id))


@router.get(
    "/imports/{import_id}/report.csv",
    summary="The import report as CSV: the counts, every rejected row with its line number, "
    "field and reason, then every flagged value with its line number, field, reason and the "
    "value as written",
    response_class=StreamingResponse,
)
def import_report(import_id: ImportId, ctx: Ctx = Depends(api_ctx)) -> StreamingResponse:
    run = service.get_import(ctx.session, ctx.principal, import_id)
    # the rejected rows and flagged values are raw personal data: reading them is audited
    audit.record_read(ctx.principal, "imports", [run.id], ["report"], {"via": "api.report"})
    return StreamingResponse(
        report_chunks(run.id), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{run.id}-report.csv"',
                 "Cache-Control": "no-store"})


def report_chunks(import_id: int) -> Iterator[str]:
    """The CSV in pieces, from its own session (the request's is gone while it streams)."""
    session = session_factory(write=False)()
    try:
        run = session.get(ImportRun, import_id)
        if run is not None:
            yield from service.report_csv_chunks(session, run)
    finally:
        session.close()
