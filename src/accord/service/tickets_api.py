"""REST endpoints for tickets, their messages, attachments and linked orders, and the public
chat/web widget: parse, call the service, serialise."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.core import idempotency
from accord.core.concurrency import etag
from accord.core.db import session_factory
from accord.core.errors import NotFound, Problem, ValidationProblem
from accord.core.ratelimit import throttle_client
from accord.service import attachments, tickets
from accord.service.tickets_schemas import (
    AttachmentOut,
    MessageOut,
    OrderLinkIn,
    ReplyIn,
    TicketAssignIn,
    TicketCreate,
    TicketOut,
    TicketUpdate,
    WidgetAnswer,
    WidgetMessageIn,
)

router = APIRouter()

LIST_HELP = (
    "Filters: `status`, `priority`, `category`, `channel` (`__in` takes comma-separated "
    "values, `__ne` too), `assignee`, `team` (ids; `__isnull=true` for unassigned), "
    "`customer`, `tag` (one tag, or `tag__in=a,b` for any of them), `sla_state` (none, "
    "running, warning, breached, paused, met), `due_at` and `created_at` (`__gte`, `__lt` ...). "
    "`q`: a reference (`T-12`), the requester's e-mail or a subject prefix. "
    "`sort=-id` (default), `due_at` (the queue order: earliest SLA deadline first, no deadline "
    "last), `priority` (`-priority`: urgent first), `created_at`, `updated_at`; keyset "
    "pagination with `cursor` and `limit`. Only tickets in the caller's record scope (assignee "
    "or team) are listed."
)
CORS = {"Access-Control-Allow-Origin": "*"}
FILE_FIELD = "attachments"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


# --- parsing -------------------------------------------------------------------------------------

def _problem_of(exc: ValidationError) -> ValidationProblem:
    """Pydantic errors as the API's 422: the first names the field, all are listed."""
    errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "in": "body",
               "message": e["msg"], "type": e["type"]} for e in exc.errors()]
    first = errors[0]
    return ValidationProblem(f"{first['field']}: {first['message']}", field=first["field"],
                             errors=errors)


def _validated(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _problem_of(exc) from None


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise Problem("the body is not valid JSON", field="body",
                      title="Malformed JSON") from None


async def _files_and_fields(request: Request, file_field: str
                            ) -> tuple[dict[str, str], list[tickets.NewAttachment]]:
    """A multipart body: its text fields and its files (only under `file_field`), each file
    read up to the size limit (413 naming the field beyond it)."""
    limit = attachments.max_bytes()
    form = await request.form(max_files=attachments.MAX_FILES + 1, max_fields=20)
    fields: dict[str, str] = {}
    files: list[tickets.NewAttachment] = []
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != file_field:
                    raise ValidationProblem(f"files go in {file_field!r}", field=key[:60])
                data = await value.read(limit + 1)
                if len(data) > limit:
                    raise Problem(f"file {len(files)} is larger than {limit} bytes",
                                  field=f"{file_field}.{len(files)}", status=413,
                                  title="Payload too large")
                files.append(tickets.NewAttachment(filename=value.filename or "",
                                                   content_type=value.content_type or "",
                                                   data=data))
            else:
                if key == file_field:
                    raise ValidationProblem(f"{file_field!r} takes files (with a file name)",
                                            field=file_field)
                if key in fields:
                    raise ValidationProblem(f"field {key[:60]!r} is sent twice", field=key[:60])
                fields[key] = value
    finally:
        await form.close()
    if len(files) > attachments.MAX_FILES:
        raise ValidationProblem(f"at most {attachments.MAX_FILES} files", field=file_field)
    return fields, files


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _unsupported() -> Problem:
    return Problem("send application/json, multipart/form-data or "
                   "application/x-www-form-urlencoded", field="Content-Type",
                   status=415, title="Unsupported media type")


def _if_match_version(header: str | None) -> int | None:
    """An optional If-Match on appends (a reply): when sent, it must be the current ETag."""
    if header is None or not header.strip() or header.strip() == "*":
        return None
    try:
        return int(header.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise ValidationProblem("If-Match must be the ETag returned for the ticket",
                                field="If-Match") from None


def _out(ctx: Ctx, ticket: Any) -> TicketOut:
    orders = tickets.order_ids(ctx.session, [ticket.id])[ticket.id]
    return tickets.to_out(ticket, orders)


def _ticket_headers(out: TicketOut) -> dict[str, str]:
    return {"ETag": etag(out.version), "Location": f"/api/v1/tickets/{out.id}"}


# --- tickets -------------------------------------------------------------------------------------

@router.get("/tickets", tags=["tickets"], summary="List tickets (queues)", description=LIST_HELP)
def list_tickets(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = tickets.list_tickets(ctx.session, ctx.principal,
                                        tickets.list_params(dict(request.query_params)))
    orders = tickets.order_ids(ctx.session, [t.id for t in rows])
    items = [tickets.to_out(t, orders[t.id]) for t in rows]
    ctx.session.rollback()
    audit.record_read(ctx.principal, tickets.RESOURCE, [i.id for i in items],
                      tickets.READ_FIELDS, {"via": "api.list"})
    return {"items": items, "next_cursor": cursor}


@router.post("/tickets", tags=["tickets"], status_code=201, response_model=TicketOut,
             summary="Open a ticket (agent, API, logged phone call)",
             description="Give `customer_id`, or `requester_email` (matched to the customer "
             "with that address, else a new customer is created). `author: agent` (default) "
             "means the first message is the agent's words (a logged call, a ticket opened on "
             "the customer's behalf); `author: customer` relays the customer's own words (they "
             "are sentiment-scored and may escalate). A phone call: `channel: phone` with "
             "`call: {direction, duration_seconds, outcome}`. Unassigned tickets are routed.")
def create_ticket(body: TicketCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    def run() -> TicketOut:
        ticket = tickets.create_ticket(
            ctx.session, ctx.principal, subject=body.subject, channel=body.channel,
            body_text=body.body_text, body_html=body.body_html, customer_id=body.customer_id,
            requester_email=body.requester_email, requester_name=body.requester_name,
            priority=body.priority, category=body.category, tags=body.tags,
            language=body.language, order_ids=body.order_ids, team_id=body.team_id,
            assignee_id=body.assignee_id, internal_author=body.author == "agent",
            call=body.call.model_dump() if body.call else None)
        return _out(ctx, ticket)

    return ctx.created(run, body, headers=_ticket_headers)


@router.get("/tickets/{ticket_id}", tags=["tickets"], response_model=TicketOut)
def get_ticket(ticket_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> TicketOut:
    out = _out(ctx, tickets.get_ticket(ctx.session, ctx.principal, ticket_id))
    ctx.session.rollback()
    audit.record_read(ctx.principal, tickets.RESOURCE, [ticket_id], tickets.READ_FIELDS,
                      {"via": "api.get"})
    response.headers["ETag"] = etag(out.version)
    return out


@router.patch("/tickets/{ticket_id}", tags=["tickets"], response_model=TicketOut,
              description="Needs `If-Match`. Status moves: new → open, pending_customer, "
              "on_hold, solved; open → pending_customer, on_hold, solved; pending_customer → "
              "open, on_hold, solved; on_hold → open, pending_customer, solved; solved → open, "
              "closed; closed is final. Anything else is a 409. `team_id` is a reassignment "
              "(team-scoped roles only within their team).")
def update_ticket(ticket_id: int, body: TicketUpdate, response: Response,
                  if_match: str | None = Header(default=None),
                  ctx: Ctx = Depends(api_ctx)) -> TicketOut:
    ticket = tickets.get_ticket(ctx.session, ctx.principal, ticket_id, "update")
    return ctx.updated(ticket, if_match, response,
                       lambda: tickets.update_ticket(ctx.session, ctx.principal, ticket, body),
                       lambda: _out(ctx, ticket))


@router.post("/tickets/{ticket_id}/assign", tags=["tickets"], response_model=TicketOut,
             description="Needs `If-Match`. Give `assignee_id` (an active agent; the ticket "
             "moves to their team unless `team_id` says otherwise), `team_id`, or both.")
def assign_ticket(ticket_id: int, body: TicketAssignIn, response: Response,
                  if_match: str | None = Header(default=None),
                  ctx: Ctx = Depends(api_ctx)) -> TicketOut:
    ticket = tickets.get_ticket(ctx.session, ctx.principal, ticket_id, "update")
    return ctx.updated(ticket, if_match, response,
                       lambda: tickets.assign(ctx.session, ctx.principal, ticket,
                                              assignee_id=body.assignee_id,
                                              team_id=body.team_id),
                       lambda: _out(ctx, ticket))


# --- messages ------------------------------------------------------------------------------------

@router.get("/tickets/{ticket_id}/messages", tags=["tickets"], response_model=list[MessageOut],
            description="Oldest first, internal notes included (`internal: true`, "
            "`visibility: internal`): every API caller is staff.")
def list_messages(ticket_id: int, ctx: Ctx = Depends(api_ctx)) -> list[MessageOut]:
    rows = tickets.list_messages(ctx.session, ctx.principal, ticket_id)
    out = tickets.messages_out(ctx.session, rows)
    ctx.session.rollback()
    audit.record_read(ctx.principal, tickets.RESOURCE, [ticket_id],
                      tickets.MESSAGE_READ_FIELDS, {"via": "api.messages"})
    return out


@router.post("/tickets/{ticket_id}/messages", tags=["tickets"], status_code=201,
             response_model=MessageOut, summary="Reply publicly or add an internal note",
             description="JSON (`body_text`, `body_html`, `internal`, `status`) or "
             f"multipart/form-data with the same fields and files under `{FILE_FIELD}` "
             f"(at most {attachments.MAX_FILES}, each within ACCORD_ATTACHMENT_MAX_BYTES). "
             "A public reply is e-mailed to the requester and on the customer's timeline; a "
             "note (`internal: true`) is neither. `If-Match` is optional here; when sent it "
             "must be the ticket's current ETag (412 otherwise). The response's ETag is the "
             "ticket's new version.")
async def post_message(ticket_id: int, request: Request,
                       if_match: str | None = Header(default=None),
                       ctx: Ctx = Depends(api_ctx)) -> Response:
    media = _media_type(request)
    files: list[tickets.NewAttachment] = []
    if media in FORM_TYPES:
        fields, files = await _files_and_fields(request, FILE_FIELD)
        data = _validated(ReplyIn, fields)
    elif media == "application/json":
        data = _validated(ReplyIn, await _json_body(request))
    else:
        raise _unsupported()
    expected = _if_match_version(if_match)
    key_body = {**data.model_dump(mode="json"),
                "files": [hashlib.sha256(f.data).hexdigest() for f in files]}

    def run() -> MessageOut:
        message = tickets.reply(ctx.session, ctx.principal, ticket_id,
                                body_text=data.body_text, body_html=data.body_html,
                                internal=data.internal, status=data.status, attachments=files,
                                expected_version=expected)
        return tickets.messages_out(ctx.session, [message])[0]

    def headers(out: MessageOut) -> dict[str, str]:
        version = tickets.get_ticket(ctx.session, ctx.principal, ticket_id).version
        return {"ETag": etag(version),
                "Location": f"/api/v1/tickets/{ticket_id}/messages#{out.id}"}

    return await run_in_threadpool(ctx.created, run, key_body, headers=headers)


# --- attachments ---------------------------------------------------------------------------------

@router.get("/tickets/{ticket_id}/attachments", tags=["tickets"],
            response_model=list[AttachmentOut])
def list_attachments(ticket_id: int, ctx: Ctx = Depends(api_ctx)) -> list[AttachmentOut]:
    tickets.get_ticket(ctx.session, ctx.principal, ticket_id)
    out = [attachments.attachment_out(a) for a in attachments.for_ticket(ctx.session, ticket_id)]
    ctx.session.rollback()
    # file names are personal data (privacy registry): listing them is an audited read
    audit.record_read(ctx.principal, tickets.RESOURCE, [ticket_id], ["attachments"],
                      {"via": "api.attachments"})
    return out


@router.post("/tickets/{ticket_id}/attachments", tags=["tickets"], status_code=201,
             response_model=list[AttachmentOut],
             description="multipart/form-data with the files under `files`; they belong to "
             "the ticket, not to a message. Stored under server-generated keys: the file name "
             "is kept for display only.")
async def post_attachments(ticket_id: int, request: Request,
                           ctx: Ctx = Depends(api_ctx)) -> Response:
    if _media_type(request) != "multipart/form-data":
        raise Problem("send multipart/form-data", field="Content-Type", status=415,
                      title="Unsupported media type")
    fields, files = await _files_and_fields(request, "files")
    if fields:
        name = sorted(fields)[0]
        raise ValidationProblem(f"unknown field {name[:60]!r}", field=name[:60])

    def run() -> list[AttachmentOut]:
        ticket = tickets.get_ticket(ctx.session, ctx.principal, ticket_id, "update")
        rows = tickets.add_attachments(ctx.session, ctx.principal, ticket, files)
        return [attachments.attachment_out(r) for r in rows]

    key_body = {"files": [hashlib.sha256(f.data).hexdigest() for f in files]}
    return await run_in_threadpool(ctx.created, run, key_body)


@router.get("/ticket-attachments/{attachment_id}", tags=["tickets"],
            summary="Download an attachment",
            response_class=FileResponse,
            description="Always `Content-Disposition: attachment` with a safe file name, "
            "`X-Content-Type-Options: nosniff` and a sandboxing CSP; HTML, SVG and XML are "
            "served as `application/octet-stream`.")
def download(attachment_id: int, ctx: Ctx = Depends(api_ctx)) -> Response:
    row = attachments.get_attachment(ctx.session, ctx.principal, attachment_id)
    path = attachments.path_for(row.storage_key)
    media, headers, ticket_id = attachments.served_type(row), attachments.download_headers(row), \
        row.ticket_id
    ctx.session.rollback()
    if not path.is_file():
        raise NotFound(f"the file of attachment {attachment_id} is missing")
    audit.record_read(ctx.principal, tickets.RESOURCE, [ticket_id], ["attachments"],
                      {"via": "api.download", "attachment_id": attachment_id})
    return FileResponse(path, media_type=media, headers=headers)


# --- linked orders -------------------------------------------------------------------------------

@router.post("/tickets/{ticket_id}/orders", tags=["tickets"], response_model=TicketOut,
             description="Link one of the ticket's customer's orders (422 for anyone else's); "
             "linking an order twice changes nothing.")
def link_order(ticket_id: int, body: OrderLinkIn, response: Response,
               ctx: Ctx = Depends(api_ctx)) -> TicketOut:
    ticket = tickets.get_ticket(ctx.session, ctx.principal, ticket_id, "update")
    tickets.link_order(ctx.session, ctx.principal, ticket, body.order_id)
    out = _out(ctx, ticket)
    ctx.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete("/tickets/{ticket_id}/orders/{order_id}", tags=["tickets"], status_code=204)
def unlink_order(ticket_id: int, order_id: int, ctx: Ctx = Depends(api_ctx)) -> Response:
    ticket = tickets.get_ticket(ctx.session, ctx.principal, ticket_id, "update")
    tickets.unlink_order(ctx.session, ctx.principal, ticket, order_id)
    ctx.commit()
    return Response(status_code=204)


# --- the public chat/web widget ------------------------------------------------------------------

@router.post("/widget/messages", tags=["widget"], response_model=WidgetAnswer,
             summary="A visitor's message from the chat/web widget (no login)",
             description="JSON: `name`, `email`, `message`, optional `subject` and "
             "`conversation` (the token of an earlier answer, to continue that ticket; it only "
             "works with the same e-mail). `website_url` is a honeypot and must stay empty. "
             "Rate-limited per client address (429 with Retry-After). The answer carries only "
             "the ticket's reference and the token to continue it. A retry may send an "
             "`Idempotency-Key`: the same key and body give the saved answer (nothing stored "
             "twice), another body with that key is a 422.")
async def widget_message(request: Request) -> Response:
    throttle_client(tickets.WIDGET_PER_CLIENT, request, CORS,
                    message="too many messages from this address; try again later")
    try:
        if _media_type(request) != "application/json":
            raise Problem("send application/json", field="Content-Type", status=415,
                          title="Unsupported media type")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > tickets.WIDGET_MAX_BYTES:
                raise Problem(f"the message is larger than {tickets.WIDGET_MAX_BYTES // 1024} "
                              "KB", field="body", status=413, title="Payload too large")
        try:
            doc = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise Problem("the body is not valid JSON", field="body",
                          title="Malformed JSON") from None
        if not isinstance(doc, dict):
            raise ValidationProblem("the body must be a JSON object", field="body")
        if doc.get("website_url"):  # a bot: the ordinary answer, nothing stored
            return JSONResponse(WidgetAnswer().model_dump(), headers=CORS)
        data = _validated(WidgetMessageIn, doc)
        answer, replayed = await run_in_threadpool(
            _store_widget, data, request.headers.get("Idempotency-Key"), request.url.path)
    except Problem as exc:  # a page posting with fetch() may read why it was refused
        exc.headers = {**exc.headers, **CORS}
        raise
    extra = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(answer.model_dump(), headers={**CORS, **extra})


def _store_widget(data: WidgetMessageIn, key: str | None = None, path: str = ""
                  ) -> tuple[WidgetAnswer, bool]:
    """Store one widget message. With an `Idempotency-Key` (a widget retrying a post that
    timed out) the same key and body (the visitor's address included) give the saved answer
    and store nothing more; the key is saved in the same transaction as the message. Keys
    share one namespace (no hash of the address is kept: that would be personal data)."""
    session = session_factory(write=True)()
    try:
        owner, body_hash = "widget", ""
        if key is not None:
            body_hash = idempotency.request_hash("POST", path, data.model_dump(mode="json"))
            saved = idempotency.lookup(session, owner, key, "POST", path, body_hash)
            if saved is not None:
                return WidgetAnswer.model_validate(saved.body), True
        result = tickets.widget_message(session, data)
        if result is None:
            return WidgetAnswer(), False
        ticket, token = result
        answer = WidgetAnswer(reference=ticket.reference, conversation=token)
        if key is not None:
            idempotency.store(session, owner, key, "POST", path, body_hash, 200,
                              answer.model_dump(mode="json"), {})
        session.commit()
        return answer, False
    finally:
        session.rollback()
        session.close()


@router.options("/widget/messages", include_in_schema=False)
def widget_preflight() -> Response:
    return Response(status_code=204, headers={
        **CORS, "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
        "Access-Control-Max-Age": "86400"})
